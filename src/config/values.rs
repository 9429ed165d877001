//! Values as LiteLLM writes them: `os.environ/NAME` indirection, and the
//! checks every key and header name passes.

use crate::config::report::{error, ConfigError};

/// LiteLLM's prefix for "read this from the environment".
const ENV_PREFIX: &str = "os.environ/";

/// A value from the configuration, or the environment variable it names
/// that is unset.
pub(crate) enum Resolved<T> {
    Value(T),
    Unset(String),
}

/// The variable a LiteLLM `os.environ/NAME` value names.
pub fn env_var(value: &str) -> Option<&str> {
    value.strip_prefix(ENV_PREFIX)
}

/// LiteLLM's `os.environ/NAME` indirection; any other string is literal.
pub(crate) fn resolve(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Resolved<String> {
    match env_var(value) {
        Some(var) => match env(var) {
            Some(v) => Resolved::Value(v),
            None => Resolved::Unset(var.to_owned()),
        },
        None => Resolved::Value(value.to_owned()),
    }
}

/// Keys become header values: a CR, LF or NUL would split or break the request.
pub(crate) fn check_header_value(value: &str, path: &str, at: &str) -> Result<(), ConfigError> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(error(
            path,
            at,
            "the key contains a line break or NUL and cannot be sent as a header",
        ));
    }
    Ok(())
}

pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Example keys from LiteLLM's documentation and quick-starts.
pub(crate) fn is_publicly_known_key(key: &str) -> bool {
    matches!(
        key,
        "sk-1234" | "sk-12345" | "sk-123456" | "sk-master-key" | "sk-admin" | "changeme"
    )
}

/// A timeout, cooldown or weight: a positive, finite number.
pub(crate) fn check_positive(value: Option<f64>, path: &str, at: &str, name: &str) -> Result<(), ConfigError> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => Err(error(path, at, format!("{name} must be a positive number"))),
        _ => Ok(()),
    }
}
