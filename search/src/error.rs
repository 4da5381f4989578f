//! Errors of the search crate; each names what was being done.

/// Why an index operation or a search failed.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// tantivy failed (I/O, corrupt index, invalid query part).
    #[error("{context}: {source}")]
    Index {
        context: String,
        #[source]
        source: tantivy::TantivyError,
    },
    /// The index on disk does not have this version's schema.
    #[error("{context}: {reason}")]
    Schema { context: String, reason: String },
    /// A search-after cursor that this search did not produce (wrong sort, malformed).
    #[error("invalid cursor: {0}")]
    BadCursor(String),
    /// A query part that cannot be run.
    #[error("cannot run the query: {0}")]
    Query(String),
    /// The search is over one of the `[search]` bounds: a query error, not a failed store.
    #[error(transparent)]
    Limit(#[from] arca_types::query::QueryLimitError),
}

/// A `map_err` adapter that wraps a tantivy error with its context.
pub(crate) fn tantivy_err(context: impl Into<String>) -> impl FnOnce(tantivy::TantivyError) -> SearchError {
    let context = context.into();
    move |source| SearchError::Index { context, source }
}
