"""The official OpenAI, Anthropic and LiteLLM Python SDKs against llm-router
in Envoy, as a user points them at it: ROUTER (the listener's URL) and
MASTER_KEY from the environment. Run by tests/sdk.rs; every check raises on
a wrong answer, and the last line counts them."""

import os
import sys

import anthropic
import litellm
import openai

ROUTER = os.environ["ROUTER"]
KEY = os.environ["MASTER_KEY"]
MESSAGES = [{"role": "user", "content": "what llm are you"}]
passed = []


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    passed.append(name)
    print(f"ok  {name}")


def answered(text, provider, model):
    return text.startswith(f"{provider} mock answered {model} (key fp-")


def openai_sdk():
    client = openai.OpenAI(base_url=f"{ROUTER}/v1", api_key=KEY, max_retries=0)
    chat = client.chat.completions.create(model="groq/llama3-8b-8192", messages=MESSAGES)
    check("openai chat", answered(chat.choices[0].message.content, "groq", "llama3-8b-8192"), chat)
    check("openai chat usage", chat.usage.prompt_tokens > 0 and chat.usage.completion_tokens == 6, chat.usage)

    chunks = list(client.chat.completions.create(model="groq/llama3-8b-8192", messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check("openai stream", answered(text, "groq", "llama3-8b-8192"), text)
    check("openai stream finish", chunks[-1].choices[0].finish_reason == "stop", chunks[-1])

    with_usage = list(
        client.chat.completions.create(
            model="anthropic/claude-3-5-haiku",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    check("openai stream usage", with_usage[-1].usage is not None and with_usage[-1].choices == [], with_usage[-1])

    ids = [m.id for m in client.models.list()]
    check("openai models.list", ids == ["anthropic/*", "groq/*", "fo::*:static::*"], ids)
    model = client.models.retrieve("groq/llama3-8b-8192")
    check("openai models.retrieve", (model.id, model.owned_by) == ("groq/llama3-8b-8192", "groq"), model)
    try:
        client.models.retrieve("openai/gpt-4o")
        check("openai models.retrieve unknown", False, "no error")
    except openai.NotFoundError as error:
        check("openai models.retrieve unknown", error.body["code"] == "model_not_found", error.body)

    embedding = client.embeddings.create(model="groq/nomic-embed-text", input=["a", "b"])
    check("openai embeddings", len(embedding.data) == 2 and len(embedding.data[0].embedding) == 3, embedding)
    response = client.responses.create(model="groq/llama3-8b-8192", input="hi")
    check("openai responses", answered(response.output_text, "groq", "llama3-8b-8192"), response)

    try:
        openai.OpenAI(base_url=f"{ROUTER}/v1", api_key="sk-wrong", max_retries=0).models.list()
        check("openai wrong key", False, "no error")
    except openai.AuthenticationError as error:
        check("openai wrong key", error.body["code"] == "invalid_api_key", error.body)


def anthropic_sdk():
    client = anthropic.Anthropic(base_url=ROUTER, api_key=KEY, max_retries=0)
    message = client.messages.create(model="anthropic/claude-3-5-haiku", max_tokens=64, messages=MESSAGES)
    check("anthropic messages", answered(message.content[0].text, "anthropic", "claude-3-5-haiku"), message)
    check("anthropic usage", message.usage.input_tokens > 0 and message.usage.output_tokens == 6, message.usage)
    with client.messages.stream(model="anthropic/claude-3-5-haiku", max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    check("anthropic stream", answered(text, "anthropic", "claude-3-5-haiku"), text)
    check("anthropic stream end", final.stop_reason == "end_turn" and final.usage.output_tokens == 6, final)


def litellm_sdk():
    # LiteLLM as an OpenAI-compatible client: `openai/` picks its OpenAI
    # client; the rest is the model the router sees.
    common = {"api_base": f"{ROUTER}/v1", "api_key": KEY, "messages": MESSAGES}
    reply = litellm.completion(model="openai/groq/llama3-8b-8192", **common)
    check("litellm completion", answered(reply.choices[0].message.content, "groq", "llama3-8b-8192"), reply)
    chunks = list(litellm.completion(model="openai/groq/llama3-8b-8192", stream=True, **common))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check("litellm stream", answered(text, "groq", "llama3-8b-8192"), text)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    check("litellm stream finish", finish[-1:] == ["stop"], finish)


for run in (openai_sdk, anthropic_sdk, litellm_sdk):
    run()
print(f"{len(passed)} passed, 0 failed")
sys.exit(0)
