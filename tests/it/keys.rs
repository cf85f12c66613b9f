//! Virtual keys: static keys from the config and keys in the store, on every credential form
//! a client uses; 401 and 403 in the client's schema; the client's key never reaches the
//! provider; the CLI.

use std::process::Command;
use std::time::Duration;

use gatehouse::commands::{NewKey, create_key};
use gatehouse::governance::now_unix;
use serde_json::{Value, json};

use crate::support::*;

const ALICE: &str = "sk-alice-static-key-0123456789";

fn config_with_keys() -> String {
    format!(
        "{}\n[teams.platform]\nmodels = [\"gpt-*\"]\n[teams.open]\n\n[[keys]]\nname = \"alice\"\nkey = \"{ALICE}\"\nteam = \"platform\"\nuser = \"alice@example.com\"\n",
        one_provider("openai-compatible")
    )
}

async fn post(gw: &Gateway, path: &str, auth: Option<(&str, &str)>, body: &Value) -> (u16, Value) {
    let mut req = client().post(gw.url(path)).json(body);
    if let Some((h, v)) = auth {
        req = req.header(h, v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn anthropic_req(model: &str) -> Value {
    json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn static_keys_authenticate_every_credential_form_and_never_reach_the_provider() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config_with_keys(), &[&mock]).await;
    let bearer = format!("Bearer {ALICE}");

    // No key, a wrong key: 401 in each client's own error shape, nothing sent upstream.
    let (s, b) = post(
        &gw,
        "/v1/chat/completions",
        None,
        &chat_req("gpt-4o", false),
    )
    .await;
    assert_eq!(s, 401);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing API key"),
        "{b}"
    );
    let (s, b) = post(
        &gw,
        "/v1/chat/completions",
        Some(("authorization", "Bearer sk-gate-nope")),
        &chat_req("gpt-4o", false),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(b["error"]["message"], "invalid API key");
    let (s, b) = post(
        &gw,
        "/anthropic/v1/messages",
        Some(("x-api-key", "wrong-key-wrong-key")),
        &anthropic_req("gpt-4o"),
    )
    .await;
    assert_eq!(s, 401);
    assert_eq!(b["type"], "error");
    assert_eq!(b["error"]["type"], "authentication_error");
    assert_eq!(mock.calls(), 0);

    // The right key, as a bearer token and as x-api-key.
    let (s, _) = post(
        &gw,
        "/v1/chat/completions",
        Some(("authorization", &bearer)),
        &chat_req("gpt-4o", false),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = post(
        &gw,
        "/v1/messages",
        Some(("x-api-key", ALICE)),
        &anthropic_req("gpt-4o-mini"),
    )
    .await;
    assert_eq!(s, 200);
    for r in mock.requests() {
        let sent: Vec<String> = r
            .headers
            .values()
            .map(|v| v.to_str().unwrap_or("").to_owned())
            .collect();
        assert!(
            sent.iter().all(|v| !v.contains(ALICE)),
            "client key reached the provider: {sent:?}"
        );
        assert_eq!(r.headers["authorization"], "Bearer sk-provider-secret-0000");
    }

    // The team allows gpt-* only: 403, in the client's schema, naming the model.
    let (s, b) = post(
        &gw,
        "/v1/chat/completions",
        Some(("authorization", &bearer)),
        &chat_req("claude-sonnet-4-5", false),
    )
    .await;
    assert_eq!(s, 403);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("claude-sonnet-4-5"),
        "{b}"
    );
    assert_eq!(b["error"]["param"], "model");
    let (s, b) = post(
        &gw,
        "/v1/messages",
        Some(("x-api-key", ALICE)),
        &anthropic_req("claude-sonnet-4-5"),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(b["error"]["type"], "permission_error");
    assert_eq!(mock.calls(), 2);
}

#[tokio::test]
async fn models_list_shows_only_what_the_key_may_use() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let cfg = config_with_keys().replace(
        "models = [\"*\"]",
        "models = [\"gpt-4o\", \"claude-sonnet-4-5\"]",
    );
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let r = client().get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(gw.url("/v1/models"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    let ids: Vec<&str> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-4o"]);
}

#[tokio::test]
async fn store_keys_work_at_once_and_stop_when_revoked_or_expired() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config_with_keys(), &[&mock]).await;
    let live = gw.state.live();
    let store = gw.state.store();
    let new = |name: &str| NewKey {
        name: name.to_owned(),
        team: Some("open".to_owned()),
        ..NewKey::default()
    };
    let (bob, bob_key) = create_key(&live.config, store, new("bob")).await.unwrap();
    assert!(bob_key.starts_with("sk-gate-"));
    // Created after the gateway loaded its keys: the first use looks again (at most once a
    // second, so move past the load at start).
    skip(Duration::from_millis(1100)).await;
    let bearer = format!("Bearer {bob_key}");
    let (s, _) = post(
        &gw,
        "/v1/chat/completions",
        Some(("authorization", &bearer)),
        &chat_req("claude-x", false),
    )
    .await;
    assert_eq!(s, 200, "team `open` has no model limit");

    // A key limited to some models.
    let limited = NewKey {
        models: Some(vec!["mistral-*".to_owned()]),
        ..new("carol")
    };
    let (_, carol_key) = create_key(&live.config, store, limited).await.unwrap();
    // An already expired key.
    let expired = NewKey {
        expires_in: Some(Duration::ZERO),
        ..new("dave")
    };
    let (_, dave_key) = create_key(&live.config, store, expired).await.unwrap();
    store
        .revoke_key(&bob.id, now_unix())
        .await
        .unwrap()
        .unwrap();
    gw.state.governance().reload(&live.config, store).await;

    let (s, b) = post(
        &gw,
        "/v1/chat/completions",
        Some(("authorization", &bearer)),
        &chat_req("gpt-4o", false),
    )
    .await;
    assert_eq!(
        (s, b["error"]["message"].as_str().unwrap()),
        (401, "this API key has been revoked")
    );
    let (s, b) = post(
        &gw,
        "/v1/chat/completions",
        Some(("authorization", &format!("Bearer {dave_key}"))),
        &chat_req("gpt-4o", false),
    )
    .await;
    assert_eq!(
        (s, b["error"]["message"].as_str().unwrap()),
        (401, "this API key has expired")
    );
    let carol = format!("Bearer {carol_key}");
    let (s, _) = post(
        &gw,
        "/v1/chat/completions",
        Some(("authorization", &carol)),
        &chat_req("gpt-4o", false),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = post(
        &gw,
        "/v1/chat/completions",
        Some(("authorization", &carol)),
        &chat_req("mistral-small", false),
    )
    .await;
    assert_eq!(s, 200);
    // Embeddings and token counts are behind the same door.
    let (s, _) = post(
        &gw,
        "/v1/embeddings",
        None,
        &json!({"model": "e", "input": "x"}),
    )
    .await;
    assert_eq!(s, 401);
    let (s, _) = post(
        &gw,
        "/v1/messages/count_tokens",
        Some(("x-api-key", "nope-nope-nope-nope")),
        &anthropic_req("gpt-4o"),
    )
    .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn a_team_unknown_to_the_config_is_refused() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config_with_keys(), &[&mock]).await;
    let live = gw.state.live();
    let e = create_key(
        &live.config,
        gw.state.store(),
        NewKey {
            name: "x".into(),
            team: Some("ghost".into()),
            ..NewKey::default()
        },
    )
    .await
    .unwrap_err();
    assert!(e.contains("unknown team `ghost`"), "{e}");
    let text = format!(
        "{}\n[[keys]]\nname = \"z\"\nkey = \"short\"\nteam = \"nope\"\n",
        one_provider("openai")
    );
    let errs = gatehouse::config::parse(
        "k.toml",
        &text,
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap_err();
    let all = errs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(all.contains("shorter than 16"), "{all}");
    assert!(all.contains("unknown team `nope`"), "{all}");
    assert!(!all.contains("\"short\""), "{all}");
}

#[test]
fn cli_creates_lists_and_revokes_keys_without_showing_them_again() {
    let dir = std::env::temp_dir().join(format!("gatehouse-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("k.db");
    let _ = std::fs::remove_file(&db);
    let cfg = dir.join("k.toml");
    std::fs::write(
        &cfg,
        format!("[store]\nurl = \"sqlite://{}\"\n[teams.ml]\n", db.display()),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .arg("keys")
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "create",
        "--name",
        "ci",
        "--team",
        "ml",
        "--models",
        "gpt-*,o3",
        "--expires-in",
        "30d",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-gate-") && key.len() == 51, "{key}");
    assert_eq!(created["models"], json!(["gpt-*", "o3"]));
    let (_, plain, _) = run(&["create", "--name", "other"]);
    assert!(plain.trim().starts_with("sk-gate-"));

    let (code, list, _) = run(&["list"]);
    assert_eq!(code, Some(0));
    assert!(
        !list.contains(&key) && !list.contains(plain.trim()),
        "{list}"
    );
    assert!(
        list.contains("sk-gate-") && list.contains("active"),
        "{list}"
    );
    let (_, json_list, _) = run(&["list", "--json"]);
    let rows: Value = serde_json::from_str(&json_list).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(!json_list.contains(&key));

    let (code, out, _) = run(&["revoke", "ci"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("revoked"));
    let (_, json_list, _) = run(&["list", "--json"]);
    let rows: Value = serde_json::from_str(&json_list).unwrap();
    assert_eq!(rows[0]["status"], "revoked");
    let (code, _, err) = run(&["revoke", "nobody"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no key"), "{err}");
    let (code, _, err) = run(&["create", "--name", "x", "--team", "nope"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown team"), "{err}");
}

/// Deny by default: once a key exists, every route but the named public ones refuses a
/// request without a credential, in the schema its path implies, before its body is read,
/// including a path no route serves (which a route added later would take).
#[tokio::test]
async fn every_route_but_the_public_ones_needs_a_credential() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config_with_keys(), &[&mock]).await;
    let closed = [
        ("POST", "/v1/chat/completions"),
        ("POST", "/openai/v1/chat/completions"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v1/models"),
        ("GET", "/v1/usage"),
        ("POST", "/v1/responses"),
        ("GET", "/v1/responses/resp_1"),
        ("DELETE", "/v1/responses/resp_1"),
        ("POST", "/v1/messages"),
        ("POST", "/anthropic/v1/messages/count_tokens"),
        ("POST", "/v1beta/models/gemini-2.5-flash:generateContent"),
        ("POST", "/gemini/v1beta/models/gemini-2.5-flash:countTokens"),
        ("GET", "/admin/api/keys"),
        ("GET", "/admin/api/me"),
        ("GET", "/metrics"),
        ("POST", "/v1/a-route-added-later"),
        ("GET", "/no/such/path"),
    ];
    for (method, path) in closed {
        let r = client()
            .request(method.parse().unwrap(), gw.url(path))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "{method} {path}");
        let b: Value = r.json().await.unwrap();
        let shape_ok = if path.contains("/messages") {
            b["type"] == "error" && b["error"]["type"] == "authentication_error"
        } else if path.starts_with("/v1beta/") || path.starts_with("/gemini/") {
            b["error"]["code"] == 401
        } else {
            b["error"]["message"].is_string()
        };
        assert!(shape_ok, "{method} {path}: {b}");
    }
    for path in gatehouse::app::PUBLIC {
        let r = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    assert_eq!(mock.requests().len(), 0);
}

const KEYS_ADMIN: &str = "admin-token-stored-keys-0123456789";

/// A gateway on the store at `url`; a key created through the admin API, then used once
/// (so the request log and usage hold its traces too). The key and its id.
async fn create_and_use_a_key(url: &str, mock: &MockProvider) -> (Gateway, String, String) {
    let text = format!(
        "[server]\nadmin_token = \"{KEYS_ADMIN}\"\n{}[store]\nurl = \"{url}\"\n",
        one_provider("openai-compatible").replace("[server]\n", "")
    );
    let gw = Gateway::start(&text, &[mock]).await;
    let r = client()
        .post(gw.url("/admin/api/keys"))
        .bearer_auth(KEYS_ADMIN)
        .json(&json!({"name": "stored", "log_bodies": "all"}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let created: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let (s, _) = post(
        &gw,
        "/v1/chat/completions",
        Some(("authorization", &format!("Bearer {key}"))),
        &chat_req("gpt-4o", false),
    )
    .await;
    assert_eq!(s, 200);
    gw.flush_records().await;
    (gw, key, id)
}

/// What the store holds of `key`: its row is `hash` = SHA-256 hex and a hint of the prefix
/// and last four; no table holds the key, its random part, or any 8 characters of it.
fn assert_hashed(key: &str, row: &str, tables: &[(String, String)]) {
    let d = gatehouse::governance::keys::digest(key);
    assert!(
        row.contains(&gatehouse::governance::keys::hex(&d)),
        "the row holds the key's SHA-256: {row}"
    );
    assert!(
        row.contains(&gatehouse::governance::keys::hint(key)),
        "and its hint: {row}"
    );
    let body = key.strip_prefix("sk-gate-").unwrap();
    assert_eq!(body.len(), 43);
    let windows: Vec<&str> = (0..=body.len() - 8).map(|i| &body[i..i + 8]).collect();
    assert!(tables.len() >= 5, "{tables:?}");
    for (table, dump) in
        std::iter::once(&("virtual_keys row".to_owned(), row.to_owned())).chain(tables)
    {
        assert!(!dump.contains(key), "{table} holds the key");
        for w in &windows {
            assert!(!dump.contains(w), "{table} holds `{w}` of the key: {dump}");
        }
    }
}

/// RELIABILITY 32: keys are stored hashed, on SQLite (its file and write-ahead log read
/// byte for byte too).
#[tokio::test]
async fn keys_are_stored_hashed_on_sqlite() {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-hashed-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("g.db");
    let url = format!("sqlite://{}", path.display());
    let mock = MockProvider::start(Profile::OpenAi).await;
    let (gw, key, id) = create_and_use_a_key(&url, &mock).await;
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    // Every table, every row, every column, as text.
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut tables = Vec::new();
    let mut row_text = String::new();
    for name in names {
        let rows = sqlx::query(&format!("SELECT * FROM \"{name}\""))
            .fetch_all(&pool)
            .await
            .unwrap();
        let mut dump = String::new();
        for r in &rows {
            use sqlx::{Column, Row};
            let mut line = String::new();
            for (i, c) in r.columns().iter().enumerate() {
                let v = r
                    .try_get::<Option<String>, _>(i)
                    .map(|v| v.unwrap_or_default())
                    .or_else(|_| r.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}")))
                    .or_else(|_| r.try_get::<Option<f64>, _>(i).map(|v| format!("{v:?}")))
                    .or_else(|_| {
                        r.try_get::<Option<Vec<u8>>, _>(i)
                            .map(|v| String::from_utf8_lossy(&v.unwrap_or_default()).into_owned())
                    })
                    .unwrap_or_else(|e| panic!("{name}.{}: {e}", c.name()));
                line.push_str(&format!("{}={v}\t", c.name()));
            }
            if name == "virtual_keys" && line.contains(&id) {
                row_text = line.clone();
            }
            dump.push_str(&line);
            dump.push('\n');
        }
        tables.push((name, dump));
    }
    assert!(!row_text.is_empty(), "no row for {id}");
    assert!(
        tables
            .iter()
            .any(|(t, d)| t == "usage_records" && d.contains(&id)),
        "the request was recorded under the key's id"
    );
    assert_hashed(&key, &row_text, &tables);
    pool.close().await;
    drop(gw);
    for f in ["g.db", "g.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(f)) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&key[8..]), "{f} holds the key");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// RELIABILITY 32: keys are stored hashed, on Postgres.
#[tokio::test]
async fn keys_are_stored_hashed_on_postgres() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    let mock = MockProvider::start(Profile::OpenAi).await;
    let (_gw, key, id) = create_and_use_a_key(&url, &mock).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let row: String =
        sqlx::query_scalar("SELECT row_to_json(v)::text FROM virtual_keys v WHERE id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut tables = Vec::new();
    for name in names {
        let dump: String = sqlx::query_scalar(&format!(
            "SELECT COALESCE(string_agg(row_to_json(t)::text, E'\\n'), '') FROM \"{name}\" t"
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        tables.push((name, dump));
    }
    assert!(
        tables
            .iter()
            .any(|(t, d)| t == "usage_records" && d.contains(&id)),
        "the request was recorded under the key's id: {tables:?}"
    );
    assert_hashed(&key, &row, &tables);
    pool.close().await;
}
