//! Getting mail into Arca: parsing a message once into its index document, the limits that refuse a
//! message, and streaming readers for the file formats EML, MBOX and Maildir (ING-12, ING-17).
//!
//! - [`parse_message`] turns raw bytes into an [`arca_types::document::MessageDoc`]; its only error is
//!   a [`Refused`] naming the [`Limits`] entry a message exceeds. A message that cannot be parsed still
//!   yields a document with warnings (DESIGN invariant 7: it is archived as raw bytes).
//! - [`EmlReader`], [`MboxReader`] / [`MboxTree`] and [`MaildirReader`] stream [`SourceItem`]s: the
//!   exact bytes of each message with its source and folder, or a refusal for a message over the size
//!   limit that was not read whole. I/O problems, and a file that is not an MBOX, are [`ReadError`]s
//!   naming the file.
//! - [`check_mail`] tells input that is not mail at all (no header field at the start) from a message
//!   that merely cannot be parsed.
//! - [`render_message`] turns raw bytes into what a reader sees ([`MessageView`]: header fields, text,
//!   sanitised HTML, attachments); [`view::attachment`] gives one attachment's bytes.
//! - [`arca_headers`] writes and strips the `X-Arca-*` lines of an Arca export (re-import, EXP-02);
//!   [`write_mboxrd`] writes the MBOX export format that [`MboxReader`] reads back byte for byte.

pub mod arca_headers;
pub mod charset;
pub mod date;
pub mod eml;
pub mod html;
pub mod limits;
pub mod maildir;
pub mod mbox;
pub mod not_mail;
pub mod parse;
pub mod scan;
pub mod source;
pub mod view;

pub use eml::{EmlOptions, EmlReader};
pub use limits::{LimitKind, Limits, Refused};
pub use maildir::{MaildirOptions, MaildirReader};
pub use mbox::{MboxOptions, MboxReader, MboxTree, MboxVariant, write_mboxrd};
pub use not_mail::{NotMail, check_mail};
pub use parse::parse_message;
pub use source::{ReadError, SourceItem, SourceMessage};
pub use view::{MessageView, ViewOptions, render_message};
