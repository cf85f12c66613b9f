"""The official OpenAI Python SDK against Gatehouse (base URL in argv[1]).

Driven by tests/it/sdk.rs, which serves the gateway in-process in front of a mock provider
whose replies it scripts: a plain reply, a stream with usage, a streamed tool call, a
provider error, and a stream cut without its terminator. Exits non-zero on any mismatch.
"""
import sys

import openai
from openai import OpenAI

base = sys.argv[1]
client = OpenAI(base_url=base, api_key="sk-test-client", max_retries=0)

# 1. Non-streaming.
r = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
assert r.choices[0].message.content == "Hello from the mock", r
assert r.usage.total_tokens == 15, r.usage
raw = client.chat.completions.with_raw_response.create(model="m", messages=[{"role": "user", "content": "hi"}])
assert raw.headers["x-gatehouse-provider"] == "p", raw.headers

# 2. Streaming with usage.
text, usage = "", None
for chunk in client.chat.completions.create(
    model="m", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
):
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
    if chunk.usage:
        usage = chunk.usage
assert text == "Hello", text
assert usage is not None and usage.completion_tokens == 2, usage

# 3. A streamed tool call, through the SDK's stream accumulator.
# `chat.completions.stream` in SDK 2.x, `beta.chat.completions.stream` in 1.x.
stream_api = getattr(client.chat.completions, "stream", None) or client.beta.chat.completions.stream
with stream_api(
    model="m",
    messages=[{"role": "user", "content": "weather?"}],
    tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
) as stream:
    for _ in stream:
        pass
    final = stream.get_final_completion()
call = final.choices[0].message.tool_calls[0]
assert call.function.name == "get_weather", call
assert call.function.arguments == '{"city":"Paris"}', call.function.arguments
assert final.choices[0].finish_reason == "tool_calls"

# 4. A provider 4xx comes back as the SDK's typed error, with the provider's message.
try:
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    raise SystemExit("expected BadRequestError")
except openai.BadRequestError as e:
    assert "context length" in str(e), e

# 5. A stream cut without [DONE] raises instead of ending quietly.
try:
    for _ in client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True):
        pass
    raise SystemExit("expected an error for a truncated stream")
except openai.APIError as e:
    assert "terminator" in str(e), e

# 6. Embeddings.
e = client.embeddings.create(model="embed", input=["a", "b"])
assert len(e.data) == 2 and e.data[1].index == 1, e

print("openai sdk: all checks passed")
