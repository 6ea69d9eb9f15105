//! Crash safety with a real process: this test binary re-runs itself as a
//! committer child (the `crash_child_committer` test, which does nothing
//! unless `QCSS_LEDGER_CRASH_CHILD_DIR` is set), SIGKILLs it at a random
//! moment, reopens the ledger, and checks that every block the child
//! acknowledged survived, that at most one more block landed, whole, and
//! that the ledger equals a reference ledger fed the same blocks (same tip,
//! same state hash, verify clean). Then it commits a few blocks itself and
//! starts the next cycle. The seed is printed for reproduction.

use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qcss_peer::ledger::Ledger;
use qcss_peer::ledger::testutil::{ChainBuilder, TestTx};
use qcss_proto::protos::TxValidationCode as Code;

const CHILD_ENV: &str = "QCSS_LEDGER_CRASH_CHILD_DIR";
const CHILD_TEST: &str = "crash_child_committer";

/// Block `n`'s transactions: a deterministic mix of writes, deletes,
/// metadata writes and an invalid transaction, over a small key space so
/// keys are rewritten often.
fn txs_for(n: u64) -> Vec<TestTx> {
    (0..8u64)
        .map(|t| {
            let k = (n * 8 + t) % 37;
            let mut tx = TestTx::new(format!("crash-{n}-{t}"))
                .at(1_700_000_000 + n as i64, t as i32)
                .put("cc", &format!("k{k}"), format!("v{n}-{t}").as_bytes());
            if t % 3 == 0 {
                tx = tx.delete("cc", &format!("k{}", (k + 5) % 37));
            }
            if t % 4 == 1 {
                tx = tx.metadata("cc", &format!("k{k}"), Some(format!("p{n}").as_bytes()));
            }
            if t == 5 {
                tx = tx.code(Code::MvccReadConflict);
            }
            tx
        })
        .collect()
}

fn commit_next(ledger: &Ledger) {
    let mut chain = ChainBuilder::following(ledger);
    let (block, updates) = chain.next(&txs_for(chain.next_number()));
    ledger.commit(&block, &updates).unwrap();
}

/// The child role: commit forever, acknowledging each durable block.
#[test]
fn crash_child_committer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return; // Run as an ordinary test: nothing to do.
    };
    let ledger = Ledger::open(Path::new(&dir)).expect("child opens the ledger");
    let mut out = std::io::stdout().lock();
    loop {
        commit_next(&ledger);
        // commit returned, so the block is flushed: acknowledge it.
        writeln!(out, "committed {}", ledger.height()).unwrap();
        out.flush().unwrap();
    }
}

/// xorshift64: enough randomness for kill times without a dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn killed_committer_reopens_consistent_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = Ledger::open(reference_dir.path()).unwrap();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut height = 0u64;
    let mut child_blocks = 0u64;
    let mut cycles = 0;
    while cycles < 8 && started.elapsed() < Duration::from_secs(12) {
        cycles += 1;
        let mut child = Command::new(&exe)
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    l.strip_prefix("committed ")
                        .and_then(|n| n.parse::<u64>().ok())
                })
                .last()
        });
        let wait = 30 + next_random(&mut seed) % 400;
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap().unwrap_or(height).max(height);

        let ledger = Ledger::open(dir.path()).unwrap();
        let h = ledger.height();
        eprintln!("cycle {cycles}: killed after {wait} ms, acknowledged {acked}, reopened at {h}");
        assert!(h >= acked, "acknowledged block lost: height {h} < {acked}");
        assert!(
            h <= acked + 1,
            "height {h} beyond the acknowledged {acked} + 1"
        );
        child_blocks += h - height;
        let report = ledger.verify().unwrap();
        assert!(report.is_consistent(), "cycle {cycles}: {report:?}");
        while reference.height() < h {
            commit_next(&reference);
        }
        assert_eq!(ledger.last_block_hash(), reference.last_block_hash());
        assert_eq!(
            ledger.state_hash().unwrap(),
            reference.state_hash().unwrap()
        );
        assert_eq!(
            ledger
                .tx(&format!("crash-{}-7", h.saturating_sub(1)))
                .unwrap()
                .map(|l| l.block),
            h.checked_sub(1)
        );

        // The parent carries on where the child stopped.
        for _ in 0..2 {
            commit_next(&ledger);
        }
        height = ledger.height();
    }
    assert!(child_blocks > 0, "the child never committed a block");
    eprintln!(
        "{cycles} cycles, {child_blocks} blocks committed by children, final height {height}"
    );
}
