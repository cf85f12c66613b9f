//! Client fidelity (issue 7): what real clients hit on strict providers. Output maximums above
//! a served model's ceiling are clamped (and budgets reserve the clamped amount); a
//! provider's refusal reaches the caller in the provider's own words, in the caller's schema,
//! with no secret in it; an upstream timeout is each schema's own timeout error.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// Claude Code's first request, in short: `max_tokens: 128000`.
fn claude_code_request(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 128000, "stream": stream,
        "messages": [{"role": "user", "content": "list the files here"}]})
}

async fn post_messages(gw: &Gateway, body: &Value) -> reqwest::Response {
    client()
        .post(gw.url("/anthropic/v1/messages?beta=true"))
        .header("x-api-key", "sk-client-key")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A Gemini client's request for `claude-opus-5-5`.
async fn post_gemini(gw: &Gateway) -> reqwest::Response {
    client()
        .post(gw.url("/gemini/v1beta/models/claude-opus-5-5:generateContent"))
        .header("x-goog-api-key", "k")
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap()
}

/// The warnings the request log kept for request `id` (a stream's, whose headers left before
/// its content was known).
async fn logged_warnings(gw: &Gateway, id: String) -> String {
    gw.flush_records().await;
    let (rows, _) = gw
        .state
        .store()
        .logs(&gatehouse::store::LogFilter {
            request_id: Some(id),
            limit: 10,
            ..gatehouse::store::LogFilter::default()
        })
        .await
        .unwrap();
    rows[0]["warnings"].as_str().unwrap_or_default().to_owned()
}

fn routed(kind: &str, target: &str) -> String {
    format!(
        "[server]\nstream_keepalive = \"2s\"\n[providers.p]\nkind = \"{kind}\"\nbase_url = \"{{mock0}}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"*\"]\ntimeouts = {{ connect = \"1s\", first_byte = \"1s\", idle = \"3s\" }}\n\
         [[routes]]\nmatch = {{ model = \"claude-*\" }}\ntargets = [\"p/{target}\"]\n"
    )
}

fn warnings(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-gatehouse-warnings")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn claude_codes_max_tokens_is_clamped_to_each_served_models_ceiling() {
    // gpt-4o produces at most 16,384 tokens: the strict mock refuses more, as OpenAI does.
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&routed("openai", "gpt-4o"), &[&mock]).await;
    for stream in [false, true] {
        let r = post_messages(&gw, &claude_code_request("claude-opus-5-5", stream)).await;
        assert_eq!(r.status(), 200, "stream {stream}");
        assert!(
            warnings(&r).contains("max_tokens 128000->16384 for gpt-4o"),
            "{}",
            warnings(&r)
        );
        r.text().await.unwrap();
        let sent = mock.last_request().body;
        let max = sent
            .get("max_completion_tokens")
            .or_else(|| sent.get("max_tokens"));
        assert_eq!(max, Some(&json!(16384)), "{sent}");
    }

    // A model without a known ceiling gets the request's own maximum.
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&routed("openai-compatible", "qwen2.5-coder"), &[&mock]).await;
    let r = post_messages(&gw, &claude_code_request("claude-opus-5-5", false)).await;
    assert_eq!(r.status(), 200);
    assert!(!warnings(&r).contains("max_tokens"), "{}", warnings(&r));
    let sent = mock.last_request().body;
    assert_eq!(
        sent.get("max_completion_tokens")
            .or_else(|| sent.get("max_tokens")),
        Some(&json!(128000))
    );
}

#[tokio::test]
async fn a_passthrough_body_is_clamped_in_place() {
    // Anthropic client on Anthropic: the client's own bytes, `max_tokens` lowered.
    let mock = MockProvider::start(Profile::Anthropic).await;
    let gw = Gateway::start(&routed("anthropic", "claude-sonnet-4-5"), &[&mock]).await;
    let mut body = claude_code_request("claude-opus-5-5", false);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 100000});
    let r = post_messages(&gw, &body).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let sent = mock.last_request().body;
    assert_eq!(sent["max_tokens"], 64000);
    assert_eq!(sent["thinking"]["budget_tokens"], 63999);
    assert_eq!(sent["model"], "claude-sonnet-4-5");
}

#[tokio::test]
async fn gemini_gets_at_most_its_ceiling() {
    let mock = MockProvider::start(Profile::Gemini).await;
    let gw = Gateway::start(&routed("gemini", "gemini-2.5-pro"), &[&mock]).await;
    let r = post_messages(&gw, &claude_code_request("claude-opus-5-5", true)).await;
    assert_eq!(r.status(), 200);
    assert!(warnings(&r).contains("max_tokens 128000->65536 for gemini-2.5-pro"));
    r.text().await.unwrap();
    assert_eq!(
        mock.last_request().body["generationConfig"]["maxOutputTokens"],
        65536
    );
}

#[tokio::test]
async fn the_mock_refuses_what_the_provider_refuses() {
    // The strict mock is what makes the tests above mean something: without the clamp, the
    // provider's refusal, in its own words, is what the caller would get.
    let mock = MockProvider::start(Profile::OpenAi).await;
    // The ceiling is overridden upwards, so the gateway sends 128,000 and OpenAI refuses.
    let cfg = routed("openai", "gpt-4o") + "[pricing.\"gpt-4o\"]\nmax_output_tokens = 200000\n";
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let r = post_messages(&gw, &claude_code_request("claude-opus-5-5", false)).await;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["type"], "invalid_request_error");
    assert_eq!(
        b["error"]["message"],
        "openai: max_tokens is too large: 128000. This model supports at most 16384 completion tokens, whereas you provided 128000."
            .replace("max_tokens", sent_field(&mock))
    );
}

/// The field the gateway used for the maximum in its last request to `mock`.
fn sent_field(mock: &MockProvider) -> &'static str {
    if mock
        .last_request()
        .body
        .get("max_completion_tokens")
        .is_some()
    {
        "max_completion_tokens"
    } else {
        "max_tokens"
    }
}

const BUDGET_KEY: &str = "sk-fidelity-budget-0123456789";

/// Two of Claude Code's requests on `target` with a $0.50 daily budget, the second sent while
/// the first (which the mock holds for 0.7 s) still holds its reservation: the second's
/// status. A budget is open while `spent + reserved < limit`.
async fn second_request_status(target: &str, pricing: &str) -> u16 {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let cfg = routed("openai", target)
        + pricing
        + &format!(
            "[teams.t]\n[[keys]]\nname = \"k\"\nkey = \"{BUDGET_KEY}\"\nteam = \"t\"\nbudget = {{ usd = 0.5, period = \"daily\" }}\n"
        );
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let send = |gw: &Gateway| {
        client()
            .post(gw.url("/anthropic/v1/messages"))
            .header("x-api-key", BUDGET_KEY)
            .header("anthropic-version", "2023-06-01")
            .json(&claude_code_request("claude-opus-5-5", false))
            .send()
    };
    mock.push(Reply::chat("first").delay(Duration::from_millis(700)));
    let first = spawn(send(&gw));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = send(&gw).await.unwrap().status().as_u16();
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    second
}

#[tokio::test]
async fn budgets_reserve_the_clamped_maximum() {
    // gpt-4o's output is $10/M: clamped to 16,384 tokens the first request holds about
    // $0.16 of the $0.50, so the second is admitted. Unclamped (128,000 tokens, $1.28) it
    // would have closed the budget.
    assert_eq!(second_request_status("gpt-4o", "").await, 200);
    // A model whose ceiling costs more than the budget: 32,768 × $20/M = $0.66 held, closed.
    let pricier = "[pricing.\"gpt-4.1\"]\ninput = 2\noutput = 20\n";
    assert_eq!(second_request_status("gpt-4.1", pricier).await, 429);
}

/// Mistral's 422 for a `reasoning_effort` it does not take: `message` is an object holding
/// pydantic's `detail` list (the body from the issue).
const MISTRAL_422: &str = r#"{"object":"error","message":{"detail":[{"type":"enum","loc":["body","reasoning_effort"],"msg":"Input should be 'none' or 'high'","input":"medium"}]},"type":"invalid_request_error","param":null,"code":null}"#;

#[tokio::test]
async fn a_providers_refusal_keeps_its_detail_in_every_client_schema() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&routed("mistral", "devstral-2512"), &[&mock]).await;
    let refuse = || Reply::json(422, serde_json::from_str(MISTRAL_422).unwrap());
    let want = "mistral: reasoning_effort: Input should be 'none' or 'high' (got 'medium')";

    mock.push(refuse());
    let r = post_messages(&gw, &claude_code_request("claude-opus-5-5", false)).await;
    assert_eq!(r.status(), 422);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "error");
    assert_eq!(b["error"]["type"], "invalid_request_error");
    assert_eq!(b["error"]["message"], want);

    mock.push(refuse());
    let r = gw.chat(&chat_req("claude-opus-5-5", false)).await;
    assert_eq!(r.status(), 422);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["message"], want);
    assert_eq!(b["error"]["param"], "reasoning_effort");

    mock.push(refuse());
    let r = post_gemini(&gw).await;
    assert_eq!(r.status(), 422);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["message"], want);
    assert_eq!(b["error"]["code"], 422);
}

#[tokio::test]
async fn a_provider_quoting_its_key_never_shows_it() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&routed("openai", "gpt-4o"), &[&mock]).await;
    let key = test_env()["MOCK_KEY"].clone();
    mock.push(Reply::json(
        400,
        json!({"error": {"message": format!("Key {key} may not use this; also sk-proj-abcdefghijklmnopqrstuvwx"), "type": "invalid_request_error"}}),
    ));
    let r = gw.chat(&chat_req("claude-opus-5-5", false)).await;
    let text = r.text().await.unwrap();
    assert!(!text.contains(&key), "{text}");
    assert!(!text.contains("sk-proj-abcdefghijklmnopqrstuvwx"), "{text}");
    assert!(text.contains("may not use this"), "{text}");
}

#[tokio::test]
async fn an_upstream_timeout_is_each_schemas_timeout_error() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    // first_byte = 1s (`routed`); the mock answers after 3 s. The clock moves 1.1 s once
    // the mock has the request: the gateway's timeout fires, the mock's reply does not.
    let gw = Gateway::start(&routed("openai-compatible", "m"), &[&mock]).await;
    let slow = || Reply::chat("late").delay(Duration::from_secs(3));
    let past = Duration::from_millis(1100);

    mock.push(slow());
    let r = skip_once_received(
        &mock,
        past,
        post_messages(&gw, &claude_code_request("claude-opus-5-5", false)),
    )
    .await;
    assert_eq!(r.status(), 504);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["type"], "timeout_error", "{b}");

    mock.push(slow());
    let r = skip_once_received(&mock, past, gw.chat(&chat_req("claude-opus-5-5", false))).await;
    assert_eq!(r.status(), 504);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["type"], "timeout_error", "{b}");
    assert_eq!(b["error"]["code"], "upstream_timeout");

    mock.push(slow());
    let r = skip_once_received(&mock, past, post_gemini(&gw)).await;
    assert_eq!(r.status(), 504);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["status"], "DEADLINE_EXCEEDED", "{b}");
}

/// A Gemini 3 model's step: a signed call of `get_weather` (Gemini signs the first call).
fn gemini_signed_call(stream: bool) -> Reply {
    let chunk = crate::support::mock::gemini_chunk(
        json!([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "CiQBSIG+/sig=="}]),
        Some("STOP"),
    );
    if stream {
        crate::support::mock::gemini_stream(vec![chunk])
    } else {
        Reply::json(200, chunk)
    }
}

/// The call a Chat Completions client got back, from a reply or a stream.
async fn chat_call(r: reqwest::Response, stream: bool) -> (String, String) {
    assert_eq!(r.status(), 200);
    let (id, name) = if stream {
        let body = r.text().await.unwrap();
        let call = sse_frames(&body)
            .iter()
            .filter_map(|f| f.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .find_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]
                    .as_object()
                    .cloned()
            })
            .expect("a tool call");
        (call["id"].clone(), call["function"]["name"].clone())
    } else {
        let b: Value = r.json().await.unwrap();
        let call = &b["choices"][0]["message"]["tool_calls"][0];
        (call["id"].clone(), call["function"]["name"].clone())
    };
    (
        id.as_str().unwrap().to_owned(),
        name.as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn gemini_3_thought_signatures_survive_a_chat_completions_round_trip() {
    let mock = MockProvider::start(Profile::Gemini).await;
    let cfg = routed("gemini", "gemini-3-pro-preview").replace("claude-*", "gpt-*");
    let gw = Gateway::start(&cfg, &[&mock]).await;
    for stream in [false, true] {
        mock.push(gemini_signed_call(stream));
        let ask = json!({"model": "gpt-5", "stream": stream,
            "messages": [{"role": "user", "content": "weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]});
        let (id, name) = chat_call(gw.chat(&ask).await, stream).await;
        assert_eq!(name, "get_weather");
        // The client sends the call back with its result, as every Chat client does.
        let mut next = ask.clone();
        next["stream"] = json!(false);
        next["messages"] = json!([
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": id, "content": "sunny"}]);
        mock.push(Reply::json(
            200,
            crate::support::mock::gemini_chunk(json!([{"text": "Sunny."}]), Some("STOP")),
        ));
        let r = gw.chat(&next).await;
        // The strict mock refuses an unsigned call on Gemini 3: a 200 means it came back.
        assert_eq!(r.status(), 200, "stream {stream}: {:?}", r.text().await);
        let contents = &mock.last_request().body["contents"];
        assert_eq!(
            contents[1]["parts"][0]["thoughtSignature"], "CiQBSIG+/sig==",
            "{contents}"
        );
        assert_eq!(
            contents[2]["parts"][0]["functionResponse"]["name"],
            "get_weather"
        );
        assert!(!warnings(&r).contains("thought signature"));
    }

    // History Gatehouse cannot restore (a plain id): Google's stand-in, with a warning.
    mock.push(Reply::json(
        200,
        crate::support::mock::gemini_chunk(json!([{"text": "Sunny."}]), Some("STOP")),
    ));
    let r = gw
        .chat(&json!({"model": "gpt-5", "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_9", "content": "sunny"}]}))
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        warnings(&r).contains(
            "thought signature missing: skip_thought_signature_validator sent for gemini"
        ),
        "{}",
        warnings(&r)
    );
    assert_eq!(
        mock.last_request().body["contents"][1]["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
}

#[tokio::test]
async fn the_gemini_mock_refuses_unsigned_calls_and_unanswered_turns() {
    // Straight at the mock, as a client that talks to Gemini itself.
    let mock = MockProvider::start(Profile::Gemini).await;
    let post = |model: &str, contents: Value| {
        client()
            .post(format!(
                "{}/v1beta/models/{model}:generateContent",
                mock.base_url()
            ))
            .header("x-goog-api-key", "k")
            .json(&json!({ "contents": contents }))
            .send()
    };
    let call = json!({"functionCall": {"name": "f", "args": {}}});
    let answer = json!({"functionResponse": {"name": "f", "response": {"output": "x"}}});
    let user = json!({"role": "user", "parts": [{"text": "hi"}]});
    let unsigned =
        json!([user, {"role": "model", "parts": [call]}, {"role": "user", "parts": [answer]}]);
    let r = post("gemini-3-pro-preview", unsigned.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Function call is missing a thought_signature"),
        "{b}"
    );
    // Gemini 2.5 takes it; an unanswered call or a missing response is refused by both.
    assert_eq!(
        post("gemini-2.5-flash", unsigned).await.unwrap().status(),
        200
    );
    let unanswered = json!([user, {"role": "model", "parts": [call]}, user]);
    assert_eq!(
        post("gemini-2.5-flash", unanswered).await.unwrap().status(),
        400
    );
    let short = json!([user, {"role": "model", "parts": [call, call]}, {"role": "user", "parts": [answer]}]);
    assert_eq!(post("gemini-2.5-flash", short).await.unwrap().status(), 400);
}

const BEDROCK_CLAUDE: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
/// Claude's redacted thinking, as Anthropic and Bedrock both carry it (base64).
const REDACTED: &str = "RXFBU2tnRVlBaUpBcmVkYWN0ZWQ=";

fn bedrock_config() -> String {
    "[server]\nstream_keepalive = \"2s\"\n[providers.br]\nkind = \"bedrock\"\nbase_url = \"{mock0}\"\nmodels = [\"*\"]\n".to_owned()
}

#[tokio::test]
async fn redacted_thinking_survives_anthropic_to_bedrock_and_back_streamed_and_not() {
    use crate::support::mock::{bedrock_event, bedrock_stream};
    let mock = MockProvider::start(Profile::Bedrock).await;
    let gw = Gateway::start(&bedrock_config(), &[&mock]).await;
    // Streamed: the redacted block reaches the Anthropic client whole.
    mock.push(bedrock_stream(vec![
        bedrock_event("messageStart", json!({"role": "assistant"})),
        bedrock_event("contentBlockDelta", json!({"delta": {"reasoningContent": {"redactedContent": REDACTED}}, "contentBlockIndex": 0})),
        bedrock_event("contentBlockStop", json!({"contentBlockIndex": 0})),
        bedrock_event("contentBlockDelta", json!({"delta": {"text": "Done."}, "contentBlockIndex": 1})),
        bedrock_event("contentBlockStop", json!({"contentBlockIndex": 1})),
        bedrock_event("messageStop", json!({"stopReason": "end_turn"})),
        bedrock_event("metadata", json!({"usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}})),
    ]));
    let mut ask = json!({"model": BEDROCK_CLAUDE, "max_tokens": 500, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let r = post_messages(&gw, &ask).await;
    let text = r.text().await.unwrap();
    let block = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|e| e["content_block"]["type"] == "redacted_thinking")
        .unwrap_or_else(|| panic!("no redacted_thinking block in:\n{text}"));
    assert_eq!(block["content_block"]["data"], REDACTED);
    assert_eq!(block["index"], 0);

    // Not streamed, and back as history.
    mock.push(Reply::json(
        200,
        json!({"output": {"message": {"role": "assistant", "content": [
                {"reasoningContent": {"redactedContent": REDACTED}}, {"text": "Done."}]}},
            "stopReason": "end_turn", "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}}),
    ));
    ask["stream"] = json!(false);
    let b: Value = post_messages(&gw, &ask).await.json().await.unwrap();
    assert_eq!(
        b["content"][0],
        json!({"type": "redacted_thinking", "data": REDACTED})
    );
    ask["messages"] = json!([{"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": REDACTED}, {"type": "text", "text": "Done."}]},
        {"role": "user", "content": "again"}]);
    assert_eq!(post_messages(&gw, &ask).await.status(), 200);
    assert_eq!(
        mock.last_request().body["messages"][1]["content"][0],
        json!({"reasoningContent": {"redactedContent": REDACTED}})
    );
}

#[tokio::test]
async fn what_a_client_schema_cannot_carry_is_named_in_its_warnings() {
    use crate::support::mock::named_sse;
    let mock = MockProvider::start(Profile::Anthropic).await;
    let cfg = "[server]\nstream_keepalive = \"2s\"\n[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{mock0}\"\napi_key = \"${MOCK_KEY}\"\nmodels = [\"*\"]\n";
    let gw = Gateway::start(cfg, &[&mock]).await;
    let blocks = json!([
        {"type": "redacted_thinking", "data": REDACTED},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "weather"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {"type": "text", "text": "Sunny."}]);
    mock.push(Reply::json(
        200,
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": blocks, "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 5, "output_tokens": 2}}),
    ));
    let r = gw.chat(&chat_req("claude-sonnet-4-5", false)).await;
    assert_eq!(r.status(), 200);
    let w = warnings(&r);
    for kind in [
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
    ] {
        assert!(w.contains(&format!("{kind} dropped for chat")), "{w}");
    }
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["choices"][0]["message"]["content"], "Sunny.");

    // Streamed: the same blocks, named in the request log's warnings.
    mock.push(named_sse(&[
        ("message_start", json!({"type": "message_start", "message": {"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}})),
        ("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": REDACTED}})),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        ("content_block_start", json!({"type": "content_block_start", "index": 1, "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}})),
        ("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"query\":\"weather\"}"}})),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
        ("content_block_start", json!({"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}})),
        ("content_block_delta", json!({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Sunny."}})),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 2})),
        ("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 2}})),
        ("message_stop", json!({"type": "message_stop"})),
    ]));
    let r = gw.chat(&chat_req("claude-sonnet-4-5", true)).await;
    let id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = r.text().await.unwrap();
    assert!(body.contains("Sunny."), "{body}");
    assert!(!body.contains("srvtoolu_1"), "{body}");
    let w = logged_warnings(&gw, id).await;
    for kind in ["redacted_thinking", "server_tool_use"] {
        assert!(w.contains(&format!("{kind} dropped for chat")), "{w}");
    }
}

#[tokio::test]
async fn web_citations_translate_between_anthropic_and_openai_and_others_are_named() {
    let mock = MockProvider::start(Profile::Anthropic).await;
    let cfg = "[server]\nstream_keepalive = \"2s\"\n[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{mock0}\"\napi_key = \"${MOCK_KEY}\"\nmodels = [\"*\"]\n";
    let gw = Gateway::start(cfg, &[&mock]).await;
    let reply = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "Paris is "},
            {"type": "text", "text": "sunny today", "citations": [{"type": "web_search_result_location",
                "url": "https://weather.example/paris", "title": "Paris weather", "cited_text": "Sunny, 21 C", "encrypted_index": "Eo8B"}]},
            {"type": "text", "text": ", as the report says.", "citations": [{"type": "char_location",
                "document_index": 0, "document_title": "report", "cited_text": "x", "start_char_index": 0, "end_char_index": 1}]}],
        "stop_reason": "end_turn", "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 2}});

    mock.push(Reply::json(200, reply.clone()));
    let r = gw.chat(&chat_req("claude-sonnet-4-5", false)).await;
    assert!(
        warnings(&r).contains("citations char_location dropped for chat"),
        "{}",
        warnings(&r)
    );
    let b: Value = r.json().await.unwrap();
    let m = &b["choices"][0]["message"];
    assert_eq!(m["content"], "Paris is sunny today, as the report says.");
    assert_eq!(
        m["annotations"],
        json!([{"type": "url_citation", "url_citation": {"url": "https://weather.example/paris",
            "title": "Paris weather", "start_index": 9, "end_index": 20}}])
    );

    mock.push(Reply::json(200, reply));
    let r = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "claude-sonnet-4-5", "input": "weather?"}))
        .send()
        .await
        .unwrap();
    let b: Value = r.json().await.unwrap();
    let text = &b["output"][0]["content"][0];
    assert_eq!(text["text"], "Paris is sunny today, as the report says.");
    assert_eq!(
        text["annotations"],
        json!([{"type": "url_citation", "url": "https://weather.example/paris",
            "title": "Paris weather", "start_index": 9, "end_index": 20}])
    );

    // OpenAI's annotations to an Anthropic client: the cited range a block of its own.
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&routed("openai", "gpt-4o"), &[&mock]).await;
    let mut body = crate::support::mock::chat_body("Paris is sunny today.", 5, 2);
    body["choices"][0]["message"]["annotations"] = json!([{"type": "url_citation", "url_citation": {
        "url": "https://weather.example/paris", "title": "Paris weather", "start_index": 9, "end_index": 20}}]);
    mock.push(Reply::json(200, body));
    let b: Value = post_messages(&gw, &claude_code_request("claude-opus-5-5", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        b["content"],
        json!([{"type": "text", "text": "Paris is "},
            {"type": "text", "text": "sunny today", "citations": [{"type": "web_search_result_location",
                "url": "https://weather.example/paris", "title": "Paris weather", "cited_text": "sunny today", "encrypted_index": ""}]},
            {"type": "text", "text": "."}])
    );
}

#[tokio::test]
async fn tool_results_then_user_text_reach_mistral_in_an_order_it_takes() {
    // Claude Code's turn after a tool call: the results and a reminder in one user turn,
    // which become tool messages and a user message; Mistral refuses a user message right
    // after tool results, as the strict mock does.
    let mock = MockProvider::start(Profile::Mistral).await;
    let gw = Gateway::start(&routed("mistral", "devstral-2512"), &[&mock]).await;
    let body = json!({"model": "claude-opus-5-5", "max_tokens": 1000, "messages": [
        {"role": "user", "content": "list the files"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.txt"},
            {"type": "text", "text": "<system-reminder>keep going</system-reminder>"}]}]});
    let r = post_messages(&gw, &body).await;
    let w = warnings(&r);
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert!(
        w.contains("assistant turn added between tool results and user text for mistral"),
        "{w}"
    );
    let roles: Vec<Value> = mock.last_request().body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(
        roles,
        [
            json!("user"),
            json!("assistant"),
            json!("tool"),
            json!("assistant"),
            json!("user")
        ]
    );
}

#[tokio::test]
async fn the_openai_and_anthropic_mocks_refuse_unanswered_calls_and_unknown_fields() {
    let openai = MockProvider::start(Profile::OpenAi).await;
    let post = |url: String, body: Value| {
        client()
            .post(url)
            .header("x-api-key", "k")
            .header("anthropic-version", "2023-06-01")
            .json(&body)
            .send()
    };
    let call = json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
    for messages in [
        json!([{"role": "user", "content": "go"}, call, {"role": "user", "content": "more"}]),
        json!([{"role": "user", "content": "go"}, {"role": "tool", "tool_call_id": "call_9", "content": "x"}]),
    ] {
        let r = post(
            format!("{}/chat/completions", openai.base_url()),
            json!({"model": "m", "messages": messages}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 400);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["type"], "invalid_request_error", "{b}");
    }

    let anthropic = MockProvider::start(Profile::Anthropic).await;
    let url = format!("{}/v1/messages", anthropic.base_url());
    let uses = json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]});
    for body in [
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "go"}, uses, {"role": "user", "content": "more"}]}),
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}]}),
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "go"}], "reasoning_effort": "high"}),
    ] {
        let r = post(url.clone(), body.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["type"], "invalid_request_error", "{b}");
    }
}

#[tokio::test]
async fn streamed_web_citations_reach_a_responses_client_as_annotations() {
    use crate::support::mock::named_sse;
    let mock = MockProvider::start(Profile::Anthropic).await;
    let cfg = "[server]\nstream_keepalive = \"2s\"\n[providers.claude]\nkind = \"anthropic\"\nbase_url = \"{mock0}\"\napi_key = \"${MOCK_KEY}\"\nmodels = [\"*\"]\n";
    let gw = Gateway::start(cfg, &[&mock]).await;
    let citation = json!({"type": "web_search_result_location", "url": "https://weather.example/paris",
        "title": "Paris weather", "cited_text": "Sunny, 21 C", "encrypted_index": "Eo8B"});
    let stream = || {
        named_sse(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_3", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Paris is "}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "", "citations": []}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": citation}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "sunny today"}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 4}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ])
    };
    mock.push(stream());
    let r = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "claude-sonnet-4-5", "input": "weather?", "stream": true}))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    let events: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let want = json!({"type": "url_citation", "url": "https://weather.example/paris",
        "title": "Paris weather", "start_index": 9, "end_index": 20});
    let added = events
        .iter()
        .find(|e| e["type"] == "response.output_text.annotation.added")
        .unwrap_or_else(|| panic!("no annotation event in:\n{body}"));
    assert_eq!(added["annotation"], want);
    let done = events.last().unwrap();
    assert_eq!(done["type"], "response.completed");
    assert_eq!(
        done["response"]["output"][0]["content"][0]["annotations"],
        json!([want])
    );
    for e in &events {
        if let Some(errors) = crate::support::openai_spec::validate("ResponseStreamEvent", e) {
            panic!("event violates the spec: {errors:#?}\n{e}");
        }
    }

    // A Chat Completions stream has no place for it: named in the log's warnings.
    mock.push(stream());
    let r = gw.chat(&chat_req("claude-sonnet-4-5", true)).await;
    let id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(r.text().await.unwrap().contains("sunny today"));
    let w = logged_warnings(&gw, id).await;
    assert!(w.contains("citations dropped for chat"), "{w}");
}

#[tokio::test]
async fn bedrock_citations_keep_their_text_and_web_sources() {
    use crate::support::mock::{bedrock_event, bedrock_stream};
    let mock = MockProvider::start(Profile::Bedrock).await;
    let gw = Gateway::start(&bedrock_config(), &[&mock]).await;
    let web = json!({"title": "Paris weather", "sourceContent": [{"text": "Sunny, 21 C"}],
        "location": {"web": {"url": "https://weather.example/paris", "domain": "weather.example"}}});
    mock.push(Reply::json(
        200,
        json!({"output": {"message": {"role": "assistant", "content": [
                {"text": "Paris is "},
                {"citationsContent": {"content": [{"text": "sunny today"}], "citations": [web]}}]}},
            "stopReason": "end_turn", "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}}),
    ));
    let b: Value = gw
        .chat(&chat_req(BEDROCK_CLAUDE, false))
        .await
        .json()
        .await
        .unwrap();
    let m = &b["choices"][0]["message"];
    assert_eq!(m["content"], "Paris is sunny today");
    assert_eq!(
        m["annotations"][0]["url_citation"],
        json!({"url": "https://weather.example/paris", "title": "Paris weather", "start_index": 9, "end_index": 20})
    );

    // Streamed, to a Responses client.
    mock.push(bedrock_stream(vec![
        bedrock_event("messageStart", json!({"role": "assistant"})),
        bedrock_event(
            "contentBlockDelta",
            json!({"delta": {"text": "Paris is "}, "contentBlockIndex": 0}),
        ),
        bedrock_event("contentBlockStop", json!({"contentBlockIndex": 0})),
        bedrock_event(
            "contentBlockDelta",
            json!({"delta": {"citation": web}, "contentBlockIndex": 1}),
        ),
        bedrock_event(
            "contentBlockDelta",
            json!({"delta": {"text": "sunny today"}, "contentBlockIndex": 1}),
        ),
        bedrock_event("contentBlockStop", json!({"contentBlockIndex": 1})),
        bedrock_event("messageStop", json!({"stopReason": "end_turn"})),
        bedrock_event(
            "metadata",
            json!({"usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}}),
        ),
    ]));
    let body = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": BEDROCK_CLAUDE, "input": "weather?", "stream": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let added = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|e| e["type"] == "response.output_text.annotation.added")
        .unwrap_or_else(|| panic!("no annotation in:\n{body}"));
    assert_eq!(
        added["annotation"],
        json!({"type": "url_citation", "url": "https://weather.example/paris", "title": "Paris weather", "start_index": 9, "end_index": 20})
    );
}

#[tokio::test]
async fn a_mirror_shadow_gets_no_fields_of_the_clients_schema() {
    let (primary, shadow) = (
        MockProvider::start(Profile::OpenAi).await,
        MockProvider::start(Profile::OpenAi).await,
    );
    let cfg = "[providers.a]\nkind = \"openai-compatible\"\nbase_url = \"{mock0}\"\n\
        [providers.shadow]\nkind = \"openai-compatible\"\nbase_url = \"{mock1}\"\n\
        [[routes]]\nname = \"ab\"\nmatch = { model = \"claude-*\" }\ntargets = [\"a/m\"]\n\
        mirror = { target = \"shadow/candidate\", sample = 1.0 }\n";
    let gw = Gateway::start(cfg, &[&primary, &shadow]).await;
    let mut body = claude_code_request("claude-opus-5-5", false);
    body["context_management"] =
        json!({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]});
    assert_eq!(post_messages(&gw, &body).await.status(), 200);
    eventually(Duration::from_secs(5), || async {
        (shadow.calls() > 0).then_some(())
    })
    .await
    .expect("the shadow was sent");
    for mock in [&primary, &shadow] {
        let sent = mock.last_request().body;
        assert!(sent.get("context_management").is_none(), "{sent}");
    }
}
