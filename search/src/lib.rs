//! Arca full-text search: tokenizer, schema, query language, per-shard index, merge.
//!
//! So far: the SRCH-01 quick-search parser ([`parse_query`]) and the SRCH-02 character classes
//! ([`words`]) that the tokenizer and the query compiler share.

pub mod parse;
pub mod words;

pub use arca_types::query::QuerySyntaxError;
pub use parse::parse_query;
pub use words::{SEPARATORS, is_separator, is_word_char, split_parts, split_words};
