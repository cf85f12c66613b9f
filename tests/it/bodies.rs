//! Bodies in the request log (issue #6): kept only where `[log] bodies`, a provider's or a
//! key's `log_bodies` asks, the most specific winning; secrets redacted; cut to the limit;
//! read through `GET /admin/api/logs/{id}` by the admin only; on SQLite and Postgres.

use serde_json::{Value, json};

use crate::support::*;

const ADMIN: &str = "admin-token-for-body-tests-000001";
const KEY: &str = "sk-body-test-key-0000000000001";
const QUIET: &str = "sk-body-quiet-key-000000000001";
const LEAD: &str = "sk-body-lead-key-0000000000001";
const PROVIDER_KEY: &str = "sk-provider-secret-0000";

/// One provider `p` (its `log_bodies` given) and keys: `k` (no setting of its own), `quiet`
/// (`log_bodies = "off"`), `lead` (a team admin).
fn config(store: &str, log: &str, provider: &str) -> String {
    let base = one_provider("openai-compatible")
        .replacen("[server]\n", "", 1)
        .replacen("stream_keepalive = \"2s\"\n", "", 1);
    format!(
        "{base}{provider}\n[server]\nadmin_token = \"{ADMIN}\"\n[store]\nurl = \"{store}\"\n[log]\n{log}\n[teams.t]\n\
         [[keys]]\nname = \"k\"\nkey = \"{KEY}\"\nteam = \"t\"\n\
         [[keys]]\nname = \"quiet\"\nkey = \"{QUIET}\"\nteam = \"t\"\nlog_bodies = \"off\"\n\
         [[keys]]\nname = \"lead\"\nkey = \"{LEAD}\"\nteam = \"t\"\nrole = \"team_admin\"\n"
    )
}

async fn send(gw: &Gateway, key: &str, body: Value) -> (String, String) {
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = r.text().await.unwrap();
    (id, text)
}

async fn entry(gw: &Gateway, token: &str, id: &str) -> (u16, Value) {
    gw.flush_records().await;
    let r = client()
        .get(gw.url(&format!("/admin/api/logs/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A request that carries secrets in its text and in a field that names one.
fn secret_request(stream: bool) -> Value {
    json!({
        "model": "m",
        "stream": stream,
        "messages": [{"role": "user", "content": format!("my keys: {PROVIDER_KEY} and sk-ant-api03-Zx9Zx9Zx9Zx9Zx9Zx9Zx9")}],
        "metadata": {"api_key": "plain-text-password-value"}
    })
}

fn assert_clean(text: &str) {
    for secret in [
        PROVIDER_KEY,
        "sk-ant-api03-Zx9",
        "plain-text-password-value",
        KEY,
        ADMIN,
    ] {
        assert!(!text.contains(secret), "{secret} kept in {text}");
    }
}

async fn client_bodies_are_kept_redacted(store: &str) {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(store, "bodies = \"client\"", ""), &[&mock]).await;
    mock.push(Reply::chat("the answer"));
    let (id, reply) = send(&gw, KEY, secret_request(false)).await;
    let (status, row) = entry(&gw, ADMIN, &id).await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["request_id"], id.as_str());
    let b = &row["bodies"];
    let request = b["request"]["text"].as_str().unwrap();
    assert_clean(request);
    assert!(request.contains("[REDACTED]"), "{request}");
    assert!(request.contains("\"model\":\"m\""), "{request}");
    assert_eq!(b["request"]["truncated"], false);
    // The reply is kept as the client got it.
    assert_eq!(b["reply"]["text"].as_str().unwrap(), reply);
    assert!(reply.contains("the answer"));
    // `client` keeps no provider bodies.
    assert!(
        b["provider_request"].is_null() && b["provider_response"].is_null(),
        "{b}"
    );

    // A key that says off keeps nothing, whatever `[log]` says.
    mock.push(Reply::chat("quiet"));
    let (id, _) = send(&gw, QUIET, secret_request(false)).await;
    let (_, row) = entry(&gw, ADMIN, &id).await;
    assert!(row["bodies"].is_null(), "{row}");
    // A team admin sees its team's record, never the bodies.
    let (status, row) = entry(&gw, LEAD, &id).await;
    assert_eq!(status, 200);
    assert!(row.get("bodies").is_none(), "{row}");
    // An unknown request is 404.
    let (status, _) = entry(&gw, ADMIN, "gh-none").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn client_bodies_are_kept_redacted_on_sqlite() {
    client_bodies_are_kept_redacted("sqlite::memory:").await;
}

#[tokio::test]
async fn client_bodies_are_kept_redacted_on_postgres() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    client_bodies_are_kept_redacted(&url).await;
}

/// A provider that asks for `all` while `[log]` keeps nothing: its streams keep the client's
/// request and stream, and its own request and raw stream, each cut to the limit.
#[tokio::test]
async fn a_provider_keeps_raw_exchanges_of_streams() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(
        &config(
            "sqlite::memory:",
            "body_limit = 1024",
            "log_bodies = \"all\"",
        ),
        &[&mock],
    )
    .await;
    let pieces: Vec<String> = (0..200).map(|i| format!("word{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    mock.push(Reply::stream(&refs));
    let (id, reply) = send(&gw, KEY, secret_request(true)).await;
    assert!(reply.contains("word199"));
    let (_, row) = entry(&gw, ADMIN, &id).await;
    let b = &row["bodies"];
    assert_eq!(b["provider"], "p");
    let up = b["provider_request"]["text"].as_str().unwrap();
    assert_clean(up);
    assert!(up.contains("\"stream\":true"), "{up}");
    let raw = &b["provider_response"];
    assert!(
        raw["text"].as_str().unwrap().starts_with("data: {"),
        "{raw}"
    );
    assert_eq!(raw["truncated"], true);
    assert!(raw["bytes"].as_u64().unwrap() > 1024);
    assert!(raw["text"].as_str().unwrap().len() <= 1024);
    let sent = &b["reply"];
    assert_eq!(sent["truncated"], true);
    assert_eq!(sent["bytes"].as_u64().unwrap(), reply.len() as u64);
    assert!(reply.starts_with(sent["text"].as_str().unwrap()));

    // The quiet key's own `off` wins over the provider's `all`.
    mock.push(Reply::chat("x"));
    let (id, _) = send(&gw, QUIET, secret_request(false)).await;
    let (_, row) = entry(&gw, ADMIN, &id).await;
    assert!(row["bodies"].is_null(), "{row}");
}

/// A failed attempt keeps the provider's error body (what a debugging operator wants), and
/// the record its error.
#[tokio::test]
async fn a_failure_keeps_the_providers_error_body() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config("sqlite::memory:", "bodies = \"all\"", ""), &[&mock]).await;
    mock.push(Reply::error(400, "model m does not support this"));
    let (id, _) = send(&gw, KEY, chat_req("m", false)).await;
    let (_, row) = entry(&gw, ADMIN, &id).await;
    assert_eq!(row["status"], "error");
    let b = &row["bodies"];
    assert!(
        b["provider_response"]["text"]
            .as_str()
            .unwrap()
            .contains("does not support this"),
        "{b}"
    );
    assert!(b["reply"].is_null(), "{b}");
}

/// Retention deletes a record's bodies with it.
#[tokio::test]
async fn retention_deletes_bodies_with_their_records() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(
        &config("sqlite::memory:", "bodies = \"client\"", ""),
        &[&mock],
    )
    .await;
    mock.push(Reply::chat("x"));
    let (id, _) = send(&gw, KEY, chat_req("m", false)).await;
    let (_, row) = entry(&gw, ADMIN, &id).await;
    assert!(row["bodies"]["request"].is_object());
    let store = gw.state.store();
    assert!(store.request_bodies(&id).await.unwrap().is_some());
    let deleted = store.purge_before(i64::MAX).await.unwrap();
    assert_eq!(deleted, 1);
    assert!(store.request_bodies(&id).await.unwrap().is_none());
}

/// Only the admin chooses which bodies a stored key's records keep; the choice holds.
#[tokio::test]
async fn only_the_admin_sets_a_stored_keys_log_bodies() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config("sqlite::memory:", "", ""), &[&mock]).await;
    let create = |token: &'static str| {
        client()
            .post(gw.url("/admin/api/keys"))
            .bearer_auth(token)
            .json(&json!({"name": "debug", "team": "t", "log_bodies": "client"}))
            .send()
    };
    assert_eq!(create(LEAD).await.unwrap().status(), 403);
    let r = create(ADMIN).await.unwrap();
    assert_eq!(r.status(), 201);
    let key: Value = r.json().await.unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    mock.push(Reply::chat("kept"));
    let (id, _) = send(&gw, &key, chat_req("m", false)).await;
    let (_, row) = entry(&gw, ADMIN, &id).await;
    assert!(
        row["bodies"]["reply"]["text"]
            .as_str()
            .unwrap()
            .contains("kept"),
        "{row}"
    );
    // Others' records keep nothing (`[log]` says off).
    mock.push(Reply::chat("x"));
    let (id, _) = send(&gw, KEY, chat_req("m", false)).await;
    let (_, row) = entry(&gw, ADMIN, &id).await;
    assert!(row["bodies"].is_null(), "{row}");
}
