//! A chaincode package as `install` receives it from an org admin.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qcss_chaincode::package::ChaincodePackage;

fuzz_target!(|data: &[u8]| {
    let _ = ChaincodePackage::from_bytes(data, 4 << 20);
});
