//! The bounds of one search (the `[search]` settings, invariant 7). [`check_request`] runs on the
//! receiving node before a search goes to any store: words, wildcard terms, wildcard length and automaton
//! size, page size. A [`Budget`] goes with the search to each store and bounds what only the index
//! knows: time (a deadline) and how many indexed words one wildcard may match.
//!
//! The query language has no nesting (terms are ANDed, phrases hold plain words), so its depth is fixed;
//! JSON bodies nest at most 128 levels (serde_json's limit).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arca_types::config::SearchConfig;
use arca_types::query::{Pattern, Query, QueryLimitError, SearchRequest, WildcardToken};

use crate::compile::{reversed_prefix_regex, wildcard_regex};

/// Checks a search request against the configured bounds, before any store is asked.
pub fn check_request(request: &SearchRequest, config: &SearchConfig) -> Result<(), QueryLimitError> {
    if request.limit > config.max_results {
        return Err(QueryLimitError::Results { requested: request.limit, limit: config.max_results });
    }
    check_queries(&[&request.query, &request.filters.from, &request.filters.recipients], config)
}

/// Checks the words and wildcard terms of `queries` (the query text and the From and To boxes) together.
pub fn check_queries(queries: &[&Query], config: &SearchConfig) -> Result<(), QueryLimitError> {
    let patterns = || queries.iter().flat_map(|q| q.terms.iter().map(|t| &t.pattern));
    let words: usize = patterns()
        .map(|p| match p {
            Pattern::Word(_) | Pattern::Wildcard(_) => 1,
            Pattern::Phrase(words) => words.len(),
        })
        .sum();
    if words > config.max_terms as usize {
        return Err(QueryLimitError::Terms { count: words, limit: config.max_terms });
    }
    let wildcards: Vec<&Vec<WildcardToken>> = patterns()
        .filter_map(|p| match p {
            Pattern::Wildcard(tokens) => Some(tokens),
            _ => None,
        })
        .collect();
    if wildcards.len() > config.max_wildcards as usize {
        return Err(QueryLimitError::Wildcards { count: wildcards.len(), limit: config.max_wildcards });
    }
    for (i, tokens) in wildcards.iter().enumerate() {
        let chars: usize = tokens
            .iter()
            .map(|t| match t {
                WildcardToken::Literal(s) => s.chars().count(),
                WildcardToken::AnyChars | WildcardToken::OneChar => 1,
            })
            .sum();
        if chars > config.max_wildcard_chars as usize {
            return Err(QueryLimitError::WildcardChars {
                term: i + 1,
                chars,
                limit: config.max_wildcard_chars,
            });
        }
        wildcard_automaton(tokens, i + 1)?;
        if let Some(re) = reversed_prefix_regex(tokens) {
            regex(&re, i + 1)?;
        }
    }
    Ok(())
}

/// The automaton of wildcard term number `term` (1-based), or why it cannot be built.
pub(crate) fn wildcard_automaton(
    tokens: &[WildcardToken],
    term: usize,
) -> Result<Arc<tantivy_fst::Regex>, QueryLimitError> {
    regex(&wildcard_regex(tokens), term)
}

/// Compiles `re` (tantivy's bounded DFA); a pattern over its size bound is a query error.
pub(crate) fn regex(re: &str, term: usize) -> Result<Arc<tantivy_fst::Regex>, QueryLimitError> {
    tantivy_fst::Regex::new(re)
        .map(Arc::new)
        .map_err(|e| QueryLimitError::WildcardComplexity { term, reason: short(&e.to_string()) })
}

/// At most 200 characters of an error text (a regex error may quote the whole pattern).
fn short(text: &str) -> String {
    let mut out: String = text.chars().take(200).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// What a store must respect while it runs one search: sent along with the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ShardBounds {
    /// `search.timeout_ms`: the store stops and refuses the search after this long.
    pub timeout_ms: u64,
    /// `search.max_wildcard_expansion`.
    pub max_wildcard_expansion: u64,
}

impl Default for ShardBounds {
    fn default() -> Self {
        ShardBounds::from_config(&SearchConfig::default())
    }
}

impl ShardBounds {
    /// The store-side bounds of the configuration.
    pub fn from_config(config: &SearchConfig) -> ShardBounds {
        ShardBounds { timeout_ms: config.timeout_ms, max_wildcard_expansion: config.max_wildcard_expansion }
    }
}

/// One running search's bounds on a store: its deadline and wildcard expansion, and the first bound it
/// broke (tantivy only carries its own error type through a search, so the cause is kept here).
#[derive(Debug)]
pub struct Budget {
    deadline: Instant,
    bounds: ShardBounds,
    broken: Mutex<Option<QueryLimitError>>,
}

impl Budget {
    /// A budget starting now.
    pub fn start(bounds: ShardBounds) -> Arc<Budget> {
        Arc::new(Budget {
            deadline: Instant::now() + Duration::from_millis(bounds.timeout_ms),
            bounds,
            broken: Mutex::new(None),
        })
    }

    /// An error when the deadline has passed.
    pub fn check_time(&self) -> Result<(), QueryLimitError> {
        if Instant::now() >= self.deadline {
            return Err(self.broke(QueryLimitError::Timeout { limit_ms: self.bounds.timeout_ms }));
        }
        Ok(())
    }

    /// An error when a wildcard has matched more than the allowed number of words.
    pub fn check_expansion(&self, words: u64) -> Result<(), QueryLimitError> {
        if words > self.bounds.max_wildcard_expansion {
            let limit = self.bounds.max_wildcard_expansion;
            return Err(self.broke(QueryLimitError::WildcardExpansion { limit }));
        }
        Ok(())
    }

    /// Records the first broken bound and returns it.
    fn broke(&self, e: QueryLimitError) -> QueryLimitError {
        let mut broken = self.broken.lock().unwrap_or_else(|p| p.into_inner());
        broken.get_or_insert_with(|| e.clone());
        e
    }

    /// The first bound this search broke, if any.
    pub fn broken(&self) -> Option<QueryLimitError> {
        self.broken.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_query;

    fn check(text: &str, config: &SearchConfig) -> Result<(), QueryLimitError> {
        let request = SearchRequest { query: parse_query(text).expect("parses"), ..Default::default() };
        check_request(&request, config)
    }

    #[test]
    fn a_query_over_max_terms_is_refused_naming_the_setting() {
        let config = SearchConfig { max_terms: 3, ..Default::default() };
        assert_eq!(check("a b c", &config), Ok(()));
        let err = check("a \"b c\" d", &config).expect_err("4 words");
        assert_eq!(err, QueryLimitError::Terms { count: 4, limit: 3 });
        assert!(err.to_string().contains("search.max_terms"), "{err}");
        let words = vec!["wort"; 100_000].join(" ");
        let started = Instant::now();
        let err = check(&words, &SearchConfig::default()).expect_err("100,000 words");
        assert_eq!(err.setting(), "search.max_terms");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn the_from_and_to_boxes_count_towards_max_terms() {
        let config = SearchConfig { max_terms: 2, ..Default::default() };
        let mut request = SearchRequest { query: parse_query("a b").expect("parses"), ..Default::default() };
        assert_eq!(check_request(&request, &config), Ok(()));
        request.filters.from = parse_query("c").expect("parses");
        assert_eq!(check_request(&request, &config), Err(QueryLimitError::Terms { count: 3, limit: 2 }));
    }

    #[test]
    fn wildcard_bombs_are_refused_by_count_length_and_automaton_size() {
        let config = SearchConfig::default();
        let many: Vec<String> = (0..9).map(|i| format!("w{i}*")).collect();
        assert_eq!(check(&many.join(" "), &config), Err(QueryLimitError::Wildcards { count: 9, limit: 8 }));
        let long: String = ('a'..='z').chain('a'..='z').chain('a'..='z').map(|c| format!("*{c}")).collect();
        let err = check(&long, &config).expect_err("long wildcard");
        assert_eq!(err.setting(), "search.max_wildcard_chars");
        assert!(matches!(err, QueryLimitError::WildcardChars { term: 1, chars: 156, .. }), "{err:?}");
        // `.*a` followed by 40 single-character wildcards needs a DFA of 2^40 states.
        let bomb = format!("*a{}b", "?".repeat(40));
        let started = Instant::now();
        let err = check(&bomb, &SearchConfig { max_wildcard_chars: 100, ..config }).expect_err("bomb");
        assert!(matches!(err, QueryLimitError::WildcardComplexity { term: 1, .. }), "{err:?}");
        assert!(err.to_string().len() < 400, "the pattern is not quoted whole: {err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn a_page_over_max_results_is_refused() {
        let request = SearchRequest { limit: 1001, ..Default::default() };
        let err = check_request(&request, &SearchConfig::default()).expect_err("too large");
        assert_eq!(err, QueryLimitError::Results { requested: 1001, limit: 1000 });
        assert!(err.to_string().contains("search.max_results"));
    }

    #[test]
    fn a_budget_records_the_first_broken_bound() {
        let budget = Budget::start(ShardBounds { timeout_ms: 0, max_wildcard_expansion: 5 });
        assert_eq!(budget.check_expansion(5), Ok(()));
        assert_eq!(budget.check_expansion(6), Err(QueryLimitError::WildcardExpansion { limit: 5 }));
        assert_eq!(budget.check_time(), Err(QueryLimitError::Timeout { limit_ms: 0 }));
        assert_eq!(budget.broken(), Some(QueryLimitError::WildcardExpansion { limit: 5 }));
    }
}
