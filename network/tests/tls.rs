//! mTLS servers built with `qcss_network::tls`: real sockets on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use qcss_network::certgen::{CertAuthority, random_serial, rcgen_key};
use qcss_network::msp::unix_now;
use qcss_network::signing::SigningKey;
use qcss_network::tls::{ClientAuth, ServerTlsSettings, TlsAcceptorHandle, incoming};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::StreamExt;

struct TlsPair {
    cert: String,
    key: String,
    serial: Vec<u8>,
}

fn tls_pair(ca: &CertAuthority, name: &str, hosts: &[&str]) -> TlsPair {
    let key = SigningKey::generate().unwrap();
    let serial = random_serial().unwrap();
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    let cert = ca
        .issue_tls(name, "Org1", &hosts, &rcgen_key(&key).unwrap(), &serial, 30)
        .unwrap();
    TlsPair {
        cert,
        key: key.to_pem(),
        serial,
    }
}

/// Connects with rustls directly; Ok(peer-visible echo) if the server kept the connection.
async fn try_client(
    addr: std::net::SocketAddr,
    roots: &str,
    client: Option<&TlsPair>,
) -> Result<Vec<u8>, String> {
    let mut store = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(roots.as_bytes()) {
        store.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store);
    let mut cfg = match client {
        Some(p) => {
            let chain: Vec<_> = CertificateDer::pem_slice_iter(p.cert.as_bytes())
                .map(|c| c.unwrap())
                .collect();
            let key = PrivateKeyDer::from_pem_slice(p.key.as_bytes()).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut buf))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(buf)
}

#[tokio::test]
async fn mtls_accepts_consortium_refuses_foreign_none_and_revoked() {
    let tls_ca = CertAuthority::new_root("tlsca.org1", "Org1", 365).unwrap();
    let foreign_ca = CertAuthority::new_root("tlsca.evil", "Evil", 365).unwrap();
    let server = tls_pair(&tls_ca, "peer0", &["localhost", "127.0.0.1"]);
    let good = tls_pair(&tls_ca, "client1", &["client1"]);
    let doomed = tls_pair(&tls_ca, "client2", &["client2"]);
    let foreign = tls_pair(&foreign_ca, "mallory", &["mallory"]);

    let mut settings = ServerTlsSettings {
        cert_pem: server.cert.clone().into_bytes(),
        key_pem: server.key.clone().into_bytes(),
        client_roots_pem: vec![tls_ca.cert_pem().as_bytes().to_vec()],
        crls_pem: vec![],
        client_auth: ClientAuth::Required,
    };
    let handle = TlsAcceptorHandle::new(&settings).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut conns = incoming(listener, handle.clone());
    // Echo server that also records the client's certificate CN.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(mut s)) = conns.next().await {
            let cn = s
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first().cloned())
                .map(|c| {
                    qcss_network::CertInfo::from_der(c.as_ref())
                        .unwrap()
                        .common_name
                });
            let _ = seen_tx.send(cn);
            tokio::spawn(async move {
                let mut b = [0u8; 4];
                if s.read_exact(&mut b).await.is_ok() {
                    let _ = s.write_all(&b).await;
                }
            });
        }
    });

    let roots = tls_ca.cert_pem();
    assert_eq!(try_client(addr, roots, Some(&good)).await.unwrap(), b"ping");
    assert_eq!(seen_rx.recv().await.unwrap().as_deref(), Some("client1"));
    assert!(try_client(addr, roots, Some(&foreign)).await.is_err());
    assert!(try_client(addr, roots, None).await.is_err());
    assert!(try_client(addr, roots, Some(&doomed)).await.is_ok());

    // Revoke client2 and hot-reload: refused from the next connection on.
    let crl = tls_ca
        .crl(1, &[(doomed.serial.clone(), unix_now(), 1)], 7)
        .unwrap();
    settings.crls_pem = vec![crl.into_bytes()];
    handle.reload(&settings).unwrap();
    let err = try_client(addr, roots, Some(&doomed)).await.unwrap_err();
    assert!(err.to_lowercase().contains("revoked"), "{err}");
    assert!(try_client(addr, roots, Some(&good)).await.is_ok());
}

#[tokio::test]
async fn optional_client_auth_admits_newcomers_but_still_checks_presented_certs() {
    let tls_ca = CertAuthority::new_root("tlsca.org1", "Org1", 365).unwrap();
    let foreign_ca = CertAuthority::new_root("tlsca.evil", "Evil", 365).unwrap();
    let server = tls_pair(&tls_ca, "ca0", &["localhost"]);
    let foreign = tls_pair(&foreign_ca, "mallory", &["mallory"]);
    let handle = TlsAcceptorHandle::new(&ServerTlsSettings {
        cert_pem: server.cert.into_bytes(),
        key_pem: server.key.into_bytes(),
        client_roots_pem: vec![tls_ca.cert_pem().as_bytes().to_vec()],
        crls_pem: vec![],
        client_auth: ClientAuth::Optional,
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut conns = incoming(listener, handle);
    tokio::spawn(async move {
        while let Some(Ok(mut s)) = conns.next().await {
            tokio::spawn(async move {
                let mut b = [0u8; 4];
                if s.read_exact(&mut b).await.is_ok() {
                    let _ = s.write_all(&b).await;
                }
            });
        }
    });
    assert!(try_client(addr, tls_ca.cert_pem(), None).await.is_ok());
    assert!(
        try_client(addr, tls_ca.cert_pem(), Some(&foreign))
            .await
            .is_err()
    );
    // A server name not in the SAN is refused by the client.
    assert!(
        try_client(addr, foreign_ca.cert_pem(), None).await.is_err(),
        "client must refuse a server from an unknown root"
    );
}
