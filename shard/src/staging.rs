//! The local staging log of a shard writer: accepted messages are appended and fsynced (one fsync per
//! group) before they go into a pack, so that messages accepted but not yet flushed survive a crash and
//! are flushed after restart. The log is emptied after every committed flush.

use std::fs::File;
use std::io::{Seek, Write};
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
}

/// What of a staging log could not be replayed (a torn final group, a damaged record, or a group this
/// version cannot decode): moved out of the log into a file of its own, kept for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Offset in the log of the first byte that could not be replayed.
    pub offset: u64,
    /// Why it could not be replayed.
    pub reason: String,
    /// The file now holding those bytes (Arca never deletes it).
    pub file: PathBuf,
}

/// A staging log opened for appending, with what it still held.
#[derive(Debug)]
pub struct Opened {
    pub staging: Staging,
    /// Messages accepted but never committed, to be flushed again.
    pub pending: Vec<Incoming>,
    /// What could not be replayed, if anything.
    pub set_aside: Option<SetAside>,
}

/// An append-only file of groups of [`Incoming`] messages, one checksummed record per group
/// ([`arca_types::wal`] framing).
#[derive(Debug)]
pub struct Staging {
    path: PathBuf,
    file: File,
}

impl Staging {
    /// Opens the log at `path`, returning what it still holds (accepted, never committed). Everything
    /// from the first group that cannot be replayed on (torn by a crash, damaged, undecodable) is moved
    /// into a file beside the log and cut off, so that a damaged log never keeps a store from opening:
    /// what the groups before it hold is replayed, and acknowledged mail is in object storage already.
    pub fn open(path: &Path) -> Result<Opened, StagingError> {
        let io = |source| StagingError::Io { path: path.to_path_buf(), source };
        let prefix = wal::read_prefix(path).map_err(|e| match e {
            WalError::Io { source, .. } => io(source),
            // read_prefix reports damage in its answer; this arm is never taken.
            other @ WalError::Corrupt { .. } => io(std::io::Error::other(other)),
        })?;
        let mut pending = Vec::new();
        let mut cut = match &prefix.stop {
            None => None,
            Some(wal::Stop::TornTail) => Some((
                prefix.valid_len,
                "the last group is cut short (a crash while it was written; it was never acknowledged)"
                    .to_string(),
            )),
            Some(wal::Stop::Corrupt { offset, reason }) => Some((*offset, reason.clone())),
        };
        for (record, offset) in prefix.records.iter().zip(&prefix.offsets) {
            match decode(record) {
                Ok(batch) => pending.extend(batch),
                Err(reason) => {
                    cut = Some((*offset, format!("the group cannot be decoded: {reason}")));
                    break;
                }
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut set_aside = None;
        let keep = match cut {
            None => prefix.valid_len,
            Some((offset, reason)) => {
                let file = aside_path(path, offset);
                let start = (offset as usize).min(prefix.bytes.len());
                wal::write_atomically_plain(&file, &prefix.bytes[start..])
                    .map_err(|source| StagingError::Io { path: file.clone(), source })?;
                tracing::error!(
                    log = %path.display(),
                    offset,
                    kept_in = %file.display(),
                    "staging log: {reason}; the bytes from offset {offset} on cannot be replayed and were \
                     moved aside (acknowledged mail is in object storage; senders of the rest got no answer \
                     and retry)"
                );
                set_aside = Some(SetAside { offset, reason, file });
                offset
            }
        };
        let file = wal::open_append(path, keep).map_err(io)?;
        if set_aside.is_some() {
            file.sync_all().map_err(io)?;
        }
        Ok(Opened { staging: Staging { path: path.to_path_buf(), file }, pending, set_aside })
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

    /// Empties the log after a committed flush, and moves the append position back to its start (the
    /// next group must not be written behind a hole).
    pub fn clear(&mut self) -> Result<(), StagingError> {
        let io = |source| StagingError::Io { path: self.path.clone(), source };
        self.file.set_len(0).map_err(io)?;
        self.file.rewind().map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

/// Where the unreplayable bytes of the log at `path` from `offset` on are kept: beside the log, named
/// after the offset and the time, so that repeated damage never overwrites an earlier file.
fn aside_path(path: &Path, offset: u64) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "staging".into());
    path.with_file_name(format!("{stem}-unreplayable-{nanos}-from-byte-{offset}.log"))
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

    fn raws(pending: &[Incoming]) -> Vec<&[u8]> {
        pending.iter().map(|m| m.raw.as_slice()).collect()
    }

    #[test]
    fn a_torn_final_group_is_set_aside_so_later_groups_stay_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("staging.log");
        let mut log = Staging::open(&path).expect("open").staging;
        log.append(&[&message(b"kept")]).expect("append");
        log.append(&[&message(b"torn")]).expect("append");
        drop(log);
        let len = std::fs::metadata(&path).expect("len").len();
        let full = std::fs::read(&path).expect("read");
        std::fs::OpenOptions::new().write(true).open(&path).expect("open").set_len(len - 3).expect("tear");

        let opened = Staging::open(&path).expect("a torn tail is no corruption");
        assert_eq!(raws(&opened.pending), vec![&b"kept"[..]]);
        let aside = opened.set_aside.expect("the torn group is reported");
        assert!(aside.offset > 0 && aside.offset < len, "{aside:?}");
        assert_eq!(
            std::fs::read(&aside.file).expect("kept for the operator"),
            full[aside.offset as usize..len as usize - 3].to_vec()
        );
        assert!(aside.file.to_string_lossy().contains(&format!("from-byte-{}", aside.offset)));
        let mut log = opened.staging;
        log.append(&[&message(b"after")]).expect("append");
        drop(log);
        let opened = Staging::open(&path).expect("reopen");
        assert_eq!(raws(&opened.pending), vec![&b"kept"[..], &b"after"[..]]);
        assert!(opened.set_aside.is_none(), "the log is whole again");
    }

    #[test]
    fn a_damaged_group_is_set_aside_naming_its_offset_and_the_groups_before_it_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("staging.log");
        let mut log = Staging::open(&path).expect("open").staging;
        log.append(&[&message(b"one")]).expect("append");
        let second = std::fs::metadata(&path).expect("len").len();
        log.append(&[&message(b"two")]).expect("append");
        log.append(&[&message(b"three")]).expect("append");
        drop(log);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[second as usize + 12] ^= 1;
        std::fs::write(&path, &bytes).expect("write");

        let opened = Staging::open(&path).expect("a damaged log still opens");
        assert_eq!(raws(&opened.pending), vec![&b"one"[..]]);
        let aside = opened.set_aside.expect("reported");
        assert_eq!(aside.offset, second);
        assert!(aside.reason.contains("checksum"), "{aside:?}");
        assert_eq!(std::fs::read(&aside.file).expect("kept"), bytes[second as usize..].to_vec());
        assert_eq!(std::fs::metadata(&path).expect("len").len(), second, "cut at the damage");
    }

    #[test]
    fn a_group_appended_after_clearing_starts_at_the_beginning_of_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("staging.log");
        let mut log = Staging::open(&path).expect("open").staging;
        log.append(&[&message(b"published")]).expect("append");
        log.clear().expect("clear");
        log.append(&[&message(b"next")]).expect("append");
        drop(log);
        let frame_len = wal::frame(&{
            let mut p = Vec::new();
            encode(&message(b"next"), &mut p).expect("encode");
            p
        })
        .len() as u64;
        assert_eq!(std::fs::metadata(&path).expect("len").len(), frame_len, "no hole before the group");
        let opened = Staging::open(&path).expect("reopen");
        assert_eq!(raws(&opened.pending), vec![&b"next"[..]]);
        assert!(opened.set_aside.is_none());
    }
}
