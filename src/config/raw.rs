//! LiteLLM's `config.yaml` shapes, as serde reads them. Only the keys
//! llm-router acts on are fields: every other key is reported by the
//! compiler as ignored (with its document path), never carried.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::report::{error, ConfigError};
use crate::model::AuthStyle;

// A section present but empty (`general_settings:` holding only comments)
// is YAML's null, which LiteLLM takes as an empty section: so do these.
#[derive(Deserialize)]
pub(super) struct RawConfig {
    pub model_list: Vec<RawDeployment>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub general_settings: RawGeneralSettings,
    #[serde(default, deserialize_with = "null_as_default")]
    pub router_settings: RawRouterSettings,
    #[serde(default, deserialize_with = "null_as_default")]
    pub litellm_settings: RawLitellmSettings,
    /// LiteLLM's shared credentials, named by `litellm_credential_name`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub credential_list: Vec<RawCredential>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub providers: BTreeMap<String, RawProvider>,
    /// llm-router's own: virtual keys, with LiteLLM's `/key/generate` names.
    #[serde(default, deserialize_with = "null_as_default")]
    pub keys: Vec<RawKey>,
    /// llm-router's own: team limits, with LiteLLM's `/team/new` names.
    #[serde(default, deserialize_with = "null_as_default")]
    pub teams: Vec<RawTeam>,
    /// llm-router's own: per-token prices by model name, in the shape of
    /// LiteLLM's price table (the generator copies the configured models'
    /// rows from it).
    #[serde(default, deserialize_with = "null_as_default")]
    pub model_prices: BTreeMap<String, RawPrices>,
    pub cluster_header: Option<String>,
    pub max_body_bytes: Option<usize>,
    pub inject_stream_usage: Option<bool>,
    /// llm-router's own: `false` leaves no access-log facts in filter state
    /// (and the generated access log reads none).
    pub access_log_facts: Option<bool>,
}

#[derive(Deserialize)]
pub(super) struct RawDeployment {
    pub model_name: String,
    pub litellm_params: RawParams,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model_info: RawModelInfo,
}

#[derive(Deserialize, Default)]
pub(super) struct RawUnavailableLimits {
    pub rates: Option<OpenOrClosed>,
    pub budgets: Option<OpenOrClosed>,
}

/// `allow`: requests pass unchecked; `deny`: they are refused (503).
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OpenOrClosed {
    Allow,
    Deny,
}

/// A team's limits, shared by every key with its `team_id`.
#[derive(Deserialize)]
pub(super) struct RawTeam {
    pub team_id: String,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
}

/// A price-table row: of LiteLLM's fields only the per-token prices.
#[derive(Deserialize)]
pub(super) struct RawPrices {
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub cache_read_input_token_cost: Option<f64>,
}

/// A virtual key: `key` (a literal or `os.environ/NAME`) or `token` (the
/// SHA-256 hex LiteLLM stores), and what it may do.
#[derive(Deserialize)]
pub(super) struct RawKey {
    pub key_alias: Option<String>,
    pub key: Option<String>,
    pub token: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub models: Vec<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    /// RFC 3339.
    pub expires: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub blocked: bool,
    /// Enforced by Envoy's rate-limit filter and `llm-router-limits`.
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    /// US dollars.
    pub max_budget: Option<f64>,
    /// `30s`, `30m`, `1h`, `1d`, `30d`.
    pub budget_duration: Option<String>,
    /// Per model (as requested, or its `model_name`): requests and tokens
    /// per minute for this key.
    #[serde(default, deserialize_with = "null_as_default")]
    pub model_rpm_limit: BTreeMap<String, u64>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model_tpm_limit: BTreeMap<String, u64>,
    // Read so that they are carried into the plugin configuration (not
    // reported as ignored), not acted on here. `metadata` is LiteLLM's own.
    #[serde(rename = "metadata")]
    pub _metadata: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
pub(super) struct RawCredential {
    pub credential_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub credential_values: RawCredentialValues,
}

/// The values a credential gives a deployment that names it (those the
/// deployment sets itself win).
#[derive(Deserialize, Default)]
pub(super) struct RawCredentialValues {
    pub api_key: Option<String>,
    pub api_base: Option<String>,
    pub api_version: Option<String>,
    pub azure_ad_token: Option<String>,
}

/// LiteLLM's metadata about the model: of it only the deployment's `id`
/// (its name in metrics and the response header) and its access groups
/// matter here, and its per-token prices; the context window is not routing.
#[derive(Deserialize, Default)]
pub(super) struct RawModelInfo {
    pub id: Option<String>,
    /// Names a key's `models` may give for this deployment.
    #[serde(default, deserialize_with = "null_as_default")]
    pub access_groups: Vec<String>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub cache_read_input_token_cost: Option<f64>,
}

#[derive(Deserialize)]
pub(super) struct RawParams {
    pub model: String,
    pub api_key: Option<String>,
    pub api_base: Option<String>,
    pub api_version: Option<String>,
    /// A static Entra ID token for Azure, sent as `Authorization: Bearer`.
    pub azure_ad_token: Option<String>,
    /// Entra ID client credentials for Azure (Envoy gets the token).
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub azure_scope: Option<String>,
    /// A `credential_list` entry's name.
    pub litellm_credential_name: Option<String>,
    /// A group's traffic shares: `weight`, else `rpm`, else `tpm` (LiteLLM's simple-shuffle).
    pub weight: Option<f64>,
    pub rpm: Option<f64>,
    pub tpm: Option<f64>,
    /// Lower first; a higher order only when every lower one is out.
    pub order: Option<u32>,
    /// Seconds an attempt may take to answer; `stream_timeout` for a
    /// streamed request.
    pub timeout: Option<f64>,
    pub stream_timeout: Option<f64>,
    /// Custom prices, US dollars per token (as in `model_info`).
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub cache_read_input_token_cost: Option<f64>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawGeneralSettings {
    pub master_key: Option<String>,
}

/// LiteLLM's SDK settings: of these only the Router's failover keys matter
/// (`router_settings` wins where both set one); every other key is
/// reported as ignored.
#[derive(Deserialize, Default)]
pub(super) struct RawLitellmSettings {
    pub num_retries: Option<u32>,
    /// Seconds: LiteLLM's default `timeout`.
    pub request_timeout: Option<f64>,
    pub allowed_fails: Option<u32>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub fallbacks: Vec<BTreeMap<String, Vec<String>>>,
    /// Fallbacks for every group that has none of its own.
    #[serde(default, deserialize_with = "null_as_default")]
    pub default_fallbacks: Vec<String>,
    /// Fallbacks on a context-window error, which a proxy cannot tell from
    /// the status alone: read only to say so.
    pub context_window_fallbacks: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawRouterSettings {
    /// llm-router's own: what Envoy does while the rate-limit service
    /// cannot answer.
    pub limits_service_unavailable: Option<RawUnavailableLimits>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub model_group_alias: BTreeMap<String, RawAlias>,
    pub num_retries: Option<u32>,
    /// `[{"gpt-4o": ["claude-sonnet"]}]`: where a group's requests go when
    /// all of its deployments fail.
    pub fallbacks: Option<Vec<BTreeMap<String, Vec<String>>>>,
    pub default_fallbacks: Option<Vec<String>>,
    pub allowed_fails: Option<u32>,
    pub cooldown_time: Option<f64>,
    pub timeout: Option<f64>,
    pub stream_timeout: Option<f64>,
    pub routing_strategy: Option<String>,
}

/// LiteLLM's two spellings: `"gpt-4": "gpt-4o"` or `{"model": …, "hidden": true}`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawAlias {
    Target(String),
    Entry {
        model: String,
        #[serde(default)]
        hidden: bool,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub cluster: Option<String>,
    pub api_base: Option<String>,
    pub auth: Option<AuthStyle>,
    pub api_key_env: Option<String>,
    pub inject_stream_usage: Option<bool>,
    pub model_families: Option<Vec<String>>,
}

/// What the document is: the filter's own configuration, where a top-level
/// key it does not know is a mistake; or a LiteLLM `config.yaml`, whose
/// other sections (`environment_variables`, …) are LiteLLM's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Plugin,
    LiteLlm,
}

/// `null` read as the type's default.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads the document, and the path of every key in it that no field above
/// takes (`model_list[0].litellm_params.rpm`, `environment_variables`).
/// In the filter's own configuration a top-level key it does not read is a
/// mistake, reported before anything else.
pub(super) fn parse(json: &[u8], document: Document) -> Result<(RawConfig, Vec<String>), ConfigError> {
    let mut ignored = Vec::new();
    let mut json = serde_json::Deserializer::from_slice(json);
    let mut record = |path: serde_ignored::Path| ignored.push(document_path(&path));
    let tracked = serde_ignored::Deserializer::new(&mut json, &mut record);
    let parsed: Result<RawConfig, _> = serde_path_to_error::deserialize(tracked);
    let unknown = ignored.iter().find(|path| !path.contains(['.', '[']));
    if let (Document::Plugin, Some(key)) = (document, unknown) {
        return Err(error(
            key,
            key,
            format!("unknown field `{key}`, expected one of {}", expected_keys()),
        ));
    }
    let raw = parsed.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path == "." {
            "plugin configuration".to_owned()
        } else {
            path.clone()
        };
        let hint = if inner.is_syntax() || inner.is_eof() {
            format!(" (expected a JSON object with {})", expected_keys())
        } else {
            String::new()
        };
        let message = inner.to_string();
        // A LiteLLM file was turned into JSON by the generator, which points
        // at the user's line itself: a position in that JSON means nothing.
        let message = match (document, message.rfind(" at line ")) {
            (Document::LiteLlm, Some(cut)) => message.get(..cut).unwrap_or(&message).to_owned(),
            _ => message,
        };
        error(path, at, format!("{message}{hint}"))
    })?;
    Ok((raw, ignored))
}

fn expected_keys() -> String {
    let keys: Vec<String> = TOP_LEVEL_KEYS.iter().map(|k| format!("`{k}`")).collect();
    keys.join(", ")
}

/// serde_ignored's path as this crate writes document paths:
/// `model_list[0].litellm_params.rpm`.
fn document_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", document_path(parent)),
        Path::Map { parent, key } => match document_path(parent) {
            parent if parent.is_empty() => key.clone(),
            parent => format!("{parent}.{key}"),
        },
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => {
            document_path(parent)
        }
    }
}

/// The top-level keys [`RawConfig`] reads, as its derived `Deserialize`
/// names them to serde.
static TOP_LEVEL_KEYS: std::sync::LazyLock<&'static [&'static str]> = std::sync::LazyLock::new(fields_of::<RawConfig>);

/// The field names a derived struct `Deserialize` hands to
/// `deserialize_struct`.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};
    struct Fields(&'static [&'static str]);
    impl<'de> de::Deserializer<'de> for &mut Fields {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(de::Error::custom("fields taken"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Fields(&[]);
    let _ = T::deserialize(&mut fields);
    fields.0
}
