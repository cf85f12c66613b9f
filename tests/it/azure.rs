//! `azure-openai` provider (issue #5): deployment URLs with `api-version`, the key in an
//! `api-key` header, OpenAI's bodies (passed through for Chat Completions clients,
//! translated for the others), embeddings, and Azure's error bodies mapped.

use serde_json::{Value, json};

use crate::support::mock::chat_body;
use crate::support::*;

fn config(extra: &str) -> String {
    format!(
        "[server]\nstream_keepalive = \"2s\"\n[providers.az]\nkind = \"azure-openai\"\nbase_url = \"{{mock0}}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"*\"]\n{extra}"
    )
}

#[tokio::test]
async fn chat_goes_to_the_deployment_with_the_api_key_header() {
    let mock = MockProvider::start(Profile::Azure).await;
    mock.push(Reply::json(200, chat_body("hi from azure", 9, 3)));
    mock.push(Reply::stream(&["a", "b"]));
    let gw = Gateway::start(&config(""), &[&mock]).await;
    let r = gw.chat(&chat_req("prod-gpt4o", false)).await;
    assert_eq!(
        r.status(),
        200,
        "{:?}",
        mock.requests().last().map(|r| (&r.path, &r.query))
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "hi from azure");
    let sent = mock.last_request();
    assert_eq!(sent.path, "/openai/deployments/prod-gpt4o/chat/completions");
    assert_eq!(sent.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(sent.headers["api-key"], "sk-provider-secret-0000");
    assert!(sent.headers.get("authorization").is_none());
    // Streams too, usage asked for as with OpenAI.
    let r = gw.chat(&chat_req("prod-gpt4o", true)).await;
    let body = r.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert_eq!(
        mock.last_request().body["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn anthropic_clients_are_translated_with_openais_token_field() {
    let mock = MockProvider::start(Profile::Azure).await;
    mock.push(Reply::json(200, chat_body("ok", 9, 3)));
    let gw = Gateway::start(&config("api_version = \"2025-04-01-preview\"\n"), &[&mock]).await;
    let r = client()
        .post(gw.url("/v1/messages"))
        .json(&json!({"model": "o4-mini-dep", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sent = mock.last_request();
    assert_eq!(
        sent.query.as_deref(),
        Some("api-version=2025-04-01-preview")
    );
    assert_eq!(sent.body["max_completion_tokens"], 50);
    assert!(sent.body.get("max_tokens").is_none());
}

#[tokio::test]
async fn embeddings_and_errors() {
    let mock = MockProvider::start(Profile::Azure).await;
    let gw = Gateway::start(&config(""), &[&mock]).await;
    let r = client()
        .post(gw.url("/v1/embeddings"))
        .json(&json!({"model": "embed-dep", "input": ["a", "b"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        mock.last_request().path,
        "/openai/deployments/embed-dep/embeddings"
    );
    mock.push(Reply::json(
        400,
        json!({"error": {"code": "content_filter", "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", "param": "prompt", "status": 400}}),
    ));
    mock.push(Reply::json(401, json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint."}})));
    // Azure's content filter is the caller's 400, with its message; a refused key is ours (502).
    let r = gw.chat(&chat_req("dep", false)).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("content management policy"),
        "{e}"
    );
    let r = gw.chat(&chat_req("dep", false)).await;
    assert_eq!(r.status(), 502);
    // A model name that cannot be a deployment is refused before any call.
    let calls = mock.calls();
    let r = gw.chat(&chat_req("gpt-4o/../x", false)).await;
    assert_eq!(r.status(), 400);
    assert_eq!(mock.calls(), calls);
}

#[test]
fn api_version_is_for_azure_only() {
    let env = test_env();
    let errors = gatehouse::config::parse(
        "t.toml",
        "[providers.o]\nkind = \"openai\"\napi_key = \"k\"\napi_version = \"2024-10-21\"\n",
        &env,
    )
    .err()
    .unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("azure-openai providers only")),
        "{errors:?}"
    );
}
