//! IoT state channels: a device-gateway frame, a reading, a co-signed
//! state and channel parameters, as a gateway or the contract reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qcss_iot::params::ChannelParams;
use qcss_iot::reading::Reading;
use qcss_iot::state::State;
use qcss_iot::wire::Message;

fuzz_target!(|data: &[u8]| {
    let _ = Message::decode(data);
    let _ = Reading::decode(data);
    let _ = State::decode(data);
    let _ = ChannelParams::decode(data);
});
