//! The SRCH-01 quick-search syntax: query text → [`Query`].
//!
//! - Terms are separated by whitespace (`char::is_whitespace`) and ANDed. `AND`, `OR`, `NOT` are ordinary
//!   words. Everything is lower-cased; diacritics are kept as typed.
//! - A term is `[-][field:]value`. A leading `-` excludes; only the first one (`-Download-Tipp` excludes
//!   the word `download-tipp`). A lone `-` is an error, and so is a `-` right after a field prefix
//!   (`subject:-x`: the `-` belongs before the prefix).
//! - Field prefixes `subject:` `from:` `to:` `cc:` `bcc:` `bcontent:` `acontent:`, ASCII case-insensitive.
//!   The value follows the colon directly; an empty value is an error. An unknown `name:` is plain text:
//!   `foo:bar` searches the words `foo` and `bar` next to each other in any field.
//! - A value is a phrase in double quotes or a word. A quote may only open a phrase at the start of a value;
//!   the closing quote must be followed by whitespace or the end; an unclosed quote is an error.
//! - A word is split into words by the SRCH-02 classes ([`crate::words`]), `*` and `?` counting as word
//!   characters. Separators (`. , ; - _ @ / \` NUL) stay inside the word (`john@example.com` stays whole;
//!   the shard matches its parts). Other characters end a word: one word gives [`Pattern::Word`] or
//!   [`Pattern::Wildcard`], several give a [`Pattern::Phrase`] (`o'neil` = phrase `o neil`,
//!   `c++` = word `c`); none (`+++`) is an error.
//! - Wildcards: `*` anywhere, including leading; `?` only inside a word (at its start or end an error that
//!   suggests `*`). Wildcards are an error inside quotes and in a value split into several words
//!   (`o'nei*`): phrases hold plain words only. Nothing is ever dropped silently.

use std::ops::Range;

use arca_types::query::{Field, Pattern, Query, QuerySyntaxError, Term};

use crate::words::{is_separator, is_word_char};

/// Parses quick-search text into the query AST; blank text is the empty query (every message).
///
/// The text is NFC-normalized first (a decomposed `u` + U+0308 is `ü`, as in indexed text); error positions
/// count characters of the normalized text.
pub fn parse_query(text: &str) -> Result<Query, QuerySyntaxError> {
    let chars: Vec<char> = crate::tokenizer::nfc(text).chars().collect();
    let parser = Parser { chars: &chars };
    let mut terms = Vec::new();
    let mut i = 0;
    while let Some(c) = parser.at(i) {
        if c.is_whitespace() {
            i += 1;
        } else {
            let (term, end) = parser.term(i)?;
            terms.push(term);
            i = end;
        }
    }
    Ok(Query { terms })
}

fn error(position: usize, reason: impl Into<String>) -> QuerySyntaxError {
    QuerySyntaxError { position, reason: reason.into() }
}

fn is_wildcard(c: char) -> bool {
    c == '*' || c == '?'
}

struct Parser<'a> {
    chars: &'a [char],
}

impl Parser<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn ends_term(&self, i: usize) -> bool {
        self.at(i).is_none_or(char::is_whitespace)
    }

    fn text(&self, range: Range<usize>) -> String {
        self.chars[range].iter().collect()
    }

    /// Parses the term starting at `start` (not whitespace); returns it and the index after it.
    fn term(&self, start: usize) -> Result<(Term, usize), QuerySyntaxError> {
        let mut i = start;
        let exclude = self.at(i) == Some('-');
        if exclude {
            i += 1;
            if self.ends_term(i) {
                return Err(error(
                    start,
                    "a lone '-' excludes nothing; write the word, phrase or field term directly after it, \
                     e.g. -Mahnung",
                ));
            }
        }
        let mut field = Field::Any;
        let mut text_prefix = None;
        let mut name_end = i;
        while self.at(name_end).is_some_and(|c| c.is_ascii_alphabetic()) {
            name_end += 1;
        }
        if name_end > i && self.at(name_end) == Some(':') {
            let name = self.text(i..name_end);
            let value = name_end + 1;
            match Field::from_prefix(&name) {
                Some(known) => {
                    if self.ends_term(value) {
                        return Err(error(
                            i,
                            format!(
                                "the field prefix '{name}:' has no value; write the value directly after \
                                 the colon, e.g. {name}:Rechnung"
                            ),
                        ));
                    }
                    if self.at(value) == Some('-') {
                        return Err(error(
                            value,
                            format!(
                                "a '-' after a field prefix does not exclude; write it before the prefix, \
                                 e.g. -{name}:Mahnung"
                            ),
                        ));
                    }
                    field = known;
                    i = value;
                }
                // An unknown prefix is plain text; before a phrase it is the phrase's first word.
                None if self.at(value) == Some('"') => {
                    text_prefix = Some(name);
                    i = value;
                }
                None => {}
            }
        }
        if self.at(i) == Some('"') {
            let (mut words, end) = self.phrase(i)?;
            if !self.ends_term(end) {
                return Err(error(
                    end,
                    "a closing quote must be followed by a blank or the end of the query",
                ));
            }
            if let Some(prefix) = text_prefix {
                words.insert(0, prefix);
            }
            return Ok((Term { field, pattern: Pattern::phrase(&words), exclude }, end));
        }
        let mut end = i;
        while !self.ends_term(end) {
            if self.at(end) == Some('"') {
                return Err(error(
                    end,
                    "a double quote may only open a phrase at the start of a term, \
                     e.g. \"Daily Update\" or subject:\"Daily Update\"",
                ));
            }
            end += 1;
        }
        Ok((Term { field, pattern: self.word(i..end)?, exclude }, end))
    }

    /// Parses the phrase whose opening quote is at `open`; returns its words and the index after it.
    fn phrase(&self, open: usize) -> Result<(Vec<String>, usize), QuerySyntaxError> {
        let close = (open + 1..self.chars.len()).find(|&j| self.chars[j] == '"').ok_or_else(|| {
            error(open, "unbalanced quote: the phrase that starts here has no closing '\"'")
        })?;
        if let Some(j) = (open + 1..close).find(|&j| is_wildcard(self.chars[j])) {
            return Err(error(
                j,
                format!(
                    "wildcards are not supported inside a phrase; remove '{}' or search the words \
                     without quotes",
                    self.chars[j]
                ),
            ));
        }
        let words: Vec<String> = self.pieces(open + 1..close).into_iter().map(|r| self.text(r)).collect();
        if words.is_empty() {
            return Err(error(open, "empty phrase: there is no word between the quotes"));
        }
        Ok((words, close + 1))
    }

    /// Turns an unquoted value into a pattern.
    fn word(&self, range: Range<usize>) -> Result<Pattern, QuerySyntaxError> {
        let pieces = self.pieces(range.clone());
        if pieces.is_empty() {
            return Err(error(
                range.start,
                format!("'{}' has no letter or digit to search for", self.text(range)),
            ));
        }
        for piece in &pieces {
            for (place, j) in [("start", piece.start), ("end", piece.end - 1)] {
                if self.chars[j] == '?' {
                    let suggestion: String =
                        piece.clone().map(|k| if k == j { '*' } else { self.chars[k] }).collect();
                    return Err(error(
                        j,
                        format!(
                            "'?' stands for one character inside a word and is not allowed at the {place} \
                             of a word; use '*' instead: {suggestion}"
                        ),
                    ));
                }
            }
        }
        if let [piece] = pieces.as_slice() {
            return Ok(Pattern::word(&self.text(piece.clone())));
        }
        if let Some(j) = range.clone().find(|&j| is_wildcard(self.chars[j])) {
            let splitter = (pieces[0].end..range.end)
                .map(|k| self.chars[k])
                .find(|&c| !(is_word_char(c) || is_separator(c) || is_wildcard(c)))
                .unwrap_or(' ');
            return Err(error(
                j,
                format!(
                    "wildcards are not supported in a term that '{splitter}' splits into several words; \
                     search the words as separate terms"
                ),
            ));
        }
        let words: Vec<String> = pieces.into_iter().map(|r| self.text(r)).collect();
        Ok(Pattern::phrase(&words))
    }

    /// The words in `range`: maximal runs of word characters, separators and wildcards, with separators
    /// trimmed from both ends; runs without anything else are dropped.
    fn pieces(&self, range: Range<usize>) -> Vec<Range<usize>> {
        let inside = |c: char| is_word_char(c) || is_separator(c) || is_wildcard(c);
        let mut pieces = Vec::new();
        let mut i = range.start;
        while i < range.end {
            if !inside(self.chars[i]) {
                i += 1;
                continue;
            }
            let mut end = i;
            while end < range.end && inside(self.chars[end]) {
                end += 1;
            }
            let (mut s, mut e) = (i, end);
            while s < e && is_separator(self.chars[s]) {
                s += 1;
            }
            while e > s && is_separator(self.chars[e - 1]) {
                e -= 1;
            }
            if s < e {
                pieces.push(s..e);
            }
            i = end;
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use arca_types::query::WildcardToken::{AnyChars, Literal, OneChar};
    use arca_types::query::{Field, Pattern, Query, Term, WildcardToken};

    use super::parse_query;

    fn parsed(text: &str) -> Vec<Term> {
        parse_query(text).unwrap_or_else(|e| panic!("{text:?}: {e}")).terms
    }

    fn word(field: Field, w: &str) -> Term {
        Term { field, pattern: Pattern::Word(w.to_string()), exclude: false }
    }

    fn not(term: Term) -> Term {
        Term { exclude: true, ..term }
    }

    fn wild(field: Field, tokens: Vec<WildcardToken>) -> Term {
        Term { field, pattern: Pattern::Wildcard(tokens), exclude: false }
    }

    fn lit(s: &str) -> WildcardToken {
        Literal(s.to_string())
    }

    fn phrase(field: Field, words: &[&str]) -> Term {
        Term {
            field,
            pattern: Pattern::Phrase(words.iter().map(|w| w.to_string()).collect()),
            exclude: false,
        }
    }

    /// Asserts the error's position, reason and message.
    fn fails(text: &str, position: usize, reason: &str) {
        let err = parse_query(text).expect_err(text);
        assert_eq!((err.position, err.reason.as_str()), (position, reason), "{text:?}");
        assert_eq!(err.to_string(), format!("syntax error at character {}: {reason}", position + 1));
    }

    #[test]
    fn trailing_star_is_a_prefix_wildcard() {
        assert_eq!(parsed("Auto*"), vec![wild(Field::Any, vec![lit("auto"), AnyChars])]);
    }

    #[test]
    fn leading_star_is_a_suffix_wildcard() {
        assert_eq!(parsed("*example.com"), vec![wild(Field::Any, vec![AnyChars, lit("example.com")])]);
    }

    #[test]
    fn star_after_a_dotted_word_keeps_the_whole_word() {
        assert_eq!(
            parsed("vorname.nachname*"),
            vec![wild(Field::Any, vec![lit("vorname.nachname"), AnyChars])]
        );
    }

    #[test]
    fn question_mark_inside_a_word_is_one_character() {
        assert_eq!(parsed("Me?er"), vec![wild(Field::Any, vec![lit("me"), OneChar, lit("er")])]);
        assert_eq!(parsed("a*?b"), vec![wild(Field::Any, vec![lit("a"), AnyChars, OneChar, lit("b")])]);
    }

    #[test]
    fn quoted_words_are_a_phrase() {
        assert_eq!(parsed("\"Microsoft Windows\""), vec![phrase(Field::Any, &["microsoft", "windows"])]);
    }

    #[test]
    fn subject_prefix_limits_a_word_to_the_subject() {
        assert_eq!(parsed("subject:Nachrichten"), vec![word(Field::Subject, "nachrichten")]);
    }

    #[test]
    fn address_prefixes_limit_whole_addresses_to_their_field() {
        let cases = [
            ("from:john@mailstore.com", Field::From, "john@mailstore.com"),
            ("from:john@example.com", Field::From, "john@example.com"),
            ("to:michael@mailstore.com", Field::To, "michael@mailstore.com"),
            ("to:michael@example.com", Field::To, "michael@example.com"),
            ("cc:lisa@mailstore.com", Field::Cc, "lisa@mailstore.com"),
            ("cc:lisa@example.com", Field::Cc, "lisa@example.com"),
            ("bcc:customers@mailstore.com", Field::Bcc, "customers@mailstore.com"),
            ("bcc:customers@example.com", Field::Bcc, "customers@example.com"),
        ];
        for (text, field, value) in cases {
            assert_eq!(parsed(text), vec![word(field, value)], "{text}");
        }
    }

    #[test]
    fn content_prefixes_limit_to_body_or_attachment_contents() {
        assert_eq!(parsed("bcontent:Rechnung"), vec![word(Field::Body, "rechnung")]);
        assert_eq!(parsed("acontent:Rechnung"), vec![word(Field::AttachmentContent, "rechnung")]);
    }

    #[test]
    fn only_the_first_hyphen_excludes() {
        assert_eq!(
            parsed("ZDNet -Download-Tipp"),
            vec![word(Field::Any, "zdnet"), not(word(Field::Any, "download-tipp"))]
        );
    }

    #[test]
    fn a_hyphen_before_a_quote_excludes_the_phrase() {
        assert_eq!(
            parsed("ZDNET -\"Daily Update\""),
            vec![word(Field::Any, "zdnet"), not(phrase(Field::Any, &["daily", "update"]))]
        );
    }

    #[test]
    fn field_terms_combine_with_and() {
        assert_eq!(
            parsed("from:ZDNET bcontent:MailStore"),
            vec![word(Field::From, "zdnet"), word(Field::Body, "mailstore")]
        );
        assert_eq!(
            parsed("from:ZDNET bcontent:Mustermann"),
            vec![word(Field::From, "zdnet"), word(Field::Body, "mustermann")]
        );
        assert_eq!(
            parsed("from:versand@example.com acontent:Rechnung"),
            vec![word(Field::From, "versand@example.com"), word(Field::AttachmentContent, "rechnung")]
        );
    }

    #[test]
    fn an_unqualified_exclusion_follows_a_field_term() {
        assert_eq!(
            parsed("to:bewerbung@example.com -Bewerbung"),
            vec![word(Field::To, "bewerbung@example.com"), not(word(Field::Any, "bewerbung"))]
        );
    }

    #[test]
    fn a_field_term_can_be_excluded() {
        assert_eq!(
            parsed("from:versand@example.com to:meineadresse@company.tld acontent:Rechnung -subject:Mahnung"),
            vec![
                word(Field::From, "versand@example.com"),
                word(Field::To, "meineadresse@company.tld"),
                word(Field::AttachmentContent, "rechnung"),
                not(word(Field::Subject, "mahnung")),
            ]
        );
    }

    #[test]
    fn wildcards_work_after_a_prefix() {
        assert_eq!(
            parsed("from:*@example.com"),
            vec![wild(Field::From, vec![AnyChars, lit("@example.com")])]
        );
    }

    #[test]
    fn a_prefix_applies_to_a_phrase() {
        assert_eq!(parsed("subject:\"Daily Update\""), vec![phrase(Field::Subject, &["daily", "update"])]);
    }

    #[test]
    fn case_never_matters() {
        for text in ["ZDNet", "ZDNET", "zdnet"] {
            assert_eq!(parsed(text), vec![word(Field::Any, "zdnet")]);
        }
        assert_eq!(
            parsed("SUBJECT:X From:Y bContent:Z"),
            vec![word(Field::Subject, "x"), word(Field::From, "y"), word(Field::Body, "z")]
        );
    }

    #[test]
    fn and_or_not_are_ordinary_words() {
        assert_eq!(
            parsed("a AND b OR NOT c"),
            ["a", "and", "b", "or", "not", "c"].map(|w| word(Field::Any, w)).to_vec()
        );
    }

    #[test]
    fn diacritics_are_kept_and_lower_cased() {
        assert_eq!(parsed("MÜLLER Straße"), vec![word(Field::Any, "müller"), word(Field::Any, "straße")]);
    }

    #[test]
    fn blank_text_is_the_empty_query() {
        assert_eq!(parse_query(""), Ok(Query::default()));
        assert_eq!(parse_query(" \t\n\u{a0}"), Ok(Query::default()));
        assert_eq!(parsed("  a   b "), vec![word(Field::Any, "a"), word(Field::Any, "b")]);
    }

    #[test]
    fn a_query_of_only_exclusions_parses() {
        assert_eq!(
            parsed("-spam -\"x y\""),
            vec![not(word(Field::Any, "spam")), not(phrase(Field::Any, &["x", "y"]))]
        );
    }

    #[test]
    fn an_unknown_prefix_is_plain_text() {
        assert_eq!(parsed("foo:bar"), vec![phrase(Field::Any, &["foo", "bar"])]);
        assert_eq!(parsed("Foo:\"Bar baz\""), vec![phrase(Field::Any, &["foo", "bar", "baz"])]);
        assert_eq!(parsed("re:"), vec![word(Field::Any, "re")]);
        assert_eq!(parsed("subject:Re:Hallo"), vec![phrase(Field::Subject, &["re", "hallo"])]);
    }

    #[test]
    fn plus_apostrophe_and_colon_end_words() {
        assert_eq!(parsed("C++"), vec![word(Field::Any, "c")]);
        assert_eq!(parsed("O'Neil"), vec![phrase(Field::Any, &["o", "neil"])]);
        assert_eq!(parsed("10:30"), vec![phrase(Field::Any, &["10", "30"])]);
        assert_eq!(parsed("\"Hallo, Welt!\""), vec![phrase(Field::Any, &["hallo", "welt"])]);
    }

    #[test]
    fn separators_stay_inside_words_but_not_at_their_ends() {
        assert_eq!(parsed("vorname.nachname."), vec![word(Field::Any, "vorname.nachname")]);
        assert_eq!(parsed("--x"), vec![not(word(Field::Any, "x"))]);
        assert_eq!(parsed("a\\b/c;d,e_f"), vec![word(Field::Any, "a\\b/c;d,e_f")]);
        assert_eq!(parsed("foo-*"), vec![wild(Field::Any, vec![lit("foo-"), AnyChars])]);
    }

    #[test]
    fn question_mark_at_the_start_is_an_error_suggesting_star() {
        fails(
            "?eier",
            0,
            "'?' stands for one character inside a word and is not allowed at the start of a word; \
             use '*' instead: *eier",
        );
        fails(
            "from:?eier",
            5,
            "'?' stands for one character inside a word and is not allowed at the start of a word; \
             use '*' instead: *eier",
        );
    }

    #[test]
    fn question_mark_at_the_end_is_an_error_suggesting_star() {
        fails(
            "Mei?",
            3,
            "'?' stands for one character inside a word and is not allowed at the end of a word; \
             use '*' instead: Mei*",
        );
        fails(
            "a Mei?!",
            5,
            "'?' stands for one character inside a word and is not allowed at the end of a word; \
             use '*' instead: Mei*",
        );
    }

    #[test]
    fn an_unclosed_quote_is_an_error() {
        fails("\"open", 0, "unbalanced quote: the phrase that starts here has no closing '\"'");
        fails("a -\"open", 3, "unbalanced quote: the phrase that starts here has no closing '\"'");
    }

    #[test]
    fn a_lone_hyphen_is_an_error() {
        let reason = "a lone '-' excludes nothing; write the word, phrase or field term directly after it, \
                      e.g. -Mahnung";
        fails("-", 0, reason);
        fails("ZDNet - News", 6, reason);
    }

    #[test]
    fn an_empty_field_value_is_an_error() {
        let reason = "the field prefix 'subject:' has no value; write the value directly after the colon, \
                      e.g. subject:Rechnung";
        fails("subject:", 0, reason);
        fails("subject: x", 0, reason);
        fails(
            "a -From:",
            3,
            "the field prefix 'From:' has no value; write the value directly after the colon, \
             e.g. From:Rechnung",
        );
    }

    #[test]
    fn wildcards_inside_a_phrase_are_an_error() {
        fails(
            "\"Daily Upd*\"",
            10,
            "wildcards are not supported inside a phrase; remove '*' or search the words without quotes",
        );
        fails(
            "o'nei*",
            5,
            "wildcards are not supported in a term that ''' splits into several words; \
             search the words as separate terms",
        );
    }

    #[test]
    fn misplaced_quotes_and_hyphens_are_errors() {
        fails("\"\"", 0, "empty phrase: there is no word between the quotes");
        fails("\"a b\"c", 5, "a closing quote must be followed by a blank or the end of the query");
        fails(
            "foo\"bar baz\"",
            3,
            "a double quote may only open a phrase at the start of a term, \
             e.g. \"Daily Update\" or subject:\"Daily Update\"",
        );
        fails(
            "subject:-Mahnung",
            8,
            "a '-' after a field prefix does not exclude; write it before the prefix, e.g. -subject:Mahnung",
        );
        fails("+++", 0, "'+++' has no letter or digit to search for");
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        fails(
            "Müller Mei?",
            10,
            "'?' stands for one character inside a word and is not allowed at the end of a word; \
             use '*' instead: Mei*",
        );
    }

    /// Property tests (`prop_*`): no input panics the parser, and every error names a place in the
    /// input. `PROPTEST_CASES=100000 cargo nextest run -p arca-search prop_` runs them longer.
    mod prop {
        use proptest::prelude::*;

        use super::parse_query;

        /// Query-like text: the characters the grammar gives meaning to, mixed with any character.
        fn query_text() -> impl Strategy<Value = String> {
            let special = prop::sample::select(vec![
                ' ', '\t', '\n', '"', '-', '*', '?', ':', '\'', '+', '.', '@', '/', '_', 'a', 'Z', '0', 'ü',
                'u', '\u{308}', '東', '\0', '\u{a0}',
            ]);
            let word = prop::sample::select(vec![
                "subject:",
                "from:",
                "to:",
                "cc:",
                "bcc:",
                "bcontent:",
                "acontent:",
                "foo:",
            ]);
            let piece = prop_oneof![
                3 => special.prop_map(String::from),
                1 => word.prop_map(String::from),
                1 => any::<char>().prop_map(String::from),
            ];
            prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
        }

        proptest! {
            #[test]
            fn prop_query_text_never_panics_and_errors_name_a_position(text in query_text()) {
                let chars = crate::tokenizer::nfc(&text).chars().count();
                match parse_query(&text) {
                    Ok(query) => {
                        for term in &query.terms {
                            prop_assert!(!matches!(&term.pattern, arca_types::query::Pattern::Phrase(w) if w.len() < 2));
                        }
                    }
                    Err(e) => {
                        prop_assert!(e.position < chars, "{e} in {text:?} ({chars} characters)");
                        let place = format!("at character {}:", e.position + 1);
                        prop_assert!(e.to_string().contains(&place), "{e}");
                    }
                }
            }

            #[test]
            fn prop_any_string_never_panics_the_parser(text in any::<String>()) {
                let chars = crate::tokenizer::nfc(&text).chars().count();
                if let Err(e) = parse_query(&text) {
                    prop_assert!(e.position < chars, "{e} in {text:?}");
                }
            }
        }
    }
}
