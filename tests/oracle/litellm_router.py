"""LiteLLM's own answer to "which deployment does this model get?".

Reads cases from standard input as JSON, a list of
  {"model_list": [[model_name, model], ...], "aliases": {alias: target | {"model": ..., "hidden": ...}},
   "requests": [model, ...]}
and prints, per case, per request, [model_name, provider, provider_model] of
the deployment LiteLLM's Router picks (provider null where LiteLLM cannot
name one), or null where it picks none. Run by tests/oracle.rs.
"""
import json
import os
import sys

# The catalogue shipped with the pinned package, never one fetched at run time.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm  # noqa: E402
from litellm import Router  # noqa: E402


def choice(router, model):
    try:
        deployment = router.get_available_deployment(model=model)
    except Exception:
        return None
    upstream = deployment["litellm_params"]["model"]
    try:
        provider_model, provider = litellm.get_llm_provider(upstream)[:2]
    except Exception:
        provider_model, provider = upstream, None
    return [deployment["model_name"], provider, provider_model]


def main():
    answers = []
    for case in json.load(sys.stdin):
        model_list = [
            {"model_name": name, "litellm_params": {"model": model, "api_key": "k"}}
            for name, model in case["model_list"]
        ]
        router = Router(model_list=model_list, model_group_alias=case["aliases"])
        answers.append([choice(router, model) for model in case["requests"]])
    json.dump(answers, sys.stdout)


main()
