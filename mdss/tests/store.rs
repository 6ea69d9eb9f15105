//! Stores on tempdirs: round trips, range reads, damage detected, refused
//! and repaired, K−1 losses survived, confidential files, limits, quotas,
//! crash leftovers.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use qcss_mdss::{
    ChunkHash, ChunkSource, Damage, Encryption, Error, FileId, Limits, Manifest, MediaType, Opener,
    OrgId, OrgSecretKey, Store, seal, sealed_size,
};
use tempfile::TempDir;

const CS: u32 = 64;

fn limits() -> Limits {
    Limits {
        chunk_size: CS,
        ..Limits::default()
    }
}

fn org(name: &str) -> OrgId {
    OrgId::new(name).unwrap()
}

fn pdf() -> MediaType {
    MediaType::new("application/pdf").unwrap()
}

/// Deterministic non-repeating bytes.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn open(dir: &Path) -> Store {
    Store::open(dir, limits()).unwrap()
}

fn read_all(mut r: impl Read) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    match r.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) => Err(typed(e)),
    }
}

/// The MDSS error inside an `io::Error` from a reader.
fn typed(e: io::Error) -> Error {
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(e)) => *e,
        other => panic!("not an MDSS error: {other:?}"),
    }
}

fn chunk_path(dir: &Path, hash: &ChunkHash) -> PathBuf {
    let h = hash.to_hex();
    dir.join("chunks").join(&h[..2]).join(h)
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let p = e.unwrap().path();
            if p.is_dir() { count_files(&p) } else { 1 }
        })
        .sum()
}

#[test]
fn round_trips() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    for len in [0, 1, 63, 64, 65, 128, 1000] {
        let bytes = data(len, 1);
        let id = store.put(&org("Org1"), &bytes[..], &pdf()).unwrap();
        assert!(store.has(&id));
        assert_eq!(
            read_all(store.get(&id).unwrap()).unwrap(),
            bytes,
            "len {len}"
        );
        let stat = store.stat(&id).unwrap();
        assert_eq!(stat.size, len as u64);
        assert_eq!(stat.chunks as usize, len.div_ceil(CS as usize));
        assert!(store.verify(&id).unwrap().is_intact());
    }
    // Same content and media type: same id, in any store; another media
    // type: another id.
    let other_dir = TempDir::new().unwrap();
    let other = open(other_dir.path());
    let a = store.put(&org("Org1"), &data(200, 2)[..], &pdf()).unwrap();
    let b = other.put(&org("Org2"), &data(200, 2)[..], &pdf()).unwrap();
    let c = other
        .put(
            &org("Org2"),
            &data(200, 2)[..],
            &MediaType::new("image/png").unwrap(),
        )
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(store.list().unwrap().len(), 8);
}

#[test]
fn range_reads_cross_chunk_boundaries() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let bytes = data(300, 3);
    let id = store.put(&org("Org1"), &bytes[..], &pdf()).unwrap();
    let points = [0u64, 1, 63, 64, 65, 127, 128, 129, 200, 255, 256, 299, 300];
    for &start in &points {
        for &end in &points {
            if end < start {
                continue;
            }
            let got = read_all(store.get_range(&id, start, end - start).unwrap()).unwrap();
            assert_eq!(got, bytes[start as usize..end as usize], "{start}..{end}");
        }
    }
    for (start, len) in [(0, 301), (300, 1), (301, 0), (u64::MAX, 2)] {
        assert!(matches!(
            store.get_range(&id, start, len),
            Err(Error::RangeOutOfBounds { .. })
        ));
    }
}

#[test]
fn damaged_copies_are_refused_and_repaired() {
    let dir_a = TempDir::new().unwrap();
    let dir_b = TempDir::new().unwrap();
    let a = open(dir_a.path());
    let b = open(dir_b.path());
    let bytes = data(300, 4);
    let id = a.put(&org("Org1"), &bytes[..], &pdf()).unwrap();
    b.repair(&id, &a).unwrap();
    let chunks = a.manifest(&id).unwrap().chunks;

    // A flipped byte in chunk 1, a truncated chunk 2, a missing chunk 3.
    let p1 = chunk_path(dir_a.path(), &chunks[1]);
    let mut c1 = fs::read(&p1).unwrap();
    c1[10] ^= 0x01;
    fs::write(&p1, &c1).unwrap();
    let p2 = chunk_path(dir_a.path(), &chunks[2]);
    fs::write(&p2, &fs::read(&p2).unwrap()[..30]).unwrap();
    fs::remove_file(chunk_path(dir_a.path(), &chunks[3])).unwrap();

    // Reading serves chunk 0, then stops before any byte of chunk 1.
    let mut r = a.get(&id).unwrap();
    let mut served = Vec::new();
    let err = typed(r.read_to_end(&mut served).unwrap_err());
    assert_eq!(served, bytes[..64]);
    match err {
        Error::ChunkDamaged {
            file,
            index: 1,
            hash,
            damage: Damage::HashMismatch { .. },
        } => assert_eq!((file, hash), (id, chunks[1])),
        other => panic!("{other:?}"),
    }
    // A range inside the damaged chunk is refused too, as is serving the
    // chunk to another store.
    assert!(matches!(
        read_all(a.get_range(&id, 70, 5).unwrap()),
        Err(Error::ChunkDamaged { index: 1, .. })
    ));
    assert!(matches!(
        read_all(a.get_range(&id, 130, 5).unwrap()),
        Err(Error::ChunkDamaged {
            index: 2,
            damage: Damage::Truncated {
                expected: 64,
                found: 30
            },
            ..
        })
    ));
    assert!(matches!(
        a.chunk(&id, &chunks[1]),
        Err(Error::SourceChunk {
            damage: Damage::HashMismatch { .. },
            ..
        })
    ));

    // A paced verify sees every chunk's length, and stops when told.
    let mut lens = Vec::new();
    let paced = a
        .verify_paced(&id, &mut |len| {
            lens.push(len);
            true
        })
        .unwrap()
        .expect("read to the end");
    assert_eq!(lens.iter().sum::<u64>(), bytes.len() as u64);
    assert_eq!(lens.len(), 5);
    let mut calls = 0;
    let stopped = a
        .verify_paced(&id, &mut |_| {
            calls += 1;
            calls < 2
        })
        .unwrap();
    assert!(stopped.is_none(), "stopped after two chunks");
    assert_eq!(calls, 2);

    let report = a.verify(&id).unwrap();
    assert_eq!(report, paced);
    let damaged: Vec<(u32, Damage)> = report.damaged.iter().map(|d| (d.index, d.damage)).collect();
    assert_eq!(damaged.len(), 3);
    assert_eq!(
        damaged[1],
        (
            2,
            Damage::Truncated {
                expected: 64,
                found: 30
            }
        )
    );
    assert_eq!(damaged[2], (3, Damage::Missing));

    let repaired = a.repair(&id, &b).unwrap();
    assert_eq!((repaired.chunks, repaired.fetched), (5, 3));
    assert!(!repaired.manifest_fetched);
    assert!(a.verify(&id).unwrap().is_intact());
    assert_eq!(read_all(a.get(&id).unwrap()).unwrap(), bytes);
    // Nothing left to do.
    assert_eq!(a.repair(&id, &b).unwrap().fetched, 0);
}

/// A source that lies: returns other bytes than asked for.
struct Liar;

impl ChunkSource for Liar {
    fn manifest_bytes(&self, _: &FileId) -> Result<Vec<u8>, Error> {
        Ok(b"qcss/mdss/manifest/v1 garbage".to_vec())
    }
    fn chunk(&self, _: &FileId, _: &ChunkHash) -> Result<Vec<u8>, Error> {
        Ok(vec![0; CS as usize])
    }
}

#[test]
fn garbage_from_a_source_is_refused() {
    let dir_a = TempDir::new().unwrap();
    let dir_b = TempDir::new().unwrap();
    let a = open(dir_a.path());
    let b = open(dir_b.path());
    let id = a.put(&org("Org1"), &data(200, 5)[..], &pdf()).unwrap();
    // A manifest that is not the file's.
    assert!(matches!(
        b.repair(&id, &Liar),
        Err(Error::ManifestDamaged { .. })
    ));
    // A right manifest, then wrong chunks: refused, nothing written.
    b.repair(&id, &a).unwrap();
    let chunks = b.manifest(&id).unwrap().chunks;
    fs::remove_file(chunk_path(dir_b.path(), &chunks[0])).unwrap();
    assert!(matches!(
        b.repair(&id, &Liar),
        Err(Error::SourceChunk {
            damage: Damage::HashMismatch { .. },
            ..
        })
    ));
    assert!(!chunk_path(dir_b.path(), &chunks[0]).exists());
    // A garbage manifest on disk is refused on read, then repaired.
    let h = id.to_hex();
    let mpath = dir_b.path().join("manifests").join(&h[..2]).join(&h);
    fs::write(&mpath, b"garbage").unwrap();
    assert!(matches!(b.get(&id), Err(Error::ManifestDamaged { .. })));
    let r = b.repair(&id, &a).unwrap();
    assert!(r.manifest_fetched);
    assert_eq!(read_all(b.get(&id).unwrap()).unwrap(), data(200, 5));
    // Uploading the file again also replaces a damaged manifest.
    fs::write(&mpath, b"garbage").unwrap();
    assert_eq!(b.put(&org("Org2"), &data(200, 5)[..], &pdf()).unwrap(), id);
    assert_eq!(read_all(b.get(&id).unwrap()).unwrap(), data(200, 5));
    // An oversize manifest on disk is refused without being read whole.
    fs::write(&mpath, vec![0u8; 10 << 20]).unwrap();
    assert!(matches!(
        b.manifest(&id),
        Err(Error::ManifestDamaged { .. })
    ));
}

#[test]
fn a_file_kept_by_k_orgs_survives_k_minus_1_losses() {
    const K: usize = 3;
    let dirs: Vec<TempDir> = (0..K).map(|_| TempDir::new().unwrap()).collect();
    let stores: Vec<Store> = dirs.iter().map(|d| open(d.path())).collect();
    let bytes = data(1000, 6);
    let id = stores[0].put(&org("Org1"), &bytes[..], &pdf()).unwrap();
    for s in &stores[1..] {
        s.repair(&id, &stores[0]).unwrap();
    }
    // K−1 orgs lose it: one by delete, one by losing its whole disk.
    stores[0].delete(&id).unwrap();
    assert!(!stores[0].has(&id));
    assert_eq!(count_files(&dirs[0].path().join("chunks")), 0);
    drop(stores);
    fs::remove_dir_all(dirs[1].path()).unwrap();
    let stores: Vec<Store> = dirs.iter().map(|d| open(d.path())).collect();
    assert!(!stores[1].has(&id));

    // Each re-fetches from whoever still has it.
    for (i, s) in stores.iter().enumerate() {
        if s.has(&id) {
            continue;
        }
        let survivor = stores.iter().find(|o| o.has(&id)).unwrap();
        let r = s.repair(&id, survivor).unwrap();
        assert!(r.manifest_fetched, "store {i}");
        assert_eq!(r.fetched as usize, 1000usize.div_ceil(CS as usize));
    }
    for s in &stores {
        assert_eq!(read_all(s.get(&id).unwrap()).unwrap(), bytes);
    }
    // The replication plan agrees that nobody needs to fetch now.
    let members = [org("Org1"), org("Org2"), org("Org3")];
    let holders: BTreeSet<OrgId> = members.iter().cloned().collect();
    let policy = qcss_mdss::Replication {
        default_copies: K as u32,
        per_kind: Default::default(),
    };
    assert!(
        policy
            .plan("report", &id, &members, &holders)
            .fetch
            .is_empty()
    );
}

#[test]
fn confidential_files() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let lab = OrgSecretKey::generate().unwrap();
    let buyer = OrgSecretKey::generate().unwrap();
    let outsider = OrgSecretKey::generate().unwrap();
    let readers = [
        (org("Lab"), lab.public_key()),
        (org("Buyer"), buyer.public_key()),
    ];
    for len in [0usize, 1, 47, 48, 49, 500] {
        let plain = data(len, 7);
        let id = store
            .put_confidential(&org("Lab"), &plain[..], &pdf(), &readers)
            .unwrap();
        let stat = store.stat(&id).unwrap();
        assert_eq!(stat.plain_size, len as u64);
        assert_eq!(stat.readers, Some(vec![org("Buyer"), org("Lab")]));
        for (name, key) in [("Lab", &lab), ("Buyer", &buyer)] {
            let got = read_all(store.open_confidential(&id, &org(name), key).unwrap()).unwrap();
            assert_eq!(got, plain, "{name} len {len}");
        }
        assert!(matches!(
            store.open_confidential(&id, &org("Outsider"), &outsider),
            Err(Error::NotAReader { .. })
        ));
        // Claiming a listed org's name without its key does not help.
        assert!(matches!(
            store.open_confidential(&id, &org("Buyer"), &outsider),
            Err(Error::KeyUnwrap { .. })
        ));
        // What is stored (and hashed) is ciphertext.
        let stored = read_all(store.get(&id).unwrap()).unwrap();
        assert_eq!(stored.len() as u64, stat.size);
        if len >= 16 {
            assert!(!stored.windows(16).any(|w| w == &plain[..16]));
        }
    }
    // Same plaintext twice: different keys, different ids.
    let p = data(100, 8);
    let a = store
        .put_confidential(&org("Lab"), &p[..], &pdf(), &readers)
        .unwrap();
    let b = store
        .put_confidential(&org("Lab"), &p[..], &pdf(), &readers)
        .unwrap();
    assert_ne!(a, b);
    // A public file is not confidential; no readers is refused.
    let public = store.put(&org("Lab"), &p[..], &pdf()).unwrap();
    assert!(matches!(
        store.open_confidential(&public, &org("Lab"), &lab),
        Err(Error::NotConfidential(_))
    ));
    assert!(matches!(
        store.put_confidential(&org("Lab"), &p[..], &pdf(), &[]),
        Err(Error::InvalidReaders(_))
    ));
    // A confidential copy is repaired like any other, from another store.
    let dir2 = TempDir::new().unwrap();
    let other = open(dir2.path());
    other.repair(&a, &store).unwrap();
    let got = read_all(other.open_confidential(&a, &org("Buyer"), &buyer).unwrap()).unwrap();
    assert_eq!(got, p);
}

/// What a client does: seal before upload (the store never sees the
/// plaintext or the file key), send the section as bytes, open chunks
/// itself after fetching the ciphertext and the manifest.
#[test]
fn files_sealed_by_the_client() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let lab = OrgSecretKey::from_hex(&OrgSecretKey::generate().unwrap().to_hex()).unwrap();
    let buyer = OrgSecretKey::generate().unwrap();
    let readers = [
        (org("Lab"), lab.public_key()),
        (org("Buyer"), buyer.public_key()),
    ];
    for (len, cs) in [
        (0usize, 64u32),
        (1, 64),
        (48, 64),
        (49, 64),
        (500, 64),
        (3000, 1024),
    ] {
        let plain = data(len, 9);
        let (enc, sealer) = seal(&plain[..], &readers, cs).unwrap();
        // The section crosses the wire as bytes and decodes to itself.
        let enc = Encryption::from_bytes(&enc.to_bytes()).unwrap();
        let mut sealed = Vec::new();
        let mut sealer = sealer;
        sealer.read_to_end(&mut sealed).unwrap();
        assert_eq!(Some(sealed.len() as u64), sealed_size(len as u64, cs));
        let id = store
            .put_sealed(&org("Lab"), &sealed[..], &pdf(), enc, cs)
            .unwrap();
        // The store reads it as its own confidential files.
        let got = read_all(store.open_confidential(&id, &org("Buyer"), &buyer).unwrap()).unwrap();
        assert_eq!(got, plain, "len {len}");
        // A client opens it from the manifest and the chunks alone.
        let m = Manifest::decode(&store.manifest_bytes(&id).unwrap(), &limits()).unwrap();
        let opener = Opener::new(id, &m, &org("Lab"), &lab).unwrap();
        let mut opened = Vec::new();
        for (i, chunk) in sealed.chunks(cs as usize).enumerate() {
            assert_eq!(ChunkHash::of(chunk), m.chunks[i]);
            opened.extend(opener.open(i as u32, chunk.to_vec()).unwrap());
        }
        assert_eq!(opened, plain);
        // A chunk under the wrong index (or altered) does not open.
        if m.chunks.len() > 1 {
            assert!(matches!(
                opener.open(1, sealed[..cs as usize].to_vec()),
                Err(Error::Decrypt { index: 1, .. })
            ));
        }
        assert!(matches!(
            Opener::new(id, &m, &org("Lab"), &buyer),
            Err(Error::KeyUnwrap { .. })
        ));
    }
    // Strict section bytes: a public flag, trailing bytes, no readers.
    let (enc, _) = seal(&b"x"[..], &readers, 64).unwrap();
    let mut bytes = enc.to_bytes();
    assert!(Encryption::from_bytes(&[0]).is_err());
    bytes.push(0);
    assert!(Encryption::from_bytes(&bytes).is_err());
    assert!(Encryption::from_bytes(&[1, 1, 0, 0]).is_err());
    // A sealed upload whose last chunk cannot hold a tag, or with a chunk
    // size out of range, is refused with nothing kept.
    let r = store.put_sealed(&org("Lab"), &[7u8; 64 + 10][..], &pdf(), enc.clone(), 64);
    assert!(matches!(r, Err(Error::ManifestInvalid(_))), "{r:?}");
    let r = store.put_sealed(&org("Lab"), &[7u8; 10][..], &pdf(), enc, 32);
    assert!(matches!(r, Err(Error::ManifestInvalid(_))), "{r:?}");
    assert_eq!(sealed_size(10, 16), None);
    // Keys in hex: 64 digits only.
    assert!(OrgSecretKey::from_hex("abc").is_err());
    assert!(qcss_mdss::OrgPublicKey::from_hex(&"zz".repeat(32)).is_err());
}

#[test]
fn oversize_uploads_are_refused_and_leave_nothing() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(
        dir.path(),
        Limits {
            max_file_size: 1000,
            ..limits()
        },
    )
    .unwrap();
    assert!(matches!(
        store.put(&org("Org1"), &data(1001, 9)[..], &pdf()),
        Err(Error::TooLarge { limit: 1000 })
    ));
    // An endless upload is cut at the limit.
    assert!(matches!(
        store.put(&org("Org1"), io::repeat(7), &pdf()),
        Err(Error::TooLarge { .. } | Error::TooManyChunks { .. })
    ));
    let few_dir = TempDir::new().unwrap();
    let few = Store::open(
        few_dir.path(),
        Limits {
            max_chunks: 10,
            ..limits()
        },
    )
    .unwrap();
    assert!(matches!(
        few.put(&org("Org1"), &data(700, 9)[..], &pdf()),
        Err(Error::TooManyChunks { limit: 10 })
    ));
    assert_eq!(count_files(few_dir.path()), 0);
    // An upload whose reader fails midway.
    struct Failing(usize);
    impl Read for Failing {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("connection reset"));
            }
            let n = out.len().min(self.0);
            out[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }
    assert!(matches!(
        store.put(&org("Org1"), Failing(300), &pdf()),
        Err(Error::Upload(_))
    ));
    for sub in ["chunks", "manifests", "owners", "tmp"] {
        assert_eq!(count_files(&dir.path().join(sub)), 0, "{sub}");
    }
    assert_eq!(store.usage(&org("Org1")), 0);
    assert!(store.put(&org("Org1"), &data(1000, 9)[..], &pdf()).is_ok());
    // Bad limits are refused.
    let bad = Limits {
        chunk_size: 8,
        ..Limits::default()
    };
    assert!(matches!(
        Store::open(dir.path(), bad),
        Err(Error::InvalidLimits(_))
    ));
}

#[test]
fn quotas_per_org() {
    let dir = TempDir::new().unwrap();
    let quota_limits = || Limits {
        quotas: [(org("Org1"), 1000)].into_iter().collect(),
        default_quota: Some(100),
        ..limits()
    };
    let store = Store::open(dir.path(), quota_limits()).unwrap();
    let first = store.put(&org("Org1"), &data(600, 10)[..], &pdf()).unwrap();
    assert_eq!(store.usage(&org("Org1")), 600);
    let chunks_before = count_files(&dir.path().join("chunks"));
    match store.put(&org("Org1"), &data(600, 11)[..], &pdf()) {
        Err(Error::QuotaExceeded {
            org: o,
            quota: 1000,
            used: 600,
            ..
        }) => {
            assert_eq!(o, org("Org1"))
        }
        other => panic!("{other:?}"),
    }
    // Nothing partial left behind.
    assert_eq!(count_files(&dir.path().join("chunks")), chunks_before);
    assert_eq!(count_files(&dir.path().join("tmp")), 0);
    assert_eq!(store.list().unwrap(), vec![first]);
    // Uploading a file it already holds is free.
    assert_eq!(
        store.put(&org("Org1"), &data(600, 10)[..], &pdf()).unwrap(),
        first
    );
    assert_eq!(store.usage(&org("Org1")), 600);
    // Another org has its own (default) quota.
    assert!(matches!(
        store.put(&org("Org2"), &data(101, 12)[..], &pdf()),
        Err(Error::QuotaExceeded { quota: 100, .. })
    ));
    store.put(&org("Org2"), &data(100, 12)[..], &pdf()).unwrap();
    // Usage survives a restart; delete gives it back.
    drop(store);
    let store = Store::open(dir.path(), quota_limits()).unwrap();
    assert_eq!(store.usage(&org("Org1")), 600);
    store.delete(&first).unwrap();
    assert_eq!(store.usage(&org("Org1")), 0);
    store.put(&org("Org1"), &data(600, 11)[..], &pdf()).unwrap();
}

#[test]
fn leftovers_of_a_crash_are_cleaned_on_open() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    let bytes = data(300, 13);
    let id = store.put(&org("Org1"), &bytes[..], &pdf()).unwrap();
    drop(store);
    // A crash mid-upload and mid-write leaves temp files and a staged dir.
    let tmp = dir.path().join("tmp");
    fs::write(tmp.join("write-1-1"), b"half a chunk").unwrap();
    fs::create_dir(tmp.join("put-1-2")).unwrap();
    fs::write(tmp.join("put-1-2").join("0"), data(64, 1)).unwrap();
    let store = open(dir.path());
    assert_eq!(count_files(&tmp), 0);
    assert_eq!(store.list().unwrap(), vec![id]);
    assert_eq!(read_all(store.get(&id).unwrap()).unwrap(), bytes);
}

#[test]
fn concurrent_puts_of_shared_chunks() {
    let dir = TempDir::new().unwrap();
    let store = open(dir.path());
    // Eight files that share their first 256 bytes.
    let common = data(256, 14);
    let ids: Vec<(FileId, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let store = store.clone();
                let mut bytes = common.clone();
                bytes.extend(data(100, i));
                s.spawn(move || (store.put(&org("Org1"), &bytes[..], &pdf()).unwrap(), bytes))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (id, bytes) in &ids {
        assert_eq!(&read_all(store.get(id).unwrap()).unwrap(), bytes);
    }
    // Deleting one keeps the chunks the others share.
    store.delete(&ids[0].0).unwrap();
    for (id, bytes) in &ids[1..] {
        assert_eq!(&read_all(store.get(id).unwrap()).unwrap(), bytes);
    }
}

/// A source that, while serving chunk i, removes chunk i+1 (cyclically)
/// from the store being repaired, as a concurrent delete of a file sharing
/// it would; it does so at most `times` times.
struct Racing<'a> {
    inner: &'a Store,
    dest: PathBuf,
    chunks: Vec<ChunkHash>,
    times: std::cell::Cell<u32>,
}

impl ChunkSource for Racing<'_> {
    fn manifest_bytes(&self, id: &FileId) -> Result<Vec<u8>, Error> {
        self.inner.manifest_bytes(id)
    }
    fn chunk(&self, file: &FileId, hash: &ChunkHash) -> Result<Vec<u8>, Error> {
        let i = self.chunks.iter().position(|c| c == hash).unwrap();
        let next = chunk_path(&self.dest, &self.chunks[(i + 1) % self.chunks.len()]);
        if self.times.get() > 0 && fs::remove_file(next).is_ok() {
            self.times.set(self.times.get() - 1);
        }
        self.inner.chunk(file, hash)
    }
}

#[test]
fn repair_redoes_chunks_removed_under_it() {
    let dir_a = TempDir::new().unwrap();
    let dir_b = TempDir::new().unwrap();
    let a = open(dir_a.path());
    let b = open(dir_b.path());
    let bytes = data(300, 15);
    let id = a.put(&org("Org1"), &bytes[..], &pdf()).unwrap();
    let racing = |times| Racing {
        inner: &a,
        dest: dir_b.path().to_path_buf(),
        chunks: a.manifest(&id).unwrap().chunks,
        times: std::cell::Cell::new(times),
    };
    // Raced on every round: refused, and no manifest names missing chunks.
    let raced = b.repair(&id, &racing(100));
    assert!(
        matches!(raced, Err(Error::Contended(f)) if f == id),
        "{raced:?}"
    );
    assert!(!b.has(&id));
    // Raced once: the next round fetches the chunk again.
    let r = b.repair(&id, &racing(1)).unwrap();
    assert!(r.manifest_fetched);
    assert_eq!(read_all(b.get(&id).unwrap()).unwrap(), bytes);
}
