//! Confidential files in `qcss files`: sealed here, before they leave the
//! client, and opened here, after the ciphertext arrives. The peer stores
//! and serves ciphertext and the wrapped keys only; it never sees the
//! plaintext, the file key or an org's secret (`docs/files.md`,
//! "Confidential files").
//!
//! Readers' X25519 public keys come from the channel configuration
//! (`file_key` of each org, through the peer's `ReaderKeys`); an org's
//! secret is a hex key file its members hold (`qcss files keygen`;
//! `network up` writes one per org at `orgs/{org}/files-key`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use qcss_mdss::{
    ChunkHash, FileId, Limits, Manifest, MediaType, Opener, OrgId, OrgPublicKey, OrgSecretKey,
    seal, sealed_size,
};
use qcss_proto::qcss::mdss::put_request::Part;
use qcss_proto::qcss::mdss::{FileRequest, GetRequest, PutMeta, PutRequest, ReaderKeysRequest};
use tokio::io::AsyncWriteExt;

use crate::files::{PIECE, client, msp_id_of, refused};
use crate::peer::Conn;

/// Bytes per sealed chunk unless `--chunk-bytes` says: the peer's default
/// chunk size.
pub(crate) const SEALED_CHUNK: u32 = 1 << 20;
/// Largest manifest this client decodes (what a store may hold).
const MAX_MANIFEST_RESPONSE: usize = qcss_mdss::MAX_MANIFEST_BYTES + 4096;

/// The MSP id of the identity `conn` acts as.
fn own_msp(conn: &Conn) -> Result<String> {
    let p = conn.resolve()?.identity.join("msp_id");
    Ok(std::fs::read_to_string(&p)
        .with_context(|| format!("cannot read {}", p.display()))?
        .trim()
        .to_owned())
}

/// Where the org's secret key is unless `--files-key` says: beside the
/// org's identities (`orgs/{org}/files-key` in a network folder).
fn default_key_path(conn: &Conn) -> Result<PathBuf> {
    let identity = conn.resolve()?.identity;
    Ok(identity
        .parent()
        .map_or_else(|| PathBuf::from("files-key"), |p| p.join("files-key")))
}

fn read_secret(path: &Path) -> Result<OrgSecretKey> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the org's file key {} (give --files-key; `qcss files keygen` makes one)",
            path.display()
        )
    })?;
    OrgSecretKey::from_hex(&text).with_context(|| format!("{}", path.display()))
}

/// The channel's published reader keys, by MSP id.
pub(crate) async fn reader_keys(conn: &Conn) -> Result<(u64, BTreeMap<String, String>)> {
    let r = client(conn)
        .await?
        .reader_keys(ReaderKeysRequest {})
        .await
        .map_err(|s| refused("reader keys", s))?
        .into_inner();
    Ok((
        r.config_sequence,
        r.keys
            .into_iter()
            .map(|k| (k.msp_id, k.x25519_public))
            .collect(),
    ))
}

/// Seals `file` for the caller's org and `readers` (names or MSP ids),
/// uploads the ciphertext, and checks the peer's id against the one
/// computed here. Prints the id.
pub(crate) async fn put(
    conn: &Conn,
    file: &Path,
    media_type: &str,
    readers: &[String],
    chunk_size: u32,
) -> Result<()> {
    let media_type = MediaType::new(media_type).map_err(|e| anyhow!("--media-type: {e}"))?;
    let (lo, hi) = (
        qcss_mdss::manifest::MIN_CHUNK_SIZE,
        qcss_mdss::manifest::MAX_CHUNK_SIZE,
    );
    if !(lo..=hi).contains(&chunk_size) {
        bail!("--chunk-bytes must be {lo} to {hi}, not {chunk_size}");
    }
    let mut orgs: BTreeSet<String> = readers.iter().map(|r| msp_id_of(conn, r)).collect();
    orgs.insert(own_msp(conn)?);
    let (sequence, keys) = reader_keys(conn).await?;
    let mut wrapped_to = Vec::new();
    for org in &orgs {
        let key = keys.get(org).ok_or_else(|| {
            anyhow!(
                "org {org} publishes no file key in the channel configuration (sequence {sequence}), \
                 so it cannot be a reader: its admin makes one with `qcss files keygen` and the \
                 channel's admins add it as the org's `file_key` (`qcss channel update`)"
            )
        })?;
        let key = OrgPublicKey::from_hex(key)
            .with_context(|| format!("the channel's file_key of {org}"))?;
        wrapped_to.push((OrgId::new(org).map_err(|e| anyhow!("{e}"))?, key));
    }
    let name = file.display().to_string();
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {name}"))?;
    let plain_size = f.metadata().with_context(|| name.clone())?.len();
    let size = sealed_size(plain_size, chunk_size)
        .ok_or_else(|| anyhow!("--chunk-bytes {chunk_size} cannot hold a sealed byte"))?;
    let (encryption, mut sealer) = seal(f, &wrapped_to, chunk_size)?;
    let meta = PutRequest {
        part: Some(Part::Meta(PutMeta {
            media_type: media_type.as_str().to_owned(),
            size,
            public: false,
            encryption: encryption.to_bytes(),
            chunk_size,
        })),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    // Sealing reads the file and runs AES-GCM: off the async runtime.
    // The chunk hashes give the id this client expects.
    let sealing =
        tokio::task::spawn_blocking(move || -> std::io::Result<Option<Vec<ChunkHash>>> {
            if tx.blocking_send(meta).is_err() {
                return Ok(None);
            }
            let mut hashes = Vec::new();
            let mut chunk = vec![0u8; chunk_size as usize];
            loop {
                let n = fill(&mut sealer, &mut chunk)?;
                if n == 0 {
                    return Ok(Some(hashes));
                }
                hashes.push(ChunkHash::of(&chunk[..n]));
                for piece in chunk[..n].chunks(PIECE) {
                    let msg = PutRequest {
                        part: Some(Part::Data(piece.to_vec())),
                    };
                    if tx.blocking_send(msg).is_err() {
                        return Ok(None);
                    }
                }
                if n < chunk.len() {
                    return Ok(Some(hashes));
                }
            }
        });
    let r = client(conn)
        .await?
        .put(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| refused(&format!("put {name}"), s))?
        .into_inner();
    let chunks = sealing
        .await
        .context("sealing task")?
        .with_context(|| format!("reading {name}"))?
        .ok_or_else(|| anyhow!("the upload of {name} stopped early"))?;
    let expected = Manifest {
        size,
        chunk_size,
        media_type,
        encryption: Some(encryption),
        chunks,
    }
    .id();
    if r.id != expected.to_hex() {
        bail!(
            "the peer stored {name} as {}, but what this client sealed is {expected}",
            r.id
        );
    }
    println!("{}", r.id);
    eprintln!(
        "stored {name} sealed for {} as {}: record this id on the ledger (it is the SHA-256 \
         of the manifest, which commits to the ciphertext and to who may read it)",
        orgs.iter().cloned().collect::<Vec<_>>().join(", "),
        r.id
    );
    Ok(())
}

/// Seals `bytes` for `readers` (MSP ids, with keys from the channel
/// configuration) and puts them into the store of the peer behind `ch`:
/// the id. For `network up --demo`.
pub(crate) async fn put_sealed_bytes(
    ch: tonic::transport::Channel,
    bytes: &[u8],
    media_type: &str,
    readers: &[&str],
) -> Result<String> {
    use qcss_proto::qcss::mdss::files_client::FilesClient;
    let mut c = FilesClient::new(ch.clone()).max_decoding_message_size(1 << 20);
    let keys = c
        .reader_keys(ReaderKeysRequest {})
        .await
        .map_err(|s| refused("reader keys", s))?
        .into_inner()
        .keys;
    let mut to = Vec::new();
    for r in readers {
        let k = keys
            .iter()
            .find(|k| k.msp_id == *r)
            .ok_or_else(|| anyhow!("org {r} publishes no file key"))?;
        to.push((
            OrgId::new(r).map_err(|e| anyhow!("{e}"))?,
            OrgPublicKey::from_hex(&k.x25519_public)?,
        ));
    }
    let (encryption, mut sealer) = seal(bytes, &to, SEALED_CHUNK)?;
    let mut sealed = Vec::new();
    sealer.read_to_end(&mut sealed)?;
    let meta = PutMeta {
        media_type: media_type.to_owned(),
        size: sealed.len() as u64,
        public: false,
        encryption: encryption.to_bytes(),
        chunk_size: SEALED_CHUNK,
    };
    crate::files::put_with(ch, meta, &sealed).await
}

/// Fetches confidential file `id` whole and writes its plaintext to `out`
/// (through `out.part`): every chunk is checked against the manifest here
/// (the peer checked it too), then opened with the org's secret.
pub(crate) async fn get(conn: &Conn, id: &str, out: &Path, key_file: Option<&Path>) -> Result<()> {
    let file: FileId = id.parse().map_err(|e| anyhow!("file id: {e}"))?;
    let key_path = match key_file {
        Some(p) => p.to_owned(),
        None => default_key_path(conn)?,
    };
    let secret = read_secret(&key_path)?;
    let msp = own_msp(conn)?;
    let org = OrgId::new(&msp).map_err(|e| anyhow!("{e}"))?;
    let mut c = client(conn)
        .await?
        .max_decoding_message_size(MAX_MANIFEST_RESPONSE);
    let bytes = c
        .manifest(FileRequest { id: id.to_owned() })
        .await
        .map_err(|s| refused(&format!("manifest of {id}"), s))?
        .into_inner()
        .manifest;
    if FileId::of_manifest(&bytes) != file {
        bail!("the peer's manifest for {id} does not hash to it");
    }
    let limits = Limits {
        max_file_size: u64::MAX,
        max_chunks: u32::MAX,
        ..Limits::default()
    };
    let manifest =
        Manifest::decode(&bytes, &limits).map_err(|e| anyhow!("manifest of {id}: {e}"))?;
    let opener = Opener::new(file, &manifest, &org, &secret).map_err(|e| match e {
        qcss_mdss::Error::KeyUnwrap { .. } => anyhow!(
            "{e}: {} is not {msp}'s file key (the one the channel publishes)",
            key_path.display()
        ),
        e => anyhow!("{e}"),
    })?;
    let mut stream = c
        .get(GetRequest {
            id: id.to_owned(),
            offset: 0,
            length: 0,
        })
        .await
        .map_err(|s| refused(&format!("get {id}"), s))?
        .into_inner();
    let part = PathBuf::from(format!("{}.part", out.display()));
    let mut w = tokio::fs::File::create(&part)
        .await
        .with_context(|| format!("cannot create {}", part.display()))?;
    let result: Result<u64> = async {
        let mut buf = Vec::new();
        let mut index = 0u32;
        let mut written = 0u64;
        loop {
            let more = stream
                .message()
                .await
                .map_err(|s| refused(&format!("get {id}"), s))?;
            if let Some(m) = &more {
                buf.extend_from_slice(&m.data);
            }
            // Whole chunks: checked, opened, written.
            loop {
                let want = manifest.chunk_len(index) as usize;
                if want == 0 || buf.len() < want {
                    break;
                }
                let rest = buf.split_off(want);
                let sealed = std::mem::replace(&mut buf, rest);
                if ChunkHash::of(&sealed) != manifest.chunks[index as usize] {
                    bail!("chunk {index} of {id} does not match the manifest");
                }
                let plain = opener.open(index, sealed).map_err(|e| anyhow!("{e}"))?;
                w.write_all(&plain).await?;
                written += plain.len() as u64;
                index += 1;
            }
            if more.is_none() {
                break;
            }
        }
        if index as usize != manifest.chunks.len() || !buf.is_empty() {
            bail!(
                "the peer sent {index} of {} chunks of {id} and {} bytes more",
                manifest.chunks.len(),
                buf.len()
            );
        }
        w.sync_all().await?;
        Ok(written)
    }
    .await;
    drop(w);
    let written = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
    };
    tokio::fs::rename(&part, out)
        .await
        .with_context(|| format!("renaming {} to {}", part.display(), out.display()))?;
    eprintln!(
        "{written} bytes of plaintext written to {} (opened with {msp}'s key)",
        out.display()
    );
    Ok(())
}

/// Writes a new org secret to `out` (readable by its owner only, never
/// overwritten) and prints the public key to publish as the org's
/// `file_key`.
pub(crate) fn keygen(out: &Path) -> Result<()> {
    let secret = OrgSecretKey::generate()?;
    write_secret(out, &secret)?;
    println!("{}", secret.public_key().to_hex());
    eprintln!(
        "wrote {}; publish the line above as the org's `file_key` in the channel configuration \
         (`qcss channel update`), and give the key file to the org's members who may read \
         its confidential files",
        out.display()
    );
    Ok(())
}

/// Creates `path` holding `secret` in hex, mode 0600; refuses to replace a
/// file (an org's old key still opens its old files).
pub(crate) fn write_secret(path: &Path, secret: &OrgSecretKey) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist)", path.display()))?;
    writeln!(f, "{}", secret.to_hex()).with_context(|| format!("writing {}", path.display()))?;
    f.sync_all()?;
    Ok(())
}

fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
