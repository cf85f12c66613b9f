"""An official Python SDK against Gatehouse in front of one provider of any kind.

    python3 sdk_on_kind.py <sdk> <gateway base URL> <model>

sdk: openai-chat | openai-responses | anthropic | google-genai. Driven by tests/it/sdk.rs,
whose mock provider plays a model in its own wire format: asked without tools, it answers
TEXT with USAGE; offered the get_weather tool, it calls it with {"city": "Paris"}. Two
checks per SDK: a plain reply (text, finish, usage), and a streamed tool call through the
SDK's own stream accumulator. Prints "all checks passed" and exits 0, or fails an assert.
"""
import json
import sys

sdk, base, model = sys.argv[1:4]

TEXT = "Hello from the mock"
USAGE = (12, 3)
QUESTION = "What is the weather in Paris?"
ARGS = {"city": "Paris"}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def openai_client():
    from openai import OpenAI

    return OpenAI(base_url=f"{base}/v1", api_key="sk-test-client", max_retries=0)


def openai_chat():
    client = openai_client()
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == TEXT, r
    assert r.choices[0].finish_reason == "stop", r.choices[0]
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == USAGE, r.usage

    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]
    stream_api = getattr(client.chat.completions, "stream", None) or client.beta.chat.completions.stream
    with stream_api(model=model, messages=[{"role": "user", "content": QUESTION}], tools=tools) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls and len(calls) == 1 and calls[0].function.name == "get_weather", final
    assert json.loads(calls[0].function.arguments) == ARGS, calls[0].function.arguments
    assert calls[0].id, calls[0]
    assert final.choices[0].finish_reason == "tool_calls", final.choices[0]


def openai_responses():
    client = openai_client()
    r = client.responses.create(model=model, input="hi")
    assert r.output_text == TEXT, r
    assert r.status == "completed", r
    assert (r.usage.input_tokens, r.usage.output_tokens) == USAGE, r.usage

    tools = [{"type": "function", "name": "get_weather", "parameters": SCHEMA, "strict": False}]
    with client.responses.stream(model=model, input=QUESTION, tools=tools) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds, kinds
    calls = [o for o in final.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather", final.output
    assert json.loads(calls[0].arguments) == ARGS, calls[0].arguments
    assert calls[0].call_id, calls[0]


def anthropic_messages():
    import anthropic

    client = anthropic.Anthropic(base_url=f"{base}/anthropic", api_key="sk-test-client", max_retries=0)
    m = client.messages.create(model=model, max_tokens=1000, messages=[{"role": "user", "content": "hi"}])
    assert [b.type for b in m.content] == ["text"] and m.content[0].text == TEXT, m
    assert m.stop_reason == "end_turn", m.stop_reason
    assert (m.usage.input_tokens, m.usage.output_tokens) == USAGE, m.usage

    tools = [{"name": "get_weather", "input_schema": SCHEMA}]
    with client.messages.stream(
        model=model, max_tokens=1000, tools=tools, messages=[{"role": "user", "content": QUESTION}]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather", final.content
    assert uses[0].input == ARGS, uses[0].input
    assert uses[0].id, uses[0]
    assert final.stop_reason == "tool_use", final.stop_reason


def google_genai():
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="sk-test-client", http_options=types.HttpOptions(base_url=f"{base}/gemini"))
    r = client.models.generate_content(model=model, contents="hi")
    assert r.text == TEXT, r
    assert r.candidates[0].finish_reason == types.FinishReason.STOP, r.candidates[0]
    u = r.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count) == USAGE, u

    weather = types.FunctionDeclaration(
        name="get_weather",
        parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]),
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[weather])],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    calls = []
    for chunk in client.models.generate_content_stream(model=model, contents=QUESTION, config=config):
        calls += chunk.function_calls or []
    assert len(calls) == 1 and calls[0].name == "get_weather", calls
    assert calls[0].args == ARGS, calls[0].args


{
    "openai-chat": openai_chat,
    "openai-responses": openai_responses,
    "anthropic": anthropic_messages,
    "google-genai": google_genai,
}[sdk]()
print(f"{sdk} on {model}: all checks passed")
