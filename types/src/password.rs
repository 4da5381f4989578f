//! The ADM-02 password policy: five rules, each violation reported with a stable code.
//!
//! Character classes follow the Arca decision of ADM-02 for non-ASCII input. No Unicode
//! general-category crate is used; the mapping is:
//! - digits: exactly Unicode `Nd` (table below, Unicode 16.0), so `٣` counts but `²` or `Ⅻ` do not;
//! - upper case: `char::is_uppercase` (Unicode `Uppercase` = `Lu` plus a few `Other_Uppercase`
//!   symbols such as `Ⓐ`), numbers excluded;
//! - lower case: `char::is_lowercase` (`Ll` plus `Other_Lowercase`, e.g. `ª`, `ʰ`), numbers excluded;
//! - fifth class: `char::is_alphabetic` but neither upper nor lower case (`Lo`, `Lt`, most `Lm`,
//!   and combining marks that are `Other_Alphabetic`), numbers excluded;
//! - special: the ASCII punctuation characters `` !"#$%&'()*+,-./:;<=>?\[]@^_`{|}~ `` and the blank.
//!
//! Any other character counts for no class.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Shortest allowed password, in Unicode characters (rule 1).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The product name no password may contain, compared case-insensitively (rule 3).
pub const PRODUCT_NAME: &str = "arca";
/// How many of the five character classes a password must use (rule 5).
pub const MIN_CHARACTER_CLASSES: usize = 3;

/// One failed rule of the password policy, with a stable code (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyViolation {
    /// Rule 1: fewer than 10 characters.
    TooShort,
    /// Rule 2: contains the user name (case-insensitive).
    ContainsUserName,
    /// Rule 3: contains `Arca` in any case.
    ContainsProductName,
    /// Rule 4: the same character three or more times in a row.
    RepeatedCharacter,
    /// Rule 5: characters from fewer than 3 of the 5 classes.
    TooFewCharacterClasses,
}

impl PolicyViolation {
    /// Every violation in rule order.
    pub const ALL: &'static [PolicyViolation] = &[
        PolicyViolation::TooShort,
        PolicyViolation::ContainsUserName,
        PolicyViolation::ContainsProductName,
        PolicyViolation::RepeatedCharacter,
        PolicyViolation::TooFewCharacterClasses,
    ];

    /// The stable code of the rule (ADM-02).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyViolation::TooShort => "tooShort",
            PolicyViolation::ContainsUserName => "containsUserName",
            PolicyViolation::ContainsProductName => "containsProductName",
            PolicyViolation::RepeatedCharacter => "repeatedCharacter",
            PolicyViolation::TooFewCharacterClasses => "tooFewCharacterClasses",
        }
    }

    /// A short human description of the rule that failed.
    pub fn description(self) -> &'static str {
        match self {
            PolicyViolation::TooShort => "it must be at least 10 characters long",
            PolicyViolation::ContainsUserName => "it must not contain the user name",
            PolicyViolation::ContainsProductName => "it must not contain the product name 'Arca' in any case",
            PolicyViolation::RepeatedCharacter => {
                "it must not repeat the same character more than twice in a row"
            }
            PolicyViolation::TooFewCharacterClasses => {
                "it must use at least 3 of: upper-case letters, lower-case letters, digits, \
                 special characters, other letters (e.g. Chinese or Japanese)"
            }
        }
    }
}

impl fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a password against all five ADM-02 rules; the error lists every failed rule in rule order.
pub fn check_password_policy(user_name: &str, password: &str) -> Result<(), Vec<PolicyViolation>> {
    let mut violations = Vec::new();
    if password.chars().count() < MIN_PASSWORD_CHARS {
        violations.push(PolicyViolation::TooShort);
    }
    let lower = password.to_lowercase();
    let user_lower = user_name.to_lowercase();
    if !user_lower.is_empty() && lower.contains(&user_lower) {
        violations.push(PolicyViolation::ContainsUserName);
    }
    if lower.contains(PRODUCT_NAME) {
        violations.push(PolicyViolation::ContainsProductName);
    }
    if has_triple(password) {
        violations.push(PolicyViolation::RepeatedCharacter);
    }
    if character_classes(password) < MIN_CHARACTER_CLASSES {
        violations.push(PolicyViolation::TooFewCharacterClasses);
    }
    if violations.is_empty() { Ok(()) } else { Err(violations) }
}

/// A human sentence naming every failed rule with its code, e.g. for an API error message.
pub fn describe_violations(violations: &[PolicyViolation]) -> String {
    if violations.is_empty() {
        return "The password meets the password policy.".to_string();
    }
    let parts: Vec<String> =
        violations.iter().map(|v| format!("{} ({})", v.description(), v.as_str())).collect();
    format!("The password does not meet the password policy: {}.", parts.join("; "))
}

/// True when the same character occurs three or more times in a row (exact, case-sensitive).
fn has_triple(password: &str) -> bool {
    let chars: Vec<char> = password.chars().collect();
    chars.windows(3).any(|w| w[0] == w[1] && w[1] == w[2])
}

/// The character class of one character (rule 5), or `None` when it counts for no class.
fn class_of(c: char) -> Option<usize> {
    if is_decimal_digit(c) {
        Some(2)
    } else if c == ' ' || c.is_ascii_punctuation() {
        Some(3)
    } else if c.is_numeric() {
        // `Nl` (e.g. Roman numerals) and `No` are alphabetic or cased in places; they count for nothing.
        None
    } else if c.is_uppercase() {
        Some(0)
    } else if c.is_lowercase() {
        Some(1)
    } else if c.is_alphabetic() {
        Some(4)
    } else {
        None
    }
}

/// How many of the five classes the password uses.
fn character_classes(password: &str) -> usize {
    let mut seen = [false; 5];
    for class in password.chars().filter_map(class_of) {
        seen[class] = true;
    }
    seen.iter().filter(|s| **s).count()
}

/// True for Unicode general category `Nd` (decimal digits).
fn is_decimal_digit(c: char) -> bool {
    let cp = u32::from(c);
    DECIMAL_NUMBER.iter().any(|&(lo, hi)| lo <= cp && cp <= hi)
}

/// Unicode 16.0 `Nd` ranges (from ucd-generate general-category --include decimalnumber).
const DECIMAL_NUMBER: &[(u32, u32)] = &[
    (0x0030, 0x0039),
    (0x0660, 0x0669),
    (0x06F0, 0x06F9),
    (0x07C0, 0x07C9),
    (0x0966, 0x096F),
    (0x09E6, 0x09EF),
    (0x0A66, 0x0A6F),
    (0x0AE6, 0x0AEF),
    (0x0B66, 0x0B6F),
    (0x0BE6, 0x0BEF),
    (0x0C66, 0x0C6F),
    (0x0CE6, 0x0CEF),
    (0x0D66, 0x0D6F),
    (0x0DE6, 0x0DEF),
    (0x0E50, 0x0E59),
    (0x0ED0, 0x0ED9),
    (0x0F20, 0x0F29),
    (0x1040, 0x1049),
    (0x1090, 0x1099),
    (0x17E0, 0x17E9),
    (0x1810, 0x1819),
    (0x1946, 0x194F),
    (0x19D0, 0x19D9),
    (0x1A80, 0x1A89),
    (0x1A90, 0x1A99),
    (0x1B50, 0x1B59),
    (0x1BB0, 0x1BB9),
    (0x1C40, 0x1C49),
    (0x1C50, 0x1C59),
    (0xA620, 0xA629),
    (0xA8D0, 0xA8D9),
    (0xA900, 0xA909),
    (0xA9D0, 0xA9D9),
    (0xA9F0, 0xA9F9),
    (0xAA50, 0xAA59),
    (0xABF0, 0xABF9),
    (0xFF10, 0xFF19),
    (0x104A0, 0x104A9),
    (0x10D30, 0x10D39),
    (0x10D40, 0x10D49),
    (0x11066, 0x1106F),
    (0x110F0, 0x110F9),
    (0x11136, 0x1113F),
    (0x111D0, 0x111D9),
    (0x112F0, 0x112F9),
    (0x11450, 0x11459),
    (0x114D0, 0x114D9),
    (0x11650, 0x11659),
    (0x116C0, 0x116C9),
    (0x116D0, 0x116E3),
    (0x11730, 0x11739),
    (0x118E0, 0x118E9),
    (0x11950, 0x11959),
    (0x11BF0, 0x11BF9),
    (0x11C50, 0x11C59),
    (0x11D50, 0x11D59),
    (0x11DA0, 0x11DA9),
    (0x11F50, 0x11F59),
    (0x16130, 0x16139),
    (0x16A60, 0x16A69),
    (0x16AC0, 0x16AC9),
    (0x16B50, 0x16B59),
    (0x16D70, 0x16D79),
    (0x1CCF0, 0x1CCF9),
    (0x1D7CE, 0x1D7FF),
    (0x1E140, 0x1E149),
    (0x1E2F0, 0x1E2F9),
    (0x1E4F0, 0x1E4F9),
    (0x1E5F1, 0x1E5FA),
    (0x1E950, 0x1E959),
    (0x1FBF0, 0x1FBF9),
];

#[cfg(test)]
mod tests {
    use super::*;
    use PolicyViolation::*;

    fn check(user: &str, password: &str) -> Vec<PolicyViolation> {
        check_password_policy(user, password).err().unwrap_or_default()
    }

    #[test]
    fn manual_examples_that_are_valid() {
        assert_eq!(check("bob", "Sommer2024!x"), vec![]);
        assert_eq!(check("bob", "密码密码abcd12"), vec![]);
    }

    #[test]
    fn one_class_is_refused() {
        assert_eq!(check("bob", "abcdefghij"), vec![TooFewCharacterClasses]);
    }

    #[test]
    fn three_in_a_row_is_refused_two_are_allowed() {
        assert_eq!(check("bob", "Kaaa-2024xy"), vec![RepeatedCharacter]);
        assert_eq!(check("bob", "Kaa-2024xyz"), vec![]);
        assert_eq!(check("bob", "KaAa-2024xy"), vec![], "aAa is not a repetition");
        assert_eq!(check("bob", "Kx-2024!!!y"), vec![RepeatedCharacter]);
        assert_eq!(check("bob", "Kx-2024密密密"), vec![RepeatedCharacter]);
    }

    #[test]
    fn product_name_is_refused_in_any_case() {
        assert_eq!(check("bob", "Myarca-2024"), vec![ContainsProductName]);
        for password in ["aRcA-2024-Xy", "ARCA-2024-xy", "xarcay-2024-Q"] {
            assert_eq!(check("bob", password), vec![ContainsProductName], "{password}");
        }
    }

    #[test]
    fn too_short_counts_characters_not_bytes() {
        assert_eq!(check("bob", "Short1!"), vec![TooShort]);
        assert_eq!(check("bob", "Ää1!Ää1!Ä"), vec![TooShort], "9 characters, 18 bytes");
        assert_eq!(check("bob", "Ää1!Ää1!Äx"), vec![]);
    }

    #[test]
    fn user_name_is_refused_case_insensitively() {
        assert_eq!(check("Max", "1-maxwell-2X"), vec![ContainsUserName]);
        assert_eq!(check("max", "1-MAXWELL-2x"), vec![ContainsUserName]);
        assert_eq!(check("Jürgen", "1-JÜRGEN-2x"), vec![ContainsUserName]);
        assert_eq!(check("Max Mustermann", "Max-2024-ok!"), vec![], "only the whole name counts");
        assert_eq!(check("", "Sommer2024!x"), vec![], "an empty user name is never contained");
    }

    #[test]
    fn every_failed_rule_is_listed_in_rule_order() {
        assert_eq!(
            check("arca", "arcaaa"),
            vec![TooShort, ContainsUserName, ContainsProductName, RepeatedCharacter, TooFewCharacterClasses]
        );
    }

    #[test]
    fn non_ascii_characters_map_to_classes() {
        // Lu + Ll + digits.
        assert_eq!(check("bob", "ÄÖÜßäöü٣٤٥"), vec![]);
        // Lo (fifth class) + digits only: two classes.
        assert_eq!(check("bob", "密码密码密码1234"), vec![TooFewCharacterClasses]);
        // Superscripts and Roman numerals are no digits; emoji count for nothing.
        assert_eq!(check("bob", "abcdefg²Ⅻ😀"), vec![TooFewCharacterClasses]);
        // The blank is a special character.
        assert_eq!(check("bob", "abc def ghi 1"), vec![]);
        // Titlecase (Lt) is the fifth class.
        assert_eq!(check("bob", "ǅabcdefghi1"), vec![]);
    }

    #[test]
    fn all_ascii_special_characters_count() {
        for c in "!\"#$%&'()*+,-./:;<=>?\\[]@^_`{|}~ ".chars() {
            assert_eq!(class_of(c), Some(3), "{c:?}");
        }
        assert_eq!(class_of('§'), None);
        assert_eq!(class_of('€'), None);
    }

    #[test]
    fn codes_and_description_are_stable() {
        let codes: Vec<&str> = PolicyViolation::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(
            codes,
            [
                "tooShort",
                "containsUserName",
                "containsProductName",
                "repeatedCharacter",
                "tooFewCharacterClasses"
            ]
        );
        let text = describe_violations(&[TooShort, TooFewCharacterClasses]);
        assert!(text.contains("(tooShort)") && text.contains("(tooFewCharacterClasses)"), "{text}");
        assert!(!text.contains("containsUserName"));
        assert_eq!(serde_json::to_string(&RepeatedCharacter).ok().as_deref(), Some("\"repeatedCharacter\""));
    }
}
