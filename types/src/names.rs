//! Validation of names that travel in metadata commands: user names (ADM-01), tenant and store names,
//! and `/`-separated folder paths (ACC-01). Every error names the API argument at fault.

use crate::MetaError;

/// Longest user name, in Unicode characters (ADM-01).
pub const MAX_USER_NAME_CHARS: usize = 128;
/// Longest folder path segment, in Unicode characters.
pub const MAX_FOLDER_SEGMENT_CHARS: usize = 255;
/// Deepest folder path, in segments, the archive's top-level folder included (`alice/Inbox/Sub` = 3).
/// A cluster-wide constant (Raft applies the check, so every node must agree): documented in the README.
pub const MAX_FOLDER_DEPTH: usize = 32;
/// Longest folder path, in Unicode characters, the archive's top-level folder included. Cluster-wide.
pub const MAX_FOLDER_PATH_CHARS: usize = 1024;
/// Most folders one archive's tree may hold (below its top-level folder). Cluster-wide: it bounds the
/// Raft state, every snapshot and the answer of the folder listing.
pub const MAX_FOLDERS_PER_ARCHIVE: usize = 10_000;
/// Most folders one folder listing (`GetChildFolders`) answers; a larger listing is refused naming it.
pub const MAX_FOLDER_LISTING: usize = 10_000;

/// Longest tenant name, in characters (a DNS label's length).
pub const MAX_TENANT_NAME_CHARS: usize = 63;

/// Checks the tenant name rule (CLU-04): 1–63 characters of lower-case ASCII letters, digits and `-`,
/// starting and ending with a letter or digit (a DNS label). Tenant names appear in object keys
/// (`tenants/<tenant>/shards/...`) and before the `/` of a login name (`acme/alice`), so they can hold
/// neither `/` nor anything an object store or a log line would need to escape. `field` names the
/// API argument in the error.
pub fn validate_tenant_name(field: &str, name: &str) -> Result<(), MetaError> {
    if name.is_empty() {
        return Err(MetaError::invalid(field, "must not be empty"));
    }
    if name.len() > MAX_TENANT_NAME_CHARS {
        return Err(MetaError::invalid(
            field,
            format!(
                "is {} characters long; at most {MAX_TENANT_NAME_CHARS} are allowed",
                name.chars().count()
            ),
        ));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !name.chars().all(allowed) {
        return Err(MetaError::invalid(
            field,
            "may hold only lower-case letters a-z, digits and '-' (tenant names appear in object keys and login names)",
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(MetaError::invalid(field, "must start and end with a letter or digit"));
    }
    Ok(())
}

/// Checks the ADM-01 user name rules: 1–128 characters, no control characters, no `/`,
/// no leading or trailing blanks. `field` names the API argument in the error.
pub fn validate_user_name(field: &str, name: &str) -> Result<(), MetaError> {
    let count = name.chars().count();
    if count == 0 {
        return Err(MetaError::invalid(field, "must not be empty"));
    }
    if count > MAX_USER_NAME_CHARS {
        return Err(MetaError::invalid(
            field,
            format!("is {count} characters long; at most {MAX_USER_NAME_CHARS} are allowed"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(MetaError::invalid(field, "must not contain control characters"));
    }
    if name.contains('/') {
        return Err(MetaError::invalid(field, "must not contain '/' (the folder path separator)"));
    }
    if has_outer_blanks(name) {
        return Err(MetaError::invalid(field, "must not start or end with a blank"));
    }
    Ok(())
}

/// The one rule for valid folder paths, applied before anything is stored (Raft commands, archiving,
/// uploads): a `/`-separated path with no empty segments, no control characters, no U+FFFD (the mark
/// of a name that was not valid UTF-8), at most [`MAX_FOLDER_DEPTH`] segments and
/// [`MAX_FOLDER_PATH_CHARS`] characters, each segment 1–255 characters without leading or trailing
/// blanks, and no `.` or `..` segments. `field` names the API argument in the error.
pub fn validate_folder_name(field: &str, path: &str) -> Result<(), MetaError> {
    if path.is_empty() {
        return Err(MetaError::invalid(field, "must not be empty"));
    }
    let chars = path.chars().count();
    if chars > MAX_FOLDER_PATH_CHARS {
        return Err(MetaError::invalid(
            field,
            format!(
                "folder path is {chars} characters long; at most {MAX_FOLDER_PATH_CHARS} are allowed (MAX_FOLDER_PATH_CHARS)"
            ),
        ));
    }
    let depth = path.split('/').count();
    if depth > MAX_FOLDER_DEPTH {
        return Err(MetaError::invalid(
            field,
            format!(
                "folder path is {depth} levels deep; at most {MAX_FOLDER_DEPTH} are allowed (MAX_FOLDER_DEPTH)"
            ),
        ));
    }
    if path.chars().any(char::is_control) {
        return Err(MetaError::invalid(field, "must not contain control characters"));
    }
    if path.contains(char::REPLACEMENT_CHARACTER) {
        return Err(MetaError::invalid(
            field,
            "contains U+FFFD: the folder name was not valid UTF-8 (decoded lossily)",
        ));
    }
    for segment in path.split('/') {
        if segment.is_empty() {
            return Err(MetaError::invalid(
                field,
                format!("'{path}' has an empty folder name (leading, trailing or doubled '/')"),
            ));
        }
        let count = segment.chars().count();
        if count > MAX_FOLDER_SEGMENT_CHARS {
            return Err(MetaError::invalid(
                field,
                format!(
                    "folder name is {count} characters long; at most {MAX_FOLDER_SEGMENT_CHARS} are allowed"
                ),
            ));
        }
        if segment == "." || segment == ".." {
            return Err(MetaError::invalid(field, format!("folder name '{segment}' is not allowed")));
        }
        if has_outer_blanks(segment) {
            return Err(MetaError::invalid(
                field,
                format!("folder name '{segment}' must not start or end with a blank"),
            ));
        }
    }
    Ok(())
}

/// True when the text starts or ends with white space.
fn has_outer_blanks(text: &str) -> bool {
    text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(err: MetaError) -> String {
        match err {
            MetaError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn user_names_accept_free_text() {
        for name in ["Max Mustermann", "a", "Jürgen Groß", "密码", "o'brien@example.com", &"x".repeat(128)]
        {
            assert!(validate_user_name("userName", name).is_ok(), "{name}");
        }
    }

    #[test]
    fn user_name_violations_name_the_field() {
        let too_long = "x".repeat(129);
        for name in ["", too_long.as_str(), "a/b", " lead", "trail ", "tab\there", "nl\n", "\u{7f}"] {
            let err = validate_user_name("newUserName", name).expect_err(name);
            assert_eq!(field_of(err), "newUserName", "{name:?}");
        }
    }

    #[test]
    fn tenant_names_are_dns_labels() {
        for name in ["default", "acme", "a", "team-42", &"x".repeat(63)] {
            assert!(validate_tenant_name("name", name).is_ok(), "{name}");
        }
        let too_long = "x".repeat(64);
        for name in ["", "Acme", "a/b", "a b", "-a", "a-", "a.b", "ä", "a@b", too_long.as_str(), "a\n"] {
            assert_eq!(field_of(validate_tenant_name("name", name).expect_err(name)), "name", "{name:?}");
        }
    }

    #[test]
    fn user_name_length_counts_characters_not_bytes() {
        assert!(validate_user_name("userName", &"ä".repeat(128)).is_ok());
        assert!(validate_user_name("userName", &"ä".repeat(129)).is_err());
    }

    #[test]
    fn folder_paths_accept_nested_names() {
        for path in ["bob", "bob/Inbox", "Max Mustermann/Inbox/Project X", "a/b c/d", &"y".repeat(255)] {
            assert!(validate_folder_name("folder", path).is_ok(), "{path}");
        }
    }

    #[test]
    fn folder_path_violations_name_the_field() {
        let too_long = format!("bob/{}", "y".repeat(256));
        for path in [
            "",
            "/bob",
            "bob/",
            "bob//Inbox",
            "bob/./Inbox",
            "bob/..",
            "bob/ Inbox",
            "bob/Inbox ",
            "bob/In\u{0}box",
            too_long.as_str(),
        ] {
            let err = validate_folder_name("toFolder", path).expect_err(path);
            assert_eq!(field_of(err), "toFolder", "{path:?}");
        }
    }

    #[test]
    fn folder_paths_are_bounded_in_depth_and_length_and_refuse_lossy_names() {
        let deepest = vec!["a"; MAX_FOLDER_DEPTH].join("/");
        assert!(validate_folder_name("folder", &deepest).is_ok());
        let too_deep = vec!["a"; MAX_FOLDER_DEPTH + 1].join("/");
        let err = validate_folder_name("folder", &too_deep).expect_err("too deep");
        assert!(err.to_string().contains("MAX_FOLDER_DEPTH"), "{err}");
        let long = vec!["y".repeat(200); 6].join("/");
        let err = validate_folder_name("folder", &long).expect_err("too long");
        assert!(err.to_string().contains("MAX_FOLDER_PATH_CHARS"), "{err}");
        let huge = "a/".repeat(15_000) + "a";
        assert!(validate_folder_name("folder", &huge).is_err());
        let lossy = String::from_utf8_lossy(b"bob/caf\xe9").into_owned();
        let err = validate_folder_name("folder", &lossy).expect_err("lossy");
        assert!(err.to_string().contains("U+FFFD"), "{err}");
    }
}
