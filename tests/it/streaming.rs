//! Streaming: relayed event by event, usage, keep-alives, truncation and idle failures
//! (RELIABILITY 8, 9, 11). The long first-token test waits 35 s with the default config
//! (`GATEHOUSE_TTFT_SECS=120` for the list's 120 s).

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::support::mock::{chunk, usage_chunk};
use crate::support::*;

/// Read an SSE body, returning each complete frame with the instant it arrived.
async fn timed_frames(resp: reqwest::Response) -> Vec<(Instant, String)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(i) = buf.find("\n\n") {
            let frame = buf[..i].to_owned();
            buf.drain(..i + 2);
            out.push((Instant::now(), frame));
        }
    }
    out
}

fn data(frame: &str) -> Option<Value> {
    let d = frame.strip_prefix("data: ")?;
    if d == "[DONE]" {
        Some(Value::String(d.into()))
    } else {
        serde_json::from_str(d).ok()
    }
}

#[tokio::test]
async fn streams_and_replies_in_turn_reuse_one_provider_connection() {
    // A stream's reader stops at its last event, before the chunked terminator: its
    // connection must still go back to the pool rather than close (a new connection per
    // stream halved streaming throughput). One stream in two has its terminator arrive
    // 10 ms after its last event, as a provider's may.
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    for i in 0..8 {
        let stream = i % 2 == 0;
        if stream {
            let reply = Reply::stream(&["Hel", "lo"]);
            mock.push(if i % 4 == 0 {
                reply
            } else {
                reply
                    .every(Duration::from_millis(2))
                    .pause_before_end(Duration::from_millis(10))
            });
        }
        let resp = gw.chat(&chat_req("m", stream)).await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        // Give the connection a moment to go back before the next request.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(mock.calls(), 8);
    assert!(
        mock.closed().is_empty(),
        "{} provider connections closed",
        mock.closed().len()
    );
    assert_eq!(mock.open_connections(), 1);
}

#[tokio::test]
async fn stream_is_relayed_and_usage_follows_the_client_choice() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    for include in [false, true] {
        mock.push(Reply::stream(&["Hel", "lo"]));
        let mut req = chat_req("m", true);
        if include {
            req["stream_options"] = json!({"include_usage": true});
        }
        let resp = gw.chat(&req).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        assert_eq!(resp.headers()["cache-control"], "no-cache");
        assert_eq!(resp.headers()["x-accel-buffering"], "no");
        assert_eq!(resp.headers()["x-gatehouse-provider"], "p");
        let frames: Vec<Value> = timed_frames(resp)
            .await
            .iter()
            .filter_map(|(_, f)| data(f))
            .collect();
        let text: String = frames
            .iter()
            .filter_map(|f| f["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Hello");
        assert_eq!(frames.last().unwrap(), "[DONE]");
        let finish: Vec<_> = frames
            .iter()
            .filter_map(|f| f["choices"][0]["finish_reason"].as_str())
            .collect();
        assert_eq!(finish, ["stop"]);
        let usage: Vec<_> = frames.iter().filter(|f| f.get("usage").is_some()).collect();
        if include {
            assert_eq!(usage.len(), 1);
            assert_eq!(usage[0]["usage"]["completion_tokens"], 2);
        } else {
            assert!(usage.is_empty(), "usage sent to a client that did not ask");
        }
        // The provider is always asked for usage, whatever the client asked.
        assert_eq!(
            mock.last_request().body["stream_options"],
            json!({"include_usage": true})
        );
    }
}

#[tokio::test]
async fn events_are_not_buffered() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let pieces: Vec<String> = (0..48).map(|i| format!("w{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    // 50 events (role, 48 words, finish) 100 ms apart, the first one 100 ms after the headers.
    let mut reply = Reply::stream(&refs)
        .every(Duration::from_millis(100))
        .first_event_delay(Duration::from_millis(100));
    if let crate::support::mock::Body::Sse(ev) = &mut reply.body {
        ev.pop(); // no usage chunk: exactly 50 content events
    }
    mock.push(reply);
    let sent = Instant::now();
    let resp = gw.chat(&chat_req("m", true)).await;
    let frames = timed_frames(resp).await;
    let content: Vec<Instant> = frames
        .iter()
        .filter(|(_, f)| f.starts_with("data: {"))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(content.len(), 50, "{frames:?}");
    let mut gaps: Vec<u128> = content
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    assert!(
        (80..=120).contains(&median),
        "median gap {median} ms, gaps {gaps:?}"
    );
    // First event: the upstream's first event came 100 ms after the request, the second
    // 200 ms after it. The margin is for a loaded machine (235 ms seen once with the whole
    // suite running on two cores); holding events back shows in the gaps above.
    let ttfb = (content[0] - sent).as_millis();
    assert!(
        ttfb <= 400,
        "time to first event {ttfb} ms (upstream: 100 ms)"
    );
}

#[tokio::test]
async fn truncated_stream_ends_with_an_error_not_a_stop() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    mock.push(Reply::stream(&["partial", " answer"]).truncate_after(2));
    let resp = gw.chat(&chat_req("m", true)).await;
    assert_eq!(resp.status(), 200);
    let frames: Vec<Value> = timed_frames(resp)
        .await
        .iter()
        .filter_map(|(_, f)| data(f))
        .collect();
    let last = frames.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("without its terminator"),
        "{frames:?}"
    );
    assert!(
        !frames.iter().any(|f| f == "[DONE]"),
        "a cut stream must not end with [DONE]"
    );
    assert!(
        !frames
            .iter()
            .any(|f| f["choices"][0]["finish_reason"] == "stop"),
        "no synthesized stop"
    );
}

/// An SSE body's events as (name, data): `\r\n` or `\n` line ends, `message` for an
/// unnamed event, data parsed as JSON (`[DONE]` as a string).
pub fn named_events(body: &str) -> Vec<(String, Value)> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|frame| {
            let mut name = "message".to_owned();
            let mut data = None;
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(
                        serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.to_owned())),
                    );
                }
            }
            Some((name, data?))
        })
        .collect()
}

/// RELIABILITY 9: a provider stream cut without its terminator, after the client got part
/// of the reply, ends with an error in the client's own protocol, never a normal stop, and
/// the request's record says it failed: `error` (not `ok`), with the HTTP status the client
/// got (200: the headers went out) and why.
#[tokio::test]
async fn a_cut_stream_is_an_error_to_the_client_and_in_its_record() {
    const ADMIN: &str = "admin-token-for-streaming-tests-1";
    let mock = MockProvider::start(Profile::OpenAi).await;
    let cfg = one_provider("openai-compatible").replacen(
        "[server]\n",
        &format!("[server]\nadmin_token = \"{ADMIN}\"\n"),
        1,
    );
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let stream_of = |schema: &str| match schema {
        "chat" => ("/v1/chat/completions", chat_req("m", true)),
        "messages" => (
            "/v1/messages",
            json!({"model": "m", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        "responses" => (
            "/v1/responses",
            json!({"model": "m", "input": "hi", "stream": true, "store": false}),
        ),
        "gemini" => (
            "/v1beta/models/m:streamGenerateContent?alt=sse",
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}),
        ),
        _ => unreachable!(),
    };
    for schema in ["chat", "messages", "responses", "gemini"] {
        // The role, "partial", then the connection closes: no finish, no usage, no [DONE].
        mock.push(Reply::stream(&["partial", " answer"]).truncate_after(2));
        let (path, body) = stream_of(schema);
        let r = client()
            .post(gw.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{schema}");
        let id = r.headers()["x-gatehouse-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let events = named_events(&r.text().await.unwrap());
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        let (last_name, last) = events.last().unwrap();
        // The terminal error of each protocol; none of its normal ends.
        match schema {
            "chat" => {
                assert!(last["error"]["message"].is_string(), "{events:?}");
                assert!(!events.iter().any(|(_, d)| d == "[DONE]"));
                assert!(
                    !events
                        .iter()
                        .any(|(_, d)| !d["choices"][0]["finish_reason"].is_null())
                );
            }
            "messages" => {
                assert_eq!(last_name, "error", "{names:?}");
                assert_eq!(last["type"], "error");
                assert!(!names.contains(&"message_stop") && !names.contains(&"message_delta"));
            }
            "responses" => {
                assert_eq!(&names[names.len() - 2..], ["error", "response.failed"]);
                assert_eq!(last["response"]["status"], "failed");
                assert!(!names.contains(&"response.completed"));
            }
            "gemini" => {
                assert!(last["error"]["status"].is_string(), "{events:?}");
                assert!(
                    !events
                        .iter()
                        .any(|(_, d)| { d["candidates"][0].get("finishReason").is_some() }),
                    "no synthesized finishReason: {events:?}"
                );
            }
            _ => unreachable!(),
        }
        gw.flush_records().await;
        background_done().await;
        let rec: Value =
            serde_json::from_str(&gw.get_text(&format!("/admin/api/logs/{id}"), ADMIN).await)
                .unwrap();
        assert_eq!(rec["client_schema"], schema, "{rec}");
        assert_eq!(rec["status"], "error", "a cut stream is not ok: {rec}");
        assert_eq!(rec["http_status"], 200, "{rec}");
        assert_eq!(rec["error_class"], "upstream_failed", "{rec}");
        assert!(
            rec["error"]
                .as_str()
                .unwrap()
                .contains("ended the stream without its terminator"),
            "{rec}"
        );
        // Charged for what it delivered ("partial").
        assert!(rec["tokens"]["output"].as_u64().unwrap() >= 1, "{rec}");
    }
    // `status=error` finds them all; none is counted as served in full.
    let ok: Value =
        serde_json::from_str(&gw.get_text("/admin/api/logs?status=ok", ADMIN).await).unwrap();
    assert_eq!(ok["data"].as_array().unwrap().len(), 0, "{ok}");
    let failed: Value =
        serde_json::from_str(&gw.get_text("/admin/api/logs?status=error", ADMIN).await).unwrap();
    assert_eq!(failed["data"].as_array().unwrap().len(), 4, "{failed}");
}

#[tokio::test]
async fn a_provider_failing_after_its_silence_committed_the_stream_is_an_error_event_and_record() {
    const ADMIN: &str = "admin-token-for-streaming-tests-2";
    let mock = MockProvider::start(Profile::OpenAi).await;
    let cfg = one_provider("openai-compatible")
        .replace("stream_keepalive = \"2s\"", "stream_keepalive = \"200ms\"")
        .replacen(
            "[server]\n",
            &format!("[server]\nadmin_token = \"{ADMIN}\"\n"),
            1,
        );
    let gw = Gateway::start(&cfg, &[&mock]).await;
    // No headers for 900 ms, then a 503: by then the client has its headers and keep-alives,
    // so the failure can only be the stream's error event (no fallback after the first byte).
    mock.push(
        Reply::error(503, "The engine is currently overloaded").delay(Duration::from_millis(900)),
    );
    let resp = gw.chat(&chat_req("m", true)).await;
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let frames = timed_frames(resp).await;
    let keepalives = frames.iter().filter(|(_, f)| f == ": keep-alive").count();
    assert!(keepalives >= 3, "{keepalives} keep-alives in {frames:?}");
    let events: Vec<Value> = frames.iter().filter_map(|(_, f)| data(f)).collect();
    assert_eq!(events.len(), 1, "{frames:?}");
    assert!(
        events[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overloaded"),
        "{events:?}"
    );
    assert!(!frames.iter().any(|(_, f)| f == "data: [DONE]"));
    assert_eq!(mock.requests().len(), 1);
    gw.flush_records().await;
    background_done().await;
    let rec: Value =
        serde_json::from_str(&gw.get_text(&format!("/admin/api/logs/{id}"), ADMIN).await).unwrap();
    assert_eq!(rec["status"], "error", "{rec}");
    assert_eq!(rec["http_status"], 200, "{rec}");
}

#[tokio::test]
async fn idle_upstream_after_the_first_byte_becomes_an_error_event() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    // idle timeout 3 s (one_provider), keep-alive 2 s
    let gw = Gateway::with_openai(&mock).await;
    let events = vec![
        chunk(json!({"role": "assistant", "content": "a"}), None),
        chunk(json!({"content": "b"}), None),
    ];
    mock.push(Reply::sse(events).every(Duration::from_secs(10)));
    let resp = gw.chat(&chat_req("m", true)).await;
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut frames = Vec::new();
    // The first event, then the clock moves past the keep-alive (2 s) and the idle timeout
    // (3 s); each comes at once (in real time they would take seconds).
    let first = next_frame(&mut body, &mut buf).await.unwrap();
    assert!(first.starts_with("data: {"), "{first}");
    frames.push(first);
    skip(Duration::from_millis(2100)).await;
    let soon = Duration::from_secs(1);
    frames.push(
        tokio::time::timeout(soon, next_frame(&mut body, &mut buf))
            .await
            .expect("a keep-alive as the clock moved")
            .unwrap(),
    );
    skip(Duration::from_secs(1)).await;
    let rest = async {
        while let Some(f) = next_frame(&mut body, &mut buf).await {
            frames.push(f);
        }
    };
    tokio::time::timeout(soon, rest)
        .await
        .expect("the stream ended as the clock moved past the idle timeout");
    assert!(frames.iter().any(|f| f == ": keep-alive"), "{frames:?}");
    let last = data(frames.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout", "{frames:?}");
}

/// The next complete SSE frame of `body` (`None` at its end).
async fn next_frame(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
) -> Option<String> {
    loop {
        if let Some(i) = buf.find("\n\n") {
            let frame = buf[..i].to_owned();
            buf.drain(..i + 2);
            return Some(frame);
        }
        let chunk = body.next().await?.ok()?;
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn long_first_token_waits_get_keepalives_and_no_timeout() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let cfg = one_provider("openai-compatible")
        .replace("stream_keepalive = \"2s\"", "stream_keepalive = \"200ms\"");
    let gw = Gateway::start(&cfg, &[&mock]).await;
    // Headers at once, first token after 1.5 s (idle timeout 3 s, keep-alive 200 ms).
    mock.push(Reply::stream(&["late"]).first_event_delay(Duration::from_millis(1500)));
    let resp = gw.chat(&chat_req("m", true)).await;
    let frames = timed_frames(resp).await;
    let keepalives = frames.iter().filter(|(_, f)| f == ": keep-alive").count();
    assert!(keepalives >= 4, "{keepalives} keep-alives in {frames:?}");
    let text: String = frames
        .iter()
        .filter_map(|(_, f)| data(f))
        .filter_map(|f| {
            f["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "late");
    assert_eq!(frames.last().unwrap().1, "data: [DONE]");
}

/// How long the default-config test's provider waits before its first token: 35 s, so that
/// two keep-alives of the default 15 s interval are seen; `GATEHOUSE_TTFT_SECS` lengthens it
/// (RELIABILITY 11 asks for 120 s).
fn ttft() -> Duration {
    let secs = std::env::var("GATEHOUSE_TTFT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(35);
    Duration::from_secs(secs)
}

#[tokio::test]
async fn a_long_first_token_wait_with_the_default_config_gets_keepalives_every_15_s_and_completes()
{
    // Headers at once (as OpenAI and Anthropic send them), then nothing until the first token.
    long_first_token_wait(false).await;
}

#[tokio::test]
async fn a_provider_holding_its_headers_until_the_first_token_still_gets_the_client_keepalives() {
    // Nothing at all, not even the response headers, until the first token: the client gets
    // its headers and keep-alives all the same.
    long_first_token_wait(true).await;
}

async fn long_first_token_wait(headers_held: bool) {
    // The defaults throughout: keep-alive 15 s, first byte 600 s, idle 300 s.
    let mock = MockProvider::start(Profile::OpenAi).await;
    let cfg = "[providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{mock0}\"\n\
               api_key = \"${MOCK_KEY}\"\nmodels = [\"*\"]\n";
    let gw = Gateway::start(cfg, &[&mock]).await;
    let live = gw.state.live();
    let interval = live.config.server.stream_keepalive;
    assert_eq!(interval, Duration::from_secs(15));
    let t = live.config.providers[0].timeouts;
    assert_eq!(
        (t.first_byte, t.idle),
        (Duration::from_secs(600), Duration::from_secs(300))
    );
    let wait = ttft();
    let reply = Reply::stream(&["late"]);
    mock.push(if headers_held {
        reply.delay(wait)
    } else {
        reply.first_event_delay(wait)
    });
    let start = Instant::now();
    let resp = gw.chat(&chat_req("m", true)).await;
    let headers_at = start.elapsed();
    assert_eq!(resp.status(), 200);
    let frames = timed_frames(resp).await;
    let total = start.elapsed();
    let keepalives: Vec<Duration> = frames
        .iter()
        .filter(|(_, f)| f == ": keep-alive")
        .map(|(t, _)| *t - start)
        .collect();
    // Every silence the client sees, from the request to the first token, is at most one
    // interval (with room for a loaded machine).
    let first_token = frames
        .iter()
        .find(|(_, f)| f.starts_with("data: "))
        .map(|(t, _)| *t - start)
        .expect("no event");
    let mut marks = vec![Duration::ZERO];
    marks.extend(keepalives.iter().copied());
    marks.push(first_token);
    let gaps: Vec<Duration> = marks.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!(
        "FIGURES first token after {wait:?} (headers held: {headers_held}): headers at {headers_at:?}, keep-alives at {keepalives:?}, \
         gaps {gaps:?}, first token at {first_token:?}, stream ended at {total:?}"
    );
    let slack = Duration::from_secs(2);
    assert!(
        gaps.iter().all(|g| *g <= interval + slack),
        "a silence longer than {interval:?}: {gaps:?}"
    );
    let expected = ((wait.as_secs() - 1) / interval.as_secs()) as usize;
    assert!(
        keepalives.len() >= expected,
        "{} keep-alives in {wait:?}, expected {expected}: {keepalives:?}",
        keepalives.len()
    );
    assert!(first_token >= wait, "{first_token:?}");
    // Then the stream completes normally: no timeout, no error event.
    let events: Vec<Value> = frames.iter().filter_map(|(_, f)| data(f)).collect();
    assert!(
        events.iter().all(|e| e.get("error").is_none()),
        "{events:?}"
    );
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "late");
    assert_eq!(frames.last().unwrap().1, "data: [DONE]");
}

#[tokio::test]
async fn in_stream_provider_error_after_start_is_relayed_as_error() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    mock.push(Reply::sse(vec![
        chunk(json!({"role": "assistant", "content": "x"}), None),
        json!({"error": {"message": "The server had an error while processing your request", "type": "server_error"}}),
        usage_chunk(1, 1),
    ]));
    let resp = gw.chat(&chat_req("m", true)).await;
    let frames: Vec<Value> = timed_frames(resp)
        .await
        .iter()
        .filter_map(|(_, f)| data(f))
        .collect();
    assert!(
        frames
            .iter()
            .any(|f| f["choices"][0]["delta"]["content"] == "x"),
        "{frames:?}"
    );
    let last = frames.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server had an error"),
        "{frames:?}"
    );
}
