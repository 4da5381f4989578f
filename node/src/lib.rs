//! The `arca` binary as a library: `serve` wires the crates into a running node, `client` and
//! `cluster_cmd` are the command-line client. Tests start nodes in-process through [`serve::run_until`].

pub mod certs;
pub mod client;
pub mod cluster_cmd;
pub mod data_cmd;
pub mod data_lock;
pub mod export_cmd;
pub mod logging;
pub mod reimport;
pub mod serve;
pub mod shard_ops_cmd;
pub mod status_cmd;
pub mod store_cmd;
pub mod tenant_cmd;
