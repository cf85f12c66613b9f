//! The admin API (RELIABILITY 31, 32): an authorization matrix over every endpoint and role,
//! grants that never exceed what the granter holds, hostile input in every parameter (a
//! clean 4xx, and no database error in a reply or the log), and the OpenAPI document
//! matching the routes.

use serde_json::{Value, json};

use crate::support::*;

const ADMIN: &str = "admin-token-0123456789abcdef";
const ALPHA_ADMIN: &str = "sk-alpha-admin-0123456789";
const MEMBER: &str = "sk-alpha-member-0123456789";
const LONER: &str = "sk-loner-key-0123456789";
const BETA_ADMIN: &str = "sk-beta-admin-0123456789";

fn config() -> String {
    format!(
        "[server]\nadmin_token = \"{ADMIN}\"\n\
         [providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{{mock0}}\"\nmodels = [\"*\"]\n\
         [teams.alpha]\nmodels = [\"gpt-*\"]\nbudget = {{ usd = 100, period = \"monthly\" }}\nrate_limit = {{ rpm = 1000 }}\n\
         [teams.beta]\n\
         [[keys]]\nname = \"alpha-admin\"\nkey = \"{ALPHA_ADMIN}\"\nteam = \"alpha\"\nrole = \"team_admin\"\n\
         [[keys]]\nname = \"alpha-member\"\nkey = \"{MEMBER}\"\nteam = \"alpha\"\n\
         [[keys]]\nname = \"loner\"\nkey = \"{LONER}\"\n\
         [[keys]]\nname = \"beta-admin\"\nkey = \"{BETA_ADMIN}\"\nteam = \"beta\"\nrole = \"team_admin\"\n"
    )
}

async fn send(
    gw: &Gateway,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let c = client();
    let url = gw.url(path);
    let mut req = match method {
        "GET" => c.get(&url),
        "POST" => c.post(&url),
        "PUT" => c.put(&url),
        "DELETE" => c.delete(&url),
        m => panic!("{m}"),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn start() -> (MockProvider, Gateway) {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(), &[&mock]).await;
    (mock, gw)
}

/// A chat request as `key`; its request id.
async fn chat_as(gw: &Gateway, key: &str) -> String {
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_req("gpt-4o", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Every admin operation (the 27 of the route table, `/admin/api/openapi.json` included)
/// and `/metrics`, for each of the 5 roles, with the exact status SPEC §3 and
/// docs/http-api.md give: the admin sees all; a team admin reads and manages its own team's
/// keys, users, projects and request log (another team's record is 404) and nothing of the
/// config, routing or metrics; any other key reads `/me` only (403); no credential is 401.
#[tokio::test]
async fn every_endpoint_and_role() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    // From a file, so that `POST /admin/api/config/reload` has something to reload.
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-admin-matrix-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let gw = Gateway::start_file(&config(), &[&mock], &dir.join("gatehouse.toml")).await;
    // A record of team alpha's, and one of a key without a team, for the request log.
    let alpha_request = chat_as(&gw, MEMBER).await;
    let teamless_request = chat_as(&gw, LONER).await;
    gw.flush_records().await;
    let roles: [(&str, Option<&str>); 5] = [
        ("anonymous", None),
        ("key", Some(LONER)),
        ("member", Some(MEMBER)),
        ("team_admin", Some(ALPHA_ADMIN)),
        ("admin", Some(ADMIN)),
    ];
    // Things to read and delete, one per role so that each role deletes its own.
    for (role, _) in &roles {
        for (path, body) in [
            (
                "/admin/api/users",
                json!({"name": format!("u-{role}"), "team": "alpha"}),
            ),
            (
                "/admin/api/projects",
                json!({"name": format!("p-{role}"), "team": "alpha"}),
            ),
            ("/admin/api/teams", json!({"name": format!("t-{role}")})),
        ] {
            let (s, b) = send(&gw, "POST", path, Some(ADMIN), Some(&body)).await;
            assert_eq!(s, 201, "{path}: {b}");
        }
    }
    let mut key_ids = std::collections::HashMap::new();
    for (role, _) in &roles {
        let (s, b) = send(
            &gw,
            "POST",
            "/admin/api/keys",
            Some(ADMIN),
            Some(&json!({"name": format!("k-{role}"), "team": "alpha"})),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        key_ids.insert(*role, b["id"].as_str().unwrap().to_owned());
    }

    // Expected status per role, in the order of `roles`.
    const READ: [u16; 5] = [401, 403, 403, 200, 200];
    const ADMIN_ONLY_WRITE: [u16; 5] = [401, 403, 403, 403, 0];
    const ADMIN_ONLY: [u16; 5] = [401, 403, 403, 403, 200];
    let mut cases_run = 0;
    for (role, token) in roles {
        let i = roles.iter().position(|(r, _)| *r == role).unwrap();
        let id = &key_ids[role];
        let cases: Vec<(&str, String, Option<Value>, [u16; 5])> = vec![
            ("GET", "/admin/api/openapi.json".into(), None, [200; 5]),
            (
                "GET",
                "/admin/api/me".into(),
                None,
                [401, 200, 200, 200, 200],
            ),
            ("GET", "/admin/api/keys".into(), None, READ),
            (
                "POST",
                "/admin/api/keys".into(),
                Some(json!({"name": format!("new-{role}"), "team": "alpha"})),
                [401, 403, 403, 201, 201],
            ),
            ("GET", format!("/admin/api/keys/{id}"), None, READ),
            ("DELETE", format!("/admin/api/keys/{id}"), None, READ),
            ("GET", "/admin/api/teams".into(), None, READ),
            (
                "POST",
                "/admin/api/teams".into(),
                Some(json!({"name": format!("new-{role}")})),
                [401, 403, 403, 403, 201],
            ),
            ("GET", "/admin/api/teams/alpha".into(), None, READ),
            (
                "GET",
                "/admin/api/teams/beta".into(),
                None,
                [401, 403, 403, 404, 200],
            ),
            (
                "PUT",
                format!("/admin/api/teams/t-{role}"),
                Some(json!({"models": ["gpt-4o"]})),
                ADMIN_ONLY_WRITE.map(|s| if s == 0 { 200 } else { s }),
            ),
            (
                "DELETE",
                format!("/admin/api/teams/t-{role}"),
                None,
                ADMIN_ONLY_WRITE.map(|s| if s == 0 { 200 } else { s }),
            ),
            ("GET", "/admin/api/users".into(), None, READ),
            (
                "POST",
                "/admin/api/users".into(),
                Some(json!({"name": format!("nu-{role}")})),
                [401, 403, 403, 201, 201],
            ),
            ("GET", format!("/admin/api/users/u-{role}"), None, READ),
            ("DELETE", format!("/admin/api/users/u-{role}"), None, READ),
            ("GET", "/admin/api/projects".into(), None, READ),
            (
                "POST",
                "/admin/api/projects".into(),
                Some(json!({"name": format!("np-{role}")})),
                [401, 403, 403, 201, 201],
            ),
            ("GET", format!("/admin/api/projects/p-{role}"), None, READ),
            (
                "DELETE",
                format!("/admin/api/projects/p-{role}"),
                None,
                READ,
            ),
            ("GET", "/admin/api/budgets".into(), None, READ),
            (
                "GET",
                "/admin/api/usage?by=team&since=7d".into(),
                None,
                READ,
            ),
            // Any key reads its own requests; what is not in a caller's scope is as if it
            // did not exist (the member's request for the loner, the loner's for the team).
            (
                "GET",
                "/admin/api/logs".into(),
                None,
                [401, 200, 200, 200, 200],
            ),
            (
                "GET",
                format!("/admin/api/logs/{alpha_request}"),
                None,
                [401, 404, 200, 200, 200],
            ),
            (
                "GET",
                format!("/admin/api/logs/{teamless_request}"),
                None,
                [401, 200, 404, 404, 200],
            ),
            ("GET", "/admin/api/config".into(), None, ADMIN_ONLY),
            ("POST", "/admin/api/config/reload".into(), None, ADMIN_ONLY),
            ("GET", "/admin/api/routing".into(), None, ADMIN_ONLY),
            (
                "POST",
                "/admin/api/routing/explain".into(),
                Some(json!({"model": "gpt-4o", "key": "alpha-member", "tags": ["feature=x"]})),
                ADMIN_ONLY,
            ),
            ("GET", "/metrics".into(), None, ADMIN_ONLY),
        ];
        for (method, path, body, want) in cases {
            let (s, b) = send(&gw, method, &path, token, body.as_ref()).await;
            assert_eq!(s, want[i], "{role} {method} {path}: {b}");
            if s >= 400 {
                assert!(
                    b["error"]["message"].is_string(),
                    "{role} {method} {path}: {b}"
                );
            }
            cases_run += 1;
        }
    }
    // 30 cases (the 27 operations, `GET /admin/api/teams/{name}` and `GET
    // /admin/api/logs/{id}` once more each, and `/metrics`) for each of the 5 roles.
    assert_eq!(cases_run, 30 * 5);
    // What the team admin's 200s hold: its own team's records only.
    let (_, logs) = send(&gw, "GET", "/admin/api/logs", Some(ALPHA_ADMIN), None).await;
    let ids: Vec<&str> = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [alpha_request.as_str()], "{logs}");
    let (_, logs) = send(&gw, "GET", "/admin/api/logs", Some(ADMIN), None).await;
    assert_eq!(logs["data"].as_array().unwrap().len(), 2, "{logs}");
    // A key's: its own, whatever the filter asks for, and no bodies.
    for (key, own) in [(MEMBER, &alpha_request), (LONER, &teamless_request)] {
        for query in ["", "?team=alpha", "?key=nothing-of-mine"] {
            let (_, logs) = send(
                &gw,
                "GET",
                &format!("/admin/api/logs{query}"),
                Some(key),
                None,
            )
            .await;
            let ids: Vec<&str> = logs["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["request_id"].as_str().unwrap())
                .collect();
            assert_eq!(ids, [own.as_str()], "{query}: {logs}");
        }
        let (_, entry) = send(
            &gw,
            "GET",
            &format!("/admin/api/logs/{own}"),
            Some(key),
            None,
        )
        .await;
        assert!(entry.get("bodies").is_none(), "{entry}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_team_admin_sees_its_team_and_grants_no_more_than_it_holds() {
    let (mock, gw) = start().await;
    let (s, _) = send(
        &gw,
        "POST",
        "/admin/api/users",
        Some(ADMIN),
        Some(&json!({"name": "bob", "team": "beta"})),
    )
    .await;
    assert_eq!(s, 201);
    let post_key = |body: Value| {
        let gw = &gw;
        async move {
            send(
                gw,
                "POST",
                "/admin/api/keys",
                Some(ALPHA_ADMIN),
                Some(&body),
            )
            .await
        }
    };
    for (body, status, why) in [
        (json!({"name": "x", "team": "beta"}), 403, "own team"),
        (json!({"name": "x", "role": "team_admin"}), 403, "role"),
        (json!({"name": "x", "models": ["o3"]}), 403, "model `o3`"),
        (json!({"name": "x", "models": ["*"]}), 403, "model `*`"),
        (
            json!({"name": "x", "budgets": [{"usd": 200, "period": "monthly"}]}),
            403,
            "budget",
        ),
        (
            json!({"name": "x", "rate_limit": {"rpm": 5000}}),
            403,
            "rpm 5000",
        ),
        (json!({"name": "x", "user": "bob"}), 409, "another team"),
        (
            json!({"name": "x", "budgets": [{"usd": 1, "period": "daily", "route_to": "p/o3"}]}),
            403,
            "route to",
        ),
        (json!({"name": "x", "unknown": 1}), 400, "unknown field"),
    ] {
        let (s, b) = post_key(body.clone()).await;
        assert_eq!(s, status, "{body}: {b}");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains(why), "{body}: {msg}");
    }
    let (s, created) = post_key(json!({
        "name": "ci", "models": ["gpt-4o"], "budgets": [{"usd": 50, "period": "monthly"}],
        "rate_limit": {"rpm": 100}
    }))
    .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["team"], "alpha");
    let key = created["key"].as_str().unwrap().to_owned();
    // The new key works at once, within what it was granted.
    let chat = |model: &str| {
        client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&chat_req(model, false))
            .send()
    };
    assert_eq!(chat("gpt-4o").await.unwrap().status(), 200);
    assert_eq!(chat("gpt-4.1").await.unwrap().status(), 403);
    assert_eq!(mock.calls(), 1);
    // The team admin sees alpha's keys only; beta's admin sees none of them.
    let (_, b) = send(
        &gw,
        "POST",
        "/admin/api/keys",
        Some(ADMIN),
        Some(&json!({"name": "b1", "team": "beta"})),
    )
    .await;
    let beta_id = b["id"].as_str().unwrap().to_owned();
    let (_, list) = send(&gw, "GET", "/admin/api/keys", Some(ALPHA_ADMIN), None).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci"]);
    let (s, _) = send(
        &gw,
        "DELETE",
        &format!("/admin/api/keys/{beta_id}"),
        Some(ALPHA_ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, list) = send(&gw, "GET", "/admin/api/keys", Some(BETA_ADMIN), None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // Revoked: refused at once.
    let id = created["id"].as_str().unwrap();
    let (s, _) = send(
        &gw,
        "DELETE",
        &format!("/admin/api/keys/{id}"),
        Some(ALPHA_ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(chat("gpt-4o").await.unwrap().status(), 401);
    // Users: only in its own team.
    let (s, _) = send(
        &gw,
        "POST",
        "/admin/api/users",
        Some(ALPHA_ADMIN),
        Some(&json!({"name": "eve", "team": "beta"})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = send(
        &gw,
        "DELETE",
        "/admin/api/users/bob",
        Some(ALPHA_ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // Teams of the config file are read-only here.
    let (s, b) = send(
        &gw,
        "PUT",
        "/admin/api/teams/alpha",
        Some(ADMIN),
        Some(&json!({"models": ["*"]})),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    // Budgets: the team admin sees its team's.
    let (_, b) = send(&gw, "GET", "/admin/api/budgets", Some(ALPHA_ADMIN), None).await;
    let scopes: Vec<String> = b["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| format!("{}:{}", x["scope"], x["name"]))
        .collect();
    assert!(
        scopes.contains(&"\"team\":\"alpha\"".to_owned()),
        "{scopes:?}"
    );
    assert!(scopes.iter().all(|s| !s.contains("beta")), "{scopes:?}");
    // Usage: filtered to the team.
    gw.flush_records().await;
    let (s, u) = send(
        &gw,
        "GET",
        "/admin/api/usage?by=model",
        Some(ALPHA_ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 200, "{u}");
    let rows = u["data"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["group"] == "gpt-4o"), "{u}");
}

/// What a database error reads like (SQLite's, Postgres's, sqlx's, the admin API's own
/// log line for one), in a log or a reply.
const DB_ERROR_TEXT: &[&str] = &[
    "error returned from database",
    "syntax error",
    "SQLITE_",
    "no such table",
    "no such column",
    "unrecognized token",
    "unterminated",
    "SQLSTATE",
    "violates",
    "constraint failed",
    "store failure",
    "sqlx::error",
    "Database(",
];

#[tokio::test]
async fn hostile_input_in_every_parameter_gets_a_clean_4xx() {
    let logs = logs::capture();
    let (_mock, gw) = start().await;
    let mut replies = String::new();
    let payloads = [
        "' OR '1'='1",
        "x'; DROP TABLE virtual_keys; --",
        "\" OR 1=1 --",
        "1; SELECT pg_sleep(5)",
        "%00",
        "../../etc/passwd",
        "x\u{0000}y",
        "😀",
        &"a".repeat(5000),
    ];
    for p in payloads {
        let enc: String = p.bytes().map(|b| format!("%{b:02X}")).collect();
        for (method, path, body) in [
            ("GET", format!("/admin/api/keys/{enc}"), None),
            ("DELETE", format!("/admin/api/keys/{enc}"), None),
            ("GET", format!("/admin/api/teams/{enc}"), None),
            ("PUT", format!("/admin/api/teams/{enc}"), Some(json!({}))),
            ("DELETE", format!("/admin/api/users/{enc}"), None),
            ("GET", format!("/admin/api/projects/{enc}"), None),
            ("GET", format!("/admin/api/usage?by={enc}"), None),
            (
                "GET",
                format!("/admin/api/usage?since={enc}&until={enc}"),
                None,
            ),
            ("GET", format!("/admin/api/usage?{enc}=1"), None),
            ("POST", "/admin/api/keys".into(), Some(json!({"name": p}))),
            (
                "POST",
                "/admin/api/keys".into(),
                Some(json!({"name": "ok", "team": p})),
            ),
            (
                "POST",
                "/admin/api/keys".into(),
                Some(json!({"name": "ok", "user": p})),
            ),
            // A model pattern may be any text: accepted or refused, never a 5xx.
            (
                "POST",
                "/admin/api/keys".into(),
                Some(json!({"name": format!("m{}", p.len()), "models": [p]})),
            ),
            (
                "POST",
                "/admin/api/keys".into(),
                Some(json!({"name": "ok", "expires_in": p})),
            ),
            (
                "POST",
                "/admin/api/keys".into(),
                Some(json!({"name": "ok", "budgets": [{"usd": 1, "period": p}]})),
            ),
            (
                "POST",
                "/admin/api/keys".into(),
                Some(
                    json!({"name": "ok", "budgets": [{"usd": 1, "period": "daily", "timezone": p}]}),
                ),
            ),
            ("POST", "/admin/api/teams".into(), Some(json!({"name": p}))),
            ("POST", "/admin/api/users".into(), Some(json!({"name": p}))),
            (
                "POST",
                "/admin/api/projects".into(),
                Some(json!({"name": "ok", "team": p})),
            ),
        ] {
            let (s, b) = send(&gw, method, &path, Some(ADMIN), body.as_ref()).await;
            replies.push_str(&b.to_string());
            let any_text = body.as_ref().is_some_and(|b| b.get("models").is_some());
            if any_text {
                assert!(
                    s == 201 || (400..500).contains(&s),
                    "{method} {path} {p:?}: {s} {b}"
                );
            } else {
                assert!((400..500).contains(&s), "{method} {path} {p:?}: {s} {b}");
            }
        }
        // As a credential: 401, never a 5xx.
        let r = client()
            .get(gw.url("/admin/api/keys"))
            .header(
                "authorization",
                format!("Bearer {}", p.replace('\u{0000}', "")),
            )
            .send()
            .await;
        if let Ok(r) = r {
            assert_eq!(r.status(), 401, "{p:?}");
        }
    }
    // Nothing was harmed: the tables are all there.
    let (s, b) = send(&gw, "GET", "/admin/api/keys", Some(ADMIN), None).await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = send(
        &gw,
        "POST",
        "/admin/api/keys",
        Some(ADMIN),
        Some(&json!({"name": "after"})),
    )
    .await;
    assert_eq!(s, 201);
    // No database error reached a reply or the log, at any level; nothing at ERROR at all.
    let text = logs.text();
    for marker in DB_ERROR_TEXT {
        assert!(!replies.contains(marker), "a reply says `{marker}`");
        assert!(!text.contains(marker), "the log says `{marker}`:\n{text}");
    }
    assert!(
        !text.lines().any(|l| l.contains(" ERROR ")),
        "errors logged:\n{text}"
    );
    // And the capture works: a store failure is logged, and seen here.
    gw.state.store().close().await;
    let (s, _) = send(&gw, "GET", "/admin/api/keys", Some(ADMIN), None).await;
    assert_eq!(s, 503);
    let text = logs.text();
    assert!(
        text.contains(" ERROR ") && text.contains("store failure"),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let (_mock, gw) = start().await;
    let (s, doc) = send(&gw, "GET", "/admin/api/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut n = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            n += 1;
            let concrete = path
                .replace("{id}", "zz")
                .replace("{name}", "zz")
                .replace("{request_id}", "zz");
            let body = matches!(method, "post" | "put").then(|| json!({}));
            let (s, b) = send(
                &gw,
                &method.to_uppercase(),
                &concrete,
                Some(ADMIN),
                body.as_ref(),
            )
            .await;
            let routed = !(s == 405
                || (s == 404
                    && b["error"]["message"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("no route")));
            assert!(
                routed,
                "{method} {path} is documented but not served: {s} {b}"
            );
            // Every status it answers is documented.
            assert!(
                item[method]["responses"].get(s.to_string()).is_some(),
                "{method} {path} answered {s}, not documented"
            );
        }
    }
    assert_eq!(n, 23);
    // Every schema reference resolves.
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"").skip(1) {
        let target = r.split('"').next().unwrap();
        let ptr = target.trim_start_matches('#');
        assert!(doc.pointer(ptr).is_some(), "dangling {target}");
    }
}
