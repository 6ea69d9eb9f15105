//! Fabric-style composite keys: `U+0000 objectType U+0000 attr1 U+0000 …
//! attrN U+0000`. All composite keys sort together (they start with U+0000,
//! which simple keys may not) and a prefix of attributes selects a range.

use crate::Error;

const SEPARATOR: char = '\u{0}';
/// Fabric's `maxUnicodeRuneValue`: appended to a partial key to end its range.
const MAX_RUNE: char = '\u{10FFFF}';

/// Builds a composite key from an object type and attributes. Neither may
/// contain U+0000 or U+10FFFF, and the object type may not be empty.
pub fn create_composite_key(object_type: &str, attributes: &[&str]) -> Result<String, Error> {
    check_part(object_type, "object type")?;
    if object_type.is_empty() {
        return Err(Error::new("composite key: the object type is empty"));
    }
    let mut key = String::with_capacity(
        2 + object_type.len() + attributes.iter().map(|a| a.len() + 1).sum::<usize>(),
    );
    key.push(SEPARATOR);
    key.push_str(object_type);
    key.push(SEPARATOR);
    for attr in attributes {
        check_part(attr, "attribute")?;
        key.push_str(attr);
        key.push(SEPARATOR);
    }
    Ok(key)
}

/// Splits a composite key into its object type and attributes.
pub fn split_composite_key(key: &str) -> Result<(String, Vec<String>), Error> {
    let body = key
        .strip_prefix(SEPARATOR)
        .and_then(|k| k.strip_suffix(SEPARATOR))
        .ok_or_else(|| Error::new(format!("not a composite key: {key:?}")))?;
    let mut parts = body.split(SEPARATOR);
    let object_type = parts.next().unwrap_or_default().to_owned();
    if object_type.is_empty() {
        return Err(Error::new(format!("not a composite key: {key:?}")));
    }
    Ok((object_type, parts.map(str::to_owned).collect()))
}

/// The `[start, end)` range holding every composite key of `object_type`
/// whose attributes start with `attributes`.
pub fn partial_key_range(
    object_type: &str,
    attributes: &[&str],
) -> Result<(String, String), Error> {
    let start = create_composite_key(object_type, attributes)?;
    let mut end = start.clone();
    end.push(MAX_RUNE);
    Ok((start, end))
}

fn check_part(part: &str, what: &str) -> Result<(), Error> {
    if part.contains([SEPARATOR, MAX_RUNE]) {
        return Err(Error::new(format!(
            "composite key: {what} {part:?} contains U+0000 or U+10FFFF"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_fabric() {
        assert_eq!(
            create_composite_key("asset", &["alice", "7"]).unwrap(),
            "\u{0}asset\u{0}alice\u{0}7\u{0}"
        );
        assert_eq!(
            create_composite_key("asset", &[]).unwrap(),
            "\u{0}asset\u{0}"
        );
    }

    #[test]
    fn split_round_trips() {
        let key = create_composite_key("asset", &["alice", "", "x y"]).unwrap();
        assert_eq!(
            split_composite_key(&key).unwrap(),
            (
                "asset".to_owned(),
                vec!["alice".to_owned(), String::new(), "x y".to_owned()]
            )
        );
        let bare = create_composite_key("t", &[]).unwrap();
        assert_eq!(
            split_composite_key(&bare).unwrap(),
            ("t".to_owned(), vec![])
        );
    }

    #[test]
    fn bad_parts_and_keys_are_refused() {
        assert!(create_composite_key("", &["a"]).is_err());
        assert!(create_composite_key("a\u{0}b", &[]).is_err());
        assert!(create_composite_key("a", &["x\u{10FFFF}"]).is_err());
        assert!(split_composite_key("plain").is_err());
        assert!(split_composite_key("\u{0}\u{0}").is_err());
        assert!(split_composite_key("\u{0}asset").is_err());
    }

    #[test]
    fn partial_range_covers_exactly_the_prefix() {
        let (start, end) = partial_key_range("asset", &["alice"]).unwrap();
        let inside = create_composite_key("asset", &["alice", "zzz"]).unwrap();
        let other = create_composite_key("asset", &["alicia", "1"]).unwrap();
        let other_type = create_composite_key("assets", &["alice"]).unwrap();
        assert!(start <= inside && inside < end);
        assert!(!(start <= other && other < end));
        assert!(!(start <= other_type && other_type < end));
    }
}
