//! The ledger state and the transaction rules. `State::apply_tx` either
//! applies a transaction completely or refuses it with a [`TxError`] and
//! leaves the state untouched: every check runs before the first write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::hash::{Hash32, Mmr};
use crate::params::{Genesis, GenesisError, Params};
use crate::rewards::{REWARD_POOL, RewardPlan, RewardProgress};
use crate::schedule::Schedule;
use crate::tx::{SignedTx, TxKind};

pub use crate::consortia::count_signers;

/// Rewards earned but not yet withdrawable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// First slot at which the amount may be withdrawn.
    pub unlock_slot: u64,
    /// Base units.
    pub amount: u64,
}

/// An account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Liquid balance.
    pub balance: u64,
    /// Next expected nonce.
    pub nonce: u64,
    /// Locked rewards, oldest first.
    pub locked: Vec<Lock>,
    /// Slot of the last withdrawal.
    pub last_withdraw_slot: Option<u64>,
    /// Approved producers (sorted, ≤ `max_votes`).
    pub votes: Vec<Address>,
    /// Slot of the block that recorded the vote (votes expire, Hive-style).
    pub vote_slot: u64,
}

impl Account {
    /// Sum of locked amounts.
    pub fn locked_total(&self) -> u128 {
        self.locked.iter().map(|l| u128::from(l.amount)).sum()
    }

    /// Locks `amount` earned at `slot` for `reward_lock_slots` (producer
    /// rewards, fees and consumer rewards alike). The unlock slot is rounded
    /// up to a multiple of a seventh of the lock period, and amounts with
    /// the same unlock slot share one entry: nothing unlocks early, at most
    /// a day late (white-paper numbers), and an account holds about 8
    /// entries however often it earns. The caller guarantees the sum fits:
    /// every holding is bounded by the issued supply ≤ `supply_cap` ≤ u64::MAX.
    pub(crate) fn lock(&mut self, slot: u64, amount: u64, params: &Params) {
        if amount == 0 {
            return;
        }
        let window = (params.reward_lock_slots / 7).max(1);
        let unlock_slot = slot
            .saturating_add(params.reward_lock_slots)
            .div_ceil(window)
            .saturating_mul(window);
        match self.locked.last_mut() {
            Some(last) if last.unlock_slot == unlock_slot => {
                last.amount = last.amount.saturating_add(amount);
            }
            _ => self.locked.push(Lock {
                unlock_slot,
                amount,
            }),
        }
    }
}

/// A producer or candidate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Producer {
    /// Standing for election.
    pub registered: bool,
    /// Published URL.
    pub url: String,
    /// Equivocation evidence was recorded: never elected again.
    pub equivocated: bool,
    /// Slots owned this epoch.
    pub owned_epoch: u64,
    /// Slots missed this epoch.
    pub missed_epoch: u64,
    /// Blocks produced, all time.
    pub produced_total: u64,
    /// Slots missed, all time.
    pub missed_total: u64,
    /// Height of the last block it produced.
    pub last_produced_height: u64,
}

/// A consortium that anchors its history here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consortium {
    /// Its orgs' anchor keys.
    pub keys: Vec<Address>,
    /// Signatures an anchor needs.
    pub quorum: u16,
    /// 0 at registration, + 1 per rotation.
    pub key_version: u64,
    /// The last accepted anchor.
    pub last: Option<AnchorRecord>,
    /// Reward batches paid from the pool (consumer rewards).
    #[serde(default)]
    pub rewards: RewardProgress,
}

/// An accepted anchor, as the state remembers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorRecord {
    /// Sequence number.
    pub seq: u64,
    /// Consortium blocks covered (0 … size − 1).
    pub mmr_size: u64,
    /// Their MMR root.
    pub mmr_root: Hash32,
    /// Header hash of the last consortium block covered.
    pub last_block_hash: Hash32,
    /// Public block that carries it.
    pub height: u64,
    /// That block's slot.
    pub slot: u64,
    /// The anchor transaction's id.
    pub tx_id: Hash32,
}

/// A schedule waiting for irreversibility, with the height that carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    /// The schedule.
    pub schedule: Schedule,
    /// Height of the block at which it entered this stage.
    pub height: u64,
}

/// Every account by address, in address order. Persistent: the fork database
/// keeps one state per reversible block, and each block's clone shares every
/// account it does not touch (a `BTreeMap` clone copied them all: with
/// 100,000 accounts, 40% of a syncing node's time in clone and drop).
pub type Accounts = imbl::OrdMap<Address, Account>;

/// The whole state after a block (or at genesis).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Chain id.
    pub chain_id: Hash32,
    /// Height of the last applied block (0 at genesis).
    pub height: u64,
    /// Slot of the last applied block (0 at genesis).
    pub slot: u64,
    /// Id of the last applied block (the chain id at genesis).
    pub head_id: Hash32,
    /// Accounts.
    pub accounts: Accounts,
    /// Producers and candidates.
    pub producers: BTreeMap<Address, Producer>,
    /// Supply at genesis.
    pub genesis_supply: u64,
    /// Minted as block rewards so far.
    pub minted: u64,
    /// Burned so far.
    pub burned: u64,
    /// The active schedule.
    pub schedule: Schedule,
    /// Elected but not yet irreversible.
    pub proposed: Option<Staged>,
    /// Irreversible, waiting for a round boundary after the pending block is irreversible.
    pub pending: Option<Staged>,
    /// Round of the last applied block.
    pub round: u64,
    /// Order of `round`: `order[slot % n]` owns `slot`.
    pub order: Vec<Address>,
    /// MMR of the ids of blocks 0 … height (the genesis id is leaf 0).
    pub mmr: Mmr,
    /// Irreversible height implied by production alone (BitShares rule):
    /// the height that 2/3+1 of the active producers have produced at or beyond.
    /// Deterministic per branch; schedule changes wait for it.
    pub dpos_lib: u64,
    /// `dpos_lib` when the active schedule took over: new producers count from there.
    pub schedule_lib_floor: u64,
    /// Consortia anchoring here, by consortium id.
    pub consortia: BTreeMap<Hash32, Consortium>,
    /// Paid from the reward pool per reward epoch, all consortia together
    /// (one entry per epoch anyone paid; checked against the epoch budget).
    #[serde(default)]
    pub reward_paid: BTreeMap<u64, u64>,
}

pub use crate::tx_error::TxError;

/// What an accepted transaction writes.
struct Plan {
    sender: (Address, Account),
    credit: Option<(Address, u64)>,
    burn: u64,
    producer_update: Option<(Address, Producer)>,
    consortium_update: Option<(Hash32, Consortium)>,
    /// (epoch, total) of a reward batch.
    reward: Option<(u64, u64)>,
    fee: u64,
}

/// The block a transaction is applied in.
#[derive(Clone, Copy, Debug)]
pub struct TxContext<'a> {
    /// Consensus parameters.
    pub params: &'a Params,
    /// The block's slot.
    pub slot: u64,
    /// The block's height.
    pub height: u64,
}

impl State {
    /// The state at genesis (height 0). The active schedule is the initial
    /// producers (version 0), all registered.
    pub fn genesis(g: &Genesis) -> Result<Self, GenesisError> {
        let supply = g.check()?;
        let chain_id = g.chain_id();
        let mut accounts = Accounts::new();
        for a in &g.allocations {
            let acct = accounts.entry(a.address).or_default();
            // check() bounded the sum of all allocations.
            acct.balance += a.amount;
        }
        let mut producers = BTreeMap::new();
        for p in &g.initial_producers {
            producers.insert(
                *p,
                Producer {
                    registered: true,
                    ..Producer::default()
                },
            );
        }
        let mut sorted = g.initial_producers.clone();
        sorted.sort();
        let order = crate::schedule::shuffle(
            &sorted,
            &crate::schedule::round_seed(&chain_id, 0, &chain_id),
        );
        let mut mmr = Mmr::default();
        mmr.append(&chain_id);
        Ok(Self {
            chain_id,
            height: 0,
            slot: 0,
            head_id: chain_id,
            accounts,
            producers,
            genesis_supply: supply,
            minted: 0,
            burned: 0,
            schedule: Schedule {
                version: 0,
                producers: sorted,
            },
            proposed: None,
            pending: None,
            round: 0,
            order,
            mmr,
            dpos_lib: 0,
            schedule_lib_floor: 0,
            consortia: BTreeMap::new(),
            reward_paid: BTreeMap::new(),
        })
    }

    /// Liquid balance of `a`.
    pub fn balance(&self, a: &Address) -> u64 {
        self.accounts.get(a).map_or(0, |x| x.balance)
    }

    /// Next nonce of `a`.
    pub fn nonce(&self, a: &Address) -> u64 {
        self.accounts.get(a).map_or(0, |x| x.nonce)
    }

    /// Checks `Σ balances + Σ locked + burned == genesis + minted ≤ cap`.
    pub fn supply_invariant(&self, params: &Params) -> Result<(), String> {
        let held: u128 = self
            .accounts
            .values()
            .map(|a| u128::from(a.balance) + a.locked_total())
            .sum();
        let lhs = held + u128::from(self.burned);
        let rhs = u128::from(self.genesis_supply) + u128::from(self.minted);
        if lhs != rhs {
            return Err(format!(
                "held {held} + burned {} != genesis + minted {rhs}",
                self.burned
            ));
        }
        if rhs > u128::from(params.supply_cap) {
            return Err(format!("issued {rhs} exceeds cap {}", params.supply_cap));
        }
        Ok(())
    }

    /// Verifies the signature, then applies. Returns the fee, which the block
    /// credits to its producer. On error nothing changed.
    pub fn apply_tx(&mut self, stx: &SignedTx, ctx: TxContext<'_>) -> Result<u64, TxError> {
        if stx.tx.sender.is_black_hole() {
            return Err(TxError::FromBlackHole);
        }
        if stx.tx.sender == REWARD_POOL {
            return Err(TxError::FromRewardPool);
        }
        if !stx.signature_ok() {
            return Err(TxError::BadSignature(stx.id()));
        }
        self.apply_verified(stx, ctx)
    }

    /// Checks a transaction against this state without changing it:
    /// verifies the signature, then every rule `apply_tx` would apply.
    /// Returns the fee. (The mempool uses it; no copy of the state needed.)
    pub fn check_tx(&self, stx: &SignedTx, ctx: TxContext<'_>) -> Result<u64, TxError> {
        if stx.tx.sender.is_black_hole() {
            return Err(TxError::FromBlackHole);
        }
        if stx.tx.sender == REWARD_POOL {
            return Err(TxError::FromRewardPool);
        }
        if !stx.signature_ok() {
            return Err(TxError::BadSignature(stx.id()));
        }
        self.plan(stx, ctx).map(|p| p.fee)
    }

    /// Applies a transaction whose signature the caller has verified.
    pub(crate) fn apply_verified(
        &mut self,
        stx: &SignedTx,
        ctx: TxContext<'_>,
    ) -> Result<u64, TxError> {
        let plan = self.plan(stx, ctx)?;
        Ok(self.commit(plan, stx, ctx))
    }

    /// Every check, and the writes they allow, computed without writing.
    fn plan(&self, stx: &SignedTx, ctx: TxContext<'_>) -> Result<Plan, TxError> {
        let tx = &stx.tx;
        let p = ctx.params;
        // Envelope checks, all before any write.
        if tx.sender.is_black_hole() {
            return Err(TxError::FromBlackHole);
        }
        if tx.sender == REWARD_POOL {
            return Err(TxError::FromRewardPool);
        }
        if tx.chain_id != self.chain_id {
            return Err(TxError::WrongChain {
                want: self.chain_id,
                got: tx.chain_id,
            });
        }
        if tx.expiry_slot < ctx.slot {
            return Err(TxError::Expired {
                expiry: tx.expiry_slot,
                slot: ctx.slot,
            });
        }
        if tx.expiry_slot - ctx.slot > p.max_expiry_slots {
            return Err(TxError::ExpiryTooFar {
                expiry: tx.expiry_slot,
                slot: ctx.slot,
            });
        }
        if tx.fee < p.min_fee {
            return Err(TxError::FeeTooLow {
                fee: tx.fee,
                min: p.min_fee,
            });
        }
        let sender = self.accounts.get(&tx.sender).cloned().unwrap_or_default();
        if tx.nonce < sender.nonce {
            return Err(TxError::Replayed {
                sender: tx.sender,
                want: sender.nonce,
                got: tx.nonce,
            });
        }
        if tx.nonce > sender.nonce {
            return Err(TxError::NonceGap {
                sender: tx.sender,
                want: sender.nonce,
                got: tx.nonce,
            });
        }
        let need_fee = |extra: u64| -> Result<u64, TxError> {
            let need = u128::from(tx.fee) + u128::from(extra);
            if need > u128::from(sender.balance) {
                return Err(TxError::InsufficientBalance {
                    sender: tx.sender,
                    need,
                    have: sender.balance,
                });
            }
            // need ≤ balance ≤ u64::MAX.
            Ok(sender.balance - need as u64)
        };
        // Kind-specific checks produce the sender's new account; the writes
        // after this match cannot fail.
        let mut next = sender.clone();
        next.nonce = sender.nonce.checked_add(1).ok_or(TxError::Overflow)?;
        let mut credit: Option<(Address, u64)> = None;
        let mut burn: u64 = 0;
        let mut producer_update: Option<(Address, Producer)> = None;
        let mut consortium_update: Option<(Hash32, Consortium)> = None;
        let mut reward: Option<(u64, u64)> = None;
        match &tx.kind {
            TxKind::Transfer { to, amount } => {
                if *amount == 0 {
                    return Err(TxError::ZeroAmount);
                }
                if *to == REWARD_POOL {
                    return Err(TxError::ToRewardPool);
                }
                next.balance = need_fee(*amount)?;
                if to.is_black_hole() {
                    self.burned.checked_add(*amount).ok_or(TxError::Overflow)?;
                    burn = *amount;
                } else if *to == tx.sender {
                    // Paying oneself only costs the fee.
                    next.balance += amount;
                } else {
                    self.balance(to)
                        .checked_add(*amount)
                        .ok_or(TxError::Overflow)?;
                    credit = Some((*to, *amount));
                }
            }
            TxKind::Burn { amount } => {
                if *amount == 0 {
                    return Err(TxError::ZeroAmount);
                }
                next.balance = need_fee(*amount)?;
                self.burned.checked_add(*amount).ok_or(TxError::Overflow)?;
                burn = *amount;
            }
            TxKind::Vote { producers } => {
                if producers.len() > p.max_votes as usize {
                    return Err(TxError::TooManyVotes {
                        got: producers.len(),
                        max: p.max_votes,
                    });
                }
                let mut sorted = producers.clone();
                sorted.sort();
                if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                    return Err(TxError::DuplicateVote(w[0]));
                }
                if let Some(bad) = sorted
                    .iter()
                    .find(|a| !self.producers.get(a).is_some_and(|x| x.registered))
                {
                    return Err(TxError::NotAProducer(*bad));
                }
                next.balance = need_fee(0)?;
                next.votes = sorted;
                next.vote_slot = ctx.slot;
            }
            TxKind::RegisterProducer { url } => {
                if url.len() > p.max_url_bytes as usize {
                    return Err(TxError::UrlTooLong {
                        got: url.len(),
                        max: p.max_url_bytes,
                    });
                }
                let mut prod = self.producers.get(&tx.sender).cloned().unwrap_or_default();
                if prod.registered {
                    return Err(TxError::AlreadyRegistered(tx.sender));
                }
                next.balance = need_fee(0)?;
                prod.registered = true;
                prod.url = url.clone();
                producer_update = Some((tx.sender, prod));
            }
            TxKind::UnregisterProducer => {
                let mut prod = self
                    .producers
                    .get(&tx.sender)
                    .filter(|x| x.registered)
                    .cloned()
                    .ok_or(TxError::NotAProducer(tx.sender))?;
                next.balance = need_fee(0)?;
                prod.registered = false;
                producer_update = Some((tx.sender, prod));
            }
            TxKind::WithdrawRewards => {
                if let Some(last) = sender.last_withdraw_slot {
                    let next_allowed = last.saturating_add(p.withdraw_interval_slots);
                    if ctx.slot < next_allowed {
                        return Err(TxError::WithdrawTooSoon { next_allowed });
                    }
                }
                let (matured, still): (Vec<Lock>, Vec<Lock>) = sender
                    .locked
                    .iter()
                    .partition(|l| l.unlock_slot <= ctx.slot);
                if matured.is_empty() {
                    return Err(TxError::RewardsLocked {
                        next_unlock: sender.locked.iter().map(|l| l.unlock_slot).min(),
                    });
                }
                let gained: u128 = matured.iter().map(|l| u128::from(l.amount)).sum();
                let total = u128::from(sender.balance) + gained;
                let need = u128::from(tx.fee);
                if need > total {
                    return Err(TxError::InsufficientBalance {
                        sender: tx.sender,
                        need,
                        have: sender.balance,
                    });
                }
                next.balance = u64::try_from(total - need).map_err(|_| TxError::Overflow)?;
                next.locked = still;
                next.last_withdraw_slot = Some(ctx.slot);
            }
            TxKind::Evidence(ev) => {
                let (a, b) = (&ev.a.header, &ev.b.header);
                if a.chain_id != self.chain_id || b.chain_id != self.chain_id {
                    return Err(TxError::BadEvidence("header from another chain"));
                }
                if a.producer != b.producer || a.slot != b.slot {
                    return Err(TxError::BadEvidence("headers differ in producer or slot"));
                }
                if a.id() == b.id() {
                    return Err(TxError::BadEvidence("the two headers are the same"));
                }
                if !ev.a.signature_ok() || !ev.b.signature_ok() {
                    return Err(TxError::BadEvidence("a header signature does not verify"));
                }
                producer_update = Some((a.producer, self.convicted(a.producer)?));
                next.balance = need_fee(0)?;
            }
            TxKind::VoteEvidence(ev) => {
                let (a, b) = (&ev.a, &ev.b);
                if a.chain_id != self.chain_id || b.chain_id != self.chain_id {
                    return Err(TxError::BadEvidence("vote from another chain"));
                }
                if a.producer != b.producer {
                    return Err(TxError::BadEvidence("votes by different producers"));
                }
                if ev.broken_rule().is_none() {
                    return Err(TxError::BadEvidence(
                        "the votes neither share a target height nor surround one another",
                    ));
                }
                if !a.signature_ok() || !b.signature_ok() {
                    return Err(TxError::BadEvidence("a vote signature does not verify"));
                }
                producer_update = Some((a.producer, self.convicted(a.producer)?));
                next.balance = need_fee(0)?;
            }
            TxKind::RegisterConsortium(ks) => {
                consortium_update = Some((ks.consortium_id, self.plan_key_set(ks)?));
                next.balance = need_fee(0)?;
            }
            TxKind::Anchor(a) => {
                let c = self.plan_anchor(a, stx, ctx)?;
                consortium_update = Some((a.statement.consortium_id, c));
                next.balance = need_fee(0)?;
            }
            TxKind::RewardBatch(b) => {
                let RewardPlan {
                    consortium,
                    epoch,
                    total,
                } = self.plan_reward_batch(b, ctx)?;
                next.balance = need_fee(0)?;
                consortium_update = Some((b.consortium_id, consortium));
                reward = Some((epoch, total));
            }
        }
        Ok(Plan {
            sender: (tx.sender, next),
            credit,
            burn,
            producer_update,
            consortium_update,
            reward,
            fee: tx.fee,
        })
    }

    /// `producer`'s record once proven to have equivocated (headers or
    /// votes): never elected again. Refused if unknown or already marked.
    fn convicted(&self, producer: Address) -> Result<Producer, TxError> {
        let mut prod = self
            .producers
            .get(&producer)
            .cloned()
            .ok_or(TxError::BadEvidence("not a known producer"))?;
        if prod.equivocated {
            return Err(TxError::EvidenceKnown(producer));
        }
        prod.equivocated = true;
        Ok(prod)
    }

    /// The writes of a plan; every overflow was checked when planning.
    fn commit(&mut self, plan: Plan, stx: &SignedTx, ctx: TxContext<'_>) -> u64 {
        let (sender, next) = plan.sender;
        self.accounts.insert(sender, next);
        if let Some((to, amount)) = plan.credit {
            self.accounts.entry(to).or_default().balance += amount;
        }
        self.burned += plan.burn;
        if let Some((a, prod)) = plan.producer_update {
            self.producers.insert(a, prod);
        }
        if let Some((id, c)) = plan.consortium_update {
            self.consortia.insert(id, c);
        }
        if let (Some((epoch, total)), TxKind::RewardBatch(b)) = (plan.reward, &stx.tx.kind) {
            // Planned: total ≤ the pool's balance and ≤ the epoch budget.
            let pool = self.accounts.entry(REWARD_POOL).or_default();
            pool.balance -= total;
            let paid = self.reward_paid.entry(epoch).or_default();
            *paid = paid.saturating_add(total);
            for e in &b.entries {
                self.accounts
                    .entry(e.address)
                    .or_default()
                    .lock(ctx.slot, e.amount, ctx.params);
            }
        }
        plan.fee
    }
}
