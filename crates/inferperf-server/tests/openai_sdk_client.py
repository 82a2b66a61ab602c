"""Drive an inferperf server with the official OpenAI Python SDK (run by openai_sdk.rs).

Usage: python openai_sdk_client.py BASE_URL

Engine-agnostic: asserts on shapes, token counts (ignore_eos makes them exact) and on streamed
text equal to non-streamed text under greedy decoding. Exits non-zero with a message on failure.
"""

import sys

import openai

base_url = sys.argv[1]
client = openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", timeout=120, max_retries=0)

models = client.models.list().data
assert len(models) == 1, models
model = models[0].id
N = 6
greedy = dict(temperature=0, max_tokens=N, extra_body={"ignore_eos": True})

# Chat, non-streamed.
chat = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "Say hello."}], **greedy
)
assert chat.object == "chat.completion", chat
assert chat.choices[0].message.role == "assistant", chat
assert isinstance(chat.choices[0].message.content, str), chat
assert chat.choices[0].finish_reason == "length", chat
assert chat.usage.completion_tokens == N, chat.usage
assert chat.usage.total_tokens == chat.usage.prompt_tokens + N, chat.usage

# Chat, streamed with usage.
chunks = list(
    client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Say hello."}],
        stream=True,
        stream_options={"include_usage": True},
        **greedy,
    )
)
assert chunks[0].choices[0].delta.role == "assistant", chunks[0]
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
assert finish == ["length"], finish
assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == N, chunks[-1]
assert chunks[-1].usage.prompt_tokens == chat.usage.prompt_tokens, chunks[-1].usage
assert text == chat.choices[0].message.content, (text, chat.choices[0].message.content)

# Completions, non-streamed and streamed.
comp = client.completions.create(model=model, prompt="Once upon a time", **greedy)
assert comp.object == "text_completion", comp
assert comp.choices[0].finish_reason == "length", comp
assert comp.usage.completion_tokens == N, comp.usage
stream = list(client.completions.create(model=model, prompt="Once upon a time", stream=True, **greedy))
streamed = "".join(c.choices[0].text for c in stream if c.choices)
assert streamed == comp.choices[0].text, (streamed, comp.choices[0].text)
assert stream[-1].choices[0].finish_reason == "length", stream[-1]

# Errors surface as the SDK's typed exceptions with the server's message.
try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], n=2)
    raise AssertionError("n=2 was accepted")
except openai.BadRequestError as e:
    assert "n must be 1" in e.message, e.message
try:
    client.completions.create(model="no-such-model", prompt="x", max_tokens=1)
    raise AssertionError("an unknown model was accepted")
except openai.NotFoundError as e:
    assert "no-such-model" in e.message, e.message

print("OPENAI SDK OK", openai.__version__)
