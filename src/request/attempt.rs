//! Each attempt of a model group's request, in the upstream filter: the
//! deployment Envoy chose gets its own path, key and model, set from the
//! client's request (what its answer means: [`crate::response::group`]).

use std::borrow::Cow;

use crate::config::Config;
use crate::request::auth::CLIENT_CREDENTIAL_HEADERS;
use crate::request::body::{self, BodyEdit};
use crate::request::reply::{ErrorKind, LocalReply};
use crate::request::shaping::{PathChange, ProviderRequest};

/// How to send one attempt of a group's request to the deployment Envoy chose.
#[derive(Debug, PartialEq, Eq)]
pub struct Attempt<'c> {
    /// The deployment's metrics slot.
    pub slot: usize,
    /// Set from the client's request every time, whatever an earlier attempt set.
    pub header_changes: Vec<(&'c str, Option<Cow<'c, [u8]>>)>,
    pub body_edit: Option<BodyEdit>,
    /// This attempt is the first to change `:path`: the client's path must
    /// be kept in [`crate::contract::filter_state::CLIENT_PATH`] for the attempts after it.
    pub keep_client_path: bool,
}

/// What the attempts before this one left in the header map they share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Earlier {
    /// None: the headers are the client's, as the downstream filter forwarded them.
    Nothing,
    /// Credentials and a length, but the client's path.
    ClientPath,
    /// Credentials, a length and a provider's path; the client's is in
    /// [`crate::contract::filter_state::CLIENT_PATH`].
    ProviderPath,
}

/// One attempt, in the upstream filter: `deployment` is the id in the chosen
/// endpoint's metadata, `client_path` the client's path, `body` the request
/// as the downstream filter forwarded it (Envoy sends each attempt the same),
/// `earlier` what the attempts before it set.
pub fn on_attempt<'c>(
    config: &'c Config,
    deployment: &str,
    client_path: &[u8],
    body: &[u8],
    earlier: Earlier,
) -> Result<Attempt<'c>, LocalReply> {
    let request_body =
        body::read(body).map_err(|e| LocalReply::error(ErrorKind::InvalidRequest, &e.to_string(), Some("model")))?;
    let field = &request_body.model;
    let route = config.router.route_via(deployment, &field.name).map_err(|_| {
        LocalReply::error(
            ErrorKind::ProviderUnavailable,
            &format!("deployment `{deployment}` does not serve model `{}`", field.name),
            Some("model"),
        )
    })?;
    let provider = ProviderRequest::new(&route, &field.name)?;
    let mut edit = BodyEdit::default();
    let mut header_changes = Vec::with_capacity(CLIENT_CREDENTIAL_HEADERS.len() + 3);
    // The downstream filter removed the client's credentials; a retry's
    // headers carry an earlier attempt's length and any provider's
    // credentials, and maybe its path, so those are set or removed again.
    let retry = earlier != Earlier::Nothing;
    let path_change = match earlier {
        Earlier::ProviderPath => PathChange::Always,
        Earlier::Nothing | Earlier::ClientPath => PathChange::IfDifferent,
    };
    provider.apply(
        &mut header_changes,
        &mut edit,
        field.span.clone(),
        (client_path, path_change),
        |_| retry,
    );
    let keep_client_path = earlier != Earlier::ProviderPath && header_changes.iter().any(|(name, _)| *name == ":path");
    if retry || !edit.is_empty() {
        let length = edit.edited_len(body.len());
        header_changes.push(("content-length", Some(Cow::Owned(length.to_string().into_bytes()))));
    }
    Ok(Attempt {
        slot: route.slot,
        header_changes,
        body_edit: (!edit.is_empty()).then_some(edit),
        keep_client_path,
    })
}
