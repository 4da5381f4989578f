//! EML directories: one RFC 822 message per file (ING-12).
//!
//! Every file whose extension is one of [`EmlOptions::extensions`] (compared without case; default
//! `eml`) is a message; with [`EmlOptions::recursive`] (default on) subdirectories are read too and the
//! relative directory path becomes the folder. Entries are read in name order, depth first. The root
//! may also be a single file (read whatever its extension). A file over the size limit is refused by
//! its length without being read.

use std::path::{Path, PathBuf};

use crate::source::{Listing, ReadError, SourceItem, TreeWalk, sorted_entries};

/// How an EML directory is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmlOptions {
    /// File extensions of message files, without the dot. Default `["eml"]`.
    pub extensions: Vec<String>,
    /// Read subdirectories (their relative path becomes the folder). Default true.
    pub recursive: bool,
    /// Larger files are refused unread. Default 50 MiB, as [`crate::Limits::max_message_bytes`].
    pub max_message_bytes: u64,
}

impl Default for EmlOptions {
    fn default() -> Self {
        EmlOptions {
            extensions: vec!["eml".to_string()],
            recursive: true,
            max_message_bytes: crate::Limits::default().max_message_bytes,
        }
    }
}

/// Streams the messages of an EML directory tree (see the module docs); one file in memory at a time.
#[derive(Debug)]
pub struct EmlReader {
    options: EmlOptions,
    walk: TreeWalk,
}

impl EmlReader {
    /// A reader over `root`, a directory or a single message file.
    pub fn new(root: impl Into<PathBuf>, options: EmlOptions) -> Self {
        let walk = TreeWalk::new(root.into(), true, options.max_message_bytes);
        EmlReader { options, walk }
    }
}

/// Lists one directory: its message files, and its subdirectories when reading recursively.
fn list(options: &EmlOptions, dir: &Path, folder: &[String]) -> Result<Listing, ReadError> {
    let is_message_file = |name: &str| {
        Path::new(name)
            .extension()
            .map(|e| e.to_string_lossy())
            .is_some_and(|ext| options.extensions.iter().any(|x| x.eq_ignore_ascii_case(&ext)))
    };
    let mut listing = Listing::default();
    for (path, name, is_dir, is_file) in sorted_entries(dir)? {
        if is_file && is_message_file(&name) {
            listing.files.push((path, folder.to_vec()));
        } else if is_dir && options.recursive {
            let mut sub = folder.to_vec();
            sub.push(name);
            listing.subdirs.push((path, sub));
        }
    }
    Ok(listing)
}

impl Iterator for EmlReader {
    type Item = Result<SourceItem, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let options = &self.options;
        self.walk.next(|dir, folder| list(options, dir, folder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceMessage;

    #[test]
    fn files_are_read_in_order_with_their_folders_and_other_extensions_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("Inbox/Projects")).expect("mkdir");
        std::fs::write(root.join("b.eml"), b"Subject: b\n\nb\n").expect("write");
        std::fs::write(root.join("a.EML"), b"Subject: a\n\na\n").expect("write");
        std::fs::write(root.join("notes.txt"), b"not mail").expect("write");
        std::fs::write(root.join("Inbox/Projects/c.eml"), b"Subject: c\n\nc\n").expect("write");
        let items: Vec<SourceMessage> = EmlReader::new(root, EmlOptions::default())
            .map(|i| match i.expect("readable") {
                SourceItem::Message(m) => m,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let folders: Vec<_> = items.iter().map(|m| m.folder.join("/")).collect();
        assert_eq!(folders, ["", "", "Inbox/Projects"]);
        assert_eq!(items[0].raw, b"Subject: a\n\na\n");
        assert!(items[2].source.ends_with("c.eml"));

        let flat = EmlReader::new(root, EmlOptions { recursive: false, ..EmlOptions::default() }).count();
        assert_eq!(flat, 2);
        let custom = EmlOptions { extensions: vec!["txt".into()], ..EmlOptions::default() };
        assert_eq!(EmlReader::new(root, custom).count(), 1);
    }

    #[test]
    fn a_file_over_the_limit_is_refused_unread() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("big.eml"), vec![b'x'; 1000]).expect("write");
        let options = EmlOptions { max_message_bytes: 999, ..EmlOptions::default() };
        let items: Vec<_> = EmlReader::new(dir.path(), options).collect();
        match &items[..] {
            [Ok(SourceItem::Refused { size, refused, .. })] => {
                assert_eq!(*size, 1000);
                assert_eq!(refused.limit, crate::LimitKind::MessageBytes);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let err = EmlReader::new("/nonexistent/arca-eml", EmlOptions::default())
            .next()
            .expect("one item")
            .expect_err("error");
        assert!(err.to_string().contains("/nonexistent/arca-eml"), "{err}");
    }
}
