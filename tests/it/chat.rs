//! Non-streaming Chat Completions, models, embeddings, health, and error shapes.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn chat_is_relayed_with_gatehouse_headers_and_no_client_credentials() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-client-virtual-key")
        .header("x-api-key", "sk-client-other")
        .json(&json!({"model": "qwen", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.3}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert!(
        h["x-gatehouse-request-id"]
            .to_str()
            .unwrap()
            .starts_with("gh-")
    );
    assert_eq!(h["x-gatehouse-provider"], "p");
    assert_eq!(h["x-gatehouse-model"], "qwen");
    assert!(h.get("x-gatehouse-warnings").is_none());
    assert!(
        h.get("content-length").is_some(),
        "non-streaming replies carry a content-length"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the mock"
    );
    assert_eq!(body["usage"]["total_tokens"], 15);

    let up = mock.last_request();
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(
        up.headers["authorization"],
        "Bearer sk-provider-secret-0000"
    );
    assert!(
        up.headers.get("x-api-key").is_none(),
        "client credential leaked upstream"
    );
    assert_eq!(up.body["model"], "qwen");
    assert_eq!(up.body["temperature"], 0.3);
}

#[tokio::test]
async fn openai_prefix_and_models_and_health() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(
        &format!(
            "{}[[routes]]\nmatch = {{ model = \"fast\" }}\ntargets = [\"p/qwen\"]\n",
            one_provider("openai-compatible")
        ),
        &[&mock],
    )
    .await;
    let c = client();
    let r = c
        .post(gw.url("/openai/v1/chat/completions"))
        .json(&chat_req("fast", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-model"], "qwen");
    assert_eq!(mock.last_request().body["model"], "qwen");

    let models: Value = c
        .get(gw.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "fast"),
        "{models}"
    );
    let models2: Value = c
        .get(gw.url("/openai/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models, models2);

    assert_eq!(
        c.get(gw.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(c.get(gw.url("/readyz")).send().await.unwrap().status(), 200);
}

async fn error_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/json");
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn bad_input_gets_openai_errors_that_name_the_field() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(
        "[providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{mock0}\"\nmodels = [\"qwen\"]\n",
        &[&mock],
    )
    .await;
    let c = client();
    let url = gw.url("/v1/chat/completions");

    let (s, b) = error_of(c.post(&url).body("{\"model\": ").send().await.unwrap()).await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["type"], "invalid_request_error");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed JSON"),
        "{b}"
    );

    let (s, b) = error_of(
        c.post(&url)
            .json(&json!({"messages": []}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(b["error"]["param"], "model", "{b}");

    let (s, b) = error_of(
        c.post(&url)
            .json(&json!({"model": "qwen", "messages": [{"role": "user", "content": 5}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["error"]["param"]
            .as_str()
            .unwrap()
            .starts_with("messages[0]"),
        "{b}"
    );

    let (s, b) = error_of(
        c.post(&url)
            .json(&chat_req("nobody-serves-this", false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(b["error"]["code"], "model_not_found");

    let (s, _) = error_of(c.get(&url).send().await.unwrap()).await;
    assert_eq!(s, 405);
    let (s, _) = error_of(c.get(gw.url("/v1/nothing")).send().await.unwrap()).await;
    assert_eq!(s, 404);
    assert_eq!(mock.calls(), 0, "no bad request reached the provider");
}

#[tokio::test]
async fn provider_client_errors_pass_through_with_their_message() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    mock.push(Reply::json(400, json!({"error": {"message": "max_tokens is too large", "type": "invalid_request_error", "param": "max_tokens", "code": null}})));
    let r = gw.chat(&chat_req("m", false)).await;
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens is too large"),
        "{b}"
    );

    // The provider refusing *our* key is not the caller's 401.
    mock.push(Reply::json(
        401,
        json!({"error": {"message": "Incorrect API key provided: sk-prov***0000"}}),
    ));
    let r = gw.chat(&chat_req("m", false)).await;
    assert_eq!(r.status(), 502);
}

#[tokio::test]
async fn embeddings_are_served() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let r = client()
        .post(gw.url("/v1/embeddings"))
        .json(&json!({"model": "embed", "input": ["a", "b"], "dimensions": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-provider"], "p");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["object"], "list");
    assert_eq!(b["data"].as_array().unwrap().len(), 2);
    assert_eq!(b["data"][1]["index"], 1);
    assert_eq!(b["usage"]["prompt_tokens"], 5);
    let up = mock.last_request();
    assert_eq!(up.path, "/v1/embeddings");
    assert_eq!(
        up.body,
        json!({"model": "embed", "input": ["a", "b"], "dimensions": 3})
    );

    let r = client()
        .post(gw.url("/openai/v1/embeddings"))
        .json(&json!({"model": "embed", "input": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn unknown_content_parts_reach_openai_style_providers_unchanged() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let part = json!({"type": "input_video", "video_url": {"url": "https://example.com/v.mp4"}});
    let req = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "what happens?"}, part]}]});
    let r = gw.chat(&req).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-gatehouse-warnings").is_none());
    assert_eq!(mock.last_request().body["messages"][0]["content"][1], part);
}
