//! Arguments of an API call: a url-encoded body checked against the function's catalogue entry.
//! Unknown, repeated, missing or malformed arguments are errors that name the argument.

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
}

/// The parsed, typed arguments of one call. Empty optional arguments count as not given.
#[derive(Debug, Default)]
pub struct Args {
    values: BTreeMap<String, Value>,
}

impl Args {
    /// Parses `body` for `spec`.
    pub fn parse(spec: &FunctionSpec, body: &[u8]) -> Result<Args, ArgError> {
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

    fn spec(name: &str) -> &'static FunctionSpec {
        catalogue::FUNCTIONS.iter().find(|f| f.name == name).expect("function")
    }

    #[test]
    fn arguments_are_checked_by_name_presence_and_type() {
        let create = spec("CreateUser");
        let a = Args::parse(create, b"userName=j%C3%BCrgen&privileges=login&fullName=").expect("ok");
        assert_eq!(a.opt_str("userName"), Some("jürgen"));
        assert_eq!(a.opt_str("fullName"), None, "empty optional means not given");
        assert_eq!(Args::parse(create, b"userName=x").unwrap_err(), ArgError::Missing("privileges".into()));
        let err = Args::parse(create, b"userName=x&privileges=login&username=y").unwrap_err().to_string();
        assert!(err.contains("'username'") && err.contains("'userName'"), "{err}");
        let err = Args::parse(spec("GetChildFolders"), b"maxLevels=two").unwrap_err().to_string();
        assert!(err.contains("'maxLevels'"), "{err}");
    }

    #[test]
    fn quirky_spelling_is_named_in_the_error() {
        let err = Args::parse(spec("GetWorkerResults"), b"fromIncluding=a&toExcluding=b&timeZoneId=%24Local")
            .unwrap_err()
            .to_string();
        assert!(err.contains("timeZoneID"), "{err}");
    }
}
