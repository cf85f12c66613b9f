//! The request log (issue #6): one record per admitted request, whatever the client schema
//! and however it ended (served, failed, cancelled), with what the log promises (schema,
//! HTTP status, error, time to first byte, tokens, warnings, tags), searchable through
//! `/admin/api/logs` with filters and cursor pagination, exported as CSV and JSON lines, on
//! SQLite and on Postgres.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::*;

const ADMIN: &str = "admin-token-for-log-tests-0000001";
const KEY: &str = "sk-log-test-key-0000000000001";

fn config(store: &str) -> String {
    format!(
        "{}[server]\nadmin_token = \"{ADMIN}\"\n[store]\nurl = \"{store}\"\n[teams.t]\n[[keys]]\nname = \"k\"\nkey = \"{KEY}\"\nteam = \"t\"\n",
        one_provider("openai-compatible")
            .replacen("[server]\n", "", 1)
            .replacen("stream_keepalive = \"2s\"\n", "", 1)
    )
}

async fn post(gw: &Gateway, path: &str, body: Value, tags: &str) -> reqwest::Response {
    client()
        .post(gw.url(path))
        .bearer_auth(KEY)
        .header("x-gatehouse-tags", tags)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn logs(gw: &Gateway, query: &str) -> Value {
    let r = client()
        .get(gw.url(&format!("/admin/api/logs?{query}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Serve one request of each kind; returns the request ids by what they were.
async fn traffic(gw: &Gateway, mock: &MockProvider) -> Vec<(&'static str, String)> {
    let mut ids = Vec::new();
    let id = |r: &reqwest::Response| {
        r.headers()["x-gatehouse-request-id"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let r = post(
        gw,
        "/v1/chat/completions",
        chat_req("m", false),
        "feature=chat",
    )
    .await;
    ids.push(("chat", id(&r)));
    let r = post(gw, "/v1/messages", json!({"model": "m", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "hi"}]}), "feature=messages").await;
    ids.push(("messages", id(&r)));
    let _ = r.text().await;
    let r = post(
        gw,
        "/v1/responses",
        json!({"model": "m", "input": "hi", "store": false}),
        "feature=responses",
    )
    .await;
    ids.push(("responses", id(&r)));
    let r = post(
        gw,
        "/v1beta/models/m:generateContent",
        json!({"contents": [{"parts": [{"text": "hi"}]}], "safetySettings": []}),
        "feature=gemini",
    )
    .await;
    ids.push(("gemini", id(&r)));
    let r = post(
        gw,
        "/v1/embeddings",
        json!({"model": "m", "input": "hi"}),
        "feature=embed",
    )
    .await;
    ids.push(("embeddings", id(&r)));
    mock.push(Reply::error(500, "upstream exploded"));
    let r = post(
        gw,
        "/v1/chat/completions",
        chat_req("m", false),
        "feature=chat",
    )
    .await;
    assert_eq!(r.status(), 502);
    ids.push(("failed", id(&r)));
    // A stream the client leaves after its first event.
    mock.push(Reply::stream(&["a"; 40]).every(Duration::from_millis(50)));
    let r = post(
        gw,
        "/v1/chat/completions",
        chat_req("m", true),
        "feature=chat",
    )
    .await;
    ids.push(("cancelled", id(&r)));
    let mut body = r.bytes_stream();
    let _ = body.next().await;
    drop(body);
    // A reply the client does not wait for: it has no request id to go by, only its tag.
    mock.push(Reply::chat("late").delay(Duration::from_millis(800)));
    let left = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("x-gatehouse-tags", "feature=left")
        .timeout(Duration::from_millis(200))
        .json(&chat_req("m", false))
        .send()
        .await;
    assert!(left.is_err(), "the client should have given up");
    ids.push(("left", String::new()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    gw.flush_records().await;
    ids
}

async fn check(gw: &Gateway, mock: &MockProvider) {
    let ids = traffic(gw, mock).await;
    let all = logs(gw, "limit=100").await;
    let rows = all["data"].as_array().unwrap();
    assert_eq!(
        rows.len(),
        ids.len(),
        "one record per admitted request: {all}"
    );
    let row = |what: &str| {
        let id = &ids.iter().find(|(w, _)| *w == what).unwrap().1;
        rows.iter()
            .find(|r| r["request_id"] == id.as_str())
            .unwrap()
            .clone()
    };
    for (what, schema) in [
        ("chat", "chat"),
        ("messages", "messages"),
        ("responses", "responses"),
        ("gemini", "gemini"),
        ("embeddings", "embeddings"),
    ] {
        let r = row(what);
        assert_eq!(r["client_schema"], schema, "{r}");
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["http_status"], 200, "{r}");
        assert!(r["ttft_ms"].is_u64(), "{r}");
        assert_eq!(
            (r["key_name"].as_str(), r["team"].as_str()),
            (Some("k"), Some("t"))
        );
        assert_eq!(
            r["tags"],
            json!([format!(
                "feature={}",
                if what == "embeddings" { "embed" } else { what }
            )])
        );
        assert!(r["tokens"]["input"].as_u64().unwrap() > 0, "{r}");
    }
    assert_eq!(row("gemini")["warnings"], "safetySettings dropped");
    let failed = row("failed");
    assert_eq!(
        (failed["status"].as_str(), failed["http_status"].as_u64()),
        (Some("error"), Some(502))
    );
    assert_eq!(failed["error_class"], "upstream_failed");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("upstream exploded"),
        "{failed}"
    );
    assert_eq!(failed["attempts"][0]["provider"], "p");
    assert_eq!(failed["attempts"][0]["status"], 500, "{failed}");
    assert_eq!(failed["attempts"][0]["outcome"], "upstream_failed");
    let cancelled = row("cancelled");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(
        cancelled["error_class"], "client_disconnected",
        "{cancelled}"
    );
    let left = rows
        .iter()
        .find(|r| r["tags"] == json!(["feature=left"]))
        .expect("a record of the request the client left");
    assert_eq!(
        (left["status"].as_str(), left["http_status"].as_u64()),
        (Some("cancelled"), Some(0)),
        "{left}"
    );
    assert_eq!(left["error_class"], "client_disconnected", "{left}");

    // Filters.
    let ids_of = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["request_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids_of(&logs(gw, "status=error").await),
        [failed["request_id"].as_str().unwrap()]
    );
    assert_eq!(ids_of(&logs(gw, "tag=feature%3Dgemini").await).len(), 1);
    assert_eq!(ids_of(&logs(gw, "tag=feature%3Dchat").await).len(), 3);
    assert_eq!(ids_of(&logs(gw, "q=exploded").await).len(), 1);
    assert_eq!(
        ids_of(&logs(gw, "q=%25").await).len(),
        0,
        "LIKE wildcards are matched as text"
    );
    assert_eq!(ids_of(&logs(gw, "provider=p&status=ok").await).len(), 5);
    assert_eq!(ids_of(&logs(gw, "key=nobody").await).len(), 0);
    // Pages of 2 cover every row once, newest first.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = logs(gw, &format!("limit=2{cursor}")).await;
        seen.extend(ids_of(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids_of(&all));
    // Exports.
    let csv = client()
        .get(gw.url("/admin/api/logs?format=csv"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("request_id,created_at,"), "{text}");
    assert_eq!(text.lines().count(), ids.len() + 1);
    let jsonl = gw.get_text("/admin/api/logs?format=jsonl", ADMIN).await;
    assert_eq!(
        jsonl
            .lines()
            .filter(|l| serde_json::from_str::<Value>(l).is_ok())
            .count(),
        ids.len()
    );
    // A plain key reads its own requests only, whatever it filters by.
    let r = client()
        .get(gw.url("/admin/api/logs?team=someone-else"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let own: Value = r.json().await.unwrap();
    let rows = own["data"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["key_name"] == "k"), "{own}");
    let r = client()
        .get(gw.url("/admin/api/logs?bogus=1"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn every_request_is_logged_and_searchable_on_sqlite() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config("sqlite::memory:"), &[&mock]).await;
    check(&gw, &mock).await;
}

#[tokio::test]
async fn every_request_is_logged_and_searchable_on_postgres() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(&url), &[&mock]).await;
    check(&gw, &mock).await;
}

/// RELIABILITY 26: the store stops answering for a while. No request waits on it; the log
/// queue stays bounded (records beyond it are dropped and counted); once the store is back
/// the queue drains without a restart.
#[tokio::test]
async fn a_paused_database_stalls_no_request_and_the_queue_drains_after() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    let proxy =
        crate::support::proxy::PausableProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = url.replace("127.0.0.1:5432", &proxy.addr.to_string());
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(
        &format!("{}[log]\nqueue = 50\n", config(&proxied)),
        &[&mock],
    )
    .await;
    let enforcer = gw.state.governance().enforcer();
    for _ in 0..10 {
        assert_eq!(
            post(
                &gw,
                "/v1/chat/completions",
                chat_req("m", false),
                "phase=before"
            )
            .await
            .status(),
            200
        );
    }
    assert!(enforcer.flush(Duration::from_secs(5)).await);

    proxy.pause(true);
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..400 {
        let url = gw.url("/v1/chat/completions");
        tasks.push(spawn(async move {
            let t = tokio::time::Instant::now();
            let r = client()
                .post(url)
                .bearer_auth(KEY)
                .header("x-gatehouse-tags", format!("phase=paused,n={i}"))
                .json(&chat_req("m", false))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), t.elapsed())
        }));
    }
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (status, took) = t.await.unwrap();
        assert_eq!(status, 200);
        slowest = slowest.max(took);
    }
    assert!(
        slowest < Duration::from_secs(5),
        "a request waited {slowest:?} on the paused store"
    );
    let (dropped, waiting) = enforcer.log_queue();
    assert!(dropped > 0, "a full queue drops (and counts) records");
    assert!(
        waiting <= 50 + 256,
        "the queue is bounded: {waiting} waiting"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paused_for = started.elapsed();

    proxy.pause(false);
    assert!(
        enforcer.flush(Duration::from_secs(15)).await,
        "the queue drains once the store is back"
    );
    let rows = logs(&gw, "limit=1000").await["data"]
        .as_array()
        .unwrap()
        .len() as u64;
    assert_eq!(
        rows,
        10 + 400 - dropped,
        "every record not dropped was written (paused {paused_for:?})"
    );
    let metrics = gw.get_text("/metrics", ADMIN).await;
    assert!(
        metrics.contains("gatehouse_log_records_dropped_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_request_id_reaches_the_provider() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config("sqlite::memory:"), &[&mock]).await;
    let r = post(&gw, "/v1/chat/completions", chat_req("m", false), "").await;
    let id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(mock.last_request().headers["x-request-id"], id.as_str());
}

async fn retention(store: gatehouse::store::Store) {
    use gatehouse::store::UsageRecord;
    let record = |i: usize, at: i64| UsageRecord {
        request_id: format!("r-{i:05}"),
        created_at: at,
        requested_model: "m".into(),
        status: "ok",
        client_schema: "chat",
        tags: vec![format!("n={}", i % 3)],
        ..UsageRecord::default()
    };
    // 2,500 old records (three batches) and 10 recent ones.
    let old: Vec<_> = (0..2_500).map(|i| record(i, 1_000 + i as i64)).collect();
    let recent: Vec<_> = (2_500..2_510).map(|i| record(i, 2_000_000_000)).collect();
    for chunk in old.chunks(500) {
        store.insert_usage(&mut chunk.to_vec()).await.unwrap();
    }
    store.insert_usage(&mut recent.clone()).await.unwrap();
    let deleted = store.purge_before(1_000_000).await.unwrap();
    assert_eq!(deleted, 2_500);
    let (rows, _) = store
        .logs(&gatehouse::store::LogFilter {
            since: 0,
            limit: 1_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 10);
    assert!(
        rows.iter()
            .all(|r| r["tags"].as_array().unwrap().len() == 1)
    );
    // The old records' tags went with them.
    let (tagged, _) = store
        .logs(&gatehouse::store::LogFilter {
            since: 0,
            tag: Some("n=0".into()),
            limit: 1_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(tagged.len(), 3);
    assert_eq!(store.purge_before(1_000_000).await.unwrap(), 0);
}

#[tokio::test]
async fn retention_deletes_old_records_in_batches_on_sqlite() {
    retention(
        gatehouse::store::Store::connect("sqlite::memory:")
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn retention_deletes_old_records_in_batches_on_postgres() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    retention(gatehouse::store::Store::connect(&url).await.unwrap()).await;
}

/// `/metrics` (issue #6): durations and time to first byte as histograms, errors by class,
/// tokens and cost by provider and model (a model the price table does not know is `other`),
/// refusals, budget use and the log queue.
#[tokio::test]
async fn metrics_cover_requests_tokens_cost_refusals_and_budgets() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| Reply::json(200, crate::support::mock::chat_body("ok", 40_000, 20_000)));
    let text = config("sqlite::memory:").replace(
        "team = \"t\"\n",
        "team = \"t\"\nbudget = { usd = 0.05, period = \"daily\" }\n",
    ) + "[pricing.m]\ninput = 1\noutput = 1\n";
    let gw = Gateway::start(&text, &[&mock]).await;
    for model in ["unpriced-model", "m"] {
        let r = post(&gw, "/v1/chat/completions", chat_req(model, false), "").await;
        assert_eq!(r.status(), 200, "{model}: {}", r.text().await.unwrap());
    }
    gw.flush_records().await;
    // 60,000 tokens at $1 a million: $0.06, over the $0.05 budget.
    let refused = post(&gw, "/v1/chat/completions", chat_req("m", false), "").await;
    assert_eq!(refused.status(), 429);
    let metrics = gw.get_text("/metrics", ADMIN).await;
    for needle in [
        "gatehouse_request_duration_seconds_bucket{schema=\"chat\",provider=\"p\",le=",
        "gatehouse_time_to_first_byte_seconds_bucket{schema=\"chat\",provider=\"p\",le=",
        "gatehouse_requests_completed_total{schema=\"chat\",provider=\"p\",status=\"ok\"} 2",
        "gatehouse_tokens_total{provider=\"p\",model=\"m\",kind=\"input\"} 40000",
        "gatehouse_tokens_total{provider=\"p\",model=\"other\",kind=\"output\"} 20000",
        "gatehouse_cost_nanodollars_total{provider=\"p\",model=\"m\"} 60000000",
        "gatehouse_refusals_total{reason=\"budget_exceeded\"} 1",
        "gatehouse_budget_used_ratio{scope=\"key\",name=\"k\",period=\"daily\"} 1.2",
        "gatehouse_log_queue_depth",
        "gatehouse_runtime_tasks ",
        "gatehouse_background_tasks ",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in:\n{metrics}");
    }
    let leaked: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("unpriced-model"))
        .collect();
    assert!(
        leaked.is_empty(),
        "unbounded model names stay out of the labels: {leaked:#?}"
    );
}

/// `gatehouse logs` reads the same log from the store.
#[tokio::test]
async fn the_cli_reads_the_log() {
    let dir = std::env::temp_dir().join(format!("gatehouse-logs-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("l.db");
    let _ = std::fs::remove_file(&db);
    let mock = MockProvider::start(Profile::OpenAi).await;
    let store = format!("sqlite://{}", db.display());
    let gw = Gateway::start(&config(&store), &[&mock]).await;
    mock.push(Reply::error(500, "boom for the cli"));
    for _ in 0..2 {
        post(&gw, "/v1/chat/completions", chat_req("m", false), "cli=yes").await;
    }
    gw.flush_records().await;
    let cfg = dir.join("l.toml");
    std::fs::write(&cfg, format!("[store]\nurl = \"{store}\"\n")).unwrap();
    let run = |args: &[&str]| run_cli(&cfg, &[&["logs"], args].concat());
    let lines: Vec<Value> = run(&["--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let errors = run(&["--status", "error", "--tag", "cli=yes"]);
    assert!(
        errors.contains("boom for the cli") && errors.lines().count() == 2,
        "{errors}"
    );
    let csv = run(&["--format", "csv", "--error", "boom"]);
    assert_eq!(csv.lines().count(), 2, "{csv}");
}

/// Reports over the whole gateway read daily roll-ups for whole days and the records for the
/// partial days at the window's edges: for any window they equal the records' own sums.
async fn rollups_equal_the_records(store: gatehouse::store::Store) {
    use gatehouse::store::{GroupBy, ReportRow, UsageFilter, UsageRecord};
    const DAY: i64 = 86_400;
    let base = 1_700_006_400; // a day boundary
    let mut seed: u64 = 7;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let records: Vec<UsageRecord> = (0..600)
        .map(|i| UsageRecord {
            request_id: format!("roll-{i:04}"),
            created_at: base + i64::try_from(next(5 * DAY as u64)).unwrap(),
            key_id: Some(format!("id{}", next(4))),
            key_name: (next(3) > 0).then(|| format!("key{}", next(4))),
            team: (next(4) > 0).then(|| format!("team{}", next(3))),
            model: Some(format!("m{}", next(3))),
            requested_model: "asked".into(),
            provider: Some(format!("p{}", next(2))),
            input_tokens: next(1000),
            output_tokens: next(500),
            cost_nanos: next(1_000_000),
            status: "ok",
            client_schema: "chat",
            tags: (0..next(3)).map(|t| format!("t={t}")).collect(),
            ..UsageRecord::default()
        })
        .collect();
    for chunk in records.chunks(100) {
        store.insert_usage(&mut chunk.to_vec()).await.unwrap();
    }
    // Written again: the roll-ups do not count them twice.
    store
        .insert_usage(&mut records[..50].to_vec())
        .await
        .unwrap();
    let expected = |by: GroupBy, since: i64, until: i64, team: Option<&str>| -> Vec<ReportRow> {
        let mut groups: std::collections::HashMap<String, ReportRow> = Default::default();
        for r in records.iter().filter(|r| {
            r.created_at >= since
                && r.created_at < until
                && team.is_none_or(|t| r.team.as_deref() == Some(t))
        }) {
            let keys: Vec<String> = match by {
                GroupBy::Key => vec![r.key_name.clone().or_else(|| r.key_id.clone()).unwrap()],
                GroupBy::Team => vec![r.team.clone().unwrap_or_else(|| "-".into())],
                GroupBy::Model => vec![r.model.clone().unwrap()],
                GroupBy::Provider => vec![r.provider.clone().unwrap()],
                GroupBy::Tag => r.tags.clone(),
                GroupBy::Day => vec![((r.created_at / DAY) * DAY).to_string()],
                _ => unreachable!(),
            };
            for k in keys {
                let e = groups.entry(k.clone()).or_insert(ReportRow {
                    group: k,
                    requests: 0,
                    input_tokens: 0,
                    output_tokens: 0,
                    cost_nanos: 0,
                });
                e.requests += 1;
                e.input_tokens += r.input_tokens;
                e.output_tokens += r.output_tokens;
                e.cost_nanos += r.cost_nanos;
            }
        }
        let mut v: Vec<ReportRow> = groups.into_values().collect();
        v.sort_by(|a, b| {
            b.cost_nanos
                .cmp(&a.cost_nanos)
                .then_with(|| a.group.cmp(&b.group))
        });
        v
    };
    let windows: Vec<(i64, i64, Option<String>)> = (0..25)
        .map(|_| {
            let since = base - DAY + i64::try_from(next(7 * DAY as u64)).unwrap();
            let until = since + i64::try_from(next(4 * DAY as u64)).unwrap();
            // A team admin's report every other window.
            let team = (next(2) == 0).then(|| format!("team{}", next(3)));
            (since, until, team)
        })
        .collect();
    let check = async |store: &gatehouse::store::Store| {
        for (since, until, team) in &windows {
            for by in [
                GroupBy::Key,
                GroupBy::Team,
                GroupBy::Model,
                GroupBy::Provider,
                GroupBy::Tag,
                GroupBy::Day,
            ] {
                let got = store
                    .usage_report(
                        by,
                        &UsageFilter {
                            since: *since,
                            until: Some(*until),
                            team: team.clone(),
                            ..UsageFilter::default()
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(
                    got,
                    expected(by, *since, *until, team.as_deref()),
                    "{by:?} over [{since}, {until}) of {team:?}"
                );
            }
        }
        let all = store
            .usage_report(GroupBy::Day, &UsageFilter::default())
            .await
            .unwrap();
        assert_eq!(all, expected(GroupBy::Day, 0, i64::MAX, None));
    };
    check(&store).await;
    // The team roll-ups that migration 0011 fills from existing records equal those the
    // batches wrote.
    match &store {
        gatehouse::store::Store::Sqlite(pool, ..) => {
            sqlx::raw_sql("DELETE FROM usage_rollup WHERE dim LIKE 'team/%'")
                .execute(pool)
                .await
                .unwrap();
            sqlx::raw_sql(include_str!("../../migrations/sqlite/0011_team_rollup.sql"))
                .execute(pool)
                .await
                .unwrap();
        }
        gatehouse::store::Store::Postgres(pool) => {
            sqlx::raw_sql("DELETE FROM usage_rollup WHERE dim LIKE 'team/%'")
                .execute(pool)
                .await
                .unwrap();
            sqlx::raw_sql(include_str!(
                "../../migrations/postgres/0011_team_rollup.sql"
            ))
            .execute(pool)
            .await
            .unwrap();
        }
    }
    check(&store).await;
}

#[tokio::test]
async fn rollups_equal_the_records_on_sqlite() {
    rollups_equal_the_records(
        gatehouse::store::Store::connect("sqlite::memory:")
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn rollups_equal_the_records_on_postgres() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    rollups_equal_the_records(gatehouse::store::Store::connect(&url).await.unwrap()).await;
}
