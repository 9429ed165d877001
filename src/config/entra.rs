//! Azure's Entra ID client credentials, all of llm-router's policy for them
//! in one place: when a deployment asks for a token, the cluster of its own
//! that Envoy's credential injector sends it on, and why such a deployment
//! never shares a cluster (a model group, a fallback).

use crate::contract::ENTRA_CLUSTER_INFIX;
use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::config::raw::RawParams;
use crate::config::report::{EntryPath, Warning, WarningKind};
use crate::config::stage::{Stage, Stop};
use crate::model::{Deployment, Endpoint, EntraClient, ListEntry, PathStyle, Provider, Secret, Skipped, Target};

/// Keys that ask for an Entra ID token by username and password, a flow
/// Envoy's credential injector does not make.
const PASSWORD_KEYS: &[&str] = &["azure_username", "azure_password"];

/// The scope LiteLLM asks Entra ID for when `azure_scope` is not set.
const DEFAULT_SCOPE: &str = "https://cognitiveservices.azure.com/.default";

/// The client credentials of an Azure deployment with neither a key nor a
/// token (taken out of `params`); `None` where it asks for none. Given
/// where they are not acted on, they are named as ignored.
pub(super) fn client(
    params: &mut RawParams,
    provider: &Provider,
    entry: &EntryPath,
    ignored: &[String],
    warnings: &mut Vec<Warning>,
) -> Stage<Option<EntraClient>> {
    let keyless = provider.path_style == PathStyle::AzureDeployments
        && params.api_key.is_none()
        && params.azure_ad_token.is_none();
    let params_path = entry.key("litellm_params");
    match (keyless, params.tenant_id.take(), params.client_id.take()) {
        (true, Some(tenant_id), Some(client_id)) => Ok(Some(EntraClient {
            tenant_id,
            client_id,
            params_path,
            client_secret: params.client_secret.take().map(Secret::new),
            scope: params.azure_scope.take().unwrap_or_else(|| DEFAULT_SCOPE.to_owned()),
        })),
        (_, tenant_id, client_id) => {
            // Not asked for (another provider, or a key given): never sent.
            let unused = [
                ("tenant_id", tenant_id.is_some()),
                ("client_id", client_id.is_some()),
                ("client_secret", params.client_secret.is_some()),
                ("azure_scope", params.azure_scope.is_some()),
            ];
            for (key, _) in unused.iter().filter(|(_, given)| *given) {
                warnings.push(Warning::new(entry.param(key), WarningKind::Ignored));
            }
            let password = ignored.iter().any(|path| {
                let key = path.strip_prefix(&params_path).and_then(|rest| rest.strip_prefix('.'));
                key.is_some_and(|key| PASSWORD_KEYS.contains(&key))
            });
            if keyless && password {
                return Err(Stop::Skipped(
                    "it asks for an Entra ID token by username and password, a flow Envoy's credential injector does not make; give it an `api_key`, a static `azure_ad_token`, or client credentials (`tenant_id`, `client_id`, `client_secret`)".to_owned(),
                ));
            }
            Ok(None)
        }
    }
}

/// `endpoint` on a cluster of its own, so that the token Envoy injects
/// there goes to this deployment's requests only.
pub(super) fn on_own_cluster(mut endpoint: Endpoint, entra: EntraClient) -> Endpoint {
    endpoint.cluster = format!("{}{ENTRA_CLUSTER_INFIX}{}", endpoint.cluster, short_id(&entra));
    endpoint.entra = Some(entra);
    endpoint
}

/// A short name for one set of client credentials (never from the
/// secret), the same in the filter and the generator.
fn short_id(entra: &EntraClient) -> String {
    let digest = Sha256::new()
        .chain_update(&entra.tenant_id)
        .chain_update([0])
        .chain_update(&entra.client_id)
        .chain_update([0])
        .chain_update(&entra.scope)
        .finalize();
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

pub(super) fn has_entra(d: &Deployment) -> bool {
    matches!(&d.target, Target::Fixed(endpoint) if endpoint.entra.is_some())
}

const IN_GROUP: &str = "Entra ID client credentials in a model group: Envoy injects the token on the deployment's own cluster, and a group's requests leave through one cluster shared by all its deployments; give this deployment a model_name of its own, or an `api_key`";

/// A deployment with client credentials in a model group is skipped:
/// Envoy injects the token on the deployment's own cluster, and a group's
/// requests leave through the group's cluster, shared with deployments
/// that did not ask for the token.
pub(super) fn outside_groups(entry: ListEntry, in_group: &BTreeSet<String>) -> ListEntry {
    match entry {
        ListEntry::Served(d) if has_entra(&d) && in_group.contains(&d.model_name) => ListEntry::Skipped(Skipped {
            model_name: d.model_name,
            pattern: d.pattern,
            reason: IN_GROUP.to_owned(),
        }),
        other => other,
    }
}

/// The model names with client credentials: fallbacks make a group, so
/// none of them takes fallbacks or is one.
pub(super) fn names<'a>(deployments: impl Iterator<Item = &'a Deployment>) -> BTreeSet<&'a str> {
    deployments
        .filter(|d| has_entra(d))
        .map(|d| d.model_name.as_str())
        .collect()
}

/// Why the fallbacks written for `group`, which has client credentials,
/// are not acted on.
pub(super) fn fallbacks_not_acted_on(group: &str) -> String {
    format!(
        "`{group}` has Entra ID client credentials, whose token Envoy injects on its own cluster only: its fallbacks are not acted on"
    )
}

/// Why deployment `d` cannot be reached as a fallback, where it cannot (the
/// route table asks this of every deployment a fallback reaches).
pub(super) fn fallback_refusal(d: &Deployment) -> Option<String> {
    has_entra(d).then(|| {
        format!(
            "reaches `{}`, which has Entra ID client credentials, whose token Envoy injects on its own cluster only",
            d.id
        )
    })
}
