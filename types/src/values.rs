//! The API value sets of `REQUIREMENTS.md` (user and folder privileges, authentication, store states),
//! with the exact spellings the Administration API uses and parsers that name the offending value.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::MetaError;

/// A global user privilege (ADM-03).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Privilege {
    None,
    Admin,
    Login,
    ChangePassword,
    Archive,
    ModifyArchiveProfiles,
    Export,
    ModifyExportProfiles,
    Delete,
}

/// A privilege of a user on one archive (ADM-04).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FolderPrivilege {
    None,
    Read,
    Write,
    Delete,
}

/// How a user's login is checked (ADM-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Authentication {
    #[default]
    Integrated,
    DirectoryServices,
}

/// Whether a tenant's users may log in (CLU-04): a disabled tenant is refused on every route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TenantState {
    #[default]
    Enabled,
    Disabled,
}

/// The requested state of an archive store (shard), STO-03.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ShardState {
    Current,
    #[default]
    Normal,
    WriteProtected,
    Disabled,
}

macro_rules! names {
    ($ty:ty { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every value in the order of the manual.
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),*];
            /// The exact API spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $name),* }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(<$ty>::$variant),)*
                    _ => Err(format!(
                        "unknown value '{}' (expected one of: {})",
                        s,
                        [$($name),*].join(", ")
                    )),
                }
            }
        }
    };
}

names!(Privilege {
    None => "none", Admin => "admin", Login => "login", ChangePassword => "changePassword",
    Archive => "archive", ModifyArchiveProfiles => "modifyArchiveProfiles", Export => "export",
    ModifyExportProfiles => "modifyExportProfiles", Delete => "delete",
});
names!(FolderPrivilege { None => "none", Read => "read", Write => "write", Delete => "delete" });
names!(Authentication { Integrated => "integrated", DirectoryServices => "directoryServices" });
names!(TenantState { Enabled => "enabled", Disabled => "disabled" });
names!(ShardState {
    Current => "current", Normal => "normal", WriteProtected => "writeProtected", Disabled => "disabled",
});

/// Parses a comma-separated list (blanks around commas ignored, duplicates ignored) and enforces that
/// `none` (and, for user privileges, `admin`) stands alone. `field` names the API argument in errors.
fn parse_list<T: FromStr<Err = String> + Ord + Copy + fmt::Display>(
    field: &str,
    text: &str,
    exclusive: &[T],
) -> Result<BTreeSet<T>, MetaError> {
    let mut set = BTreeSet::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(MetaError::invalid(field, "empty value in the comma-separated list"));
        }
        set.insert(part.parse::<T>().map_err(|e| MetaError::invalid(field, e))?);
    }
    for only in exclusive {
        if set.contains(only) && set.len() > 1 {
            return Err(MetaError::invalid(field, format!("'{only}' must be the only value")));
        }
    }
    Ok(set)
}

/// Parses the `privileges` argument of `CreateUser` / `SetUserPrivileges`. `none` yields an empty set.
pub fn parse_privileges(field: &str, text: &str) -> Result<BTreeSet<Privilege>, MetaError> {
    let mut set = parse_list(field, text, &[Privilege::None, Privilege::Admin])?;
    set.remove(&Privilege::None);
    Ok(set)
}

/// Parses the `privileges` argument of `SetUserPrivilegesOnFolder`. `none` yields an empty set.
pub fn parse_folder_privileges(field: &str, text: &str) -> Result<BTreeSet<FolderPrivilege>, MetaError> {
    let mut set = parse_list(field, text, &[FolderPrivilege::None])?;
    set.remove(&FolderPrivilege::None);
    Ok(set)
}

/// Splits a comma-separated list of free-text values (e-mail addresses, POP3 names), dropping blanks.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_lists_ignore_blanks_and_duplicates() {
        let set = parse_privileges("privileges", "login, archive,login").expect("valid");
        assert_eq!(set.into_iter().collect::<Vec<_>>(), vec![Privilege::Login, Privilege::Archive]);
        assert!(parse_privileges("privileges", "none").expect("valid").is_empty());
    }

    #[test]
    fn unknown_or_combined_exclusive_values_name_the_field() {
        let err = parse_privileges("privileges", "login,flying").unwrap_err().to_string();
        assert!(err.contains("'privileges'") && err.contains("flying"), "{err}");
        assert!(parse_privileges("privileges", "admin,login").is_err());
        assert!(parse_folder_privileges("privileges", "none,read").is_err());
        assert!(parse_privileges("privileges", "Login").is_err(), "values are case-sensitive");
    }

    #[test]
    fn folder_privileges_accept_spaces() {
        let set = parse_folder_privileges("privileges", "read, write").expect("valid");
        assert_eq!(set.len(), 2);
    }
}
