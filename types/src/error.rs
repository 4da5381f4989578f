//! Errors of validated metadata commands; each names the argument or record at fault.

use serde::{Deserialize, Serialize};

/// Why a metadata command or query was refused. Serializable, because the answer travels through Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MetaError {
    /// An argument has an invalid value; `field` is the API argument name.
    #[error("invalid value for '{field}': {reason}")]
    Invalid { field: String, reason: String },
    /// A record that must exist does not.
    #[error("{kind} '{name}' does not exist")]
    NotFound { kind: String, name: String },
    /// A record with that name exists already.
    #[error("{kind} '{name}' already exists")]
    AlreadyExists { kind: String, name: String },
    /// The operation is refused in the current state (e.g. deleting the last administrator).
    #[error("{0}")]
    Refused(String),
    /// A request id (a client's `Idempotency-Key`) was used before for a different command: nothing
    /// was applied, and the first command's answer is not repeated as if it were this one's.
    #[error(
        "the Idempotency-Key of request '{id}' was already used with other arguments; nothing was applied (use a new key for a new request)"
    )]
    RequestIdReused { id: String },
    /// A compare-and-set takeover (`ClaimShard`) lost: the store's epoch moved on, or its owner renewed
    /// its lease, since the claimant looked. Nothing changed; the store is served by someone else.
    #[error("store {store} was not taken over: {reason}")]
    ClaimLost { store: u64, reason: String },
}

impl MetaError {
    /// Shorthand for [`MetaError::Invalid`].
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        MetaError::Invalid { field: field.to_string(), reason: reason.into() }
    }
    /// Shorthand for [`MetaError::NotFound`].
    pub fn not_found(kind: &str, name: impl Into<String>) -> Self {
        MetaError::NotFound { kind: kind.to_string(), name: name.into() }
    }
    /// Shorthand for [`MetaError::AlreadyExists`].
    pub fn exists(kind: &str, name: impl Into<String>) -> Self {
        MetaError::AlreadyExists { kind: kind.to_string(), name: name.into() }
    }
}
