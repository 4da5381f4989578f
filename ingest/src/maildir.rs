//! Maildir trees: one message per file in `new/` and `cur/` of each maildir (ING-12, Arca's addition).
//!
//! Any directory with a `cur/` or `new/` subdirectory is a maildir; its messages are read from `new/`,
//! then `cur/`, in file-name order (`tmp/`, files whose name starts with `.`, and files beside the
//! subdirectories, such as `dovecot-uidlist`, are skipped; flags in file names are not used). Folders:
//! - Maildir++ (Courier, Dovecot's default): a subdirectory `.A.B` of a maildir is the folder `A/B`
//!   below that maildir's folder; its names are decoded from IMAP modified UTF-7 (`&APw-` = `ü`) when
//!   they are valid modified UTF-7, else kept as they are;
//! - nested directories (Dovecot `LAYOUT=fs`, or one maildir per folder as the corpus unpacker writes
//!   them): the relative directory path is the folder.
//!
//! The root maildir itself is the folder `[]` (the mailbox's INBOX).

use std::path::{Path, PathBuf};

use crate::source::{Listing, ReadError, SourceItem, TreeWalk, sorted_entries};

/// How a Maildir tree is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildirOptions {
    /// Larger files are refused unread. Default 50 MiB, as [`crate::Limits::max_message_bytes`].
    pub max_message_bytes: u64,
}

impl Default for MaildirOptions {
    fn default() -> Self {
        MaildirOptions { max_message_bytes: crate::Limits::default().max_message_bytes }
    }
}

/// Streams the messages of a Maildir tree (see the module docs); one file in memory at a time.
#[derive(Debug)]
pub struct MaildirReader {
    walk: TreeWalk,
}

impl MaildirReader {
    /// A reader over the tree below `root`.
    pub fn new(root: impl Into<PathBuf>, options: MaildirOptions) -> Self {
        MaildirReader { walk: TreeWalk::new(root.into(), false, options.max_message_bytes) }
    }
}

/// Lists one directory: the messages of `new/` and `cur/` when it is a maildir, and the subdirectories
/// that are folders.
fn list(dir: &Path, folder: &[String]) -> Result<Listing, ReadError> {
    let entries = sorted_entries(dir)?;
    let is_maildir = entries.iter().any(|(_, name, is_dir, _)| *is_dir && (name == "cur" || name == "new"));
    let mut listing = Listing::default();
    for (path, name, is_dir, _) in entries {
        if !is_dir || (is_maildir && matches!(name.as_str(), "cur" | "new" | "tmp")) {
            continue;
        }
        let mut sub = folder.to_vec();
        match name.strip_prefix('.') {
            // Maildir++: `.A.B` below a maildir is the folder A/B.
            Some(dotted) if is_maildir => {
                sub.extend(dotted.split('.').filter(|s| !s.is_empty()).map(decode_modified_utf7))
            }
            _ => sub.push(name),
        }
        listing.subdirs.push((path, sub));
    }
    if is_maildir {
        for sub in ["new", "cur"] {
            let path = dir.join(sub);
            if !path.is_dir() {
                continue;
            }
            for (file, name, _, is_file) in sorted_entries(&path)? {
                if is_file && !name.starts_with('.') {
                    listing.files.push((file, folder.to_vec()));
                }
            }
        }
    }
    Ok(listing)
}

impl Iterator for MaildirReader {
    type Item = Result<SourceItem, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.walk.next(list)
    }
}

/// Decodes an IMAP modified UTF-7 name (RFC 3501 5.1.3); returns it unchanged when it is not valid.
pub fn decode_modified_utf7(name: &str) -> String {
    fn decode(name: &str) -> Option<String> {
        let mut out = String::new();
        let mut rest = name;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let after = &rest[amp + 1..];
            let end = after.find('-')?;
            let encoded = &after[..end];
            if encoded.is_empty() {
                out.push('&');
            } else {
                let mut bits = 0u32;
                let mut nbits = 0;
                let mut units = Vec::new();
                for c in encoded.bytes() {
                    let v = match c {
                        b'A'..=b'Z' => c - b'A',
                        b'a'..=b'z' => c - b'a' + 26,
                        b'0'..=b'9' => c - b'0' + 52,
                        b'+' => 62,
                        b',' => 63,
                        _ => return None,
                    };
                    bits = (bits << 6) | u32::from(v);
                    nbits += 6;
                    if nbits >= 16 {
                        nbits -= 16;
                        units.push((bits >> nbits) as u16);
                        bits &= (1 << nbits) - 1;
                    }
                }
                out.push_str(&String::from_utf16(&units).ok()?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }
    decode(name).unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceMessage;

    fn messages(root: &Path) -> Vec<SourceMessage> {
        MaildirReader::new(root, MaildirOptions::default())
            .map(|i| match i.expect("readable") {
                SourceItem::Message(m) => m,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    fn write(path: &Path, bytes: &[u8]) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }

    #[test]
    fn maildir_plus_plus_folders_are_split_and_decoded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(&root.join("cur/1.host:2,S"), b"inbox cur");
        write(&root.join("new/2.host"), b"inbox new");
        write(&root.join("tmp/3.host"), b"in delivery");
        write(&root.join("dovecot-uidlist"), b"3 V1");
        write(&root.join(".Projekte.M&APw-nchen/cur/4.host:2,"), b"sub");
        std::fs::create_dir_all(root.join(".Projekte.M&APw-nchen/tmp")).expect("mkdir");
        let found = messages(root);
        let got: Vec<_> = found.iter().map(|m| (m.folder.join("/"), m.raw.clone())).collect();
        assert_eq!(
            got,
            vec![
                (String::new(), b"inbox new".to_vec()),
                (String::new(), b"inbox cur".to_vec()),
                ("Projekte/München".to_string(), b"sub".to_vec()),
            ]
        );
    }

    #[test]
    fn nested_maildirs_take_their_relative_path_as_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(&root.join("lists/2024/cur/1.x:2,"), b"one");
        write(&root.join("lists/2025/new/2.x"), b"two");
        let folders: Vec<_> = messages(root).iter().map(|m| m.folder.join("/")).collect();
        assert_eq!(folders, ["lists/2024", "lists/2025"]);
    }

    #[test]
    fn modified_utf7_names_decode_or_stay() {
        assert_eq!(decode_modified_utf7("Entw&APw-rfe"), "Entwürfe");
        assert_eq!(decode_modified_utf7("A&-B"), "A&B");
        assert_eq!(decode_modified_utf7("&ZeVnLIqe-"), "日本語");
        assert_eq!(decode_modified_utf7("broken&abc"), "broken&abc");
    }
}
