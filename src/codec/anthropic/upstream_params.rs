//! Canonical request parameters -> Anthropic Messages request parameters: `max_tokens`,
//! `thinking`, sampling, tools and `tool_choice`, `output_config`, `metadata` and extra
//! fields. Called by `upstream::encode_request` once the conversation is encoded, because
//! whether thinking may be sent depends on it. The choices are listed in `upstream`'s header.

use serde_json::{Value, json};

use super::wire::*;
use crate::codec::Warnings;
use crate::schema::*;

/// `max_tokens` when the client set no limit: Anthropic requires one.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Anthropic's smallest `thinking.budget_tokens`.
pub const MIN_THINKING_BUDGET: u64 = 1024;

/// Top-level request fields of `CreateMessageParams` that the canonical model does not name;
/// these pass through from `extra`, any other extra field is dropped with a warning.
pub const ANTHROPIC_EXTRA_FIELDS: &[&str] = &[
    "cache_control",
    "container",
    "inference_geo",
    "service_tier",
];

/// The thinking budget for an effort level, `None` for no thinking.
///
/// | effort  | budget |
/// |---------|--------|
/// | minimal | 1024 (Anthropic's minimum) |
/// | low     | 2048   |
/// | medium  | 8192   |
/// | high    | 16384  |
/// | xhigh   | 24576  |
/// | max     | 27904  |
///
/// With the default answer allowance ([`DEFAULT_MAX_TOKENS`]) every level stays within
/// 32,000 output tokens, the smallest limit among the thinking models (Opus 4 and 4.1).
pub fn thinking_budget(effort: ReasoningEffort) -> Option<u64> {
    Some(match effort {
        ReasoningEffort::None => return None,
        ReasoningEffort::Minimal => MIN_THINKING_BUDGET,
        ReasoningEffort::Low => 2048,
        ReasoningEffort::Medium => 8192,
        ReasoningEffort::High => 16384,
        ReasoningEffort::XHigh => 24576,
        ReasoningEffort::Max => 27904,
    })
}

/// Fill in every field of `body` but `model`, `messages` and `system`.
pub(super) fn encode_params(req: &ChatRequest, body: &mut AnthRequest, warnings: &mut Warnings) {
    body.tools = (!req.tools.is_empty()).then(|| req.tools.iter().map(encode_tool).collect());
    body.tool_choice = encode_tool_choice(req, warnings);
    let forced = body
        .tool_choice
        .as_ref()
        .is_some_and(|c| c.kind == "any" || c.kind == "tool");
    let (thinking, max_tokens) = encode_thinking(req, &body.messages, forced, warnings);
    let thinking_on = thinking.as_ref().is_some_and(|t| t.kind == "enabled");
    body.thinking = thinking;
    body.max_tokens = Some(max_tokens);

    let s = &req.sampling;
    body.temperature = s.temperature;
    if let Some(t) = s.temperature.filter(|t| *t > 1.0) {
        body.temperature = Some(1.0);
        warnings.push(format!("temperature {t}->1 for anthropic"));
    }
    body.top_p = s.top_p;
    body.top_k = s.top_k;
    if thinking_on {
        // Anthropic refuses these with thinking on.
        if body.temperature.take_if(|t| *t != 1.0).is_some() {
            warnings.push("temperature dropped with thinking for anthropic");
        }
        if body.top_p.take_if(|p| *p < 0.95).is_some() {
            warnings.push("top_p dropped with thinking for anthropic");
        }
        if body.top_k.take().is_some() {
            warnings.push("top_k dropped with thinking for anthropic");
        }
    }
    // Claude's current models refuse both ("`temperature` and `top_p` cannot both be
    // specified for this model"), and Anthropic asks to set only one for every model: the
    // temperature is kept.
    if body.temperature.is_some() && body.top_p.take().is_some() {
        warnings.push("top_p dropped with temperature for anthropic");
    }
    let unsupported = [
        ("seed", s.seed.is_some()),
        ("n", s.n.is_some_and(|n| n > 1)),
        ("presence_penalty", s.presence_penalty.is_some()),
        ("frequency_penalty", s.frequency_penalty.is_some()),
        (
            "logprobs",
            s.logprobs == Some(true) || s.top_logprobs.is_some(),
        ),
        (
            "logit_bias",
            s.logit_bias.as_ref().is_some_and(|b| !b.is_empty()),
        ),
        (
            "metadata",
            req.metadata.as_ref().is_some_and(|m| !m.is_empty()),
        ),
    ];
    for (field, present) in unsupported {
        if present {
            warnings.push(format!("{field} dropped for anthropic"));
        }
    }
    body.stop_sequences = (!req.stop.is_empty()).then(|| req.stop.clone());
    body.stream = req.stream.then_some(true);
    body.metadata = req.user.as_ref().map(|u| AnthMetadata {
        user_id: Some(u.clone()),
    });
    body.output_config = match &req.response_format {
        Some(ResponseFormat::JsonSchema { schema, .. }) => Some(AnthOutputConfig {
            effort: None,
            format: Some(json!({"type": "json_schema", "schema": schema})),
        }),
        Some(ResponseFormat::JsonObject) => {
            warnings.push("response_format json_object dropped for anthropic");
            None
        }
        Some(ResponseFormat::Text) | None => None,
    };
    // Extra fields of another schema mean something else here, even under the same name.
    let foreign = req
        .raw
        .as_ref()
        .is_some_and(|r| r.schema != WireSchema::AnthropicMessages);
    body.extra = req.extra.clone();
    body.extra.retain(|k, _| {
        let keep = !foreign && ANTHROPIC_EXTRA_FIELDS.contains(&k.as_str());
        if !keep {
            warnings.push(format!("{k} dropped for anthropic"));
        }
        keep
    });
}

fn encode_tool(t: &Tool) -> AnthTool {
    AnthTool::Custom(AnthCustomTool {
        name: t.name.clone(),
        description: t.description.clone(),
        input_schema: match &t.parameters {
            Value::Null => json!({"type": "object", "properties": {}}),
            p => p.clone(),
        },
        kind: None,
        cache_control: t.cache_control.clone(),
        strict: t.strict,
        extra: JsonMap::new(),
    })
}

/// `parallel_tool_calls: false` is `disable_parallel_tool_use` on the choice (`auto` when
/// the client named none); `none` cannot carry it. Without tools there is nothing to choose.
fn encode_tool_choice(req: &ChatRequest, warnings: &mut Warnings) -> Option<AnthToolChoice> {
    let choice = req.tool_choice.as_ref();
    if req.tools.is_empty() {
        if matches!(choice, Some(ToolChoice::Required | ToolChoice::Tool(_))) {
            warnings.push("tool_choice without tools dropped for anthropic");
        }
        return None;
    }
    let serial = req.parallel_tool_calls == Some(false);
    let (kind, name) = match choice {
        None if !serial => return None,
        None | Some(ToolChoice::Auto) => ("auto", None),
        Some(ToolChoice::None) => ("none", None),
        Some(ToolChoice::Required) => ("any", None),
        Some(ToolChoice::Tool(n)) => ("tool", Some(n.clone())),
    };
    Some(AnthToolChoice {
        kind: kind.to_owned(),
        name,
        disable_parallel_tool_use: (serial && kind != "none").then_some(true),
    })
}

/// `thinking` and `max_tokens`, which Anthropic constrains together (`budget_tokens` at least
/// 1024 and below `max_tokens`).
fn encode_thinking(
    req: &ChatRequest,
    messages: &[AnthMessage],
    forced_tool: bool,
    warnings: &mut Warnings,
) -> (Option<AnthThinking>, u64) {
    let explicit = req.max_output_tokens;
    let max_tokens = |warnings: &mut Warnings| {
        explicit.unwrap_or_else(|| {
            warnings.push(format!(
                "max_tokens defaulted to {DEFAULT_MAX_TOKENS} for anthropic"
            ));
            DEFAULT_MAX_TOKENS
        })
    };
    let Some(r) = &req.reasoning else {
        return (None, max_tokens(warnings));
    };
    let budget = match (r.effort, r.budget_tokens) {
        (Some(ReasoningEffort::None), _) => {
            let off = AnthThinking {
                kind: "disabled".to_owned(),
                budget_tokens: None,
                display: None,
            };
            return (Some(off), max_tokens(warnings));
        }
        (_, Some(b)) => b,
        (Some(e), None) => thinking_budget(e).unwrap_or(MIN_THINKING_BUDGET),
        // Thinking asked for with no level (Anthropic's `adaptive`).
        (None, None) => thinking_budget(ReasoningEffort::Medium).unwrap_or(MIN_THINKING_BUDGET),
    };
    if forced_tool {
        warnings.push("thinking dropped with forced tool_choice for anthropic");
        return (None, max_tokens(warnings));
    }
    if tool_turn_lacks_thinking(messages) {
        warnings.push("thinking dropped for a tool turn without signed reasoning for anthropic");
        return (None, max_tokens(warnings));
    }
    let mut budget = budget;
    if budget < MIN_THINKING_BUDGET {
        warnings.push(format!(
            "thinking budget {budget}->{MIN_THINKING_BUDGET} for anthropic"
        ));
        budget = MIN_THINKING_BUDGET;
    }
    let max_tokens = explicit.unwrap_or_else(|| {
        let m = budget.saturating_add(DEFAULT_MAX_TOKENS);
        warnings.push(format!("max_tokens defaulted to {m} for anthropic"));
        m
    });
    if budget >= max_tokens {
        // Keep half the limit for the answer.
        let fit = (max_tokens / 2).max(MIN_THINKING_BUDGET);
        if fit >= max_tokens {
            warnings.push("thinking dropped as max_tokens is under 1025 for anthropic");
            return (None, max_tokens);
        }
        warnings.push(format!("thinking budget {budget}->{fit} for anthropic"));
        budget = fit;
    }
    let thinking = AnthThinking {
        kind: "enabled".to_owned(),
        budget_tokens: Some(budget),
        display: (r.include_thoughts == Some(false)).then(|| "omitted".to_owned()),
    };
    (Some(thinking), max_tokens)
}

/// With thinking on, Anthropic requires the assistant turn whose tool calls are being
/// answered to start with its (signed) thinking block.
fn tool_turn_lacks_thinking(messages: &[AnthMessage]) -> bool {
    fn blocks(m: &AnthMessage) -> &[AnthBlock] {
        match &m.content {
            AnthContent::Blocks(b) => b,
            AnthContent::Text(_) => &[],
        }
    }
    let Some(last_user) = messages.iter().rposition(|m| m.role == "user") else {
        return false;
    };
    let answering_tools = blocks(&messages[last_user])
        .iter()
        .any(|b| matches!(b, AnthBlock::ToolResult { .. }));
    let Some(calls) = messages[..last_user]
        .iter()
        .rev()
        .find(|m| m.role == "assistant")
    else {
        return false;
    };
    answering_tools
        && !matches!(
            blocks(calls).first(),
            Some(AnthBlock::Thinking { .. } | AnthBlock::RedactedThinking { .. })
        )
}
