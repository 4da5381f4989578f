//! The local staging log of a shard writer: accepted messages are appended and fsynced (one fsync per
//! group) before they go into a pack, so that messages accepted but not yet flushed survive a crash and
//! are flushed after restart. The log is emptied after every committed flush.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::Direction;
use arca_types::ArchiveId;
use arca_types::document::MessageDoc;

/// Largest staged record (a message plus its document); longer lengths are corruption.
const MAX_STAGED: usize = 256 * 1024 * 1024;

/// A message accepted for archiving, before it is in a pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incoming {
    #[serde(with = "serde_bytes_hex")]
    pub raw: Vec<u8>,
    pub doc: MessageDoc,
    pub archive: ArchiveId,
    pub folder: String,
    pub direction: Direction,
}

mod serde_bytes_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// Why the staging log failed; names the file.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("staging log {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("staging log {path} is corrupted at byte {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
}

/// An append-only, checksummed file of [`Incoming`] messages.
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    file: File,
}

impl Staging {
    /// Opens the log at `path`, returning what it still holds (accepted, never committed).
    pub fn open(path: &Path) -> Result<(Staging, Vec<Incoming>), StagingError> {
        let io = |source| StagingError::Io { path: path.to_path_buf(), source };
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes).map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let mut pending = Vec::new();
        let mut pos = 0usize;
        while pos + 8 <= bytes.len() {
            let len =
                u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
            let crc = u32::from_le_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]);
            if len > MAX_STAGED {
                return Err(StagingError::Corrupt {
                    path: path.to_path_buf(),
                    offset: pos as u64,
                    reason: format!("record length {len} over the limit"),
                });
            }
            if pos + 8 + len > bytes.len() {
                break; // a torn final append: never acknowledged
            }
            let payload = &bytes[pos + 8..pos + 8 + len];
            if crc32fast::hash(payload) != crc {
                return Err(StagingError::Corrupt {
                    path: path.to_path_buf(),
                    offset: pos as u64,
                    reason: "checksum mismatch".into(),
                });
            }
            let batch: Vec<Incoming> = serde_json::from_slice(payload).map_err(|e| {
                StagingError::Corrupt { path: path.to_path_buf(), offset: pos as u64, reason: e.to_string() }
            })?;
            pending.extend(batch);
            pos += 8 + len;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(io)?;
        Ok((Staging { path: path.to_path_buf(), file }, pending))
    }

    /// Appends a group of messages and fsyncs once.
    pub fn append(&mut self, batch: &[Incoming]) -> Result<(), StagingError> {
        let io = |source| StagingError::Io { path: self.path.clone(), source };
        let payload = serde_json::to_vec(batch).map_err(|e| io(std::io::Error::other(e)))?;
        let mut record = Vec::with_capacity(payload.len() + 8);
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        record.extend_from_slice(&payload);
        self.file.write_all(&record).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// Empties the log after a committed flush.
    pub fn clear(&mut self) -> Result<(), StagingError> {
        let io = |source| StagingError::Io { path: self.path.clone(), source };
        self.file.set_len(0).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}
