//! Numeric identifiers assigned by the metadata state machine.

/// A cluster node, chosen at random when its data directory is first created.
pub type NodeId = u64;
/// A user within a tenant; never reused, so grants survive renames.
pub type UserId = u64;
/// A user archive (top-level folder); outlives the user it was created for.
pub type ArchiveId = u64;
/// An archive store (shard), unique in the cluster: the manual's store `id`.
pub type ShardId = u64;
