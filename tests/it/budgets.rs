//! Budgets (RELIABILITY 1, 2): admission reserves the worst case and settles the actual cost,
//! so that concurrent requests, on one instance or two sharing a store or Redis, never
//! overspend by more than one request's worst case; failed requests give their reservation
//! back; a stream the client cuts is charged for what it delivered; periods roll over at
//! the calendar boundary; alerts go out once per threshold; `on_exhausted` routes elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gatehouse::governance::Clock;
use serde_json::{Value, json};

use crate::support::mock::chat_body;
use crate::support::*;

const KEY: &str = "sk-budget-key-0123456789";
/// Every mock reply reports 10 + 10 tokens; at $500 per million each way that is $0.01.
const COST_NANOS: u64 = 10_000_000;
/// The worst case reserved: (8 input estimated + 20 max_tokens) × $500/M = $0.014.
const WORST_NANOS: u64 = 14_000_000;

fn config(budget: &str, store: &str, redis: &str) -> String {
    format!(
        "[server]\nstream_keepalive = \"2s\"\n\
         [providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{{mock0}}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"*\"]\n\
         [pricing.m]\ninput = 500\noutput = 500\n\
         [teams.t]\n\
         [[keys]]\nname = \"k\"\nkey = \"{KEY}\"\nteam = \"t\"\nbudget = {budget}\n\
         [store]\nurl = \"{store}\"\n{redis}"
    )
}

fn req() -> Value {
    json!({"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
}

async fn call(gw: &Gateway, body: &Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// 200 workers, spread over the instances, each sending until the budget refuses it three
/// times. Returns how many requests were admitted.
async fn race(gws: &[&Gateway]) -> u64 {
    let admitted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let url = gws[i % gws.len()].url("/v1/chat/completions");
        let admitted = Arc::clone(&admitted);
        tasks.push(spawn(async move {
            let c = client();
            let mut refusals = 0;
            while refusals < 3 {
                let r = c
                    .post(&url)
                    .bearer_auth(KEY)
                    .json(&req())
                    .send()
                    .await
                    .unwrap();
                match r.status().as_u16() {
                    200 => {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                    429 => {
                        assert!(r.headers().contains_key("retry-after"));
                        let b: Value = r.json().await.unwrap();
                        assert_eq!(b["error"]["code"], "budget_exceeded", "{b}");
                        refusals += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    s => panic!("unexpected status {s}: {}", r.text().await.unwrap()),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    admitted.load(Ordering::Relaxed)
}

/// The race on `gws`, then exact checks of spend against the budget, the counters and the
/// usage records; then a run where every request fails gives every reservation back.
async fn budget_holds(mock: &MockProvider, gws: &[&Gateway]) {
    mock.respond_with(|_| {
        Reply::json(200, chat_body("ok", 10, 10)).delay(Duration::from_millis(5))
    });
    let admitted = race(gws).await;
    for gw in gws {
        assert!(
            gw.state
                .governance()
                .enforcer()
                .flush(Duration::from_secs(10))
                .await
        );
    }
    let u = usage_of(gws[0], KEY).await;
    let b = &u["budgets"][0];
    assert_eq!(b["scope"], "key");
    let spent_nanos = (b["spent"].as_f64().unwrap() * 1e9).round() as u64;
    // Exact accounting: the counter holds exactly what the admitted requests cost...
    assert_eq!(spent_nanos, admitted * COST_NANOS, "{u}");
    assert_eq!(b["reserved"], 0.0, "{u}");
    // ...which never passes the budget by more than one request's worst case.
    assert!(
        spent_nanos <= 1_000_000_000 + WORST_NANOS,
        "spent {spent_nanos} for {admitted}"
    );
    assert!(admitted <= 101, "{admitted}");
    assert!(
        admitted >= 95,
        "the budget should be nearly used up: {admitted}"
    );
    // The usage records agree (the 60 failures of `failures_release` are records too, at 0).
    assert_eq!(u["periods"]["day"]["requests"], admitted + 60, "{u}");
    assert_eq!(
        u["periods"]["day"]["cost_usd"].as_f64().unwrap(),
        admitted as f64 * 0.01
    );
    assert_eq!(mock.calls() as u64, admitted + 60);
}

/// Every request fails upstream: all reservations come back.
async fn failures_release(mock: &MockProvider, gws: &[&Gateway]) {
    mock.respond_with(|_| Reply::error(500, "boom"));
    let mut tasks = Vec::new();
    for i in 0..60 {
        let url = gws[i % gws.len()].url("/v1/chat/completions");
        tasks.push(spawn(async move {
            let r = client()
                .post(&url)
                .bearer_auth(KEY)
                .json(&req())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 502);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let back = eventually(Duration::from_secs(5), || async {
        let u = usage_of(gws[0], KEY).await;
        (u["budgets"][0]["reserved"] == 0.0 && u["budgets"][0]["spent"] == 0.0).then_some(u)
    })
    .await;
    let u = back.expect("reservations were not released within 5 s");
    assert_eq!(u["budgets"][0]["remaining"], 1.0, "{u}");
}

const ONE_DOLLAR: &str = "{ usd = 1.0, period = \"daily\" }";

#[tokio::test]
async fn sqlite_budget_holds_under_200_concurrent_requests() {
    let dir = tempdir();
    let url = format!("sqlite://{}/g.db", dir.display());
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(ONE_DOLLAR, &url, ""), &[&mock]).await;
    failures_release(&mock, &[&gw]).await;
    budget_holds(&mock, &[&gw]).await;
}

#[tokio::test]
async fn postgres_budget_holds_across_two_instances() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    let mock = MockProvider::start(Profile::OpenAi).await;
    let a = Gateway::start(&config(ONE_DOLLAR, &url, ""), &[&mock]).await;
    let b = Gateway::start(&config(ONE_DOLLAR, &url, ""), &[&mock]).await;
    failures_release(&mock, &[&a, &b]).await;
    budget_holds(&mock, &[&a, &b]).await;
}

#[tokio::test]
async fn redis_budget_holds_across_two_instances() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    let Some(redis) = fresh_redis().await else {
        return;
    };
    let mock = MockProvider::start(Profile::OpenAi).await;
    let a = Gateway::start(&config(ONE_DOLLAR, &url, &redis), &[&mock]).await;
    let b = Gateway::start(&config(ONE_DOLLAR, &url, &redis), &[&mock]).await;
    failures_release(&mock, &[&a, &b]).await;
    budget_holds(&mock, &[&a, &b]).await;
    // A third instance (a restart) on the same Redis sees the same spend.
    let c = Gateway::start(&config(ONE_DOLLAR, &url, &redis), &[&mock]).await;
    let r = call(&c, &req()).await;
    assert_eq!(r.status(), 429);
}

#[tokio::test]
async fn redis_counters_lost_are_rebuilt_from_the_store() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    let Some(redis) = fresh_redis().await else {
        return;
    };
    let prefix = redis
        .split("prefix = \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| Reply::json(200, chat_body("ok", 10, 10)));
    let budget = "{ usd = 0.05, period = \"daily\" }";
    let gw = Gateway::start(&config(budget, &url, &redis), &[&mock]).await;
    for _ in 0..3 {
        assert_eq!(call(&gw, &req()).await.status(), 200);
    }
    gw.flush_records().await;
    // Redis loses everything (it keeps nothing on disk here): the counter is rebuilt from
    // the usage records, so the 3 requests still count.
    let keys = std::process::Command::new("redis-cli")
        .args(["--scan", "--pattern", &format!("{prefix}:*")])
        .output()
        .unwrap();
    for k in String::from_utf8_lossy(&keys.stdout).lines() {
        std::process::Command::new("redis-cli")
            .args(["DEL", k])
            .output()
            .unwrap();
    }
    let u = usage_of(&gw, KEY).await;
    assert_eq!(u["budgets"][0]["spent"], 0.03, "{u}");
    assert_eq!(call(&gw, &req()).await.status(), 200);
    assert_eq!(call(&gw, &req()).await.status(), 200);
    assert_eq!(call(&gw, &req()).await.status(), 429);
}

#[tokio::test]
async fn a_daily_budget_rolls_over_at_midnight_in_its_time_zone() {
    // 23:59:50 UTC on 21 Nov 2026.
    let t0: u64 = 1_795_305_590_000;
    let clock = Clock::manual(t0);
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| Reply::json(200, chat_body("ok", 10, 10)));
    let budget = "[{ tokens = 40, period = \"daily\" }, { usd = 1.0, period = \"monthly\", timezone = \"Europe/Paris\" }]";
    let gw = Gateway::start_with(
        &config(budget, "sqlite::memory:", ""),
        &[&mock],
        clock.clone(),
    )
    .await;
    assert_eq!(call(&gw, &req()).await.status(), 200);
    assert_eq!(call(&gw, &req()).await.status(), 200);
    let r = call(&gw, &req()).await;
    assert_eq!(r.status(), 429);
    // Retry-After is the period's end: 10 s to midnight.
    assert_eq!(r.headers()["retry-after"], "10");
    let b: Value = r.json().await.unwrap();
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains("key `k` daily budget of 40 tokens"), "{msg}");
    // Midnight passes: a new period, a new daily budget. The monthly one (in Paris, still
    // November) keeps counting: three requests.
    clock.set_ms(t0 + 15_000);
    assert_eq!(call(&gw, &req()).await.status(), 200);
    gw.flush_records().await;
    let u = usage_of(&gw, KEY).await;
    let daily = u["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["period"] == "daily")
        .unwrap()
        .clone();
    assert_eq!(daily["spent"], 20.0, "{u}");
    let monthly = u["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["period"] == "monthly")
        .unwrap()
        .clone();
    assert_eq!(monthly["timezone"], "Europe/Paris");
    assert_eq!(monthly["spent"], 0.03, "{u}");
}

#[tokio::test]
async fn a_stream_cut_by_the_client_is_charged_for_what_it_delivered() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let pieces: Vec<String> = (0..40).map(|i| format!("word{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let reply = Reply::stream(&refs).every(Duration::from_millis(30));
    mock.respond_with(move |_| reply.clone());
    let gw = Gateway::start(
        &config(
            "{ tokens = 100000, period = \"daily\" }",
            "sqlite::memory:",
            "",
        ),
        &[&mock],
    )
    .await;
    let mut body = req();
    body["stream"] = json!(true);
    let mut r = call(&gw, &body).await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // Read 5 content chunks, then hang up.
    let mut seen = 0;
    while seen < 6 {
        let chunk = r.chunk().await.unwrap().unwrap();
        seen += String::from_utf8_lossy(&chunk).matches("data: ").count();
    }
    drop(r);
    let rec = eventually(Duration::from_secs(5), || async {
        gw.state.store().usage_record(&id).await.unwrap()
    })
    .await
    .expect("no usage record within 5 s");
    assert_eq!(rec.status, "cancelled");
    assert!(rec.output_tokens >= 5, "{rec:?}");
    assert!(rec.input_tokens > 0, "{rec:?}");
    let u = usage_of(&gw, KEY).await;
    assert_eq!(
        u["budgets"][0]["spent"].as_f64().unwrap() as u64,
        rec.input_tokens + rec.output_tokens,
        "the cut stream counts against the budget: {u}"
    );
}

#[tokio::test]
async fn a_spent_budget_routes_to_its_fallback_target() {
    let main = MockProvider::start(Profile::OpenAi).await;
    let cheap = MockProvider::start(Profile::OpenAi).await;
    main.respond_with(|_| Reply::json(200, chat_body("main", 10, 10)));
    cheap.respond_with(|_| Reply::json(200, chat_body("cheap", 10, 10)));
    let text = config(
        "{ usd = 0.02, period = \"daily\", on_exhausted = { route_to = \"local/qwen\" } }",
        "sqlite::memory:",
        "",
    ) + "\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"{mock1}\"\nmodels = []\n";
    let gw = Gateway::start(&text, &[&main, &cheap]).await;
    for _ in 0..2 {
        let r = call(&gw, &req()).await;
        assert_eq!(r.headers()["x-gatehouse-provider"], "p");
    }
    gw.flush_records().await;
    let r = call(&gw, &req()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-provider"], "local");
    assert_eq!(r.headers()["x-gatehouse-model"], "qwen");
    assert_eq!(cheap.last_request().body["model"], "qwen");
}

#[tokio::test]
async fn a_spent_provider_budget_is_skipped_by_routing() {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    a.respond_with(|_| Reply::json(200, chat_body("a", 10, 10)));
    b.respond_with(|_| Reply::json(200, chat_body("b", 10, 10)));
    let text = "[providers.a]\nkind = \"openai-compatible\"\nbase_url = \"{mock0}\"\nmodels = []\nbudget = { tokens = 30, period = \"daily\" }\n\
        [providers.b]\nkind = \"openai-compatible\"\nbase_url = \"{mock1}\"\nmodels = []\n\
        [[routes]]\nmatch = { model = \"m\" }\ntargets = [\"a\", \"b\"]\n";
    let gw = Gateway::start(text, &[&a, &b]).await;
    let mut served = Vec::new();
    for _ in 0..3 {
        let r = gw.chat(&req()).await;
        assert_eq!(r.status(), 200);
        served.push(
            r.headers()["x-gatehouse-provider"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
        gw.flush_records().await;
    }
    // a's 30 tokens: the first request (20) fits, the second is admitted (20 < 30) and
    // spends it; the third goes to b.
    assert_eq!(served, ["a", "a", "b"]);
}

#[tokio::test]
async fn alerts_go_out_once_at_50_80_and_100_percent() {
    let hook = MockProvider::start(Profile::OpenAi).await;
    hook.respond_with(|_| Reply::json(200, json!({})));
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| Reply::json(200, chat_body("ok", 10, 10)));
    let text = config("{ usd = 0.05, period = \"daily\" }", "sqlite::memory:", "").replace(
        "[pricing.m]",
        "[alerts]\nwebhook = \"{mock1}/hook\"\n[pricing.m]",
    );
    let gw = Gateway::start(&text, &[&mock, &hook]).await;
    for _ in 0..5 {
        assert_eq!(call(&gw, &req()).await.status(), 200);
        gw.flush_records().await;
    }
    assert_eq!(call(&gw, &req()).await.status(), 429);
    let got = eventually(Duration::from_secs(5), || async {
        let r = hook.requests();
        (r.len() >= 3).then_some(r)
    })
    .await
    .expect("three alerts");
    let thresholds: Vec<u64> = got
        .iter()
        .map(|r| r.body["threshold_percent"].as_u64().unwrap())
        .collect();
    assert_eq!(thresholds, [50, 80, 100]);
    assert_eq!(got[0].body["scope"], "key");
    assert_eq!(got[0].body["name"], "k");
    assert_eq!(got[2].body["limit"], 0.05);
    // Every settlement done, so every alert that would go out went out.
    background_done().await;
    assert_eq!(hook.requests().len(), 3, "each alert once");
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gh-budget-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn cli_keys_carry_budgets_and_usage_reports_the_spend() {
    let dir = tempdir();
    let db = dir.join("u.db");
    let cfg_path = dir.join("u.toml");
    let text = format!(
        "[providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{{mock0}}\"\nmodels = [\"*\"]\n\
         [pricing.m]\ninput = 500\noutput = 500\n[store]\nurl = \"sqlite://{}\"\n",
        db.display()
    );
    std::fs::write(&cfg_path, text.replace("{mock0}", "http://127.0.0.1:9/v1")).unwrap();
    let run = |args: &[&str]| run_cli(&cfg_path, args);
    let created: Value = serde_json::from_str(&run(&[
        "keys",
        "create",
        "--name",
        "ci",
        "--budget",
        "0.02usd/daily",
        "--budget",
        "1000tokens/monthly",
        "--rpm",
        "100",
        "--json",
    ]))
    .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert_eq!(created["limits"]["rate_limit"]["rpm"], 100);
    assert_eq!(created["limits"]["budgets"][0]["usd"], 0.02);

    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| Reply::json(200, chat_body("ok", 10, 10)));
    let gw = Gateway::start(&text, &[&mock]).await;
    let send = || {
        client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .header("x-gatehouse-tags", "feature=search, env=ci")
            .json(&req())
            .send()
    };
    for _ in 0..2 {
        let r = send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-ratelimit-limit-requests"], "100");
        gw.flush_records().await;
    }
    let r = send().await.unwrap();
    assert_eq!(r.status(), 429);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("key `ci` daily budget of $0.02"),
        "{b}"
    );

    let report: Value = serde_json::from_str(&run(&["usage", "--by", "tag", "--json"])).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{report}");
    assert!(
        rows.iter()
            .all(|r| r["requests"] == 2 && r["cost_usd"] == 0.02),
        "{report}"
    );
    let table = run(&["usage", "--by", "key", "--since", "1d"]);
    assert!(
        table.contains("ci") && table.contains("0.020000"),
        "{table}"
    );
}

#[tokio::test]
async fn routing_rules_see_a_spent_budget() {
    let main = MockProvider::start(Profile::OpenAi).await;
    let cheap = MockProvider::start(Profile::OpenAi).await;
    main.respond_with(|_| Reply::json(200, chat_body("main", 10, 10)));
    cheap.respond_with(|_| Reply::json(200, chat_body("cheap", 10, 10)));
    let text = config("{ usd = 0.01, period = \"daily\" }", "sqlite::memory:", "")
        + "\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"{mock1}\"\nmodels = []\n\
           [[routes]]\nmatch = { model = \"m\", budget_exhausted = true }\ntargets = [\"local/small\"]\n\
           [[routes]]\nmatch = { model = \"m\", budget_exhausted = false }\ntargets = [\"p\"]\n";
    let gw = Gateway::start(&text, &[&main, &cheap]).await;
    let r = call(&gw, &req()).await;
    assert_eq!(r.headers()["x-gatehouse-provider"], "p");
    gw.flush_records().await;
    // Spent: the rule for spent budgets serves it instead of a 429.
    let r = call(&gw, &req()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-gatehouse-provider"], "local");
    assert_eq!(cheap.last_request().body["model"], "small");
    let u = usage_of(&gw, KEY).await;
    assert_eq!(u["budgets"][0]["exhausted"], true, "{u}");
}

#[tokio::test]
async fn routing_rules_name_whose_budget_is_spent() {
    let main = MockProvider::start(Profile::OpenAi).await;
    let cheap = MockProvider::start(Profile::OpenAi).await;
    main.respond_with(|_| Reply::json(200, chat_body("main", 10, 10)));
    cheap.respond_with(|_| Reply::json(200, chat_body("cheap", 10, 10)));
    let local =
        "\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"{mock1}\"\nmodels = []\n";
    // The team's budget is spent: the team's rule serves, not the key's.
    let text = config("[]", "sqlite::memory:", "").replace(
        "[teams.t]\n",
        "[teams.t]\nbudget = { usd = 0.01, period = \"daily\" }\n",
    ) + local
        + "[[routes]]\nmatch = { model = \"m\", budget_exhausted = \"key\" }\ntargets = [\"local/key-spent\"]\n\
           [[routes]]\nmatch = { model = \"m\", budget_exhausted = \"team\" }\ntargets = [\"local/team-spent\"]\n";
    let gw = Gateway::start(&text, &[&main, &cheap]).await;
    assert_eq!(
        call(&gw, &req()).await.headers()["x-gatehouse-provider"],
        "p"
    );
    gw.flush_records().await;
    let r = call(&gw, &req()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(cheap.last_request().body["model"], "team-spent");

    // The key's own budget is spent and no rule serves a spent key: refused.
    let text = config("{ usd = 0.01, period = \"daily\" }", "sqlite::memory:", "")
        + local
        + "[[routes]]\nmatch = { model = \"m\", budget_exhausted = \"team\" }\ntargets = [\"local/team-spent\"]\n";
    let gw = Gateway::start(&text, &[&main, &cheap]).await;
    assert_eq!(call(&gw, &req()).await.status(), 200);
    gw.flush_records().await;
    let r = call(&gw, &req()).await;
    assert_eq!(r.status(), 429);
    assert_eq!(
        main.calls() + cheap.calls(),
        3,
        "the refused request reached no provider"
    );
}

#[tokio::test]
async fn routing_rules_see_a_providers_spent_budget() {
    let main = MockProvider::start(Profile::OpenAi).await;
    let cheap = MockProvider::start(Profile::OpenAi).await;
    main.respond_with(|_| Reply::json(200, chat_body("main", 600, 500)));
    cheap.respond_with(|_| Reply::json(200, chat_body("cheap", 10, 10)));
    let text = config("[]", "sqlite::memory:", "").replace(
        "models = [\"*\"]\n",
        "models = [\"*\"]\nbudget = { tokens = 1000, period = \"daily\" }\n",
    ) + "\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"{mock1}\"\nmodels = []\n\
           [[routes]]\nmatch = { model = \"m\", budget_available = \"provider:p\" }\ntargets = [\"p\"]\n\
           [[routes]]\nmatch = { model = \"m\", budget_exhausted = \"provider:p\" }\ntargets = [\"local/p-spent\"]\n";
    let gw = Gateway::start(&text, &[&main, &cheap]).await;
    assert_eq!(
        call(&gw, &req()).await.headers()["x-gatehouse-provider"],
        "p"
    );
    gw.flush_records().await;
    // 1,100 of its 1,000 daily tokens are spent: the second rule serves.
    for _ in 0..2 {
        let r = call(&gw, &req()).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-gatehouse-provider"], "local");
        assert_eq!(cheap.last_request().body["model"], "p-spent");
    }
    assert_eq!(main.calls(), 1);
}
