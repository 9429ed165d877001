//! The provider table: LiteLLM's providers with their default addresses,
//! key variables and model families, as data; `providers` in the
//! configuration overrides or extends it.

use std::collections::BTreeMap;

use crate::config::raw::RawProvider;
use crate::config::report::{error, key_error, ConfigError};
use crate::model::{ApiBase, AuthStyle, PathStyle, Provider};

/// A built-in provider.
struct Builtin {
    name: &'static str,
    api_base: Option<&'static str>,
    /// See [`Provider::api_base_env`].
    api_base_env: Option<&'static str>,
    auth: AuthStyle,
    path_style: PathStyle,
    api_key_env: &'static str,
    key_optional: bool,
    families: &'static [&'static str],
    /// See [`Provider::api_suffix`].
    api_suffix: &'static str,
}

const fn openai_compatible(name: &'static str, api_base: &'static str, api_key_env: &'static str) -> Builtin {
    Builtin {
        name,
        api_base: Some(api_base),
        api_base_env: None,
        auth: AuthStyle::Bearer,
        path_style: PathStyle::OpenAi,
        api_key_env,
        key_optional: false,
        families: &[],
        api_suffix: "",
    }
}

const fn with_families(builtin: Builtin, families: &'static [&'static str]) -> Builtin {
    Builtin { families, ..builtin }
}

/// Self-hosted OpenAI-compatible servers: an `api_base` per deployment, a
/// key only if the server was started with one.
const fn self_hosted(name: &'static str, api_key_env: &'static str) -> Builtin {
    Builtin {
        name,
        api_base: None,
        api_base_env: None,
        auth: AuthStyle::Bearer,
        path_style: PathStyle::OpenAi,
        api_key_env,
        key_optional: true,
        families: &[],
        api_suffix: "",
    }
}

/// Ollama: a local server by default, its OpenAI-compatible API under `/v1`
/// of the address LiteLLM users give it, no key unless it sits behind one.
const fn ollama(name: &'static str) -> Builtin {
    Builtin {
        name,
        api_base: Some("http://localhost:11434/v1"),
        api_base_env: None,
        auth: AuthStyle::Bearer,
        path_style: PathStyle::OpenAi,
        api_key_env: "OLLAMA_API_KEY",
        key_optional: true,
        families: &[],
        api_suffix: "/v1",
    }
}

/// The built-in provider table, with LiteLLM's names and key variables.
const BUILTIN_PROVIDERS: &[Builtin] = &[
    with_families(
        openai_compatible("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        &[
            "gpt-*",
            "o1*",
            "o3*",
            "o4*",
            "chatgpt-*",
            "text-embedding-*",
            "omni-moderation-*",
            "text-moderation-*",
            "dall-e-*",
            "gpt-image-*",
            "whisper-*",
            "tts-*",
            "davinci-*",
            "babbage-*",
        ],
    ),
    Builtin {
        name: "anthropic",
        api_base: Some("https://api.anthropic.com/v1"),
        api_base_env: None,
        auth: AuthStyle::AnthropicKey,
        path_style: PathStyle::OpenAi,
        api_key_env: "ANTHROPIC_API_KEY",
        key_optional: false,
        families: &["claude-*"],
        // LiteLLM's Anthropic `api_base` is the root its `/v1/...` paths go under.
        api_suffix: "/v1",
    },
    Builtin {
        name: "azure",
        api_base: None,
        api_base_env: None,
        auth: AuthStyle::AzureKey,
        path_style: PathStyle::AzureDeployments,
        api_key_env: "AZURE_API_KEY",
        key_optional: false,
        families: &[],
        api_suffix: "",
    },
    // Azure AI Foundry: its key header and path depend on the host
    // ([`azure_ai_at`]). Without a key LiteLLM tries an Entra ID token;
    // the filter sends none.
    Builtin {
        name: "azure_ai",
        api_base: None,
        api_base_env: Some("AZURE_AI_API_BASE"),
        auth: AuthStyle::Bearer,
        path_style: PathStyle::AzureAi,
        api_key_env: "AZURE_AI_API_KEY",
        key_optional: true,
        families: &[],
        api_suffix: "",
    },
    with_families(
        openai_compatible(
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta/openai",
            "GEMINI_API_KEY",
        ),
        &["gemini-*", "gemma-*"],
    ),
    openai_compatible("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    with_families(
        openai_compatible("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        &[
            "mistral-*",
            "codestral-*",
            "open-mistral-*",
            "open-mixtral-*",
            "ministral-*",
            "pixtral-*",
            "magistral-*",
            "devstral-*",
        ],
    ),
    with_families(
        openai_compatible("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
        &["deepseek-*"],
    ),
    with_families(
        openai_compatible("xai", "https://api.x.ai/v1", "XAI_API_KEY"),
        &["grok-*"],
    ),
    openai_compatible("together_ai", "https://api.together.xyz/v1", "TOGETHERAI_API_KEY"),
    openai_compatible(
        "fireworks_ai",
        "https://api.fireworks.ai/inference/v1",
        "FIREWORKS_AI_API_KEY",
    ),
    openai_compatible("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    openai_compatible("perplexity", "https://api.perplexity.ai", "PERPLEXITYAI_API_KEY"),
    openai_compatible("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    openai_compatible("huggingface", "https://router.huggingface.co/v1", "HUGGINGFACE_API_KEY"),
    openai_compatible("siliconflow", "https://api.siliconflow.cn/v1", "SILICONFLOW_API_KEY"),
    openai_compatible("zhipu", "https://open.bigmodel.cn/api/paas/v4", "ZHIPU_API_KEY"),
    openai_compatible(
        "nvidia_nim",
        "https://integrate.api.nvidia.com/v1",
        "NVIDIA_NIM_API_KEY",
    ),
    openai_compatible("sambanova", "https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY"),
    openai_compatible("moonshot", "https://api.moonshot.ai/v1", "MOONSHOT_API_KEY"),
    openai_compatible(
        "dashscope",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "DASHSCOPE_API_KEY",
    ),
    self_hosted("hosted_vllm", "HOSTED_VLLM_API_KEY"),
    self_hosted("lm_studio", "LM_STUDIO_API_KEY"),
    ollama("ollama"),
    ollama("ollama_chat"),
];

/// Built-in providers not sent `stream_options`: Mistral reports usage in
/// its last chunk unasked, and its API is strict about parameters.
const NO_STREAM_OPTIONS: &[&str] = &["mistral"];

/// LiteLLM providers a key swap cannot serve, and what to use instead.
const REFUSED_PROVIDERS: &[(&[&str], &str)] = &[
    (
        &["bedrock", "bedrock_converse", "sagemaker", "sagemaker_chat"],
        "AWS signs every request with SigV4 (a signature over the body and the time), which a filter that swaps keys cannot do; use Bedrock's OpenAI-compatible endpoint as `openai/<model>` with `api_base: https://bedrock-runtime.<region>.amazonaws.com/openai/v1` and a Bedrock API key",
    ),
    (
        &["vertex_ai", "vertex_ai_beta"],
        "Vertex AI takes short-lived Google OAuth tokens, not an API key; use `gemini/<model>` with a Gemini API key, or Vertex's OpenAI-compatible endpoint as `openai/<model>` with its `api_base`",
    ),
    (
        &["watsonx", "watsonx_text"],
        "watsonx takes IAM tokens exchanged from an API key, not the key itself; serve it through a LiteLLM proxy for now",
    ),
    (
        &["cohere", "cohere_chat"],
        "Cohere's own API (chat v2, rerank) is not OpenAI's; use Cohere's OpenAI-compatible endpoint as `openai/<model>` with `api_base: https://api.cohere.ai/compatibility/v1`",
    ),
];

/// Models of an otherwise OpenAI-compatible provider that LiteLLM sends
/// elsewhere: (provider, text in the model's name, why).
const REFUSED_MODELS: &[(&str, &str, &str)] = &[
    (
        "azure_ai",
        "claude",
        "LiteLLM sends Claude on Azure AI Foundry to Anthropic's Messages API (`<api_base>/anthropic/v1/messages`), a translation the filter does not make; serve it through a LiteLLM proxy for now",
    ),
    (
        "azure_ai",
        "agents/",
        "Azure AI Foundry agents take threads and runs (the Agents API), not chat completions; serve them through a LiteLLM proxy for now",
    ),
];

/// Why a key swap cannot serve `provider`'s `model`, where it cannot.
pub(super) fn refusal(provider: &str, model: &str) -> Option<&'static str> {
    let model = model.to_ascii_lowercase();
    REFUSED_PROVIDERS
        .iter()
        .find(|(names, _)| names.contains(&provider))
        .map(|(_, why)| *why)
        .or_else(|| {
            REFUSED_MODELS
                .iter()
                .find(|(name, text, _)| *name == provider && model.contains(text))
                .map(|(_, _, why)| *why)
        })
}

/// A provider the table does not know, named by a deployment that gives
/// its `api_base`: taken as an OpenAI-compatible API with a bearer key
/// (`<NAME>_API_KEY` when the deployment names none, and none where that is
/// unset: most such servers are self-hosted), as most are.
pub(super) fn openai_compatible_at_api_base(name: &str) -> Provider {
    Provider {
        name: name.to_owned(),
        cluster: name.to_owned(),
        api_base: None,
        api_base_env: None,
        auth: AuthStyle::Bearer,
        path_style: PathStyle::OpenAi,
        api_key_env: format!("{}_API_KEY", name.to_ascii_uppercase()),
        key_optional: true,
        inject_stream_usage: true,
        model_families: Vec::new(),
        api_suffix: String::new(),
    }
}

/// Hosts that take a key in `api-key`, as LiteLLM's `azure_ai` sends it
/// (`is_azure_openai_v1_host`); others take a bearer key.
const AZURE_KEY_HOSTS: &[&str] = &[".services.ai.azure.com", ".openai.azure.com"];

/// Where Foundry's model inference API is, under `/models`.
const FOUNDRY_HOST: &str = ".services.ai.azure.com";

/// Azure AI Foundry's provider at `api_base`, as LiteLLM's `azure_ai`
/// sends to it (`AzureAIStudioConfig`): the key in `api-key` on Azure's
/// hosts, else as a bearer key; on `*.services.ai.azure.com` its
/// model inference API, `/models/chat/completions`.
pub(super) fn azure_ai_at(provider: &Provider, api_base: &ApiBase) -> Provider {
    let host = api_base.upstream.host.as_str();
    let azure_host = AZURE_KEY_HOSTS.iter().any(|suffix| host.ends_with(suffix));
    Provider {
        auth: if azure_host {
            AuthStyle::AzureKey
        } else {
            AuthStyle::Bearer
        },
        api_suffix: if host.ends_with(FOUNDRY_HOST) { "/models" } else { "" }.to_owned(),
        ..provider.clone()
    }
}

/// LiteLLM sends `azure_ai/<an OpenAI model>` at an address that is not
/// Foundry's model inference API through Azure OpenAI's deployments API
/// (`_is_azure_openai_model`), which this entry does not say.
pub(super) fn azure_ai_as_azure_openai(api_base: &ApiBase, openai_model: bool) -> Option<String> {
    let foundry = api_base.upstream.host.ends_with(FOUNDRY_HOST) && !api_base.path.contains("/openai/deployments");
    (openai_model && !foundry).then(|| {
        "LiteLLM sends an OpenAI model under `azure_ai/` at an address other than Foundry's model inference API (`https://<resource>.services.ai.azure.com`) to Azure OpenAI's deployments API; write it as `azure/<deployment>`".to_owned()
    })
}

fn builtin_provider(builtin: &Builtin) -> Provider {
    Provider {
        name: builtin.name.to_owned(),
        cluster: builtin.name.to_owned(),
        api_base: builtin.api_base.and_then(ApiBase::parse),
        api_base_env: builtin.api_base_env.map(str::to_owned),
        auth: builtin.auth,
        path_style: builtin.path_style,
        api_key_env: builtin.api_key_env.to_owned(),
        key_optional: builtin.key_optional,
        inject_stream_usage: !NO_STREAM_OPTIONS.contains(&builtin.name),
        model_families: builtin.families.iter().map(|&f| f.to_owned()).collect(),
        api_suffix: builtin.api_suffix.to_owned(),
    }
}

pub(super) fn provider_table(
    overrides: BTreeMap<String, RawProvider>,
) -> Result<BTreeMap<String, Provider>, ConfigError> {
    let mut table: BTreeMap<String, Provider> = BUILTIN_PROVIDERS
        .iter()
        .map(|builtin| (builtin.name.to_owned(), builtin_provider(builtin)))
        .collect();
    for (name, raw) in overrides {
        let path = format!("providers.{name}");
        if name.is_empty() || name.contains('/') || name.contains('*') {
            return Err(key_error(
                &path,
                "a provider name may not be empty or contain `/` or `*`",
            ));
        }
        let api_base = match raw.api_base {
            Some(url) => Some(ApiBase::parse(&url).ok_or_else(|| {
                error(
                    format!("{path}.api_base"),
                    &path,
                    format!("api_base `{url}` is not an http(s) URL (`https://host[:port][/path]`)"),
                )
            })?),
            None => None,
        };
        let provider = match table.remove(&name) {
            Some(builtin) => Provider {
                cluster: raw.cluster.unwrap_or(builtin.cluster),
                api_base: api_base.or(builtin.api_base),
                auth: raw.auth.unwrap_or(builtin.auth),
                api_key_env: raw.api_key_env.unwrap_or(builtin.api_key_env),
                inject_stream_usage: raw.inject_stream_usage.unwrap_or(builtin.inject_stream_usage),
                model_families: raw.model_families.unwrap_or(builtin.model_families),
                ..builtin
            },
            None => Provider {
                cluster: raw.cluster.unwrap_or_else(|| name.clone()),
                api_base: Some(api_base.ok_or_else(|| {
                    key_error(
                        &path,
                        "a new provider needs `api_base`, e.g. \"https://api.example.com/v1\"",
                    )
                })?),
                api_base_env: None,
                auth: raw.auth.unwrap_or(AuthStyle::Bearer),
                path_style: PathStyle::OpenAi,
                api_key_env: raw
                    .api_key_env
                    .unwrap_or_else(|| format!("{}_API_KEY", name.to_ascii_uppercase())),
                key_optional: false,
                inject_stream_usage: raw.inject_stream_usage.unwrap_or(true),
                model_families: raw.model_families.unwrap_or_default(),
                api_suffix: String::new(),
                name: name.clone(),
            },
        };
        if provider.cluster.is_empty() || provider.cluster.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(error(
                format!("{path}.cluster"),
                &path,
                format!("cluster `{}` is not a valid Envoy cluster name", provider.cluster),
            ));
        }
        if let Some(family) = provider.model_families.iter().find(|f| f.is_empty()) {
            return Err(error(
                format!("{path}.model_families"),
                &path,
                format!("model family `{family}` is empty"),
            ));
        }
        table.insert(name, provider);
    }
    Ok(table)
}
