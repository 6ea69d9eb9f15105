//! The crypto floor: signatures and verifications per second on all cores,
//! and what the measured blocks would cost in signature work alone.

use super::*;

/// Signs and verifies per second with keys of `kind` over all cores, each
/// thread running the project's `signing` code for `d`.
pub(super) fn crypto_all_cores(d: Duration, kind: KeyKind) -> Result<(f64, f64, usize)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let run = |verify: bool| -> Result<f64> {
        let rates: Vec<Result<f64>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(move || -> Result<f64> {
                        let key = SigningKey::generate_kind(kind).map_err(|e| anyhow!("{e}"))?;
                        let msg = vec![0x5au8; 256];
                        let sig = key.sign(&msg).map_err(|e| anyhow!("{e}"))?;
                        let start = Instant::now();
                        let mut n = 0u64;
                        while start.elapsed() < d {
                            for _ in 0..8 {
                                if verify {
                                    std::hint::black_box(
                                        signing::verify(key.public_key(), &msg, &sig).is_ok(),
                                    );
                                } else {
                                    std::hint::black_box(key.sign(&msg).ok());
                                }
                            }
                            n += 8;
                        }
                        Ok(n as f64 / start.elapsed().as_secs_f64())
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("thread panicked"))))
                .collect()
        });
        rates.into_iter().sum()
    };
    Ok((run(false)?, run(true)?, threads))
}

/// Signs and verifies per second on all cores, for both key types, and
/// which one the network's identities use.
#[derive(Debug, Clone, Copy)]
pub(super) struct CryptoRates {
    pub(super) kind: KeyKind,
    pub(super) p256: (f64, f64),
    pub(super) ed25519: (f64, f64),
}

impl CryptoRates {
    pub(super) fn measure(d: Duration, kind: KeyKind) -> Result<(Self, usize)> {
        let (s1, v1, cores) = crypto_all_cores(d, KeyKind::P256)?;
        let (s2, v2, _) = crypto_all_cores(d, KeyKind::Ed25519)?;
        Ok((
            CryptoRates {
                kind,
                p256: (s1, v1),
                ed25519: (s2, v2),
            },
            cores,
        ))
    }

    pub(super) fn of(&self, kind: KeyKind) -> (f64, f64) {
        match kind {
            KeyKind::P256 => self.p256,
            KeyKind::Ed25519 => self.ed25519,
        }
    }

    pub(super) fn mean(&self, other: &Self) -> Self {
        let m = |a: (f64, f64), b: (f64, f64)| ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
        CryptoRates {
            kind: self.kind,
            p256: m(self.p256, other.p256),
            ed25519: m(self.ed25519, other.ed25519),
        }
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "ECDSA P-256 sign {:.0}/s, verify {:.0}/s; Ed25519 sign {:.0}/s, verify {:.0}/s",
            self.p256.0, self.p256.1, self.ed25519.0, self.ed25519.1
        )
    }
}

/// Signature operations per transaction, and the floor they imply.
pub(super) fn floor(t: &Target, blocks: &BlockStats, rates: &CryptoRates, tps: f64) -> Floor {
    let (sign_rate, verify_rate) = rates.of(rates.kind);
    let (other_sign, other_verify) = rates.of(match rates.kind {
        KeyKind::P256 => KeyKind::Ed25519,
        KeyKind::Ed25519 => KeyKind::P256,
    });
    let e = if blocks.endorsements_per_tx > 0.0 {
        blocks.endorsements_per_tx
    } else {
        1.0
    };
    let p = t.validating_peers as f64;
    let b = blocks.mean_txs.max(1.0);
    let o = t.orderers as f64;
    let ov = t.orderer_verifies as f64;
    // Client: proposal, transaction, commit-status request. Endorsers: one
    // each. Orderers: each node signs each block.
    let signs = 3.0 + e + o / b;
    // Endorsers verify the proposal; the Gateway peer the commit-status
    // request; the orderer(s) the envelope; every peer the creator and each
    // endorsement, and each block's orderer signature.
    let verifies = e + 1.0 + ov + p * (1.0 + e) + p / b;
    let at = |sign_rate: f64, verify_rate: f64| {
        let per_tx_secs = signs / sign_rate + verifies / verify_rate;
        if per_tx_secs > 0.0 && per_tx_secs.is_finite() {
            1.0 / per_tx_secs
        } else {
            0.0
        }
    };
    let f = at(sign_rate, verify_rate);
    Floor {
        key_type: rates.kind.to_string(),
        other_key_type_floor_tx_per_sec: at(other_sign, other_verify),
        signs_per_tx: signs,
        verifies_per_tx: verifies,
        breakdown: format!(
            "signs: client 3 (proposal, transaction, commit-status request) + {e:.2} endorsers + {o} orderers per block / {b:.1} tx; \
             verifies: {e:.2} endorsers (proposal) + 1 Gateway (commit-status request) + {ov} orderer (envelope) \
             + {p} peers x (1 creator + {e:.2} endorsements) + {p} peers per block / {b:.1} tx"
        ),
        floor_tx_per_sec: f,
        fraction_of_floor: if f > 0.0 { tps / f } else { 0.0 },
    }
}

pub(super) fn classify(e: &str) -> String {
    // Keep the kind and the first words of the reason; drop ids and numbers.
    let cleaned: String = e
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    cleaned.chars().take(120).collect()
}
