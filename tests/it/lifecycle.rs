//! Cancellation (RELIABILITY 12, 13) and graceful drain.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio::time::Instant;

use crate::support::mock::chunk;
use crate::support::*;

/// Send a request, give up on it after `after`, and return when the client dropped it.
async fn abandon(gw: &Gateway, stream: bool, after: Duration, read_frames: usize) -> Instant {
    let c = client();
    let req = c
        .post(gw.url("/v1/chat/completions"))
        .json(&chat_req("m", stream));
    if read_frames == 0 {
        let _ = tokio::time::timeout(after, req.send()).await;
        return Instant::now();
    }
    let resp = req.send().await.unwrap();
    let mut body = resp.bytes_stream();
    let mut seen = 0;
    while seen < read_frames {
        let chunk = body.next().await.unwrap().unwrap();
        seen += chunk.windows(2).filter(|w| w == b"\n\n").count();
    }
    drop(body);
    Instant::now()
}

async fn assert_upstream_closed_within_1s(mock: &MockProvider, dropped: Instant) {
    let closed = mock
        .wait_closed(1, Duration::from_secs(5))
        .await
        .expect("upstream connection never closed");
    let lag = closed.saturating_duration_since(dropped);
    assert!(
        lag <= Duration::from_secs(1),
        "upstream closed {lag:?} after the client left"
    );
}

/// One OpenAI-compatible provider, one request in flight at most, and `extra` in `[server]`.
async fn one_at_a_time(mock: &MockProvider, extra: &str) -> Gateway {
    let cfg = one_provider("openai-compatible").replace(
        "[server]\n",
        &format!("[server]\nmax_in_flight = 1\n{extra}"),
    );
    Gateway::start(&cfg, &[mock]).await
}

/// The status of a request sent now (`max_in_flight = 1`: 200 only when no other request
/// is in flight, 503 when one still is).
async fn status_now(gw: &Gateway) -> u16 {
    gw.chat(&chat_req("m", false)).await.status().as_u16()
}

#[tokio::test]
async fn non_streaming_disconnect_cancels_upstream_and_frees_its_place_in_flight() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = one_at_a_time(&mock, "").await;
    assert!(
        gw.state.live().config.server.cancel_on_disconnect,
        "the default"
    );
    mock.push(Reply::chat("never read").delay(Duration::from_secs(4)));
    let dropped = abandon(&gw, false, Duration::from_millis(300), 0).await;
    assert_upstream_closed_within_1s(&mock, dropped).await;
    assert_eq!(
        mock.open_connections(),
        0,
        "the upstream request is still in flight"
    );
    // With one place in flight, a new request is served only once the left one gave its
    // place back: in-flight is 0 again.
    let freed = eventually(Duration::from_secs(1), || async {
        (status_now(&gw).await == 200).then(|| dropped.elapsed())
    })
    .await
    .expect("the left request still held its place in flight 1 s after the client left");
    eprintln!(
        "FIGURES cancel_on_disconnect on: a new request served {freed:?} after the client left"
    );
}

/// Forty events a quarter of a second apart: a stream still running when its client leaves.
fn push_slow_stream(mock: &MockProvider) {
    let events: Vec<_> = (0..40)
        .map(|i| chunk(json!({"content": format!("{i} ")}), None))
        .collect();
    mock.push(Reply::sse(events).every(Duration::from_millis(250)));
}

#[tokio::test]
async fn with_cancel_on_disconnect_off_a_stream_still_stops_when_its_client_leaves() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = one_at_a_time(&mock, "cancel_on_disconnect = false\n").await;
    push_slow_stream(&mock);
    let dropped = abandon(&gw, true, Duration::ZERO, 3).await;
    assert_upstream_closed_within_1s(&mock, dropped).await;
    assert!(
        eventually(Duration::from_secs(1), || async {
            (status_now(&gw).await == 200).then_some(())
        })
        .await
        .is_some(),
        "the left stream still held its place in flight"
    );
}

#[tokio::test]
async fn streaming_disconnect_before_first_byte_cancels_upstream() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    mock.push(Reply::stream(&["x"]).delay(Duration::from_secs(4)));
    let dropped = abandon(&gw, true, Duration::from_millis(300), 0).await;
    assert_upstream_closed_within_1s(&mock, dropped).await;
}

#[tokio::test]
async fn streaming_disconnect_mid_stream_cancels_upstream() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    push_slow_stream(&mock);
    let dropped = abandon(&gw, true, Duration::ZERO, 3).await;
    assert_upstream_closed_within_1s(&mock, dropped).await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_streams_and_refuses_new_connections() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let mut gw = Gateway::with_openai(&mock).await;
    let pieces: Vec<String> = (0..10).map(|i| format!("{i}")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    mock.push(Reply::stream(&refs).every(Duration::from_millis(100)));
    let resp = gw.chat(&chat_req("m", true)).await;
    assert_eq!(resp.status(), 200);
    gw.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(gw.state.is_draining());
    let refused = client()
        .get(gw.url("/healthz"))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(
        refused.is_err(),
        "a new connection was accepted while draining"
    );
    let body = resp.text().await.unwrap();
    assert!(
        body.ends_with("data: [DONE]\n\n"),
        "the in-flight stream was cut: {body}"
    );
    tokio::time::timeout(Duration::from_secs(5), gw.done.take().unwrap())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_waits_for_a_mirror_shadow_and_writes_its_record() {
    let (primary, shadow) = (
        MockProvider::start(Profile::OpenAi).await,
        MockProvider::start(Profile::OpenAi).await,
    );
    // The shadow answers long after the primary's reply, and after the shutdown began.
    shadow.respond_with(|_| Reply::chat("shadow says hello").delay(Duration::from_millis(1500)));
    let cfg = r#"
[providers.a]
kind = "openai-compatible"
base_url = "{mock0}"
[providers.shadow]
kind = "openai-compatible"
base_url = "{mock1}"
[[routes]]
match = { model = "m" }
targets = ["a/m"]
mirror = { target = "shadow/candidate", sample = 1.0 }
"#;
    let mut gw = Gateway::start(cfg, &[&primary, &shadow]).await;
    let r = gw.chat(&chat_req("m", false)).await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    r.text().await.unwrap();
    gw.shutdown();
    tokio::time::timeout(Duration::from_secs(10), gw.done.take().unwrap())
        .await
        .unwrap()
        .unwrap();
    // By the time the server returned, the shadow was answered and its record written.
    assert_eq!(shadow.calls(), 1);
    let store = gw.state.store();
    let shadows = store.mirrors_of(&id).await.unwrap();
    assert_eq!(shadows.len(), 1, "the shadow's record was lost at shutdown");
    let record = store.usage_record(&shadows[0]).await.unwrap().unwrap();
    assert_eq!(record.output.as_deref(), Some("shadow says hello"));
    assert_eq!(gatehouse::tasks::running(), 0);
}

/// CPU time this thread has used, in clock ticks (utime + stime of /proc/thread-self/stat).
#[cfg(target_os = "linux")]
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 of what follows `)`.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn busy_polling_serves_replies_and_streams_then_sleeps() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let config = one_provider("openai-compatible").replace(
        "[server]\n",
        "[server]\nbusy_poll = \"2ms\"\nadmin_token = \"admin-token-busy-poll-0001\"\n",
    );
    let gw = Gateway::start(&config, &[&mock]).await;
    for stream in [false, true, false, true] {
        let resp = gw.chat(&chat_req("m", stream)).await;
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        if stream {
            assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
        } else {
            assert!(text.contains("Hello from the mock"), "{text}");
        }
    }
    // Once the window has passed with nothing to do, the thread sleeps: half a second idle
    // costs next to no CPU (spinning through it would cost all of it, 50 ticks).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = thread_cpu_ticks();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let used = thread_cpu_ticks() - before;
    assert!(used <= 10, "{used} ticks of CPU in 500 ms of idleness");
    // The requests woke the spinner (it slept between the test's own waits above and the
    // next request), and each spell of polling lasted at least the window.
    let r = gw.chat(&chat_req("m", false)).await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let metrics = gw.get_text("/metrics", "admin-token-busy-poll-0001").await;
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    let wakeups = value("gatehouse_busy_poll_wakeups_total");
    assert!(wakeups >= 1, "{wakeups}");
    let spun = value("gatehouse_busy_poll_microseconds_total");
    assert!(
        spun >= 2000 * (wakeups + 1),
        "{spun} us over {wakeups} wake-ups"
    );
}
