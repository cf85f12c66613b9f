//! `Idempotency-Key` (RELIABILITY 4, SPEC §5): a retry with the same key and body replays
//! the first reply byte for byte, with one provider call and one usage record; another body
//! is 422; a key in flight is 409; keys are the caller's own; two instances sharing Redis
//! see each other's keys; a failed or cut first attempt gives its key back; keys expire.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const ADMIN: &str = "admin-token-for-idempotency-0001";
const KEY_A: &str = "sk-idem-tenant-a-0000000000001";
const KEY_B: &str = "sk-idem-tenant-b-0000000000002";

fn config(extra: &str) -> String {
    format!(
        "{}[[keys]]\nname = \"a\"\nkey = \"{KEY_A}\"\n[[keys]]\nname = \"b\"\nkey = \"{KEY_B}\"\n{extra}",
        one_provider("openai-compatible").replacen(
            "[server]\n",
            &format!("[server]\nadmin_token = \"{ADMIN}\"\n"),
            1
        )
    )
}

/// The client schemas tested: a path, its body, and how its caller authenticates.
#[derive(Clone, Copy)]
enum Api {
    OpenAi,
    Anthropic,
}

impl Api {
    fn path(self) -> &'static str {
        match self {
            Api::OpenAi => "/v1/chat/completions",
            Api::Anthropic => "/v1/messages",
        }
    }

    fn body(self, text: &str, stream: bool) -> Value {
        match self {
            Api::OpenAi => {
                json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": text}]})
            }
            Api::Anthropic => {
                json!({"model": "m", "max_tokens": 100, "stream": stream, "messages": [{"role": "user", "content": text}]})
            }
        }
    }
}

async fn post(
    gw: &Gateway,
    api: Api,
    key: &str,
    idem: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut r = client().post(gw.url(api.path())).json(body);
    r = match api {
        Api::OpenAi => r.bearer_auth(key),
        Api::Anthropic => r
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01"),
    };
    if let Some(k) = idem {
        r = r.header("idempotency-key", k);
    }
    r.send().await.unwrap()
}

/// Status, the headers a replay must repeat, and the body's bytes.
async fn parts(r: reqwest::Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let status = r.status().as_u16();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(n, _)| {
            n.as_str() == "content-type"
                || n.as_str() == "cache-control"
                || n.as_str().starts_with("x-gatehouse-")
        })
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

/// Usage records the gateway wrote.
async fn records(gw: &Gateway) -> usize {
    gw.flush_records().await;
    let r = client()
        .get(gw.url("/admin/api/logs?limit=1000"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["data"].as_array().unwrap().len()
}

/// The same key and body twice: one provider call, one record, the same bytes.
async fn replays(api: Api, stream: bool) {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(""), &[&mock]).await;
    let body = api.body("hello", stream);
    let first = post(&gw, api, KEY_A, Some("retry-1"), &body).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = parts(first).await;
    assert_eq!(first.0, 200, "{}", String::from_utf8_lossy(&first.2));
    if stream {
        let text = String::from_utf8_lossy(&first.2);
        assert!(text.contains("data: "), "{text}");
    }
    // The stream's reply is kept once its last bytes went out: its commit is a task.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = post(&gw, api, KEY_A, Some("retry-1"), &body).await;
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second = parts(second).await;
    assert_eq!(mock.calls(), 1, "the retry reached the provider");
    assert_eq!(first.0, second.0);
    assert_eq!(first.1, second.1, "headers differ");
    assert!(
        first.2 == second.2,
        "bodies differ:\n{}\n---\n{}",
        String::from_utf8_lossy(&first.2),
        String::from_utf8_lossy(&second.2)
    );
    assert_eq!(records(&gw).await, 1, "the replay made a usage record");
    // Without a key, the same body is a new request.
    assert_eq!(post(&gw, api, KEY_A, None, &body).await.status(), 200);
    assert_eq!(mock.calls(), 2);
}

#[tokio::test]
async fn an_openai_retry_replays_the_first_whole_reply() {
    replays(Api::OpenAi, false).await;
}

#[tokio::test]
async fn an_openai_retry_replays_the_first_stream() {
    replays(Api::OpenAi, true).await;
}

#[tokio::test]
async fn an_anthropic_retry_replays_the_first_whole_reply() {
    replays(Api::Anthropic, false).await;
}

#[tokio::test]
async fn an_anthropic_retry_replays_the_first_stream() {
    replays(Api::Anthropic, true).await;
}

#[tokio::test]
async fn every_inference_route_replays() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(""), &[&mock]).await;
    let cases: [(&str, Value); 4] = [
        (
            "/v1/responses",
            json!({"model": "m", "input": "hi", "store": false}),
        ),
        (
            "/v1beta/models/m:generateContent",
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        ),
        (
            "/v1beta/models/m:streamGenerateContent?alt=sse",
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        ),
        ("/v1/embeddings", json!({"model": "m", "input": "hi"})),
    ];
    for (i, (path, body)) in cases.iter().enumerate() {
        let send = || {
            client()
                .post(gw.url(path))
                .bearer_auth(KEY_A)
                .header("x-goog-api-key", KEY_A)
                .header("idempotency-key", format!("route-{i}"))
                .json(body)
                .send()
        };
        let first = send().await.unwrap();
        assert_eq!(first.status(), 200, "{path}");
        let first = first.bytes().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = send().await.unwrap();
        assert_eq!(second.status(), 200, "{path}");
        assert_eq!(second.headers()["idempotent-replayed"], "true", "{path}");
        assert_eq!(first, second.bytes().await.unwrap(), "{path}");
        assert_eq!(
            mock.calls(),
            i + 1,
            "{path}: the retry reached the provider"
        );
    }
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_in_the_callers_schema() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(""), &[&mock]).await;
    for api in [Api::OpenAi, Api::Anthropic] {
        let key = format!("k-{}", api.path());
        let r = post(&gw, api, KEY_A, Some(&key), &api.body("one", false)).await;
        assert_eq!(r.status(), 200);
        let r = post(&gw, api, KEY_A, Some(&key), &api.body("two", false)).await;
        assert_eq!(r.status(), 422);
        let v: Value = r.json().await.unwrap();
        match api {
            Api::OpenAi => {
                assert_eq!(v["error"]["code"], "idempotency_key_reused", "{v}");
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("different request")
                );
            }
            Api::Anthropic => {
                assert_eq!(v["type"], "error", "{v}");
                assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
            }
        }
    }
    assert_eq!(mock.calls(), 2);
    // The same body on another route is another request too (this one is valid on both).
    let body = Api::Anthropic.body("both", false);
    let r = post(&gw, Api::OpenAi, KEY_A, Some("routes"), &body).await;
    assert_eq!(r.status(), 200);
    let r = post(&gw, Api::Anthropic, KEY_A, Some("routes"), &body).await;
    assert_eq!(r.status(), 422);
    assert_eq!(mock.calls(), 3);
}

#[tokio::test]
async fn concurrent_use_of_a_key_gets_one_reply_and_409s() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| Reply::chat("slow").delay(Duration::from_millis(500)));
    let gw = Gateway::start(&config(""), &[&mock]).await;
    let body = Api::OpenAi.body("race", false);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = gw.url("/v1/chat/completions");
        let body = body.clone();
        tasks.push(spawn(async move {
            let r = client()
                .post(url)
                .bearer_auth(KEY_A)
                .header("idempotency-key", "race")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let (status, text) = t.await.unwrap();
        if status == 409 {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["error"]["code"], "idempotency_key_in_use", "{v}");
        }
        statuses.push(status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(mock.calls(), 1);
    // Once it completed, the key replays.
    let r = post(&gw, Api::OpenAi, KEY_A, Some("race"), &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(mock.calls(), 1);
}

#[tokio::test]
async fn a_key_is_never_seen_by_another_tenant() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(""), &[&mock]).await;
    let body = Api::OpenAi.body("mine", false);
    let a = post(&gw, Api::OpenAi, KEY_A, Some("shared-name"), &body).await;
    assert_eq!(a.status(), 200);
    let b = post(&gw, Api::OpenAi, KEY_B, Some("shared-name"), &body).await;
    assert_eq!(b.status(), 200);
    assert!(b.headers().get("idempotent-replayed").is_none());
    assert_eq!(mock.calls(), 2, "tenant B got tenant A's reply");
    // Another body under the same name is no conflict for B either: its own key is done.
    let b = post(
        &gw,
        Api::OpenAi,
        KEY_B,
        Some("shared-name"),
        &Api::OpenAi.body("theirs", false),
    )
    .await;
    assert_eq!(b.status(), 422);
    assert_eq!(records(&gw).await, 2);
}

#[tokio::test]
async fn a_kept_reply_expires_after_its_ttl() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config("[idempotency]\nttl = \"10s\"\n"), &[&mock]).await;
    let body = Api::OpenAi.body("ttl", false);
    assert_eq!(
        post(&gw, Api::OpenAi, KEY_A, Some("t"), &body)
            .await
            .status(),
        200
    );
    skip(Duration::from_secs(9)).await;
    let r = post(&gw, Api::OpenAi, KEY_A, Some("t"), &body).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(mock.calls(), 1);
    skip(Duration::from_secs(2)).await;
    let r = post(&gw, Api::OpenAi, KEY_A, Some("t"), &body).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("idempotent-replayed").is_none());
    assert_eq!(mock.calls(), 2, "the key outlived its TTL");
}

#[tokio::test]
async fn a_failed_first_attempt_gives_its_key_back() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config("[routing]\nmax_attempts = 1\n"), &[&mock]).await;
    mock.push(Reply::error(500, "boom"));
    let body = Api::OpenAi.body("fail", false);
    let r = post(&gw, Api::OpenAi, KEY_A, Some("f"), &body).await;
    assert_eq!(r.status(), 502);
    // Not replayed: the retry runs, and its reply is the one kept.
    let r = post(&gw, Api::OpenAi, KEY_A, Some("f"), &body).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("idempotent-replayed").is_none());
    let r = post(&gw, Api::OpenAi, KEY_A, Some("f"), &body).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(mock.calls(), 2);
}

#[tokio::test]
async fn a_cut_stream_is_not_replayed_as_complete() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(""), &[&mock]).await;
    mock.push(Reply::stream(&["one ", "two ", "three"]).truncate_after(2));
    let body = Api::OpenAi.body("cut", true);
    let r = post(&gw, Api::OpenAi, KEY_A, Some("c"), &body).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("\"error\""),
        "the cut is not surfaced: {text}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = post(&gw, Api::OpenAi, KEY_A, Some("c"), &body).await;
    assert!(r.headers().get("idempotent-replayed").is_none());
    let text = r.text().await.unwrap();
    assert!(
        text.contains("[DONE]") && !text.contains("\"error\""),
        "{text}"
    );
    assert_eq!(mock.calls(), 2, "the cut stream was replayed");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = post(&gw, Api::OpenAi, KEY_A, Some("c"), &body).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(r.text().await.unwrap(), text);
    assert_eq!(mock.calls(), 2);
}

#[tokio::test]
async fn a_reply_over_the_bound_is_not_kept_and_its_retry_is_409() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config("[idempotency]\nmax_reply_bytes = 64\n"), &[&mock]).await;
    for stream in [false, true] {
        let body = Api::OpenAi.body("big", stream);
        let key = format!("big-{stream}");
        assert_eq!(
            post(&gw, Api::OpenAi, KEY_A, Some(&key), &body)
                .await
                .status(),
            200
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = post(&gw, Api::OpenAi, KEY_A, Some(&key), &body).await;
        assert_eq!(r.status(), 409);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("max_reply_bytes"),
            "{v}"
        );
    }
    assert_eq!(
        mock.calls(),
        2,
        "a retry of a reply too large to keep ran again"
    );
}

#[tokio::test]
async fn malformed_keys_are_400() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(""), &[&mock]).await;
    let body = Api::OpenAi.body("bad", false);
    let long = "k".repeat(256);
    for key in [long.as_str(), "has space", ""] {
        let r = post(&gw, Api::OpenAi, KEY_A, Some(key), &body).await;
        assert_eq!(r.status(), 400, "key {key:?}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Idempotency-Key"),
            "{v}"
        );
    }
    let ok = "k".repeat(255);
    assert_eq!(
        post(&gw, Api::OpenAi, KEY_A, Some(&ok), &body)
            .await
            .status(),
        200
    );
    assert_eq!(mock.calls(), 1);
}

#[tokio::test]
async fn two_instances_sharing_redis_replay_each_others_replies() {
    let Some(redis) = fresh_redis().await else {
        return;
    };
    let mock = MockProvider::start(Profile::OpenAi).await;
    let a = Gateway::start(&config(&redis), &[&mock]).await;
    let b = Gateway::start(&config(&redis), &[&mock]).await;
    for (api, stream) in [
        (Api::OpenAi, false),
        (Api::OpenAi, true),
        (Api::Anthropic, true),
    ] {
        let before = mock.calls();
        let key = format!("shared-{}-{stream}", api.path());
        let body = api.body("across", stream);
        let first = parts(post(&a, api, KEY_A, Some(&key), &body).await).await;
        assert_eq!(first.0, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = post(&b, api, KEY_A, Some(&key), &body).await;
        assert_eq!(r.headers()["idempotent-replayed"], "true");
        let second = parts(r).await;
        assert_eq!(first, second);
        assert_eq!(
            mock.calls(),
            before + 1,
            "instance b called the provider again"
        );
        // Tenant B on instance b does not see it.
        let r = post(&b, api, KEY_B, Some(&key), &body).await;
        assert!(r.headers().get("idempotent-replayed").is_none());
        assert_eq!(mock.calls(), before + 2);
    }
    // A key in flight on one instance is 409 on the other.
    mock.respond_with(|_| Reply::chat("slow").delay(Duration::from_millis(600)));
    let body = Api::OpenAi.body("in flight", false);
    let url = a.url("/v1/chat/completions");
    let b2 = body.clone();
    let first = spawn(async move {
        client()
            .post(url)
            .bearer_auth(KEY_A)
            .header("idempotency-key", "in-flight")
            .json(&b2)
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = post(&b, Api::OpenAi, KEY_A, Some("in-flight"), &body).await;
    assert_eq!(r.status(), 409);
    assert_eq!(first.await.unwrap(), 200);
    let r = post(&b, Api::OpenAi, KEY_A, Some("in-flight"), &body).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(records(&a).await, 4);
    assert_eq!(records(&b).await, 3);
}

#[tokio::test]
async fn concurrent_use_across_two_instances_gets_one_winner() {
    let Some(redis) = fresh_redis().await else {
        return;
    };
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| Reply::chat("slow").delay(Duration::from_millis(500)));
    let a = Gateway::start(&config(&redis), &[&mock]).await;
    let b = Gateway::start(&config(&redis), &[&mock]).await;
    let body = Api::OpenAi.body("race", false);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let url = [&a, &b][i % 2].url("/v1/chat/completions");
        let body = body.clone();
        tasks.push(spawn(async move {
            client()
                .post(url)
                .bearer_auth(KEY_A)
                .header("idempotency-key", "race-2")
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(mock.calls(), 1);
}

#[tokio::test]
async fn a_redis_kept_reply_expires_after_its_ttl() {
    let Some(redis) = fresh_redis().await else {
        return;
    };
    let mock = MockProvider::start(Profile::OpenAi).await;
    let text = format!("{redis}[idempotency]\nttl = \"1s\"\n");
    let a = Gateway::start(&config(&text), &[&mock]).await;
    let b = Gateway::start(&config(&text), &[&mock]).await;
    let body = Api::OpenAi.body("ttl", false);
    assert_eq!(
        post(&a, Api::OpenAi, KEY_A, Some("t"), &body)
            .await
            .status(),
        200
    );
    let r = post(&b, Api::OpenAi, KEY_A, Some("t"), &body).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    // Redis's own clock: real time passes.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = post(&b, Api::OpenAi, KEY_A, Some("t"), &body).await;
    assert!(r.headers().get("idempotent-replayed").is_none());
    assert_eq!(mock.calls(), 2);
}

/// A `[redis]` section whose server never answers (nothing listens on the port).
const DEAD_REDIS: &str = "[redis]\nurl = \"redis://127.0.0.1:9\"\ntimeout = \"100ms\"\n";

#[tokio::test]
async fn with_redis_down_keys_are_kept_in_memory_by_default() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(DEAD_REDIS), &[&mock]).await;
    let body = Api::OpenAi.body("local", false);
    let started = tokio::time::Instant::now();
    assert_eq!(
        post(&gw, Api::OpenAi, KEY_A, Some("l"), &body)
            .await
            .status(),
        200
    );
    let r = post(&gw, Api::OpenAi, KEY_A, Some("l"), &body).await;
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    assert_eq!(mock.calls(), 1);
    // Generous: Redis is known down, so no request waits on it.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn with_redis_down_keys_can_be_refused_instead() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let text = format!("{DEAD_REDIS}[idempotency]\nredis_down = \"refuse\"\n");
    let gw = Gateway::start(&config(&text), &[&mock]).await;
    for api in [Api::OpenAi, Api::Anthropic] {
        let r = post(&gw, api, KEY_A, Some("r"), &api.body("refused", false)).await;
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        let v: Value = r.json().await.unwrap();
        let message = match api {
            Api::OpenAi => v["error"]["message"].as_str(),
            Api::Anthropic => {
                assert_eq!(v["type"], "error", "{v}");
                v["error"]["message"].as_str()
            }
        };
        assert!(message.unwrap().contains("redis_down"), "{v}");
    }
    // Requests without a key are served.
    assert_eq!(
        post(&gw, Api::OpenAi, KEY_A, None, &Api::OpenAi.body("x", false))
            .await
            .status(),
        200
    );
    assert_eq!(mock.calls(), 1);
}
