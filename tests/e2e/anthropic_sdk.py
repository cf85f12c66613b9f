"""The official Anthropic Python SDK against Gatehouse (base URL in argv[1]), served by an
OpenAI-style mock provider scripted by tests/it/sdk.rs: a plain reply, a stream with thinking,
text and a tool call (through the SDK's stream accumulator), and a provider error."""
import sys

import anthropic

client = anthropic.Anthropic(base_url=sys.argv[1], api_key="sk-test-client", max_retries=0)
tools = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]

# 1. Non-streaming.
m = client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
assert m.content[0].type == "text" and m.content[0].text == "Hello from the mock", m
assert m.stop_reason == "end_turn", m.stop_reason
assert m.usage.input_tokens == 12 and m.usage.output_tokens == 3, m.usage

# 2. Streaming with thinking, text and a tool call, through the SDK's accumulator.
with client.messages.stream(
    model="claude-sonnet-4-5",
    max_tokens=1000,
    thinking={"type": "enabled", "budget_tokens": 500},
    tools=tools,
    messages=[{"role": "user", "content": "weather in Paris?"}],
) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
assert text == "Let me check.", text
kinds = [b.type for b in final.content]
assert kinds == ["thinking", "text", "tool_use"], kinds
assert final.content[0].thinking == "think", final.content[0]
assert final.content[2].name == "get_weather" and final.content[2].input == {"city": "Paris"}, final.content[2]
assert final.stop_reason == "tool_use", final.stop_reason
assert final.usage.output_tokens == 12, final.usage

# 3. A provider 4xx comes back as the SDK's typed error.
try:
    client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    raise SystemExit("expected BadRequestError")
except anthropic.BadRequestError as e:
    assert "too long" in str(e), e

print("anthropic sdk: all checks passed")
