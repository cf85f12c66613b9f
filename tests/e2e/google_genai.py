"""Google's official `google-genai` Python SDK against Gatehouse's Gemini API (base URL in
argv[1], e.g. http://127.0.0.1:PORT/gemini).

Driven by tests/it/sdk.rs, which serves the gateway in-process in front of a Chat
Completions mock provider whose replies it scripts: a plain reply, a stream, a function
call, and a provider error. Exits non-zero on any mismatch.
"""
import sys

from google import genai
from google.genai import errors, types

base = sys.argv[1]
client = genai.Client(api_key="sk-test-client", http_options=types.HttpOptions(base_url=base))
model = "gemini-2.5-flash"

# 1. generate_content.
r = client.models.generate_content(model=model, contents="hi")
assert r.text == "Hello from the mock", r
assert r.usage_metadata.total_token_count == 15, r.usage_metadata
assert r.candidates[0].finish_reason == types.FinishReason.STOP, r.candidates[0]

# 2. generate_content_stream (SSE).
chunks = list(client.models.generate_content_stream(model=model, contents="count"))
assert "".join(c.text or "" for c in chunks) == "Hello", chunks
assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP, chunks[-1]

# 3. A function call, with the SDK's own schema types (upper-case OpenAPI style).
weather = types.FunctionDeclaration(
    name="get_weather",
    description="Weather in a city",
    parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]),
)
r = client.models.generate_content(
    model=model,
    contents="weather in Paris?",
    config=types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[weather])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    ),
)
call = r.function_calls[0]
assert call.name == "get_weather" and call.args == {"city": "Paris"}, r.function_calls

# 4. count_tokens (estimated by the gateway; the provider is not called).
n = client.models.count_tokens(model=model, contents="hello there, how are you?").total_tokens
assert n and n > 0, n

# 5. A provider's 400 comes back as the SDK's ClientError, in Google's shape.
try:
    client.models.generate_content(model=model, contents="too long")
    raise AssertionError("expected a 400")
except errors.ClientError as e:
    assert e.code == 400 and "maximum context length" in str(e), e

print("all checks passed")
