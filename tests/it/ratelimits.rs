//! Rate limits (RELIABILITY 5, 6, 7): a per-minute limit enforced across two instances
//! through Redis, tokens per minute reserved up front, concurrency, and what happens when
//! Redis freezes: budgets fail closed at once, rate limits fall back to a local share, and
//! shared enforcement resumes when Redis answers again.

use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use gatehouse::governance::Clock;
use serde_json::{Value, json};

use crate::support::mock::chat_body;
use crate::support::*;

const RPM_KEY: &str = "sk-rate-key-rpm-0123456789";
const BUDGET_KEY: &str = "sk-rate-key-budget-0123456789";

fn config(limit: &str, redis: &str) -> String {
    format!(
        "[server]\nstream_keepalive = \"2s\"\n\
         [providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{{mock0}}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"*\"]\n\
         [pricing.m]\ninput = 1\noutput = 1\n\
         [teams.t]\n\
         [[keys]]\nname = \"r\"\nkey = \"{RPM_KEY}\"\nteam = \"t\"\nrate_limit = {limit}\n\
         [[keys]]\nname = \"b\"\nkey = \"{BUDGET_KEY}\"\nteam = \"t\"\nbudget = {{ usd = 100, period = \"daily\" }}\n\
         {redis}"
    )
}

fn req(max_tokens: u64) -> Value {
    json!({"model": "m", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]})
}

async fn call(gw: &Gateway, key: &str, body: &Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn redis_rpm_holds_across_two_instances() {
    let Some(redis) = fresh_redis().await else {
        return;
    };
    // 50 s into a minute, so the 10 s of traffic crosses a minute boundary.
    let t0 = 29_921_000 * 60_000 + 50_000;
    let clock = Clock::manual(t0);
    let mock = MockProvider::start(Profile::OpenAi).await;
    let text = config("{ rpm = 60 }", &redis);
    let a = Gateway::start_with(&text, &[&mock], clock.clone()).await;
    let b = Gateway::start_with(&text, &[&mock], clock.clone()).await;
    let (mut ok, mut limited) = (0, 0);
    // 200 requests in 10 s (50 ms apart on the manual clock), alternating instances.
    for i in 0..200u64 {
        clock.set_ms(t0 + i * 50);
        let gw = if i % 2 == 0 { &a } else { &b };
        let r = call(gw, RPM_KEY, &req(5)).await;
        match r.status().as_u16() {
            200 => {
                ok += 1;
                assert_eq!(r.headers()["x-ratelimit-limit-requests"], "60");
            }
            429 => {
                limited += 1;
                let secs: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&secs), "{secs}");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("60 requests per minute")
                );
            }
            s => panic!("status {s}"),
        }
    }
    assert!(ok <= 62, "{ok} succeeded");
    assert!(ok >= 60, "{ok} succeeded");
    assert_eq!(ok + limited, 200);
}

async fn tpm_reserves_up_front(redis: &str) {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| {
        Reply::json(200, chat_body("ok", 8, 10)).delay(Duration::from_millis(300))
    });
    let gw = Arc::new(Gateway::start(&config("{ tpm = 1000 }", redis), &[&mock]).await);
    let admitted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (gw, admitted) = (Arc::clone(&gw), Arc::clone(&admitted));
        tasks.push(spawn(async move {
            let r = call(&gw, RPM_KEY, &req(300)).await;
            match r.status().as_u16() {
                200 => {
                    admitted.fetch_add(1, Ordering::Relaxed);
                }
                429 => assert!(r.headers().contains_key("retry-after")),
                s => panic!("status {s}"),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Each reserves 8 (input estimate) + 300 (max_tokens): three fit in 1000.
    assert_eq!(admitted.load(Ordering::Relaxed), 3);
    // They used 18 tokens each: the window has room again at once.
    gw.flush_records().await;
    let r = call(&gw, RPM_KEY, &req(300)).await;
    assert_eq!(r.status(), 200);
    let left: u64 = r.headers()["x-ratelimit-remaining-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(left < 1000 - 3 * 18 - 308 + 1 && left > 500, "{left}");
    // A request that alone needs more than the limit is told so.
    let r = call(&gw, RPM_KEY, &req(5000)).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lower max_tokens"),
        "{body}"
    );
}

#[tokio::test]
async fn tpm_reserves_up_front_locally() {
    tpm_reserves_up_front("").await;
}

#[tokio::test]
async fn redis_tpm_reserves_up_front() {
    let Some(redis) = fresh_redis().await else {
        return;
    };
    tpm_reserves_up_front(&redis).await;
}

#[tokio::test]
async fn concurrent_requests_are_capped_and_released() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| {
        Reply::json(200, chat_body("ok", 8, 10)).delay(Duration::from_millis(300))
    });
    let gw = Arc::new(Gateway::start(&config("{ concurrent = 2 }", ""), &[&mock]).await);
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let gw = Arc::clone(&gw);
        tasks.push(spawn(async move {
            call(&gw, RPM_KEY, &req(5)).await.status().as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort_unstable();
    assert_eq!(codes, [200, 200, 429, 429, 429]);
    gw.flush_records().await;
    assert_eq!(call(&gw, RPM_KEY, &req(5)).await.status(), 200);
}

/// A Redis server of the test's own, on a free port, so that freezing it (SIGSTOP) touches
/// no other test.
struct OwnRedis {
    child: Child,
    port: u16,
}

impl OwnRedis {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ])
            .stdout(std::process::Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("notice: redis-server not found ({e}); skipped");
                return None;
            }
            Err(e) => panic!("redis-server must be installed in CI: {e}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { child, port })
    }

    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    fn section(&self) -> String {
        format!(
            "[redis]\nurl = \"redis://127.0.0.1:{}\"\ntimeout = \"200ms\"\n",
            self.port
        )
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ready(gw: &Gateway) -> (u16, Value) {
    let r = client().get(gw.url("/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_frozen_redis_fails_budgets_closed_and_limits_over_to_local_shares() {
    let Some(redis) = OwnRedis::start() else {
        return;
    };
    let mock = MockProvider::start(Profile::OpenAi).await;
    let text = config("{ rpm = 4 }", &redis.section());
    let a = Gateway::start(&text, &[&mock]).await;
    // A second instance: while Redis is up, the two share the limits.
    let _b = Gateway::start(&text, &[&mock]).await;
    // Both instances' heartbeats are seen (the health loop runs every second).
    skip(Duration::from_millis(1_300)).await;
    let both = eventually(Duration::from_secs(5), || async {
        (a.state.governance().redis_instances() == Some(2)).then_some(())
    })
    .await;
    assert!(
        both.is_some(),
        "the other instance's heartbeat was not seen"
    );
    assert_eq!(ready(&a).await.0, 200);
    assert_eq!(call(&a, BUDGET_KEY, &req(5)).await.status(), 200);

    redis.signal("-STOP");
    // Budgets: 503 with a clear code, after at most the Redis timeout.
    let started = Instant::now();
    let r = call(&a, BUDGET_KEY, &req(5)).await;
    let took = started.elapsed();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_unavailable", "{body}");
    assert!(took < Duration::from_millis(700), "stalled {took:?}");
    // Once Redis is known down, no request waits on it at all.
    let started = Instant::now();
    assert_eq!(call(&a, BUDGET_KEY, &req(5)).await.status(), 503);
    assert!(started.elapsed() < Duration::from_millis(150));
    let (s, body) = ready(&a).await;
    assert_eq!(s, 503);
    assert_eq!(body["status"], "degraded");
    // Rate limits: each of the two instances allows its share, 4 / 2 = 2 a minute.
    let body = req(5);
    let codes_a: Vec<u16> =
        futures_util::future::join_all((0..3).map(|_| call(&a, RPM_KEY, &body)))
            .await
            .iter()
            .map(|r| r.status().as_u16())
            .collect();
    let mut sorted = codes_a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [200, 200, 429], "{codes_a:?}");

    redis.signal("-CONT");
    // Shared enforcement resumes within 10 s, without a restart.
    let back = eventually(Duration::from_secs(10), || async {
        (ready(&a).await.0 == 200 && call(&a, BUDGET_KEY, &req(5)).await.status() == 200)
            .then_some(())
    })
    .await;
    assert!(back.is_some(), "did not recover within 10 s");
}

/// How long `a_client_pause_under_sustained_load_stalls_no_request` pauses Redis: 5 s in the
/// suite; `GATEHOUSE_REDIS_PAUSE_SECS=30` for RELIABILITY 7's 30 s.
fn pause_secs() -> u64 {
    std::env::var("GATEHOUSE_REDIS_PAUSE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

#[tokio::test]
async fn a_client_pause_under_sustained_load_stalls_no_request() {
    let Some(redis) = OwnRedis::start() else {
        return;
    };
    let mock = MockProvider::start(Profile::OpenAi).await;
    // A limit the load stays under, even at a local share: every rate-limited request should
    // pass, shared or not.
    let text = config("{ rpm = 1000000 }", &redis.section());
    let gw = Arc::new(Gateway::start(&text, &[&mock]).await);
    assert_eq!(call(&gw, BUDGET_KEY, &req(5)).await.status(), 200);
    let pause = Duration::from_secs(pause_secs());
    let start = Instant::now();
    let load_for = pause + Duration::from_secs(3);
    // Eight clients, each alternating a budgeted and a rate-limited key, without pause.
    let mut workers = Vec::new();
    for w in 0..8 {
        let gw = Arc::clone(&gw);
        workers.push(spawn(async move {
            let mut seen = Vec::new();
            let mut i = w;
            while start.elapsed() < load_for {
                let key = if i % 2 == 0 { BUDGET_KEY } else { RPM_KEY };
                let sent = start.elapsed();
                let r = call(&gw, key, &req(5)).await;
                let status = r.status().as_u16();
                let code = if status == 200 {
                    String::new()
                } else {
                    let body: Value = r.json().await.unwrap_or_default();
                    body["error"]["code"].as_str().unwrap_or("").to_owned()
                };
                seen.push((
                    sent,
                    start.elapsed() - sent,
                    key == BUDGET_KEY,
                    status,
                    code,
                ));
                i += 1;
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // CLIENT PAUSE ALL: Redis accepts connections and reads commands but answers none.
    let paused_at = start.elapsed();
    let out = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "CLIENT", "PAUSE"])
        .arg(pause.as_millis().to_string())
        .arg("ALL")
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (s, body) = ready(&gw).await;
    assert_eq!(
        (s, body["status"].as_str()),
        (503, Some("degraded")),
        "{body}"
    );
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let during: Vec<_> = all
        .iter()
        .filter(|(sent, ..)| *sent >= paused_at && *sent < paused_at + pause)
        .collect();
    let mut lat: Vec<Duration> = all.iter().map(|(_, l, ..)| *l).collect();
    lat.sort_unstable();
    let max = *lat.last().unwrap();
    let p99 = lat[lat.len() * 99 / 100];
    let budget_503 = during
        .iter()
        .filter(|(_, _, b, s, c)| *b && *s == 503 && c == "budget_unavailable")
        .count();
    let limited_ok = during
        .iter()
        .filter(|(_, _, b, s, _)| !*b && *s == 200)
        .count();
    eprintln!(
        "FIGURES Redis paused {pause:?} under 8 clients: {} requests, {} during the pause \
         ({budget_503} budgeted ones 503 budget_unavailable, {limited_ok} rate-limited ones 200); \
         latency p99 {p99:?}, max {max:?}",
        all.len(),
        during.len()
    );
    // No request waited much past the Redis timeout (200 ms) plus the provider's time.
    assert!(
        max < Duration::from_millis(800),
        "a request stalled {max:?}"
    );
    // Budgets failed closed, rate limits went on at this instance's share, nothing else.
    for (_, _, budgeted, status, code) in &during {
        match (budgeted, status) {
            (true, 503) => assert_eq!(code, "budget_unavailable"),
            (true, 200) | (false, 200) => {}
            other => panic!("unexpected {other:?} {code}"),
        }
    }
    assert!(
        budget_503 > 0 && limited_ok > 0,
        "{budget_503} {limited_ok}"
    );
    // Shared enforcement resumes within 10 s of the pause's end.
    let resumed = eventually(Duration::from_secs(10), || async {
        (ready(&gw).await.0 == 200 && call(&gw, BUDGET_KEY, &req(5)).await.status() == 200)
            .then_some(())
    })
    .await;
    assert!(
        resumed.is_some(),
        "did not recover within 10 s of the pause"
    );
    eprintln!(
        "FIGURES recovered {:?} after the pause ended",
        start.elapsed().saturating_sub(paused_at + pause)
    );
}

#[tokio::test]
async fn redis_down_at_start_leaves_the_gateway_running_degraded() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mock = MockProvider::start(Profile::OpenAi).await;
    let section = format!("[redis]\nurl = \"redis://127.0.0.1:{port}\"\ntimeout = \"200ms\"\n");
    let gw = Gateway::start(&config("{ rpm = 4 }", &section), &[&mock]).await;
    let (s, body) = ready(&gw).await;
    assert_eq!(s, 503);
    assert_eq!(body["redis_reachable"], false);
    assert_eq!(call(&gw, BUDGET_KEY, &req(5)).await.status(), 503);
    // Keys without budgets keep working, limited locally.
    assert_eq!(call(&gw, RPM_KEY, &req(5)).await.status(), 200);
}

/// 200 concurrent requests against an rpm of 50, on `gws`: exactly 50 pass (one minute, a
/// still clock, so the window is exact).
async fn exactly_the_limit_passes(gws: &[&Gateway]) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let url = gws[i % gws.len()].url("/v1/chat/completions");
        tasks.push(spawn(async move {
            let r = client()
                .post(&url)
                .bearer_auth(RPM_KEY)
                .json(&req(5))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => {}
            s => panic!("status {s}"),
        }
    }
    assert_eq!(ok, 50);
}

#[tokio::test]
async fn concurrent_requests_meet_an_exact_rpm_locally() {
    let clock = Clock::manual(29_921_000 * 60_000);
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start_with(&config("{ rpm = 50 }", ""), &[&mock], clock).await;
    exactly_the_limit_passes(&[&gw]).await;
}

#[tokio::test]
async fn redis_concurrent_requests_meet_an_exact_rpm_across_two_instances() {
    let Some(redis) = fresh_redis().await else {
        return;
    };
    let clock = Clock::manual(29_921_000 * 60_000);
    let mock = MockProvider::start(Profile::OpenAi).await;
    let text = config("{ rpm = 50 }", &redis);
    let a = Gateway::start_with(&text, &[&mock], clock.clone()).await;
    let b = Gateway::start_with(&text, &[&mock], clock).await;
    exactly_the_limit_passes(&[&a, &b]).await;
}
