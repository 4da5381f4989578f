//! How a request picks its tenant (CLU-04). The login name of HTTP Basic credentials is `tenant/user`
//! (`acme/alice`), or a bare `user` with the header `X-Arca-Tenant: acme`; a bare `user` without the
//! header means the cluster operator tenant `default`, so single-tenant installations log in as before.
//!
//! `/` separates because user names cannot contain it (ADM-01: it is the folder path separator) and
//! tenant names hold only `a-z`, `0-9` and `-`; `@` could not, since user names may be e-mail
//! addresses (`alice@example.com`). The split is at the first `/`; whatever follows is the user name.

use arca_types::MetaError;
use arca_types::names::validate_tenant_name;
use arca_types::records::DEFAULT_TENANT;

/// The header that names the tenant of a request whose login name is a bare user name.
pub const TENANT_HEADER: &str = "x-arca-tenant";

/// A login name split into its tenant and user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginName<'a> {
    /// The tenant, lower-cased (tenant names are lower-case; the lookup is case-insensitive anyway).
    pub tenant: String,
    /// The user name within the tenant, as given.
    pub user: &'a str,
}

/// Why a login name (with the tenant header) names no user of any tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginNameError {
    /// The part before `/`, or the header, is not a valid tenant name.
    #[error("the tenant of the login name is not a valid tenant name ({0})")]
    Tenant(MetaError),
    /// Nothing follows the `/`.
    #[error("the login name 'tenant/user' has no user name after '/'")]
    EmptyUser,
    /// The login name and the header name different tenants.
    #[error("the login name names tenant '{login}' but the X-Arca-Tenant header names '{header}'")]
    Conflict { login: String, header: String },
}

/// Splits `login` (the user-id of HTTP Basic credentials) into tenant and user; `header` is the
/// `X-Arca-Tenant` header's value, if any.
pub fn parse<'a>(login: &'a str, header: Option<&str>) -> Result<LoginName<'a>, LoginNameError> {
    let header = match header.map(str::trim) {
        Some(h) => Some(checked_tenant("X-Arca-Tenant", h)?),
        None => None,
    };
    match login.split_once('/') {
        Some((tenant, user)) => {
            let tenant = checked_tenant("tenant", tenant)?;
            if user.is_empty() {
                return Err(LoginNameError::EmptyUser);
            }
            if let Some(header) = header
                && header != tenant
            {
                return Err(LoginNameError::Conflict { login: tenant, header });
            }
            Ok(LoginName { tenant, user })
        }
        None => Ok(LoginName { tenant: header.unwrap_or_else(|| DEFAULT_TENANT.to_string()), user: login }),
    }
}

/// The tenant name lower-cased (ASCII) and checked against the tenant name rule.
fn checked_tenant(field: &str, text: &str) -> Result<String, LoginNameError> {
    let lower = text.to_ascii_lowercase();
    validate_tenant_name(field, &lower).map_err(LoginNameError::Tenant)?;
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bare_names_mean_the_operator_tenant_and_slash_names_their_tenant() {
        assert_eq!(parse("alice", None), Ok(LoginName { tenant: "default".into(), user: "alice" }));
        assert_eq!(parse("acme/alice", None), Ok(LoginName { tenant: "acme".into(), user: "alice" }));
        assert_eq!(parse("ACME/alice", None), Ok(LoginName { tenant: "acme".into(), user: "alice" }));
        assert_eq!(
            parse("alice@example.com", None),
            Ok(LoginName { tenant: "default".into(), user: "alice@example.com" }),
            "'@' belongs to the user name"
        );
        assert_eq!(parse("alice", Some("acme")), Ok(LoginName { tenant: "acme".into(), user: "alice" }));
        assert_eq!(parse("acme/alice", Some("acme")), Ok(LoginName { tenant: "acme".into(), user: "alice" }));
    }

    #[test]
    fn malformed_login_names_are_refused_naming_why() {
        assert_eq!(parse("acme/", None), Err(LoginNameError::EmptyUser));
        assert!(matches!(parse("/alice", None), Err(LoginNameError::Tenant(_))));
        assert!(matches!(parse("ac me/alice", None), Err(LoginNameError::Tenant(_))));
        assert!(matches!(parse("alice", Some("a/b")), Err(LoginNameError::Tenant(_))));
        assert!(matches!(parse("alice", Some("")), Err(LoginNameError::Tenant(_))));
        assert_eq!(
            parse("beta/alice", Some("acme")),
            Err(LoginNameError::Conflict { login: "beta".into(), header: "acme".into() })
        );
        // A second '/' stays in the user name, which no user can have: it names nobody.
        assert_eq!(parse("acme/a/b", None), Ok(LoginName { tenant: "acme".into(), user: "a/b" }));
    }

    fn tenant_name() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
    }

    proptest! {
        #[test]
        fn any_input_parses_or_is_refused_without_panicking(login in any::<String>(), header in proptest::option::of(any::<String>())) {
            match parse(&login, header.as_deref()) {
                Ok(name) => {
                    prop_assert!(validate_tenant_name("t", &name.tenant).is_ok());
                    prop_assert!(login.ends_with(name.user));
                    prop_assert!(!name.user.is_empty() || login.is_empty());
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn tenant_and_user_round_trip(tenant in tenant_name(), user in "[^/]{1,40}") {
            let login = format!("{tenant}/{user}");
            let parsed = parse(&login, None).expect("valid");
            prop_assert_eq!(parsed.tenant, tenant.clone());
            prop_assert_eq!(parsed.user, user.as_str());
            let by_header = parse(&user, Some(&tenant)).expect("valid");
            prop_assert_eq!(by_header.tenant, tenant);
            prop_assert_eq!(by_header.user, user.as_str());
        }

        #[test]
        fn a_name_without_slash_never_leaves_the_operator_tenant(user in "[^/]{0,40}") {
            let parsed = parse(&user, None).expect("no tenant part");
            prop_assert_eq!(parsed.tenant, DEFAULT_TENANT);
            prop_assert_eq!(parsed.user, user.as_str());
        }

        #[test]
        fn hostile_tenant_parts_are_refused(tenant in "[^a-zA-Z0-9-]{1,8}", user in "[a-z]{1,8}") {
            let login = format!("{tenant}/{user}");
            if !tenant.contains('/') {
                prop_assert!(matches!(parse(&login, None), Err(LoginNameError::Tenant(_))));
            }
        }
    }
}
