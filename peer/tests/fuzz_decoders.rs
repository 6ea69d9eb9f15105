//! A bounded, seeded mutation fuzzer for what a peer decodes from strangers
//! (issue 15's "fuzzing" suite, on stable Rust so CI can run it without a
//! nightly toolchain): real messages as seeds — a signed proposal, an
//! endorsed transaction in a block, a policy string, a gRPC frame — mutated
//! (bit flips, byte changes, cuts, splices, inserted varints, duplicated
//! ranges) and fed to the decoder. A target fails on a panic or when one
//! call allocates more than a bound proportional to its input (a counting
//! global allocator measures it).
//!
//! `QCSS_FUZZ_SECS` (default 3) is the time per target; `QCSS_FUZZ_SEED`
//! replays a run. A failure prints the seed and the input (hex).

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use qcss_network::policy::Policy;
use qcss_peer::endorser::{ProposalOptions, UnpackedProposal, build_proposal_with};
use qcss_peer::validator::fixture::{Network, RwSet};
use qcss_peer::validator::{MemoryState, StaticPolicies, validate_block};
use qcss_proto::protos::SignedProposal;

/// Counts live bytes and the peak while `TRACKING` is set.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static TRACKING: AtomicBool = AtomicBool::new(false);

// SAFETY: delegates to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACKING.load(Ordering::Relaxed) {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if TRACKING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(
                layout.size().min(LIVE.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A small deterministic PRNG (splitmix64): a seed replays a run exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One random mutation of `input`.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = v.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 if len > 0 => v.truncate(rng.below(len)),
            3 if len > 1 => {
                let (a, b) = (rng.below(len), rng.below(len));
                let (a, b) = (a.min(b), a.max(b));
                let chunk = v[a..b].to_vec();
                let at = rng.below(len);
                v.splice(at..at, chunk);
            }
            4 => {
                // A length or tag as a long varint, the classic amplifier.
                let at = rng.below(len + 1);
                let big = [0xff, 0xff, 0xff, 0xff, 0x0f];
                v.splice(at..at, big.iter().copied().take(1 + rng.below(5)));
            }
            5 if len > 0 => {
                let i = rng.below(len);
                v.remove(i);
            }
            _ => {
                let at = rng.below(len + 1);
                v.insert(at, rng.next() as u8);
            }
        }
    }
    v
}

fn budget() -> Duration {
    let secs = std::env::var("QCSS_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// Runs `target` on mutations of `seeds` for the time budget; fails on a
/// panic or on one call allocating more than `16 × input + 1 MiB`.
fn fuzz(name: &str, seeds: &[Vec<u8>], mut target: impl FnMut(&[u8])) {
    let seed = std::env::var("QCSS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let mut rng = Rng(seed);
    let deadline = Instant::now() + budget();
    let mut runs = 0u64;
    while Instant::now() < deadline {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, base);
        LIVE.store(0, Ordering::Relaxed);
        PEAK.store(0, Ordering::Relaxed);
        TRACKING.store(true, Ordering::Relaxed);
        let r = catch_unwind(AssertUnwindSafe(|| target(&input)));
        TRACKING.store(false, Ordering::Relaxed);
        let peak = PEAK.load(Ordering::Relaxed);
        let bound = 16 * input.len() + (1 << 20);
        assert!(
            r.is_ok(),
            "{name}: panic (QCSS_FUZZ_SEED={seed}, run {runs}) on input {}",
            hex::encode(&input)
        );
        assert!(
            peak <= bound,
            "{name}: one call allocated {peak} bytes on a {}-byte input (bound {bound}; \
             QCSS_FUZZ_SEED={seed}, run {runs}): {}",
            input.len(),
            hex::encode(&input[..input.len().min(256)])
        );
        runs += 1;
    }
    eprintln!("{name}: {runs} inputs in {:?}, seed {seed}", budget());
    assert!(runs > 0);
}

fn net() -> Network {
    Network::new("fuzz", &["Org1MSP", "Org2MSP"]).unwrap()
}

#[test]
fn fuzz_proposal_unpacking() {
    let net = net();
    let client = net.client("Org1MSP").unwrap();
    let options = ProposalOptions::default();
    let (sp, _) = build_proposal_with(
        client,
        "fuzz",
        "cc",
        &["put", "key", "a value of some length"],
        &options,
    )
    .unwrap();
    let outer = sp.encode_to_vec();
    let inner = sp.proposal_bytes.clone();
    fuzz("SignedProposal", &[outer], |b| {
        if let Ok(sp) = SignedProposal::decode(b) {
            let _ = UnpackedProposal::unpack(&sp);
        }
    });
    let sig = sp.signature.clone();
    fuzz("Proposal", &[inner], |b| {
        let sp = SignedProposal {
            proposal_bytes: b.to_vec(),
            signature: sig.clone(),
        };
        let _ = UnpackedProposal::unpack(&sp);
    });
}

#[test]
fn fuzz_block_validation() {
    let net = net();
    let channel = net.channel().unwrap();
    let policies = StaticPolicies::new().with("cc", Policy::parse("OR('Org1MSP.peer')").unwrap());
    let peer = net.peer("Org1MSP").unwrap();
    let env = net
        .tx("Org1MSP", "cc")
        .unwrap()
        .rwset(RwSet::new().read("cc", "k", None).write("cc", "k", b"v"))
        .endorsed_by(peer)
        .build()
        .unwrap()
        .envelope;
    let state = MemoryState::default();
    fuzz("block envelope", &[env], |b| {
        let block = net.block(1, &[0; 32], vec![b.to_vec()]).unwrap();
        let _ = validate_block(&block, &channel, &state, &policies);
    });
}

#[test]
fn fuzz_policy_parser() {
    let seeds: Vec<Vec<u8>> = [
        "OR('Org1MSP.peer', AND('Org2MSP.member', 'Org3MSP.admin'))",
        "OutOf(2, 'A.peer', 'B.peer', 'C.client')",
        "MAJORITY Admins",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    fuzz("policy", &seeds, |b| {
        if let Ok(s) = std::str::from_utf8(b) {
            let _ = Policy::parse(s);
        }
    });
}

#[test]
fn fuzz_wire_field_counter() {
    let net = net();
    let client = net.client("Org1MSP").unwrap();
    let (sp, _) =
        build_proposal_with(client, "fuzz", "cc", &["f"], &ProposalOptions::default()).unwrap();
    fuzz("field counter", &[sp.encode_to_vec()], |b| {
        let _ = qcss_proto::codec::check_fields(b, qcss_proto::codec::MAX_FIELDS);
        let _ = qcss_proto::codec::check_nested_fields(b, &[1, 3], 1024);
    });
}
