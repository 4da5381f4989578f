//! Telling input that is not mail at all from a message that merely cannot be parsed (ING-12, ING-17).
//!
//! Input is mail when, after an optional UTF-8 byte order mark and an optional mbox `From ` line, it
//! starts with an RFC 5322 header field: a name of printable ASCII other than `:`, optional blanks, and
//! a colon. A picture, a README or random bytes fail this at their first byte; they are refused with
//! the byte offset where the header field was expected.
//!
//! The check reads at most the first line, so it costs nothing next to parsing. Where the input comes
//! from a file its source names as a message (a `.eml` file in a directory, a Maildir file, a message of
//! an MBOX file), it is archived even when it fails the check, as raw bytes (DESIGN invariant 7: the
//! hostile corpus' `archive-raw` cases); the upload routes apply it unless the caller says so
//! (`notMail=archive`).

use std::fmt;

/// Why input is not mail; the reason names the byte offset and shows the bytes found there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotMail {
    /// Nothing but blanks and line breaks (or nothing at all).
    #[error("not mail: {bytes} bytes without any header field (empty input)")]
    Empty { bytes: usize },
    /// The bytes at `offset` do not start a header field.
    #[error("not mail: no RFC 5322 header field at byte {offset} (found {found})")]
    NoHeaderField { offset: usize, found: Preview },
}

/// The first bytes at a position, escaped so that a reason never carries control bytes into a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview(String);

/// Bytes shown in a [`Preview`].
const PREVIEW_BYTES: usize = 16;

impl Preview {
    /// The first bytes of `bytes`, escaped.
    pub(crate) fn of(bytes: &[u8]) -> Preview {
        let shown = &bytes[..bytes.len().min(PREVIEW_BYTES)];
        let mut text = format!("\"{}\"", shown.escape_ascii());
        if bytes.len() > shown.len() {
            text.push('…');
        }
        Preview(text)
    }
}

impl fmt::Display for Preview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `Ok` when `raw` starts like a message (see the module docs), else why not.
pub fn check_mail(raw: &[u8]) -> Result<(), NotMail> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(NotMail::Empty { bytes: raw.len() });
    }
    let mut pos = if raw.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    if raw[pos..].starts_with(b"From ") {
        pos = match memchr::memchr(b'\n', &raw[pos..]) {
            Some(i) => pos + i + 1,
            None => raw.len(),
        };
    }
    let rest = &raw[pos..];
    let name = rest.iter().take_while(|&&c| (33..=126).contains(&c) && c != b':').count();
    let blanks = rest[name..].iter().take_while(|&&c| c == b' ' || c == b'\t').count();
    if name > 0 && rest.get(name + blanks) == Some(&b':') {
        Ok(())
    } else {
        Err(NotMail::NoHeaderField { offset: pos, found: Preview::of(rest) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_mail_are_refused_naming_the_offset() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
        let err = check_mail(png).expect_err("a PNG is not mail");
        assert_eq!(
            err.to_string(),
            "not mail: no RFC 5322 header field at byte 0 (found \"\\x89PNG\\r\\n\\x1a\\n\\x00\\x00\\x00\\rIHDR\"…)"
        );
        let readme = b"# Arca\n\nA distributed e-mail archive: Raft, shards, search.\n";
        assert!(matches!(check_mail(readme), Err(NotMail::NoHeaderField { offset: 0, .. })));
        let random: Vec<u8> = (0u32..512).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        assert!(check_mail(&random).is_err(), "random bytes");
        assert_eq!(check_mail(b""), Err(NotMail::Empty { bytes: 0 }));
        assert_eq!(check_mail(b"\r\n\r\n"), Err(NotMail::Empty { bytes: 4 }));
        // After an mbox separator line, the offset is where the header field was expected.
        let err = check_mail(b"From x Mon Jan  6 10:00:00 2025\nhello there\n").expect_err("no field");
        assert!(matches!(err, NotMail::NoHeaderField { offset: 32, .. }), "{err}");
        assert!(check_mail(b"Hello, this has no header at all.\r\n").is_err());
        assert!(check_mail(b": no name\r\n").is_err());
    }

    #[test]
    fn messages_that_start_with_a_header_field_are_mail() {
        for ok in [
            &b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n"[..],
            b"Subject: only a header",
            b"\xEF\xBB\xBFFrom: after a byte order mark\r\n\r\n",
            b"From sender@example.com Mon Jan  6 10:00:00 2025\r\nFrom: x\r\n\r\n",
            b"From: cr only\rTo: y\r\r body",
            b"Subject : blank before the colon\n\n",
            b"X-Odd: \xFF an odd value is still a field\n\n",
        ] {
            assert_eq!(check_mail(ok), Ok(()), "{}", ok.escape_ascii());
        }
    }
}
