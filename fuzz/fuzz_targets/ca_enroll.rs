//! An enrollment request as the CA's gRPC service receives it, with the
//! bootstrap admin's real name and secret put in so that every input gets
//! past the secret check to what an enrolled client controls: the CSR (PEM,
//! PKCS#10, its key and signature), the profile and the TLS hosts.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use qcss_ca::{Authority, CaConfig};
use qcss_proto::qcss::ca::EnrollRequest;

struct Ca {
    auth: Authority,
    secret: String,
    _dir: tempfile::TempDir,
}

fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = CaConfig {
            home: dir.path().join("ca"),
            ..Default::default()
        };
        let (auth, secret) = Authority::open(cfg).expect("CA opens");
        Ca {
            auth,
            secret: secret.expect("bootstrap secret"),
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let c = ca();
    if let Ok(mut req) = EnrollRequest::decode(data) {
        req.name = "admin".into();
        req.secret = c.secret.clone();
        let _ = c.auth.enroll(&req);
    }
});
