//! mTLS with certificates from a real CA process: a tonic server built with
//! `qcss_network::tls` accepts consortium clients (and its handler sees who
//! they are), and refuses a revoked client, a foreign one and one with none.

use std::path::Path;

use qcss_network::tls::{
    ClientAuth, ServerTlsSettings, TlsAcceptorHandle, client_tls, connect, incoming,
    peer_certificate,
};
use qcss_proto::qcss::ca as pb;
use qcss_proto::qcss::ca::certificate_authority_client::CertificateAuthorityClient;
use qcss_proto::qcss::ca::certificate_authority_server::{
    CertificateAuthority, CertificateAuthorityServer,
};
use qcss_tests::cluster::enroll;
use qcss_tests::{CaNode, qcss_ok};
use tonic::{Request, Response, Status};

/// A service whose `Info` answers with the caller's TLS certificate CN.
struct WhoAmI;

#[tonic::async_trait]
impl CertificateAuthority for WhoAmI {
    async fn info(
        &self,
        req: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        let cn = peer_certificate(&req)
            .map(|c| c.common_name)
            .unwrap_or_default();
        Ok(Response::new(pb::InfoResponse {
            ca_name: cn,
            ..Default::default()
        }))
    }
    async fn register(
        &self,
        _: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn enroll(
        &self,
        _: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn reenroll(
        &self,
        _: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn revoke(
        &self,
        _: Request<pb::SignedRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
    async fn get_crl(
        &self,
        _: Request<pb::GetCrlRequest>,
    ) -> Result<Response<pb::CrlResponse>, Status> {
        Err(Status::unimplemented("test"))
    }
}

async fn who(addr: &str, root: &[u8], dir: Option<&Path>) -> Result<String, String> {
    let files = dir.map(|d| {
        (
            std::fs::read(d.join("tls-cert.pem")).unwrap(),
            std::fs::read(d.join("tls-key.pem")).unwrap(),
        )
    });
    let tls = client_tls(
        &[root.to_vec()],
        files.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
        "localhost",
    );
    let ch = connect(addr, tls)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut c = CertificateAuthorityClient::new(ch);
    c.info(pb::InfoRequest {})
        .await
        .map(|r| r.into_inner().ca_name)
        .map_err(|e| e.to_string())
}

#[test]
fn mtls_with_ca_issued_certificates_and_a_revocation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ca = CaNode::start(&dir.join("ca"), 0);
    let other = CaNode::start(&dir.join("other-ca"), 0);
    let conn = ca.conn_args();
    let s = ca.bootstrap_secret.clone().unwrap();
    let mut a = vec![
        "ca", "enroll", "--name", "admin", "--secret", &s, "--out", "admin",
    ];
    a.extend(conn.iter().map(String::as_str));
    qcss_ok(dir, &a);
    for n in ["server0", "good", "doomed"] {
        enroll(dir, &conn, n, "client");
    }
    // A client from another consortium's CA.
    let oconn = other.conn_args();
    let os = other.bootstrap_secret.clone().unwrap();
    let mut a = vec![
        "ca",
        "enroll",
        "--name",
        "admin",
        "--secret",
        &os,
        "--out",
        "other-admin",
    ];
    a.extend(oconn.iter().map(String::as_str));
    qcss_ok(dir, &a);
    let mut a = vec![
        "ca",
        "register",
        "--identity",
        "other-admin",
        "--name",
        "mallory",
        "--role",
        "client",
    ];
    a.extend(oconn.iter().map(String::as_str));
    let ms = qcss_ok(dir, &a).trim().to_string();
    let mut e = vec![
        "ca",
        "enroll",
        "--name",
        "mallory",
        "--secret",
        &ms,
        "--out",
        "mallory",
        "--tls-hosts",
        "localhost",
    ];
    e.extend(oconn.iter().map(String::as_str));
    qcss_ok(dir, &e);

    // Revoke "doomed" and fetch the TLS CRL.
    let mut r = vec!["ca", "revoke", "--identity", "admin", "--name", "doomed"];
    r.extend(conn.iter().map(String::as_str));
    qcss_ok(dir, &r);
    let mut c = vec!["ca", "crl", "--out", "crl.pem", "--tls-out", "tls-crl.pem"];
    c.extend(conn.iter().map(String::as_str));
    qcss_ok(dir, &c);

    let root = std::fs::read(ca.tls_root()).unwrap();
    let settings = ServerTlsSettings {
        cert_pem: std::fs::read(dir.join("server0/tls-cert.pem")).unwrap(),
        key_pem: std::fs::read(dir.join("server0/tls-key.pem")).unwrap(),
        client_roots_pem: vec![root.clone()],
        crls_pem: vec![std::fs::read(dir.join("tls-crl.pem")).unwrap()],
        client_auth: ClientAuth::Required,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = TlsAcceptorHandle::new(&settings).unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(CertificateAuthorityServer::new(WhoAmI))
                .serve_with_incoming(incoming(listener, handle)),
        );
        assert_eq!(
            who(&addr, &root, Some(&dir.join("good"))).await.unwrap(),
            "good"
        );
        let e = who(&addr, &root, Some(&dir.join("doomed")))
            .await
            .unwrap_err();
        assert!(!e.is_empty());
        assert!(who(&addr, &root, Some(&dir.join("mallory"))).await.is_err());
        assert!(who(&addr, &root, None).await.is_err());
        // The good client still works after the refusals.
        assert_eq!(
            who(&addr, &root, Some(&dir.join("good"))).await.unwrap(),
            "good"
        );
    });
}
