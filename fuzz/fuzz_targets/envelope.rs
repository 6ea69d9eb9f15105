//! A Fabric envelope as every gRPC entry point receives it (Broadcast, the
//! Gateway's Submit, Deliver's seek request): protobuf, then every layer
//! opened (payload, header, channel and signature headers, creator).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use qcss_proto::common::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = Envelope::decode(data) {
        let _ = qcss_network::envelope::decode(&env);
    }
    // The X.509 attribute extension (certificate attributes a contract sees).
    let _ = qcss_network::identity::decode_attributes(data);
});
