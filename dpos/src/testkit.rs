//! Shared fixtures for the unit tests: a 4-producer chain with funded
//! accounts, and helpers to sign transactions and build scheduled blocks.

use std::collections::BTreeMap;

use crate::address::{Address, Keypair};
use crate::block::Block;
use crate::chain::scheduled_producer;
use crate::params::{Allocation, COIN, Genesis, Params};
use crate::state::State;
use crate::tx::{SignedTx, Tx, TxKind};

pub(crate) struct Kit {
    pub genesis: Genesis,
    pub params: Params,
    pub producers: BTreeMap<Address, Keypair>,
    pub users: Vec<Keypair>,
}

impl Kit {
    pub(crate) fn new() -> Self {
        Self::with(Params::fast(4))
    }

    pub(crate) fn with(params: Params) -> Self {
        let keys: Vec<Keypair> = (0..params.n_producers as u64)
            .map(|i| Keypair::for_test("kit-p", i))
            .collect();
        let users: Vec<Keypair> = (0..4).map(|i| Keypair::for_test("kit-u", i)).collect();
        let mut allocations: Vec<Allocation> = users
            .iter()
            .map(|u| Allocation {
                label: "user".into(),
                address: u.address(),
                amount: 1_000 * COIN,
            })
            .collect();
        allocations.extend(keys.iter().map(|k| Allocation {
            label: "producer".into(),
            address: k.address(),
            amount: 10 * COIN,
        }));
        if params.rewards.pool > 0 {
            allocations.push(Allocation {
                label: "dapp_reward_pool".into(),
                address: crate::rewards::REWARD_POOL,
                amount: params.rewards.pool,
            });
        }
        let genesis = Genesis {
            name: "kit".into(),
            genesis_time_ms: 0,
            params: params.clone(),
            allocations,
            initial_producers: keys.iter().map(Keypair::address).collect(),
        };
        Self {
            genesis,
            params,
            producers: keys.into_iter().map(|k| (k.address(), k)).collect(),
            users,
        }
    }

    pub(crate) fn state(&self) -> State {
        State::genesis(&self.genesis).unwrap()
    }

    pub(crate) fn tx(&self, key: &Keypair, nonce: u64, kind: TxKind) -> SignedTx {
        Tx {
            chain_id: self.genesis.chain_id(),
            sender: key.address(),
            nonce,
            fee: self.params.min_fee,
            expiry_slot: 50,
            kind,
        }
        .sign(key)
    }

    /// A valid block at `slot` on `parent` by the scheduled producer.
    pub(crate) fn block(&self, parent: &State, slot: u64, txs: Vec<SignedTx>) -> Block {
        let (who, version) = scheduled_producer(parent, slot, &self.params);
        let key = self
            .producers
            .get(&who)
            .or_else(|| self.users.iter().find(|u| u.address() == who))
            .expect("scheduled producer is a kit key");
        Block::build(
            key,
            parent.chain_id,
            parent.height + 1,
            slot,
            parent.head_id,
            version,
            parent.mmr.root(),
            txs,
        )
    }
}
