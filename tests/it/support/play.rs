//! A model played by a mock provider, in each provider's own wire format: the end-to-end
//! tests (real clients in `clients.rs`, the Vercel AI SDK in `frameworks.rs`) decide what
//! the model says at each step ([`Turn`]: text, and maybe a tool call) from the conversation
//! as the provider received it ([`results`]), and [`reply`] writes that turn as the provider
//! would, as one body or as the provider streams.

use serde_json::{Value, json};

use super::mock::Reply;
use super::wire::*;

/// A provider's wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Chat Completions (OpenAI, Azure OpenAI, Mistral, OpenAI-compatible servers).
    Chat,
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `generateContent` / `streamGenerateContent`.
    Gemini,
    /// Bedrock Converse / ConverseStream.
    Bedrock,
    /// OpenAI's Responses API.
    Responses,
}

/// A tool call the model makes.
#[derive(Clone, Debug)]
pub struct Call {
    pub id: String,
    pub name: String,
    /// The arguments (a JSON object), in the fragments a stream sends them in.
    pub args: Vec<String>,
    /// Gemini 3's `thoughtSignature` on the call, as Gemini signs its function calls.
    pub signature: Option<String>,
}

impl Call {
    pub fn new(id: &str, name: &str, args: &[&str]) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            signature: None,
        }
    }

    pub fn signed(mut self, signature: &str) -> Self {
        self.signature = Some(signature.to_owned());
        self
    }

    fn input(&self) -> Value {
        serde_json::from_str(&self.args.concat()).expect("tool call arguments are JSON")
    }
}

/// What the model answers at one step: text (sent before the call, if both), maybe a call,
/// and the usage it reports (input, output tokens).
#[derive(Clone, Debug)]
pub struct Turn {
    pub text: String,
    pub call: Option<Call>,
    pub usage: (u64, u64),
}

/// Whether the request asks for a stream (Gemini and Bedrock say so in the path).
pub fn streamed(wire: Wire, path: &str, body: &Value) -> bool {
    match wire {
        Wire::Gemini => path.contains(":streamGenerateContent"),
        Wire::Bedrock => path.ends_with("/converse-stream"),
        _ => body["stream"] == true,
    }
}

/// The conversation's items in the wire's request: `messages`, Gemini's `contents`, the
/// Responses API's `input` items.
pub fn items(wire: Wire, body: &Value) -> Vec<Value> {
    let key = match wire {
        Wire::Gemini => "contents",
        Wire::Responses => "input",
        _ => "messages",
    };
    body[key].as_array().cloned().unwrap_or_default()
}

/// The tool result an item of the conversation carries, serialized as the provider
/// received it (`None`: not a tool result).
pub fn result_of(wire: Wire, item: &Value) -> Option<String> {
    let find = |list: &Value, is: &dyn Fn(&Value) -> bool| {
        list.as_array()
            .and_then(|l| l.iter().find(|x| is(x)).map(Value::to_string))
    };
    match wire {
        Wire::Chat => (item["role"] == "tool").then(|| item["content"].to_string()),
        Wire::Anthropic => find(&item["content"], &|b| b["type"] == "tool_result"),
        Wire::Gemini => find(&item["parts"], &|p| p.get("functionResponse").is_some()),
        Wire::Bedrock => find(&item["content"], &|b| b.get("toolResult").is_some()),
        Wire::Responses => (item["type"] == "function_call_output").then(|| item.to_string()),
    }
}

/// Every tool result in the request, in order.
pub fn results(wire: Wire, body: &Value) -> Vec<String> {
    items(wire, body)
        .iter()
        .filter_map(|i| result_of(wire, i))
        .collect()
}

/// Whether the request offers tools.
pub fn offers_tools(wire: Wire, body: &Value) -> bool {
    let tools = match wire {
        Wire::Bedrock => &body["toolConfig"]["tools"],
        _ => &body["tools"],
    };
    tools.as_array().is_some_and(|t| !t.is_empty())
}

/// `text` in two pieces, as a stream sends it (split after the first space).
pub fn halves(text: &str) -> (&str, &str) {
    text.split_at(text.find(' ').map_or(text.len(), |i| i + 1))
}

/// The model's `turn` in the wire format, streamed when `stream`; `model` is the name the
/// reply carries where the format has one.
pub fn reply(wire: Wire, stream: bool, model: &str, turn: &Turn) -> Reply {
    match wire {
        Wire::Chat => chat(turn, stream),
        Wire::Anthropic => anthropic(turn, stream, model),
        Wire::Gemini => gemini(turn, stream),
        Wire::Bedrock => bedrock(turn, stream),
        Wire::Responses => responses(turn, stream, model),
    }
}

fn chat(t: &Turn, stream: bool) -> Reply {
    let (input, output) = t.usage;
    let finish = if t.call.is_some() {
        "tool_calls"
    } else {
        "stop"
    };
    let call = |c: &Call, arguments: &str| json!({"index": 0, "id": c.id, "type": "function", "function": {"name": c.name, "arguments": arguments}});
    if !stream {
        let mut body = chat_body(&t.text, input, output);
        if let Some(c) = &t.call {
            let mut c = call(c, &c.args.concat());
            c.as_object_mut().unwrap().remove("index");
            body["choices"][0]["message"]["tool_calls"] = json!([c]);
            body["choices"][0]["finish_reason"] = json!(finish);
        }
        return Reply::json(200, body);
    }
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    if !t.text.is_empty() {
        let (a, b) = halves(&t.text);
        events.push(chunk(json!({"content": a}), None));
        events.push(chunk(json!({"content": b}), None));
    }
    if let Some(c) = &t.call {
        events.push(chunk(json!({"tool_calls": [call(c, "")]}), None));
        for part in &c.args {
            events.push(chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}),
                None,
            ));
        }
    }
    events.push(chunk(json!({}), Some(finish)));
    events.push(usage_chunk(input, output));
    Reply::sse(events)
}

fn anthropic(t: &Turn, stream: bool, model: &str) -> Reply {
    let (input, output) = t.usage;
    let stop = if t.call.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    let tool_use = |c: &Call| json!({"type": "tool_use", "id": c.id, "name": c.name, "input": {}});
    let message = |content: Value, stop: Value, output: u64| {
        json!({"id": "msg_01PLAY", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": input, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": output}})
    };
    if !stream {
        let mut content = Vec::new();
        if !t.text.is_empty() {
            content.push(json!({"type": "text", "text": t.text}));
        }
        if let Some(c) = &t.call {
            let mut block = tool_use(c);
            block["input"] = c.input();
            content.push(block);
        }
        return Reply::json(200, message(json!(content), json!(stop), output));
    }
    let mut events = vec![(
        "message_start",
        json!({"type": "message_start", "message": message(json!([]), Value::Null, 1)}),
    )];
    let mut index = 0;
    if !t.text.is_empty() {
        events.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        ));
        let (a, b) = halves(&t.text);
        for piece in [a, b] {
            events.push((
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}),
            ));
        }
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    if let Some(c) = &t.call {
        events.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": tool_use(c)}),
        ));
        for part in &c.args {
            events.push((
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": part}}),
            ));
        }
        events.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }
    // As Anthropic streams: a ping after the first block opens.
    events.insert(events.len().min(2), ("ping", json!({"type": "ping"})));
    events.push((
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": output}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    named_sse(&events)
}

fn gemini(t: &Turn, stream: bool) -> Reply {
    let (input, output) = t.usage;
    let usage = |candidates: u64| json!({"promptTokenCount": input, "candidatesTokenCount": candidates, "totalTokenCount": input + candidates});
    // Gemini answers a call with finish reason STOP too; the call is in the parts.
    let call = t.call.as_ref().map(|c| {
        let mut part = json!({"functionCall": {"name": c.name, "args": c.input()}});
        if let Some(s) = &c.signature {
            part["thoughtSignature"] = json!(s);
        }
        part
    });
    if !stream {
        let mut parts = Vec::new();
        if !t.text.is_empty() {
            parts.push(json!({"text": t.text}));
        }
        parts.extend(call);
        let mut body = gemini_chunk(json!(parts), Some("STOP"));
        body["usageMetadata"] = usage(output);
        return Reply::json(200, body);
    }
    // As Gemini streams: usage on every chunk, the counts so far.
    let mut chunks = Vec::new();
    let mut parts = Vec::new();
    if !t.text.is_empty() {
        let (a, b) = halves(&t.text);
        let mut first = gemini_chunk(json!([{"text": a}]), None);
        first["usageMetadata"] = usage(1);
        chunks.push(first);
        parts.push(json!({"text": b}));
    }
    parts.extend(call);
    let mut last = gemini_chunk(json!(parts), Some("STOP"));
    last["usageMetadata"] = usage(output);
    chunks.push(last);
    gemini_stream(chunks)
}

fn bedrock(t: &Turn, stream: bool) -> Reply {
    let (input, output) = t.usage;
    let stop = if t.call.is_some() {
        "tool_use"
    } else {
        "end_turn"
    };
    let usage =
        json!({"inputTokens": input, "outputTokens": output, "totalTokens": input + output});
    if !stream {
        let mut content = Vec::new();
        if !t.text.is_empty() {
            content.push(json!({"text": t.text}));
        }
        if let Some(c) = &t.call {
            content
                .push(json!({"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.input()}}));
        }
        return Reply::json(
            200,
            json!({"output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 5}}),
        );
    }
    let mut frames = vec![bedrock_event("messageStart", json!({"role": "assistant"}))];
    let mut index = 0;
    if !t.text.is_empty() {
        let (a, b) = halves(&t.text);
        for piece in [a, b] {
            frames.push(bedrock_event(
                "contentBlockDelta",
                json!({"delta": {"text": piece}, "contentBlockIndex": index}),
            ));
        }
        frames.push(bedrock_event(
            "contentBlockStop",
            json!({"contentBlockIndex": index}),
        ));
        index += 1;
    }
    if let Some(c) = &t.call {
        frames.push(bedrock_event(
            "contentBlockStart",
            json!({"start": {"toolUse": {"toolUseId": c.id, "name": c.name}}, "contentBlockIndex": index}),
        ));
        for part in &c.args {
            frames.push(bedrock_event(
                "contentBlockDelta",
                json!({"delta": {"toolUse": {"input": part}}, "contentBlockIndex": index}),
            ));
        }
        frames.push(bedrock_event(
            "contentBlockStop",
            json!({"contentBlockIndex": index}),
        ));
    }
    frames.push(bedrock_event("messageStop", json!({"stopReason": stop})));
    frames.push(bedrock_event(
        "metadata",
        json!({"usage": usage, "metrics": {"latencyMs": 5}}),
    ));
    bedrock_stream(frames)
}

/// The ids of the Responses API reply to `turn`: the response's, its message's and its
/// function call's, distinct for distinct turns, as OpenAI's are (the gateway stores
/// responses by id, and clients refer to stored items by theirs).
fn response_ids(t: &Turn) -> (String, String, String) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&t.text, t.call.as_ref().map(|c| (&c.id, &c.args)), t.usage).hash(&mut h);
    let n = h.finish();
    (
        format!("resp_play{n:016x}"),
        format!("msg_play{n:016x}"),
        format!("fc_play{n:016x}"),
    )
}

/// The output items of the Responses API reply to `turn`, as OpenAI stores them: what an
/// `item_reference` to one of their ids stands for.
pub fn response_items(t: &Turn) -> Vec<Value> {
    let (_, msg_id, fc_id) = response_ids(t);
    let mut items = Vec::new();
    if !t.text.is_empty() {
        items.push(json!({"id": msg_id, "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": t.text, "annotations": [], "logprobs": []}]}));
    }
    if let Some(c) = &t.call {
        items.push(
            json!({"id": fc_id, "type": "function_call", "status": "completed",
            "call_id": c.id, "name": c.name, "arguments": c.args.concat()}),
        );
    }
    items
}

fn responses(t: &Turn, stream: bool, model: &str) -> Reply {
    let (input, output) = t.usage;
    let (resp_id, msg_id, fc_id) = response_ids(t);
    let (msg_id, fc_id) = (msg_id.as_str(), fc_id.as_str());
    let message = |status: &str| json!({"id": msg_id, "type": "message", "status": status, "role": "assistant", "content": []});
    let function_call = |c: &Call, status: &str| json!({"id": fc_id, "type": "function_call", "status": status, "call_id": c.id, "name": c.name, "arguments": ""});
    let done = response_items(t);
    let response = |status: &str, output_items: Value, usage: Value| {
        json!({"id": resp_id, "object": "response", "created_at": 1_700_000_000, "status": status,
            "model": model, "output": output_items, "parallel_tool_calls": true, "tool_choice": "auto",
            "tools": [], "error": null, "incomplete_details": null, "usage": usage})
    };
    let usage = json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": input + output});
    if !stream {
        return Reply::json(200, response("completed", json!(done), usage));
    }
    let mut events: Vec<(&str, Value)> = vec![
        (
            "response.created",
            json!({"type": "response.created", "response": response("in_progress", json!([]), Value::Null)}),
        ),
        (
            "response.in_progress",
            json!({"type": "response.in_progress", "response": response("in_progress", json!([]), Value::Null)}),
        ),
    ];
    let mut index = 0;
    if !t.text.is_empty() {
        let part = json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
        events.push(("response.output_item.added", json!({"type": "response.output_item.added", "output_index": index, "item": message("in_progress")})));
        events.push(("response.content_part.added", json!({"type": "response.content_part.added", "item_id": msg_id, "output_index": index, "content_index": 0, "part": part})));
        let (a, b) = halves(&t.text);
        for piece in [a, b] {
            events.push(("response.output_text.delta", json!({"type": "response.output_text.delta", "item_id": msg_id, "output_index": index, "content_index": 0, "delta": piece, "logprobs": []})));
        }
        events.push(("response.output_text.done", json!({"type": "response.output_text.done", "item_id": msg_id, "output_index": index, "content_index": 0, "text": t.text, "logprobs": []})));
        let mut part = part;
        part["text"] = json!(t.text);
        events.push(("response.content_part.done", json!({"type": "response.content_part.done", "item_id": msg_id, "output_index": index, "content_index": 0, "part": part})));
        events.push((
            "response.output_item.done",
            json!({"type": "response.output_item.done", "output_index": index, "item": done[0]}),
        ));
        index += 1;
    }
    if let Some(c) = &t.call {
        events.push(("response.output_item.added", json!({"type": "response.output_item.added", "output_index": index, "item": function_call(c, "in_progress")})));
        for part in &c.args {
            events.push(("response.function_call_arguments.delta", json!({"type": "response.function_call_arguments.delta", "item_id": fc_id, "output_index": index, "delta": part})));
        }
        events.push(("response.function_call_arguments.done", json!({"type": "response.function_call_arguments.done", "item_id": fc_id, "output_index": index, "arguments": c.args.concat()})));
        events.push(("response.output_item.done", json!({"type": "response.output_item.done", "output_index": index, "item": done[index]})));
    }
    events.push((
        "response.completed",
        json!({"type": "response.completed", "response": response("completed", json!(done), usage)}),
    ));
    for (i, (_, e)) in events.iter_mut().enumerate() {
        e["sequence_number"] = json!(i);
    }
    named_sse(&events)
}
