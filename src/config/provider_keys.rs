//! The key a provider is sent: the headers that carry it, and the
//! provider's conventional variable for a deployment that names none.

use crate::config::report::ConfigError;
use crate::config::values::{check_header_value, Resolved};
use crate::model::{AuthStyle, Credentials, Provider, Secret};

/// The key of a deployment that names none: the provider's conventional
/// variable, as in LiteLLM; a self-hosted server without it gets no key.
pub(super) fn default_credentials(
    provider: &Provider,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved<Credentials>, ConfigError> {
    let at = format!("environment variable {}", provider.api_key_env);
    match env(&provider.api_key_env) {
        Some(key) if !key.is_empty() => {
            check_header_value(&key, &at, &at)?;
            Ok(Resolved::Value(credential_headers(provider.auth, key)))
        }
        _ if provider.key_optional => Ok(Resolved::Value(Vec::new())),
        _ => Ok(Resolved::Unset(provider.api_key_env.clone())),
    }
}

/// Sent to Anthropic with its key, as its API requires.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The headers that carry `key` upstream. All are kept as [`Secret`]s, so a
/// `Debug` of the configuration never shows a key.
pub(super) fn credential_headers(auth: AuthStyle, key: String) -> Credentials {
    match auth {
        AuthStyle::Bearer => vec![("authorization", Secret::new(format!("Bearer {key}")))],
        AuthStyle::AnthropicKey => vec![
            ("x-api-key", Secret::new(key)),
            ("anthropic-version", Secret::new(ANTHROPIC_VERSION.to_owned())),
        ],
        AuthStyle::AzureKey => vec![("api-key", Secret::new(key))],
    }
}
