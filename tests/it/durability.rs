//! `kill -9` under load (RELIABILITY 25): the gateway binary, on a SQLite file with its
//! budget counters in Redis, is killed mid-load and started again; load goes on until the
//! budget refuses. Nothing is overspent (the reservations of requests in flight at the kill
//! stay in Redis until their lease ends), at most about one flush interval of request
//! records is lost, and the SQLite file passes `PRAGMA integrity_check`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cli::{bin, start};
use crate::support::*;

const KEY: &str = "sk-kill9-budgeted-key-00000001";
/// Every reply reports 10 + 10 tokens: $0.01 at `m`'s price.
const COST: f64 = 0.01;
/// The worst case a request reserves: (8 input estimated + 20 max_tokens) × $500/M.
const WORST: f64 = 0.014;
const BUDGET: f64 = 3.0;
const WORKERS: usize = 8;
/// Each worker's pause between requests: about 100 requests a second in all.
const PACE: Duration = Duration::from_millis(50);

/// What the workers of one run saw.
#[derive(Default)]
struct Run {
    /// Request ids of the replies that were 200.
    served: Mutex<Vec<String>>,
    refused: AtomicU64,
    failed: AtomicU64,
}

/// `WORKERS` workers against `url` until `stop` is set (or, with `until_refused`, each has
/// been refused by the budget three times).
async fn load(url: &str, run: Arc<Run>, stop: Arc<AtomicBool>, until_refused: bool) {
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let (url, run, stop) = (url.to_owned(), Arc::clone(&run), Arc::clone(&stop));
        tasks.push(spawn(async move {
            let c = client();
            let mut refusals = 0;
            while !stop.load(Ordering::SeqCst) && refusals < 3 {
                let r = c
                    .post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(KEY)
                    .json(&serde_json::json!({"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let id = r.headers()["x-gatehouse-request-id"]
                            .to_str()
                            .unwrap()
                            .to_owned();
                        run.served.lock().unwrap().push(id);
                    }
                    Ok(r) if r.status() == 429 => {
                        let b: serde_json::Value = r.json().await.unwrap();
                        assert_eq!(b["error"]["code"], "budget_exceeded", "{b}");
                        run.refused.fetch_add(1, Ordering::Relaxed);
                        if until_refused {
                            refusals += 1;
                        }
                    }
                    Ok(r) => panic!("unexpected {}: {}", r.status(), r.text().await.unwrap()),
                    // The process was killed under it.
                    Err(_) => {
                        run.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(PACE).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn sqlite(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test]
async fn kill_9_under_load_with_redis_overspends_nothing_and_loses_at_most_a_flush() {
    let Some(redis) = fresh_redis().await else {
        return;
    };
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| {
        Reply::json(200, crate::support::mock::chat_body("ok", 10, 10))
            .delay(Duration::from_millis(20))
    });
    let dir = std::env::temp_dir().join(format!("gh-kill9-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("g.db");
    let cfg = dir.join("gatehouse.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\
             [store]\nurl = \"sqlite://{}\"\n{redis}\
             [providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"*\"]\n\
             [pricing.m]\ninput = 500\noutput = 500\n\
             [teams.t]\n\
             [[keys]]\nname = \"k\"\nkey = \"{KEY}\"\nteam = \"t\"\nbudget = {{ usd = {BUDGET}, period = \"daily\" }}\n",
            db.display(),
            mock.base_url()
        ),
    )
    .unwrap();
    let serve = || {
        let mut cmd = bin();
        cmd.args(["serve", "--log-format", "json", "--config"])
            .arg(&cfg)
            .env("MOCK_KEY", "sk-provider-secret-0000");
        cmd
    };

    // Run 1: load, then kill -9 half-way through the budget.
    let (gw, url) = start(serve()).await;
    let first = Arc::new(Run::default());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let loader = spawn({
        let (url, first, stop) = (url.clone(), Arc::clone(&first), Arc::clone(&stop));
        async move { load(&url, first, stop, false).await }
    });
    while first.served.lock().unwrap().len() < 150 {
        assert!(started.elapsed() < Duration::from_secs(60), "load too slow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let served_before_kill = first.served.lock().unwrap().len();
    let rate = served_before_kill as f64 / started.elapsed().as_secs_f64();
    gw.signal("-KILL");
    let status = gw.exit().await;
    assert!(!status.success(), "killed: {status:?}");
    stop.store(true, Ordering::SeqCst);
    loader.await.unwrap();

    // The file is sound after the kill.
    {
        let c = sqlite(&db);
        let check: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    // Run 2: the same config, until the budget refuses.
    let (gw, url) = start(serve()).await;
    let second = Arc::new(Run::default());
    load(
        &url,
        Arc::clone(&second),
        Arc::new(AtomicBool::new(false)),
        true,
    )
    .await;
    gw.signal("-TERM");
    assert!(gw.exit().await.success());

    // What reached the provider, what the clients were served, what the log holds.
    let provider_calls = mock.calls() as f64;
    let served1 = first.served.lock().unwrap().clone();
    let served2 = second.served.lock().unwrap().len();
    let c = sqlite(&db);
    let recorded: f64 = c
        .query_row(
            "SELECT COALESCE(SUM(cost_nanos), 0) FROM usage_records",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as f64
        / 1e9;
    let mut lost = 0;
    for id in &served1 {
        let n: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM usage_records WHERE request_id = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        if n == 0 {
            lost += 1;
        }
    }
    eprintln!(
        "figure: kill -9 at {rate:.0} req/s after {} served; run 1 served {}, {} failed at the kill; \
         run 2 served {served2}, refused {}; provider calls {provider_calls} (${:.2}); \
         recorded ${recorded:.2}; budget ${BUDGET}; rows lost {lost} of run 1's served \
         (flush linger 50 ms = {:.1} rows at this rate)",
        served_before_kill,
        served1.len(),
        first.failed.load(Ordering::Relaxed),
        second.refused.load(Ordering::Relaxed),
        provider_calls * COST,
        rate * 0.05,
    );
    // No overspend: what the provider was asked to do, and what the log says was spent,
    // stay within the budget plus one request's worst case.
    assert!(
        provider_calls * COST <= BUDGET + WORST + 1e-9,
        "provider spend ${} over the ${BUDGET} budget",
        provider_calls * COST
    );
    assert!(
        recorded <= BUDGET + WORST + 1e-9,
        "recorded ${recorded} over the ${BUDGET} budget"
    );
    assert!(
        second.refused.load(Ordering::Relaxed) > 0,
        "run 2 reached the budget"
    );
    // At most about a flush interval of records is lost (RELIABILITY 25: ≤ 100 rows).
    assert!(
        lost <= 100,
        "{lost} records of served requests lost at the kill"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
