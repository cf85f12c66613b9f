//! Gemini API ingress (issue #5): `generateContent`, `streamGenerateContent` (SSE with
//! `alt=sse`, a JSON array without), `countTokens`, under `/v1beta` and `/gemini`, with
//! `x-goog-api-key` or `?key=` credentials and Google's error format, served by a Chat
//! Completions provider. Every body Gatehouse writes is checked against the discovery
//! document in ../shared/specs/google.

use serde_json::{Value, json};

use crate::support::mock::{chat_body, thinking_text_tool_stream};
use crate::support::*;

const KEY: &str = "sk-gemini-client-key-0000001";

fn config() -> String {
    format!(
        "{}[[keys]]\nname = \"g\"\nkey = \"{KEY}\"\n",
        one_provider("openai-compatible")
    )
}

async fn call(gw: &Gateway, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(gw.url(path))
        .header("x-goog-api-key", KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn conforms(name: &str, v: &Value) {
    let errors = gemini_spec::check(name, v);
    assert!(
        errors.is_empty(),
        "{name} violates the discovery document: {errors:#?}\n{v}"
    );
}

fn request() -> Value {
    json!({
        "systemInstruction": {"role": "user", "parts": [{"text": "be brief"}]},
        "contents": [{"role": "user", "parts": [{"text": "weather in Paris?"}]}],
        "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather",
            "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}}}]}],
        "generationConfig": {"temperature": 0.5, "maxOutputTokens": 200,
            "thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}}
    })
}

#[tokio::test]
async fn generate_content_is_translated_and_answered_in_geminis_shape() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.push(Reply::json(200, chat_body("Sunny.", 30, 4)));
    let gw = Gateway::start(&config(), &[&mock]).await;
    let r = call(
        &gw,
        "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
        &request(),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    conforms("GenerateContentResponse", &v);
    assert_eq!(
        v["candidates"][0]["content"],
        json!({"role": "model", "parts": [{"text": "Sunny."}]})
    );
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(v["usageMetadata"]["promptTokenCount"], 30);
    assert_eq!(v["usageMetadata"]["totalTokenCount"], 34);
    let sent = mock.last_request().body;
    assert_eq!(sent["model"], "gemini-2.5-flash");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(
        sent["messages"][1],
        json!({"role": "user", "content": "weather in Paris?"})
    );
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent["temperature"], 0.5);
    assert_eq!(sent["max_tokens"], 200);
}

#[tokio::test]
async fn streams_are_sse_with_alt_sse_and_a_json_array_without() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.push(thinking_text_tool_stream("call_g1"));
    mock.push(thinking_text_tool_stream("call_g2"));
    let gw = Gateway::start(&config(), &[&mock]).await;
    let r = call(
        &gw,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        &request(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    let sse: Vec<Value> = text
        .split("\r\n\r\n")
        .filter(|c| !c.trim().is_empty())
        .map(|c| serde_json::from_str(c.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    for c in &sse {
        conforms("GenerateContentResponse", c);
    }
    let parts: Vec<&Value> = sse
        .iter()
        .flat_map(|c| c["candidates"][0]["content"]["parts"].as_array().unwrap())
        .collect();
    assert_eq!(parts[0], &json!({"text": "think", "thought": true}));
    let text_out: String = parts
        .iter()
        .filter(|p| p.get("thought").is_none())
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(text_out, "Let me check.");
    let call_part = parts
        .iter()
        .find(|p| p.get("functionCall").is_some())
        .unwrap();
    assert_eq!(
        call_part["functionCall"],
        json!({"id": "call_g1", "name": "get_weather", "args": {"city": "Paris"}})
    );
    let last = sse.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["promptTokenCount"], 40);

    let r = call(
        &gw,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        &request(),
    )
    .await;
    assert_eq!(r.headers()["content-type"], "application/json");
    let array: Vec<Value> = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(array.len(), sse.len());
    assert_eq!(
        array.last().unwrap()["candidates"][0]["finishReason"],
        "STOP"
    );
}

#[tokio::test]
async fn a_tool_round_trip_reaches_the_provider_as_tool_messages() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.push(Reply::json(200, chat_body("It is sunny.", 30, 4)));
    let gw = Gateway::start(&config(), &[&mock]).await;
    let mut body = request();
    body["contents"] = json!([
        {"role": "user", "parts": [{"text": "weather in Paris?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                                      "thoughtSignature": "skip_thought_signature_validator"}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]}
    ]);
    let r = call(
        &gw,
        "/gemini/v1beta/models/gemini-2.5-flash:generateContent",
        &body,
    )
    .await;
    assert_eq!(r.status(), 200);
    let m = &mock.last_request().body["messages"];
    let id = m[2]["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(
        m[2]["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Paris"}"#
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": id, "content": "sunny"})
    );
}

#[tokio::test]
async fn credentials_count_tokens_and_errors_speak_geminis_language() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| Reply::json(200, chat_body("ok", 3, 1)));
    let gw = Gateway::start(&config(), &[&mock]).await;
    // `?key=` works as well as the header; a wrong key is a Google-style 401.
    let r = client()
        .post(gw.url(&format!("/v1beta/models/m:generateContent?key={KEY}")))
        .json(&request())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .post(gw.url("/v1beta/models/m:generateContent"))
        .header("x-goog-api-key", "wrong-key-000000000000")
        .json(&request())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(e["error"]["code"], 401);
    assert!(
        !e.to_string().contains("wrong-key"),
        "the key is never echoed: {e}"
    );

    let r = call(
        &gw,
        "/gemini/v1beta/models/m:countTokens",
        &json!({"contents": [{"parts": [{"text": "hello there, how are you?"}]}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["x-gatehouse-warnings"]
            .to_str()
            .unwrap()
            .contains("estimated")
    );
    let v: Value = r.json().await.unwrap();
    conforms("CountTokensResponse", &v);
    assert!(v["totalTokens"].as_u64().unwrap() >= 7, "{v}");

    for (path, body, status, google) in [
        (
            "/v1beta/models/m:generateContent",
            json!({"contents": []}),
            400,
            "INVALID_ARGUMENT",
        ),
        ("/v1beta/models/m:embedText", request(), 404, "NOT_FOUND"),
        ("/gemini/v1beta/nothing", request(), 404, "NOT_FOUND"),
    ] {
        let r = call(&gw, path, &body).await;
        assert_eq!(r.status(), status, "{path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["status"], google, "{path}: {e}");
    }
    assert_eq!(mock.calls(), 1);
}

/// RELIABILITY 9: a provider stream cut without its terminator reaches a Gemini client as
/// Google's error object, the stream's last chunk (an SSE event, or the JSON array's last
/// element, the array closed), and never as a chunk with a `finishReason`: whether a Chat
/// Completions provider's stream is translated or a Gemini provider's relayed as it came.
#[tokio::test]
async fn a_cut_stream_ends_with_googles_error_never_a_finish_reason() {
    use crate::support::mock::{chunk, gemini_chunk, gemini_stream};
    const ADMIN: &str = "admin-token-for-gemini-tests-0001";
    for kind in ["openai-compatible", "gemini"] {
        let mock = MockProvider::start(if kind == "gemini" {
            Profile::Gemini
        } else {
            Profile::OpenAi
        })
        .await;
        let cfg = config().replace("openai-compatible", kind).replacen(
            "[server]\n",
            &format!("[server]\nadmin_token = \"{ADMIN}\"\n"),
            1,
        );
        let gw = Gateway::start(&cfg, &[&mock]).await;
        for sse in [true, false] {
            // Some text, then the connection closes: no finish, no usage, no terminator.
            mock.push(if kind == "gemini" {
                gemini_stream(vec![
                    gemini_chunk(json!([{"text": "partial"}]), None),
                    gemini_chunk(json!([{"text": " answer"}]), None),
                ])
            } else {
                Reply::sse(vec![
                    chunk(json!({"role": "assistant", "content": ""}), None),
                    chunk(json!({"content": "partial"}), None),
                ])
                .truncate_after(2)
            });
            let path = format!(
                "/v1beta/models/gemini-2.5-flash:streamGenerateContent{}",
                if sse { "?alt=sse" } else { "" }
            );
            let r = call(
                &gw,
                &path,
                &json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
            )
            .await;
            assert_eq!(r.status(), 200, "{kind} sse={sse}");
            let id = r.headers()["x-gatehouse-request-id"]
                .to_str()
                .unwrap()
                .to_owned();
            let text = r.text().await.unwrap();
            let chunks: Vec<Value> = if sse {
                // A Gemini provider's own chunks are relayed with `\n` line ends.
                text.replace("\r\n", "\n")
                    .split("\n\n")
                    .filter(|c| !c.trim().is_empty())
                    .map(|c| serde_json::from_str(c.strip_prefix("data: ").unwrap()).unwrap())
                    .collect()
            } else {
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("not a JSON array ({e}): {text}"))
            };
            let (last, content) = chunks.split_last().unwrap();
            assert!(
                !content.is_empty(),
                "{kind} sse={sse}: the text came first: {text}"
            );
            for c in content {
                conforms("GenerateContentResponse", c);
                assert!(
                    c["candidates"][0].get("finishReason").is_none(),
                    "{kind} sse={sse}: no finishReason on a cut stream: {text}"
                );
            }
            assert_eq!(last["error"]["code"], 502, "{kind} sse={sse}: {text}");
            assert_eq!(last["error"]["status"], "INTERNAL", "{text}");
            assert!(
                last["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("without its terminator"),
                "{text}"
            );
            gw.flush_records().await;
            background_done().await;
            let rec: Value =
                serde_json::from_str(&gw.get_text(&format!("/admin/api/logs/{id}"), ADMIN).await)
                    .unwrap();
            assert_eq!(
                (rec["status"].as_str(), rec["http_status"].as_u64()),
                (Some("error"), Some(200)),
                "{kind} sse={sse}: {rec}"
            );
            assert_eq!(rec["client_schema"], "gemini", "{rec}");
        }
    }
}

#[test]
fn the_discovery_checker_catches_what_gemini_would_not_send() {
    let errors = gemini_spec::check(
        "GenerateContentResponse",
        &json!({"candidates": [{"finishReason": "DONE", "content": {"parts": [{"text": 1}]}}], "bogus": true}),
    );
    if errors.is_empty() {
        eprintln!("notice: discovery document absent; checker not exercised");
        return;
    }
    assert_eq!(errors.len(), 3, "{errors:#?}");
}
