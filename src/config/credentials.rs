//! Stage 1 of a deployment: the values of its `litellm_credential_name`
//! merged into its own `litellm_params`, where it sets none itself.

use std::collections::BTreeMap;

use crate::config::raw::{RawCredentialValues, RawParams};
use crate::config::report::EntryPath;
use crate::config::stage::{Stage, Stop};

/// An entry's `litellm_params` with its credential's values filled in.
pub(super) struct Merged {
    pub params: RawParams,
    /// Where its `api_base` is written: the entry's, or its credential's.
    pub api_base_path: String,
}

pub(super) fn merge(
    mut params: RawParams,
    credentials: &BTreeMap<String, (usize, RawCredentialValues)>,
    entry: &EntryPath,
) -> Stage<Merged> {
    let mut api_base_path = entry.param("api_base");
    let Some(name) = params.litellm_credential_name.take() else {
        return Ok(Merged { params, api_base_path });
    };
    let Some((position, values)) = credentials.get(&name) else {
        return Err(Stop::Skipped(format!(
            "its litellm_credential_name `{name}` is not in credential_list"
        )));
    };
    if params.api_base.is_none() && values.api_base.is_some() {
        api_base_path = format!("credential_list[{position}].credential_values.api_base");
    }
    // The deployment's own values win over the credential's.
    params.api_key = params.api_key.or_else(|| values.api_key.clone());
    params.api_base = params.api_base.or_else(|| values.api_base.clone());
    params.api_version = params.api_version.or_else(|| values.api_version.clone());
    params.azure_ad_token = params.azure_ad_token.or_else(|| values.azure_ad_token.clone());
    Ok(Merged { params, api_base_path })
}
