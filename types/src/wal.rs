//! Checksummed record files: the framing shared by the Raft log, the Raft snapshot files and the shards'
//! staging logs.
//!
//! A record is `[len: u32 LE][crc32 of payload: u32 LE][payload]`. A record cut short at the end of a
//! file (a write interrupted by a crash, never acknowledged) is reported as a torn tail; any other
//! mismatch is corruption and names the file and offset.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Upper bound for one record, so that a corrupted length cannot make us allocate without bound.
pub const MAX_RECORD: usize = 256 * 1024 * 1024;

/// A problem reading a record file.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is corrupted at byte offset {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
}

/// Frames one payload as a record.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The records of a file, and the length of the valid prefix (shorter than the file on a torn tail).
#[derive(Debug)]
pub struct ReadRecords {
    pub records: Vec<Vec<u8>>,
    pub valid_len: u64,
    pub torn_tail: bool,
}

/// Why reading a record file stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The last record is cut short (a write interrupted by a crash, never acknowledged).
    TornTail,
    /// The record at `offset` is damaged: its length or checksum does not hold.
    Corrupt { offset: u64, reason: String },
}

/// The readable prefix of a record file: every record before the first torn or damaged one.
#[derive(Debug)]
pub struct Prefix {
    pub records: Vec<Vec<u8>>,
    /// Offset of each record of `records`.
    pub offsets: Vec<u64>,
    /// Length of the readable prefix (where the next record would start).
    pub valid_len: u64,
    /// Why reading stopped before the end of the file, if it did.
    pub stop: Option<Stop>,
    /// The whole file as read, so that a caller can keep what it cannot use.
    pub bytes: Vec<u8>,
}

/// Reads the records of `path` up to the first torn or damaged one; a missing file reads as empty.
/// Only an I/O error fails: damage is reported in [`Prefix::stop`] (the staging log salvages it).
pub fn read_prefix(path: &Path) -> Result<Prefix, WalError> {
    let io = |source| WalError::Io { path: path.to_path_buf(), source };
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes).map_err(io)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut records = Vec::new();
    let mut offsets = Vec::new();
    let mut pos = 0usize;
    let mut stop = None;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < 8 {
            stop = Some(Stop::TornTail);
            break;
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if len > MAX_RECORD {
            let reason = format!("record length {len} exceeds the limit of {MAX_RECORD} bytes");
            stop = Some(Stop::Corrupt { offset: pos as u64, reason });
            break;
        }
        if rest.len() < 8 + len {
            stop = Some(Stop::TornTail);
            break;
        }
        let payload = &rest[8..8 + len];
        if crc32fast::hash(payload) != crc {
            stop = Some(Stop::Corrupt { offset: pos as u64, reason: "checksum mismatch".into() });
            break;
        }
        records.push(payload.to_vec());
        offsets.push(pos as u64);
        pos += 8 + len;
    }
    Ok(Prefix { records, offsets, valid_len: pos as u64, stop, bytes })
}

/// Reads every record of `path`; a missing file reads as empty. A torn tail is reported, any other
/// damage is an error naming the file and offset.
pub fn read_records(path: &Path) -> Result<ReadRecords, WalError> {
    let prefix = read_prefix(path)?;
    match prefix.stop {
        Some(Stop::Corrupt { offset, reason }) => {
            Err(WalError::Corrupt { path: path.to_path_buf(), offset, reason })
        }
        stop => Ok(ReadRecords {
            records: prefix.records,
            valid_len: prefix.valid_len,
            torn_tail: stop == Some(Stop::TornTail),
        }),
    }
}

/// Writes `records` to `path` atomically: a temporary file, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, records: &[Vec<u8>]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        for r in records {
            f.write_all(&frame(r))?;
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Writes plain `bytes` to `path` atomically (temporary file, fsync, rename, directory fsync).
pub fn write_atomically_plain(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path)
}

/// Fsyncs the directory holding `path`, so that a create or rename survives a crash.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Opens `path` for appending, cutting it to `len` first (drops a torn tail).
pub fn open_append(path: &Path, len: u64) -> std::io::Result<File> {
    let f = OpenOptions::new().create(true).read(true).write(true).truncate(false).open(path)?;
    f.set_len(len)?;
    let mut f = f;
    use std::io::Seek;
    f.seek(std::io::SeekFrom::End(0))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_is_reported_and_flipped_byte_is_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.wal");
        let mut bytes = frame(b"one");
        bytes.extend(frame(b"two"));
        let full = bytes.len();
        std::fs::write(&path, &bytes[..full - 1]).expect("write");
        let r = read_records(&path).expect("torn tail is not corruption");
        assert_eq!(r.records, vec![b"one".to_vec()]);
        assert!(r.torn_tail);
        bytes[9] ^= 0x40;
        std::fs::write(&path, &bytes).expect("write");
        let err = read_records(&path).unwrap_err().to_string();
        assert!(err.contains("x.wal") && err.contains("offset 0"), "{err}");
    }
}
