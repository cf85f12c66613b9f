//! How each mock profile behaves like its provider: what the provider refuses before
//! answering (validations against the published contracts in ../shared/specs, signatures,
//! credentials, paths) and what it answers by default.

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Value, json};

use super::mock::{AWS_KEY_ID, AWS_SECRET, AWS_TOKEN, Body, Reply};
use super::wire::*;

/// What Bedrock refuses: a request neither SigV4-signed with the test credentials (the
/// signature recomputed over the request as received must match) nor carrying a Bedrock
/// API key (403, as AWS answers); a path that is not a model operation (404); a Converse
/// body the service model does not allow (400 `ValidationException`).
pub(super) fn bedrock_validate(
    path: &str,
    headers: &HeaderMap,
    raw: &Bytes,
    body: &Value,
) -> Option<(u16, Value)> {
    let err = |status: u16, message: String| Some((status, json!({"message": message})));
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.starts_with("AWS4-HMAC-SHA256 ") {
        if let Err(why) = verify_sigv4(path, headers, raw) {
            return err(
                403,
                format!(
                    "The request signature we calculated does not match the signature you provided: {why}"
                ),
            );
        }
    } else if !auth.starts_with("Bearer ") {
        return err(403, "Missing Authentication Token".into());
    }
    let Some(rest) = path.strip_prefix("/model/") else {
        return err(404, "not a model operation".into());
    };
    let shape = match rest.rsplit_once('/').map(|(_, op)| op) {
        Some("converse" | "converse-stream") => "ConverseRequest",
        Some("invoke") => return None,
        _ => return err(404, "unknown operation".into()),
    };
    let violations = super::bedrock_spec::check(shape, body);
    if violations.is_empty() {
        None
    } else {
        err(
            400,
            format!("ValidationException: {}", violations.join("; ")),
        )
    }
}

/// Recompute the SigV4 signature of a request as received, with the test credentials.
fn verify_sigv4(path: &str, headers: &HeaderMap, raw: &Bytes) -> Result<(), String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let got = headers["authorization"]
        .to_str()
        .map_err(|e| e.to_string())?;
    let signed: Vec<&str> = got
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .ok_or("no SignedHeaders")?
        .split(';')
        .collect();
    if !signed.contains(&"host") || !signed.contains(&"x-amz-date") {
        return Err(format!("host and x-amz-date must be signed: {signed:?}"));
    }
    if headers.get("x-amz-security-token").map(|v| v.as_bytes()) != Some(AWS_TOKEN.as_bytes()) {
        return Err("missing or wrong x-amz-security-token".into());
    }
    let date = headers["x-amz-date"].to_str().map_err(|e| e.to_string())?;
    let time = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", date)
        .map_err(|e| e.to_string())?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| e.to_string())?
        .timestamp();
    let time = std::time::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(time.as_second()).unwrap_or(0));
    let identity = aws_credential_types::Credentials::new(
        AWS_KEY_ID,
        AWS_SECRET,
        Some(AWS_TOKEN.into()),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("bedrock")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let host = headers["host"].to_str().map_err(|e| e.to_string())?;
    let uri = format!("http://{host}{path}");
    let pairs: Vec<(String, String)> = signed
        .iter()
        .filter(|h| !matches!(**h, "x-amz-date" | "x-amz-security-token"))
        .filter_map(|h| Some(((*h).to_owned(), headers.get(*h)?.to_str().ok()?.to_owned())))
        .collect();
    let req = SignableRequest::new(
        "POST",
        uri,
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(raw),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(req, &params).map_err(|e| e.to_string())?.into_parts();
    let want = instructions
        .headers()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.to_owned())
        .ok_or("no signature computed")?;
    if want == got {
        Ok(())
    } else {
        Err(format!("expected {want}"))
    }
}

pub(super) fn bedrock_default_reply(path: &str) -> Reply {
    if path.ends_with("/converse-stream") {
        return bedrock_stream(vec![
            bedrock_event("messageStart", json!({"role": "assistant"})),
            bedrock_event(
                "contentBlockDelta",
                json!({"delta": {"text": "Hello from the mock"}, "contentBlockIndex": 0}),
            ),
            bedrock_event("contentBlockStop", json!({"contentBlockIndex": 0})),
            bedrock_event("messageStop", json!({"stopReason": "end_turn"})),
            bedrock_event(
                "metadata",
                json!({"usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15}, "metrics": {"latencyMs": 5}}),
            ),
        ]);
    }
    if path.ends_with("/invoke") {
        return Reply::json(
            200,
            json!({"embedding": [0.25, 0.5], "inputTextTokenCount": 4}),
        );
    }
    Reply::json(
        200,
        json!({"output": {"message": {"role": "assistant", "content": [{"text": "Hello from the mock"}]}},
            "stopReason": "end_turn", "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15}, "metrics": {"latencyMs": 5}}),
    )
}

/// What Gemini refuses: no `x-goog-api-key` (400 in Google's shape, as Google answers), a
/// path that is not `/v1beta/models/{model}:{method}` (404), a body the discovery document
/// does not allow (400, naming every violation).
pub(super) fn gemini_validate(
    path: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Option<(u16, Value)> {
    let err = |code: u16, status: &str, message: &str| {
        Some((
            code,
            json!({"error": {"code": code, "message": message, "status": status}}),
        ))
    };
    if headers.get("x-goog-api-key").is_none() {
        return err(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
        );
    }
    let Some((_, method)) = path
        .strip_prefix("/v1beta/models/")
        .and_then(|rest| rest.split_once(':'))
    else {
        return err(404, "NOT_FOUND", "not a model method");
    };
    let schema = match method {
        "generateContent" | "streamGenerateContent" => "GenerateContentRequest",
        "batchEmbedContents" => "BatchEmbedContentsRequest",
        _ => return err(404, "NOT_FOUND", "unknown method"),
    };
    let violations = super::gemini_spec::check(schema, body);
    if !violations.is_empty() {
        return err(
            400,
            "INVALID_ARGUMENT",
            &format!("Invalid JSON payload: {}", violations.join("; ")),
        );
    }
    let model = path
        .strip_prefix("/v1beta/models/")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_default();
    gemini_turn_rules(model, body).and_then(|message| err(400, "INVALID_ARGUMENT", &message))
}

/// What Gemini refuses in a conversation beyond its schema: a function-call turn not
/// answered by the next turn with one function response per call; and, on Gemini 3, a step of
/// the current turn (since the last user text) whose first function call carries no
/// `thoughtSignature`.
fn gemini_turn_rules(model: &str, body: &Value) -> Option<String> {
    let contents = body["contents"].as_array()?;
    let calls = |c: &Value| {
        c["parts"].as_array().map_or(0, |p| {
            p.iter().filter(|p| p.get("functionCall").is_some()).count()
        })
    };
    let responses = |c: &Value| {
        c["parts"].as_array().map_or(0, |p| {
            p.iter()
                .filter(|p| p.get("functionResponse").is_some())
                .count()
        })
    };
    for (i, c) in contents.iter().enumerate() {
        let n = calls(c);
        if n == 0 || c["role"] != "model" {
            continue;
        }
        // The last turn may be the model's own calls only when nothing answers them yet.
        let Some(next) = contents.get(i + 1) else {
            continue;
        };
        if next["role"] != "user" || responses(next) == 0 {
            return Some(
                "Please ensure that function response turn comes immediately after a function call turn."
                    .to_owned(),
            );
        }
        if responses(next) != n {
            return Some("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.".to_owned());
        }
    }
    if !model.starts_with("gemini-3") {
        return None;
    }
    let user_text = |c: &Value| {
        c["role"] == "user"
            && c["parts"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p.get("text").is_some()))
    };
    let start = contents.iter().rposition(user_text).unwrap_or(0);
    for (i, c) in contents.iter().enumerate().skip(start) {
        if c["role"] != "model" {
            continue;
        }
        let first_call = c["parts"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p.get("functionCall").is_some()));
        if let Some(part) = first_call
            && part.get("thoughtSignature").is_none()
        {
            let name = part["functionCall"]["name"].as_str().unwrap_or_default();
            return Some(format!(
                "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{name}` , position {}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                i + 1
            ));
        }
    }
    None
}

/// Gemini's own reply: text, or embeddings, or a stream of one chunk.
pub(super) fn gemini_default_reply(path: &str, body: &Value) -> Reply {
    if path.ends_with(":batchEmbedContents") {
        let n = body["requests"].as_array().map_or(0, Vec::len);
        let embeddings: Vec<Value> = (0..n).map(|i| json!({"values": [0.5, i as f64]})).collect();
        return Reply::json(200, json!({"embeddings": embeddings}));
    }
    let chunk = gemini_chunk(json!([{"text": "Hello from the mock"}]), Some("STOP"));
    if path.contains(":streamGenerateContent") {
        return gemini_stream(vec![chunk]);
    }
    Reply::json(200, chunk)
}

/// What Azure OpenAI refuses before looking at the body, in its error shape: no `api-key`
/// (401), a path that is not a deployment's operation (404), no `api-version` (400).
pub(super) fn azure_validate(
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<(u16, Value)> {
    let err = |status: u16, code: &str, message: &str| {
        Some((status, json!({"error": {"code": code, "message": message}})))
    };
    if headers.get("api-key").is_none() || headers.get("authorization").is_some() {
        return err(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint.",
        );
    }
    let op = path
        .strip_prefix("/openai/deployments/")
        .and_then(|rest| rest.split_once('/'))
        .map(|(_, op)| op);
    if !matches!(op, Some("chat/completions" | "embeddings")) {
        return err(404, "404", "Resource not found");
    }
    if !query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("api-version="))) {
        return err(400, "missing_api_version", "Missing API version.");
    }
    None
}

/// What api.anthropic.com refuses before looking at the request: a missing key or version
/// (401/400), a body without the required fields (400), in Anthropic's error shape.
pub(super) fn anthropic_validate(
    path: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Option<(u16, Value)> {
    let err = |status: u16, kind: &str, message: &str| {
        Some((
            status,
            json!({"type": "error", "error": {"type": kind, "message": message}}),
        ))
    };
    if path != "/v1/messages" && path != "/v1/messages/count_tokens" {
        return err(404, "not_found_error", "Not Found");
    }
    if headers.get("x-api-key").is_none() || headers.get("authorization").is_some() {
        return err(401, "authentication_error", "x-api-key header is required");
    }
    if headers.get("anthropic-version").is_none() {
        return err(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
        );
    }
    let counting = path.ends_with("/count_tokens");
    // Without a beta header, only the GA fields (`CreateMessageParams` is closed).
    if !counting && headers.get("anthropic-beta").is_none() {
        let unknown = body
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys())
            .find(|k| !ANTHROPIC_FIELDS.contains(&k.as_str()));
        if let Some(k) = unknown {
            return err(
                400,
                "invalid_request_error",
                &format!("{k}: Extra inputs are not permitted"),
            );
        }
    }
    if let Some(message) = anthropic_tool_pairs(body) {
        return err(400, "invalid_request_error", &message);
    }
    for field in ["model", "max_tokens", "messages"] {
        if body.get(field).is_none() && !(counting && field == "max_tokens") {
            return err(
                400,
                "invalid_request_error",
                &format!("{field}: Field required"),
            );
        }
    }
    if counting {
        for field in ["max_tokens", "stream"] {
            if body.get(field).is_some() {
                let msg = format!("{field}: Extra inputs are not permitted");
                return err(400, "invalid_request_error", &msg);
            }
        }
        // A count that no estimate would give, so a test can tell who counted.
        return Some((200, json!({"input_tokens": ANTHROPIC_COUNT})));
    }
    None
}

/// `CreateMessageParams`' members in Anthropic's published spec (`additionalProperties: false`).
const ANTHROPIC_FIELDS: &[&str] = &[
    "model",
    "messages",
    "cache_control",
    "container",
    "inference_geo",
    "max_tokens",
    "metadata",
    "output_config",
    "service_tier",
    "stop_sequences",
    "stream",
    "system",
    "temperature",
    "thinking",
    "tool_choice",
    "tools",
    "top_k",
    "top_p",
];

/// Anthropic's pairing rule: every `tool_use` of an assistant turn is answered by a
/// `tool_result` in the very next message, and every `tool_result` answers a `tool_use` of the
/// message before it.
fn anthropic_tool_pairs(body: &Value) -> Option<String> {
    let messages = body["messages"].as_array()?;
    let blocks = |m: &Value, kind: &str, id: &str| -> Vec<String> {
        m["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == kind)
            .filter_map(|b| b[id].as_str().map(str::to_owned))
            .collect()
    };
    for (i, m) in messages.iter().enumerate() {
        let results = blocks(m, "tool_result", "tool_use_id");
        let previous_uses = i
            .checked_sub(1)
            .map(|p| blocks(&messages[p], "tool_use", "id"))
            .unwrap_or_default();
        if let Some(stray) = results.iter().find(|r| !previous_uses.contains(r)) {
            return Some(format!(
                "messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {stray}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            ));
        }
        let uses = blocks(m, "tool_use", "id");
        if uses.is_empty() {
            continue;
        }
        let answered = messages
            .get(i + 1)
            .map(|n| blocks(n, "tool_result", "tool_use_id"))
            .unwrap_or_default();
        let missing: Vec<&String> = uses.iter().filter(|u| !answered.contains(u)).collect();
        // The last assistant turn may end in calls nobody has answered yet.
        if !missing.is_empty() && i + 1 < messages.len() {
            let ids: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            return Some(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                ids.join(", ")
            ));
        }
    }
    None
}

/// OpenAI's pairing rule: an assistant message's `tool_calls` are each answered by a `tool`
/// message right after it, and a `tool` message answers a call of the assistant message
/// before its run of tool messages.
pub(super) fn openai_tool_pairs(body: &Value) -> Option<(u16, Value)> {
    let messages = body["messages"].as_array()?;
    let err = |param: String, message: String| {
        Some((
            400,
            json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": null}}),
        ))
    };
    let mut open: Vec<String> = Vec::new();
    let mut calls_at = 0;
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or_default();
        if role == "tool" {
            let id = m["tool_call_id"].as_str().unwrap_or_default();
            match open.iter().position(|o| o == id) {
                Some(k) => {
                    open.remove(k);
                }
                None => {
                    return err(
                        format!("messages.[{i}].role"),
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.".to_owned(),
                    );
                }
            }
            continue;
        }
        if !open.is_empty() {
            return err(
                format!("messages.[{calls_at}].role"),
                format!(
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                    open.join(", ")
                ),
            );
        }
        if let Some(calls) = m["tool_calls"].as_array() {
            open = calls
                .iter()
                .filter_map(|c| c["id"].as_str().map(str::to_owned))
                .collect();
            calls_at = i;
        }
    }
    None
}

pub(super) fn anthropic_default_reply(stream: bool) -> Reply {
    let body = if stream {
        Body::SseText(ANTHROPIC_STREAM.to_owned())
    } else {
        Body::Raw(ANTHROPIC_MESSAGE)
    };
    Reply {
        body,
        ..Reply::json(200, Value::Null)
    }
}

pub(super) fn embeddings_reply(body: &Value) -> Reply {
    let n = body["input"].as_array().map_or(1, Vec::len);
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"object": "embedding", "embedding": [0.1, 0.2, i as f64], "index": i}))
        .collect();
    Reply::json(
        200,
        json!({"object": "list", "data": data, "model": "mock-embed", "usage": {"prompt_tokens": 5, "total_tokens": 5}}),
    )
}

/// What api.mistral.ai would refuse, as its status and body; `None` when the request is
/// acceptable.
pub(super) fn mistral_validate(
    two_level_models: &[String],
    path: &str,
    body: &Value,
) -> Option<(u16, Value)> {
    // The body is parsed against the schema (422) before the conversation is validated.
    let schema = if path.ends_with("/chat/completions") {
        "ChatCompletionRequest"
    } else {
        "EmbeddingRequest"
    };
    if let Some(errors) = super::mistral_spec::validate(schema, body) {
        return Some((
            422,
            json!({"detail": errors.iter().map(|e| json!({"type": "extra_forbidden", "loc": ["body"], "msg": e})).collect::<Vec<_>>()}),
        ));
    }
    mistral_message_order(body)
        .map(|message| {
            (
                400,
                json!({"object": "error", "message": message, "type": "invalid_request_message_order", "param": null, "code": "3230"}),
            )
        })
        .or_else(|| mistral_model_rules(two_level_models, body).map(|b| (422, b)))
}

/// The role order Mistral's serving validator enforces (mistral-common): after a tool result
/// only an assistant turn or another result, after a user turn no tool result, a tool result
/// only after an assistant turn; and the conversation ends with a user turn or tool results
/// (or an assistant turn with `prefix`).
fn mistral_message_order(body: &Value) -> Option<String> {
    let messages = body["messages"].as_array()?;
    let mut previous: Option<&str> = None;
    for m in messages {
        let role = m["role"].as_str().unwrap_or_default();
        if let Some(prev) = previous {
            let allowed: &[&str] = match prev {
                "system" => &["user", "assistant", "system"],
                "user" => &["assistant", "system", "user"],
                "assistant" => &["assistant", "user", "tool"],
                "tool" => &["assistant", "tool"],
                _ => &[],
            };
            if !allowed.contains(&role) {
                return Some(format!("Unexpected role '{role}' after role '{prev}'"));
            }
        }
        previous = Some(role);
    }
    let last = messages.last()?;
    let role = last["role"].as_str().unwrap_or_default();
    let prefix = last["prefix"] == true;
    if !(role == "user" || role == "tool" || (role == "assistant" && prefix)) {
        return Some(format!(
            "Expected last role User or Tool (or Assistant with prefix True) for serving but got {role}"
        ));
    }
    None
}

/// What Mistral refuses of tool-call ids and per-model reasoning levels, as its body.
fn mistral_model_rules(two_level_models: &[String], body: &Value) -> Option<Value> {
    for m in body["messages"].as_array().into_iter().flatten() {
        let ids = m["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str());
        for id in ids.chain(m["tool_call_id"].as_str()) {
            if id.len() != 9 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Some(
                    json!({"object": "error", "message": format!("Tool call id was {id} but must be a-z, A-Z, 0-9, with a length of 9."), "type": "invalid_request_message_order", "param": null, "code": "3280"}),
                );
            }
        }
    }
    let model = body["model"].as_str().unwrap_or_default();
    if let Some(e) = body["reasoning_effort"].as_str()
        && two_level_models.iter().any(|m| m == model)
        && !matches!(e, "none" | "high")
    {
        return Some(
            json!({"detail": [{"type": "literal_error", "loc": ["body", "reasoning_effort"], "msg": "Input should be 'high' or 'none'", "input": e}]}),
        );
    }
    None
}

/// The output ceilings the providers enforce, by model-name prefix (most specific first),
/// as their model pages and their own refusals state them: a request asking for more is
/// refused, in each provider's own words, as the live APIs do. Mistral documents none.
const OUTPUT_CEILINGS: &[(&str, u64)] = &[
    ("gpt-4o-2024-05-13", 4_096),
    ("gpt-4o", 16_384),
    ("gpt-4.1", 32_768),
    ("gpt-5", 128_000),
    ("o3", 100_000),
    ("o4-mini", 100_000),
    ("claude-opus-4-1", 32_000),
    ("claude-opus-4-5", 64_000),
    ("claude-sonnet-4-5", 64_000),
    ("claude-haiku-4-5", 64_000),
    ("claude-3-5-haiku", 8_192),
    ("gemini-2.5-", 65_536),
    ("gemini-3", 65_536),
];

fn output_ceiling(model: &str) -> Option<u64> {
    // Bedrock ids: `us.anthropic.claude-…-v1:0`.
    let model = model.rsplit_once("anthropic.").map_or(model, |(_, m)| m);
    OUTPUT_CEILINGS
        .iter()
        .find(|(prefix, _)| model.starts_with(prefix))
        .map(|(_, max)| *max)
}

/// A request for more output tokens than its model can produce, refused as the provider
/// refuses it (`None`: within the ceiling, or a model without one).
pub(super) fn output_ceiling_refusal(
    profile: super::mock::Profile,
    path: &str,
    body: &Value,
) -> Option<(u16, Value)> {
    use super::mock::Profile;
    let asked = |v: &Value| v.as_u64();
    match profile {
        Profile::OpenAi => {
            let model = body["model"].as_str()?;
            let max = output_ceiling(model)?;
            let (field, n) = ["max_completion_tokens", "max_tokens", "max_output_tokens"]
                .into_iter()
                .find_map(|f| asked(&body[f]).map(|n| (f, n)))?;
            (n > max).then(|| {
                (400, json!({"error": {
                    "message": format!("{field} is too large: {n}. This model supports at most {max} completion tokens, whereas you provided {n}."),
                    "type": "invalid_request_error", "param": field, "code": "invalid_value"}}))
            })
        }
        Profile::Anthropic => {
            let model = body["model"].as_str()?;
            let max = output_ceiling(model)?;
            let n = asked(&body["max_tokens"])?;
            (n > max).then(|| {
                (400, json!({"type": "error", "error": {"type": "invalid_request_error",
                    "message": format!("max_tokens: {n} > {max}, which is the maximum allowed number of output tokens for {model}")}}))
            })
        }
        Profile::Gemini => {
            let model = path.strip_prefix("/v1beta/models/")?.split(':').next()?;
            let max = output_ceiling(model)?;
            let n = asked(&body["generationConfig"]["maxOutputTokens"])?;
            (n > max).then(|| {
                (400, json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                    "message": format!("Unable to submit request because it has a maxOutputTokens value of {n} but the supported range is from 1 (inclusive) to {} (exclusive). Update the value and try again.", max + 1)}}))
            })
        }
        Profile::Bedrock => {
            let model = path.strip_prefix("/model/")?.rsplit_once('/')?.0;
            let max = output_ceiling(model)?;
            let n = asked(&body["inferenceConfig"]["maxTokens"])?;
            (n > max).then(|| {
                (400, json!({"message": format!("The maximum tokens you requested exceeds the model limit of {max}. Try again with a maximum tokens value that is lower than {max}.")}))
            })
        }
        Profile::Mistral | Profile::Azure => None,
    }
}

/// OpenAI's models that do not reason, by name prefix: they refuse a reasoning effort.
const NON_REASONING: &[&str] = &["gpt-4", "gpt-3.5", "chatgpt-4o", "gpt-5-chat"];

/// What OpenAI's own API refuses beyond its schema, in its words: a Chat Completions body
/// key its request schema does not declare (a compatible server's extension such as
/// `top_k`), and a reasoning effort for a model that does not reason. On Azure, the
/// deployment's name is taken as its model. (Responses bodies are not checked for unknown
/// keys: OpenAI's own clients send keys newer than the published schema, `client_metadata`
/// among them, and they pass through as the client wrote them.)
pub(super) fn openai_itself_refusal(path: &str, body: &Value) -> Option<(u16, Value)> {
    let err = |message: String, param: Option<&str>, code: Option<&str>| {
        Some((
            400,
            json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}),
        ))
    };
    let responses = path.ends_with("/responses");
    let schema = if responses {
        "CreateResponse"
    } else if path.ends_with("/chat/completions") {
        "CreateChatCompletionRequest"
    } else {
        return None;
    };
    if let (false, Some(known), Some(o)) = (
        responses,
        super::openai_spec::properties(schema),
        body.as_object(),
    ) && let Some(k) = o.keys().find(|k| !known.contains(k))
    {
        return err(
            format!("Unrecognized request argument supplied: {k}"),
            None,
            None,
        );
    }
    let model = path
        .strip_prefix("/openai/deployments/")
        .and_then(|rest| rest.split('/').next())
        .or_else(|| body["model"].as_str())?;
    let (param, asked) = if responses {
        (
            "reasoning.effort",
            body["reasoning"].get("effort").is_some(),
        )
    } else {
        ("reasoning_effort", body.get("reasoning_effort").is_some())
    };
    if asked && NON_REASONING.iter().any(|p| model.starts_with(p)) {
        return err(
            format!("Unsupported parameter: '{param}' is not supported with this model."),
            Some(param),
            Some("unsupported_parameter"),
        );
    }
    None
}

/// Anthropic's models that take `temperature` or `top_p` but not both.
const ONE_SAMPLER: &[&str] = &["claude-sonnet-4-5", "claude-haiku-4-5", "claude-sonnet-4-6"];

/// What a provider refuses for a model's own limits beyond its output ceiling, in its words
/// (with Bedrock's `x-amzn-errortype`): `temperature` with `top_p` on Anthropic's models of
/// [`ONE_SAMPLER`] (on Anthropic and on Bedrock), and on Gemini 3 Pro a `thinkingLevel`
/// other than LOW or HIGH (Gemini 3.1 Pro and Gemini 3 Flash take MEDIUM too).
pub(super) fn model_refusal(
    profile: super::mock::Profile,
    path: &str,
    body: &Value,
) -> Option<(u16, Value, Option<&'static str>)> {
    use super::mock::Profile;
    const BOTH: &str =
        "`temperature` and `top_p` cannot both be specified for this model. Please use only one.";
    let one_sampler = |model: &str| {
        let model = model.rsplit_once("anthropic.").map_or(model, |(_, m)| m);
        ONE_SAMPLER.iter().any(|p| model.starts_with(p))
    };
    match profile {
        Profile::Anthropic => {
            let both = body.get("temperature").is_some() && body.get("top_p").is_some();
            (both && one_sampler(body["model"].as_str()?)).then(|| {
                (
                    400,
                    json!({"type": "error", "error": {"type": "invalid_request_error", "message": BOTH}}),
                    None,
                )
            })
        }
        Profile::Bedrock => {
            let model = path.strip_prefix("/model/")?.rsplit_once('/')?.0;
            let c = &body["inferenceConfig"];
            let both = c.get("temperature").is_some() && c.get("topP").is_some();
            (both && one_sampler(model)).then(|| {
                (
                    400,
                    json!({"message": format!("The model returned the following errors: {BOTH}")}),
                    Some("ValidationException"),
                )
            })
        }
        Profile::Gemini => {
            let model = path.strip_prefix("/v1beta/models/")?.split(':').next()?;
            let level = body["generationConfig"]["thinkingConfig"]["thinkingLevel"].as_str()?;
            (model.starts_with("gemini-3-pro") && !matches!(level, "LOW" | "HIGH")).then(|| {
                (
                    400,
                    json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                        "message": format!("Thinking level {level} is not supported for this model. Please retry with other thinking level.")}}),
                    None,
                )
            })
        }
        _ => None,
    }
}
