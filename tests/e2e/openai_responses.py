"""The official OpenAI Python SDK's Responses API against Gatehouse (base URL in argv[1]).

Driven by tests/it/sdk.rs, which serves the gateway in-process in front of a Chat
Completions mock provider whose replies it scripts: a plain reply, a streamed reply, a
streamed tool call with reasoning, a structured-output reply, and a stream cut short.
Exits non-zero on any mismatch.
"""
import json
import sys

import openai
from openai import OpenAI

base = sys.argv[1]
client = OpenAI(base_url=base, api_key="sk-test-client", max_retries=0)

# 1. responses.create, then continued with previous_response_id and read back.
r = client.responses.create(model="m", instructions="be brief", input="hi")
assert r.output_text == "Hello from the mock", r
assert r.status == "completed" and r.usage.total_tokens == 15, r
again = client.responses.retrieve(r.id)
assert again.id == r.id and again.output_text == r.output_text, again

# 2. responses.stream: the SDK's accumulator rebuilds the final response from the events.
with client.responses.stream(model="m", input="count", previous_response_id=r.id) as stream:
    deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    final = stream.get_final_response()
assert "".join(deltas) == "Hello", deltas
assert final.output_text == "Hello", final
assert final.previous_response_id == r.id

# 3. A streamed tool call with reasoning, through the same accumulator.
tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": False}]
with client.responses.stream(model="m", input="weather in Paris?", tools=tools, reasoning={"summary": "auto"}) as stream:
    kinds = [e.type for e in stream]
    final = stream.get_final_response()
calls = [o for o in final.output if o.type == "function_call"]
assert len(calls) == 1 and calls[0].name == "get_weather", final.output
assert json.loads(calls[0].arguments) == {"city": "Paris"}, calls[0].arguments
assert final.output[0].type == "reasoning" and final.output[0].summary[0].text == "think", final.output
assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds

# 4. Structured output: text.format json_schema, parsed by the SDK.
schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}
r = client.responses.create(model="m", input="where?", text={"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}})
assert json.loads(r.output_text) == {"city": "Paris"}, r.output_text

# 5. A stream cut short ends with response.failed, which the SDK reports.
failed = None
with client.responses.stream(model="m", input="x") as stream:
    for e in stream:
        if e.type == "response.failed":
            failed = e.response
assert failed is not None and failed.status == "failed" and failed.error.code == "server_error", failed

# 6. Errors are the SDK's typed errors.
try:
    client.responses.retrieve("resp_does_not_exist")
    raise AssertionError("expected a 404")
except openai.NotFoundError as e:
    assert "resp_does_not_exist" in str(e), e

print("all checks passed")
