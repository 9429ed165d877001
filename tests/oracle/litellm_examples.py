"""What LiteLLM itself makes of its own example configs.

Reads a list of config.yaml paths (argv) and, with the environment it is
given, prints JSON: per file, whether LiteLLM's Router refuses its
model_list (and why), the master key, and per model_name the request a
client would send (each `*` taken as `example-model`) with the deployments
LiteLLM could send it to: provider, upstream model, api_base, api_key and
api_version as LiteLLM resolves them (`os.environ/` read, a provider's own
default address and key variable where it has one). Run by
tests/litellm_examples.rs.
"""
import copy
import json
import os
import sys
import warnings

import yaml

# The catalogue shipped with the pinned package, never one fetched at run time.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
warnings.simplefilter("ignore")

import litellm  # noqa: E402
from litellm import Router  # noqa: E402
from litellm.secret_managers.main import get_secret  # noqa: E402

WILDCARD_TEXT = "example-model"


def resolved(value):
    if isinstance(value, str) and value.startswith("os.environ/"):
        return get_secret(value)
    return value


def candidate(params):
    params = {k: resolved(v) for k, v in params.items()}
    model = params.get("model")
    try:
        upstream, provider, dynamic_key, dynamic_base = litellm.get_llm_provider(
            model, custom_llm_provider=params.get("custom_llm_provider"), api_base=params.get("api_base")
        )
    except Exception:
        upstream, provider, dynamic_key, dynamic_base = model, None, None, None
    # The variable LiteLLM reads a provider's key from when the deployment names none.
    env_key = os.environ.get(f"{(provider or '').upper()}_API_KEY")
    answer = {
        "model": model,
        "provider": provider,
        "upstream_model": upstream,
        "api_base": params.get("api_base") or dynamic_base,
        "api_key": params.get("api_key") or dynamic_key or env_key,
        "api_version": params.get("api_version"),
    }
    if provider == "azure_ai":
        answer.update(azure_ai_request(answer))
    return answer


def azure_ai_request(candidate):
    """The URL and key header LiteLLM's azure_ai provider sends a chat
    request with, by its own code (they depend on the host)."""
    from litellm.llms.azure_ai.chat.transformation import AzureAIStudioConfig

    config = AzureAIStudioConfig()
    litellm_params = {"api_version": candidate["api_version"]}
    url = config.get_complete_url(
        candidate["api_base"], candidate["api_key"], candidate["upstream_model"], {}, litellm_params
    )
    headers = config.validate_environment(
        {}, candidate["upstream_model"], [], {}, litellm_params, candidate["api_key"], candidate["api_base"]
    )
    key_header = next(name.lower() for name in headers if name.lower() in ("api-key", "authorization"))
    return {"url": url, "key_header": key_header, "key_value": headers[next(n for n in headers if n.lower() == key_header)]}


def requests(router, model_list):
    names = []
    for deployment in model_list:
        if deployment.get("model_name") not in names:
            names.append(deployment.get("model_name"))
    out = []
    for name in names:
        if not isinstance(name, str):
            continue
        if "*" in name:
            request = name.replace("*", WILDCARD_TEXT)
            routed = [d for d in router.pattern_router.route(request) or [] if d["model_name"] == name]
            params = [d["litellm_params"] for d in routed]
        else:
            request = name
            params = [d["litellm_params"] for d in model_list if d.get("model_name") == name]
        out.append({"model_name": name, "request": request, "candidates": [candidate(p) for p in params]})
    return out


def main():
    answer = {"azure_default_api_version": litellm.AZURE_DEFAULT_API_VERSION, "files": {}}
    for path in sys.argv[1:]:
        with open(path) as f:
            config = yaml.safe_load(f) or {}
        model_list = config.get("model_list") or []
        try:
            router = Router(model_list=copy.deepcopy(model_list))
        except Exception as e:
            answer["files"][path] = {"refused": f"{type(e).__name__}: {e}", "requests": [], "master_key": None}
            continue
        master_key = resolved((config.get("general_settings") or {}).get("master_key"))
        answer["files"][path] = {
            "refused": None,
            "master_key": master_key,
            "requests": requests(router, model_list),
        }
    json.dump(answer, sys.stdout)


main()
