//! One process per data directory: `arca serve` holds an exclusive lock on `<data>/arca.lock`, with its
//! process id written into it, for as long as it runs. It is taken before anything else in the directory
//! is read or written, so that a second server on the same directory stops instead of damaging it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "arca.lock";

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DataLockError {
    /// Another process holds the lock.
    #[error(
        "data directory {dir} is in use by another arca process ({holder}, lock file {file}); stop it, \
         or give this node a data directory of its own (setting data.dir, ARCA_DATA_DIR)"
    )]
    InUse { dir: PathBuf, file: PathBuf, holder: String },
    /// The lock file could not be opened, locked or written.
    #[error("cannot lock data directory {dir} (lock file {file}): {source}")]
    Io { dir: PathBuf, file: PathBuf, source: std::io::Error },
}

/// The held lock of a data directory; released when dropped (or when the process ends, however).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Locks `dir` (which must exist) for this process, or names the process that holds it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, DataLockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| DataLockError::Io { dir: dir.to_path_buf(), file: path.clone(), source };
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim() {
                    "" => "process id not yet written".to_string(),
                    pid => format!("process id {pid}"),
                };
                return Err(DataLockError::InUse { dir: dir.to_path_buf(), file: path, holder });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_data_directory_is_refused_naming_the_directory_and_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = DataDirLock::acquire(dir.path()).expect("first");
        let err = DataDirLock::acquire(dir.path()).expect_err("second").to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains(&format!("process id {}", std::process::id())), "{err}");
        drop(held);
        DataDirLock::acquire(dir.path()).expect("free again once the holder is gone");
    }
}
