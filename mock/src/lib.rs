//! Local stand-ins for the OpenAI, Anthropic, Groq and Azure OpenAI APIs and
//! a self-hosted vLLM server, that the official SDKs cannot tell from the
//! real ones: the same paths, credential checks and
//! 401s, the same response shapes (chat completions, completions,
//! embeddings, Responses, Anthropic Messages), streamed as the real APIs
//! stream them, with usage numbers that follow from the request
//! ([`api::usage`]). Each JSON answer also carries a `mock` section with what
//! arrived (credentials fingerprinted), and every request is kept
//! ([`Mock::received`]) so tests can check what a provider saw. Faults
//! ([`Fault`]) are injected per request or per listener.

pub mod api;
pub mod client;
pub mod fault;
pub mod server;

use std::sync::LazyLock;

pub use fault::{Fault, FAULT_HEADER};
pub use server::{start, Mock, STREAM_EVENT_GAP};

/// Where the binary listens without arguments: envoy/envoy.yaml's clusters.
pub const DEFAULT_LISTEN: [(&str, &str); 3] = [
    ("openai", "127.0.0.1:18081"),
    ("anthropic", "127.0.0.1:18082"),
    ("groq", "127.0.0.1:18083"),
];

/// Headers whose values are credentials: echoed only as fingerprints.
pub const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-api-key", "api-key", "x-goog-api-key"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
    Groq,
    /// Azure OpenAI: `/openai/deployments/<deployment>/<operation>?api-version=…`,
    /// the key in `api-key`.
    Azure,
    /// vLLM's OpenAI-compatible server: with an empty key it was started
    /// without `--api-key` and refuses any credential it is sent (no client
    /// key may reach it); with a key it wants `Authorization: Bearer`.
    Vllm,
    /// Any API at any address: answers every `POST` as OpenAI's chat
    /// completions would, whatever its path and credentials, for tests that
    /// check what arrived themselves (LiteLLM's own configs, whose
    /// deployments are of every provider).
    Recorder,
    /// Entra ID's token endpoint (`POST /<tenant>/oauth2/v2.0/token`, the
    /// client credentials grant as a form): its key is
    /// `<tenant>|<client_id>|<client_secret>`; the token it issues is
    /// [`entra_token`] of the client.
    Entra,
}

/// The access token the Entra mock issues to `client_id`.
pub fn entra_token(client_id: &str) -> String {
    format!("entra-token-for-{client_id}")
}

impl Provider {
    /// The demo's providers (envoy/envoy.yaml's clusters).
    pub const ALL: [Provider; 3] = [Provider::OpenAi, Provider::Anthropic, Provider::Groq];

    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Groq => "groq",
            Provider::Azure => "azure",
            Provider::Vllm => "vllm",
            Provider::Recorder => "recorder",
            Provider::Entra => "entra",
        }
    }

    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The variable the real SDKs read the key from.
    pub fn key_env(self) -> &'static str {
        match self {
            Provider::OpenAi => "OPENAI_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
            Provider::Groq => "GROQ_API_KEY",
            Provider::Azure => "AZURE_API_KEY",
            Provider::Vllm => "HOSTED_VLLM_API_KEY",
            Provider::Recorder | Provider::Entra => "",
        }
    }

    /// The path every endpoint of the real API sits under (Azure's is
    /// followed by the deployment).
    pub fn base_path(self) -> &'static str {
        match self {
            Provider::Groq => "/openai/v1",
            Provider::Azure => "/openai/deployments/",
            Provider::OpenAi | Provider::Anthropic | Provider::Vllm => "/v1",
            Provider::Recorder | Provider::Entra => "",
        }
    }
}

/// A request as a mock received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Names lower-case, in arrival order; values read lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A short, stable, non-reversible tag for a key (FNV-1a, 64 bits).
pub fn fingerprint(key: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fp-{hash:016x}")
}

/// The runtime the mocks serve on and the client runs its requests on.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("mock-provider: cannot start a tokio runtime: {e}"))
    });
    &RUNTIME
}
