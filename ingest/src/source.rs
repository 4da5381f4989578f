//! What the file-format readers yield: messages with their origin, refusals, and read errors.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::limits::Refused;

/// One message read from a source, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMessage {
    /// Where it came from: a file path, or `path#n` for the n-th message (from 1) of an mbox file.
    pub source: String,
    /// The folder path relative to the source root, one name per level (empty for the root).
    pub folder: Vec<String>,
    /// The exact message bytes.
    pub raw: Vec<u8>,
}

/// One message found by a reader: read, or refused without being read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceItem {
    Message(SourceMessage),
    /// A message over the size limit; its bytes were not kept (`size` may be a lower bound).
    Refused {
        source: String,
        folder: Vec<String>,
        size: u64,
        refused: Refused,
    },
}

impl SourceItem {
    /// The message's origin, as in [`SourceMessage::source`].
    pub fn source(&self) -> &str {
        match self {
            SourceItem::Message(m) => &m.source,
            SourceItem::Refused { source, .. } => source,
        }
    }
}

/// A source that cannot be read; names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// An MBOX file whose first line (after blank lines) is not a `From ` separator.
    #[error(
        "{path}: not an MBOX file: byte {offset} does not start a 'From ' separator line (found {found})"
    )]
    NotMbox { path: PathBuf, offset: u64, found: crate::not_mail::Preview },
}

impl ReadError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ReadError::Io { path: path.to_path_buf(), source }
    }
}

/// Reads one message file, or refuses it by its length (or by reading one byte past the limit, for a
/// file that grows meanwhile) without loading it.
pub(crate) fn read_message_file(
    path: &Path,
    folder: Vec<String>,
    max_bytes: u64,
) -> Result<SourceItem, ReadError> {
    let source = path.display().to_string();
    let file = File::open(path).map_err(|e| ReadError::io(path, e))?;
    let len = file.metadata().map_err(|e| ReadError::io(path, e))?.len();
    if len > max_bytes {
        let refused = Refused::message_bytes(len, false, max_bytes);
        return Ok(SourceItem::Refused { source, folder, size: len, refused });
    }
    let mut raw = Vec::with_capacity(len as usize);
    file.take(max_bytes + 1).read_to_end(&mut raw).map_err(|e| ReadError::io(path, e))?;
    if raw.len() as u64 > max_bytes {
        let size = raw.len() as u64;
        let refused = Refused::message_bytes(size, true, max_bytes);
        return Ok(SourceItem::Refused { source, folder, size, refused });
    }
    Ok(SourceItem::Message(SourceMessage { source, folder, raw }))
}

/// The entries of a directory, sorted by name, as (path, name, is_dir, is_file); symbolic links are
/// followed to files only, never to directories (no loops).
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<(PathBuf, String, bool, bool)>, ReadError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| ReadError::io(dir, e))? {
        let entry = entry.map_err(|e| ReadError::io(dir, e))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| ReadError::io(&path, e))?;
        let (is_dir, is_file) = if file_type.is_symlink() {
            (false, fs::metadata(&path).map(|m| m.is_file()).unwrap_or(false))
        } else {
            (file_type.is_dir(), file_type.is_file())
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((path, name, is_dir, is_file));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// A file or directory with the folder path it belongs to.
pub(crate) type Placed = (PathBuf, Vec<String>);

/// What a reader finds in one directory: its message files and the subdirectories to walk into, both
/// in the order they are read.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub files: Vec<Placed>,
    pub subdirs: Vec<Placed>,
}

/// The depth-first walk of the directory readers (EML, Maildir): message files are read one at a time,
/// in order, and a directory is listed only when the walk reaches it; what a directory holds is the
/// reader's to say.
#[derive(Debug)]
pub(crate) struct TreeWalk {
    /// Directories still to list (a stack: depth first, in name order).
    dirs: Vec<Placed>,
    files: VecDeque<Placed>,
    max_message_bytes: u64,
}

impl TreeWalk {
    /// A walk starting at `root`, read as a directory, or as the one message file when it is a file and
    /// `file_root` is set.
    pub fn new(root: PathBuf, file_root: bool, max_message_bytes: u64) -> Self {
        let mut walk = TreeWalk { dirs: Vec::new(), files: VecDeque::new(), max_message_bytes };
        if file_root && root.is_file() {
            walk.files.push_back((root, Vec::new()));
        } else {
            walk.dirs.push((root, Vec::new()));
        }
        walk
    }

    /// The next message file read, listing the directories the walk reaches with `list`.
    pub fn next(
        &mut self,
        mut list: impl FnMut(&Path, &[String]) -> Result<Listing, ReadError>,
    ) -> Option<Result<SourceItem, ReadError>> {
        loop {
            if let Some((path, folder)) = self.files.pop_front() {
                return Some(read_message_file(&path, folder, self.max_message_bytes));
            }
            let (dir, folder) = self.dirs.pop()?;
            match list(&dir, &folder) {
                Ok(listing) => {
                    self.files.extend(listing.files);
                    self.dirs.extend(listing.subdirs.into_iter().rev());
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
