//! MBOX files: many messages per file, each after a `From ` separator line (ING-12).
//!
//! - Every line that starts with `From ` (at the start of the file or after a line feed) begins a
//!   message; the separator line itself is not part of it. A file whose first line (after blank lines)
//!   is not a separator is not an MBOX: the reader yields one [`ReadError::NotMbox`] naming the byte
//!   offset and stops, so a picture or a text file given as an MBOX archives nothing.
//! - Unquoting, chosen by the caller ([`MboxVariant`], default mboxrd): mboxrd removes one `>` from
//!   every line matching `^>+From `; mboxo removes it only from lines matching `^>From `.
//! - The line break that ends the last line before the next separator (or the end of the file) is the
//!   mbox's own and is removed: one LF, or one CRLF when the message then still ends in CRLF (an mbox
//!   written with CRLF line ends). So a message that ended with a line break comes back byte for byte;
//!   one that had no final line break comes back with one (mbox cannot represent that; the corpus
//!   README lists 80 such messages).
//! - The file is streamed: one message in memory at a time, and never more than the size limit of it.
//!   A message over the limit is read past (counted, not kept) and reported as refused with its size.
//!
//! [`MboxTree`] reads every mbox file below a directory; the relative path of a file without its
//! extension is its folder, and a Thunderbird `X.sbd` directory is the folder `X`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::limits::Refused;
use crate::source::{ReadError, SourceItem, SourceMessage, sorted_entries};

/// Longest piece of a line handled at once; longer lines are passed through in pieces (only a line's
/// first piece is checked for a separator or quoting).
const MAX_LINE_PIECE: usize = 64 * 1024;

/// Which `>From ` quoting the mbox uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MboxVariant {
    /// `^>+From ` lines lose one `>` (reversible quoting).
    #[default]
    Mboxrd,
    /// Only `^>From ` lines lose their `>`.
    Mboxo,
}

/// How an mbox is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MboxOptions {
    pub variant: MboxVariant,
    /// Larger messages are refused without being kept. Default 50 MiB, as
    /// [`crate::Limits::max_message_bytes`].
    pub max_message_bytes: u64,
    /// File extensions [`MboxTree`] reads, without the dot; `""` means files without extension
    /// (Thunderbird), except `.msf` index files. Default `["mbox", "mbx"]`.
    pub extensions: Vec<String>,
}

impl Default for MboxOptions {
    fn default() -> Self {
        MboxOptions {
            variant: MboxVariant::Mboxrd,
            max_message_bytes: crate::Limits::default().max_message_bytes,
            extensions: vec!["mbox".to_string(), "mbx".to_string()],
        }
    }
}

/// Streams the messages of one mbox (see the module docs).
#[derive(Debug)]
pub struct MboxReader<R> {
    input: R,
    label: String,
    path: PathBuf,
    folder: Vec<String>,
    options: MboxOptions,
    /// Number of the message being read (from 1).
    number: usize,
    /// The bytes kept of the current message; emptied once it is over the limit.
    current: Vec<u8>,
    /// The message's size so far, kept bytes or not.
    size: u64,
    over: bool,
    /// True while the current message holds anything (a separator was seen, or leading bytes).
    open: bool,
    /// True when the next byte read starts a line.
    at_line_start: bool,
    /// Bytes of blank lines read before the first separator (the offset a refusal names).
    offset: u64,
    done: bool,
}

impl MboxReader<BufReader<File>> {
    /// Opens the mbox at `path`; its messages get `folder`.
    pub fn open(path: &Path, folder: Vec<String>, options: MboxOptions) -> Result<Self, ReadError> {
        let file = File::open(path).map_err(|e| ReadError::io(path, e))?;
        Ok(MboxReader::new(BufReader::with_capacity(256 * 1024, file), path, folder, options))
    }
}

impl<R: BufRead> MboxReader<R> {
    /// A reader over `input`; `path` names it in sources (`path#n`) and errors.
    pub fn new(input: R, path: &Path, folder: Vec<String>, options: MboxOptions) -> Self {
        MboxReader {
            input,
            label: path.display().to_string(),
            path: path.to_path_buf(),
            folder,
            options,
            number: 0,
            current: Vec::new(),
            size: 0,
            over: false,
            open: false,
            at_line_start: true,
            offset: 0,
            done: false,
        }
    }

    /// Reads the next piece of a line: up to and including its LF, or at most [`MAX_LINE_PIECE`]
    /// bytes. Returns whether the piece starts a line; `None` at the end of the input.
    fn next_piece(&mut self, piece: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
        piece.clear();
        let starts_line = self.at_line_start;
        loop {
            let buf = match self.input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(if piece.is_empty() { None } else { Some(starts_line) });
            }
            let room = MAX_LINE_PIECE - piece.len();
            let take = &buf[..buf.len().min(room)];
            let (used, line_end) = match memchr::memchr(b'\n', take) {
                Some(i) => (i + 1, true),
                None => (take.len(), false),
            };
            piece.extend_from_slice(&take[..used]);
            self.input.consume(used);
            if line_end || piece.len() >= MAX_LINE_PIECE {
                self.at_line_start = line_end;
                return Ok(Some(starts_line));
            }
        }
    }

    /// Adds message bytes, keeping them only while the message is within the limit (plus the two
    /// bytes of the mbox's own line break).
    fn keep(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if self.over {
            return;
        }
        if self.size > self.options.max_message_bytes.saturating_add(2) {
            self.over = true;
            self.current = Vec::new();
        } else {
            self.current.extend_from_slice(bytes);
        }
    }

    /// Ends the current message and returns it (or its refusal); `None` for leading whitespace only.
    fn finish(&mut self) -> Option<SourceItem> {
        if !self.open {
            return None;
        }
        self.open = false;
        let source = format!("{}#{}", self.label, self.number);
        let folder = self.folder.clone();
        let max = self.options.max_message_bytes;
        if self.over {
            let size = self.size.saturating_sub(2);
            let refused = Refused::message_bytes(size, true, max);
            return Some(SourceItem::Refused { source, folder, size, refused });
        }
        let mut raw = std::mem::take(&mut self.current);
        if raw.last() == Some(&b'\n') {
            raw.pop();
            if raw.ends_with(b"\r\n\r") {
                raw.pop();
            }
        }
        if raw.len() as u64 > max {
            let size = raw.len() as u64;
            return Some(SourceItem::Refused {
                source,
                folder,
                size,
                refused: Refused::message_bytes(size, false, max),
            });
        }
        Some(SourceItem::Message(SourceMessage { source, folder, raw }))
    }

    /// Starts a message; the previous one, if any, is returned.
    fn start(&mut self) -> Option<SourceItem> {
        let previous = self.finish();
        self.number += 1;
        self.open = true;
        self.current.clear();
        self.size = 0;
        self.over = false;
        previous
    }
}

impl<R: BufRead> Iterator for MboxReader<R> {
    type Item = Result<SourceItem, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut piece = Vec::new();
        loop {
            let starts_line = match self.next_piece(&mut piece) {
                Ok(Some(s)) => s,
                Ok(None) => {
                    self.done = true;
                    return self.finish().map(Ok);
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(ReadError::io(&self.path, e)));
                }
            };
            if starts_line && piece.starts_with(b"From ") {
                if let Some(item) = self.start() {
                    return Some(Ok(item));
                }
                continue;
            }
            if !self.open {
                if piece.iter().all(u8::is_ascii_whitespace) {
                    self.offset += piece.len() as u64;
                    continue;
                }
                // Text before the first separator: this is not an MBOX.
                self.done = true;
                let found = crate::not_mail::Preview::of(&piece);
                return Some(Err(ReadError::NotMbox { path: self.path.clone(), offset: self.offset, found }));
            }
            let quoted = starts_line
                && match self.options.variant {
                    MboxVariant::Mboxrd => {
                        let gts = piece.iter().take_while(|&&c| c == b'>').count();
                        gts > 0 && piece[gts..].starts_with(b"From ")
                    }
                    MboxVariant::Mboxo => piece.starts_with(b">From "),
                };
            self.keep(&piece[usize::from(quoted)..]);
        }
    }
}

/// Streams the messages of every mbox file below a directory (or of one file), in path order.
#[derive(Debug)]
pub struct MboxTree {
    options: MboxOptions,
    dirs: Vec<(PathBuf, Vec<String>)>,
    files: VecDeque<(PathBuf, Vec<String>)>,
    current: Option<MboxReader<BufReader<File>>>,
}

impl MboxTree {
    /// A reader over `root`, a directory tree or a single mbox file (folder `[]`).
    pub fn new(root: impl Into<PathBuf>, options: MboxOptions) -> Self {
        let root = root.into();
        let mut tree = MboxTree { options, dirs: Vec::new(), files: VecDeque::new(), current: None };
        if root.is_file() {
            tree.files.push_back((root, Vec::new()));
        } else {
            tree.dirs.push((root, Vec::new()));
        }
        tree
    }

    /// The folder name of an mbox file, or `None` when it is not one.
    fn mbox_name(&self, name: &str) -> Option<String> {
        let (stem, ext) = match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => (stem, ext),
            _ => (name, ""),
        };
        if ext.eq_ignore_ascii_case("msf") || name.starts_with('.') {
            return None;
        }
        self.options.extensions.iter().any(|x| x.eq_ignore_ascii_case(ext)).then(|| stem.to_string())
    }

    fn list(&mut self, dir: &Path, folder: &[String]) -> Result<(), ReadError> {
        let mut subdirs = Vec::new();
        for (path, name, is_dir, is_file) in sorted_entries(dir)? {
            let mut sub = folder.to_vec();
            if is_file {
                if let Some(stem) = self.mbox_name(&name) {
                    sub.push(stem);
                    self.files.push_back((path, sub));
                }
            } else if is_dir {
                sub.push(name.strip_suffix(".sbd").unwrap_or(&name).to_string());
                subdirs.push((path, sub));
            }
        }
        self.dirs.extend(subdirs.into_iter().rev());
        Ok(())
    }
}

impl Iterator for MboxTree {
    type Item = Result<SourceItem, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(reader) = self.current.as_mut() {
                match reader.next() {
                    Some(item) => return Some(item),
                    None => self.current = None,
                }
            }
            if let Some((path, folder)) = self.files.pop_front() {
                match MboxReader::open(&path, folder, self.options.clone()) {
                    Ok(reader) => self.current = Some(reader),
                    Err(e) => return Some(Err(e)),
                }
                continue;
            }
            let (dir, folder) = self.dirs.pop()?;
            if let Err(e) = self.list(&dir, &folder) {
                return Some(Err(e));
            }
        }
    }
}

/// Writes one message to an mboxrd file (EXP-02): a `From ` separator line for `unix_seconds`, the
/// message with every line matching `^>*From ` quoted by one more `>`, and the mbox's own line end.
/// [`MboxReader`] (mboxrd) gives back exactly `message`, whatever its line ends, including a message
/// without a final line break; the one exception is a message ending in CR LF CR, which the reader
/// cannot tell from a CRLF mbox and returns without its last CR (a re-import's hash check names it).
pub fn write_mboxrd(out: &mut impl std::io::Write, unix_seconds: i64, message: &[u8]) -> std::io::Result<()> {
    out.write_all(format!("From arca-export {}\n", asctime(unix_seconds)).as_bytes())?;
    for line in message.split_inclusive(|&b| b == b'\n') {
        let gts = line.iter().take_while(|&&c| c == b'>').count();
        if line[gts..].starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
    }
    // The reader drops this LF again.
    out.write_all(b"\n")
}

/// `Thu Jan  1 00:00:00 1970` (UTC), as the `From ` line of an mbox carries it.
fn asctime(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1).clamp(0, 11) as usize],
        day,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        year
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_mboxrd_reads_back_byte_for_byte() {
        let messages: Vec<&[u8]> = vec![
            b"Subject: a\n\nFrom here\n>From there\n>>From far\n",
            b"Subject: no final line break",
            b"Subject: crlf\r\n\r\nFrom x\r\n",
            b"Subject: mac\rFrom y\r",
            b"",
            b"\n\n",
            b"From the very start\n",
        ];
        let mut file = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            write_mboxrd(&mut file, i as i64 * 1_000_000_000, m).expect("write");
        }
        let read: Vec<Vec<u8>> =
            MboxReader::new(&file[..], Path::new("x.mbox"), Vec::new(), MboxOptions::default())
                .map(|i| match i.expect("readable") {
                    SourceItem::Message(m) => m.raw,
                    other => panic!("unexpected {other:?}"),
                })
                .collect();
        assert_eq!(read, messages.iter().map(|m| m.to_vec()).collect::<Vec<_>>());
    }

    #[test]
    fn separator_dates_are_asctime() {
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_709_294_400), "Fri Mar  1 12:00:00 2024");
        assert_eq!(asctime(-86_400), "Wed Dec 31 00:00:00 1969");
    }

    fn read(bytes: &[u8], options: MboxOptions) -> Vec<SourceItem> {
        MboxReader::new(bytes, Path::new("test.mbox"), vec!["F".into()], options)
            .map(|i| i.expect("in-memory reads do not fail"))
            .collect()
    }

    fn raws(items: &[SourceItem]) -> Vec<Vec<u8>> {
        items
            .iter()
            .map(|i| match i {
                SourceItem::Message(m) => m.raw.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    const MBOX: &[u8] = b"From a@example.com Mon Jan  6 10:00:00 2025\nSubject: one\n\n>From here\n>>From there\n\n\
        From someone who forgot to quote\nx\n\nFrom b Mon Jan  6 10:00:00 2025\nSubject: two\n\nno final newline\n\n";

    #[test]
    fn mboxrd_unquotes_every_level_and_drops_the_separator_newline() {
        let items = read(MBOX, MboxOptions::default());
        assert_eq!(items.len(), 3, "every line starting with 'From ' separates");
        assert_eq!(raws(&items)[0], b"Subject: one\n\nFrom here\n>From there\n");
        assert_eq!(items[2].source(), "test.mbox#3");
        assert_eq!(raws(&items)[2], b"Subject: two\n\nno final newline\n");
    }

    #[test]
    fn mboxo_unquotes_only_one_level() {
        let items = read(MBOX, MboxOptions { variant: MboxVariant::Mboxo, ..MboxOptions::default() });
        assert_eq!(raws(&items)[0], b"Subject: one\n\nFrom here\n>>From there\n");
    }

    #[test]
    fn crlf_mbox_loses_its_own_crlf_only() {
        let mbox = b"From x\r\nSubject: a\r\n\r\nbody\r\n\r\nFrom y\r\nSubject: b\r\n\r\nbody\r\n\r\n";
        assert_eq!(
            raws(&read(mbox, MboxOptions::default())),
            vec![b"Subject: a\r\n\r\nbody\r\n".to_vec(), b"Subject: b\r\n\r\nbody\r\n".to_vec()]
        );
    }

    #[test]
    fn a_file_that_does_not_start_with_a_from_line_is_not_an_mbox() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\nFrom x\nSubject: a\n\n";
        let items: Vec<_> =
            MboxReader::new(&png[..], Path::new("picture.png"), Vec::new(), MboxOptions::default()).collect();
        match &items[..] {
            [Err(e @ ReadError::NotMbox { offset: 0, .. })] => {
                assert!(e.to_string().starts_with("picture.png: not an MBOX file: byte 0"), "{e}")
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = b"\n\nstray text\n\nFrom x\nSubject: a\n\n";
        let items: Vec<_> =
            MboxReader::new(&text[..], Path::new("t.mbox"), Vec::new(), MboxOptions::default()).collect();
        assert!(matches!(&items[..], [Err(ReadError::NotMbox { offset: 2, .. })]), "{items:?}");
        // Blank lines before the first separator are allowed; blank lines alone hold no message.
        assert_eq!(
            raws(&read(b"\n\nFrom x\nSubject: a\n\n", MboxOptions::default())),
            vec![b"Subject: a\n".to_vec()]
        );
        assert!(read(b"\n \n", MboxOptions::default()).is_empty());
    }

    #[test]
    fn an_oversized_message_is_refused_and_the_next_one_still_read() {
        let mut mbox = b"From x\n".to_vec();
        mbox.extend(std::iter::repeat_n(b'a', 300_000));
        mbox.extend_from_slice(b"\n\nFrom y\nSubject: small\n\n");
        let options = MboxOptions { max_message_bytes: 1000, ..MboxOptions::default() };
        let items = read(&mbox, options);
        match &items[0] {
            SourceItem::Refused { size, source, .. } => {
                assert!(*size >= 300_000);
                assert_eq!(source, "test.mbox#1");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(raws(&items[1..]), vec![b"Subject: small\n".to_vec()]);
    }

    #[test]
    fn message_exactly_at_the_limit_is_kept() {
        let body = vec![b'x'; 99];
        let mut mbox = b"From x\n".to_vec();
        mbox.extend_from_slice(&body);
        mbox.extend_from_slice(b"\n\n");
        let mut expected = body.clone();
        expected.push(b'\n');
        let options = MboxOptions { max_message_bytes: 100, ..MboxOptions::default() };
        assert_eq!(raws(&read(&mbox, options)), vec![expected]);
    }

    #[test]
    fn tree_folders_come_from_paths_and_sbd_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("Lists.sbd")).expect("mkdir");
        std::fs::write(root.join("Inbox.mbox"), b"From x\nSubject: a\n\n").expect("write");
        std::fs::write(root.join("Lists.sbd/rust.mbox"), b"From x\nSubject: b\n\n").expect("write");
        std::fs::write(root.join("Lists.sbd/rust.msf"), b"index").expect("write");
        let folders: Vec<_> = MboxTree::new(root, MboxOptions::default())
            .map(|i| match i.expect("readable") {
                SourceItem::Message(m) => m.folder.join("/"),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(folders, ["Inbox", "Lists/rust"]);
    }
}
