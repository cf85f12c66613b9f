//! Charging a client that leaves before its (non-streamed) reply went out, so that leaving
//! early is never a way around a budget (`pipeline::settle`): after the provider's whole
//! reply arrived, its usage; while the provider was answering, the input as estimated at
//! admission. Either way the record and the spend appear within 5 s, and the provider call
//! is still cancelled within a second (RELIABILITY 13). With `[server] cancel_on_disconnect
//! = false` the call is not cancelled: the provider answers and its usage is charged.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::wire::chat_body;
use crate::support::*;

const KEY: &str = "sk-charging-key-0123456789";

fn config(store: &str) -> String {
    format!(
        "[server]\nstream_keepalive = \"2s\"\n\
         [providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{{mock0}}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"*\"]\n\
         [pricing.m]\ninput = 500\noutput = 500\n\
         [[keys]]\nname = \"k\"\nkey = \"{KEY}\"\nbudget = {{ tokens = 100000, period = \"daily\" }}\n\
         [store]\nurl = \"{store}\"\n"
    )
}

/// The one cancelled record in the gateway's store, once it is there.
/// Send `body` and leave 400 ms later, before the reply (which must not have come).
async fn send_and_leave(gw: &Gateway, body: &Value) {
    let sent = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(body)
        .send();
    assert!(
        tokio::time::timeout(Duration::from_millis(400), sent)
            .await
            .is_err(),
        "the reply came before the client left"
    );
}

async fn cancelled_record(gw: &Gateway) -> Option<Value> {
    let filter = gatehouse::store::LogFilter {
        status: Some("cancelled".to_owned()),
        limit: 10,
        ..Default::default()
    };
    let (rows, _) = gw.state.store().logs(&filter).await.ok()?;
    rows.into_iter().next()
}

fn tokens(rec: &Value, field: &str) -> u64 {
    rec["tokens"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} tokens in {rec}"))
}

/// The key's spend in tokens, as `/v1/usage` reports it.
async fn spent(gw: &Gateway) -> u64 {
    let u = usage_of(gw, KEY).await;
    u["budgets"][0]["spent"].as_f64().unwrap_or(0.0) as u64
}

#[tokio::test]
async fn a_client_that_leaves_before_the_provider_answers_is_charged_its_input_estimate() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config("sqlite::memory:"), &[&mock]).await;
    mock.push(Reply::chat("too late").delay(Duration::from_secs(4)));
    let body = json!({"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "a prompt of a few words to estimate"}]});
    send_and_leave(&gw, &body).await;
    let dropped = tokio::time::Instant::now();
    // The provider call is cancelled as before (RELIABILITY 13).
    let closed = mock
        .wait_closed(1, Duration::from_secs(5))
        .await
        .expect("the upstream connection never closed");
    assert!(closed.saturating_duration_since(dropped) <= Duration::from_secs(1));
    let rec = eventually(Duration::from_secs(5), || cancelled_record(&gw))
        .await
        .expect("no record within 5 s of the client leaving");
    assert!(tokens(&rec, "input") > 0, "the input estimate: {rec}");
    assert_eq!(tokens(&rec, "output"), 0, "{rec}");
    assert_eq!(rec["provider"], "p", "{rec}");
    assert!(
        rec["error"]
            .as_str()
            .is_some_and(|e| e.contains("charged the input estimate")),
        "{rec}"
    );
    let charged = eventually(Duration::from_secs(5), || async {
        let s = spent(&gw).await;
        (s > 0).then_some(s)
    })
    .await
    .expect("the budget was not charged within 5 s");
    assert_eq!(charged, tokens(&rec, "input"));
    eprintln!(
        "left before the answer: charged {charged} input tokens (estimate), record and spend {:?} after the client left, upstream closed {:?} after",
        dropped.elapsed(),
        closed.saturating_duration_since(dropped)
    );
}

#[tokio::test]
async fn a_client_that_leaves_after_the_provider_answered_is_charged_its_usage() {
    // The gateway stores the Responses reply before sending it; the test holds the
    // database's write lock so that the client leaves while the reply waits for it, after
    // the provider's whole reply (usage 12 + 3) arrived.
    let dir = std::env::temp_dir().join(format!("gh-charging-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/c.db", dir.display());
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(&url), &[&mock]).await;
    mock.push(Reply::chat("the answer").delay(Duration::from_millis(600)));
    let sent = spawn(
        client()
            .post(gw.url("/v1/responses"))
            .bearer_auth(KEY)
            .json(&json!({"model": "m", "input": "hi", "store": true, "max_output_tokens": 20}))
            .timeout(Duration::from_millis(1500))
            .send(),
    );
    // Once the provider has the request (its reply is 600 ms away), take the write lock.
    assert!(
        eventually(Duration::from_secs(5), || async {
            (mock.calls() == 1).then_some(())
        })
        .await
        .is_some()
    );
    let mut lock = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    let out = sent.await.unwrap();
    assert!(
        out.as_ref().is_err_and(reqwest::Error::is_timeout),
        "the client should have given up waiting: {out:?}"
    );
    let left = tokio::time::Instant::now();
    sqlx::query("COMMIT").execute(&mut lock).await.unwrap();
    drop(lock);
    let rec = eventually(Duration::from_secs(5), || cancelled_record(&gw))
        .await
        .expect("no record within 5 s of the client leaving");
    assert_eq!(tokens(&rec, "input"), 12, "the provider's usage: {rec}");
    assert_eq!(tokens(&rec, "output"), 3, "{rec}");
    let charged = eventually(Duration::from_secs(5), || async {
        let s = spent(&gw).await;
        (s > 0).then_some(s)
    })
    .await
    .expect("the budget was not charged within 5 s");
    assert_eq!(charged, 15);
    assert!(left.elapsed() <= Duration::from_secs(5));
    eprintln!(
        "left after the answer: charged {charged} tokens (the provider's 12 + 3), record and spend {:?} after the client left",
        left.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn with_cancel_on_disconnect_off_a_left_request_runs_to_its_reply_and_is_charged_its_usage() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let cfg = config("sqlite::memory:").replace(
        "[server]\n",
        "[server]\ncancel_on_disconnect = false\nmax_in_flight = 1\n",
    );
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let answer_in = Duration::from_secs(2);
    mock.push(Reply::json(200, chat_body("answered for nobody", 40, 7)).delay(answer_in));
    let body =
        json!({"model": "m", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]});
    let start = tokio::time::Instant::now();
    send_and_leave(&gw, &body).await;
    let left = tokio::time::Instant::now();
    // The left request still holds its place in flight (one at most): another is shed.
    let shed = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        shed.status(),
        503,
        "the left request gave its place back early"
    );
    // The provider call is not cancelled: it answers, and the record has its usage.
    let rec = eventually(Duration::from_secs(10), || async {
        let filter = gatehouse::store::LogFilter {
            limit: 10,
            ..Default::default()
        };
        let (rows, _) = gw.state.store().logs(&filter).await.ok()?;
        rows.into_iter()
            .find(|r| r["tokens"]["output"].as_u64().is_some_and(|n| n > 0))
    })
    .await
    .expect("no record with the provider's usage within 10 s");
    let recorded = left.elapsed();
    assert_eq!(rec["status"], "ok", "{rec}");
    assert_eq!(tokens(&rec, "input"), 40, "the provider's usage: {rec}");
    assert_eq!(tokens(&rec, "output"), 7, "{rec}");
    assert!(start.elapsed() >= answer_in);
    assert_eq!(mock.calls(), 1);
    assert!(
        mock.closed().is_empty(),
        "the provider connection was closed: the call was cancelled"
    );
    let charged = eventually(Duration::from_secs(5), || async {
        let s = spent(&gw).await;
        (s > 0).then_some(s)
    })
    .await
    .expect("the budget was not charged within 5 s");
    assert_eq!(charged, 47);
    // Its reply made, the request gave its place back: in-flight is 0 again.
    let served = eventually(Duration::from_secs(2), || async {
        let r = client()
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .ok()?;
        (r.status() == 200).then(|| left.elapsed())
    })
    .await
    .expect("the place in flight was not given back after the reply was made");
    eprintln!(
        "FIGURES cancel_on_disconnect off: the client left at {:?}, the provider answered at {answer_in:?}, \
         record (usage 40 + 7, ok) {recorded:?} after the client left, spend {charged} tokens, \
         a new request served {served:?} after the client left",
        left - start
    );
}
