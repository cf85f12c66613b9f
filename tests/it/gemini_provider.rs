//! The `gemini` provider (issue #5): other clients' requests translated into Gemini's
//! `GenerateContentRequest` (every body checked by the mock against Google's discovery
//! document), replies and streams translated back (thoughts, signatures, function calls,
//! usage), safety blocks mapped, Gemini clients passed through untouched, embeddings.

use serde_json::{Value, json};

use crate::support::mock::{gemini_chunk, gemini_stream};
use crate::support::*;

async fn gateway(mock: &MockProvider) -> Gateway {
    Gateway::start(&one_provider("gemini"), &[mock]).await
}

#[tokio::test]
async fn an_openai_request_is_translated_and_its_reply_mapped_back() {
    let mock = MockProvider::start(Profile::Gemini).await;
    let gw = gateway(&mock).await;
    let r = gw
        .chat(&json!({"model": "gemini-2.5-flash", "max_completion_tokens": 300, "temperature": 0.3,
            "reasoning_effort": "low", "stop": ["END"],
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": {"city": {"type": "string"}}}}}],
            "response_format": {"type": "json_object"}}))
        .await;
    assert_eq!(r.status(), 200);
    let warnings = r.headers()["x-gatehouse-warnings"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        warnings.contains("schema keywords $schema dropped for gemini"),
        "{warnings}"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from the mock");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["total_tokens"], 15);
    let sent = mock.last_request();
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.headers["x-goog-api-key"], "sk-provider-secret-0000");
    let b = &sent.body;
    assert_eq!(
        b["systemInstruction"],
        json!({"parts": [{"text": "be brief"}]})
    );
    assert_eq!(
        b["contents"],
        json!([{"role": "user", "parts": [{"text": "hi"}]}])
    );
    assert_eq!(
        b["tools"][0]["functionDeclarations"][0]["parameters"],
        json!({"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}),
        "reduced to Gemini's Schema subset"
    );

    let g = &b["generationConfig"];
    assert_eq!(
        (g["maxOutputTokens"].clone(), g["temperature"].clone()),
        (json!(300), json!(0.3))
    );
    assert_eq!(g["stopSequences"], json!(["END"]));
    assert_eq!(g["responseMimeType"], "application/json");
    assert_eq!(g["thinkingConfig"], json!({"thinkingBudget": 1024}));
}

#[tokio::test]
async fn a_stream_with_thoughts_and_a_signed_call_comes_back_as_chunks() {
    let mock = MockProvider::start(Profile::Gemini).await;
    mock.push(gemini_stream(vec![
        gemini_chunk(json!([{"text": "pondering", "thought": true}]), None),
        gemini_chunk(json!([{"text": "Let me check."}]), None),
        gemini_chunk(json!([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnbmF0dXJl"}]), None),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
               "usageMetadata": {"promptTokenCount": 40, "candidatesTokenCount": 10, "thoughtsTokenCount": 6, "totalTokenCount": 56}}),
    ]));
    let gw = gateway(&mock).await;
    let mut req = chat_req("gemini-3-pro", true);
    req["stream_options"] = json!({"include_usage": true});
    req["reasoning_effort"] = json!("high");
    let body = gw.chat(&req).await.text().await.unwrap();
    let chunks: Vec<Value> = sse_frames(&body)
        .iter()
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0).map(|c| &c["delta"]))
        .collect();
    assert!(
        deltas.iter().any(|d| d["reasoning_content"] == "pondering"),
        "{body}"
    );
    let text: String = deltas
        .iter()
        .filter_map(|d| d["content"].as_str())
        .collect();
    assert_eq!(text, "Let me check.");
    let call = deltas.iter().find_map(|d| d["tool_calls"].get(0)).unwrap();
    assert_eq!(call["function"]["name"], "get_weather");
    let args: String = deltas
        .iter()
        .filter_map(|d| d["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, r#"{"city":"Paris"}"#);
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "tool_calls");
    let usage = &chunks.iter().rev().find(|c| !c["usage"].is_null()).unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], 40);
    assert_eq!(
        usage["completion_tokens"], 16,
        "thoughts are output tokens: {usage}"
    );
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 6);
    assert!(body.ends_with("data: [DONE]\n\n"));
    let sent = &mock.last_request();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-3-pro:streamGenerateContent"
    );
    assert_eq!(sent.query.as_deref(), Some("alt=sse"));
    assert_eq!(
        sent.body["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel": "HIGH"})
    );
}

#[tokio::test]
async fn a_tool_loop_replays_calls_with_their_signature_and_named_results() {
    let mock = MockProvider::start(Profile::Gemini).await;
    let gw = gateway(&mock).await;
    // As an Anthropic client (Claude Code) sends it: signed thinking, a tool call, its result.
    let r = client()
        .post(gw.url("/v1/messages"))
        .json(&json!({"model": "gemini-2.5-pro", "max_tokens": 500, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "need a tool", "signature": "c2ln"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                                         {"type": "text", "text": "and tomorrow?"}]}],
            "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let c = &mock.last_request().body["contents"];
    assert_eq!(
        c[1],
        json!({"role": "model", "parts": [{"functionCall": {"id": "toolu_1", "name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"}]})
    );
    assert_eq!(
        c[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"id": "toolu_1", "name": "get_weather", "response": {"output": "sunny"}}},
            {"text": "and tomorrow?"}]})
    );
}

#[tokio::test]
async fn gemini_clients_pass_through_untouched() {
    let mock = MockProvider::start(Profile::Gemini).await;
    let reply = gemini_chunk(json!([{"text": "raw"}]), Some("STOP"));
    mock.push(Reply::json(200, reply.clone()));
    mock.push(gemini_stream(vec![
        gemini_chunk(json!([{"text": "a"}]), None),
        gemini_chunk(json!([{"text": "b"}]), Some("STOP")),
    ]));
    mock.push(gemini_stream(vec![gemini_chunk(
        json!([{"text": "c"}]),
        Some("STOP"),
    )]));
    let gw = gateway(&mock).await;
    let body = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"temperature":0.10,"thinkingConfig":{"thinkingLevel":"LOW"}}}"#;
    let send = |path: &str| {
        client()
            .post(gw.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = send("/gemini/v1beta/models/gemini-2.5-flash:generateContent")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-gatehouse-warnings").is_none());
    assert_eq!(
        r.text().await.unwrap(),
        reply.to_string(),
        "relayed byte for byte"
    );
    assert_eq!(
        std::str::from_utf8(&mock.last_request().raw).unwrap(),
        body,
        "sent as it came"
    );
    let r = send("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert_eq!(text.matches("data: ").count(), 2, "{text}");
    assert!(text.contains(r#""text":"b""#));
    // Without alt=sse the client wants a JSON array: the provider's SSE chunks become its items.
    let r = send("/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent")
        .await
        .unwrap();
    let array: Vec<Value> = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(array.len(), 1);
    assert_eq!(
        array[0]["candidates"][0]["content"]["parts"][0]["text"],
        "c"
    );
}

#[tokio::test]
async fn blocked_prompts_filtered_replies_and_errors_are_mapped() {
    let mock = MockProvider::start(Profile::Gemini).await;
    mock.push(Reply::json(200, json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}})));
    mock.push(Reply::json(200, gemini_chunk(json!([]), Some("SAFETY"))));
    mock.push(Reply::json(400, json!({"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}})));
    mock.push(Reply::json(403, json!({"error": {"code": 403, "message": "Permission denied on resource project.", "status": "PERMISSION_DENIED"}})));
    let gw = gateway(&mock).await;
    let r = gw.chat(&chat_req("gemini-2.5-flash", false)).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("blocked the prompt (blockReason SAFETY)"),
        "{e}"
    );
    let v: Value = gw
        .chat(&chat_req("gemini-2.5-flash", false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    let r = gw.chat(&chat_req("gemini-2.5-flash", false)).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid argument"),
        "{e}"
    );
    let r = gw.chat(&chat_req("gemini-2.5-flash", false)).await;
    assert_eq!(r.status(), 502, "a refused key is the gateway's problem");
}

#[tokio::test]
async fn embeddings_use_batch_embed_contents() {
    let mock = MockProvider::start(Profile::Gemini).await;
    let gw = gateway(&mock).await;
    let r = client()
        .post(gw.url("/v1/embeddings"))
        .json(&json!({"model": "gemini-embedding-001", "input": ["a", "b"], "dimensions": 256}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"][1]["embedding"], json!([0.5, 1.0]));
    let sent = mock.last_request();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(
        sent.body["requests"][0],
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 256})
    );
}
