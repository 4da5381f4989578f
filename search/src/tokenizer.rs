//! The SRCH-02 tokenizer, shared by indexing (as the tantivy tokenizer [`ArcaTokenizer`]) and by the query
//! compiler ([`analyze_query_word`]), so that both sides cut text the same way.
//!
//! - **Words** are the [`crate::words`] runs: letters and digits joined by the separators
//!   `. , ; - _ @ / \` NUL; everything else ends a word. Text is NFC-normalized first (combining marks are
//!   not word characters), and every token is lower-cased (`str::to_lowercase`).
//! - **Parts and whole**: a word of several parts (`vorname.nachname@example.com`) is indexed as each part,
//!   at consecutive positions (`vorname`@p, `nachname`@p+1, `example`@p+2, `com`@p+3), and as the whole
//!   word with its separators (`vorname.nachname@example.com`@p, at the position of its first part). So a
//!   phrase of the parts matches "adjacent and in order", and wildcards (`*example.com`,
//!   `vorname.nachname*`) match whole words as well as single parts.
//! - **Diacritics**: a token whose canonical decomposition has combining marks is also indexed without
//!   them, at the same position (`müller` and `muller`); not in space-less scripts (`で` stays `で`,
//!   the voicing mark changes the word). A query word is searched as typed: `Muller` finds `Müller` and
//!   `Muller`, `müller` finds `Müller` only. Letters without a decomposition (`ß`, `ø`, `æ`, `ł`) are
//!   not folded. Query words are NFC-normalized like text (`parse_query` does it).
//! - **Scripts without spaces** (Han, Hiragana, Katakana, Hangul): inside a part, each maximal run of such
//!   characters is indexed as overlapping character bigrams at consecutive positions (`東京都` → `東京`,
//!   `京都`); a run of one character is indexed as that character. No dictionary segmenter for Chinese or
//!   Japanese is available offline as a Rust crate with its dictionary, and bigrams are the standard
//!   dictionary-free approach (Lucene's CJK analyzer): any word of two or more characters inside a sentence
//!   is found, as a phrase of its bigrams. A query of a single such character matches the bigrams that
//!   contain it (see `compile`). Runs of other scripts inside the same part become their own tokens next to
//!   the bigrams (`Windows版` → `windows`, `版`).
//! - **No stemming**, no stop words.
//! - **Limits** (invariant 7): a token longer than [`MAX_TOKEN_BYTES`] is not indexed (base64 or binary
//!   junk would only bloat the term dictionary); its position is still counted.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::words::{split_parts, split_words};

/// The name under which [`ArcaTokenizer`] is registered with an index.
pub const TOKENIZER_NAME: &str = "arca";

/// The name under which [`ReversedTokenizer`] is registered with an index.
pub const REVERSED_TOKENIZER_NAME: &str = "arca_rev";

/// Tokens longer than this (UTF-8 bytes) are not indexed.
pub const MAX_TOKEN_BYTES: usize = 255;

/// One indexed unit of a word: a part, a script run of a part, or a bigram of a space-less script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Lower-cased text.
    pub text: String,
    /// The text without diacritics, when it differs.
    pub folded: Option<String>,
    /// Byte range in the analyzed text.
    pub start: usize,
    pub end: usize,
    /// True for a single character of a space-less script (a run of one).
    pub single_cjk: bool,
}

/// One word of a text with its units (at consecutive positions) and, for words of several parts, the
/// whole lower-cased word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Byte range in the analyzed text.
    pub start: usize,
    pub end: usize,
    /// The whole word (separators kept), when it has two or more parts.
    pub whole: Option<String>,
    /// The whole word without diacritics, when it differs.
    pub whole_folded: Option<String>,
    pub units: Vec<Unit>,
}

/// True for characters of scripts written without spaces, indexed as bigrams.
pub fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x3040..=0x309F        // Hiragana
        | 0x30A0..=0x30FF      // Katakana
        | 0x31F0..=0x31FF      // Katakana phonetic extensions
        | 0xFF66..=0xFF9F      // half-width Katakana
        | 0x3400..=0x4DBF      // CJK extension A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0x20000..=0x3134F    // CJK extensions B–G
        | 0x1100..=0x11FF      // Hangul Jamo
        | 0x3130..=0x318F      // Hangul compatibility Jamo
        | 0xAC00..=0xD7AF      // Hangul syllables
    )
}

/// The text without combining marks after canonical decomposition, recomposed; `None` when unchanged.
pub fn fold(text: &str) -> Option<String> {
    if text.is_ascii() {
        return None;
    }
    let folded: String = text.nfd().filter(|&c| !is_combining_mark(c)).nfc().collect();
    (folded != text).then_some(folded)
}

/// The NFC form of a text (borrowed when it is already NFC).
pub fn nfc(text: &str) -> std::borrow::Cow<'_, str> {
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.nfc().collect())
    }
}

/// Byte offset of `inner` (a subslice of `outer`) within `outer`.
fn offset_in(outer: &str, inner: &str) -> usize {
    inner.as_ptr() as usize - outer.as_ptr() as usize
}

/// A unit; space-less scripts are never folded (the kana voicing marks ゙ ゚ change the word: で ≠ て).
fn unit(text: &str, start: usize, end: usize, cjk: bool, single_cjk: bool) -> Unit {
    let text = text.to_lowercase();
    let folded = if cjk { None } else { fold(&text) };
    Unit { text, folded, start, end, single_cjk }
}

/// Cuts one part (no separators) into units: runs of other scripts as they are, space-less runs as
/// bigrams (or the single character).
fn part_units(part: &str, base: usize, units: &mut Vec<Unit>) {
    // Fast path: an ASCII part holds no space-less script and nothing to fold.
    if part.is_ascii() {
        let text = part.to_ascii_lowercase();
        units.push(Unit { text, folded: None, start: base, end: base + part.len(), single_cjk: false });
        return;
    }
    let chars: Vec<(usize, char)> = part.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let cjk = is_cjk(chars[i].1);
        let mut j = i + 1;
        while j < chars.len() && is_cjk(chars[j].1) == cjk {
            j += 1;
        }
        let byte = |k: usize| if k < chars.len() { chars[k].0 } else { part.len() };
        if !cjk {
            units.push(unit(&part[byte(i)..byte(j)], base + byte(i), base + byte(j), false, false));
        } else if j - i == 1 {
            units.push(unit(&part[byte(i)..byte(j)], base + byte(i), base + byte(j), true, true));
        } else {
            for k in i..j - 1 {
                units.push(unit(
                    &part[byte(k)..byte(k + 2)],
                    base + byte(k),
                    base + byte(k + 2),
                    true,
                    false,
                ));
            }
        }
        i = j;
    }
}

/// The words of an NFC-normalized text with their units; offsets are byte offsets into `text`.
pub fn analyze(text: &str) -> Vec<Word> {
    split_words(text)
        .into_iter()
        .map(|word| {
            let start = offset_in(text, word);
            let parts = split_parts(word);
            let mut units = Vec::new();
            for part in &parts {
                part_units(part, offset_in(text, part), &mut units);
            }
            let whole = (parts.len() > 1).then(|| word.to_lowercase());
            let whole_folded = whole.as_deref().filter(|w| !w.chars().any(is_cjk)).and_then(fold);
            Word { start, end: start + word.len(), whole, whole_folded, units }
        })
        .collect()
}

/// A query word cut like indexed text: its units in order (as typed, lower-cased, not folded) and the
/// whole word when it has several parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryWord {
    pub whole: Option<String>,
    pub units: Vec<Unit>,
}

/// Cuts a query word (or a phrase's word) the way [`ArcaTokenizer`] cuts text.
pub fn analyze_query_word(word: &str) -> QueryWord {
    let word = nfc(word);
    let mut words = analyze(&word);
    if words.len() == 1 {
        let w = words.remove(0);
        return QueryWord { whole: w.whole, units: w.units };
    }
    QueryWord { whole: None, units: words.into_iter().flat_map(|w| w.units).collect() }
}

/// All tokens of a text as the index sees them, with positions.
pub fn tokens(text: &str) -> Vec<Token> {
    let text = nfc(text);
    let mut out = Vec::new();
    let mut position = 0usize;
    let push = |out: &mut Vec<Token>, text: String, from: usize, to: usize, position: usize| {
        if !text.is_empty() && text.len() <= MAX_TOKEN_BYTES {
            out.push(Token { offset_from: from, offset_to: to, position, text, position_length: 1 });
        }
    };
    for word in analyze(&text) {
        if let Some(whole) = word.whole {
            push(&mut out, whole, word.start, word.end, position);
            if let Some(f) = word.whole_folded {
                push(&mut out, f, word.start, word.end, position);
            }
        }
        for u in word.units {
            push(&mut out, u.text, u.start, u.end, position);
            if let Some(f) = u.folded {
                push(&mut out, f, u.start, u.end, position);
            }
            position += 1;
        }
    }
    // Offsets refer to the NFC form; clamp them for input that was not NFC (the index feeds NFC text).
    let len = text.len();
    for t in &mut out {
        t.offset_from = t.offset_from.min(len);
        t.offset_to = t.offset_to.min(len);
    }
    out
}

/// The tantivy tokenizer of SRCH-02 (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ArcaTokenizer;

/// The token stream of [`ArcaTokenizer`].
#[derive(Debug)]
pub struct ArcaTokenStream {
    tokens: Vec<Token>,
    next: usize,
    /// Returned by `token` before the first or after the last `advance` (tantivy does not ask then).
    none: Token,
}

impl Tokenizer for ArcaTokenizer {
    type TokenStream<'a> = ArcaTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> ArcaTokenStream {
        let tokens = tokens(text);
        REVERSED_CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            while cache.len() >= REVERSED_CACHE_ENTRIES
                || cache.iter().map(|(t, _)| t.len()).sum::<usize>() + text.len() > REVERSED_CACHE_BYTES
            {
                if cache.pop_front().is_none() {
                    break;
                }
            }
            cache.push_back((text.to_string(), distinct_reversed(&tokens)));
        });
        ArcaTokenStream { tokens, next: 0, none: Token::default() }
    }
}

/// Texts whose reversed tokens one indexing thread keeps for the companion field (see
/// [`REVERSED_CACHE`]); a document has a few dozen texts at most.
const REVERSED_CACHE_ENTRIES: usize = 64;
/// Text bytes [`REVERSED_CACHE`] holds at most (a document's indexed text is at most 2 MiB).
const REVERSED_CACHE_BYTES: usize = 4 * 1024 * 1024;

thread_local! {
    /// The distinct reversed tokens of the texts [`ArcaTokenizer`] cut last on this thread. Tantivy
    /// indexes a document's fields in schema order, so a text field is cut before its reversed-term
    /// companion on the same thread; the companion takes its tokens from here instead of cutting the
    /// same text a second time.
    static REVERSED_CACHE: std::cell::RefCell<std::collections::VecDeque<(String, Vec<Token>)>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
}

/// Each distinct token text once, reversed, at consecutive positions: the companion fields keep doc ids
/// only, so repeats would only cost.
fn distinct_reversed(tokens: &[Token]) -> Vec<Token> {
    let mut texts: Vec<&str> = tokens.iter().map(|t| t.text.as_str()).collect();
    texts.sort_unstable();
    texts.dedup();
    texts
        .into_iter()
        .enumerate()
        .map(|(position, t)| Token { text: reversed(t), position, position_length: 1, ..Token::default() })
        .collect()
}

/// The characters of a text in reverse order.
pub fn reversed(text: &str) -> String {
    text.chars().rev().collect()
}

/// [`ArcaTokenizer`] with every token's characters reversed: feeds the reversed-term companion fields
/// that serve leading-wildcard queries as prefix walks (see [`crate::schema`]).
#[derive(Debug, Clone, Default)]
pub struct ReversedTokenizer;

impl Tokenizer for ReversedTokenizer {
    type TokenStream<'a> = ArcaTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> ArcaTokenStream {
        let cached = REVERSED_CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let at = cache.iter().position(|(t, _)| t == text)?;
            cache.remove(at).map(|(_, tokens)| tokens)
        });
        let tokens = cached.unwrap_or_else(|| distinct_reversed(&tokens(text)));
        ArcaTokenStream { tokens, next: 0, none: Token::default() }
    }
}

impl TokenStream for ArcaTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        self.next.checked_sub(1).and_then(|i| self.tokens.get(i)).unwrap_or(&self.none)
    }

    fn token_mut(&mut self) -> &mut Token {
        match self.next.checked_sub(1) {
            Some(i) if i < self.tokens.len() => &mut self.tokens[i],
            _ => &mut self.none,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::SEPARATORS;

    fn texts(text: &str) -> Vec<(String, usize)> {
        tokens(text).into_iter().map(|t| (t.text, t.position)).collect()
    }

    fn pairs(list: &[(&str, usize)]) -> Vec<(String, usize)> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    fn reversed_texts(text: &str) -> Vec<String> {
        let mut stream = ReversedTokenizer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn the_reversed_companion_cuts_the_same_after_its_text_field_as_alone() {
        let text = "Müller an vorname.nachname@example.com: Müller, 東京都";
        let alone = reversed_texts(text);
        let _ = ArcaTokenizer.token_stream(text);
        let _ = ArcaTokenizer.token_stream("another field of the same document");
        assert_eq!(reversed_texts(text), alone, "taken from the forward cut");
        assert_eq!(alone.iter().filter(|t| *t == "rellüm").count(), 1, "each distinct term once: {alone:?}");
        for t in ["rellum", "moc.elpmaxe@emanhcan.emanrov", "京東", "都京"] {
            assert!(alone.contains(&t.to_string()), "{t} in {alone:?}");
        }
    }

    #[test]
    fn joined_words_are_indexed_as_whole_and_as_parts_at_consecutive_positions() {
        assert_eq!(
            texts("Mail an Vorname.Nachname@Example.com heute"),
            pairs(&[
                ("mail", 0),
                ("an", 1),
                ("vorname.nachname@example.com", 2),
                ("vorname", 2),
                ("nachname", 3),
                ("example", 4),
                ("com", 5),
                ("heute", 6)
            ])
        );
    }

    #[test]
    fn every_separator_joins_parts() {
        for sep in SEPARATORS {
            let text = format!("vorname{sep}nachname");
            let whole = text.to_string();
            assert_eq!(
                texts(&text),
                pairs(&[(whole.as_str(), 0), ("vorname", 0), ("nachname", 1)]),
                "{sep:?}"
            );
        }
    }

    #[test]
    fn diacritics_are_indexed_folded_at_the_same_position() {
        assert_eq!(texts("Grüße Müller"), pairs(&[("grüße", 0), ("gruße", 0), ("müller", 1), ("muller", 1)]));
        // A decomposed ü (u + U+0308) is normalized first.
        assert_eq!(texts("Mu\u{308}ller"), pairs(&[("müller", 0), ("muller", 0)]));
    }

    #[test]
    fn spaceless_scripts_become_bigrams_and_single_characters() {
        assert_eq!(
            texts("私は東京に住んでいます"),
            pairs(&[
                ("私は", 0),
                ("は東", 1),
                ("東京", 2),
                ("京に", 3),
                ("に住", 4),
                ("住ん", 5),
                ("んで", 6),
                ("でい", 7),
                ("いま", 8),
                ("ます", 9)
            ])
        );
        assert_eq!(texts("Windows版 東"), pairs(&[("windows", 0), ("版", 1), ("東", 2)]));
        let q = analyze_query_word("東京都");
        assert_eq!(q.units.iter().map(|u| u.text.as_str()).collect::<Vec<_>>(), vec!["東京", "京都"]);
    }

    #[test]
    fn offsets_point_at_the_original_text() {
        let text = "Re: Müller-Lüdenscheidt";
        for t in tokens(text) {
            let slice = &text[t.offset_from..t.offset_to];
            assert!(slice.to_lowercase() == t.text || fold(&slice.to_lowercase()) == Some(t.text.clone()));
        }
    }

    #[test]
    fn overlong_tokens_are_skipped_but_counted() {
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(texts(&format!("x {long} y")), pairs(&[("x", 0), ("y", 2)]));
    }

    #[test]
    fn query_words_are_cut_like_text() {
        let q = analyze_query_word("Download-Tipp");
        assert_eq!(q.whole.as_deref(), Some("download-tipp"));
        assert_eq!(q.units.iter().map(|u| u.text.as_str()).collect::<Vec<_>>(), vec!["download", "tipp"]);
        assert_eq!(analyze_query_word("MÜLLER").units[0].text, "müller");
    }
}
