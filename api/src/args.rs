//! Arguments of an API call: a url-encoded body checked against the function's catalogue entry.
//! Unknown, repeated, missing, malformed or over-long arguments are errors that name the argument.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::catalogue::{ArgType, FunctionSpec};

/// Why the arguments of a call were refused; the message names the argument.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgError {
    #[error("the request body is not valid application/x-www-form-urlencoded UTF-8: {0}")]
    Body(String),
    #[error("unknown argument '{name}' for {function}{hint}")]
    Unknown { function: String, name: String, hint: String },
    #[error("argument '{0}' is given more than once")]
    Repeated(String),
    #[error("missing mandatory argument '{0}'")]
    Missing(String),
    #[error("argument '{name}' must be {expected}, not '{value}'")]
    Malformed { name: String, expected: &'static str, value: String },
    #[error(
        "argument '{name}' has {bytes} bytes; at most {limit} are allowed (setting api.max_argument_bytes)"
    )]
    TooLong { name: String, bytes: usize, limit: u64 },
}

impl ArgError {
    /// The argument the error is about; `None` only when the body as a whole is unreadable.
    pub fn field(&self) -> Option<&str> {
        match self {
            ArgError::Body(_) => None,
            ArgError::Unknown { name, .. }
            | ArgError::Malformed { name, .. }
            | ArgError::TooLong { name, .. }
            | ArgError::Repeated(name)
            | ArgError::Missing(name) => Some(name),
        }
    }
}

/// The parsed, typed arguments of one call. Empty optional arguments count as not given.
#[derive(Debug, Default)]
pub struct Args {
    values: BTreeMap<String, Value>,
}

impl Args {
    /// Parses `body` for `spec`; a value longer than `max_argument_bytes` is refused.
    pub fn parse(spec: &FunctionSpec, body: &[u8], max_argument_bytes: u64) -> Result<Args, ArgError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|e| ArgError::Body(e.to_string()))?;
        let mut values = BTreeMap::new();
        for (name, raw) in pairs {
            let Some(arg) = spec.args.iter().find(|a| a.name == name) else {
                let hint = spec
                    .args
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(&name))
                    .map(|a| format!(" (did you mean '{}'? names are case-sensitive)", a.name))
                    .unwrap_or_default();
                return Err(ArgError::Unknown { function: spec.name.to_string(), name, hint });
            };
            if values.contains_key(&name) {
                return Err(ArgError::Repeated(name));
            }
            if raw.len() as u64 > max_argument_bytes {
                return Err(ArgError::TooLong { name, bytes: raw.len(), limit: max_argument_bytes });
            }
            if raw.is_empty() && arg.nullable {
                continue;
            }
            let malformed =
                |expected| ArgError::Malformed { name: name.clone(), expected, value: raw.clone() };
            let value = match arg.ty {
                ArgType::String => Value::String(raw.clone()),
                ArgType::Number => {
                    Value::from(raw.trim().parse::<i64>().map_err(|_| malformed("a decimal integer"))?)
                }
                ArgType::Bool => match raw.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => return Err(malformed("true or false")),
                },
                ArgType::Json => serde_json::from_str(&raw).map_err(|_| malformed("a JSON text"))?,
            };
            values.insert(name, value);
        }
        for arg in spec.args {
            if !arg.nullable && !values.contains_key(arg.name) {
                return Err(ArgError::Missing(arg.name.to_string()));
            }
        }
        Ok(Args { values })
    }

    /// A string argument, if given.
    pub fn opt_str(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(Value::as_str)
    }

    /// A mandatory string argument (presence was checked by [`Args::parse`]).
    pub fn str(&self, name: &str) -> Result<&str, ArgError> {
        self.opt_str(name).ok_or_else(|| ArgError::Missing(name.to_string()))
    }

    /// A number argument, if given.
    pub fn opt_i64(&self, name: &str) -> Option<i64> {
        self.values.get(name).and_then(Value::as_i64)
    }

    /// A bool argument, if given.
    pub fn opt_bool(&self, name: &str) -> Option<bool> {
        self.values.get(name).and_then(Value::as_bool)
    }

    /// A JSON argument, if given.
    pub fn opt_json(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue;

    /// The default `api.max_argument_bytes`.
    const LIMIT: u64 = 64 << 10;

    fn spec(name: &str) -> &'static FunctionSpec {
        catalogue::FUNCTIONS.iter().find(|f| f.name == name).expect("function")
    }

    #[test]
    fn arguments_are_checked_by_name_presence_and_type() {
        let create = spec("CreateUser");
        let a = Args::parse(create, b"userName=j%C3%BCrgen&privileges=login&fullName=", LIMIT).expect("ok");
        assert_eq!(a.opt_str("userName"), Some("jürgen"));
        assert_eq!(a.opt_str("fullName"), None, "empty optional means not given");
        assert_eq!(
            Args::parse(create, b"userName=x", LIMIT).unwrap_err(),
            ArgError::Missing("privileges".into())
        );
        let err =
            Args::parse(create, b"userName=x&privileges=login&username=y", LIMIT).unwrap_err().to_string();
        assert!(err.contains("'username'") && err.contains("'userName'"), "{err}");
        let err = Args::parse(spec("GetChildFolders"), b"maxLevels=two", LIMIT).unwrap_err().to_string();
        assert!(err.contains("'maxLevels'"), "{err}");
    }

    #[test]
    fn quirky_spelling_is_named_in_the_error() {
        let err = Args::parse(
            spec("GetWorkerResults"),
            b"fromIncluding=a&toExcluding=b&timeZoneId=%24Local",
            LIMIT,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("timeZoneID"), "{err}");
    }

    #[test]
    fn an_argument_over_max_argument_bytes_is_refused_naming_it() {
        let body = format!("userName={}&privileges=login", "x".repeat(11));
        let err = Args::parse(spec("CreateUser"), body.as_bytes(), 10).unwrap_err();
        assert_eq!(err, ArgError::TooLong { name: "userName".into(), bytes: 11, limit: 10 });
        assert!(err.to_string().contains("api.max_argument_bytes"), "{err}");
    }

    /// Property tests (`prop_*`): no body panics the decoder, and every error names the argument it is
    /// about. `PROPTEST_CASES=100000 cargo nextest run -p arca-api prop_` runs them longer.
    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Form bodies built from the function's own argument names, near misses, and any bytes.
        fn body(spec: &'static FunctionSpec) -> impl Strategy<Value = Vec<u8>> {
            let mut names: Vec<String> = spec.args.iter().map(|a| a.name.to_string()).collect();
            names.extend(spec.args.iter().map(|a| a.name.to_ascii_lowercase()));
            names.extend(["x".to_string(), String::new(), "%FF".to_string(), "a%3Db".to_string()]);
            let name = proptest::sample::select(names);
            let value = prop_oneof![
                proptest::sample::select(vec![
                    "", "true", "false", "1", "-7", " 42 ", "{}", "[1]", "%E2%82", "x+y"
                ])
                .prop_map(String::from),
                "[a-z0-9%+&=]{0,12}",
            ];
            let pair = (name, value).prop_map(|(n, v)| format!("{n}={v}"));
            prop_oneof![
                3 => proptest::collection::vec(pair, 0..8).prop_map(|p| p.join("&").into_bytes()),
                1 => proptest::collection::vec(any::<u8>(), 0..64),
            ]
        }

        fn function() -> impl Strategy<Value = &'static FunctionSpec> {
            proptest::sample::select(catalogue::FUNCTIONS.iter().collect::<Vec<_>>())
        }

        proptest! {
            #[test]
            fn prop_form_bodies_never_panic_and_errors_name_the_argument(
                (spec, body) in function().prop_flat_map(|f| (Just(f), body(f))),
                limit in prop_oneof![Just(LIMIT), 0u64..8],
            ) {
                match Args::parse(spec, &body, limit) {
                    Ok(args) => {
                        for arg in spec.args.iter().filter(|a| !a.nullable) {
                            prop_assert!(args.values.contains_key(arg.name), "{} missing", arg.name);
                        }
                    }
                    Err(e) => {
                        let name = e.field();
                        prop_assert!(name.is_some(), "{e} names no argument");
                        let name = name.unwrap_or_default();
                        prop_assert!(e.to_string().contains(&format!("'{name}'")), "{e}");
                    }
                }
            }
        }
    }
}
