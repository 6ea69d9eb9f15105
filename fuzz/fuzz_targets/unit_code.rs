//! A scanned unit code (GS1 Digital Link URI with its signature), as the
//! verify page, `verify_code` and the offline checker parse it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qcss_chaincode::unit_code::UnitCode;

fuzz_target!(|data: &[u8]| {
    if let Ok(uri) = std::str::from_utf8(data) {
        let _ = UnitCode::parse(uri);
    }
});
