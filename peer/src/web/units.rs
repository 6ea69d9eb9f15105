//! Quantities as a consumer reads them: UN/ECE Recommendation 20 unit codes
//! (what batches and EPCIS `uom` carry: `H87`, `KGM`, `LTR` …) with their
//! English and Chinese names, and English plurals. A small fixed table of
//! the units traceability records use; any other code is shown as the code.

use crate::web::html::Lang;

/// How a unit reads.
enum Name {
    /// A symbol after the number, the same for any amount: `600 kg`, `600 千克`.
    Symbol { en: &'static str, zh: &'static str },
    /// A counted thing: `1 piece`, `24 pieces`, `24 件`.
    Count {
        one: &'static str,
        many: &'static str,
        zh: &'static str,
    },
}

use Name::{Count, Symbol};

/// UN/ECE Rec 20 codes (and Rec 21 package types in their Rec 20 `X…`
/// form) → names.
const UNITS: &[(&str, Name)] = &[
    // Counted items.
    (
        "H87",
        Count {
            one: "piece",
            many: "pieces",
            zh: "件",
        },
    ),
    (
        "C62",
        Count {
            one: "unit",
            many: "units",
            zh: "个",
        },
    ),
    (
        "EA",
        Count {
            one: "item",
            many: "items",
            zh: "个",
        },
    ),
    (
        "PR",
        Count {
            one: "pair",
            many: "pairs",
            zh: "双",
        },
    ),
    (
        "SET",
        Count {
            one: "set",
            many: "sets",
            zh: "套",
        },
    ),
    (
        "DZN",
        Count {
            one: "dozen",
            many: "dozen",
            zh: "打",
        },
    ),
    (
        "XBO",
        Count {
            one: "bottle",
            many: "bottles",
            zh: "瓶",
        },
    ),
    (
        "XBX",
        Count {
            one: "box",
            many: "boxes",
            zh: "盒",
        },
    ),
    (
        "XCT",
        Count {
            one: "carton",
            many: "cartons",
            zh: "箱",
        },
    ),
    (
        "XCS",
        Count {
            one: "case",
            many: "cases",
            zh: "箱",
        },
    ),
    (
        "XBG",
        Count {
            one: "bag",
            many: "bags",
            zh: "袋",
        },
    ),
    (
        "XPK",
        Count {
            one: "package",
            many: "packages",
            zh: "包",
        },
    ),
    (
        "XPX",
        Count {
            one: "pallet",
            many: "pallets",
            zh: "托盘",
        },
    ),
    // Mass.
    (
        "KGM",
        Symbol {
            en: "kg",
            zh: "千克",
        },
    ),
    ("GRM", Symbol { en: "g", zh: "克" }),
    (
        "MGM",
        Symbol {
            en: "mg",
            zh: "毫克",
        },
    ),
    (
        "TNE",
        Count {
            one: "tonne",
            many: "tonnes",
            zh: "吨",
        },
    ),
    // Volume.
    ("LTR", Symbol { en: "L", zh: "升" }),
    (
        "MLT",
        Symbol {
            en: "mL",
            zh: "毫升",
        },
    ),
    (
        "MTQ",
        Symbol {
            en: "m³",
            zh: "立方米",
        },
    ),
    // Length and area.
    ("MTR", Symbol { en: "m", zh: "米" }),
    (
        "CMT",
        Symbol {
            en: "cm",
            zh: "厘米",
        },
    ),
    (
        "MMT",
        Symbol {
            en: "mm",
            zh: "毫米",
        },
    ),
    (
        "KMT",
        Symbol {
            en: "km",
            zh: "千米",
        },
    ),
    (
        "MTK",
        Symbol {
            en: "m²",
            zh: "平方米",
        },
    ),
    // What sensors report.
    (
        "CEL",
        Symbol {
            en: "°C", zh: "°C"
        },
    ),
    ("P1", Symbol { en: "%", zh: "%" }),
];

/// The longest unknown unit shown as is: a batch's `uom` (the contract
/// holds it to 8 characters), a measurement's or reading's unit (16).
const MAX_CODE_CHARS: usize = 8;
const MAX_MEASURE_UNIT_CHARS: usize = 16;

fn name(code: &str) -> Option<&'static Name> {
    UNITS.iter().find(|(c, _)| *c == code).map(|(_, n)| n)
}

/// An unknown code as shown: itself, cut to `max` characters.
fn raw(code: &str, max: usize) -> String {
    code.chars().take(max).collect()
}

/// `n` with thousands separators in English (`1,000`), plain in Chinese.
fn number(lang: Lang, n: u64) -> String {
    let digits = n.to_string();
    if lang == Lang::Zh {
        return digits;
    }
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A whole amount of `code`: `24 pieces`, `1 piece`, `600 kg`; `24 件`,
/// `600 千克`. An unknown code follows the number as is: `5 ZZZ`.
pub(crate) fn quantity(lang: Lang, n: u64, code: &str) -> String {
    let amount = number(lang, n);
    match (name(code), lang) {
        (Some(Count { one, .. }), Lang::En) if n == 1 => format!("{amount} {one}"),
        (Some(Count { many, .. }), Lang::En) => format!("{amount} {many}"),
        (Some(Count { zh, .. }), Lang::Zh) => format!("{amount} {zh}"),
        (Some(Symbol { en, .. }), Lang::En) => format!("{amount} {en}"),
        (Some(Symbol { zh, .. }), Lang::Zh) => format!("{amount} {zh}"),
        (None, _) => format!("{amount} {}", raw(code, MAX_CODE_CHARS)),
    }
}

/// A measured value (a sensor reading, a limit) in `code`: `4.5 °C`,
/// `2.5 kg`; counted units take their plural unless the value is exactly 1.
pub(crate) fn measure(lang: Lang, value: &str, code: &str) -> String {
    match (name(code), lang) {
        (Some(Count { one, .. }), Lang::En) if value == "1" => format!("{value} {one}"),
        (Some(Count { many, .. }), Lang::En) => format!("{value} {many}"),
        (Some(Count { zh, .. }), Lang::Zh) => format!("{value} {zh}"),
        (Some(Symbol { en, .. }), Lang::En) => format!("{value} {en}"),
        (Some(Symbol { zh, .. }), Lang::Zh) => format!("{value} {zh}"),
        (None, _) => format!("{value} {}", raw(code, MAX_MEASURE_UNIT_CHARS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_units_take_english_plurals() {
        assert_eq!(quantity(Lang::En, 24, "H87"), "24 pieces");
        assert_eq!(quantity(Lang::En, 1, "H87"), "1 piece");
        assert_eq!(quantity(Lang::En, 0, "H87"), "0 pieces");
        assert_eq!(quantity(Lang::Zh, 24, "H87"), "24 件");
        assert_eq!(quantity(Lang::Zh, 1, "H87"), "1 件");
        assert_eq!(quantity(Lang::En, 2, "XBX"), "2 boxes");
        assert_eq!(quantity(Lang::En, 3, "DZN"), "3 dozen");
        assert_eq!(quantity(Lang::En, 1, "TNE"), "1 tonne");
    }

    #[test]
    fn measures_take_symbols_and_big_numbers_separators() {
        assert_eq!(quantity(Lang::En, 600, "KGM"), "600 kg");
        assert_eq!(quantity(Lang::Zh, 600, "KGM"), "600 千克");
        assert_eq!(quantity(Lang::En, 1, "LTR"), "1 L");
        assert_eq!(quantity(Lang::Zh, 330, "MLT"), "330 毫升");
        assert_eq!(quantity(Lang::En, 1_250_000, "GRM"), "1,250,000 g");
        assert_eq!(quantity(Lang::Zh, 1_250_000, "GRM"), "1250000 克");
        assert_eq!(quantity(Lang::En, 12, "MTR"), "12 m");
        assert_eq!(quantity(Lang::En, 999, "MTR"), "999 m");
        assert_eq!(quantity(Lang::En, 1000, "MTR"), "1,000 m");
    }

    #[test]
    fn unknown_codes_are_shown_as_codes_and_bounded() {
        assert_eq!(quantity(Lang::En, 5, "ZZZ"), "5 ZZZ");
        assert_eq!(quantity(Lang::Zh, 5, "ZZZ"), "5 ZZZ");
        assert_eq!(quantity(Lang::En, 5, "ABCDEFGHIJKL"), "5 ABCDEFGH");
        assert_eq!(
            quantity(Lang::En, 5, "h87"),
            "5 h87",
            "codes are case-sensitive"
        );
    }

    #[test]
    fn sensor_values() {
        assert_eq!(measure(Lang::En, "4.5", "CEL"), "4.5 °C");
        assert_eq!(measure(Lang::Zh, "137", "CEL"), "137 °C");
        assert_eq!(measure(Lang::En, "1", "H87"), "1 piece");
        assert_eq!(measure(Lang::En, "1.5", "H87"), "1.5 pieces");
        assert_eq!(measure(Lang::En, "9.8", "g/100ml"), "9.8 g/100ml");
        assert_eq!(
            measure(Lang::En, "7", &"x".repeat(40)),
            format!("7 {}", "x".repeat(16))
        );
    }

    #[test]
    fn every_code_is_listed_once() {
        for (i, (c, _)) in UNITS.iter().enumerate() {
            assert!(
                UNITS[i + 1..].iter().all(|(d, _)| d != c),
                "{c} listed twice"
            );
        }
    }
}
