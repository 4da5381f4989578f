//! openraft's storage conformance suite against Arca's durable log and state-machine stores.

use arca_raft::TypeConfig;
use arca_raft::log_store::LogStore;
use arca_raft::sm_store::StateMachineStore;
use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};

struct DiskBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for DiskBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = LogStore::open(dir.path()).expect("open log");
        let sm = StateMachineStore::open(dir.path()).expect("open state machine");
        Ok((dir, log, sm))
    }
}

#[test]
fn disk_storage_passes_openraft_conformance_suite() -> Result<(), StorageError<u64>> {
    Suite::test_all(DiskBuilder)
}
