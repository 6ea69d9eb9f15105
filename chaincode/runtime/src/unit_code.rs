//! One item, one code: issuing and checking QCSS unit codes offline.
//!
//! A unit code is a GS1 Digital Link URI naming one item, with an Ed25519
//! signature by the batch's code key in the query string under GS1's
//! digital-signature AI `8030` (base64url, no padding):
//!
//! ```text
//! https://q.example.com/01/06901234567892/10/LJ2025A/21/42?8030=<86 chars>
//! ```
//!
//! The signature covers [`signed_message`]: a fixed domain-separation tag and
//! the URI's path from `/01/` on (GTIN, lot, serial), not the resolver
//! domain, so a brand may move its resolver without reissuing codes. No
//! other query parameter is allowed (an unsigned attribute could be altered
//! unnoticed). The traceability contract (`chaincode/contracts/traceability`)
//! parses and checks codes by the same rules; `tests/traceability.rs` checks
//! that codes issued here verify there. Serials run from 1 to the batch
//! quantity: guessing is prevented by the signature, not by random serials.
//!
//! Nothing here touches the ledger: [`issue_codes`] needs only the batch's
//! private key, [`verify_code`] only its public key.

use std::ops::RangeInclusive;

use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

/// The GS1 application identifier of a digital signature, used as the query
/// parameter carrying the code's signature.
pub const SIGNATURE_AI: &str = "8030";
/// Prefix of every signed message (domain separation from other uses of a key).
pub const SIGNATURE_DOMAIN: &str = "qcss-unit-code-v1:";
/// The longest lot (GS1 AI 10 allows 20 characters).
pub const MAX_LOT_LEN: usize = 20;
/// The longest serial (GS1 AI 21 allows 20 characters).
pub const MAX_SERIAL_LEN: usize = 20;

/// Why a unit code could not be issued or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitCodeError {
    /// The URI is not `BASE/01/{GTIN}/10/{lot}/21/{serial}?8030={sig}`.
    #[error("malformed unit code {uri:?}: {reason}")]
    Malformed {
        /// The code concerned.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An input to issuing (base, GTIN, lot, range) is invalid.
    #[error("cannot issue codes: {0}")]
    InvalidInput(String),
    /// The batch key is not a usable Ed25519 key.
    #[error("invalid batch key: {0}")]
    InvalidKey(String),
    /// The signature does not match the code's GTIN, lot and serial under
    /// this public key: forged, altered, or issued for another batch.
    #[error("unit code {uri:?}: signature is not valid for this batch key")]
    BadSignature {
        /// The code concerned.
        uri: String,
    },
}

/// A parsed unit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCode {
    /// Everything before `/01/` (e.g. `https://q.example.com`).
    pub base: String,
    /// GTIN-14.
    pub gtin: String,
    /// The lot (batch) number.
    pub lot: String,
    /// The serial, `1..=quantity` in decimal.
    pub serial: u64,
    /// The Ed25519 signature.
    pub signature: [u8; 64],
}

impl UnitCode {
    /// Parses a code's syntax (no signature check).
    pub fn parse(uri: &str) -> Result<Self, UnitCodeError> {
        let bad = |reason: &str| UnitCodeError::Malformed {
            uri: uri.to_owned(),
            reason: reason.to_owned(),
        };
        let (path, query) = uri
            .split_once('?')
            .ok_or_else(|| bad("no signature (query `?8030=` missing)"))?;
        let sig = query
            .strip_prefix("8030=")
            .ok_or_else(|| bad("the query must be exactly `8030=<signature>`"))?;
        let sig = base64url_decode(sig).ok_or_else(|| bad("signature is not base64url"))?;
        let signature: [u8; 64] = sig
            .try_into()
            .map_err(|_| bad("signature must be 64 bytes"))?;
        let parts: Vec<&str> = path.rsplitn(7, '/').collect();
        let [serial, ai21, lot, ai10, gtin, ai01, base] = parts[..] else {
            return Err(bad("expected BASE/01/{GTIN}/10/{lot}/21/{serial}"));
        };
        if (ai01, ai10, ai21) != ("01", "10", "21") || base.is_empty() {
            return Err(bad("expected BASE/01/{GTIN}/10/{lot}/21/{serial}"));
        }
        check_gtin(gtin).map_err(|e| bad(&e))?;
        check_lot(lot).map_err(|e| bad(&e))?;
        let serial = parse_serial(serial).map_err(|e| bad(&e))?;
        Ok(UnitCode {
            base: base.to_owned(),
            gtin: gtin.to_owned(),
            lot: lot.to_owned(),
            serial,
            signature,
        })
    }

    /// The code as a URI.
    pub fn to_uri(&self) -> String {
        format!(
            "{}{}?{SIGNATURE_AI}={}",
            self.base,
            element_path(&self.gtin, &self.lot, self.serial),
            base64url_encode(&self.signature)
        )
    }
}

/// The bytes a unit code's signature covers.
pub fn signed_message(gtin: &str, lot: &str, serial: u64) -> Vec<u8> {
    format!("{SIGNATURE_DOMAIN}{}", element_path(gtin, lot, serial)).into_bytes()
}

fn element_path(gtin: &str, lot: &str, serial: u64) -> String {
    format!("/01/{gtin}/10/{lot}/21/{serial}")
}

/// A batch's code key: an Ed25519 key pair, kept by the batch owner. Its
/// public half is registered on-chain for the batch.
pub struct BatchKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for BatchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchKey")
            .field("public_key", &self.public_key_b64url())
            .finish()
    }
}

impl BatchKey {
    /// Generates a key; returns it and its PKCS#8 document (to store, 0600).
    pub fn generate() -> Result<(Self, Vec<u8>), UnitCodeError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| UnitCodeError::InvalidKey("random number generator failed".into()))?;
        let key = Self::from_pkcs8(doc.as_ref())?;
        Ok((key, doc.as_ref().to_vec()))
    }

    /// Loads a PKCS#8 Ed25519 key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, UnitCodeError> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(|pair| BatchKey { pair })
            .map_err(|e| UnitCodeError::InvalidKey(e.to_string()))
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The public key as registered on-chain: base64url, 43 characters.
    pub fn public_key_b64url(&self) -> String {
        base64url_encode(self.public_key())
    }

    /// Signs one code.
    pub fn sign(&self, base: &str, gtin: &str, lot: &str, serial: u64) -> UnitCode {
        let sig = self.pair.sign(&signed_message(gtin, lot, serial));
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig.as_ref());
        UnitCode {
            base: base.to_owned(),
            gtin: gtin.to_owned(),
            lot: lot.to_owned(),
            serial,
            signature,
        }
    }
}

/// Issues the codes of `serials` (e.g. `1..=10_000`) for batch `gtin`/`lot`
/// under resolver `base` (e.g. `https://q.example.com`, no trailing slash).
/// Signatures are deterministic: issuing again gives the same codes. For
/// millions of codes, split the range across threads (`BatchKey` is `Sync`).
pub fn issue_codes(
    key: &BatchKey,
    base: &str,
    gtin: &str,
    lot: &str,
    serials: RangeInclusive<u64>,
) -> Result<Vec<String>, UnitCodeError> {
    let base = base.strip_suffix('/').unwrap_or(base);
    if base.is_empty() || base.contains(['?', '#']) || base.contains(char::is_whitespace) {
        return Err(UnitCodeError::InvalidInput(format!(
            "base {base:?} must be a non-empty URI prefix without `?`, `#` or spaces"
        )));
    }
    check_gtin(gtin).map_err(UnitCodeError::InvalidInput)?;
    check_lot(lot).map_err(UnitCodeError::InvalidInput)?;
    if *serials.start() == 0 {
        return Err(UnitCodeError::InvalidInput("serials start at 1".into()));
    }
    Ok(serials
        .map(|serial| key.sign(base, gtin, lot, serial).to_uri())
        .collect())
}

/// Verifies `uri` against a batch's public key (32 bytes) offline. The
/// serial's bound (at most the batch quantity) and the batch's status are
/// on-chain facts: the contract's `verify_code` checks those.
pub fn verify_code(public_key: &[u8], uri: &str) -> Result<UnitCode, UnitCodeError> {
    let code = UnitCode::parse(uri)?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(
            &signed_message(&code.gtin, &code.lot, code.serial),
            &code.signature,
        )
        .map_err(|_| UnitCodeError::BadSignature {
            uri: uri.to_owned(),
        })?;
    Ok(code)
}

/// The GS1 mod-10 check digit of `body`, the digits it follows (weights 3
/// and 1 from the right; a non-digit counts as 0).
pub fn gs1_check_digit(body: &str) -> u32 {
    let sum: u32 = body
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).unwrap_or(0) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    (10 - sum % 10) % 10
}

/// `body` with its GS1 check digit appended (a GTIN-14 from 13 digits).
pub fn with_check_digit(body: &str) -> String {
    format!("{body}{}", gs1_check_digit(body))
}

/// Checks a GTIN-14: 14 digits with a valid GS1 mod-10 check digit.
pub fn check_gtin(gtin: &str) -> Result<(), String> {
    if gtin.len() != 14 || !gtin.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("GTIN {gtin:?} must be 14 digits"));
    }
    if gs1_check_digit(&gtin[..13]) != u32::from(gtin.as_bytes()[13] - b'0') {
        return Err(format!("GTIN {gtin:?} has a wrong check digit"));
    }
    Ok(())
}

/// Checks a lot: 1–20 characters of `A-Z a-z 0-9 . _ -` (the part of GS1's
/// character set that needs no escaping in a URI path).
pub fn check_lot(lot: &str) -> Result<(), String> {
    let ok = !lot.is_empty()
        && lot.len() <= MAX_LOT_LEN
        && lot
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "lot {lot:?} must be 1-20 characters of A-Z a-z 0-9 . _ -"
        ))
    }
}

fn parse_serial(serial: &str) -> Result<u64, String> {
    let canonical = !serial.is_empty()
        && serial.len() <= MAX_SERIAL_LEN
        && serial.bytes().all(|b| b.is_ascii_digit())
        && !serial.starts_with('0');
    match serial.parse::<u64>() {
        Ok(n) if canonical => Ok(n),
        _ => Err(format!(
            "serial {serial:?} must be a decimal number from 1, without leading zeros"
        )),
    }
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 4648 §5).
pub fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64URL[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Decodes base64url without padding; `None` if malformed or non-canonical
/// (stray bits in the last character), so each byte string has one encoding.
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
        // Bits below the last whole byte must be zero.
        if n & ((1 << (24 - 8 * bytes)) - 1) != 0 {
            return None;
        }
        out.extend((0..bytes).map(|i| (n >> (16 - 8 * i)) as u8));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GTIN: &str = "06901234567892";

    #[test]
    fn base64url_round_trips_and_is_canonical() {
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base64url_encode(&bytes);
            assert_eq!(base64url_decode(&text).unwrap(), bytes, "{len}");
        }
        assert_eq!(base64url_encode(b"\xfb\xff"), "-_8");
        assert_eq!(base64url_decode("-_9"), None); // stray low bits
        assert_eq!(base64url_decode("a"), None);
        assert_eq!(base64url_decode("ab=c"), None);
    }

    #[test]
    fn gtin_check_digit() {
        assert!(check_gtin(GTIN).is_ok());
        assert!(check_gtin("06901234567891").is_err());
        assert!(check_gtin("6901234567892").is_err());
        assert_eq!(with_check_digit("0400638133393"), "04006381333931");
        assert!(check_gtin(&with_check_digit("0690123456001")).is_ok());
    }

    #[test]
    fn issued_codes_verify_and_alterations_do_not() {
        let (key, pkcs8) = BatchKey::generate().unwrap();
        let codes = issue_codes(&key, "https://q.example.com/", GTIN, "LJ-1", 1..=3).unwrap();
        assert_eq!(codes.len(), 3);
        assert!(codes[0].starts_with("https://q.example.com/01/06901234567892/10/LJ-1/21/1?8030="));
        assert!(codes[0].len() < 160, "{}", codes[0].len());
        let code = verify_code(key.public_key(), &codes[1]).unwrap();
        assert_eq!((code.serial, code.lot.as_str()), (2, "LJ-1"));
        assert_eq!(code.to_uri(), codes[1]);
        // Deterministic: the same key issues the same codes.
        let again = BatchKey::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(
            issue_codes(&again, "https://q.example.com", GTIN, "LJ-1", 2..=2).unwrap()[0],
            codes[1]
        );

        let altered = codes[1].replace("/21/2?", "/21/3?");
        assert!(matches!(
            verify_code(key.public_key(), &altered),
            Err(UnitCodeError::BadSignature { .. })
        ));
        let (other, _) = BatchKey::generate().unwrap();
        assert!(verify_code(other.public_key(), &codes[1]).is_err());
        // The resolver domain is not signed.
        let moved = codes[1].replace("q.example.com", "trace.example.org");
        assert!(verify_code(key.public_key(), &moved).is_ok());
    }

    #[test]
    fn malformed_codes_are_refused() {
        let (key, _) = BatchKey::generate().unwrap();
        let good = key.sign("https://x", GTIN, "L1", 7).to_uri();
        let bad = [
            good.replace("?8030=", "?8031="),
            good.replace("/21/7", "/21/07"),
            good.replace("/10/", "/11/"),
            format!("{good}&17=251231"),
            good.split('?').next().unwrap().to_owned(),
            good.replace("https://x", ""),
            good.replace(GTIN, "06901234567891"),
        ];
        for uri in bad {
            assert!(
                matches!(UnitCode::parse(&uri), Err(UnitCodeError::Malformed { .. })),
                "{uri}"
            );
        }
        assert!(issue_codes(&key, "https://x", GTIN, "L 1", 1..=1).is_err());
        assert!(issue_codes(&key, "https://x", GTIN, "L1", 0..=1).is_err());
    }
}
