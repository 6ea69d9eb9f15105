//! MDSS figures on one node: put and get MiB/s, verify, and the time to
//! repair a whole file from a second store (issue 22 "Figures").
//!
//! ```text
//! cargo run --release -p qcss-mdss --example mdss_bench [MiB, default 256] [dir]
//! ```
//!
//! The file is pseudo-random (no chunk repeats, so nothing deduplicates);
//! chunks are 1 MiB; every chunk write is fsynced, as in production. Both
//! stores live under `dir` (default: the system temp dir), so "repair" is
//! a local disk-to-disk copy with hashing, not a network transfer. Before
//! each writing phase the bench runs `sync`, so the previous phase's
//! writeback does not slow its fsyncs.

use std::io::{self, Read};
use std::time::Instant;

use qcss_mdss::{Limits, MediaType, OrgId, OrgSecretKey, Store};

/// xorshift64* bytes, generated as read: the upload is never in memory.
struct Noise {
    state: u64,
    left: u64,
}

impl Read for Noise {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX))
            / 8
            * 8;
        let n = if n == 0 {
            out.len().min(self.left as usize)
        } else {
            n
        };
        for chunk in out[..n].chunks_mut(8) {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            let v = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Flushes the previous phase's dirty pages, so each phase's fsyncs wait
/// only for its own writes.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

fn rate(bytes: u64, secs: f64) -> String {
    format!(
        "{:8.1} MiB/s ({secs:.2} s)",
        bytes as f64 / (1 << 20) as f64 / secs
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(256);
    let base = match args.next() {
        Some(d) => tempfile::TempDir::new_in(d)?,
        None => tempfile::TempDir::new()?,
    };
    let bytes = mib << 20;
    let limits = Limits::default();
    let a = Store::open(base.path().join("a"), limits.clone())?;
    let b = Store::open(base.path().join("b"), limits)?;
    let org = OrgId::new("Org1")?;
    let mt = MediaType::new("video/mp4")?;
    println!(
        "MDSS bench: {mib} MiB file, 1 MiB chunks, under {}",
        base.path().display()
    );

    settle();
    let t = Instant::now();
    let id = a.put(
        &org,
        Noise {
            state: 0x9e37_79b9_7f4a_7c15,
            left: bytes,
        },
        &mt,
    )?;
    println!("put           {}", rate(bytes, t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let got = io::copy(&mut a.get(&id)?, &mut io::sink())?;
    assert_eq!(got, bytes);
    println!("get           {}", rate(bytes, t.elapsed().as_secs_f64()));

    let t = Instant::now();
    let report = a.verify(&id)?;
    assert!(report.is_intact());
    println!("verify        {}", rate(bytes, t.elapsed().as_secs_f64()));

    settle();
    let t = Instant::now();
    let r = b.repair(&id, &a)?;
    assert_eq!(r.bytes_fetched, bytes);
    println!("repair (all)  {}", rate(bytes, t.elapsed().as_secs_f64()));

    let key = OrgSecretKey::generate()?;
    settle();
    let t = Instant::now();
    let cid = a.put_confidential(
        &org,
        Noise {
            state: 7,
            left: bytes,
        },
        &mt,
        &[(org.clone(), key.public_key())],
    )?;
    println!("put (sealed)  {}", rate(bytes, t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let got = io::copy(&mut a.open_confidential(&cid, &org, &key)?, &mut io::sink())?;
    assert_eq!(got, bytes);
    println!("get (opened)  {}", rate(bytes, t.elapsed().as_secs_f64()));
    Ok(())
}
