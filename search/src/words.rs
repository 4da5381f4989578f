//! The SRCH-02 character classes, shared by the index tokenizer and the query parser and compiler.
//!
//! - **Word characters**: every character for which `char::is_alphanumeric` holds (Unicode letters and
//!   digits of any script).
//! - **Separators** join word characters into one word that is found as a whole and by each of its parts:
//!   exactly `.` `,` `;` `-` `_` `@` `/` `\` and NUL (U+0000). See [`SEPARATORS`].
//! - **Everything else ends a word**: whitespace and line breaks, every other control character, and every
//!   other non-alphanumeric character. In particular `+` ends a word (`C++` is the word `c`), `'` ends a
//!   word (`O'Neil` and `O’Neil` are the words `o` and `neil`, next to each other, so the query `o'neil`
//!   finds them as a phrase), and `:` ends a word (`10:30` is `10` and `30`; in a query a `:` after a
//!   known field name is a field prefix, anywhere else it ends a word).
//! - A word neither starts nor ends with a separator: separators at its ends are trimmed (`-foo.` is
//!   `foo`), and a run of separators alone is no word.
//!
//! Combining marks (U+0300 …) are not alphanumeric: text must be NFC-normalized before it is split.

/// The characters that join the parts of a word (SRCH-02), exactly.
pub const SEPARATORS: [char; 9] = ['.', ',', ';', '-', '_', '@', '/', '\\', '\0'];

/// True for the SRCH-02 joining separators.
pub fn is_separator(c: char) -> bool {
    SEPARATORS.contains(&c)
}

/// True for word characters: Unicode letters and digits.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// The words of a text, in order, as typed (not lower-cased): maximal runs of word characters and
/// separators, with separators trimmed from both ends; runs without a word character are dropped.
pub fn split_words(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if is_word_char(c) || is_separator(c) {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            push_trimmed(&mut words, &text[s..i]);
        }
    }
    if let Some(s) = start {
        push_trimmed(&mut words, &text[s..]);
    }
    words
}

fn push_trimmed<'a>(words: &mut Vec<&'a str>, run: &'a str) {
    let word = run.trim_matches(is_separator);
    if !word.is_empty() {
        words.push(word);
    }
}

/// The parts of a word: the pieces between separators, empty pieces dropped
/// (`vorname.nachname@example.com` → `vorname`, `nachname`, `example`, `com`).
pub fn split_parts(word: &str) -> Vec<&str> {
    word.split(is_separator).filter(|p| !p.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_separator_joins_parts_into_one_word() {
        for sep in SEPARATORS {
            let text = format!("x vorname{sep}nachname y");
            let word = format!("vorname{sep}nachname");
            assert_eq!(split_words(&text), vec!["x", word.as_str(), "y"], "{sep:?}");
            assert_eq!(split_parts(&word), vec!["vorname", "nachname"], "{sep:?}");
        }
        assert_eq!(
            split_parts("vorname.nachname@example.com"),
            vec!["vorname", "nachname", "example", "com"]
        );
        assert_eq!(split_parts("a--b"), vec!["a", "b"]);
    }

    #[test]
    fn plus_apostrophe_colon_and_blanks_end_words() {
        assert_eq!(split_words("C++ O'Neil O’Neil 10:30"), vec!["C", "O", "Neil", "O", "Neil", "10", "30"]);
        assert_eq!(split_words("a\tb\r\nc\u{1}d e\u{a0}f"), vec!["a", "b", "c", "d", "e", "f"]);
        assert_eq!(split_words("(Hinweis!) \"zitat\" x=y"), vec!["Hinweis", "zitat", "x", "y"]);
    }

    #[test]
    fn separators_at_word_ends_are_trimmed() {
        assert_eq!(split_words("Ende. -foo_ --- ,bar; ..."), vec!["Ende", "foo", "bar"]);
        assert_eq!(split_words("vorname.nachname@example.com."), vec!["vorname.nachname@example.com"]);
    }

    #[test]
    fn letters_and_digits_of_any_script_are_word_characters() {
        assert_eq!(
            split_words("Müller straße ΑΘΗΝΑ 東京 ١٢٣"),
            vec!["Müller", "straße", "ΑΘΗΝΑ", "東京", "١٢٣"]
        );
    }

    /// Property test (`prop_*`): the words of any text are non-empty pieces of it, never starting or
    /// ending with a separator, and their parts hold no separator.
    mod prop {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn prop_words_are_trimmed_pieces_of_the_text(text in any::<String>()) {
                for word in split_words(&text) {
                    prop_assert!(!word.is_empty());
                    prop_assert!(text.contains(word));
                    prop_assert!(!word.starts_with(is_separator) && !word.ends_with(is_separator), "{word:?}");
                    for part in split_parts(word) {
                        prop_assert!(!part.is_empty() && !part.contains(is_separator), "{part:?}");
                    }
                }
            }
        }
    }
}
