//! Load balancing, retries and their limits (issue #4; RELIABILITY 14-18): provider keys
//! and deployments, key cool-down after 429, the retry budget, the attempt cap, outlier
//! ejection, per-route timeouts, the loop guard, and how each decision is recorded.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::*;

const ADMIN: &str = "admin-token-for-routing-tests-0001";

fn key_of(r: &mock::Recorded) -> String {
    r.headers["authorization"]
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned()
}

fn count<T: std::hash::Hash + Eq>(items: impl IntoIterator<Item = T>) -> HashMap<T, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn keys_share_by_weight_and_a_429_rests_its_key() {
    let m = MockProvider::start(Profile::OpenAi).await;
    let cfg = r#"
[providers.p]
kind = "openai-compatible"
base_url = "{mock0}"
models = ["*"]
api_keys = [{ key = "key-one", weight = 2 }, "key-two"]
"#;
    let gw = Gateway::start(cfg, &[&m]).await;
    for _ in 0..30 {
        assert_eq!(gw.chat(&chat_req("x", false)).await.status(), 200);
    }
    let seen = count(m.requests().iter().map(key_of));
    assert_eq!(seen["key-one"], 20, "{seen:?}");
    assert_eq!(seen["key-two"], 10, "{seen:?}");

    // key-one is next (smooth round robin: one, two, one, one, two, one, ...).
    m.push(Reply::error(429, "slow down").header("retry-after", "30"));
    let r = gw.chat(&chat_req("x", false)).await;
    assert_eq!(r.status(), 200, "the provider's other key serves at once");
    let reqs = m.requests();
    let last_two: Vec<String> = reqs[reqs.len() - 2..].iter().map(key_of).collect();
    assert_eq!(last_two, ["key-one", "key-two"]);
    for _ in 0..10 {
        assert_eq!(gw.chat(&chat_req("x", false)).await.status(), 200);
    }
    let after: Vec<String> = m.requests()[reqs.len()..].iter().map(key_of).collect();
    assert!(
        after.iter().all(|k| k == "key-two"),
        "key-one rests for its Retry-After: {after:?}"
    );
    // Its 30 s over, it serves again.
    skip(Duration::from_secs(31)).await;
    let before = m.requests().len();
    for _ in 0..3 {
        assert_eq!(gw.chat(&chat_req("x", false)).await.status(), 200);
    }
    let rested: Vec<String> = m.requests()[before..].iter().map(key_of).collect();
    assert!(
        rested.iter().any(|k| k == "key-one"),
        "key-one is back after its Retry-After: {rested:?}"
    );
}

#[tokio::test]
async fn deployments_balance_round_robin_least_in_flight_and_lowest_latency() {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    let cfg = r#"
[providers.a]
kind = "openai-compatible"
base_url = "{mock0}"
[providers.b]
kind = "openai-compatible"
base_url = "{mock1}"
[[routes]]
match = { model = "rr" }
targets = [{ target = "a/m", weight = 3 }, "b/m"]
balance = "round_robin"
[[routes]]
match = { model = "least" }
targets = ["a/m", "b/m"]
balance = "least_in_flight"
[[routes]]
match = { model = "fast" }
targets = ["a/m", "b/m"]
balance = "lowest_latency"
"#;
    let gw = Gateway::start(cfg, &[&a, &b]).await;
    for _ in 0..40 {
        assert_eq!(gw.chat(&chat_req("rr", false)).await.status(), 200);
    }
    assert_eq!((a.calls(), b.calls()), (30, 10));

    // a answers slowly: while its requests are in flight, b takes the new ones.
    a.respond_with(|_| Reply::chat("slow").delay(Duration::from_millis(600)));
    let (a0, b0) = (a.calls(), b.calls());
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let url = gw.url("/v1/chat/completions");
        tasks.push(spawn(async move {
            client()
                .post(url)
                .json(&chat_req("least", false))
                .send()
                .await
                .unwrap()
                .status()
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let (on_a, on_b) = (a.calls() - a0, b.calls() - b0);
    assert!(
        on_a <= 2 && on_b >= 8,
        "least in flight: a {on_a}, b {on_b}"
    );

    // Lowest latency: after one sample of each, the fast one takes (nearly) all.
    let (a0, b0) = (a.calls(), b.calls());
    for _ in 0..40 {
        assert_eq!(gw.chat(&chat_req("fast", false)).await.status(), 200);
    }
    let (on_a, on_b) = (a.calls() - a0, b.calls() - b0);
    assert!(
        on_b >= 30,
        "lowest latency: a {on_a}, b {on_b} (1 in 20 explores)"
    );
}

const FAILING: &str = r#"
[server]
admin_token = "admin-token-for-routing-tests-0001"
[providers.a]
kind = "openai-compatible"
base_url = "{mock0}"
[providers.b]
kind = "openai-compatible"
base_url = "{mock1}"
[[routes]]
name = "chain"
match = { model = "m" }
targets = ["a/first", "b/second"]
"#;

#[tokio::test]
async fn the_retry_budget_caps_attempts_when_every_provider_fails() {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    a.respond_with(|_| Reply::error(503, "down"));
    b.respond_with(|_| Reply::error(503, "down"));
    // Ejection off the table: this measures the budget alone.
    let cfg = format!("{FAILING}[routing]\noutlier = {{ consecutive_failures = 100000 }}\n");
    let gw = Gateway::start(&cfg, &[&a, &b]).await;
    let n = 200;
    for _ in 0..n {
        assert_eq!(gw.chat(&chat_req("m", false)).await.status(), 502);
    }
    let attempts = a.calls() + b.calls();
    // RELIABILITY 14: at most 20 % more than the requests, plus 3.
    assert!(
        attempts <= n + n / 5 + 3,
        "{attempts} attempts for {n} requests"
    );
    assert!(attempts > n, "some retries were allowed: {attempts}");
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics.contains("gatehouse_retry_budget_exhausted_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn at_most_five_attempts_and_each_backend_key_once() {
    let mocks: Vec<MockProvider> =
        futures_util::future::join_all((0..4).map(|_| MockProvider::start(Profile::OpenAi))).await;
    for m in &mocks {
        m.respond_with(|_| Reply::error(500, "boom"));
    }
    let mut cfg = String::from("[routing]\nretry_budget = { min = 1000 }\n");
    for i in 0..4 {
        cfg.push_str(&format!(
            "[providers.p{i}]\nkind = \"openai-compatible\"\nbase_url = \"{{mock{i}}}\"\napi_keys = [\"k{i}a\", \"k{i}b\"]\n"
        ));
    }
    cfg.push_str(
        "[[routes]]\nmatch = { model = \"m\" }\ntargets = [\"p0\", \"p1\", \"p2\", \"p3\"]\n",
    );
    let refs: Vec<&MockProvider> = mocks.iter().collect();
    let gw = Gateway::start(&cfg, &refs).await;
    let r = gw.chat(&chat_req("m", false)).await;
    assert_eq!(r.status(), 502);
    let calls: Vec<usize> = mocks.iter().map(MockProvider::calls).collect();
    // A 5xx moves to the next deployment (another key of a failing backend would not help).
    assert_eq!(calls, [1, 1, 1, 1]);
    // With 429s the keys are tried too, until five attempts.
    for m in &mocks {
        m.respond_with(|_| Reply::error(429, "busy").header("retry-after", "1"));
    }
    let before: usize = mocks.iter().map(MockProvider::calls).sum();
    let r = gw.chat(&chat_req("m", false)).await;
    assert_eq!(r.status(), 429);
    let after: usize = mocks.iter().map(MockProvider::calls).sum();
    assert_eq!(after - before, 5, "five attempts at most");
    let keys: Vec<String> = mocks
        .iter()
        .flat_map(|m| m.requests().into_iter().skip(1))
        .map(|r| key_of(&r))
        .collect();
    let unique: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(
        unique.len(),
        keys.len(),
        "no (backend, key) twice: {keys:?}"
    );
}

/// Two backends, `a` failing every request with 503 and `b` healthy, behind a gateway that
/// ejects after 5 consecutive failures for 30 s (retries unbounded by the budget).
async fn failing_and_healthy() -> (MockProvider, MockProvider, Gateway) {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    a.respond_with(|_| Reply::error(503, "down"));
    let cfg = format!(
        "{FAILING}[routing]\nretry_budget = {{ min = 1000 }}\noutlier = {{ consecutive_failures = 5, ejection = \"30s\" }}\n"
    );
    let gw = Gateway::start(&cfg, &[&a, &b]).await;
    (a, b, gw)
}

#[tokio::test]
async fn a_failing_backend_is_ejected_and_skipped() {
    let (a, _b, gw) = failing_and_healthy().await;
    for _ in 0..200 {
        let r = gw.chat(&chat_req("m", false)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-gatehouse-provider"], "b");
    }
    // Five failures eject a; none of the other 195 requests reach it (< 1 %).
    assert_eq!(a.calls(), 5);
    let status: serde_json::Value = client()
        .get(gw.url("/admin/api/routing"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a_state = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "a")
        .unwrap();
    assert_eq!(a_state["ejected"], true, "{status}");
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics.contains("gatehouse_backend_ejections_total{provider=\"a\"}"),
        "{metrics}"
    );
    // After its 30 s, a is tried again (and, still failing, b serves).
    skip(Duration::from_secs(31)).await;
    let r = gw.chat(&chat_req("m", false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(a.calls(), 6, "the ejection ended");
}

/// `a`'s state on `/admin/api/routing`: (ejected, ms it stays out, ejections in a row).
async fn ejection_of(gw: &Gateway, name: &str) -> (bool, u64, u64) {
    let status: serde_json::Value =
        serde_json::from_str(&gw.get_text("/admin/api/routing", ADMIN).await).unwrap();
    let p = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{status}"))
        .clone();
    (
        p["ejected"].as_bool().unwrap(),
        p["ejected_ms"].as_u64().unwrap(),
        p["ejections"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_backend_ejected_again_stays_out_twice_as_long() {
    let (a, _b, gw) = failing_and_healthy().await;
    // Sends `n` requests (all served by b); how many of them reached a.
    let send = async |n: usize| {
        let before = a.calls();
        for _ in 0..n {
            let r = gw.chat(&chat_req("m", false)).await;
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["x-gatehouse-provider"], "b");
        }
        a.calls() - before
    };
    let (mut sent_while_out, mut reached_while_out) = (0, 0);

    // First ejection: 30 s.
    assert_eq!(send(100).await, 5, "five failures in a row eject a");
    let (ejected, ms, n) = ejection_of(&gw, "a").await;
    assert!(
        ejected && (20_000..=30_000).contains(&ms) && n == 1,
        "{ms} ms, {n}"
    );
    sent_while_out += 95;
    skip(Duration::from_secs(31)).await;
    assert!(!ejection_of(&gw, "a").await.0, "back after 30 s");

    // Still failing: ejected again, now for 60 s.
    assert_eq!(send(100).await, 5);
    let (ejected, ms, n) = ejection_of(&gw, "a").await;
    assert!(
        ejected && (50_000..=60_000).contains(&ms) && n == 2,
        "{ms} ms, {n}"
    );
    sent_while_out += 95;
    // Past the point where the first ejection ended, a is still out.
    skip(Duration::from_secs(31)).await;
    let (ejected, ms, _) = ejection_of(&gw, "a").await;
    assert!(ejected && ms <= 29_000, "{ms} ms left");
    reached_while_out += send(100).await;
    sent_while_out += 100;
    skip(Duration::from_secs(30)).await;
    assert!(!ejection_of(&gw, "a").await.0, "back after 60 s");
    assert_eq!(send(1).await, 1, "the ejection ended");

    eprintln!(
        "figure: outlier ejection: {reached_while_out} of {sent_while_out} requests reached the ejected backend; ejections of 30 s then 60 s"
    );
    assert!(
        reached_while_out * 100 < sent_while_out,
        "< 1 % of traffic reaches an ejected backend"
    );
}

#[tokio::test]
async fn the_only_backend_is_tried_even_when_ejected() {
    let a = MockProvider::start(Profile::OpenAi).await;
    a.respond_with(|_| Reply::error(503, "down"));
    let cfg = "[providers.a]\nkind = \"openai-compatible\"\nbase_url = \"{mock0}\"\nmodels = [\"*\"]\n[routing]\noutlier = { consecutive_failures = 2 }\n";
    let gw = Gateway::start(cfg, &[&a]).await;
    for _ in 0..5 {
        assert_eq!(gw.chat(&chat_req("m", false)).await.status(), 502);
    }
    assert_eq!(a.calls(), 5, "better a likely failure than a certain one");
    a.respond_with(|_| Reply::chat("back"));
    assert_eq!(gw.chat(&chat_req("m", false)).await.status(), 200);
}

#[tokio::test]
async fn a_route_timeout_bounds_every_attempt() {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    a.respond_with(|_| Reply::chat("late").delay(Duration::from_secs(3)));
    let cfg = FAILING.replace(
        "targets = [\"a/first\", \"b/second\"]",
        "targets = [\"a/first\", \"b/second\"]\ntimeout = \"300ms\"",
    );
    let gw = Gateway::start(&cfg, &[&a, &b]).await;
    let started = tokio::time::Instant::now();
    // The route's timeout fires as the clock moves past it.
    let r = skip_once_received(
        &a,
        Duration::from_millis(400),
        gw.chat(&chat_req("m", false)),
    )
    .await;
    assert_eq!(r.status(), 504);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("route's timeout"),
        "{body}"
    );
    assert_eq!(b.calls(), 0, "no time was left for the next target");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn the_loop_guard_refuses_a_second_pass() {
    let m = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&m).await;
    let r = gw.chat(&chat_req("x", false)).await;
    assert_eq!(r.status(), 200);
    let hop = m.last_request().headers["x-gatehouse-hop"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(hop, gatehouse::routing::loopguard::instance_id());
    // The request comes back through a provider pointing at us.
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-gatehouse-hop", format!("other-gateway,{hop}"))
        .json(&chat_req("x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 508);
    assert_eq!(m.calls(), 1);
    // Another gateway's hop is carried on.
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header("x-gatehouse-hop", "other-gateway")
        .json(&chat_req("x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        m.last_request().headers["x-gatehouse-hop"],
        format!("other-gateway,{hop}").as_str()
    );
}

#[tokio::test]
async fn every_decision_is_in_the_record_and_the_metrics() {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    a.push(Reply::error(503, "overloaded"));
    let gw = Gateway::start(FAILING, &[&a, &b]).await;
    let r = gw.chat(&chat_req("m", false)).await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let rec = eventually(Duration::from_secs(5), || async {
        gw.state.store().usage_record(&id).await.unwrap()
    })
    .await
    .expect("the request's record");
    assert_eq!(rec.route.as_deref(), Some("chain"));
    assert!(rec.fallback);
    assert_eq!(rec.provider.as_deref(), Some("b"));
    let attempts: serde_json::Value =
        serde_json::from_str(rec.attempts.as_deref().unwrap()).unwrap();
    assert_eq!(attempts[0]["provider"], "a");
    assert_eq!(attempts[0]["outcome"], "upstream_failed");
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("overloaded")
    );
    assert_eq!(attempts[1]["provider"], "b");
    assert_eq!(attempts[1]["outcome"], "ok");
    let metrics = metrics_text(&gw).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gatehouse_requests_total")
                && l.contains("route=\"chain\"")
                && l.contains("fallback=\"true\"")),
        "{metrics}"
    );
    // The metrics need the admin token.
    let r = client().get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_cheaper_model_and_an_unpriced_one_are_labelled_in_the_metrics() {
    let m = MockProvider::start(Profile::OpenAi).await;
    let cfg = r#"
[server]
admin_token = "admin-token-for-routing-tests-0001"
[providers.p]
kind = "openai-compatible"
base_url = "{mock0}"
[[routes]]
match = { model = "gpt-4o" }
targets = ["p/gpt-4o-mini"]
[[routes]]
match = { model = "gpt-4o-mini" }
targets = ["p/gpt-4o"]
"#;
    let gw = Gateway::start(cfg, &[&m]).await;
    for model in ["gpt-4o", "gpt-4o-mini", "home-made-7b"] {
        assert_eq!(gw.chat(&chat_req(model, false)).await.status(), 200);
    }
    let metrics = metrics_text(&gw).await;
    let line = |model: &str, cheaper: &str| {
        metrics.lines().any(|l| {
            l.starts_with("gatehouse_requests_total")
                && l.contains(&format!("model=\"{model}\""))
                && l.contains(&format!("cheaper=\"{cheaper}\""))
        })
    };
    assert!(line("gpt-4o-mini", "true"), "{metrics}");
    assert!(line("gpt-4o", "false"), "{metrics}");
    assert!(line("other", "false"), "{metrics}");
    assert!(!line("home-made-7b", "false"), "{metrics}");
}

pub async fn metrics_text(gw: &Gateway) -> String {
    gw.get_text("/metrics", ADMIN).await
}
