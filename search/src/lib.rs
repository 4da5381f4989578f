//! Arca full-text search: tokenizer, schema, query language, per-shard index, merge.
//!
//! - [`parse_query`]: SRCH-01 quick-search text → [`arca_types::query::Query`]; [`words`]: the SRCH-02
//!   character classes shared by the tokenizer and the query compiler.
//! - [`tokenizer`]: the SRCH-02 tokenizer (parts and whole words, diacritics folding, CJK bigrams).
//! - [`schema`]: the per-shard tantivy schema and the derived values stored in it (sort keys, displays).
//! - [`index`]: [`ShardIndex`], one shard's index on disk or in memory.
//! - [`compile`](mod@compile): AST + resolved filters + readable scopes → tantivy query.
//! - [`search`]: [`ShardIndex::search`], top-k with search-after cursors and highlights.
//! - [`merge`](mod@merge): merging shard pages into one page with a cross-shard cursor.
//! - [`limits`]: the bounds of one search (`[search]` settings); [`wildcard`]: a wildcard term within them.

pub mod compile;
pub mod error;
pub mod index;
pub mod limits;
pub mod merge;
pub mod parse;
pub mod schema;
pub mod search;
pub mod tokenizer;
pub mod wildcard;
pub mod words;

pub use arca_types::query::QuerySyntaxError;
pub use compile::{ResolvedFilters, Scope, compile};
pub use error::SearchError;
pub use index::{IndexEntry, ShardIndex};
pub use limits::{Budget, ShardBounds, check_request};
pub use merge::{MergedCursor, MergedHit, MergedPage, merge};
pub use parse::parse_query;
pub use search::{Highlight, HighlightField, ShardCursor, ShardHit, ShardPage, ShardQuery, SortValue, Tie};
pub use words::{SEPARATORS, is_separator, is_word_char, split_parts, split_words};

#[cfg(test)]
mod tests;
