//! Identifiers as GS1 spells them, parsed rather than validated: GTIN-14,
//! lots, batch ids (`{gtin}/{lot}`), unit ids (`{gtin}/{lot}/{serial}`),
//! SSCCs, unit codes (GS1 Digital Link + AI 8030 signature), SHA-256 hex,
//! MSP ids. The unit-code rules mirror `chaincode/runtime/src/unit_code.rs`.

use qcss_chaincode_sdk::Error;

/// Prefix of every signed unit-code message (same as the runtime's).
pub const SIGNATURE_DOMAIN: &str = "qcss-unit-code-v1:";

/// A batch: a GTIN and a lot. Displayed as `{gtin}/{lot}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchId {
    pub gtin: String,
    pub lot: String,
}

impl BatchId {
    pub fn new(gtin: &str, lot: &str) -> Result<Self, Error> {
        check_gtin(gtin)?;
        check_lot(lot)?;
        Ok(BatchId {
            gtin: gtin.to_owned(),
            lot: lot.to_owned(),
        })
    }

    pub fn parse(text: &str) -> Result<Self, Error> {
        match text.split_once('/') {
            Some((gtin, lot)) if !lot.contains('/') => Self::new(gtin, lot),
            _ => Err(Error::new(format!(
                "batch id {text:?} must be {{GTIN-14}}/{{lot}}"
            ))),
        }
    }

    pub fn id(&self) -> String {
        format!("{}/{}", self.gtin, self.lot)
    }
}

/// A unit: a batch and a serial (`1..=quantity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitId {
    pub batch: BatchId,
    pub serial: u64,
}

impl UnitId {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = || {
            Error::new(format!(
                "unit id {text:?} must be {{GTIN-14}}/{{lot}}/{{serial}}"
            ))
        };
        let (batch, serial) = text.rsplit_once('/').ok_or_else(bad)?;
        Ok(UnitId {
            batch: BatchId::parse(batch).map_err(|_| bad())?,
            serial: parse_serial(serial)?,
        })
    }

    pub fn id(&self) -> String {
        format!("{}/{}", self.batch.id(), self.serial)
    }
}

/// What a trace or event names: a batch, a unit, or (trace only) a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Batch(BatchId),
    Unit(UnitId),
}

impl Target {
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text.matches('/').count() {
            1 => Ok(Target::Batch(BatchId::parse(text)?)),
            2 => Ok(Target::Unit(UnitId::parse(text)?)),
            _ => Err(Error::new(format!(
                "{text:?} is neither a batch id {{GTIN-14}}/{{lot}} nor a unit id {{GTIN-14}}/{{lot}}/{{serial}}"
            ))),
        }
    }

    pub fn batch(&self) -> &BatchId {
        match self {
            Target::Batch(b) => b,
            Target::Unit(u) => &u.batch,
        }
    }

    pub fn serial(&self) -> Option<u64> {
        match self {
            Target::Batch(_) => None,
            Target::Unit(u) => Some(u.serial),
        }
    }
}

/// A parsed unit code `BASE/01/{gtin}/10/{lot}/21/{serial}?8030={sig}`.
#[derive(Debug, Clone)]
pub struct UnitCode {
    pub unit: UnitId,
    pub signature: Vec<u8>,
}

impl UnitCode {
    pub fn parse(uri: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::new(format!("malformed unit code {uri:?}: {why}"));
        let (path, query) = uri
            .split_once('?')
            .ok_or_else(|| bad("no signature (query `?8030=` missing)"))?;
        let sig = query
            .strip_prefix("8030=")
            .ok_or_else(|| bad("the query must be exactly `8030=<signature>`"))?;
        let signature = base64url_decode(sig).ok_or_else(|| bad("signature is not base64url"))?;
        if signature.len() != 64 {
            return Err(bad("signature must be 64 bytes"));
        }
        let parts: Vec<&str> = path.rsplitn(7, '/').collect();
        let [serial, "21", lot, "10", gtin, "01", base] = parts[..] else {
            return Err(bad("expected BASE/01/{GTIN}/10/{lot}/21/{serial}"));
        };
        if base.is_empty() {
            return Err(bad("expected BASE/01/{GTIN}/10/{lot}/21/{serial}"));
        }
        let batch = BatchId::new(gtin, lot).map_err(|e| bad(e.message()))?;
        let serial = parse_serial(serial).map_err(|e| bad(e.message()))?;
        Ok(UnitCode {
            unit: UnitId { batch, serial },
            signature,
        })
    }

    /// The bytes the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        let b = &self.unit.batch;
        format!(
            "{SIGNATURE_DOMAIN}/01/{}/10/{}/21/{}",
            b.gtin, b.lot, self.unit.serial
        )
        .into_bytes()
    }
}

/// GTIN-14: 14 digits with a valid GS1 mod-10 check digit.
pub fn check_gtin(gtin: &str) -> Result<(), Error> {
    check_gs1_number(gtin, 14, "GTIN")
}

/// SSCC: 18 digits with a valid GS1 mod-10 check digit.
pub fn check_sscc(sscc: &str) -> Result<(), Error> {
    check_gs1_number(sscc, 18, "SSCC")
}

fn check_gs1_number(text: &str, len: usize, what: &str) -> Result<(), Error> {
    if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::new(format!("{what} {text:?} must be {len} digits")));
    }
    let digits = text.as_bytes();
    let sum: u32 = digits[..len - 1]
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    if (10 - sum % 10) % 10 != u32::from(digits[len - 1] - b'0') {
        return Err(Error::new(format!(
            "{what} {text:?} has a wrong check digit"
        )));
    }
    Ok(())
}

/// A lot: 1-20 characters of `A-Z a-z 0-9 . _ -`.
pub fn check_lot(lot: &str) -> Result<(), Error> {
    let ok = !lot.is_empty()
        && lot.len() <= 20
        && lot
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!(
            "lot {lot:?} must be 1-20 characters of A-Z a-z 0-9 . _ -"
        )))
    }
}

fn parse_serial(serial: &str) -> Result<u64, Error> {
    let canonical = !serial.is_empty()
        && serial.len() <= 20
        && serial.bytes().all(|b| b.is_ascii_digit())
        && !serial.starts_with('0');
    match serial.parse::<u64>() {
        Ok(n) if canonical => Ok(n),
        _ => Err(Error::new(format!(
            "serial {serial:?} must be a decimal number from 1, without leading zeros"
        ))),
    }
}

/// A SHA-256 digest in lowercase hex.
pub fn check_sha256(field: &str, hex: &str) -> Result<(), Error> {
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{field} must be a SHA-256 digest: 64 lowercase hex digits, got {hex:?}"
        )))
    }
}

/// An MSP id as it may appear in a policy principal.
pub fn check_msp(msp: &str) -> Result<(), Error> {
    let ok = !msp.is_empty()
        && msp.len() <= 64
        && msp
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!(
            "organisation {msp:?} is not an MSP id (A-Z a-z 0-9 . _ -)"
        )))
    }
}

/// Fails if a required text field is empty or too long.
pub fn check_text(field: &str, text: &str, max: usize) -> Result<(), Error> {
    if text.trim().is_empty() {
        return Err(Error::new(format!("{field} is required")));
    }
    if text.len() > max {
        return Err(Error::new(format!("{field} is longer than {max} bytes")));
    }
    Ok(())
}

/// A calendar date `YYYY-MM-DD`.
pub fn check_date(field: &str, date: &str) -> Result<(), Error> {
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let shaped = b.len() == 10 && b[4] == b'-' && b[7] == b'-' && digits(0..4);
    let ok = shaped
        && digits(5..7)
        && digits(8..10)
        && matches!(
            &date[5..7],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
        && ("01"..="31").contains(&&date[8..10]);
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{field} {date:?} must be a date YYYY-MM-DD"
        )))
    }
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding; `None` if malformed or non-canonical.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = B64URL.iter().position(|x| x == c)? as u32;
            n |= v << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        if n & ((1 << (24 - 8 * bytes)) - 1) != 0 {
            return None;
        }
        out.extend((0..bytes).map(|i| (n >> (16 - 8 * i)) as u8));
    }
    Some(out)
}
