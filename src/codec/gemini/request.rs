//! Gemini `GenerateContentRequest` (its wire types in `wire`) -> canonical request.
//!
//! `contents` become messages (`model` is the assistant; `functionResponse` parts become tool
//! results, matched to their call by `id`, else by name in call order, since Gemini ids are
//! optional); `systemInstruction` becomes the system message; `functionDeclarations`
//! become tools, their schemas (`parameters`, an OpenAPI subset with upper-case types, or
//! `parametersJsonSchema`) turned into plain JSON Schema; `generationConfig` maps onto the
//! sampling parameters, the output limit, stop sequences, JSON output (`responseMimeType`
//! with `responseSchema` or `responseJsonSchema`) and thinking (`thinkingConfig`). What has
//! no equivalent elsewhere (safety settings, Google Search and code execution tools, cached
//! content) is dropped with a warning.

use serde_json::{Value, json};

use super::wire::*;
use crate::error::GatewayError;
use crate::schema::*;

pub struct Decoded {
    pub chat: ChatRequest,
    /// What was dropped, for `x-gatehouse-warnings`.
    pub warnings: Vec<String>,
}

fn invalid(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid_param(param, message)
}

/// Decode the body of `models/{model}:{method}`.
pub fn decode_request(
    w: GeminiRequest,
    model: &str,
    stream: bool,
) -> Result<Decoded, GatewayError> {
    if model.is_empty() {
        return Err(invalid("model", "the path names no model"));
    }
    let mut warnings = Vec::new();
    let messages = decode_messages(w.system_instruction, w.contents)?;
    let tools = decode_tools(w.tools, &mut warnings)?;
    let tool_choice = decode_tool_choice(w.tool_config)?;
    let g = w.generation_config.unwrap_or_default();
    let response_format = decode_response_format(&g, &mut warnings);
    let reasoning = g.thinking_config.map(decode_thinking);
    for (dropped, present) in [
        ("safetySettings", w.safety_settings.is_some()),
        ("cachedContent", w.cached_content.is_some()),
        ("labels", w.labels.is_some()),
    ] {
        if present {
            warnings.push(format!("{dropped} dropped"));
        }
    }
    Ok(Decoded {
        chat: ChatRequest {
            model: model.to_owned(),
            messages,
            sampling: Sampling {
                temperature: g.temperature,
                top_p: g.top_p,
                top_k: g.top_k,
                presence_penalty: g.presence_penalty,
                frequency_penalty: g.frequency_penalty,
                seed: g.seed,
                n: g.candidate_count.and_then(|n| u32::try_from(n).ok()),
                logprobs: g.response_logprobs,
                top_logprobs: g.logprobs.and_then(|n| u32::try_from(n).ok()),
                logit_bias: None,
            },
            max_output_tokens: g.max_output_tokens,
            stop: g.stop_sequences,
            tools,
            tool_choice,
            parallel_tool_calls: None,
            reasoning,
            response_format,
            stream,
            // Every Gemini chunk may carry usage; the last one always does.
            stream_usage: true,
            user: None,
            metadata: None,
            extra: JsonMap::new(),
            raw: None,
        },
        warnings,
    })
}

/// The body of a `countTokens` request: its own fields, or the request under
/// `generateContentRequest` (refused, as a body would be, when that is not an object).
pub fn count_tokens_request(w: GeminiCountTokensRequest) -> Result<GeminiRequest, GatewayError> {
    match w.generate_content_request {
        None => Ok(w.request),
        Some(Nested::Request(r)) => Ok(*r),
        Some(Nested::NotAnObject) => Err(invalid("body", NOT_AN_OBJECT)),
    }
}

fn message(role: Role, parts: Vec<Part>) -> Message {
    Message {
        role,
        parts,
        name: None,
        extra: JsonMap::new(),
    }
}

/// The system message (the text of `systemInstruction`), then one message per turn of
/// `contents`, with each tool result a tool message of its own.
fn decode_messages(
    system: Option<GeminiContent>,
    contents: Option<List<GeminiContent>>,
) -> Result<Vec<Message>, GatewayError> {
    let mut messages = Vec::new();
    if let Some(sys) = system {
        let parts = decode_parts(sys.parts, "systemInstruction", &mut Calls::default())?;
        let text: Vec<Part> = parts
            .into_iter()
            .filter(|p| matches!(p, Part::Text(_)))
            .collect();
        if !text.is_empty() {
            messages.push(message(Role::System, text));
        }
    }
    let contents = match contents {
        Some(List::Items(c)) if !c.is_empty() => c,
        _ => return Err(invalid("contents", "`contents` must be a non-empty array")),
    };
    let mut calls = Calls::default();
    for (i, c) in contents.into_iter().enumerate() {
        let at = format!("contents[{i}]");
        let role = match c.role.as_deref() {
            None | Some("user" | "function" | "tool") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(invalid(
                    &format!("{at}.role"),
                    format!("unsupported role `{other}`: expected user or model"),
                ));
            }
        };
        let parts = decode_parts(c.parts, &at, &mut calls)?;
        // Tool results are tool messages; whatever else the turn holds stays the user's.
        let (results, rest): (Vec<Part>, Vec<Part>) = parts
            .into_iter()
            .partition(|p| matches!(p, Part::ToolResult(_)));
        for r in results {
            messages.push(message(Role::Tool, vec![r]));
        }
        if !rest.is_empty() {
            messages.push(message(role, rest));
        }
    }
    Ok(messages)
}

/// `functionDeclarations` become tools; Google's own tools are dropped with a warning.
fn decode_tools(
    tools: Option<List<GeminiTool>>,
    warnings: &mut Vec<String>,
) -> Result<Vec<Tool>, GatewayError> {
    let mut out = Vec::new();
    for (i, t) in tools
        .map(List::items)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let GeminiTool::Object {
            function_declarations,
            others,
        } = t
        else {
            return Err(invalid(&format!("tools[{i}]"), "a tool must be an object"));
        };
        for kind in others {
            warnings.push(format!("tool {kind} dropped"));
        }
        let declarations = function_declarations.map(List::items).unwrap_or_default();
        for (j, f) in declarations.into_iter().enumerate() {
            let at = format!("tools[{i}].functionDeclarations[{j}]");
            let name = f
                .name
                .ok_or_else(|| invalid(&format!("{at}.name"), "a function needs `name`"))?;
            let parameters = match (f.parameters_json_schema, f.parameters) {
                (Some(s), _) => s,
                (None, Some(s)) => normalize_schema(&s),
                (None, None) => json!({"type": "object", "properties": {}}),
            };
            out.push(Tool {
                name,
                description: f.description,
                parameters,
                strict: None,
                cache_control: None,
            });
        }
    }
    Ok(out)
}

/// `toolConfig.functionCallingConfig`: `ANY` with one allowed function forces that one.
fn decode_tool_choice(
    config: Option<GeminiToolConfig>,
) -> Result<Option<ToolChoice>, GatewayError> {
    let Some(c) = config.and_then(|c| c.function_calling_config) else {
        return Ok(None);
    };
    Ok(Some(match c.mode.as_deref().unwrap_or("AUTO") {
        "AUTO" | "MODE_UNSPECIFIED" => ToolChoice::Auto,
        "NONE" => ToolChoice::None,
        "ANY" | "VALIDATED" => match c.allowed_function_names.as_slice() {
            [one] => ToolChoice::Tool(one.clone()),
            _ => ToolChoice::Required,
        },
        other => {
            return Err(invalid(
                "toolConfig.functionCallingConfig.mode",
                format!("unsupported mode `{other}`: expected AUTO, ANY, NONE or VALIDATED"),
            ));
        }
    }))
}

/// JSON output: a schema (`responseJsonSchema`, else `responseSchema`), or JSON of any shape.
fn decode_response_format(
    g: &GeminiGenerationConfig,
    warnings: &mut Vec<String>,
) -> Option<ResponseFormat> {
    match (
        g.response_mime_type.as_deref(),
        &g.response_json_schema,
        &g.response_schema,
    ) {
        (_, Some(s), _) => Some(json_schema(normalize_schema(s))),
        (_, None, Some(s)) => Some(json_schema(normalize_schema(s))),
        (Some("application/json"), None, None) => Some(ResponseFormat::JsonObject),
        (Some("text/plain") | None, None, None) => None,
        (Some(other), None, None) => {
            warnings.push(format!("responseMimeType {other} dropped"));
            None
        }
    }
}

/// `thinkingConfig`: a level is an effort, a budget of 0 turns thinking off.
fn decode_thinking(t: GeminiThinkingConfig) -> Reasoning {
    let budget = t.thinking_budget;
    let effort = match t.thinking_level.as_deref() {
        Some("MINIMAL") => Some(ReasoningEffort::Minimal),
        Some("LOW") => Some(ReasoningEffort::Low),
        Some("MEDIUM") => Some(ReasoningEffort::Medium),
        Some("HIGH") => Some(ReasoningEffort::High),
        _ if budget == Some(0) => Some(ReasoningEffort::None),
        _ => None,
    };
    Reasoning {
        effort,
        // -1 is Gemini's "dynamic": no budget of its own.
        budget_tokens: budget
            .and_then(|b| u64::try_from(b).ok())
            .filter(|b| *b > 0),
        include_thoughts: t.include_thoughts,
    }
}

fn json_schema(schema: Value) -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: "response".to_owned(),
        description: None,
        schema,
        strict: None,
    }
}

/// Function calls seen so far, for results that name their call only by function name.
#[derive(Default)]
struct Calls {
    /// (id, name, answered)
    seen: Vec<(String, String, bool)>,
    next: usize,
}

impl Calls {
    fn call(&mut self, id: Option<String>, name: &str) -> String {
        let id = id.unwrap_or_else(|| {
            self.next += 1;
            format!("call_{}_{name}", self.next)
        });
        self.seen.push((id.clone(), name.to_owned(), false));
        id
    }

    /// The call a result answers: by id when it has one, else the oldest unanswered call
    /// of that name.
    fn result(&mut self, id: Option<String>, name: &str) -> String {
        let found = self.seen.iter_mut().find(|(i, n, answered)| match &id {
            Some(id) => i == id,
            None => n == name && !*answered,
        });
        match found {
            Some((i, _, answered)) => {
                *answered = true;
                i.clone()
            }
            None => id.unwrap_or_else(|| format!("call_unmatched_{name}")),
        }
    }
}

/// The parts of a turn, each by the first kind it holds (see [`GeminiPart`]).
fn decode_parts(
    parts: Option<List<GeminiPart>>,
    at: &str,
    calls: &mut Calls,
) -> Result<Vec<Part>, GatewayError> {
    let parts = match parts {
        Some(List::Items(p)) => p,
        None => return Ok(Vec::new()),
        Some(List::NotArray) => {
            return Err(invalid(&format!("{at}.parts"), "`parts` must be an array"));
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.into_iter().enumerate() {
        let at = format!("{at}.parts[{j}]");
        if let Some(t) = p.text {
            if p.thought == Some(true) {
                out.push(Part::Reasoning {
                    text: t,
                    signature: p.thought_signature,
                });
            } else {
                out.push(Part::text(t));
            }
        } else if let Some(d) = p.inline_data {
            let media_type = d
                .mime_type
                .unwrap_or_else(|| "application/octet-stream".into());
            let data = d
                .data
                .ok_or_else(|| invalid(&format!("{at}.inlineData.data"), "`data` is required"))?;
            let source = MediaSource::Base64 {
                media_type: media_type.clone(),
                data,
            };
            out.push(media(&media_type, source, None));
        } else if let Some(d) = p.file_data {
            let uri = d.file_uri.ok_or_else(|| {
                invalid(&format!("{at}.fileData.fileUri"), "`fileUri` is required")
            })?;
            let media_type = d.mime_type.unwrap_or_default();
            out.push(media(&media_type, MediaSource::Url(uri), None));
        } else if let Some(f) = p.function_call {
            let name = f
                .name
                .ok_or_else(|| invalid(&format!("{at}.functionCall.name"), "`name` is required"))?;
            let args = f.args.unwrap_or_else(|| json!({}));
            out.push(Part::ToolCall(ToolCall {
                id: calls.call(f.id, &name),
                name,
                arguments: args.to_string(),
            }));
        } else if let Some(f) = p.function_response {
            out.push(function_result(f, &at, calls)?);
        } else if p.executable_code.is_some() || p.code_execution_result.is_some() {
            // Code execution runs on Google's side only: nothing to replay elsewhere.
        } else {
            return Err(invalid(
                &at,
                "unsupported part: expected text, inlineData, fileData, functionCall or functionResponse",
            ));
        }
    }
    Ok(out)
}

/// A `functionResponse` part as the tool result of its call.
fn function_result(
    f: GeminiFunctionResponse,
    at: &str,
    calls: &mut Calls,
) -> Result<Part, GatewayError> {
    let name = f
        .name
        .ok_or_else(|| invalid(&format!("{at}.functionResponse.name"), "`name` is required"))?;
    let response = f.response.unwrap_or_else(|| json!({}));
    // `{"output": "..."}` (what Gemini CLI sends) is that text; anything else its JSON.
    let text = match response.get("output").and_then(Value::as_str) {
        Some(s) if response.as_object().is_some_and(|o| o.len() == 1) => s.to_owned(),
        _ => response.to_string(),
    };
    let is_error = response.get("error").is_some() && response.get("output").is_none();
    Ok(Part::ToolResult(ToolResult {
        call_id: calls.result(f.id, &name),
        content: vec![Part::text(text)],
        is_error,
    }))
}

fn media(media_type: &str, source: MediaSource, filename: Option<String>) -> Part {
    if media_type.starts_with("image/") {
        Part::Image(ImagePart {
            source,
            detail: None,
        })
    } else {
        Part::File(FilePart {
            source: FileSource::Media(source),
            filename,
        })
    }
}

/// Gemini's OpenAPI-style schema (`"type": "OBJECT"`, `nullable`) as plain JSON Schema:
/// types in lower case, `nullable` folded into the type. Applied recursively.
pub fn normalize_schema(s: &Value) -> Value {
    match s {
        Value::Object(o) => {
            let mut out = serde_json::Map::with_capacity(o.len());
            let nullable = o.get("nullable").and_then(Value::as_bool) == Some(true);
            for (k, v) in o {
                match (k.as_str(), v) {
                    ("nullable", _) => {}
                    ("type", Value::String(t)) => {
                        let t = Value::String(t.to_ascii_lowercase());
                        out.insert(k.clone(), if nullable { json!([t, "null"]) } else { t });
                    }
                    // Names of properties are data, not keywords.
                    ("properties", Value::Object(props)) => {
                        out.insert(
                            k.clone(),
                            Value::Object(
                                props
                                    .iter()
                                    .map(|(n, p)| (n.clone(), normalize_schema(p)))
                                    .collect(),
                            ),
                        );
                    }
                    _ => {
                        out.insert(k.clone(), normalize_schema(v));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize_schema).collect()),
        other => other.clone(),
    }
}
