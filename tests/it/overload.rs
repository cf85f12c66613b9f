//! Floods and request bodies (RELIABILITY 20 and 21, SPEC §5 "Safety defaults"): past
//! `[server] max_in_flight` or `max_buffered_body_bytes` a request gets 503 and
//! `Retry-After` at once, in its caller's schema, and costs nothing upstream; a body that
//! does not arrive within `body_read_timeout` gets 408 and its connection closed; a body
//! over `max_body_bytes` gets a 413 that ordinary clients (Python's `urllib`, curl) read.
//!
//! The flood runs against a `gatehouse serve` process, so that its RSS is the gateway's
//! alone; the other tests run the gateway in-process.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::support::*;

/// A reply read off a raw HTTP/1.1 connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// The head, lowercased.
    head: String,
    body: String,
    /// From the request's first byte to the reply's last.
    took: Duration,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim())
        })
    }
}

/// Read one reply (its head and its `Content-Length` body) from `s`.
async fn read_answer(s: &mut TcpStream, start: Instant) -> std::io::Result<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("closed after {} bytes", buf.len()),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        if buf.len() >= end + 4 + len {
            let status = head[9..12].parse().unwrap();
            let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
            return Ok(Answer {
                status,
                head,
                body,
                took: start.elapsed(),
            });
        }
    }
}

/// POST `body` to `path` on a fresh connection and read the reply.
async fn post(addr: SocketAddr, path: &str, body: &str) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect(addr).await?;
    let start = Instant::now();
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    read_answer(&mut s, start).await
}

fn chat_body() -> String {
    chat_req("m", false).to_string()
}

/// The `q`-quantile of `xs` (sorted here).
fn quantile(xs: &mut [Duration], q: f64) -> Duration {
    xs.sort();
    let i = ((xs.len() as f64 * q).ceil() as usize).clamp(1, xs.len()) - 1;
    xs[i]
}

/// Reset the peak RSS (`VmHWM`) of process `pid` to its current RSS (Linux 4.0+).
fn reset_peak(pid: &str) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in KiB.
fn rss_kib(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// RELIABILITY 21: 2,000 concurrent requests at a gateway that serves 32 at once, in front
/// of a provider that takes 300 ms. The excess is refused with 503 and `Retry-After` at
/// once, the provider sees only the admitted requests and never more than 32 at a time,
/// the admitted ones take what they take without the flood, and the gateway's RSS stays
/// bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_max_in_flight_is_shed_at_once_and_costs_nothing_upstream() {
    const CAP: usize = 32;
    const FLOOD: usize = 2000;
    const DELAY: Duration = Duration::from_millis(300);
    const HOLD: Duration = Duration::from_secs(3);
    let mock = MockProvider::start(Profile::OpenAi).await;
    let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    {
        let starts = Arc::clone(&starts);
        mock.respond_with(move |body| {
            if body["user"] == "hold" {
                return Reply::chat("held").delay(HOLD);
            }
            starts.lock().unwrap().push(Instant::now());
            Reply::chat("ok").delay(DELAY)
        });
    }
    let dir = std::env::temp_dir().join(format!("gatehouse-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("flood.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nmax_in_flight = {CAP}\n[store]\nurl = \"sqlite::memory:\"\n\
             [providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\napi_key = \"sk-provider-secret-0000\"\nmodels = [\"*\"]\n",
            mock.base_url()
        ),
    )
    .unwrap();
    let (gw, url) = crate::cli::serve(&cfg).await;
    let pid = gw.pid().to_string();
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();

    // Baseline: exactly the capacity, all at once.
    let run = |n: usize| async move {
        let tasks: Vec<_> = (0..n)
            .map(|_| spawn(async move { post(addr, "/v1/chat/completions", &chat_body()).await }))
            .collect();
        let mut out = Vec::with_capacity(n);
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    };
    let mut base: Vec<Duration> = run(CAP)
        .await
        .into_iter()
        .map(|a| {
            let a = a.expect("a baseline request failed");
            assert_eq!(a.status, 200, "{}", a.body);
            a.took
        })
        .collect();
    let base_p99 = quantile(&mut base, 0.99);
    assert_eq!(mock.calls(), CAP);
    starts.lock().unwrap().clear();
    reset_peak(&pid);
    let (rss_before, _) = rss_kib(&pid);

    // The flood.
    let answers = run(FLOOD).await;
    let (rss_after, rss_peak) = rss_kib(&pid);
    let (mut admitted, mut refused) = (Vec::new(), Vec::new());
    for a in answers {
        let a = a.expect("a request of the flood got no reply");
        match a.status {
            200 => admitted.push(a.took),
            503 => {
                assert_eq!(a.header("retry-after"), Some("1"), "{}", a.head);
                let b = a.json();
                assert_eq!(b["error"]["code"], "unavailable", "{b}");
                assert!(
                    b["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("max_in_flight"),
                    "{b}"
                );
                refused.push(a.took);
            }
            s => panic!("unexpected status {s}: {}", a.body),
        }
    }
    let (n_ok, n_shed) = (admitted.len(), refused.len());
    let shed_p50 = quantile(&mut refused, 0.50);
    let shed_p99 = quantile(&mut refused, 0.99);
    let ok_p99 = quantile(&mut admitted, 0.99);
    let flood_calls = mock.calls() - CAP;
    let mut st = starts.lock().unwrap().clone();

    // At saturation (every place held by a slow request), one request at a time: the time a
    // refusal takes on its own, without a burst of 2,000 to get through first.
    let mut hold = chat_req("m", false);
    hold["user"] = json!("hold");
    let hold = hold.to_string();
    let calls = mock.calls();
    let holders: Vec<_> = (0..CAP)
        .map(|_| {
            let hold = hold.clone();
            spawn(async move { post(addr, "/v1/chat/completions", &hold).await })
        })
        .collect();
    let saturated = eventually(Duration::from_secs(10), || async {
        (mock.calls() == calls + CAP).then_some(())
    })
    .await;
    if saturated.is_none() {
        let mut seen = Vec::new();
        for h in holders {
            let a = h.await.unwrap();
            seen.push(a.map(|a| (a.status, a.body)));
        }
        panic!(
            "{} of {CAP} holders reached the provider: {seen:?}",
            mock.calls() - calls
        );
    }
    let mut probes = Vec::new();
    for _ in 0..100 {
        let a = post(addr, "/v1/chat/completions", &chat_body())
            .await
            .unwrap();
        assert_eq!(a.status, 503, "{}", a.body);
        probes.push(a.took);
    }
    let probe_p50 = quantile(&mut probes, 0.50);
    let probe_p99 = quantile(&mut probes, 0.99);
    for h in holders {
        let a = h.await.unwrap().unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
    }

    eprintln!(
        "FIGURES flood: {FLOOD} requests at once at max_in_flight {CAP}: {n_ok} admitted, \
         {n_shed} shed; refusal within the burst p50 {shed_p50:?} p99 {shed_p99:?}; refusal at \
         saturation, one at a time, p50 {probe_p50:?} p99 {probe_p99:?}; admitted p99 \
         {ok_p99:?} vs baseline p99 {base_p99:?} ({CAP} at once, no flood; provider delay \
         {DELAY:?}); gateway RSS {rss_before} KiB before, {rss_after} KiB after, peak \
         {rss_peak} KiB"
    );
    assert!(n_shed >= FLOOD / 2, "only {n_shed} of {FLOOD} were shed");
    assert_eq!(
        flood_calls, n_ok,
        "the provider saw other requests than the admitted ones"
    );
    // Never more than CAP at the provider at once: no window of a little less than the
    // provider's delay holds more than CAP request starts.
    st.sort();
    for (i, t) in st.iter().enumerate() {
        let within = st[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < DELAY - Duration::from_millis(50))
            .count();
        assert!(within <= CAP, "{within} requests at the provider at once");
    }
    // Generous bounds: a debug build, on a 2-core machine shared with other builds. What
    // they protect: a refusal is immediate, never queued behind admitted work (which takes
    // DELAY each: queueing the flood would take 2000 / 32 × 300 ms ≈ 19 s) and never a hang;
    // an admitted request waits at most for the burst's own handling, never for other
    // admitted work.
    assert!(
        probe_p99 < Duration::from_millis(250),
        "a refusal at saturation took {probe_p99:?} (p99)"
    );
    assert!(
        shed_p99 < Duration::from_secs(5),
        "refusals in the burst took {shed_p99:?} (p99)"
    );
    assert!(
        ok_p99 < base_p99 + shed_p99 + Duration::from_secs(1),
        "admitted p99 {ok_p99:?} against a baseline of {base_p99:?}"
    );
    assert!(
        rss_peak < rss_before + 64 * 1024,
        "the gateway's RSS peaked at {rss_peak} KiB from {rss_before} KiB"
    );
    // Every place was given back: the capacity serves again, whole.
    let again = run(CAP).await;
    assert!(
        again
            .iter()
            .all(|a| a.as_ref().is_ok_and(|a| a.status == 200)),
        "{:?}",
        again
            .iter()
            .find(|a| !a.as_ref().is_ok_and(|a| a.status == 200))
    );
}

/// Does an error body have the shape its schema gives it?
type Shaped = fn(&Value) -> bool;

/// Shed requests are refused in their caller's schema with `Retry-After`; health, readiness,
/// metrics and the admin API keep answering.
#[tokio::test]
async fn shed_requests_are_refused_in_the_callers_schema_and_health_still_answers() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.push(Reply::chat("held").delay(Duration::from_secs(2)));
    let admin = "admin-token-for-overload-000001";
    let cfg = one_provider("openai-compatible").replace(
        "[server]\n",
        &format!("[server]\nmax_in_flight = 1\nadmin_token = \"{admin}\"\n"),
    );
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let addr = gw.addr;
    let held = spawn(async move { post(addr, "/v1/chat/completions", &chat_body()).await });
    assert!(
        eventually(Duration::from_secs(5), || async {
            (mock.calls() == 1).then_some(())
        })
        .await
        .is_some()
    );

    let anthropic =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let gemini = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let responses = json!({"model": "m", "input": "hi"});
    let cases: [(&str, Value, Shaped); 4] = [
        ("/v1/chat/completions", chat_req("m", false), |b| {
            b["error"]["type"] == "api_error" && b["error"]["code"] == "unavailable"
        }),
        ("/v1/messages", anthropic, |b| {
            b["type"] == "error" && b["error"]["type"] == "overloaded_error"
        }),
        ("/v1beta/models/m:generateContent", gemini, |b| {
            b["error"]["status"] == "UNAVAILABLE" && b["error"]["code"] == 503
        }),
        ("/v1/responses", responses, |b| {
            b["error"]["code"] == "unavailable"
        }),
    ];
    for (path, body, shaped) in cases {
        let a = post(addr, path, &body.to_string()).await.unwrap();
        assert_eq!(a.status, 503, "{path}: {}", a.body);
        assert_eq!(a.header("retry-after"), Some("1"), "{path}");
        assert!(shaped(&a.json()), "{path}: {}", a.body);
        assert!(a.body.contains("max_in_flight"), "{path}: {}", a.body);
    }
    let c = client();
    for path in ["/healthz", "/readyz"] {
        let r = c.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let metrics = c
        .get(gw.url("/metrics"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("gatehouse_refusals_total{reason=\"overloaded\"}"),
        "{text}"
    );
    let keys = c
        .get(gw.url("/admin/api/keys"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), 200);
    assert_eq!(mock.calls(), 1, "a shed request reached the provider");

    // The held request is served, and its place is given back with its reply.
    let a = held.await.unwrap().unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let a = post(addr, "/v1/chat/completions", &chat_body())
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
}

/// A stream holds its place until its last event: the in-flight bound counts streams for
/// as long as they run.
#[tokio::test]
async fn a_stream_holds_its_place_until_it_ends() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.push(Reply::stream(&["a", "b", "c", "d"]).every(Duration::from_millis(400)));
    let cfg =
        one_provider("openai-compatible").replace("[server]\n", "[server]\nmax_in_flight = 1\n");
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let r = gw.chat(&chat_req("m", true)).await;
    assert_eq!(r.status(), 200);
    // The reply's head is out, its events are still coming: the place is taken.
    let a = post(gw.addr, "/v1/chat/completions", &chat_body())
        .await
        .unwrap();
    assert_eq!(a.status, 503, "{}", a.body);
    let text = r.text().await.unwrap();
    assert!(text.contains("[DONE]"), "{text}");
    let a = post(gw.addr, "/v1/chat/completions", &chat_body())
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
}

/// `max_buffered_body_bytes`: a declared body that does not fit is refused from its head,
/// a body without a length once its bytes pass what is left; the bytes come back when the
/// request ends.
#[tokio::test]
async fn bodies_past_the_buffer_budget_are_refused_with_503() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let cfg = one_provider("openai-compatible").replace(
        "[server]\n",
        "[server]\nmax_body_bytes = 1000000\nmax_buffered_body_bytes = 1000000\n",
    );
    let gw = Gateway::start(&cfg, &[&mock]).await;
    // A request that declares 900 kB and sends them slowly holds 900 kB of the budget.
    let mut big = chat_req("m", false);
    big["pad"] = Value::String(" ".repeat(900_000 - 60));
    let big = big.to_string();
    let mut held = TcpStream::connect(gw.addr).await.unwrap();
    let start = Instant::now();
    held.write_all(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
            big.len(),
            &big[..1000]
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Declared, does not fit: refused from the head.
    let mut small = chat_req("m", false);
    small["pad"] = Value::String(" ".repeat(200_000));
    let a = post(gw.addr, "/v1/chat/completions", &small.to_string())
        .await
        .unwrap();
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.header("retry-after"), Some("1"));
    assert!(a.body.contains("max_buffered_body_bytes"), "{}", a.body);
    // Chunked, no length: refused once it passes what is left.
    let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 30_000])));
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .expect("the 503 reaches the client");
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(mock.calls(), 0);

    // The held one finishes its body and is served; then the budget is free again.
    held.write_all(&big.as_bytes()[1000..]).await.unwrap();
    let a = read_answer(&mut held, start).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let a = post(gw.addr, "/v1/chat/completions", &small.to_string())
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(mock.calls(), 2);
}

/// A body trickled past `body_read_timeout` gets 408 in the caller's schema and its
/// connection closed; a slow body that arrives in time is served.
#[tokio::test]
async fn a_trickled_body_gets_408_and_its_connection_closed() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let cfg = one_provider("openai-compatible")
        .replace("[server]\n", "[server]\nbody_read_timeout = \"1s\"\n");
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let anthropic =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
            .to_string();
    let cases = [
        ("/v1/chat/completions", chat_body()),
        ("/v1/messages", anthropic.clone()),
    ];
    for (path, body) in &cases {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        let start = Instant::now();
        s.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
                body.len(),
                &body[..10]
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        // One byte every 200 ms, from a task, while the reply is read here.
        let (mut rd, mut wr) = s.into_split();
        let rest = body.as_bytes()[10..].to_vec();
        let trickle = spawn(async move {
            for b in rest {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if wr.write_all(&[b]).await.is_err() {
                    return;
                }
            }
        });
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), rd.read_to_end(&mut buf))
            .await
            .expect("the connection was not closed within 5 s");
        let took = start.elapsed();
        trickle.abort();
        assert!(closed.is_ok(), "{closed:?}");
        let text = String::from_utf8_lossy(&buf);
        assert!(text.starts_with("HTTP/1.1 408"), "{path}: {text}");
        let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        if path.contains("messages") {
            assert_eq!(body["type"], "error", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("body_read_timeout")
            );
        } else {
            assert_eq!(body["error"]["code"], "request_timeout", "{body}");
        }
        eprintln!("FIGURES trickle {path}: 408 and close after {took:?} (timeout 1 s)");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }
    assert_eq!(mock.calls(), 0);

    // Slow, but whole within the timeout: served.
    let body = chat_body();
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let start = Instant::now();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for piece in body.as_bytes().chunks(body.len() / 4 + 1) {
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.write_all(piece).await.unwrap();
    }
    let a = read_answer(&mut s, start).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
}

/// RELIABILITY 20: a 64 MiB body at the default 32 MiB limit, sent by Python's `urllib`
/// (which writes the whole body before it reads) and by curl, with a declared length and
/// chunked: every one reads the 413, none reaches the provider, and the gateway's RSS grows
/// by less than twice the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_clients_read_the_413_of_a_64_mib_body() {
    let have = |cmd: &str, arg: &str| {
        std::process::Command::new(cmd)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("python3", "--version") || !have("curl", "--version") {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have python3 and curl"
        );
        eprintln!("notice: python3 or curl not found; test skipped");
        return;
    }
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let limit = gatehouse::config::DEFAULT_MAX_BODY_BYTES;
    let size = 64 * 1024 * 1024;
    let dir = std::env::temp_dir().join(format!("gatehouse-413-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.json");
    {
        // Written in pieces: this process's own peak RSS is measured below.
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let head = br#"{"model":"m","messages":[],"pad":""#;
        f.write_all(head).unwrap();
        let piece = vec![b' '; 1 << 20];
        let mut left = size - head.len() - 2;
        while left > 0 {
            let n = left.min(piece.len());
            f.write_all(&piece[..n]).unwrap();
            left -= n;
        }
        f.write_all(b"\"}").unwrap();
    }
    let url = gw.url("/v1/chat/completions");
    let pid = std::process::id().to_string();
    reset_peak(&pid);
    let (rss_before, _) = rss_kib(&pid);
    let python = r#"
import sys, urllib.request, urllib.error
data = open(sys.argv[2], "rb").read()
headers = {"content-type": "application/json"}
if sys.argv[3] == "chunked":
    def gen():
        for i in range(0, len(data), 1 << 20):
            yield data[i:i + (1 << 20)]
    body = gen()  # urllib sends an iterable without a length chunked
else:
    body = data
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=body, headers=headers), timeout=60)
    print("status 200")
except urllib.error.HTTPError as e:
    print("status", e.code, e.read().decode())
except Exception as e:
    print("failed", repr(e))
"#;
    let runs: Vec<(&str, Vec<String>)> = vec![
        (
            "python3",
            vec![
                "-c".into(),
                python.into(),
                url.clone(),
                file.display().to_string(),
                "length".into(),
            ],
        ),
        (
            "python3",
            vec![
                "-c".into(),
                python.into(),
                url.clone(),
                file.display().to_string(),
                "chunked".into(),
            ],
        ),
        (
            "curl",
            vec![
                "-sS".into(),
                "-w".into(),
                "\nstatus %{http_code}".into(),
                "-H".into(),
                "content-type: application/json".into(),
                "--data-binary".into(),
                format!("@{}", file.display()),
                url.clone(),
            ],
        ),
        (
            "curl",
            vec![
                "-sS".into(),
                "-w".into(),
                "\nstatus %{http_code}".into(),
                "-H".into(),
                "content-type: application/json".into(),
                "-H".into(),
                "transfer-encoding: chunked".into(),
                "--data-binary".into(),
                format!("@{}", file.display()),
                url.clone(),
            ],
        ),
    ];
    for (cmd, args) in runs {
        let what = format!("{cmd} {}", args.last().unwrap());
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(cmd)
                .args(&args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stdout.contains("status 413") && stdout.contains("payload_too_large"),
            "{what}: stdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    let (rss_after, rss_peak) = rss_kib(&pid);
    let growth = rss_peak.saturating_sub(rss_before);
    eprintln!(
        "FIGURES 413: 64 MiB bodies (urllib and curl, declared and chunked) at a {} KiB limit: \
         RSS {rss_before} KiB before, {rss_after} KiB after, peak growth {growth} KiB",
        limit / 1024
    );
    assert!(
        growth < 2 * limit / 1024,
        "RSS grew by {growth} KiB for a {} KiB limit",
        limit / 1024
    );
    assert_eq!(mock.calls(), 0, "an oversized request reached the provider");
    let _ = std::fs::remove_dir_all(&dir);
}
