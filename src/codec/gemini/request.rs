//! Gemini `GenerateContentRequest` -> canonical request.
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

use crate::error::GatewayError;
use crate::schema::*;

pub struct Decoded {
    pub chat: ChatRequest,
    /// What was dropped, for `x-gatehouse-warnings`.
    pub warnings: Vec<String>,
}

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).filter(|v| !v.is_null())
}

fn text_of(v: &Value, name: &str) -> Option<String> {
    field(v, name).and_then(Value::as_str).map(str::to_owned)
}

fn invalid(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::invalid_param(param, message)
}

/// Decode the body of `models/{model}:{method}`.
pub fn decode_request(body: &Value, model: &str, stream: bool) -> Result<Decoded, GatewayError> {
    if !body.is_object() {
        return Err(invalid("body", "the request body must be a JSON object"));
    }
    if model.is_empty() {
        return Err(invalid("model", "the path names no model"));
    }
    let mut warnings = Vec::new();
    let mut messages = Vec::new();
    if let Some(sys) = field(body, "systemInstruction") {
        let parts = decode_parts(sys, "systemInstruction", &mut Calls::default())?;
        let text: Vec<Part> = parts
            .into_iter()
            .filter(|p| matches!(p, Part::Text(_)))
            .collect();
        if !text.is_empty() {
            messages.push(Message {
                role: Role::System,
                parts: text,
                name: None,
                extra: JsonMap::new(),
            });
        }
    }
    let contents = field(body, "contents")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("contents", "`contents` must be a non-empty array"))?;
    if contents.is_empty() {
        return Err(invalid("contents", "`contents` must be a non-empty array"));
    }
    let mut calls = Calls::default();
    for (i, c) in contents.iter().enumerate() {
        let at = format!("contents[{i}]");
        let role = match c.get("role").and_then(Value::as_str) {
            None | Some("user" | "function" | "tool") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(invalid(
                    &format!("{at}.role"),
                    format!("unsupported role `{other}`: expected user or model"),
                ));
            }
        };
        let parts = decode_parts(c, &at, &mut calls)?;
        // Tool results are tool messages; whatever else the turn holds stays the user's.
        let (results, rest): (Vec<Part>, Vec<Part>) = parts
            .into_iter()
            .partition(|p| matches!(p, Part::ToolResult(_)));
        for r in results {
            messages.push(Message {
                role: Role::Tool,
                parts: vec![r],
                name: None,
                extra: JsonMap::new(),
            });
        }
        if !rest.is_empty() {
            messages.push(Message {
                role,
                parts: rest,
                name: None,
                extra: JsonMap::new(),
            });
        }
    }

    let mut tools = Vec::new();
    for (i, t) in field(body, "tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(obj) = t.as_object() else {
            return Err(invalid(&format!("tools[{i}]"), "a tool must be an object"));
        };
        for (kind, v) in obj {
            if kind != "functionDeclarations" {
                warnings.push(format!("tool {kind} dropped"));
                continue;
            }
            for (j, f) in v.as_array().into_iter().flatten().enumerate() {
                let at = format!("tools[{i}].functionDeclarations[{j}]");
                let name = text_of(f, "name")
                    .ok_or_else(|| invalid(&format!("{at}.name"), "a function needs `name`"))?;
                let parameters = match (field(f, "parametersJsonSchema"), field(f, "parameters")) {
                    (Some(s), _) => s.clone(),
                    (None, Some(s)) => normalize_schema(s),
                    (None, None) => json!({"type": "object", "properties": {}}),
                };
                tools.push(Tool {
                    name,
                    description: text_of(f, "description"),
                    parameters,
                    strict: None,
                    cache_control: None,
                });
            }
        }
    }

    let tool_choice =
        match field(body, "toolConfig").and_then(|c| field(c, "functionCallingConfig")) {
            None => None,
            Some(c) => {
                let allowed: Vec<&str> = field(c, "allowedFunctionNames")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                match c.get("mode").and_then(Value::as_str).unwrap_or("AUTO") {
                    "AUTO" | "MODE_UNSPECIFIED" => Some(ToolChoice::Auto),
                    "NONE" => Some(ToolChoice::None),
                    "ANY" | "VALIDATED" => Some(match allowed.as_slice() {
                        [one] => ToolChoice::Tool((*one).to_owned()),
                        _ => ToolChoice::Required,
                    }),
                    other => {
                        return Err(invalid(
                            "toolConfig.functionCallingConfig.mode",
                            format!(
                                "unsupported mode `{other}`: expected AUTO, ANY, NONE or VALIDATED"
                            ),
                        ));
                    }
                }
            }
        };

    let empty = json!({});
    let g = field(body, "generationConfig").unwrap_or(&empty);
    let num = |name: &str| field(g, name).and_then(Value::as_f64);
    let int = |name: &str| field(g, name).and_then(Value::as_u64);
    let response_format = match (
        text_of(g, "responseMimeType").as_deref(),
        field(g, "responseJsonSchema"),
        field(g, "responseSchema"),
    ) {
        (_, Some(s), _) => Some(json_schema(normalize_schema(s))),
        (_, None, Some(s)) => Some(json_schema(normalize_schema(s))),
        (Some("application/json"), None, None) => Some(ResponseFormat::JsonObject),
        (Some("text/plain") | None, None, None) => None,
        (Some(other), None, None) => {
            warnings.push(format!("responseMimeType {other} dropped"));
            None
        }
    };
    let reasoning = field(g, "thinkingConfig").map(|t| {
        let budget = field(t, "thinkingBudget").and_then(Value::as_i64);
        let effort = match t.get("thinkingLevel").and_then(Value::as_str) {
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
            include_thoughts: field(t, "includeThoughts").and_then(Value::as_bool),
        }
    });
    for dropped in ["safetySettings", "cachedContent", "labels"] {
        if field(body, dropped).is_some() {
            warnings.push(format!("{dropped} dropped"));
        }
    }
    let stop = field(g, "stopSequences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    Ok(Decoded {
        chat: ChatRequest {
            model: model.to_owned(),
            messages,
            sampling: Sampling {
                temperature: num("temperature"),
                top_p: num("topP"),
                top_k: int("topK"),
                presence_penalty: num("presencePenalty"),
                frequency_penalty: num("frequencyPenalty"),
                seed: field(g, "seed").and_then(Value::as_i64),
                n: int("candidateCount").and_then(|n| u32::try_from(n).ok()),
                logprobs: field(g, "responseLogprobs").and_then(Value::as_bool),
                top_logprobs: int("logprobs").and_then(|n| u32::try_from(n).ok()),
                logit_bias: None,
            },
            max_output_tokens: int("maxOutputTokens"),
            stop,
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

fn decode_parts(content: &Value, at: &str, calls: &mut Calls) -> Result<Vec<Part>, GatewayError> {
    let parts = match field(content, "parts") {
        Some(Value::Array(p)) => p,
        None => return Ok(Vec::new()),
        Some(_) => return Err(invalid(&format!("{at}.parts"), "`parts` must be an array")),
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let at = format!("{at}.parts[{j}]");
        if let Some(t) = field(p, "text").and_then(Value::as_str) {
            if field(p, "thought").and_then(Value::as_bool) == Some(true) {
                out.push(Part::Reasoning {
                    text: t.to_owned(),
                    signature: text_of(p, "thoughtSignature"),
                });
            } else {
                out.push(Part::text(t));
            }
        } else if let Some(d) = field(p, "inlineData") {
            let media_type =
                text_of(d, "mimeType").unwrap_or_else(|| "application/octet-stream".into());
            let data = text_of(d, "data")
                .ok_or_else(|| invalid(&format!("{at}.inlineData.data"), "`data` is required"))?;
            let source = MediaSource::Base64 {
                media_type: media_type.clone(),
                data,
            };
            out.push(media(&media_type, source, None));
        } else if let Some(d) = field(p, "fileData") {
            let uri = text_of(d, "fileUri").ok_or_else(|| {
                invalid(&format!("{at}.fileData.fileUri"), "`fileUri` is required")
            })?;
            let media_type = text_of(d, "mimeType").unwrap_or_default();
            out.push(media(&media_type, MediaSource::Url(uri), None));
        } else if let Some(f) = field(p, "functionCall") {
            let name = text_of(f, "name")
                .ok_or_else(|| invalid(&format!("{at}.functionCall.name"), "`name` is required"))?;
            let args = field(f, "args").cloned().unwrap_or_else(|| json!({}));
            out.push(Part::ToolCall(ToolCall {
                id: calls.call(text_of(f, "id"), &name),
                name,
                arguments: args.to_string(),
            }));
        } else if let Some(f) = field(p, "functionResponse") {
            let name = text_of(f, "name").ok_or_else(|| {
                invalid(&format!("{at}.functionResponse.name"), "`name` is required")
            })?;
            let response = field(f, "response").cloned().unwrap_or_else(|| json!({}));
            // `{"output": "..."}` (what Gemini CLI sends) is that text; anything else its JSON.
            let text = match response.get("output").and_then(Value::as_str) {
                Some(s) if response.as_object().is_some_and(|o| o.len() == 1) => s.to_owned(),
                _ => response.to_string(),
            };
            let is_error = response.get("error").is_some() && response.get("output").is_none();
            out.push(Part::ToolResult(ToolResult {
                call_id: calls.result(text_of(f, "id"), &name),
                content: vec![Part::text(text)],
                is_error,
            }));
        } else if field(p, "executableCode").is_some() || field(p, "codeExecutionResult").is_some()
        {
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
