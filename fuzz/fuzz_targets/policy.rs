//! Endorsement and channel policy text (chaincode definitions, channel
//! configuration, key-level policies): parse, and what parses prints back
//! to text that parses to the same policy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qcss_network::policy::{Policy, SignaturePolicy};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = SignaturePolicy::parse(text) {
        let again = SignaturePolicy::parse(&p.to_string()).expect("printed policy parses");
        assert_eq!(again, p, "round trip of {text:?}");
    }
    let _ = Policy::parse(text);
});
