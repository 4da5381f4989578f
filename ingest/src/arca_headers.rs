//! The `X-Arca-*` header lines that an Arca export puts before each message, and their removal on
//! re-import (EXP-02, ING-12).
//!
//! An exported message is exactly three lines followed by the original message, byte for byte:
//!
//! ```text
//! X-Arca-Archive: <archive name>
//! X-Arca-Folder: <folder path below the archive, '/'-separated; empty for the top level>
//! X-Arca-SHA256: <64 lower-case hex digits: SHA-256 of the original bytes>
//! ```
//!
//! - Values are percent-encoded UTF-8: every byte outside printable ASCII (`!` to `~`) and `%` itself is
//!   written as `%XX`, so a folder named `Entwürfe 2024` is `Entw%C3%BCrfe%202024`. Header lines stay
//!   7-bit and a value never carries a line break, a leading or a trailing blank.
//! - Each line ends with CRLF when the original's first line does, else with LF.
//! - [`strip`] accepts LF or CRLF per line and the header names in any case, but only in this order and
//!   at the very start; each line is at most [`MAX_LINE`] bytes. It removes exactly those three lines.

use sha2::{Digest, Sha256};

/// Longest header line [`strip`] reads (name, value and line end).
pub const MAX_LINE: usize = 4096;

const NAMES: [&str; 3] = ["X-Arca-Archive", "X-Arca-Folder", "X-Arca-SHA256"];

/// Where an exported message came from, and the hash of its original bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcaOrigin {
    /// The archive (its top-level folder name).
    pub archive: String,
    /// The folder path below the archive's top-level folder (empty = top level).
    pub folder: String,
    /// SHA-256 of the original message bytes.
    pub sha256: [u8; 32],
}

/// Why the `X-Arca-*` lines of a message cannot be used; names the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArcaHeaderError {
    #[error("X-Arca header line {line} is cut short (no line end)")]
    Truncated { line: usize },
    #[error("X-Arca header line {line} is longer than {MAX_LINE} bytes")]
    LineTooLong { line: usize },
    #[error("X-Arca header line {line} should be '{expected}:'")]
    Missing { line: usize, expected: &'static str },
    #[error("{name}: {reason}")]
    BadValue { name: &'static str, reason: String },
    #[error(
        "X-Arca-SHA256 is {claimed} but the message after the X-Arca lines has SHA-256 {actual}: it was altered"
    )]
    Mismatch { claimed: String, actual: String },
}

/// Percent-encodes a header value (see the module docs).
pub fn encode_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded header value; the result must be UTF-8.
pub fn decode_value(name: &'static str, text: &[u8]) -> Result<String, ArcaHeaderError> {
    let bad = |reason: String| ArcaHeaderError::BadValue { name, reason };
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'%' => {
                let hex =
                    text.get(i + 1..i + 3).ok_or_else(|| bad(format!("'%' at byte {i} is cut short")))?;
                let digits = std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(
                    digits
                        .ok_or_else(|| bad(format!("'%' at byte {i} is not followed by two hex digits")))?,
                );
                i += 3;
            }
            b if (0x21..=0x7e).contains(&b) => {
                out.push(b);
                i += 1;
            }
            b => return Err(bad(format!("byte 0x{b:02X} at {i} must be percent-encoded"))),
        }
    }
    String::from_utf8(out).map_err(|_| bad("is not UTF-8 once decoded".into()))
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The three header lines for `original` (see the module docs).
pub fn header_lines(archive: &str, folder: &str, original: &[u8]) -> Vec<u8> {
    let first_line_end = original.iter().position(|&b| b == b'\n');
    let crlf = first_line_end.is_some_and(|i| i > 0 && original[i - 1] == b'\r');
    let eol = if crlf { "\r\n" } else { "\n" };
    let hash = hex(&sha256(original));
    let values = [encode_value(archive), encode_value(folder), hash];
    let mut out = Vec::new();
    for (name, value) in NAMES.iter().zip(values) {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b":");
        if !value.is_empty() {
            out.push(b' ');
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(eol.as_bytes());
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `raw` starts with an `X-Arca-Archive:` line (any case), i.e. claims to be an export.
pub fn is_tagged(raw: &[u8]) -> bool {
    let name = NAMES[0].as_bytes();
    raw.len() > name.len() && raw[..name.len()].eq_ignore_ascii_case(name) && raw[name.len()] == b':'
}

/// Splits an exported message into its origin and the original bytes (not yet checked against the
/// hash: see [`verify`]). `Ok(None)` when the message carries no `X-Arca-*` lines at all.
pub fn strip(raw: &[u8]) -> Result<Option<(ArcaOrigin, &[u8])>, ArcaHeaderError> {
    if !is_tagged(raw) {
        return Ok(None);
    }
    let mut pos = 0;
    let mut values: Vec<&[u8]> = Vec::with_capacity(3);
    for (n, name) in NAMES.iter().enumerate() {
        let line = n + 1;
        let rest = &raw[pos..];
        let window = &rest[..rest.len().min(MAX_LINE)];
        let Some(end) = window.iter().position(|&b| b == b'\n') else {
            return Err(if rest.len() >= MAX_LINE {
                ArcaHeaderError::LineTooLong { line }
            } else {
                ArcaHeaderError::Truncated { line }
            });
        };
        let text = &rest[..end];
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let prefix = name.len() + 1;
        if text.len() < prefix
            || !text[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            || text[name.len()] != b':'
        {
            return Err(ArcaHeaderError::Missing { line, expected: name });
        }
        values.push(text[prefix..].trim_ascii());
        pos += end + 1;
    }
    let archive = decode_value(NAMES[0], values[0])?;
    if archive.is_empty() {
        return Err(ArcaHeaderError::BadValue { name: NAMES[0], reason: "is empty".into() });
    }
    let folder = decode_value(NAMES[1], values[1])?;
    let sha256 = parse_sha256(values[2])?;
    Ok(Some((ArcaOrigin { archive, folder, sha256 }, &raw[pos..])))
}

fn parse_sha256(text: &[u8]) -> Result<[u8; 32], ArcaHeaderError> {
    let bad = |reason: &str| ArcaHeaderError::BadValue { name: NAMES[2], reason: reason.into() };
    if text.len() != 64 {
        return Err(bad("must be 64 hex digits"));
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok());
        out[i] = digits.ok_or_else(|| bad("must be 64 hex digits"))?;
    }
    Ok(out)
}

/// Checks that `original` is what the header's hash names.
pub fn verify(origin: &ArcaOrigin, original: &[u8]) -> Result<(), ArcaHeaderError> {
    let actual = sha256(original);
    if actual != origin.sha256 {
        return Err(ArcaHeaderError::Mismatch { claimed: hex(&origin.sha256), actual: hex(&actual) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(archive: &str, folder: &str, original: &[u8]) -> Vec<u8> {
        let mut out = header_lines(archive, folder, original);
        out.extend_from_slice(original);
        out
    }

    #[test]
    fn lines_round_trip_and_leave_the_original_byte_for_byte() {
        for original in [
            &b"Subject: a\r\n\r\nbody\r\n"[..],
            b"Subject: b\n\nbody",
            b"Subject: c\rold mac\r",
            b"",
            b"X-Arca-Archive: inside the original\n\n",
        ] {
            let raw = tagged("alice", "Inbox/Entwürfe 2024/100%", original);
            let (origin, rest) = strip(&raw).expect("valid").expect("tagged");
            assert_eq!(rest, original);
            assert_eq!(origin.archive, "alice");
            assert_eq!(origin.folder, "Inbox/Entwürfe 2024/100%");
            verify(&origin, rest).expect("hash matches");
        }
    }

    #[test]
    fn values_are_seven_bit_and_line_ends_follow_the_original() {
        let lines = header_lines("bob", "Entwürfe/a b", b"Subject: x\r\n\r\n");
        let text = String::from_utf8(lines).expect("ascii");
        assert!(text.is_ascii());
        assert!(text.starts_with("X-Arca-Archive: bob\r\nX-Arca-Folder: Entw%C3%BCrfe/a%20b\r\n"), "{text}");
        let lf = header_lines("bob", "", b"Subject: x\n\n");
        assert!(String::from_utf8(lf).expect("ascii").starts_with("X-Arca-Archive: bob\nX-Arca-Folder:\n"));
    }

    #[test]
    fn mixed_line_ends_and_case_are_accepted() {
        let original = b"Subject: x\n\nbody\n";
        let hash = hex(&sha256(original));
        let mut raw =
            format!("x-arca-archive: a\r\nX-ARCA-FOLDER:  f  \nx-arca-sha256: {}\r\n", hash.to_uppercase())
                .into_bytes();
        raw.extend_from_slice(original);
        let (origin, rest) = strip(&raw).expect("valid").expect("tagged");
        assert_eq!((origin.archive.as_str(), origin.folder.as_str(), rest), ("a", "f", &original[..]));
    }

    #[test]
    fn messages_without_the_lines_are_not_tagged() {
        assert_eq!(strip(b"Subject: x\n\n").expect("fine"), None);
        assert_eq!(strip(b"X-Arca-Archivex: a\n").expect("fine"), None);
        assert_eq!(strip(b"").expect("fine"), None);
    }

    #[test]
    fn hostile_headers_are_refused_with_a_reason() {
        let good = tagged("a", "f", b"Subject: x\n\n");
        // Truncated: cut inside each of the three lines.
        for cut in [16, 18, 25, 40, 114] {
            let err = strip(&good[..cut]).expect_err("cut short");
            assert!(
                matches!(err, ArcaHeaderError::Truncated { .. } | ArcaHeaderError::Missing { .. }),
                "{err}"
            );
        }
        // Bad hex, wrong length, non-hex.
        for sha in ["zz".repeat(32), "ab".repeat(31), format!("{}g", "a".repeat(63))] {
            let raw = format!("X-Arca-Archive: a\nX-Arca-Folder: f\nX-Arca-SHA256: {sha}\n\n");
            let err = strip(raw.as_bytes()).expect_err("bad hash");
            assert!(err.to_string().contains("X-Arca-SHA256"), "{err}");
        }
        // Huge line: refused without scanning past the limit.
        let mut huge = b"X-Arca-Archive: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 10 * MAX_LINE));
        huge.extend_from_slice(b"\n");
        assert_eq!(strip(&huge).expect_err("huge"), ArcaHeaderError::LineTooLong { line: 1 });
        // Lines out of order or missing.
        let swapped = format!("X-Arca-Archive: a\nX-Arca-SHA256: {}\nX-Arca-Folder: f\n", "a".repeat(64));
        assert!(matches!(strip(swapped.as_bytes()), Err(ArcaHeaderError::Missing { line: 2, .. })));
        // Bad percent-encoding, raw non-ASCII, invalid UTF-8, empty archive.
        for (archive, needle) in [
            ("a%2", "cut short"),
            ("a%zz", "hex"),
            ("a\u{e4}", "percent-encoded"),
            ("%FF", "UTF-8"),
            ("", "empty"),
        ] {
            let raw =
                format!("X-Arca-Archive: {archive}\nX-Arca-Folder:\nX-Arca-SHA256: {}\n", "a".repeat(64));
            let err = strip(raw.as_bytes()).expect_err("bad value");
            assert!(err.to_string().contains(needle), "{archive}: {err}");
        }
    }

    #[test]
    fn an_altered_message_fails_verification_naming_both_hashes() {
        let mut raw = tagged("a", "f", b"Subject: x\n\nbody\n");
        let last = raw.len() - 2;
        raw[last] ^= 1;
        let (origin, rest) = strip(&raw).expect("valid").expect("tagged");
        let err = verify(&origin, rest).expect_err("altered");
        assert!(err.to_string().contains("altered"), "{err}");
    }
}
