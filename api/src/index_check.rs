//! Checking a store's full-text index against its manifest (`VerifyStore includeIndexes=true`).

/// What checking a store's index against its manifest found (`VerifyStore includeIndexes=true`):
/// every committed message must be indexed exactly once, and nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexCheck {
    /// Searchable documents in the index.
    pub documents: u64,
    /// Message numbers the manifest lists but the index does not.
    pub missing: Vec<u64>,
    /// Message numbers indexed more than once.
    pub duplicated: Vec<u64>,
    /// Numbers in the index that the manifest does not list.
    pub unknown: Vec<u64>,
    /// Why the index could not be read at all, if so.
    pub unusable: Option<String>,
}

impl IndexCheck {
    /// Compares the manifest's message numbers with the index's (sorted, repeated when indexed twice).
    pub fn compare(mut listed: Vec<u64>, indexed: &[u64], unusable: Option<String>) -> IndexCheck {
        listed.sort_unstable();
        let mut check = IndexCheck { documents: indexed.len() as u64, unusable, ..IndexCheck::default() };
        let (mut i, mut j) = (0, 0);
        loop {
            match (listed.get(i), indexed.get(j)) {
                (Some(a), Some(b)) if a == b => {
                    let mut k = j + 1;
                    while indexed.get(k) == Some(b) {
                        k += 1;
                    }
                    if k - j > 1 {
                        check.duplicated.push(*b);
                    }
                    i += 1;
                    j = k;
                }
                (Some(a), Some(b)) if a < b => {
                    check.missing.push(*a);
                    i += 1;
                }
                (Some(a), None) => {
                    check.missing.push(*a);
                    i += 1;
                }
                (_, Some(b)) => {
                    if check.unknown.last() != Some(b) {
                        check.unknown.push(*b);
                    }
                    j += 1;
                }
                (None, None) => break,
            }
        }
        check
    }

    /// True when every listed message is indexed exactly once and nothing else is.
    pub fn is_intact(&self) -> bool {
        self.unusable.is_none()
            && self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.unknown.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::IndexCheck;

    #[test]
    fn an_index_check_names_missing_doubled_and_unknown_messages() {
        let check = IndexCheck::compare(vec![3, 1, 2, 5], &[1, 2, 2, 4, 5, 7, 7], None);
        assert_eq!((check.missing, check.duplicated, check.unknown), (vec![3], vec![2], vec![4, 7]));
        assert_eq!(check.documents, 7);
        assert!(IndexCheck::compare(vec![2, 1], &[1, 2], None).is_intact());
        assert!(!IndexCheck::compare(vec![], &[], Some("gone".into())).is_intact());
    }
}
