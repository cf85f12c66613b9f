//! The conformance matrix (issue #5): the same cases, for every client schema (ingress) and
//! every provider kind. Each case scripts the provider's mock in that provider's own wire
//! format (the OpenAI profile answers a Responses client in the Responses format, since that
//! request is passed through), sends the request in the ingress's schema, and reads the reply
//! back in that schema:
//!
//! - `Text`: a plain reply, its text and usage;
//! - `Stream`: a streamed reply, its text and usage;
//! - `Tools` / `StreamTools`: a `get_weather` call with `{"city": "Paris"}`;
//! - `Image`: a base64 PNG in the request reaches the provider;
//! - `Usage`: a reply with cached input tokens: the input and output counts;
//! - `Error`: the provider's 400, in its own error format, reaches the client as a 400 with
//!   its message, in the client's error format;
//! - `Cancel`: a client that leaves a stream after its first event closes the provider's
//!   connection within a second.
//!
//! What a provider does not support is declared in [`UNSUPPORTED`] with the behaviour the
//! client sees instead, and that behaviour is checked; nothing is skipped.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::wire::*;
use crate::support::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ingress {
    Chat,
    Messages,
    Responses,
    Gemini,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Case {
    Text,
    Stream,
    Tools,
    StreamTools,
    Image,
    Usage,
    Error,
    Cancel,
}

const CASES: [Case; 8] = [
    Case::Text,
    Case::Stream,
    Case::Tools,
    Case::StreamTools,
    Case::Image,
    Case::Usage,
    Case::Error,
    Case::Cancel,
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Wire {
    OpenAi,
    Anthropic,
    Gemini,
    Bedrock,
    /// OpenAI's own Responses API (a Responses client on the `openai` provider).
    Responses,
}

struct Provider {
    kind: &'static str,
    profile: Profile,
    model: &'static str,
}

const PROVIDERS: [Provider; 7] = [
    Provider {
        kind: "openai",
        profile: Profile::OpenAi,
        model: "gpt-4o",
    },
    Provider {
        kind: "openai-compatible",
        profile: Profile::OpenAi,
        model: "local-model",
    },
    Provider {
        kind: "mistral",
        profile: Profile::Mistral,
        model: "mistral-large-latest",
    },
    Provider {
        kind: "anthropic",
        profile: Profile::Anthropic,
        model: "claude-sonnet-4-5",
    },
    Provider {
        kind: "gemini",
        profile: Profile::Gemini,
        model: "gemini-2.5-flash",
    },
    Provider {
        kind: "bedrock",
        profile: Profile::Bedrock,
        model: "amazon.nova-pro-v1:0",
    },
    Provider {
        kind: "azure-openai",
        profile: Profile::Azure,
        model: "prod-gpt4o",
    },
];

/// (provider kind, case, what the client sees instead). Every provider serves every case
/// of this matrix today; an entry here is checked, not skipped.
const UNSUPPORTED: &[(&str, Case, &str)] = &[];

/// A 9-character tool-call id: Mistral accepts no other shape, and every provider takes it.
const CALL_ID: &str = "Call12345";
const IMAGE_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const ERROR_TEXT: &str = "bad request from provider";

fn wire(p: &Provider, ingress: Ingress) -> Wire {
    match p.profile {
        Profile::OpenAi if p.kind == "openai" && ingress == Ingress::Responses => Wire::Responses,
        Profile::OpenAi | Profile::Mistral | Profile::Azure => Wire::OpenAi,
        Profile::Anthropic => Wire::Anthropic,
        Profile::Gemini => Wire::Gemini,
        Profile::Bedrock => Wire::Bedrock,
    }
}

/// The provider's reply for a case, in its wire format: "Hello" (or the call), usage 12/3
/// (with 4 of the input read from cache in `Usage`).
fn play(w: Wire, case: Case) -> Reply {
    let tools = matches!(case, Case::Tools | Case::StreamTools);
    let stream = matches!(case, Case::Stream | Case::StreamTools | Case::Cancel);
    let cached = if case == Case::Usage { 4 } else { 0 };
    let args = json!({"city": "Paris"});
    if case == Case::Error {
        return match w {
            Wire::OpenAi | Wire::Responses => Reply::json(
                400,
                json!({"error": {"message": ERROR_TEXT, "type": "invalid_request_error", "param": null, "code": null}}),
            ),
            Wire::Anthropic => Reply::json(
                400,
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": ERROR_TEXT}}),
            ),
            Wire::Gemini => Reply::json(
                400,
                json!({"error": {"code": 400, "message": ERROR_TEXT, "status": "INVALID_ARGUMENT"}}),
            ),
            Wire::Bedrock => Reply::json(400, json!({"message": ERROR_TEXT}))
                .header("x-amzn-errortype", "ValidationException"),
        };
    }
    let reply = match (w, stream, tools) {
        (Wire::OpenAi, false, false) => {
            let mut b = chat_body("Hello", 12, 3);
            b["usage"]["prompt_tokens_details"] = json!({"cached_tokens": cached});
            Reply::json(200, b)
        }
        (Wire::OpenAi, false, true) => Reply::json(
            200,
            json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": args.to_string()}}]}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}),
        ),
        (Wire::OpenAi, true, false) => Reply::sse(vec![
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"content": "Hel"}), None),
            chunk(json!({"content": "lo"}), None),
            chunk(json!({}), Some("stop")),
            usage_chunk(12, 3),
        ]),
        (Wire::OpenAi, true, true) => Reply::sse(vec![
            chunk(json!({"role": "assistant", "content": null}), None),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                None,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
                None,
            ),
            chunk(json!({}), Some("tool_calls")),
            usage_chunk(12, 3),
        ]),
        (Wire::Anthropic, false, _) => {
            let content = if tools {
                json!([{"type": "tool_use", "id": CALL_ID, "name": "get_weather", "input": args}])
            } else {
                json!([{"type": "text", "text": "Hello"}])
            };
            Reply::json(
                200,
                json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": content, "stop_reason": if tools { "tool_use" } else { "end_turn" }, "stop_sequence": null,
                "usage": {"input_tokens": 12 - cached, "cache_read_input_tokens": cached, "output_tokens": 3}}),
            )
        }
        (Wire::Anthropic, true, _) => {
            let mut ev = vec![(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 1}}}),
            )];
            if tools {
                ev.push(("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": CALL_ID, "name": "get_weather", "input": {}}})));
                for part in ["{\"city\":", "\"Paris\"}"] {
                    ev.push(("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": part}})));
                }
            } else {
                ev.push(("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})));
                for part in ["Hel", "lo"] {
                    ev.push(("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": part}})));
                }
            }
            ev.push((
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ));
            ev.push(("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": if tools { "tool_use" } else { "end_turn" }, "stop_sequence": null}, "usage": {"output_tokens": 3}})));
            ev.push(("message_stop", json!({"type": "message_stop"})));
            named_sse(&ev)
        }
        (Wire::Gemini, _, _) => {
            let usage = json!({"promptTokenCount": 12, "candidatesTokenCount": 3, "totalTokenCount": 15, "cachedContentTokenCount": cached});
            let mut last = if tools {
                gemini_chunk(
                    json!([{"functionCall": {"id": CALL_ID, "name": "get_weather", "args": args}}]),
                    Some("STOP"),
                )
            } else if stream {
                gemini_chunk(json!([{"text": "lo"}]), Some("STOP"))
            } else {
                gemini_chunk(json!([{"text": "Hello"}]), Some("STOP"))
            };
            last["usageMetadata"] = usage;
            if !stream {
                return Reply::json(200, last);
            }
            let mut chunks = Vec::new();
            if !tools {
                chunks.push(gemini_chunk(json!([{"text": "Hel"}]), None));
            }
            chunks.push(last);
            gemini_stream(chunks)
        }
        (Wire::Bedrock, false, _) => {
            let content = if tools {
                json!([{"toolUse": {"toolUseId": CALL_ID, "name": "get_weather", "input": args}}])
            } else {
                json!([{"text": "Hello"}])
            };
            Reply::json(
                200,
                json!({"output": {"message": {"role": "assistant", "content": content}},
                "stopReason": if tools { "tool_use" } else { "end_turn" },
                "usage": {"inputTokens": 12 - cached, "cacheReadInputTokens": cached, "outputTokens": 3, "totalTokens": 15}, "metrics": {"latencyMs": 1}}),
            )
        }
        (Wire::Bedrock, true, _) => {
            let mut frames = vec![bedrock_event("messageStart", json!({"role": "assistant"}))];
            if tools {
                frames.push(bedrock_event("contentBlockStart", json!({"start": {"toolUse": {"toolUseId": CALL_ID, "name": "get_weather"}}, "contentBlockIndex": 0})));
                for part in ["{\"city\":", "\"Paris\"}"] {
                    frames.push(bedrock_event(
                        "contentBlockDelta",
                        json!({"delta": {"toolUse": {"input": part}}, "contentBlockIndex": 0}),
                    ));
                }
            } else {
                for part in ["Hel", "lo"] {
                    frames.push(bedrock_event(
                        "contentBlockDelta",
                        json!({"delta": {"text": part}, "contentBlockIndex": 0}),
                    ));
                }
            }
            frames.push(bedrock_event(
                "contentBlockStop",
                json!({"contentBlockIndex": 0}),
            ));
            frames.push(bedrock_event(
                "messageStop",
                json!({"stopReason": if tools { "tool_use" } else { "end_turn" }}),
            ));
            frames.push(bedrock_event("metadata", json!({"usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15}, "metrics": {"latencyMs": 1}})));
            bedrock_stream(frames)
        }
        (Wire::Responses, _, _) => {
            let item = if tools {
                json!({"id": "fc_1", "type": "function_call", "status": "completed", "call_id": CALL_ID, "name": "get_weather", "arguments": args.to_string()})
            } else {
                json!({"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}]})
            };
            let response = json!({"id": "resp_up", "object": "response", "created_at": 1, "status": "completed", "model": "gpt-4o",
                "output": [item.clone()], "usage": {"input_tokens": 12, "input_tokens_details": {"cached_tokens": cached},
                    "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15}});
            if !stream {
                return Reply::json(200, response);
            }
            let mut ev = vec![(
                "response.created",
                json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_up", "status": "in_progress", "output": []}}),
            )];
            ev.push(("response.output_item.added", json!({"type": "response.output_item.added", "sequence_number": 1, "output_index": 0, "item": item})));
            if !tools {
                for (i, part) in ["Hel", "lo"].into_iter().enumerate() {
                    ev.push(("response.output_text.delta", json!({"type": "response.output_text.delta", "sequence_number": 2 + i, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": part, "logprobs": []})));
                }
            }
            ev.push(("response.output_item.done", json!({"type": "response.output_item.done", "sequence_number": 4, "output_index": 0, "item": item})));
            ev.push((
                "response.completed",
                json!({"type": "response.completed", "sequence_number": 5, "response": response}),
            ));
            named_sse(&ev)
        }
    };
    if case == Case::Cancel {
        // Slow enough that the client leaves long before the end.
        return match w {
            Wire::OpenAi => Reply::stream(&["a"; 30]).every(Duration::from_millis(100)),
            _ => reply.every(Duration::from_millis(400)),
        };
    }
    reply
}

/// What a client read back.
#[derive(Debug, Default)]
struct Seen {
    status: u16,
    text: String,
    call: Option<(String, Value)>,
    usage: Option<(u64, u64)>,
    error: Option<String>,
}

fn request(ingress: Ingress, model: &str, case: Case) -> (String, Value) {
    let stream = matches!(case, Case::Stream | Case::StreamTools | Case::Cancel);
    let tools = matches!(case, Case::Tools | Case::StreamTools);
    let params =
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]});
    let image = case == Case::Image;
    match ingress {
        Ingress::Chat => {
            let content = if image {
                json!([{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{IMAGE_B64}")}}])
            } else {
                json!("hi")
            };
            let mut b = json!({"model": model, "messages": [{"role": "user", "content": content}], "stream": stream});
            if stream {
                b["stream_options"] = json!({"include_usage": true});
            }
            if tools {
                b["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": params}}]);
            }
            ("/v1/chat/completions".into(), b)
        }
        Ingress::Messages => {
            let content = if image {
                json!([{"type": "text", "text": "hi"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": IMAGE_B64}}])
            } else {
                json!("hi")
            };
            let mut b = json!({"model": model, "max_tokens": 200, "messages": [{"role": "user", "content": content}], "stream": stream});
            if tools {
                b["tools"] = json!([{"name": "get_weather", "input_schema": params}]);
            }
            ("/v1/messages".into(), b)
        }
        Ingress::Responses => {
            let mut parts = vec![json!({"type": "input_text", "text": "hi"})];
            if image {
                parts.push(json!({"type": "input_image", "image_url": format!("data:image/png;base64,{IMAGE_B64}"), "detail": "auto"}));
            }
            let mut b = json!({"model": model, "input": [{"role": "user", "content": parts}], "stream": stream, "store": false});
            if tools {
                b["tools"] = json!([{"type": "function", "name": "get_weather", "parameters": params, "strict": false}]);
            }
            ("/v1/responses".into(), b)
        }
        Ingress::Gemini => {
            let mut parts = vec![json!({"text": "hi"})];
            if image {
                parts.push(json!({"inlineData": {"mimeType": "image/png", "data": IMAGE_B64}}));
            }
            let mut b = json!({"contents": [{"role": "user", "parts": parts}]});
            if tools {
                b["tools"] = json!([{"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": params}]}]);
            }
            let method = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            (format!("/v1beta/models/{model}:{method}"), b)
        }
    }
}

/// The `data:` payloads of an SSE body, with their event names.
fn events(body: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for frame in body.split("\n\n").flat_map(|f| f.split("\r\n\r\n")) {
        let mut name = String::new();
        for line in frame.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.trim().to_owned();
            } else if let Some(d) = line.strip_prefix("data: ")
                && let Ok(v) = serde_json::from_str(d.trim())
            {
                out.push((name.clone(), v));
            }
        }
    }
    out
}

/// Read one reply (or stream) in the ingress's schema.
fn read(ingress: Ingress, status: u16, body: &str, stream: bool) -> Seen {
    let mut s = Seen {
        status,
        ..Seen::default()
    };
    let whole: Value = if stream {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or(Value::Null)
    };
    let args_of = |v: &Value| match v {
        Value::String(t) => serde_json::from_str(t).unwrap_or(Value::Null),
        other => other.clone(),
    };
    match (ingress, stream) {
        (_, false) if status >= 400 => {
            s.error = whole
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        (Ingress::Chat, false) => {
            let m = &whole["choices"][0]["message"];
            s.text = m["content"].as_str().unwrap_or_default().to_owned();
            if let Some(c) = m["tool_calls"].get(0) {
                s.call = Some((
                    c["function"]["name"].as_str().unwrap_or_default().into(),
                    args_of(&c["function"]["arguments"]),
                ));
            }
            s.usage = whole["usage"]["prompt_tokens"]
                .as_u64()
                .zip(whole["usage"]["completion_tokens"].as_u64());
        }
        (Ingress::Chat, true) => {
            let mut name = String::new();
            let mut args = String::new();
            for (_, v) in events(body) {
                if let Some(e) = v.get("error") {
                    s.error = e["message"].as_str().map(str::to_owned);
                }
                if let Some(d) = v.pointer("/choices/0/delta") {
                    s.text.push_str(d["content"].as_str().unwrap_or_default());
                    if let Some(c) = d["tool_calls"].get(0) {
                        name.push_str(c["function"]["name"].as_str().unwrap_or_default());
                        args.push_str(c["function"]["arguments"].as_str().unwrap_or_default());
                    }
                }
                if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                    s.usage = u["prompt_tokens"]
                        .as_u64()
                        .zip(u["completion_tokens"].as_u64());
                }
            }
            if !name.is_empty() {
                s.call = Some((name, serde_json::from_str(&args).unwrap_or(Value::Null)));
            }
        }
        (Ingress::Messages, false) => {
            for b in whole["content"].as_array().into_iter().flatten() {
                match b["type"].as_str() {
                    Some("text") => s.text.push_str(b["text"].as_str().unwrap_or_default()),
                    Some("tool_use") => {
                        s.call = Some((
                            b["name"].as_str().unwrap_or_default().into(),
                            b["input"].clone(),
                        ))
                    }
                    _ => {}
                }
            }
            let u = &whole["usage"];
            let input = [
                "input_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
            ]
            .iter()
            .filter_map(|k| u[*k].as_u64())
            .sum();
            s.usage = u["output_tokens"].as_u64().map(|o| (input, o));
        }
        (Ingress::Messages, true) => {
            let (mut name, mut args, mut input, mut output) =
                (String::new(), String::new(), None, None);
            for (_, v) in events(body) {
                match v["type"].as_str() {
                    Some("message_start") => {
                        let u = &v["message"]["usage"];
                        input = Some(
                            [
                                "input_tokens",
                                "cache_read_input_tokens",
                                "cache_creation_input_tokens",
                            ]
                            .iter()
                            .filter_map(|k| u[*k].as_u64())
                            .sum::<u64>(),
                        );
                    }
                    Some("content_block_start") if v["content_block"]["type"] == "tool_use" => {
                        name = v["content_block"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .into();
                    }
                    Some("content_block_delta") => {
                        s.text
                            .push_str(v["delta"]["text"].as_str().unwrap_or_default());
                        args.push_str(v["delta"]["partial_json"].as_str().unwrap_or_default());
                    }
                    // Its usage is cumulative: the input too, once the provider said it.
                    Some("message_delta") => {
                        let u = &v["usage"];
                        output = u["output_tokens"].as_u64();
                        let total: u64 = [
                            "input_tokens",
                            "cache_read_input_tokens",
                            "cache_creation_input_tokens",
                        ]
                        .iter()
                        .filter_map(|k| u[*k].as_u64())
                        .sum();
                        if total > 0 {
                            input = Some(total);
                        }
                    }
                    Some("error") => s.error = v["error"]["message"].as_str().map(str::to_owned),
                    _ => {}
                }
            }
            if !name.is_empty() {
                s.call = Some((name, serde_json::from_str(&args).unwrap_or(Value::Null)));
            }
            s.usage = input.zip(output);
        }
        (Ingress::Responses, _) => {
            let response = if stream {
                let evs = events(body);
                for (_, v) in &evs {
                    if v["type"] == "error" {
                        s.error = v["message"].as_str().map(str::to_owned);
                    }
                }
                evs.into_iter()
                    .rev()
                    .find(|(_, v)| v["type"] == "response.completed")
                    .map(|(_, v)| v["response"].clone())
                    .unwrap_or(Value::Null)
            } else {
                whole
            };
            for item in response["output"].as_array().into_iter().flatten() {
                match item["type"].as_str() {
                    Some("message") => {
                        for c in item["content"].as_array().into_iter().flatten() {
                            s.text.push_str(c["text"].as_str().unwrap_or_default());
                        }
                    }
                    Some("function_call") => {
                        s.call = Some((
                            item["name"].as_str().unwrap_or_default().into(),
                            args_of(&item["arguments"]),
                        ))
                    }
                    _ => {}
                }
            }
            let u = &response["usage"];
            s.usage = u["input_tokens"].as_u64().zip(u["output_tokens"].as_u64());
        }
        (Ingress::Gemini, _) => {
            let chunks: Vec<Value> = if stream {
                events(body).into_iter().map(|(_, v)| v).collect()
            } else {
                vec![whole]
            };
            for c in &chunks {
                if let Some(e) = c.get("error") {
                    s.error = e["message"].as_str().map(str::to_owned);
                }
                for p in c
                    .pointer("/candidates/0/content/parts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if p.get("thought").is_none() {
                        s.text.push_str(p["text"].as_str().unwrap_or_default());
                    }
                    if let Some(f) = p.get("functionCall") {
                        s.call = Some((
                            f["name"].as_str().unwrap_or_default().into(),
                            f["args"].clone(),
                        ));
                    }
                }
                if let Some(u) = c.get("usageMetadata") {
                    let out = u["candidatesTokenCount"].as_u64().unwrap_or(0)
                        + u["thoughtsTokenCount"].as_u64().unwrap_or(0);
                    s.usage = u["promptTokenCount"].as_u64().map(|i| (i, out));
                }
            }
        }
    }
    s
}

async fn run(ingress: Ingress, p: &Provider, case: Case) -> Result<(), String> {
    let mock = MockProvider::start(p.profile).await;
    mock.push(play(wire(p, ingress), case));
    let gw = Gateway::start(&one_provider(p.kind), &[&mock]).await;
    let (path, body) = request(ingress, p.model, case);
    let stream = matches!(case, Case::Stream | Case::StreamTools | Case::Cancel);
    let resp = client()
        .post(gw.url(&path))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    if case == Case::Cancel {
        let mut body = resp.bytes_stream();
        let first = body.next().await;
        if !matches!(first, Some(Ok(_))) {
            return Err(format!("no first event ({status})"));
        }
        drop(body);
        let left = tokio::time::Instant::now();
        let closed = mock
            .wait_closed(1, Duration::from_secs(3))
            .await
            .ok_or("the provider's connection stayed open")?;
        let lag = closed.saturating_duration_since(left);
        return (lag <= Duration::from_secs(1))
            .then_some(())
            .ok_or(format!("closed {lag:?} after the client left"));
    }
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let seen = read(ingress, status, &text, stream && status == 200);
    let fail = |what: &str| Err(format!("{what}: {seen:?}\n{text}"));
    match case {
        Case::Text | Case::Stream | Case::Image => {
            if seen.status != 200 || seen.text != "Hello" {
                return fail("expected 200 and the text `Hello`");
            }
            if case != Case::Image && seen.usage != Some((12, 3)) {
                return fail("expected usage 12/3");
            }
            if case == Case::Image
                && !std::str::from_utf8(&mock.last_request().raw)
                    .unwrap_or("")
                    .contains(IMAGE_B64)
            {
                return Err(format!(
                    "the image did not reach the provider: {}",
                    mock.last_request().body
                ));
            }
        }
        Case::Tools | Case::StreamTools => {
            if seen.status != 200
                || seen.call != Some(("get_weather".into(), json!({"city": "Paris"})))
            {
                return fail("expected the get_weather call with Paris");
            }
        }
        Case::Usage => {
            if seen.usage != Some((12, 3)) {
                return fail("expected usage 12/3 (cached input counted as input)");
            }
        }
        Case::Error => {
            if seen.status != 400 || !seen.error.as_deref().unwrap_or("").contains(ERROR_TEXT) {
                return fail("expected a 400 carrying the provider's message");
            }
        }
        Case::Cancel => unreachable!(),
    }
    Ok(())
}

async fn matrix(ingress: Ingress, provider: &str) {
    let p = PROVIDERS.iter().find(|p| p.kind == provider).unwrap();
    let mut failures = Vec::new();
    for case in CASES {
        let declared = UNSUPPORTED
            .iter()
            .find(|(k, c, _)| *k == provider && *c == case);
        match (run(ingress, p, case).await, declared) {
            (Ok(()), None) => {}
            (Err(e), None) => failures.push(format!("{case:?}: {e}")),
            (Ok(()), Some(_)) => {
                failures.push(format!("{case:?}: declared unsupported, but it works"))
            }
            (Err(e), Some((_, _, instead))) if e.contains(instead) => {}
            (Err(e), Some((_, _, instead))) => {
                failures.push(format!("{case:?}: declared as `{instead}`, got {e}"))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{ingress:?} on {provider}:\n{}",
        failures.join("\n")
    );
}

macro_rules! matrix {
    ($($name:ident: $ingress:ident on $provider:literal;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                matrix(Ingress::$ingress, $provider).await;
            }
        )*
    };
}

matrix! {
    chat_on_openai: Chat on "openai";
    chat_on_openai_compatible: Chat on "openai-compatible";
    chat_on_mistral: Chat on "mistral";
    chat_on_anthropic: Chat on "anthropic";
    chat_on_gemini: Chat on "gemini";
    chat_on_bedrock: Chat on "bedrock";
    chat_on_azure: Chat on "azure-openai";
    messages_on_openai: Messages on "openai";
    messages_on_openai_compatible: Messages on "openai-compatible";
    messages_on_mistral: Messages on "mistral";
    messages_on_anthropic: Messages on "anthropic";
    messages_on_gemini: Messages on "gemini";
    messages_on_bedrock: Messages on "bedrock";
    messages_on_azure: Messages on "azure-openai";
    responses_on_openai: Responses on "openai";
    responses_on_openai_compatible: Responses on "openai-compatible";
    responses_on_mistral: Responses on "mistral";
    responses_on_anthropic: Responses on "anthropic";
    responses_on_gemini: Responses on "gemini";
    responses_on_bedrock: Responses on "bedrock";
    responses_on_azure: Responses on "azure-openai";
    gemini_on_openai: Gemini on "openai";
    gemini_on_openai_compatible: Gemini on "openai-compatible";
    gemini_on_mistral: Gemini on "mistral";
    gemini_on_anthropic: Gemini on "anthropic";
    gemini_on_gemini: Gemini on "gemini";
    gemini_on_bedrock: Gemini on "bedrock";
    gemini_on_azure: Gemini on "azure-openai";
}
