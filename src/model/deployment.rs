//! One `model_list` entry compiled: a deployment and where it goes, or
//! an entry the filter cannot serve and why.

use crate::model::limits::Prices;
use crate::model::pattern::Pattern;
use crate::model::provider::{Endpoint, Unavailable};

/// Where a deployment's requests go.
// Unboxed: there is one per deployment, built once, read on every request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Fixed(Endpoint),
    Unavailable(Unavailable),
    /// `model: "*"`: the provider is the request model's own prefix (or its
    /// model family).
    RequestProvider,
}

impl Target {
    /// A fixed target's endpoint, or why it has none; `None` for
    /// [`Target::RequestProvider`].
    pub fn reach(&self) -> Option<Result<&Endpoint, &Unavailable>> {
        match self {
            Target::Fixed(endpoint) => Some(Ok(endpoint)),
            Target::Unavailable(unavailable) => Some(Err(unavailable)),
            Target::RequestProvider => None,
        }
    }
}

/// A `model_list` entry the filter cannot serve (a provider that needs
/// request signing or OAuth tokens, an unknown provider, …). It is routed
/// as any entry; requests that reach it get a JSON error that names the
/// model and `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub model_name: String,
    /// `None` for an exact name.
    pub pattern: Option<Pattern>,
    pub reason: String,
}

/// One `model_list` entry, compiled.
#[derive(Debug)]
pub struct Deployment {
    /// `model_info.id`, else `<model_name>#<n>` (the n-th entry of that
    /// name): the deployment's name in metrics and the response header.
    pub id: String,
    pub model_name: String,
    /// `None` for an exact name.
    pub pattern: Option<Pattern>,
    /// The target after `<provider>/`; its `*`s take the captures.
    pub upstream_model: String,
    pub target_has_stars: bool,
    pub target: Target,
    /// Its share of its group's traffic, as LiteLLM reads it.
    pub shares: Shares,
    /// `litellm_params.order`: lower first.
    pub order: Option<u32>,
    /// `litellm_params.timeout` and `stream_timeout`.
    pub timeouts: Timeouts,
    /// `model_info.access_groups`: names a key's `models` may give.
    pub access_groups: Vec<String>,
    /// Its own per-token prices (`litellm_params` or `model_info`), which
    /// win over the price table's.
    pub prices: Option<Prices>,
}

/// How long an attempt may take to answer, in seconds: LiteLLM's `timeout`,
/// and `stream_timeout` for a streamed request.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Timeouts {
    pub request: Option<f64>,
    pub stream: Option<f64>,
}

impl Timeouts {
    /// Each one set here, else `defaults`'.
    pub(crate) fn or(self, defaults: Timeouts) -> Timeouts {
        Timeouts {
            request: self.request.or(defaults.request),
            stream: self.stream.or(defaults.stream),
        }
    }

    /// The longer limit of the two for each kind of request; where only one
    /// has a limit, that one.
    pub(crate) fn longest(self, other: Timeouts) -> Timeouts {
        let longer = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Timeouts {
            request: longer(self.request, other.request),
            stream: longer(self.for_request(true), other.for_request(true)),
        }
    }

    /// The limit for a request, streamed or not: as LiteLLM, a stream's is
    /// `stream_timeout`, else `timeout`.
    pub fn for_request(&self, stream: bool) -> Option<f64> {
        match stream {
            true => self.stream.or(self.request),
            false => self.request,
        }
    }
}

/// `litellm_params.weight`, `rpm` and `tpm`: simple-shuffle picks by the
/// first of them any deployment of the group sets.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Shares {
    pub weight: Option<f64>,
    pub rpm: Option<f64>,
    pub tpm: Option<f64>,
}

/// What one `model_list` entry compiles to.
// Unboxed: one per entry, built once at configuration and moved on at once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ListEntry {
    Served(Deployment),
    /// The filter cannot serve it; the rest of the file is served.
    Skipped(Skipped),
}
