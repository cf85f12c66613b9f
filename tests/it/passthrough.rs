//! Same-schema passthrough (SPEC §3): a Chat Completions client on an OpenAI-style provider
//! gets its request sent intact apart from `model`, and the provider's reply back as it came,
//! with usage still read.

use serde_json::{Value, json};

use crate::support::mock::Body;
use crate::support::*;

/// A request with fields the gateway does not model, at every depth, in an unusual order
/// and number format.
const CLIENT_BODY: &str = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"hi","x_part":{"a":1}}],"x_msg":true}],"temperature":1.50,"model":"alias","prediction":{"type":"content","content":"x"},"web_search_options":{},"max_tokens":7}"#;

/// A reply with fields the gateway does not model and its own spacing.
const PROVIDER_REPLY: &str = r#"{"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "real-model-2026", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok", "annotations": [{"type": "url_citation"}]}, "finish_reason": "stop", "logprobs": null}], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11, "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0}}, "service_tier": "default"}"#;

async fn post_raw(gw: &Gateway, body: &'static str) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn openai_style_request_and_reply_pass_through_byte_for_byte() {
    for kind in ["openai", "openai-compatible"] {
        let mock = MockProvider::start(Profile::OpenAi).await;
        let gw = Gateway::start(
            &format!(
                "{}[[routes]]\nmatch = {{ model = \"alias\" }}\ntargets = [\"p/real-model\"]\n",
                one_provider(kind)
            ),
            &[&mock],
        )
        .await;
        mock.push(Reply {
            body: Body::Raw(PROVIDER_REPLY),
            ..Reply::json(200, Value::Null)
        });
        let resp = post_raw(&gw, CLIENT_BODY).await;
        assert_eq!(resp.status(), 200, "{kind}");
        assert_eq!(resp.headers()["x-gatehouse-model"], "real-model");
        assert!(resp.headers().get("x-gatehouse-warnings").is_none());
        assert_eq!(
            resp.text().await.unwrap(),
            PROVIDER_REPLY,
            "{kind}: reply changed"
        );
        let sent = mock.last_request().raw;
        assert_eq!(
            std::str::from_utf8(&sent).unwrap(),
            CLIENT_BODY.replace(r#""model":"alias""#, r#""model":"real-model""#),
            "{kind}: only the model may change"
        );
    }
}

fn stream_reply() -> Reply {
    Reply::sse(vec![
        json!({"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}),
        json!({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
    ])
}

#[tokio::test]
async fn a_request_naming_the_providers_model_is_sent_as_its_own_bytes() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&one_provider("openai-compatible"), &[&mock]).await;
    // Spacing, an escaped character in the model's name and a number format a serializer
    // would not write: nothing to rewrite, so nothing is re-encoded.
    let plain = r#"{ "model" : "real\u002dmodel", "messages":[{"role":"user","content":"hi"}],"temperature":1.50 }"#;
    let stream = r#"{"model":"real-model","stream":true,"stream_options":{"include_usage":true,"x":1},"messages":[{"role":"user","content":"hi"}]}"#;
    for body in [plain, stream] {
        mock.push(if body == stream {
            stream_reply()
        } else {
            Reply::json(
                200,
                json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}),
            )
        });
        let resp = post_raw(&gw, body).await;
        assert_eq!(resp.status(), 200, "{body}");
        let _ = resp.bytes().await;
        assert_eq!(std::str::from_utf8(&mock.last_request().raw).unwrap(), body);
    }
    // A stream that does not ask for usage still gets it asked for.
    mock.push(stream_reply());
    let asked =
        r#"{"model":"real-model","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let _ = post_raw(&gw, asked).await.bytes().await;
    let sent: Value = serde_json::from_slice(&mock.last_request().raw).unwrap();
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn a_reply_that_is_not_json_is_a_bad_gateway_even_in_passthrough() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    mock.push(Reply {
        body: Body::Raw(r#"{"choices": [ oops"#),
        ..Reply::json(200, Value::Null)
    });
    let resp = gw.chat(&chat_req("m", false)).await;
    assert_eq!(resp.status(), 502);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{body}"
    );
}

#[tokio::test]
async fn a_streamed_passthrough_still_asks_for_usage_and_hides_it_unless_asked() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    mock.push(Reply::stream(&["a", "b"]));
    let body = json!({"model": "m", "stream": true, "n": 1, "messages": [{"role": "user", "content": "hi", "x_msg": 1}]});
    let resp = gw.chat(&body).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("\"usage\""), "usage not asked for: {text}");
    let sent = mock.last_request().body;
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        sent["messages"][0]["x_msg"], 1,
        "unknown message field kept"
    );
    assert_eq!(sent["n"], 1);
}

#[tokio::test]
async fn requests_the_provider_would_reject_are_translated_instead() {
    // A generic compatible server may not know the `developer` role.
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let resp = gw
        .chat(&json!({"model": "m", "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["x-gatehouse-warnings"]
            .to_str()
            .unwrap()
            .contains("developer role sent as system")
    );
    assert_eq!(mock.last_request().body["messages"][0]["role"], "system");

    // OpenAI rejects reasoning text in the history.
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&one_provider("openai"), &[&mock]).await;
    let resp = gw
        .chat(&json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello", "reasoning_content": "thought"},
            {"role": "user", "content": "again"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    let sent = mock.last_request().body;
    assert!(sent["messages"][1].get("reasoning_content").is_none());
}

#[tokio::test]
async fn a_streamed_passthrough_relays_the_providers_chunks_as_they_came() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    // Chunks with fields the gateway does not model, in the provider's own key order.
    let events = [
        r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m-2026","system_fingerprint":"fp_x","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi","refusal":null},"logprobs":null,"finish_reason":null}],"obfuscation":"a1"}"#,
        r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m-2026","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"obfuscation":"b2"}"#,
        r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m-2026","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#,
    ];
    for asked in [true, false] {
        mock.push(Reply {
            body: Body::Sse(events.iter().map(|e| (*e).to_owned()).collect()),
            ..Reply::json(200, Value::Null)
        });
        let mut body = chat_req("m", true);
        if asked {
            body["stream_options"] = json!({"include_usage": true});
        }
        let text = gw.chat(&body).await.text().await.unwrap();
        let relayed: Vec<&str> = text
            .split("\n\n")
            .filter_map(|f| f.strip_prefix("data: "))
            .collect();
        let expected: Vec<&str> = if asked {
            events.iter().copied().chain(["[DONE]"]).collect()
        } else {
            events[..2].iter().copied().chain(["[DONE]"]).collect()
        };
        assert_eq!(relayed, expected, "include_usage asked: {asked}");
    }
}
