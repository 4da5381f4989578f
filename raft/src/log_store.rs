//! Durable Raft log and vote storage: one append-only, checksummed record file per node.
//!
//! Records are entry batches, truncations, purges, votes and the committed id. Appends are fsynced before
//! openraft is told they are durable (one fsync per batch: group commit). Startup replays the file; a torn
//! final record (an append cut short by a crash, never acknowledged) is dropped with a warning, anything
//! else unreadable stops startup with an error naming the file. The file is rewritten compactly once
//! purged records dominate it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::File;
use std::io::Write;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::{Deserialize, Serialize};

use crate::TypeConfig;
use arca_types::NodeId;
use arca_types::wal::{self, WalError};

/// Name of the log file inside the node's Raft directory.
pub const LOG_FILE: &str = "raft-log.wal";
/// Rewrite the file when it holds this many more records than live entries.
const COMPACT_SLACK: usize = 20_000;

#[derive(Debug, Serialize, Deserialize)]
enum LogRecord {
    Entries(Vec<Entry<TypeConfig>>),
    Truncate(u64),
    Purge(LogId<NodeId>),
    Vote(Vote<NodeId>),
    Committed(Option<LogId<NodeId>>),
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    file: File,
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    records_in_file: usize,
}

/// The log store; clones share the same file (openraft asks for a separate reader handle).
#[derive(Debug, Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

fn io_err(e: impl std::error::Error + 'static) -> StorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

impl LogStore {
    /// Opens (or creates) the log in `dir`, replaying it. Fails naming the file when it is corrupt.
    pub fn open(dir: &Path) -> Result<LogStore, WalError> {
        let path = dir.join(LOG_FILE);
        let read = wal::read_records(&path)?;
        if read.torn_tail {
            tracing::warn!(file = %path.display(), "dropping a torn final log record (an append cut short by a crash; it was never acknowledged)");
        }
        let mut entries = BTreeMap::new();
        let mut last_purged = None;
        let mut vote = None;
        let mut committed = None;
        for (i, raw) in read.records.iter().enumerate() {
            let record: LogRecord = serde_json::from_slice(raw).map_err(|e| WalError::Corrupt {
                path: path.clone(),
                offset: i as u64,
                reason: format!("record {i} does not decode: {e}"),
            })?;
            match record {
                LogRecord::Entries(batch) => {
                    for e in batch {
                        entries.insert(e.log_id.index, e);
                    }
                }
                LogRecord::Truncate(index) => {
                    entries.split_off(&index);
                }
                LogRecord::Purge(id) => {
                    entries = entries.split_off(&(id.index + 1));
                    last_purged = Some(id);
                }
                LogRecord::Vote(v) => vote = Some(v),
                LogRecord::Committed(c) => committed = c,
            }
        }
        let io = |source| WalError::Io { path: path.clone(), source };
        let file = wal::open_append(&path, read.valid_len).map_err(io)?;
        file.sync_all().map_err(io)?;
        wal::sync_dir(&path).map_err(io)?;
        let records_in_file = read.records.len();
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                path,
                file,
                entries,
                last_purged,
                vote,
                committed,
                records_in_file,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the in-memory map half-updated in a way that matters:
        // the file is the truth and is replayed at the next start.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn write(&mut self, record: &LogRecord, fsync: bool) -> Result<(), StorageError<NodeId>> {
        let payload = serde_json::to_vec(record).map_err(io_err)?;
        self.file.write_all(&wal::frame(&payload)).map_err(io_err)?;
        if fsync {
            self.file.sync_data().map_err(io_err)?;
        }
        self.records_in_file += 1;
        Ok(())
    }

    /// Rewrites the file with only what is live, once dead records dominate it.
    fn maybe_compact(&mut self) -> Result<(), StorageError<NodeId>> {
        if self.records_in_file < self.entries.len() / 64 + COMPACT_SLACK {
            return Ok(());
        }
        let mut records = Vec::new();
        let mut push = |r: &LogRecord| -> Result<(), StorageError<NodeId>> {
            records.push(serde_json::to_vec(r).map_err(io_err)?);
            Ok(())
        };
        if let Some(v) = self.vote {
            push(&LogRecord::Vote(v))?;
        }
        push(&LogRecord::Committed(self.committed))?;
        if let Some(p) = self.last_purged {
            push(&LogRecord::Purge(p))?;
        }
        let live: Vec<_> = self.entries.values().cloned().collect();
        for chunk in live.chunks(512) {
            push(&LogRecord::Entries(chunk.to_vec()))?;
        }
        wal::write_atomically(&self.path, &records).map_err(io_err)?;
        let len = std::fs::metadata(&self.path).map_err(io_err)?.len();
        self.file = wal::open_append(&self.path, len).map_err(io_err)?;
        self.records_in_file = records.len();
        tracing::debug!(records = self.records_in_file, "compacted the raft log file");
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.lock().entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.lock();
        let last = inner.entries.values().next_back().map(|e| e.log_id).or(inner.last_purged);
        Ok(LogState { last_purged_log_id: inner.last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.write(&LogRecord::Vote(*vote), true)?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        // Not fsynced: the committed id is a hint that speeds up restart, never needed for safety.
        inner.write(&LogRecord::Committed(committed), false)?;
        inner.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let batch: Vec<_> = entries.into_iter().collect();
        let result = {
            let mut inner = self.lock();
            let r = inner.write(&LogRecord::Entries(batch.clone()), true);
            if r.is_ok() {
                for e in batch {
                    inner.entries.insert(e.log_id.index, e);
                }
            }
            r
        };
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.write(&LogRecord::Truncate(log_id.index), true)?;
        inner.entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.write(&LogRecord::Purge(log_id), true)?;
        inner.entries = inner.entries.split_off(&(log_id.index + 1));
        inner.last_purged = Some(log_id);
        inner.maybe_compact()
    }
}
