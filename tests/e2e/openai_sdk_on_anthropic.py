"""The official OpenAI Python SDK against Gatehouse in front of an Anthropic provider.

Driven by tests/it/sdk.rs (base URL in argv[1]): the mock answers as api.anthropic.com does,
so every reply the SDK parses was translated from Anthropic's wire format. Exits non-zero on
any mismatch.
"""
import sys

import openai
from openai import OpenAI

client = OpenAI(base_url=sys.argv[1], api_key="sk-test-client", max_retries=0)

# 1. Non-streaming: text, stop reason, usage with the cache read inside prompt_tokens.
r = client.chat.completions.create(
    model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
)
assert r.choices[0].message.content == "Hello from Claude", r
assert r.choices[0].finish_reason == "stop", r
assert r.usage.prompt_tokens == 25 and r.usage.completion_tokens == 4, r.usage
assert r.usage.prompt_tokens_details.cached_tokens == 5, r.usage

# 2. A stream with thinking, text and a tool call whose arguments arrive in pieces, through
#    the SDK's accumulator.
stream_api = getattr(client.chat.completions, "stream", None) or client.beta.chat.completions.stream
with stream_api(
    model="claude-sonnet-4-5",
    messages=[{"role": "user", "content": "weather in Paris?"}],
    tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
    stream_options={"include_usage": True},
) as stream:
    for _ in stream:
        pass
    final = stream.get_final_completion()
msg = final.choices[0].message
assert msg.content == "Let me look.", msg
call = msg.tool_calls[0]
assert call.function.name == "get_weather", call
assert call.function.arguments == '{"city": "Paris"}', call.function.arguments
assert final.choices[0].finish_reason == "tool_calls", final
assert final.usage.completion_tokens == 42, final.usage

# 3. Anthropic's 400 comes back as the SDK's typed error with Anthropic's message.
try:
    client.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    raise SystemExit("expected BadRequestError")
except openai.BadRequestError as e:
    assert "prompt is too long" in str(e), e

print("all checks passed")
