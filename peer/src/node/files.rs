//! MDSS on the peer: the `qcss.mdss.Files` gRPC service over this peer's
//! `qcss_mdss::Store`, and a `ChunkSource` that reads another org's peer
//! over mutual TLS (what `Repair` uses).
//!
//! Callers are identified by their TLS client certificate alone (no signed
//! request): it must chain to the TLS CA of a member org of the channel
//! (the TLS layer already checked it chains to one of them; here we learn
//! which). Reads need the channel's Readers policy, `Put` and `Repair` its
//! Writers policy; an upload is charged to the caller's MSP id. Every byte
//! sent was checked against its chunk hash by the store first.

use std::io::{self, Read};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use qcss_mdss::{ChunkHash, ChunkSource, Encryption, FileId, Limits, MediaType, OrgId, Store};
use qcss_network::Role;
use qcss_network::channel::Channel;
use qcss_network::msp::{Msp, MspConfig, MspError};
use qcss_network::policy::SignerInfo;
use qcss_proto::qcss::mdss::files_client::FilesClient;
use qcss_proto::qcss::mdss::files_server::Files;
use qcss_proto::qcss::mdss::put_request::Part;
use qcss_proto::qcss::mdss::{
    ChunkRequest, ChunkResponse, DamagedChunk, FileRequest, GetRequest, GetResponse,
    ManifestResponse, PutRequest, PutResponse, ReaderKey, ReaderKeysRequest, ReaderKeysResponse,
    RepairRequest, RepairResponse, StatResponse, VerifyResponse,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::node::{FilesSettings, Peer, PeerError};

/// Largest message the service decodes: a `Put` data message (clients send
/// [`PIECE`]-byte pieces) or a small request.
pub(crate) const MAX_REQUEST_BYTES: usize = 1 << 20;
/// Bytes per `Get` response message and per `Put` data message sent by
/// clients.
pub(crate) const PIECE: usize = 256 << 10;
/// Largest response a client decodes: one chunk or one manifest (both at
/// most 64 MiB, `qcss_mdss::MAX_MANIFEST_BYTES`), plus framing.
pub(crate) const MAX_RESPONSE_BYTES: usize = qcss_mdss::MAX_MANIFEST_BYTES + 4096;

/// The peer's file store and which of its files are public (served to
/// anyone on the web port): a file `<dir>/public/<id>` per public file,
/// holding the SHA-256 of its content (hex), and `<dir>/public-sha256/<sha>`
/// holding the id, so that a hash the ledger records (an inspection's
/// `report_sha256`, an attachment's `sha256`) finds the file. Both are
/// written after the file is stored, the index first.
#[derive(Debug)]
pub struct PeerFiles {
    /// The store.
    pub store: Store,
    public: PathBuf,
    by_sha256: PathBuf,
    /// Files a client read found damaged, for the keeper to repair at once
    /// (at most [`MAX_SUSPECTS`]; more wait for its next pass).
    suspects: std::sync::Mutex<std::collections::BTreeSet<FileId>>,
    /// Wakes the keeper when a suspect is added.
    pub(crate) wake: tokio::sync::Notify,
}

/// Damaged files remembered between two keeper wake-ups.
const MAX_SUSPECTS: usize = 1024;

impl PeerFiles {
    /// A client's read of `id` failed its hash check: the keeper repairs it
    /// from another org's copy now, not at its next pass.
    pub(crate) fn suspect(&self, id: FileId) {
        let mut s = self
            .suspects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.len() < MAX_SUSPECTS && s.insert(id) {
            tracing::warn!(file = %id, "a read found this copy damaged: repairing it now");
            self.wake.notify_one();
        }
    }

    /// The files reads found damaged since the last call.
    pub(crate) fn take_suspects(&self) -> Vec<FileId> {
        std::mem::take(
            &mut *self
                .suspects
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_iter()
        .collect()
    }
}

/// Whether the store error `e` says the stored bytes are damaged.
pub(crate) fn is_damage(e: &qcss_mdss::Error) -> bool {
    matches!(
        e,
        qcss_mdss::Error::ChunkDamaged { .. } | qcss_mdss::Error::ManifestDamaged { .. }
    )
}

/// Whether the reader error `e` wraps damage ([`is_damage`]).
fn is_io_damage(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<qcss_mdss::Error>())
        .is_some_and(is_damage)
}

/// Whether `s` is a SHA-256 in lowercase hex.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl PeerFiles {
    /// Whether `id` was uploaded as public.
    pub fn is_public(&self, id: &FileId) -> bool {
        self.public.join(id.to_hex()).is_file()
    }

    /// The public file whose content hashes to `sha256` (lowercase hex), if
    /// this peer holds one. Blocking (reads two small files).
    pub fn public_by_sha256(&self, sha256: &str) -> Option<FileId> {
        if !is_sha256_hex(sha256) {
            return None;
        }
        let id: FileId = std::fs::read_to_string(self.by_sha256.join(sha256))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        (self.is_public(&id) && self.store.has(&id)).then_some(id)
    }

    /// Marks `id` public: reads it once (every chunk checked against the
    /// manifest) to hash its content, then records it as
    /// [`PeerFiles::record_public`] does. Returns the content's SHA-256 (hex).
    pub(crate) fn mark_public(&self, id: &FileId) -> io::Result<String> {
        let mut r = self.store.get(id).map_err(io::Error::other)?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            ctx.update(&buf[..n]);
        }
        let sha = hex::encode(ctx.finish());
        self.record_public(id, &sha)?;
        Ok(sha)
    }

    /// Marks `id`, whose content hashes to `sha256` (hex), public: the
    /// index first, then the marker.
    fn record_public(&self, id: &FileId, sha256: &str) -> io::Result<()> {
        let id_hex = id.to_hex();
        for (dir, name, content) in [
            (&self.by_sha256, sha256, id_hex.as_str()),
            (&self.public, id_hex.as_str(), sha256),
        ] {
            std::fs::create_dir_all(dir)?;
            let tmp = dir.join(format!("{name}.tmp"));
            std::fs::write(&tmp, content.as_bytes())?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, dir.join(name))?;
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Indexes public files marked before markers held their hash (empty
    /// markers), reading each whole. Returns how many it indexed. The peer
    /// runs it on a blocking thread after it starts: until a file is
    /// indexed, `/files/sha256/…` does not find it (its id still works).
    pub(crate) fn index_old_markers(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.public) else {
            return 0;
        };
        let mut n = 0;
        for e in entries.flatten() {
            let empty = e.metadata().map(|m| m.len() == 0).unwrap_or(false);
            let id = e
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<FileId>().ok());
            if let (true, Some(id)) = (empty, id) {
                match self.mark_public(&id) {
                    Ok(_) => n += 1,
                    Err(err) => {
                        tracing::warn!(file = %id, error = %err, "cannot index a public file")
                    }
                }
            }
        }
        n
    }
}

/// Opens the peer's file store as `[files]` configures it.
pub(crate) fn open_store(
    s: &FilesSettings,
    data_dir: &std::path::Path,
) -> Result<Arc<PeerFiles>, PeerError> {
    let dir = s.dir.clone().unwrap_or_else(|| data_dir.join("files"));
    let limits = Limits {
        chunk_size: s.chunk_bytes,
        max_file_size: s.max_file_bytes,
        default_quota: s.quota_bytes_per_org,
        ..Limits::default()
    };
    limits
        .check()
        .map_err(|e| PeerError::Config(format!("[files]: {e}")))?;
    let store = Store::open(&dir, limits)
        .map_err(|e| PeerError::Config(format!("file store {}: {e}", dir.display())))?;
    let files = PeerFiles {
        store,
        public: dir.join("public"),
        by_sha256: dir.join("public-sha256"),
        suspects: Default::default(),
        wake: tokio::sync::Notify::new(),
    };
    Ok(Arc::new(files))
}

/// What a caller wants to do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    /// Writers, or a member org's peer (the keeper of another org asking
    /// for a copy: `files_keeper.rs`).
    Repair,
}

/// The `qcss.mdss.Files` service.
pub(crate) struct FilesService {
    peer: Arc<Peer>,
    files: Arc<PeerFiles>,
    store: Store,
    /// One MSP per member org over its TLS CAs, for the channel config of
    /// this sequence.
    tls_msps: Mutex<Option<(u64, Arc<Vec<Msp>>)>>,
}

impl FilesService {
    pub(crate) fn new(peer: Arc<Peer>, files: Arc<PeerFiles>) -> Self {
        FilesService {
            peer,
            store: files.store.clone(),
            files,
            tls_msps: Mutex::new(None),
        }
    }

    fn tls_msps(&self, channel: &Channel) -> Arc<Vec<Msp>> {
        let sequence = channel.config().sequence;
        let mut cache = self.tls_msps.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((s, msps)) = cache.as_ref()
            && *s == sequence
        {
            return msps.clone();
        }
        let msps: Vec<Msp> = channel
            .config()
            .orgs
            .iter()
            .filter_map(|o| {
                Msp::new(MspConfig {
                    msp_id: o.msp.msp_id.clone(),
                    root_certs: o.msp.tls_root_certs.clone(),
                    intermediate_certs: o.msp.tls_intermediate_certs.clone(),
                    crls: o.msp.crls.clone(),
                    ..MspConfig::default()
                })
                .ok()
            })
            .collect();
        let msps = Arc::new(msps);
        *cache = Some((sequence, msps.clone()));
        msps
    }

    /// The caller's org, if its TLS certificate is a member's and the
    /// channel's Readers (or Writers) policy accepts it.
    fn caller<T>(&self, req: &Request<T>, access: Access) -> Result<OrgId, Status> {
        let der = req
            .peer_certs()
            .and_then(|c| c.first().map(|c| c.as_ref().to_vec()))
            .ok_or_else(|| Status::unauthenticated("a TLS client certificate is required"))?;
        let channel = self.peer.channel();
        for msp in self.tls_msps(&channel).iter() {
            // A TLS certificate need not carry a role OU; one that chains to
            // the org's TLS CA but has none counts as a client.
            let role = match msp.validate(&der) {
                Ok(v) => v.role,
                Err(MspError::NoRole { .. }) => Role::Client,
                Err(_) => continue,
            };
            let msp_id = msp.id().0.clone();
            let signer = SignerInfo::new(qcss_network::signing::sha256(&der), msp_id.clone(), role);
            let ok = match access {
                Access::Read => channel.readers_ok(&[signer]),
                Access::Write => channel.writers_ok(&[signer]),
                Access::Repair => role == Role::Peer || channel.writers_ok(&[signer]),
            };
            if !ok {
                let policy = if access == Access::Read {
                    "Readers"
                } else {
                    "Writers"
                };
                return Err(Status::permission_denied(format!(
                    "a {} of {msp_id} does not satisfy the channel's {policy} policy",
                    role.as_str()
                )));
            }
            return OrgId::new(&msp_id).map_err(|e| Status::internal(e.to_string()));
        }
        Err(Status::permission_denied(
            "the TLS client certificate is not issued by a member org's TLS CA",
        ))
    }
}

fn parse_id(s: &str) -> Result<FileId, Status> {
    s.parse()
        .map_err(|e: qcss_mdss::Error| Status::invalid_argument(format!("file id: {e}")))
}

/// A store error as a gRPC status that names what it concerns.
fn status(e: qcss_mdss::Error) -> Status {
    use qcss_mdss::Error as E;
    let m = e.to_string();
    match e {
        E::NotFound(_) => Status::not_found(m),
        E::ChunkDamaged { .. } | E::SourceChunk { .. } | E::ManifestDamaged { .. } => {
            Status::data_loss(m)
        }
        E::TooLarge { .. } | E::TooManyChunks { .. } | E::QuotaExceeded { .. } => {
            Status::resource_exhausted(m)
        }
        E::RangeOutOfBounds { .. } => Status::out_of_range(m),
        E::Upload(_)
        | E::InvalidHash(_)
        | E::InvalidMediaType(_)
        | E::InvalidOrgId(_)
        | E::ManifestInvalid(_) => Status::invalid_argument(m),
        _ => Status::internal(m),
    }
}

/// An `io::Error` from a store reader: the store error inside, if any.
fn io_status(e: io::Error) -> Status {
    match e.into_inner() {
        Some(inner) => match inner.downcast::<qcss_mdss::Error>() {
            Ok(e) => status(*e),
            Err(other) => Status::internal(other.to_string()),
        },
        None => Status::internal("read failed"),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, qcss_mdss::Error> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(format!("store task: {e}")))?
        .map_err(status)
}

/// The upload's data messages as a `Read`, refusing more or fewer bytes
/// than declared.
struct Upload {
    rx: mpsc::Receiver<Result<Vec<u8>, String>>,
    buf: Vec<u8>,
    pos: usize,
    declared: u64,
    seen: u64,
}

impl Read for Upload {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.blocking_recv() {
                Some(Ok(data)) => {
                    self.seen += data.len() as u64;
                    if self.seen > self.declared {
                        return Err(io::Error::other(format!(
                            "more data than the declared {} bytes",
                            self.declared
                        )));
                    }
                    self.buf = data;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(io::Error::other(e)),
                None if self.seen == self.declared => return Ok(0),
                None => {
                    return Err(io::Error::other(format!(
                        "the upload ended after {} of the declared {} bytes",
                        self.seen, self.declared
                    )));
                }
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

type GetStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<GetResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Files for FilesService {
    async fn put(
        &self,
        request: Request<Streaming<PutRequest>>,
    ) -> Result<Response<PutResponse>, Status> {
        let org = self.caller(&request, Access::Write)?;
        let mut input = request.into_inner();
        let meta = match input.message().await?.and_then(|m| m.part) {
            Some(Part::Meta(meta)) => meta,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message of an upload must be its metadata",
                ));
            }
        };
        let media_type = MediaType::new(&meta.media_type).map_err(status)?;
        // A file its uploader sealed: the peer stores the ciphertext and
        // the wrapped keys, never seeing the plaintext or the file key.
        let sealed = if meta.encryption.is_empty() {
            if meta.chunk_size != 0 {
                return Err(Status::invalid_argument(
                    "chunk_size is only given with encryption (the peer chunks public files)",
                ));
            }
            None
        } else {
            if meta.public {
                return Err(Status::invalid_argument(
                    "a file cannot be both public and confidential",
                ));
            }
            let enc = Encryption::from_bytes(&meta.encryption)
                .map_err(|e| Status::invalid_argument(format!("encryption section: {e}")))?;
            Some((enc, meta.chunk_size))
        };
        let limits = self.store.limits();
        if meta.size > limits.max_file_size {
            return Err(Status::resource_exhausted(format!(
                "a file of {} bytes is over this peer's limit of {} bytes",
                meta.size, limits.max_file_size
            )));
        }
        if let Some(quota) = limits.quota(&org) {
            let used = self.store.usage(&org);
            if used.saturating_add(meta.size) > quota {
                return Err(Status::resource_exhausted(format!(
                    "org {org} would exceed its quota of {quota} bytes ({used} used, adding {})",
                    meta.size
                )));
            }
        }
        let (tx, rx) = mpsc::channel(4);
        let upload = Upload {
            rx,
            buf: Vec::new(),
            pos: 0,
            declared: meta.size,
            seen: 0,
        };
        let store = self.store.clone();
        let owner = org.clone();
        let job = tokio::task::spawn_blocking(move || match sealed {
            None => store.put(&owner, upload, &media_type),
            Some((enc, chunk_size)) => {
                store.put_sealed(&owner, upload, &media_type, enc, chunk_size)
            }
        });
        // The content's SHA-256, of exactly the bytes the store was given
        // (the id it answers covers the same bytes): a public file is
        // indexed by it without reading it back.
        let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
        loop {
            let item = match input.message().await {
                Ok(Some(PutRequest {
                    part: Some(Part::Data(d)),
                })) => Ok(d),
                Ok(Some(_)) => Err("only the first message of an upload may be metadata".into()),
                Ok(None) => break,
                Err(s) => Err(format!("upload stream: {}", s.message())),
            };
            if let Ok(d) = &item {
                sha.update(d);
            }
            let stop = item.is_err();
            // The store stopped reading (limit, quota, error): its answer says why.
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
        drop(tx);
        let id = job
            .await
            .map_err(|e| Status::internal(format!("store task: {e}")))?
            .map_err(status)?;
        if meta.public {
            let (files, sha) = (self.files.clone(), hex::encode(sha.finish()));
            tokio::task::spawn_blocking(move || files.record_public(&id, &sha))
                .await
                .map_err(|e| Status::internal(format!("store task: {e}")))?
                .map_err(|e| Status::internal(format!("marking {id} public: {e}")))?;
        }
        tracing::info!(file = %id, %org, size = meta.size, public = meta.public,
            confidential = !meta.encryption.is_empty(), "file stored");
        Ok(Response::new(PutResponse {
            id: id.to_hex(),
            size: meta.size,
        }))
    }

    async fn reader_keys(
        &self,
        request: Request<ReaderKeysRequest>,
    ) -> Result<Response<ReaderKeysResponse>, Status> {
        self.caller(&request, Access::Read)?;
        let channel = self.peer.channel();
        let config = channel.config();
        Ok(Response::new(ReaderKeysResponse {
            config_sequence: config.sequence,
            keys: config
                .orgs
                .iter()
                .filter_map(|o| {
                    Some(ReaderKey {
                        msp_id: o.msp.msp_id.clone(),
                        x25519_public: o.file_key.clone()?,
                    })
                })
                .collect(),
        }))
    }

    async fn stat(&self, request: Request<FileRequest>) -> Result<Response<StatResponse>, Status> {
        self.caller(&request, Access::Read)?;
        let id = parse_id(&request.get_ref().id)?;
        let store = self.store.clone();
        let s = blocking(move || store.stat(&id)).await?;
        Ok(Response::new(StatResponse {
            id: s.id.to_hex(),
            size: s.size,
            plain_size: s.plain_size,
            chunk_size: s.chunk_size,
            chunks: s.chunks,
            media_type: s.media_type.as_str().to_owned(),
            confidential: s.readers.is_some(),
            public: s.readers.is_none() && self.files.is_public(&s.id),
            readers: s
                .readers
                .unwrap_or_default()
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect(),
        }))
    }

    async fn manifest(
        &self,
        request: Request<FileRequest>,
    ) -> Result<Response<ManifestResponse>, Status> {
        self.caller(&request, Access::Read)?;
        let id = parse_id(&request.get_ref().id)?;
        let store = self.store.clone();
        let manifest = blocking(move || store.manifest_bytes(&id)).await?;
        Ok(Response::new(ManifestResponse { manifest }))
    }

    async fn get_chunk(
        &self,
        request: Request<ChunkRequest>,
    ) -> Result<Response<ChunkResponse>, Status> {
        self.caller(&request, Access::Read)?;
        let r = request.get_ref();
        let hash: ChunkHash = r
            .hash
            .parse()
            .map_err(|e: qcss_mdss::Error| Status::invalid_argument(format!("chunk hash: {e}")))?;
        let file = if r.file.is_empty() {
            None
        } else {
            Some(parse_id(&r.file)?)
        };
        let store = self.store.clone();
        let files = self.files.clone();
        let data = blocking(move || {
            let read = store.served_chunk(&hash);
            // Our copy of the chunk is damaged: if we hold the file the
            // caller reads it for (and it has that chunk), repair it now
            // — only then, so a caller cannot make this peer fetch files
            // it does not keep.
            if let (Err(qcss_mdss::Error::SourceChunk { .. }), Some(id)) = (&read, file)
                && store.manifest(&id).is_ok_and(|m| m.chunks.contains(&hash))
            {
                files.suspect(id);
            }
            read
        })
        .await?;
        Ok(Response::new(ChunkResponse { data }))
    }

    type GetStream = GetStream;

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetStream>, Status> {
        self.caller(&request, Access::Read)?;
        let r = request.into_inner();
        let id = parse_id(&r.id)?;
        let store = self.store.clone();
        let reader = tokio::task::spawn_blocking(move || {
            let size = store.stat(&id)?.size;
            let len = if r.length == 0 {
                size.saturating_sub(r.offset)
            } else {
                r.length
            };
            store.get_range(&id, r.offset, len)
        })
        .await
        .map_err(|e| Status::internal(format!("store task: {e}")))?;
        let reader = match reader {
            Ok(r) => r,
            Err(e) => {
                if is_damage(&e) {
                    self.files.suspect(id);
                }
                return Err(status(e));
            }
        };
        let (tx, rx) = mpsc::channel(4);
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            loop {
                let mut buf = vec![0u8; PIECE];
                let mut n = 0;
                while n < PIECE {
                    match reader.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) => {
                            if is_io_damage(&e) {
                                files.suspect(id);
                            }
                            let _ = tx.blocking_send(Err(io_status(e)));
                            return;
                        }
                    }
                }
                if n == 0 {
                    return;
                }
                buf.truncate(n);
                if tx.blocking_send(Ok(GetResponse { data: buf })).is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn verify(
        &self,
        request: Request<FileRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        self.caller(&request, Access::Read)?;
        let id = parse_id(&request.get_ref().id)?;
        let store = self.store.clone();
        let report = blocking(move || store.verify(&id)).await?;
        Ok(Response::new(VerifyResponse {
            chunks: report.chunks,
            damaged: report
                .damaged
                .iter()
                .map(|d| DamagedChunk {
                    index: d.index,
                    hash: d.hash.to_hex(),
                    damage: d.damage.to_string(),
                })
                .collect(),
        }))
    }

    async fn repair(
        &self,
        request: Request<RepairRequest>,
    ) -> Result<Response<RepairResponse>, Status> {
        self.caller(&request, Access::Repair)?;
        let r = request.into_inner();
        let id = parse_id(&r.id)?;
        if self.peer.channel().msp(&r.from_msp_id).is_none() {
            return Err(Status::invalid_argument(format!(
                "{:?} is not a member org of the channel",
                r.from_msp_id
            )));
        }
        let (report, from) = repair_from_org(&self.peer, &self.store, id, &r.from_msp_id)
            .await
            .map_err(|e| match e {
                RepairFailed::NoEndpoint(m) => Status::failed_precondition(m),
                RepairFailed::Unavailable(m) => Status::unavailable(m),
            })?;
        // A public file stays public where it is copied to (the keeper's
        // replication is a Repair asked of this peer).
        if !self.files.is_public(&id) && self.source_says_public(&from, &id).await {
            let files = self.files.clone();
            match tokio::task::spawn_blocking(move || files.mark_public(&id)).await {
                Ok(Ok(_)) => {
                    tracing::info!(file = %id, %from, "repaired copy is public, as its source")
                }
                Ok(Err(e)) => {
                    tracing::warn!(file = %id, error = %e, "cannot mark a repaired copy public")
                }
                Err(e) => tracing::warn!(file = %id, error = %e, "store task"),
            }
        }
        Ok(Response::new(RepairResponse {
            chunks: report.chunks,
            fetched: report.fetched,
            bytes_fetched: report.bytes_fetched,
            manifest_fetched: report.manifest_fetched,
            from,
        }))
    }
}

impl FilesService {
    /// Whether the peer at `addr` holds `id` as a public (not confidential) file.
    async fn source_says_public(&self, addr: &str, id: &FileId) -> bool {
        let Ok(channel) = self.peer.connect(addr).await else {
            return false;
        };
        let mut c = FilesClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
        match c.stat(FileRequest { id: id.to_hex() }).await {
            Ok(r) => {
                let r = r.into_inner();
                r.public && !r.confidential
            }
            Err(_) => false,
        }
    }
}

/// Why [`repair_from_org`] could not repair.
pub(crate) enum RepairFailed {
    /// No peer endpoint is known for the org.
    NoEndpoint(String),
    /// Every peer of the org failed (each one's reason joined).
    Unavailable(String),
}

/// Makes this peer's copy of `id` whole from a peer of org `msp_id`
/// (manifest too, if absent), trying the org's peers in turn; every byte is
/// checked before it is written. Answers what was fetched and from where.
pub(crate) async fn repair_from_org(
    peer: &Peer,
    store: &Store,
    id: FileId,
    msp_id: &str,
) -> Result<(qcss_mdss::RepairReport, String), RepairFailed> {
    let endpoints = peer.peer_endpoints(msp_id);
    if endpoints.is_empty() {
        return Err(RepairFailed::NoEndpoint(format!(
            "no peer endpoint is known for {msp_id}"
        )));
    }
    let mut errors = Vec::new();
    for addr in endpoints {
        let channel = match peer.connect(&addr).await {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let source = RemoteSource::new(channel, addr.clone());
        let store = store.clone();
        match blocking(move || store.repair(&id, &source)).await {
            Ok(report) => {
                tracing::info!(file = %id, from = %addr, fetched = report.fetched, "file repaired");
                return Ok((report, addr));
            }
            Err(s) => {
                peer.disconnect(&addr).await;
                errors.push(format!("{addr}: {}", s.message()));
            }
        }
    }
    Err(RepairFailed::Unavailable(format!(
        "cannot repair {id} from {msp_id}: {}",
        errors.join("; ")
    )))
}

/// Another peer's store, read over mutual TLS. Blocking calls: use it from
/// a blocking thread (the store's repair runs on one).
pub(crate) struct RemoteSource {
    client: FilesClient<tonic::transport::Channel>,
    addr: String,
    handle: tokio::runtime::Handle,
}

impl RemoteSource {
    /// A source reading the peer at `addr` over `channel`. Must be created
    /// inside a tokio runtime.
    pub(crate) fn new(channel: tonic::transport::Channel, addr: String) -> Self {
        RemoteSource {
            client: FilesClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES),
            addr,
            handle: tokio::runtime::Handle::current(),
        }
    }

    fn failed(&self, what: &str, s: &Status) -> qcss_mdss::Error {
        qcss_mdss::Error::Io {
            op: "fetch from peer",
            path: std::path::PathBuf::from(&self.addr),
            source: io::Error::other(format!("{what}: {:?}: {}", s.code(), s.message())),
        }
    }
}

impl ChunkSource for RemoteSource {
    fn manifest_bytes(&self, id: &FileId) -> Result<Vec<u8>, qcss_mdss::Error> {
        let mut c = self.client.clone();
        let req = FileRequest { id: id.to_hex() };
        match self.handle.block_on(c.manifest(req)) {
            Ok(r) => Ok(r.into_inner().manifest),
            Err(s) if s.code() == tonic::Code::NotFound => Err(qcss_mdss::Error::NotFound(*id)),
            Err(s) => Err(self.failed(&format!("manifest of {id}"), &s)),
        }
    }

    fn chunk(&self, file: &FileId, hash: &ChunkHash) -> Result<Vec<u8>, qcss_mdss::Error> {
        let mut c = self.client.clone();
        let req = ChunkRequest {
            hash: hash.to_hex(),
            file: file.to_hex(),
        };
        match self.handle.block_on(c.get_chunk(req)) {
            Ok(r) => Ok(r.into_inner().data),
            Err(s) => Err(self.failed(&format!("chunk {hash}"), &s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use qcss_mdss::{MediaType, OrgId};

    use super::open_store;
    use crate::node::FilesSettings;

    /// A public file marked by a build from before the content-hash index
    /// (an empty marker) is found by its hash once indexed.
    #[test]
    fn old_markers_are_indexed_by_content_hash() {
        let dir = tempfile::tempdir().unwrap();
        let files = open_store(&FilesSettings::default(), dir.path()).unwrap();
        let body = b"lab report".repeat(1000);
        let id = files
            .store
            .put(
                &OrgId::new("Org1MSP").unwrap(),
                &body[..],
                &MediaType::new("application/pdf").unwrap(),
            )
            .unwrap();
        std::fs::create_dir_all(&files.public).unwrap();
        std::fs::write(files.public.join(id.to_hex()), b"").unwrap();
        let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &body));
        assert!(files.is_public(&id));
        assert_eq!(files.public_by_sha256(&sha), None, "not indexed yet");
        assert_eq!(files.index_old_markers(), 1);
        assert_eq!(files.public_by_sha256(&sha), Some(id));
        assert_eq!(files.index_old_markers(), 0, "done once");
    }
}
