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
#[derive(Debug, Clone)]
pub struct Incoming {
    pub raw: Vec<u8>,
    pub doc: MessageDoc,
    pub archive: ArchiveId,
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
            let batch = decode(payload).map_err(|reason| StagingError::Corrupt {
                path: path.to_path_buf(),
                offset: pos as u64,
                reason,
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
    pub fn append(&mut self, batch: &[&Incoming]) -> Result<(), StagingError> {
        let io = |source| StagingError::Io { path: self.path.clone(), source };
        let mut payload = Vec::new();
        for m in batch {
            encode(m, &mut payload).map_err(|e| io(std::io::Error::other(e)))?;
        }
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
