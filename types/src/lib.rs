//! Shared vocabulary of Arca: ids, metadata records, value sets, typed metadata commands, configuration.
//!
//! Every other crate speaks in these types; this crate depends on nothing of Arca's.

pub mod command;
pub mod config;
pub mod document;
pub mod error;
pub mod ids;
pub mod names;
pub mod password;
pub mod query;
pub mod records;
pub mod values;
pub mod wal;

pub use command::{Command, CommandOutput, RequestId};
pub use error::MetaError;
pub use ids::{ArchiveId, NodeId, ShardId, UserId};
