//! `qcss files put|get|stat|verify|repair`: MDSS, the peer's file store,
//! over the peer's gRPC port (mutual TLS, the `--as` identity's TLS key).
//! The peer checks every byte against its chunk hash before sending it;
//! `get` writes to `FILE.part` and renames it only once the whole range
//! arrived, so a refused read leaves no file. Confidential files are sealed
//! and opened in this process (`files_sealed.rs`).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use qcss_proto::qcss::mdss::files_client::FilesClient;
use qcss_proto::qcss::mdss::put_request::Part;
use qcss_proto::qcss::mdss::{FileRequest, GetRequest, PutMeta, PutRequest, RepairRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::peer::Conn;

/// Bytes per upload message (the peer decodes at most 1 MiB).
pub(crate) const PIECE: usize = 256 << 10;
/// Largest response decoded (a `Get` message is at most 256 KiB).
const MAX_RESPONSE: usize = 1 << 20;

#[derive(Debug, Subcommand)]
pub(crate) enum FilesCommand {
    /// Upload a file; prints its id.
    Put(PutArgs),
    /// Download a file (or a range of it).
    Get(GetArgs),
    /// What a file is (JSON).
    Stat(IdArgs),
    /// Have the peer read every chunk of its copy; fails if any is damaged.
    Verify(IdArgs),
    /// Have the peer re-fetch missing or damaged parts of its copy from a
    /// peer of another org (over mutual TLS, every byte checked).
    Repair(RepairArgs),
    /// Make an org's X25519 key pair for confidential files: writes the
    /// secret (0600), prints the public key to publish as the org's
    /// `file_key` in the channel configuration.
    Keygen(KeygenArgs),
    /// The reader keys the channel configuration publishes (JSON).
    Keys(KeysArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the secret key (must not exist).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    #[command(flatten)]
    conn: Conn,
    /// The file to upload.
    file: PathBuf,
    /// Its media type (`type/subtype`).
    #[arg(long = "media-type", default_value = "application/octet-stream")]
    media_type: String,
    /// Serve it to anyone on the peer's web port (`GET /files/{id}`).
    #[arg(long, conflicts_with = "confidential")]
    public: bool,
    /// Encrypt it here, before it leaves this machine, for the caller's
    /// org and each `--reader` (AES-256-GCM, the key wrapped to each
    /// org's X25519 key from the channel configuration).
    #[arg(long)]
    confidential: bool,
    /// An org that may read a confidential file besides the caller's: its
    /// MSP id or name in the network folder; repeatable.
    #[arg(long = "reader", requires = "confidential")]
    readers: Vec<String>,
    /// Bytes per sealed chunk of a confidential file (64 B to 64 MiB; the
    /// peer chunks public files itself).
    #[arg(long = "chunk-bytes", default_value_t = crate::files_sealed::SEALED_CHUNK, requires = "confidential")]
    chunk_bytes: u32,
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    conn: Conn,
    /// The file id (64 hex digits).
    id: String,
    /// Where to write it.
    #[arg(long)]
    out: PathBuf,
    /// First byte to fetch.
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// Bytes to fetch; 0 = to the end.
    #[arg(long, default_value_t = 0)]
    length: u64,
    /// The org's secret key for a confidential file; default: `files-key`
    /// beside the identity's folder (`orgs/{org}/files-key`).
    #[arg(long = "files-key")]
    files_key: Option<PathBuf>,
    /// Fetch a confidential file's ciphertext as stored, without opening it.
    #[arg(long)]
    raw: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    #[command(flatten)]
    conn: Conn,
    /// The file id (64 hex digits).
    id: String,
}

#[derive(Debug, Args)]
pub(crate) struct RepairArgs {
    #[command(flatten)]
    conn: Conn,
    /// The file id (64 hex digits).
    id: String,
    /// The org whose peer has a good copy: its MSP id, or its name in the
    /// network folder.
    #[arg(long = "from-org")]
    from_org: String,
}

pub(crate) async fn client(conn: &Conn) -> Result<FilesClient<tonic::transport::Channel>> {
    let (ch, _) = conn.grpc().await?;
    Ok(FilesClient::new(ch).max_decoding_message_size(MAX_RESPONSE))
}

pub(crate) fn refused(what: &str, s: tonic::Status) -> anyhow::Error {
    anyhow!("{what}: {:?}: {}", s.code(), s.message())
}

pub(crate) fn run(cmd: FilesCommand) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        match cmd {
            FilesCommand::Put(a) if a.confidential => {
                crate::files_sealed::put(&a.conn, &a.file, &a.media_type, &a.readers, a.chunk_bytes)
                    .await
            }
            FilesCommand::Put(a) => put(a).await,
            FilesCommand::Get(a) => get(a).await,
            FilesCommand::Keygen(a) => crate::files_sealed::keygen(&a.out),
            FilesCommand::Keys(a) => {
                let (sequence, keys) = crate::files_sealed::reader_keys(&a.conn).await?;
                let json = serde_json::json!({ "config_sequence": sequence, "keys": keys });
                println!("{}", serde_json::to_string_pretty(&json)?);
                Ok(())
            }
            FilesCommand::Stat(a) => {
                let s = client(&a.conn)
                    .await?
                    .stat(FileRequest { id: a.id.clone() })
                    .await
                    .map_err(|s| refused("stat", s))?
                    .into_inner();
                let json = serde_json::json!({
                    "id": s.id, "size": s.size, "plain_size": s.plain_size,
                    "chunk_size": s.chunk_size, "chunks": s.chunks,
                    "media_type": s.media_type, "confidential": s.confidential,
                    "readers": s.readers, "public": s.public,
                });
                println!("{}", serde_json::to_string_pretty(&json)?);
                Ok(())
            }
            FilesCommand::Verify(a) => {
                let r = client(&a.conn)
                    .await?
                    .verify(FileRequest { id: a.id.clone() })
                    .await
                    .map_err(|s| refused("verify", s))?
                    .into_inner();
                println!("chunks: {}", r.chunks);
                for d in &r.damaged {
                    println!("damaged: chunk {} ({}) is {}", d.index, d.hash, d.damage);
                }
                if !r.damaged.is_empty() {
                    bail!(
                        "{} of {} chunks of {} are damaged; `qcss files repair {} --from-org ORG` fetches them",
                        r.damaged.len(),
                        r.chunks,
                        a.id,
                        a.id
                    );
                }
                println!("intact");
                Ok(())
            }
            FilesCommand::Repair(a) => {
                let from = msp_id_of(&a.conn, &a.from_org);
                let r = client(&a.conn)
                    .await?
                    .repair(RepairRequest {
                        id: a.id.clone(),
                        from_msp_id: from,
                    })
                    .await
                    .map_err(|s| refused("repair", s))?
                    .into_inner();
                println!(
                    "repaired from {}: {} of {} chunks fetched ({} bytes){}",
                    r.from,
                    r.fetched,
                    r.chunks,
                    r.bytes_fetched,
                    if r.manifest_fetched {
                        ", manifest fetched"
                    } else {
                        ""
                    }
                );
                Ok(())
            }
        }
    })
}

/// `org` as an MSP id: a name in the network folder is mapped to its id.
pub(crate) fn msp_id_of(conn: &Conn, org: &str) -> String {
    let path = conn.net_dir.join("network.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<crate::network::NetworkInfo>(&t).ok())
        .and_then(|n| {
            n.orgs
                .iter()
                .find(|o| o.name.eq_ignore_ascii_case(org))
                .map(|o| o.msp_id.clone())
        })
        .unwrap_or_else(|| org.to_owned())
}

async fn put(a: PutArgs) -> Result<()> {
    let mut file = tokio::fs::File::open(&a.file)
        .await
        .with_context(|| format!("cannot open {}", a.file.display()))?;
    let size = file
        .metadata()
        .await
        .with_context(|| format!("{}", a.file.display()))?
        .len();
    let mut c = client(&a.conn).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let meta = PutRequest {
        part: Some(Part::Meta(PutMeta {
            media_type: a.media_type.clone(),
            size,
            public: a.public,
            ..PutMeta::default()
        })),
    };
    let name = a.file.display().to_string();
    let reader = tokio::spawn(async move {
        // The content's SHA-256: what the ledger records for the file.
        let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
        if tx.send(meta).await.is_err() {
            return Ok(None);
        }
        loop {
            let mut buf = vec![0u8; PIECE];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(Some(hex::encode(sha.finish())));
            }
            buf.truncate(n);
            sha.update(&buf);
            let msg = PutRequest {
                part: Some(Part::Data(buf)),
            };
            if tx.send(msg).await.is_err() {
                return Ok(None);
            }
        }
    });
    let r = c
        .put(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| refused(&format!("put {name}"), s))?
        .into_inner();
    let sha = reader
        .await
        .context("reader task")?
        .with_context(|| format!("reading {name}"))?;
    println!("{}", r.id);
    if let Some(sha) = sha {
        // On stderr: stdout stays the id alone, for scripts.
        eprintln!(
            "stored {name} as {}; content SHA-256 {sha} (the hash to record on the ledger{})",
            r.id,
            if a.public {
                "; public files are also served at /files/sha256/{hex}"
            } else {
                ""
            }
        );
    }
    Ok(())
}

async fn get(a: GetArgs) -> Result<()> {
    let mut c = client(&a.conn).await?;
    if !a.raw {
        let stat = c
            .stat(FileRequest { id: a.id.clone() })
            .await
            .map_err(|s| refused(&format!("get {}", a.id), s))?
            .into_inner();
        if stat.confidential {
            if a.offset != 0 || a.length != 0 {
                bail!(
                    "{} is confidential: it is fetched whole and opened here (--raw fetches a range of its ciphertext)",
                    a.id
                );
            }
            return crate::files_sealed::get(&a.conn, &a.id, &a.out, a.files_key.as_deref()).await;
        }
    }
    let mut stream = c
        .get(GetRequest {
            id: a.id.clone(),
            offset: a.offset,
            length: a.length,
        })
        .await
        .map_err(|s| refused(&format!("get {}", a.id), s))?
        .into_inner();
    let part = PathBuf::from(format!("{}.part", a.out.display()));
    let mut out = tokio::fs::File::create(&part)
        .await
        .with_context(|| format!("cannot create {}", part.display()))?;
    let mut total = 0u64;
    loop {
        match stream.message().await {
            Ok(Some(m)) => {
                total += m.data.len() as u64;
                out.write_all(&m.data)
                    .await
                    .with_context(|| format!("writing {}", part.display()))?;
            }
            Ok(None) => break,
            Err(s) => {
                drop(out);
                let _ = tokio::fs::remove_file(&part).await;
                return Err(refused(&format!("get {}", a.id), s));
            }
        }
    }
    out.sync_all().await?;
    drop(out);
    tokio::fs::rename(&part, &a.out)
        .await
        .with_context(|| format!("renaming {} to {}", part.display(), a.out.display()))?;
    eprintln!("{total} bytes written to {}", a.out.display());
    Ok(())
}

/// Puts `bytes` into the store of the peer behind `ch` (metadata first,
/// then pieces) and returns the file id: for `network up --demo`.
pub(crate) async fn put_bytes(
    ch: tonic::transport::Channel,
    bytes: &[u8],
    media_type: &str,
    public: bool,
) -> Result<String> {
    let meta = PutMeta {
        media_type: media_type.to_owned(),
        size: bytes.len() as u64,
        public,
        ..PutMeta::default()
    };
    put_with(ch, meta, bytes).await
}

/// Puts `meta` then `bytes` in pieces; the file id the peer answers.
pub(crate) async fn put_with(
    ch: tonic::transport::Channel,
    meta: PutMeta,
    bytes: &[u8],
) -> Result<String> {
    let mut c = FilesClient::new(ch).max_decoding_message_size(MAX_RESPONSE);
    let mut msgs = vec![PutRequest {
        part: Some(Part::Meta(meta)),
    }];
    msgs.extend(bytes.chunks(PIECE).map(|p| PutRequest {
        part: Some(Part::Data(p.to_vec())),
    }));
    let r = c
        .put(tokio_stream::iter(msgs))
        .await
        .map_err(|s| refused("put", s))?
        .into_inner();
    Ok(r.id)
}
