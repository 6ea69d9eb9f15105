//! An MDSS manifest as a peer receives it from another org (`Manifest`,
//! repair) or a client (`Put`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use qcss_mdss::Limits;
use qcss_mdss::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    let _ = Manifest::decode(data, &Limits::default());
});
