//! A request shaped for one deployment: the provider's model in the body,
//! its path and credentials in the headers, the client's credentials out.

use std::borrow::Cow;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::model::{Endpoint, PathStyle};
use crate::request::auth::CLIENT_CREDENTIAL_HEADERS;
use crate::request::body::BodyEdit;
use crate::request::reply::{ErrorKind, LocalReply};
use crate::route::Route;

/// A request made ready for one deployment: its credentials and the model
/// it takes, checked.
pub(crate) struct ProviderRequest<'c, 'r> {
    route: &'r Route<'c, 'r>,
    endpoint: &'c Endpoint,
    /// The model the request names.
    requested: &'r str,
}

/// Whether the provider's `:path` is set when it equals the client's.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathChange {
    /// Only when it differs (the client's headers, untouched).
    IfDifferent,
    /// Always (a retry's headers carry the previous attempt's path).
    Always,
}

impl<'c, 'r> ProviderRequest<'c, 'r> {
    pub(crate) fn new(route: &'r Route<'c, 'r>, requested: &'r str) -> Result<ProviderRequest<'c, 'r>, LocalReply> {
        if route.upstream_model.is_empty() {
            return Err(LocalReply::error(
                ErrorKind::InvalidRequest,
                &format!(
                    "model `{requested}` leaves no model name for provider `{}`",
                    route.provider().name
                ),
                Some("model"),
            ));
        }
        match route.endpoint {
            Ok(endpoint) => Ok(ProviderRequest {
                route,
                endpoint,
                requested,
            }),
            // The variable's name is for the operator (logged at configuration), not the client.
            Err(unavailable) => Err(LocalReply::error(
                ErrorKind::ProviderUnavailable,
                &format!(
                    "provider `{}` for model `{requested}` is not configured (a key or setting is missing; the router's log says which)",
                    unavailable.provider.name
                ),
                Some("model"),
            )),
        }
    }

    /// The Envoy cluster the request goes to.
    pub(crate) fn cluster(&self) -> &'c str {
        &self.endpoint.cluster
    }

    /// Adds the provider's model to `edit`, and to `changes` the client
    /// credentials out (those of [`CLIENT_CREDENTIAL_HEADERS`] that
    /// `present(i)` says may be there), the provider's path for the client's
    /// `path`, and the provider's credentials.
    pub(crate) fn apply(
        &self,
        changes: &mut Vec<(&'c str, Option<Cow<'c, [u8]>>)>,
        edit: &mut BodyEdit,
        model_span: std::ops::Range<usize>,
        (path, path_change): (&[u8], PathChange),
        present: impl Fn(usize) -> bool,
    ) {
        let model = &self.route.upstream_model;
        if *model != self.requested {
            *edit = std::mem::take(edit).with_model(model_span, model);
        }
        for (i, &name) in CLIENT_CREDENTIAL_HEADERS.iter().enumerate() {
            if present(i) && !self.endpoint.credentials.iter().any(|(replaced, _)| *replaced == name) {
                changes.push((name, None));
            }
        }
        match upstream_path(path, self.endpoint, model) {
            Some(new_path) => changes.push((":path", Some(Cow::Owned(new_path)))),
            None if path_change == PathChange::Always => changes.push((":path", Some(Cow::Owned(path.to_vec())))),
            None => {}
        }
        for (name, value) in &self.endpoint.credentials {
            changes.push((name, Some(Cow::Borrowed(value.expose().as_bytes()))));
        }
    }
}

/// `1.5` seconds → `1500`; at least 1 (Envoy reads 0 as no limit).
pub(crate) fn milliseconds(seconds: f64) -> Vec<u8> {
    let ms = (seconds * 1000.0).round().max(1.0);
    // `as` saturates: a limit beyond u64 milliseconds is no limit anyway.
    (ms as u64).to_string().into_bytes()
}

/// The provider's path for the client's: the leading `/v1` replaced by the
/// path of `api_base` (a path without `/v1`, which LiteLLM also serves, gets
/// it prepended); for Azure, `/openai/deployments/<deployment>/<operation>`
/// with `api-version` first in the query; for Azure AI Foundry, `api-version`
/// (where set) first in the query. `None` when that is the client's path
/// already.
pub fn upstream_path(path: &[u8], endpoint: &Endpoint, upstream_model: &str) -> Option<Vec<u8>> {
    let base_path = endpoint.base_path.as_bytes();
    let rest = match path.strip_prefix(b"/v1") {
        Some(rest) if rest.is_empty() || rest.starts_with(b"/") || rest.starts_with(b"?") => rest,
        _ => path,
    };
    match (endpoint.provider.path_style, &endpoint.api_version) {
        (PathStyle::AzureDeployments, Some(version)) => {
            let deployment = utf8_percent_encode(upstream_model, PATH_SEGMENT);
            let prefix = [base_path, format!("/openai/deployments/{deployment}").as_bytes()].concat();
            with_api_version(&prefix, rest, version)
        }
        (PathStyle::AzureAi, Some(version)) => with_api_version(base_path, rest, version),
        _ if path.strip_suffix(rest) == Some(base_path) => None,
        _ => Some([base_path, rest].concat()),
    }
}

/// `prefix`, the operation of `rest`, then `api-version` first in the
/// query, before the client's.
fn with_api_version(prefix: &[u8], rest: &[u8], version: &str) -> Option<Vec<u8>> {
    let (operation, query) = match rest.iter().position(|&b| b == b'?') {
        Some(i) => (rest.get(..i)?, rest.get(i + 1..)?),
        None => (rest, &b""[..]),
    };
    let version = utf8_percent_encode(version, PATH_SEGMENT);
    let mut path = [prefix, operation].concat();
    path.extend_from_slice(format!("?api-version={version}").as_bytes());
    if !query.is_empty() {
        path.push(b'&');
        path.extend_from_slice(query);
    }
    Some(path)
}

/// What a path segment or query value may not carry as is.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');
