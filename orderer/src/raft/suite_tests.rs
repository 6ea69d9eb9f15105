//! openraft's own storage test suite (`openraft::testing::Suite`, some
//! fifty cases: votes, log reads, purge and truncation, membership from log
//! and state machine, initial state after restart, re-applying committed
//! entries) run over the orderer's sled log store and its chain-backed
//! state machine, each on a fresh sled database in a temp dir.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};
use qcss_network::Role;
use qcss_network::block::genesis_block;

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::types::{StorageError, TypeConfig};
use crate::chain::Chain;
use crate::fixtures::{TestOrg, channel_config};
use crate::metrics::Metrics;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path()).expect("sled");
        let org = TestOrg::new(1);
        let orderer = org.identity("o1", Role::Orderer);
        let genesis = genesis_block(&channel_config(&[&org], &orderer));
        let chain = Chain::open(&db, &genesis, Arc::new(orderer)).expect("chain");
        let log = LogStore::open(&db).expect("log store");
        let sm = StateMachine::new(
            Arc::new(chain),
            Metrics::new(qcss_network::ops::Registry::new()),
        );
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes_over_sled() {
    Suite::test_all(Builder).expect("openraft's storage suite");
}
