//! Limits on accepted messages (ING-17) and the refusal that names the limit a message broke.
//!
//! The defaults are those of ING-17 and `corpus/hostile/README.md`; the definitions follow the latter:
//! - message size: bytes of the raw message;
//! - MIME nesting depth: multipart/* and message/* entities on the path from the root to the deepest
//!   entity, the root included; leaves do not count (a plain text message has depth 0);
//! - parts: MIME entities in the whole message, the root, containers and enclosed messages included;
//! - one header field: name, colon, value with its folding and the final line break;
//! - header fields: fields in the whole message, those of every part and enclosed message included.
//!
//! Structure is counted as mail-parser sees it (see `scan.rs`), before mail-parser builds anything.

use std::fmt;

/// Configurable limits; a message over any of them is refused with [`Refused`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest raw message in bytes. Default 50 MiB (52,428,800).
    pub max_message_bytes: u64,
    /// Deepest MIME nesting. Default 64.
    pub max_nesting_depth: usize,
    /// Most MIME entities in one message. Default 10,000.
    pub max_parts: usize,
    /// Largest single header field in bytes. Default 1 MiB (1,048,576).
    pub max_header_bytes: usize,
    /// Most header fields in one message, all parts together. Default 10,000.
    pub max_header_fields: usize,
    /// Not a refusal: boundary searches may read at most this many times the message size (plus
    /// 16 MiB) before the body is given up as too costly to parse; the message is then indexed by its
    /// header fields and raw text, with a warning. Default 16.
    pub parse_work_factor: u64,
    /// Not a refusal: most UTF-8 bytes kept of body text, and separately of attachment text.
    /// Default 1 MiB ([`arca_types::document::MAX_INDEXED_TEXT_BYTES`]).
    pub max_text_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 50 * 1024 * 1024,
            max_nesting_depth: 64,
            max_parts: 10_000,
            max_header_bytes: 1024 * 1024,
            max_header_fields: 10_000,
            parse_work_factor: 16,
            max_text_bytes: arca_types::document::MAX_INDEXED_TEXT_BYTES,
        }
    }
}

/// Which limit a refused message broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    MessageBytes,
    NestingDepth,
    Parts,
    HeaderBytes,
    HeaderFields,
}

impl LimitKind {
    /// The configuration name of the limit, as used in [`Limits`].
    pub fn name(self) -> &'static str {
        match self {
            LimitKind::MessageBytes => "max_message_bytes",
            LimitKind::NestingDepth => "max_nesting_depth",
            LimitKind::Parts => "max_parts",
            LimitKind::HeaderBytes => "max_header_bytes",
            LimitKind::HeaderFields => "max_header_fields",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A message refused because it exceeds a limit; `reason` names the limit and the values, e.g.
/// "MIME nesting depth 65 exceeds the limit of 64 (max_nesting_depth)".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refused {
    pub limit: LimitKind,
    pub reason: String,
}

impl Refused {
    /// Message size over [`Limits::max_message_bytes`]; `size` may be a lower bound ("at least").
    pub fn message_bytes(size: u64, at_least: bool, limit: u64) -> Self {
        let prefix = if at_least { "at least " } else { "" };
        Refused {
            limit: LimitKind::MessageBytes,
            reason: format!(
                "message size {prefix}{size} bytes exceeds the limit of {limit} bytes ({})",
                LimitKind::MessageBytes
            ),
        }
    }

    /// Nesting deeper than [`Limits::max_nesting_depth`]; counting stops at the first level over it,
    /// so `depth` is a lower bound.
    pub fn nesting_depth(depth: usize, limit: usize) -> Self {
        Refused {
            limit: LimitKind::NestingDepth,
            reason: format!(
                "MIME nesting depth {depth} exceeds the limit of {limit} ({})",
                LimitKind::NestingDepth
            ),
        }
    }

    /// More MIME entities than [`Limits::max_parts`] (counting stops at the first one over it).
    pub fn parts(limit: usize) -> Self {
        Refused {
            limit: LimitKind::Parts,
            reason: format!("more than {limit} MIME parts exceed the limit ({})", LimitKind::Parts),
        }
    }

    /// A header field longer than [`Limits::max_header_bytes`] (measured up to the line that crossed it).
    pub fn header_bytes(bytes: usize, limit: usize) -> Self {
        Refused {
            limit: LimitKind::HeaderBytes,
            reason: format!(
                "a header field of at least {bytes} bytes exceeds the limit of {limit} bytes ({})",
                LimitKind::HeaderBytes
            ),
        }
    }

    /// More header fields than [`Limits::max_header_fields`] (counting stops at the first one over).
    pub fn header_fields(limit: usize) -> Self {
        Refused {
            limit: LimitKind::HeaderFields,
            reason: format!("more than {limit} header fields exceed the limit ({})", LimitKind::HeaderFields),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_those_of_ing_17() {
        let l = Limits::default();
        assert_eq!(l.max_message_bytes, 52_428_800);
        assert_eq!(l.max_nesting_depth, 64);
        assert_eq!(l.max_parts, 10_000);
        assert_eq!(l.max_header_bytes, 1_048_576);
        assert_eq!(l.max_header_fields, 10_000);
    }

    #[test]
    fn refusal_names_the_limit_and_the_values() {
        let r = Refused::nesting_depth(65, 64);
        assert_eq!(r.limit, LimitKind::NestingDepth);
        assert_eq!(r.to_string(), "MIME nesting depth 65 exceeds the limit of 64 (max_nesting_depth)");
        assert!(Refused::message_bytes(70, true, 50).to_string().contains("at least 70 bytes"));
    }
}
