//! The `bedrock` provider (issue #5): Converse and ConverseStream, signed with SigV4 from the
//! AWS environment variables (the mock recomputes and checks every signature) or sent with
//! a Bedrock API key; bodies checked against Amazon's service model; AWS event-stream
//! framing decoded; errors and stream exceptions mapped; embeddings through InvokeModel.

use serde_json::{Value, json};

use crate::support::mock::{bedrock_event, bedrock_exception, bedrock_stream};
use crate::support::*;

const CLAUDE: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

/// A Bedrock provider signing with the test environment's AWS credentials.
fn config() -> String {
    "[server]\nstream_keepalive = \"2s\"\n[providers.br]\nkind = \"bedrock\"\nbase_url = \"{mock0}\"\nmodels = [\"*\"]\n".to_owned()
}

#[tokio::test]
async fn converse_is_signed_and_translated_both_ways() {
    let mock = MockProvider::start(Profile::Bedrock).await;
    mock.push(Reply::json(
        200,
        json!({"output": {"message": {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig1"}}},
                {"text": "Calling."},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 30, "outputTokens": 9, "totalTokens": 39, "cacheReadInputTokens": 10},
            "metrics": {"latencyMs": 120}}),
    ));
    let gw = Gateway::start(&config(), &[&mock]).await;
    let r = gw
        .chat(&json!({"model": CLAUDE, "max_tokens": 400, "temperature": 0.2, "top_k": 20,
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": "required"}))
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "Calling.");
    assert_eq!(m["reasoning_content"], "hmm");
    assert_eq!(m["tool_calls"][0]["id"], "tooluse_1");
    assert_eq!(
        m["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Paris"}"#
    );
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(v["usage"]["prompt_tokens"], 40, "cache reads are input too");
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 10);
    let sent = mock.last_request();
    assert_eq!(
        sent.path,
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    );
    let auth = sent.headers["authorization"].to_str().unwrap();
    assert!(
        auth.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential={}/",
            crate::support::mock::AWS_KEY_ID
        )) && auth.contains("/us-east-1/bedrock/aws4_request"),
        "{auth}"
    );
    let b = &sent.body;
    assert_eq!(b["system"], json!([{"text": "be brief"}]));
    assert_eq!(
        b["messages"],
        json!([{"role": "user", "content": [{"text": "weather?"}]}])
    );
    assert_eq!(
        b["inferenceConfig"],
        json!({"maxTokens": 400, "temperature": 0.2})
    );
    assert_eq!(b["additionalModelRequestFields"], json!({"top_k": 20}));
    assert_eq!(b["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(
        b["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["properties"]["city"]["type"],
        "string"
    );
}

#[tokio::test]
async fn a_tool_loop_alternates_roles_and_keeps_signed_reasoning() {
    let mock = MockProvider::start(Profile::Bedrock).await;
    let gw = Gateway::start(&config(), &[&mock]).await;
    // Claude Code's shape of a tool loop, with thinking on.
    let r = client()
        .post(gw.url("/v1/messages"))
        .json(&json!({"model": CLAUDE, "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "need it", "signature": "sigA"},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny", "is_error": false}]},
                {"role": "user", "content": "and tomorrow?"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let b = &mock.last_request().body;
    let roles: Vec<&str> = b["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant", "user"],
        "consecutive user turns merged"
    );
    assert_eq!(
        b["messages"][1]["content"][0],
        json!({"reasoningContent": {"reasoningText": {"text": "need it", "signature": "sigA"}}})
    );
    assert_eq!(
        b["messages"][2]["content"],
        json!([{"toolResult": {"toolUseId": "toolu_01", "content": [{"text": "sunny"}], "status": "success"}}, {"text": "and tomorrow?"}])
    );
    assert_eq!(
        b["additionalModelRequestFields"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
}

#[tokio::test]
async fn converse_stream_is_unframed_and_translated() {
    let mock = MockProvider::start(Profile::Bedrock).await;
    mock.push(bedrock_stream(vec![
        bedrock_event("messageStart", json!({"role": "assistant"})),
        bedrock_event("contentBlockDelta", json!({"delta": {"reasoningContent": {"text": "thinking"}}, "contentBlockIndex": 0})),
        bedrock_event("contentBlockDelta", json!({"delta": {"reasoningContent": {"signature": "sigZ"}}, "contentBlockIndex": 0})),
        bedrock_event("contentBlockStop", json!({"contentBlockIndex": 0})),
        bedrock_event("contentBlockDelta", json!({"delta": {"text": "Let me "}, "contentBlockIndex": 1})),
        bedrock_event("contentBlockDelta", json!({"delta": {"text": "check."}, "contentBlockIndex": 1})),
        bedrock_event("contentBlockStop", json!({"contentBlockIndex": 1})),
        bedrock_event("contentBlockStart", json!({"start": {"toolUse": {"toolUseId": "tooluse_9", "name": "get_weather"}}, "contentBlockIndex": 2})),
        bedrock_event("contentBlockDelta", json!({"delta": {"toolUse": {"input": "{\"city\":"}}, "contentBlockIndex": 2})),
        bedrock_event("contentBlockDelta", json!({"delta": {"toolUse": {"input": "\"Paris\"}"}}, "contentBlockIndex": 2})),
        bedrock_event("contentBlockStop", json!({"contentBlockIndex": 2})),
        bedrock_event("messageStop", json!({"stopReason": "tool_use"})),
        bedrock_event("metadata", json!({"usage": {"inputTokens": 50, "outputTokens": 20, "totalTokens": 70}, "metrics": {"latencyMs": 300}})),
    ]));
    let gw = Gateway::start(&config(), &[&mock]).await;
    let r = client()
        .post(gw.url("/v1/messages"))
        .json(&json!({"model": CLAUDE, "max_tokens": 500, "stream": true, "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    for needle in [
        r#""thinking":"thinking""#,
        r#""signature":"sigZ""#,
        r#""text":"Let me ""#,
        r#""id":"tooluse_9""#,
        r#""partial_json":"{\"city\":""#,
        r#""stop_reason":"tool_use""#,
        r#""output_tokens":20"#,
        "event: message_stop",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    assert_eq!(
        mock.last_request().path,
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
    );
    assert_eq!(
        mock.last_request().headers["accept"],
        "application/vnd.amazon.eventstream"
    );
}

#[tokio::test]
async fn errors_and_stream_exceptions_are_mapped() {
    let mock = MockProvider::start(Profile::Bedrock).await;
    mock.push(
        Reply::json(
            400,
            json!({"message": "Malformed input request: #: extraneous key [foo] is not permitted"}),
        )
        .header("x-amzn-errortype", "ValidationException"),
    );
    mock.push(
        Reply::json(
            429,
            json!({"message": "Too many requests, please wait before trying again."}),
        )
        .header("x-amzn-errortype", "ThrottlingException"),
    );
    mock.push(bedrock_stream(vec![
        bedrock_event("messageStart", json!({"role": "assistant"})),
        bedrock_event(
            "contentBlockDelta",
            json!({"delta": {"text": "partial"}, "contentBlockIndex": 0}),
        ),
        bedrock_exception("modelStreamErrorException", "Model stream error"),
    ]));
    let gw = Gateway::start(&config(), &[&mock]).await;
    let r = gw.chat(&chat_req("amazon.nova-pro-v1:0", false)).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("extraneous key"),
        "{e}"
    );
    let r = gw.chat(&chat_req("amazon.nova-pro-v1:0", false)).await;
    assert_eq!(r.status(), 429);
    let body = gw
        .chat(&chat_req("amazon.nova-pro-v1:0", true))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("partial") && body.contains("modelStreamErrorException"),
        "{body}"
    );
    assert!(
        !body.contains("[DONE]"),
        "a failed stream is not a normal stop: {body}"
    );
}

#[tokio::test]
async fn a_bedrock_api_key_is_sent_as_a_bearer_token_and_embeddings_invoke_the_model() {
    let mock = MockProvider::start(Profile::Bedrock).await;
    let gw = Gateway::start(&one_provider("bedrock"), &[&mock]).await;
    let r = gw.chat(&chat_req("amazon.nova-lite-v1:0", false)).await;
    assert_eq!(r.status(), 200);
    let sent = mock.last_request();
    assert_eq!(
        sent.headers["authorization"],
        "Bearer sk-provider-secret-0000"
    );
    assert!(sent.headers.get("x-amz-date").is_none());
    let r = client()
        .post(gw.url("/v1/embeddings"))
        .json(
            &json!({"model": "amazon.titan-embed-text-v2:0", "input": "hello", "dimensions": 256}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"][0]["embedding"], json!([0.25, 0.5]));
    assert_eq!(v["usage"]["prompt_tokens"], 4);
    let sent = mock.last_request();
    assert_eq!(sent.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
    assert_eq!(sent.body, json!({"inputText": "hello", "dimensions": 256}));
}

#[test]
fn bedrock_needs_a_region_and_credentials() {
    let env: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let errors = gatehouse::config::parse("t.toml", "[providers.b]\nkind = \"bedrock\"\n", &env)
        .err()
        .unwrap();
    let text: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
    assert!(
        text.iter().any(|m| m.contains("needs a region")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|m| m.contains("needs AWS credentials")),
        "{text:?}"
    );
    let ok = gatehouse::config::parse(
        "t.toml",
        "[providers.b]\nkind = \"bedrock\"\nregion = \"eu-west-3\"\napi_key = \"k\"\n",
        &env,
    )
    .unwrap();
    assert_eq!(
        ok.providers[0].base_url,
        "https://bedrock-runtime.eu-west-3.amazonaws.com"
    );
}

#[tokio::test]
async fn the_mock_refuses_a_signature_that_does_not_match() {
    let mock = MockProvider::start(Profile::Bedrock).await;
    let r = client()
        .post(format!("{}/model/amazon.nova-lite-v1%3A0/converse", mock.base_url()))
        .header("authorization", format!("AWS4-HMAC-SHA256 Credential={}/20261122/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=00", crate::support::mock::AWS_KEY_ID))
        .header("x-amz-date", "20261122T000000Z")
        .header("x-amz-security-token", crate::support::mock::AWS_TOKEN)
        .json(&json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    assert!(e["message"].as_str().unwrap().contains("signature"), "{e}");
}
