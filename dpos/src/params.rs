//! Genesis: the chain's parameters (every white-paper number is one, so tests
//! can shrink the chain), the initial allocation and producers, and the chain
//! id that every transaction, block and confirmation commits to.

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::codec;
use crate::hash::{Hash32, domain, hash_parts};

/// Decimals of the QCSS token: 1 QCSS = 10^8 base units.
pub const DECIMALS: u32 = 8;
/// One QCSS in base units.
pub const COIN: u64 = 100_000_000;
/// The white paper's genesis supply: 3,000,000,000 QCSS (3·10^17 base units, fits u64).
pub const GENESIS_SUPPLY: u64 = 3_000_000_000 * COIN;

/// The white paper's table 9, in percent of the genesis supply. Sums to 100.
pub const TABLE_9: [(&str, u64); 8] = [
    ("cornerstone", 5),
    ("private", 20),
    ("public", 25),
    ("marketing", 10),
    ("business", 15),
    ("team", 15),
    ("foundation", 7),
    ("advisors", 3),
];

/// The white paper's DApp reward pool: 100,000,000 QCSS for consumers'
/// scans and valid evaluations, paid over 18 months. Carved out of table 9's
/// "marketing" bucket (300 M → 200 M) by [`Genesis::white_paper`].
pub const DAPP_REWARD_POOL: u64 = 100_000_000 * COIN;

/// 18 months of 30 s slots: 1.5 × 365 days × 2,880 slots = 1,576,800.
pub const EIGHTEEN_MONTHS_SLOTS: u64 = 3 * 365 * 24 * 120 / 2;

/// Consensus parameters. All are part of the genesis and so of the chain id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Producers in the schedule; a round has this many slots (white paper: 31).
    pub n_producers: u32,
    /// Slot length in milliseconds (white paper: 30 s).
    pub slot_ms: u64,
    /// Rounds between elections. 7 days is 650.3 rounds of 31 × 30 s; elections
    /// must fall on round boundaries, so the default is 650 (6 d 23 h 55 m).
    pub epoch_rounds: u64,
    /// Chain height that counts as one year for the reward table (365 days of slots).
    pub blocks_per_year: u64,
    /// Block reward in base units for year 0, 1, …; zero after the last entry.
    pub reward_per_block: Vec<u64>,
    /// Hard cap on total issued supply (genesis + minted), base units.
    pub supply_cap: u64,
    /// Slots a reward stays locked after it is earned (7 days = 20,160 slots).
    pub reward_lock_slots: u64,
    /// Minimum slots between two withdrawals by one account (30 days = 86,400 slots).
    pub withdraw_interval_slots: u64,
    /// Minimum fee per transaction, base units.
    pub min_fee: u64,
    /// Most producers one vote may approve (31).
    pub max_votes: u32,
    /// Largest encoded transaction, bytes (checked before decoding).
    pub max_tx_bytes: u32,
    /// Largest encoded block, bytes (checked before decoding).
    pub max_block_bytes: u32,
    /// Most transactions in one block.
    pub max_txs_per_block: u32,
    /// Furthest a transaction's expiry may lie beyond the block's slot.
    pub max_expiry_slots: u64,
    /// How far a block's slot start may lie ahead of the local clock, ms.
    pub max_clock_skew_ms: u64,
    /// Longest producer URL, bytes.
    pub max_url_bytes: u32,
    /// A producer that missed more than this percentage of its slots in an
    /// epoch is not eligible at the election that ends it.
    pub max_missed_pct: u64,
    /// A vote not renewed for this many slots no longer counts (Hive's
    /// 365-day governance vote expiry).
    pub vote_expiry_slots: u64,
    /// Producers cast finality votes (Casper FFG links, fork.rs): a block
    /// is final about one slot after it is produced instead of ≈ 20. On in
    /// the white paper's parameters (`qcss chain genesis
    /// --finality-votes=false` turns it off: final once 21 producers built
    /// on a block, BitShares' rule).
    pub fast_confirmations: bool,
    /// The reward pool and the batches that pay from it (consumer rewards).
    #[serde(default)]
    pub rewards: RewardParams,
}

/// Parameters of the DApp reward pool (dpos/README.md, "Consumer rewards").
/// All zero / empty (the serde default): no pool, no batch is accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardParams {
    /// The pool at genesis, base units; the genesis must allocate exactly
    /// this to [`crate::rewards::REWARD_POOL`].
    pub pool: u64,
    /// Slots the pool is meant to last (18 months at 30 s slots).
    pub period_slots: u64,
    /// Length of one reward epoch in slots (epoch e = slots [e·L, (e+1)·L));
    /// epoch e can be paid from the first slot after it ends.
    pub epoch_slots: u64,
    /// Entries in one batch part (a full part must fit `max_tx_bytes` below).
    pub max_entries: u32,
    /// Parts one epoch may be split into.
    pub max_parts: u32,
    /// Largest encoded reward-batch transaction, bytes (every other kind
    /// stays under `max_tx_bytes`); at most half a block.
    pub max_tx_bytes: u32,
    /// Consortia allowed to pay from the pool (their anchor key set must
    /// also be registered). Empty: nobody.
    pub consortia: Vec<Hash32>,
}

impl RewardParams {
    /// The white paper's pool: 100 M QCSS over 18 months, one epoch a day,
    /// 10,000 entries a part (≈ 400 KB), up to 16 parts (160,000 consumers
    /// an epoch), no consortium yet.
    pub fn white_paper() -> Self {
        Self {
            pool: DAPP_REWARD_POOL,
            period_slots: EIGHTEEN_MONTHS_SLOTS,
            epoch_slots: 24 * 120,
            max_entries: 10_000,
            max_parts: 16,
            max_tx_bytes: 512 * 1024,
            consortia: Vec::new(),
        }
    }

    /// Epochs the pool is spread over: ⌈period / epoch length⌉ (so the pool
    /// never runs out faster than `period_slots`); 0 when there is no pool.
    pub fn epochs(&self) -> u64 {
        if self.epoch_slots == 0 {
            return 0;
        }
        self.period_slots.div_ceil(self.epoch_slots)
    }

    /// Most one epoch may pay across all consortia: ⌊pool / epochs⌋.
    pub fn epoch_budget(&self) -> u64 {
        self.pool.checked_div(self.epochs()).unwrap_or(0)
    }
}

impl Params {
    /// The white paper's production parameters.
    pub fn white_paper() -> Self {
        // The white paper fixes that rewards exist and change per year, not
        // their size: 4 QCSS a block halving yearly for 8 years is a
        // placeholder (≈ 8.4 M QCSS in total, 0.28 % on top of genesis); the
        // cap is genesis plus the whole table, so the cap can never bind early.
        let reward_per_block: Vec<u64> = (0..8).map(|y| (4 * COIN) >> y).collect();
        let blocks_per_year = 365 * 24 * 3600 / 30;
        let minted_max: u64 = reward_per_block.iter().map(|r| r * blocks_per_year).sum();
        Self {
            n_producers: 31,
            slot_ms: 30_000,
            epoch_rounds: 650,
            blocks_per_year,
            reward_per_block,
            supply_cap: GENESIS_SUPPLY + minted_max,
            reward_lock_slots: 7 * 24 * 120,
            withdraw_interval_slots: 30 * 24 * 120,
            min_fee: COIN / 1000,
            max_votes: 31,
            max_tx_bytes: 4096,
            max_block_bytes: 2 * 1024 * 1024,
            max_txs_per_block: 10_000,
            max_expiry_slots: 24 * 120,
            max_clock_skew_ms: 1_000,
            max_url_bytes: 200,
            max_missed_pct: 50,
            vote_expiry_slots: 365 * 24 * 120,
            fast_confirmations: true,
            rewards: RewardParams::white_paper(),
        }
    }

    /// The production parameters shrunk for tests and the simulator:
    /// `n` producers, 1 s slots, 2-round epochs, short locks.
    pub fn fast(n: u32) -> Self {
        Self {
            n_producers: n,
            slot_ms: 1_000,
            epoch_rounds: 2,
            blocks_per_year: 1_000,
            reward_lock_slots: 2 * u64::from(n),
            withdraw_interval_slots: 4 * u64::from(n),
            max_expiry_slots: 1_000,
            // No pool: a test that wants one sets it (and allocates it).
            rewards: RewardParams::default(),
            // Production-implied finality: the simulator's and unit tests'
            // baseline; those about votes turn them on.
            fast_confirmations: false,
            ..Self::white_paper()
        }
    }

    /// Slots in a round (one per producer).
    pub fn round_slots(&self) -> u64 {
        u64::from(self.n_producers)
    }

    /// Producers needed for irreversibility: ⌊2n/3⌋ + 1 (21 of 31).
    pub fn irreversible_threshold(&self) -> usize {
        (self.n_producers as usize * 2) / 3 + 1
    }

    /// Block reward at `height` (before the cap is applied).
    pub fn reward_at(&self, height: u64) -> u64 {
        let year = height / self.blocks_per_year.max(1);
        usize::try_from(year)
            .ok()
            .and_then(|y| self.reward_per_block.get(y).copied())
            .unwrap_or(0)
    }
}

/// One genesis account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// What the allocation is for (table 9 bucket, or free text).
    pub label: String,
    /// The account.
    pub address: Address,
    /// Base units.
    pub amount: u64,
}

/// The genesis file: everything a node needs to start the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Free-text name, part of the chain id ("qcss-mainnet", "sim-7").
    pub name: String,
    /// Unix time in ms of slot 0.
    pub genesis_time_ms: u64,
    /// Consensus parameters.
    pub params: Params,
    /// Initial balances.
    pub allocations: Vec<Allocation>,
    /// The first schedule: exactly `params.n_producers` distinct accounts.
    pub initial_producers: Vec<Address>,
}

/// A genesis that cannot start a chain.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenesisError {
    /// The initial producers are not `n_producers` distinct accounts.
    #[error("genesis needs {want} distinct initial producers, has {have}")]
    Producers {
        /// Required.
        want: u32,
        /// Distinct ones given.
        have: usize,
    },
    /// The allocations overflow or exceed the cap.
    #[error("genesis allocations exceed the supply cap")]
    OverCap,
    /// An allocation to the black hole, or a zero slot length, or zero producers.
    #[error("invalid genesis: {0}")]
    Invalid(&'static str),
}

impl Genesis {
    /// The chain id: domain hash of the canonical genesis encoding.
    pub fn chain_id(&self) -> Hash32 {
        hash_parts(domain::CHAIN, &[&codec::encode(self)])
    }

    /// A white-paper genesis: 3,000,000,000 QCSS split as table 9 over the
    /// eight given bucket accounts, in table order, with `params.rewards.pool`
    /// (100 M QCSS) carved out of "marketing" into the chain-held reward
    /// pool [`crate::rewards::REWARD_POOL`].
    pub fn white_paper(
        name: &str,
        genesis_time_ms: u64,
        params: Params,
        buckets: [Address; 8],
        initial_producers: Vec<Address>,
    ) -> Self {
        let pool = params.rewards.pool;
        let mut allocations: Vec<Allocation> = TABLE_9
            .iter()
            .zip(buckets)
            .map(|(&(label, pct), address)| Allocation {
                label: label.to_string(),
                address,
                // The pool (100 M) is far below marketing's 300 M.
                amount: (GENESIS_SUPPLY / 100 * pct).saturating_sub(if label == "marketing" {
                    pool
                } else {
                    0
                }),
            })
            .collect();
        if pool > 0 {
            allocations.push(Allocation {
                label: "dapp_reward_pool".to_string(),
                address: crate::rewards::REWARD_POOL,
                amount: pool,
            });
        }
        Self {
            name: name.to_string(),
            genesis_time_ms,
            params,
            allocations,
            initial_producers,
        }
    }

    /// Checks the genesis can start a chain; returns the genesis supply.
    pub fn check(&self) -> Result<u64, GenesisError> {
        let p = &self.params;
        if p.n_producers == 0 || p.slot_ms == 0 || p.epoch_rounds == 0 {
            return Err(GenesisError::Invalid(
                "zero producers, slot length or epoch",
            ));
        }
        let distinct: std::collections::BTreeSet<_> = self.initial_producers.iter().collect();
        if distinct.len() != p.n_producers as usize
            || self.initial_producers.len() != distinct.len()
            || distinct.iter().any(|a| a.is_black_hole())
        {
            return Err(GenesisError::Producers {
                want: p.n_producers,
                have: distinct.len(),
            });
        }
        let mut total: u64 = 0;
        for a in &self.allocations {
            if a.address.is_black_hole() {
                return Err(GenesisError::Invalid("allocation to the black hole"));
            }
            total = total.checked_add(a.amount).ok_or(GenesisError::OverCap)?;
        }
        if total > p.supply_cap {
            return Err(GenesisError::OverCap);
        }
        let r = &p.rewards;
        let pooled: u64 = self
            .allocations
            .iter()
            .filter(|a| a.address == crate::rewards::REWARD_POOL)
            .map(|a| a.amount)
            .sum();
        if pooled != r.pool {
            return Err(GenesisError::Invalid(
                "the reward pool's allocations must equal params.rewards.pool",
            ));
        }
        if r.pool > 0 && (r.epoch_slots == 0 || r.period_slots == 0 || r.max_entries == 0) {
            return Err(GenesisError::Invalid(
                "a reward pool needs an epoch length, a period and entries per part",
            ));
        }
        // A full part: 40 bytes an entry, 66 a signature (31 keys at most),
        // and the rest of the transaction well under 512 bytes.
        if r.pool > 0 && u64::from(r.max_entries) * 40 + 31 * 66 + 512 > u64::from(r.max_tx_bytes) {
            return Err(GenesisError::Invalid(
                "a reward batch part of max_entries must fit rewards.max_tx_bytes",
            ));
        }
        if u64::from(r.max_tx_bytes) > u64::from(p.max_block_bytes) / 2 {
            return Err(GenesisError::Invalid(
                "a reward batch may take at most half a block",
            ));
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Keypair;

    #[test]
    fn table_9_splits_the_whole_supply_exactly() {
        assert_eq!(TABLE_9.iter().map(|t| t.1).sum::<u64>(), 100);
        let buckets = std::array::from_fn(|i| Keypair::for_test("bucket", i as u64).address());
        let producers = (0..31)
            .map(|i| Keypair::for_test("p", i).address())
            .collect();
        let g = Genesis::white_paper("t", 0, Params::white_paper(), buckets, producers);
        assert_eq!(g.check(), Ok(GENESIS_SUPPLY));
        assert_eq!(g.allocations[6].label, "foundation");
        assert_eq!(g.allocations[6].amount, 210_000_000 * COIN);
        // Everything is a parameter of the chain id.
        let mut g2 = g.clone();
        g2.params.slot_ms = 29_999;
        assert_ne!(g.chain_id(), g2.chain_id());
    }

    #[test]
    fn white_paper_numbers() {
        let p = Params::white_paper();
        assert_eq!(p.irreversible_threshold(), 21);
        assert_eq!(p.round_slots() * p.slot_ms, 930_000);
        // 650 rounds fall 5 minutes short of 7 days; 651 would overshoot by 10.5 minutes.
        assert_eq!(7 * 24 * 3600 - p.epoch_rounds * 930, 300);
        assert_eq!(p.blocks_per_year, 1_051_200);
        assert_eq!(p.reward_lock_slots * p.slot_ms, 7 * 24 * 3600 * 1000);
        assert_eq!(p.reward_at(0), 4 * COIN);
        assert_eq!(p.reward_at(p.blocks_per_year), 2 * COIN);
        assert_eq!(p.reward_at(8 * p.blocks_per_year), 0);
        assert!(p.supply_cap > GENESIS_SUPPLY);
    }

    #[test]
    fn bad_genesis_is_refused() {
        let producers: Vec<_> = (0..4)
            .map(|i| Keypair::for_test("p", i).address())
            .collect();
        let mut g = Genesis {
            name: "t".into(),
            genesis_time_ms: 0,
            params: Params::fast(4),
            allocations: vec![],
            initial_producers: producers.clone(),
        };
        assert_eq!(g.check(), Ok(0));
        g.initial_producers[3] = producers[0];
        assert!(matches!(g.check(), Err(GenesisError::Producers { .. })));
        g.initial_producers = producers;
        g.allocations.push(Allocation {
            label: "x".into(),
            address: Keypair::for_test("a", 0).address(),
            amount: u64::MAX,
        });
        assert_eq!(g.check(), Err(GenesisError::OverCap));
    }
}
