//! The local staging log of a shard writer: accepted messages are appended and fsynced (one fsync per
//! group) before they go into a pack, so that messages accepted but not yet flushed survive a crash and
//! are flushed after restart. The log is emptied after every committed flush.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::Direction;
use arca_types::ArchiveId;
use arca_types::document::MessageDoc;
use arca_types::wal::{self, WalError};

/// A message accepted for archiving, before it is in a pack.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub raw: Vec<u8>,
    pub doc: MessageDoc,
    pub archive: ArchiveId,
    /// The key of the message's folder (`records::Archive::folders`), not its current path.
    pub folder: String,
    pub direction: Direction,
}

/// The staged form of everything but the raw bytes.
#[derive(Serialize, Deserialize)]
struct StagedMeta<'a> {
    #[serde(borrow)]
    folder: std::borrow::Cow<'a, str>,
    archive: ArchiveId,
    direction: Direction,
    doc: std::borrow::Cow<'a, MessageDoc>,
}

/// Encodes one message as `meta length u32, meta JSON, raw length u32, raw`.
fn encode(m: &Incoming, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let meta = serde_json::to_vec(&StagedMeta {
        folder: std::borrow::Cow::Borrowed(&m.folder),
        archive: m.archive,
        direction: m.direction,
        doc: std::borrow::Cow::Borrowed(&m.doc),
    })?;
    out.extend((meta.len() as u32).to_le_bytes());
    out.extend(&meta);
    out.extend((m.raw.len() as u32).to_le_bytes());
    out.extend(&m.raw);
    Ok(())
}

/// Decodes the messages of one staged group.
fn decode(mut bytes: &[u8]) -> Result<Vec<Incoming>, String> {
    let mut out = Vec::new();
    let take = |bytes: &mut &[u8]| -> Result<Vec<u8>, String> {
        if bytes.len() < 4 {
            return Err("cut short".into());
        }
        let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if bytes.len() < 4 + len {
            return Err("cut short".into());
        }
        let v = bytes[4..4 + len].to_vec();
        *bytes = &bytes[4 + len..];
        Ok(v)
    };
    while !bytes.is_empty() {
        let meta = take(&mut bytes)?;
        let raw = take(&mut bytes)?;
        let meta: StagedMeta<'_> = serde_json::from_slice(&meta).map_err(|e| e.to_string())?;
        out.push(Incoming {
            raw,
            doc: meta.doc.into_owned(),
            archive: meta.archive,
            folder: meta.folder.into_owned(),
            direction: meta.direction,
        });
    }
    Ok(out)
}

/// Why the staging log failed; names the file.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("staging log {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("staging log {path} is corrupted at byte {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
}

/// An append-only file of groups of [`Incoming`] messages, one checksummed record per group
/// ([`arca_types::wal`] framing).
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    file: File,
}

impl Staging {
    /// Opens the log at `path`, returning what it still holds (accepted, never committed). A torn final
    /// record (never acknowledged) is cut off before anything is appended.
    pub fn open(path: &Path) -> Result<(Staging, Vec<Incoming>), StagingError> {
        let io = |source| StagingError::Io { path: path.to_path_buf(), source };
        let read = wal::read_records(path).map_err(|e| match e {
            WalError::Io { source, .. } => io(source),
            WalError::Corrupt { offset, reason, .. } => {
                StagingError::Corrupt { path: path.to_path_buf(), offset, reason }
            }
        })?;
        let mut pending = Vec::new();
        let mut offset = 0u64;
        for record in &read.records {
            let batch = decode(record).map_err(|reason| StagingError::Corrupt {
                path: path.to_path_buf(),
                offset,
                reason,
            })?;
            pending.extend(batch);
            offset += 8 + record.len() as u64;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = wal::open_append(path, read.valid_len).map_err(io)?;
        Ok((Staging { path: path.to_path_buf(), file }, pending))
    }

    /// Appends a group of messages and fsyncs once.
    pub fn append(&mut self, batch: &[&Incoming]) -> Result<(), StagingError> {
        let io = |source| StagingError::Io { path: self.path.clone(), source };
        let mut payload = Vec::new();
        for m in batch {
            encode(m, &mut payload).map_err(|e| io(std::io::Error::other(e)))?;
        }
        self.file.write_all(&wal::frame(&payload)).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// Empties the log after a committed flush.
    pub fn clear(&mut self) -> Result<(), StagingError> {
        let io = |source| StagingError::Io { path: self.path.clone(), source };
        self.file.set_len(0).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(raw: &[u8]) -> Incoming {
        Incoming {
            raw: raw.to_vec(),
            doc: MessageDoc::empty(raw.len() as u64),
            archive: 1,
            folder: "Inbox".into(),
            direction: Direction::Received,
        }
    }

    #[test]
    fn a_torn_final_group_is_cut_off_so_later_groups_stay_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("staging.log");
        let (mut log, _) = Staging::open(&path).expect("open");
        log.append(&[&message(b"kept")]).expect("append");
        log.append(&[&message(b"torn")]).expect("append");
        drop(log);
        let len = std::fs::metadata(&path).expect("len").len();
        std::fs::OpenOptions::new().write(true).open(&path).expect("open").set_len(len - 3).expect("tear");

        let (mut log, pending) = Staging::open(&path).expect("a torn tail is no corruption");
        assert_eq!(pending.iter().map(|m| m.raw.as_slice()).collect::<Vec<_>>(), vec![&b"kept"[..]]);
        log.append(&[&message(b"after")]).expect("append");
        drop(log);
        let (_, pending) = Staging::open(&path).expect("reopen");
        let raws: Vec<&[u8]> = pending.iter().map(|m| m.raw.as_slice()).collect();
        assert_eq!(raws, vec![&b"kept"[..], &b"after"[..]]);
    }

    #[test]
    fn a_flipped_byte_is_corruption_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("staging.log");
        let (mut log, _) = Staging::open(&path).expect("open");
        log.append(&[&message(b"one")]).expect("append");
        drop(log);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[12] ^= 1;
        std::fs::write(&path, bytes).expect("write");
        let err = Staging::open(&path).expect_err("corrupt").to_string();
        assert!(err.contains("staging.log") && err.contains("byte 0"), "{err}");
    }
}
