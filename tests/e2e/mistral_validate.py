#!/usr/bin/env python3
"""Check Chat Completions bodies meant for Mistral with Mistral's own request validator.

Reads JSON lines (from stdin, or from the files named as arguments): each is a request body
as sent to api.mistral.ai, or {"name": ..., "body": ...}. Each body becomes mistral-common's
ChatCompletionRequest (whose models forbid unknown fields) and goes through the validator of
a tokenizer version (--version, default v15, the current generation, which takes
`reasoning_effort`) in serving mode: message order and roles, content chunk types per role,
tool-call ids and their pairing with tool results, tools, tool choice, response format.

mistral-common models what reaches the model, not the whole HTTP API, so a body is first
reduced to that, as Mistral's server does before tokenizing; nothing else is changed:
- the API's own fields that mistral-common does not model (the OpenAPI schema's
  `ChatCompletionRequest` fields in API_ONLY) are removed; they are checked against the
  OpenAPI schema elsewhere (tests/it/spec_conformance.rs);
- `temperature` is removed: the API takes 0 to 1.5, mistral-common's model 0 to 1;
- a `thinking` chunk's API form (a list of text chunks) becomes the text it holds;
- a `document_url` chunk (read by the API before the model sees the conversation) becomes a
  text chunk.

Prints each refusal as a JSON line {"name": ..., "error": ...}, then a summary line. Exit
status: 0 when every body is valid, 1 when some are not, 2 on bad input, 3 when
mistral-common is not installed.
"""

import argparse
import json
import sys

# The API's request fields (OpenAPI `ChatCompletionRequest`) outside mistral-common's model.
API_ONLY = {
    "stream",
    "stop",
    "n",
    "presence_penalty",
    "frequency_penalty",
    "safe_prompt",
    "prompt_mode",
    "prediction",
    "guardrails",
    "metadata",
    "prompt_cache_key",
    "service_tier",
    "temperature",
}


def to_model_form(body):
    """The part of an API body mistral-common validates (see the module doc)."""
    req = {k: v for k, v in body.items() if k not in API_ONLY}
    messages = []
    for m in req.get("messages", []):
        m = dict(m)
        if isinstance(m.get("content"), list):
            m["content"] = [chunk_model_form(c) for c in m["content"]]
        messages.append(m)
    req["messages"] = messages
    return req


def chunk_model_form(chunk):
    kind = chunk.get("type") if isinstance(chunk, dict) else None
    if kind == "thinking" and isinstance(chunk.get("thinking"), list):
        text = "".join(t.get("text", "") for t in chunk["thinking"] if isinstance(t, dict))
        out = {k: v for k, v in chunk.items() if k != "thinking"}
        out["thinking"] = text
        return out
    if kind == "document_url":
        return {"type": "text", "text": "[document: %s]" % chunk.get("document_name", "")}
    return chunk


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="JSON-lines files (default: stdin)")
    parser.add_argument("--version", default="v15", help="tokenizer version of the validator")
    args = parser.parse_args()
    try:
        from mistral_common.protocol.instruct.request import ChatCompletionRequest
        from mistral_common.protocol.instruct.validator import ValidationMode, get_validator
        from mistral_common.tokens.tokenizers.base import TokenizerVersion
    except ImportError as e:
        print("mistral-common is not installed (%s)" % e, file=sys.stderr)
        return 3
    validator = get_validator(TokenizerVersion(args.version), ValidationMode.serving)

    lines = []
    if args.files:
        for path in args.files:
            with open(path, encoding="utf-8") as f:
                lines.extend(f)
    else:
        lines.extend(sys.stdin)
    total = bad = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            print("line %d: not JSON: %s" % (n, e), file=sys.stderr)
            return 2
        if isinstance(item, dict) and "body" in item:
            name, body = item.get("name", "line %d" % n), item["body"]
        else:
            name, body = "line %d" % n, item
        total += 1
        try:
            request = ChatCompletionRequest.model_validate(to_model_form(body))
            validator.validate_request(request)
        except Exception as e:  # pydantic's ValidationError and mistral-common's own
            bad += 1
            detail = " ".join(str(e).split())
            print(json.dumps({"name": name, "error": "%s: %s" % (type(e).__name__, detail)}))
    print("%d bodies valid, %d refused (mistral-common, %s, serving mode)" % (total - bad, bad, args.version))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
