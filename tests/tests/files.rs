//! MDSS end to end: three orgs' peers as real processes, `qcss files` over
//! real mutual TLS, stores on real disk. A multi-chunk file is put at
//! org1's peer, read back, copied to org2's peer by `repair --from-org`
//! (org2's peer fetches it from org1's over mTLS), damaged on org2's disk
//! (a flipped byte, a truncation) and refused, then repaired; non-members
//! and callers without a client certificate are refused; oversize uploads
//! and uploads past the org's quota are refused.

use std::path::{Path, PathBuf};

use qcss_network::certgen::{CertAuthority, random_serial, rcgen_key};
use qcss_network::signing::SigningKey;
use qcss_proto::qcss::mdss::files_client::FilesClient;
use qcss_proto::qcss::mdss::put_request::Part;
use qcss_proto::qcss::mdss::{FileRequest, PutMeta, PutRequest};
use qcss_tests::peers::{CHANNEL, Network, NetworkOptions};

/// 64 KiB chunks, files up to 800 000 bytes, 1 000 000 bytes per org.
const FILES: &str =
    "\n[files]\nchunk_bytes = 65536\nmax_file_bytes = 800000\nquota_bytes_per_org = 1000000\n";

/// `n` bytes that differ from chunk to chunk.
fn content(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

/// `GET path` on `addr` with an optional `Range`: (head, body).
fn http(addr: &str, path: &str, range: Option<&str>) -> (String, Vec<u8>) {
    let range = range.map(|r| format!("Range: {r}\r\n")).unwrap_or_default();
    http_with(addr, path, &range)
}

/// A GET with `headers` (whole lines, each ending in CRLF).
fn http_with(addr: &str, path: &str, headers: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("web port");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    (
        String::from_utf8_lossy(&all[..split]).into_owned(),
        all[split + 4..].to_vec(),
    )
}

fn chunk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir).expect("chunks dir") {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

#[test]
fn put_get_repair_across_orgs_over_mtls() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut net = Network::start(
        d.path(),
        NetworkOptions {
            example_policy: None,
            ..NetworkOptions::default()
        },
    );
    // Restart the peers with small limits, to test them with small files.
    let web = format!("127.0.0.1:{}", qcss_tests::free_port());
    for n in 1..=2 {
        net.kill_peer(n);
        let p = d.path().join(format!("peer{n}.toml"));
        let mut toml = std::fs::read_to_string(&p).unwrap();
        toml.push_str(FILES);
        if n == 1 {
            toml.push_str(&format!(
                "\n[web]\nlisten = \"{web}\"\nidentity_dir = \"org1/client1\"\n"
            ));
        }
        std::fs::write(&p, toml).unwrap();
        net.start_peer(n);
    }
    let org1 = net.conn(1, "client1");
    let org2 = net.conn(2, "client1");

    // Put at org1 (5 chunks, the last one short), get it back whole.
    let data = content(300_000, 1);
    std::fs::write(d.path().join("report.pdf"), &data).unwrap();
    let id = net
        .cli(
            &[
                "files",
                "put",
                "report.pdf",
                "--media-type",
                "application/pdf",
            ],
            &org1,
        )
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    net.cli(&["files", "get", &id, "--out", "back1"], &org1);
    assert_eq!(std::fs::read(d.path().join("back1")).unwrap(), data);
    let stat: serde_json::Value =
        serde_json::from_str(&net.cli(&["files", "stat", &id], &org1)).unwrap();
    assert_eq!(stat["size"], 300_000);
    assert_eq!(stat["chunks"], 5);
    assert_eq!(stat["media_type"], "application/pdf");
    // A range read.
    net.cli(
        &[
            "files", "get", &id, "--out", "range", "--offset", "65000", "--length", "70000",
        ],
        &org1,
    );
    assert_eq!(
        std::fs::read(d.path().join("range")).unwrap(),
        &data[65_000..135_000]
    );

    // Not public: the web port does not reveal it.
    let (head, _) = http(&web, &format!("/files/{id}"), None);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    // A public file: whole, a range, a suffix range, a bad range.
    std::fs::write(d.path().join("clip.mp4"), content(200_000, 9)).unwrap();
    let clip = std::fs::read(d.path().join("clip.mp4")).unwrap();
    let pid = net
        .cli(
            &[
                "files",
                "put",
                "clip.mp4",
                "--public",
                "--media-type",
                "video/mp4",
            ],
            &org1,
        )
        .trim()
        .to_owned();
    let (head, body) = http(&web, &format!("/files/{pid}"), None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Type: video/mp4"), "{head}");
    assert!(head.contains(&format!("ETag: \"{pid}\"")), "{head}");
    assert_eq!(body, clip);
    // The client's copy is current: 304, no body.
    let (head, body) = http_with(
        &web,
        &format!("/files/{pid}"),
        &format!("If-None-Match: \"{pid}\"\r\n"),
    );
    assert!(head.starts_with("HTTP/1.1 304 Not Modified"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    assert!(head.contains(&format!("ETag: \"{pid}\"")), "{head}");
    assert!(body.is_empty());
    let (head, _) = http_with(
        &web,
        &format!("/files/{pid}"),
        "If-None-Match: \"other\"\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, body) = http(&web, &format!("/files/{pid}"), Some("bytes=65530-131080"));
    assert!(head.starts_with("HTTP/1.1 206 Partial Content"), "{head}");
    assert!(
        head.contains("Content-Range: bytes 65530-131080/200000"),
        "{head}"
    );
    assert_eq!(body, &clip[65_530..131_081]);
    let (head, body) = http(&web, &format!("/files/{pid}"), Some("bytes=-10"));
    assert!(
        head.contains("Content-Range: bytes 199990-199999/200000"),
        "{head}"
    );
    assert_eq!(body, &clip[199_990..]);
    let (head, _) = http(&web, &format!("/files/{pid}"), Some("bytes=200000-"));
    assert!(head.starts_with("HTTP/1.1 416"), "{head}");
    assert!(head.contains("Content-Range: bytes */200000"), "{head}");
    let (head, _) = http(&web, "/files/nothex", None);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    // An empty public file is an empty 200.
    std::fs::write(d.path().join("empty.txt"), b"").unwrap();
    let eid = net
        .cli(
            &[
                "files",
                "put",
                "empty.txt",
                "--public",
                "--media-type",
                "text/plain",
            ],
            &org1,
        )
        .trim()
        .to_owned();
    let (head, body) = http(&web, &format!("/files/{eid}"), None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Length: 0\r\n"), "{head}");
    assert!(body.is_empty());
    // By the content's SHA-256 (what the ledger records for a report or an
    // attachment): the public file; not the private one, nor garbage.
    let clip_sha = hex::encode(qcss_network::signing::sha256(&clip));
    let (head, body) = http(&web, &format!("/files/sha256/{clip_sha}"), None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(&format!("ETag: \"{pid}\"")), "{head}");
    assert_eq!(body, clip);
    let data_sha = hex::encode(qcss_network::signing::sha256(&data));
    for path in [
        format!("/files/sha256/{data_sha}"),
        format!("/files/sha256/{}", "0".repeat(64)),
        "/files/sha256/../../etc/passwd".to_owned(),
    ] {
        let (head, _) = http(&web, &path, None);
        assert!(head.starts_with("HTTP/1.1 404"), "{path}: {head}");
    }
    let stat: serde_json::Value =
        serde_json::from_str(&net.cli(&["files", "stat", &pid], &org1)).unwrap();
    assert_eq!(stat["public"], true);

    // org2's peer does not have it; it copies it from org1's peer over mTLS.
    let e = net.cli_err(&["files", "get", &id, "--out", "nope"], &org2);
    assert!(e.contains("NotFound"), "{e}");
    assert!(!d.path().join("nope").exists());
    let out = net.cli(&["files", "repair", &id, "--from-org", "Org1MSP"], &org2);
    assert!(out.contains("5 of 5 chunks fetched"), "{out}");
    assert!(out.contains("manifest fetched"), "{out}");
    net.cli(&["files", "get", &id, "--out", "back2"], &org2);
    assert_eq!(std::fs::read(d.path().join("back2")).unwrap(), data);

    // A flipped byte in one chunk on org2's disk: refused, named, repaired.
    let chunks = chunk_files(&d.path().join("peer2-data/files/chunks"));
    assert_eq!(chunks.len(), 5);
    let victim = &chunks[2];
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();
    let e = net.cli_err(&["files", "get", &id, "--out", "bad"], &org2);
    assert!(e.contains(&name) && e.contains("DataLoss"), "{e}");
    assert!(!d.path().join("bad").exists());
    assert!(!d.path().join("bad.part").exists());
    // The failed read woke org2's file keeper, which repairs the copy from
    // another org's at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (ok, out, _) = net.cli_any(&["files", "verify", &id], &org2);
        if ok && out.contains("intact") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not repaired after the read"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // Damage no read has met: verify names it, a repair on request fixes it.
    std::fs::write(victim, &bytes).unwrap();
    let e = net.cli_err(&["files", "verify", &id], &org2);
    assert!(e.contains("1 of 5 chunks"), "{e}");
    let out = net.cli(&["files", "repair", &id, "--from-org", "Org1MSP"], &org2);
    assert!(out.contains("1 of 5 chunks fetched"), "{out}");
    assert!(net.cli(&["files", "verify", &id], &org2).contains("intact"));
    net.cli(&["files", "get", &id, "--out", "back3"], &org2);
    assert_eq!(std::fs::read(d.path().join("back3")).unwrap(), data);

    // A truncated chunk: the same.
    let victim = &chunks[0];
    let name = victim.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = std::fs::read(victim).unwrap();
    std::fs::write(victim, &bytes[..bytes.len() / 2]).unwrap();
    let out = net.cli_any(&["files", "verify", &id], &org2);
    assert!(!out.0 && out.1.contains(&name), "{out:?}");
    let out = net.cli(&["files", "repair", &id, "--from-org", "Org1MSP"], &org2);
    assert!(out.contains("1 of 5 chunks fetched"), "{out}");
    net.cli(&["files", "get", &id, "--out", "back4"], &org2);
    assert_eq!(std::fs::read(d.path().join("back4")).unwrap(), data);

    // Oversize: refused by the declared size, before any data.
    std::fs::write(d.path().join("big"), content(900_000, 2)).unwrap();
    let e = net.cli_err(&["files", "put", "big"], &org1);
    assert!(
        e.contains("ResourceExhausted") && e.contains("800000"),
        "{e}"
    );
    // Quota: 300 000 + 200 000 (the clip) + 400 000 fit in 1 000 000;
    // 200 000 more do not.
    std::fs::write(d.path().join("b"), content(400_000, 3)).unwrap();
    net.cli(&["files", "put", "b"], &org1);
    std::fs::write(d.path().join("c"), content(200_000, 4)).unwrap();
    let e = net.cli_err(&["files", "put", "c"], &org1);
    assert!(e.contains("quota") && e.contains("Org1MSP"), "{e}");
    // Another org's quota is its own.
    net.cli(&["files", "put", "c"], &org2);
    // Garbage: a bad media type, a bad id.
    let e = net.cli_err(&["files", "put", "c", "--media-type", "not a type"], &org1);
    assert!(e.contains("InvalidArgument"), "{e}");
    let e = net.cli_err(&["files", "stat", "xyz"], &org1);
    assert!(e.contains("InvalidArgument"), "{e}");

    // A client whose TLS certificate is from no member's TLS CA.
    let ca = CertAuthority::new_root("mallory-tls-ca", "Mallory", 30).unwrap();
    let key = SigningKey::generate().unwrap();
    let cert = ca
        .issue_tls(
            "mallory",
            "Mallory",
            &["127.0.0.1".into()],
            &rcgen_key(&key).unwrap(),
            &random_serial().unwrap(),
            30,
        )
        .unwrap();
    let mallory = d.path().join("mallory");
    std::fs::create_dir_all(&mallory).unwrap();
    std::fs::write(mallory.join("tls-cert.pem"), cert).unwrap();
    std::fs::write(mallory.join("tls-key.pem"), key.to_pem()).unwrap();
    let tls_ca = std::fs::read(d.path().join("org1/client1/tls-ca.pem")).unwrap();
    std::fs::write(mallory.join("tls-ca.pem"), &tls_ca).unwrap();
    let outsider = vec![
        "--peer".to_owned(),
        net.peer_addrs[0].clone(),
        "--identity".to_owned(),
        "mallory".to_owned(),
        "--channel".to_owned(),
        CHANNEL.to_owned(),
    ];
    let (ok, _, e) = net.cli_any(&["files", "stat", &id], &outsider);
    assert!(!ok, "{e}");
    // And one with no client certificate at all.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = net.peer_addrs[0].clone();
    let id2 = id.clone();
    let refused = rt.block_on(async move {
        let tls = qcss_network::tls::client_tls_for_addr(&[tls_ca], None, &addr);
        match qcss_network::tls::connect(&addr, tls).await {
            Err(_) => true,
            Ok(ch) => FilesClient::new(ch)
                .stat(FileRequest { id: id2 })
                .await
                .is_err(),
        }
    });
    assert!(refused);
    // Garbage uploads from a member, over raw gRPC: data before the
    // metadata, fewer and more bytes than declared.
    let addr = net.peer_addrs[0].clone();
    let dir = d.path().join("org1/client1");
    let codes = rt.block_on(async move {
        let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
        let (roots, cert, key) = (
            read("tls-ca.pem"),
            read("tls-cert.pem"),
            read("tls-key.pem"),
        );
        let tls = qcss_network::tls::client_tls_for_addr(&[roots], Some((&cert, &key)), &addr);
        let ch = qcss_network::tls::connect(&addr, tls).await.unwrap();
        let mut c = FilesClient::new(ch);
        let meta = |size| PutRequest {
            part: Some(Part::Meta(PutMeta {
                media_type: "text/plain".into(),
                size,
                public: false,
                ..PutMeta::default()
            })),
        };
        // A sealed upload whose encryption section is garbage, or that
        // claims to be public too.
        let sealed = |encryption: Vec<u8>, public| PutRequest {
            part: Some(Part::Meta(PutMeta {
                media_type: "text/plain".into(),
                size: 100,
                public,
                encryption,
                chunk_size: 64,
            })),
        };
        let mut section = vec![1u8, 1, 0, 1, 3];
        section.extend(b"Org");
        section.extend([9u8; 80]);
        let data = |n| PutRequest {
            part: Some(Part::Data(vec![7u8; n])),
        };
        let mut codes = Vec::new();
        for msgs in [
            vec![data(10), meta(10)],
            vec![meta(100), data(50)],
            vec![meta(100), data(80), data(80)],
            vec![sealed(vec![1, 1, 0, 0], false), data(100)],
            vec![sealed(section.clone(), true), data(100)],
            vec![sealed(section[..20].to_vec(), false), data(100)],
        ] {
            let r = c.put(tokio_stream::iter(msgs)).await;
            codes.push(
                r.map(|_| ())
                    .map_err(|s| (s.code(), s.message().to_owned())),
            );
        }
        codes
    });
    for c in &codes {
        assert!(
            matches!(c, Err((tonic::Code::InvalidArgument, _))),
            "{codes:?}"
        );
    }
    // The members still work afterwards.
    net.cli(&["files", "stat", &id], &org1);

    // A copy repaired from a peer that serves it publicly is public too;
    // one repaired from a private copy is not.
    net.cli(&["files", "repair", &pid, "--from-org", "Org1MSP"], &org2);
    let stat = |id: &str| -> serde_json::Value {
        serde_json::from_str(&net.cli(&["files", "stat", id], &org2)).unwrap()
    };
    assert_eq!(stat(&pid)["public"], true);
    assert_eq!(stat(&id)["public"], false);

    confidential(&net, d.path());
}

/// A confidential file, sealed by org2's client for org2 and org1 with
/// the keys the channel configuration publishes: org1's peer copies the
/// ciphertext, org1's and org2's clients open it, org3 (a member, not a
/// reader) and a wrong key cannot, and no peer's disk holds plaintext.
fn confidential(net: &Network, dir: &Path) {
    let org1 = net.conn(1, "client1");
    let org2 = net.conn(2, "client1");
    let org3 = net.conn(3, "client1");
    let keys: serde_json::Value =
        serde_json::from_str(&net.cli(&["files", "keys"], &org1)).unwrap();
    assert_eq!(keys["keys"].as_object().unwrap().len(), 3, "{keys}");

    let plain = content(150_000, 5);
    std::fs::write(dir.join("secret.pdf"), &plain).unwrap();
    let (ok, out, err) = net.cli_any(
        &[
            "files",
            "put",
            "secret.pdf",
            "--confidential",
            "--reader",
            "Org1MSP",
            "--chunk-bytes",
            "65536",
            "--media-type",
            "application/pdf",
        ],
        &org2,
    );
    assert!(ok, "{err}");
    let cid = out.trim().to_owned();
    assert!(err.contains("Org1MSP, Org2MSP"), "{err}");
    let stat: serde_json::Value =
        serde_json::from_str(&net.cli(&["files", "stat", &cid], &org2)).unwrap();
    assert_eq!(stat["confidential"], true);
    assert_eq!(stat["public"], false);
    assert_eq!(stat["chunks"], 3);
    assert_eq!(stat["plain_size"], 150_000);
    assert_eq!(stat["readers"], serde_json::json!(["Org1MSP", "Org2MSP"]));

    // Org1's peer copies the ciphertext from org2's (it stores what it
    // cannot read); both orgs' clients open it.
    net.cli(&["files", "repair", &cid, "--from-org", "Org2MSP"], &org1);
    for (who, conn) in [("org1", &org1), ("org2", &org2)] {
        let out = format!("secret-{who}");
        net.cli(&["files", "get", &cid, "--out", &out], conn);
        assert_eq!(std::fs::read(dir.join(&out)).unwrap(), plain, "{who}");
    }
    // Neither peer's disk holds any 32 bytes of the plaintext.
    for peer in ["peer1-data", "peer2-data"] {
        let mut found = 0;
        for f in chunk_files(&dir.join(peer).join("files/chunks")) {
            let bytes = std::fs::read(&f).unwrap();
            if bytes
                .windows(32)
                .any(|w| plain.windows(32).step_by(4096).any(|p| p == w))
            {
                found += 1;
            }
        }
        assert_eq!(found, 0, "plaintext on {peer}'s disk");
    }
    // Org3 is a member (it may fetch the ciphertext) but not a reader.
    net.cli(&["files", "repair", &cid, "--from-org", "Org2MSP"], &org3);
    let e = net.cli_err(&["files", "get", &cid, "--out", "nope"], &org3);
    assert!(e.contains("Org3MSP is not a reader"), "{e}");
    net.cli(&["files", "get", &cid, "--out", "raw3", "--raw"], &org3);
    let raw = std::fs::read(dir.join("raw3")).unwrap();
    assert_eq!(raw.len() as u64, stat["size"].as_u64().unwrap());
    assert!(!raw.windows(32).any(|w| w == &plain[..32]));
    // A reader's member holding another org's key cannot open it.
    let e = net.cli_err(
        &[
            "files",
            "get",
            &cid,
            "--out",
            "nope",
            "--files-key",
            "org3/files-key",
        ],
        &org1,
    );
    assert!(e.contains("cannot unwrap"), "{e}");
    assert!(!dir.join("nope").exists() && !dir.join("nope.part").exists());
    // A range of a confidential file is not opened; an org publishing no
    // key cannot be named a reader.
    let e = net.cli_err(
        &["files", "get", &cid, "--out", "nope", "--length", "10"],
        &org1,
    );
    assert!(e.contains("fetched whole"), "{e}");
    let e = net.cli_err(
        &[
            "files",
            "put",
            "secret.pdf",
            "--confidential",
            "--reader",
            "NoSuchMSP",
        ],
        &org2,
    );
    assert!(e.contains("NoSuchMSP publishes no file key"), "{e}");
    // Not public: the web port does not serve it.
    let e = net.cli_err(
        &["files", "put", "secret.pdf", "--confidential", "--public"],
        &org2,
    );
    assert!(e.contains("cannot be used with"), "{e}");
}
