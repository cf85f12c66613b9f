//! The connection edge (RELIABILITY 19 and 21, issue #29): what a client connection may hold
//! and for how long. Silent, trickling and half-HTTP/2 connections are closed at the head
//! deadline; idle connections are closed (HTTP/2 with GOAWAY); an HTTP/2 peer that stops
//! answering pings is dropped; rapid resets end in GOAWAY; at `max_connections` new
//! connections wait while open ones are served; out of descriptors, the accept loop backs off.
//! Timeouts are short in the tests' configs, except in the slowloris test, which runs the
//! defaults.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::support::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: with the magic, a whole client connection preface.
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];
const GOAWAY: u8 = 0x7;
const PING: u8 = 0x6;
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n";

/// The one-provider config with `server` lines added to its `[server]` table.
fn config(server: &str) -> String {
    one_provider("openai-compatible").replace("[server]\n", &format!("[server]\n{server}\n"))
}

/// Read until the peer closes (or resets) the connection: what it sent, and when it closed.
/// Fails if it is still open after `within`.
async fn read_to_close(s: &mut TcpStream, within: Duration) -> (Vec<u8>, Instant) {
    let read = async {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    match tokio::time::timeout(within, read).await {
        Ok(out) => (out, Instant::now()),
        Err(_) => panic!("the connection was still open after {within:?}"),
    }
}

/// The types of the HTTP/2 frames in `bytes` (a server's side of a connection).
fn frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

/// One request on a kept-alive HTTP/1 connection: the status line, after reading the whole
/// reply (`/healthz`'s is short and has a length).
async fn healthz_on(s: &mut TcpStream) -> String {
    s.write_all(HEALTHZ).await.unwrap();
    let reply = read_reply(s).await;
    reply.lines().next().unwrap_or("").to_owned()
}

/// The p-th percentile of `v` (sorted in place).
fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// Open descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[tokio::test]
async fn silent_trickling_and_half_http2_connections_are_closed_at_the_head_deadline() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(
        &config("header_read_timeout = \"1s\"\nidle_timeout = \"30s\""),
        &[&mock],
    )
    .await;
    let half_settings = [PREFACE, &[0, 0, 6, 4, 0, 0, 0, 0, 0][..]].concat();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("h1 that sends nothing", vec![], false),
        (
            "h1 half a head",
            b"GET /healthz HTTP/1.1\r\nho".to_vec(),
            false,
        ),
        (
            "h1 one byte every 300 ms",
            b"GET /healthz HTTP/1.1\r\n".to_vec(),
            true,
        ),
        ("half the HTTP/2 magic", PREFACE[..12].to_vec(), false),
        ("the HTTP/2 magic without SETTINGS", PREFACE.to_vec(), false),
        ("the magic and half a SETTINGS frame", half_settings, false),
    ];
    let mut tasks = Vec::new();
    for (name, bytes, trickle) in cases {
        let addr = gw.addr;
        tasks.push(spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let start = Instant::now();
            if trickle {
                let (mut r, mut w) = s.into_split();
                let writer = spawn(async move {
                    for b in bytes {
                        if w.write_all(&[b]).await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    w
                });
                let mut buf = [0u8; 64];
                let closed = tokio::time::timeout(Duration::from_secs(5), async {
                    loop {
                        match r.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                })
                .await;
                assert!(closed.is_ok(), "{name}: still open after 5 s");
                writer.abort();
                return (name, start.elapsed());
            }
            s.write_all(&bytes).await.unwrap();
            let (_, at) = read_to_close(&mut s, Duration::from_secs(5)).await;
            (name, at - start)
        }));
    }
    for t in tasks {
        let (name, took) = t.await.unwrap();
        eprintln!("{name}: closed after {took:?}");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
            "{name}: closed after {took:?}, the bound is 1 s"
        );
    }
    // The gateway still serves.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    assert!(healthz_on(&mut s).await.contains("200"));
}

#[tokio::test]
async fn an_idle_http1_connection_is_closed_between_requests() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    // The wait for the next request is a head read: `header_read_timeout` bounds it...
    let gw = Gateway::start(
        &config("header_read_timeout = \"1s\"\nidle_timeout = \"30s\""),
        &[&mock],
    )
    .await;
    // ... and `idle_timeout` when it is the shorter.
    let gw2 = Gateway::start(
        &config("header_read_timeout = \"20s\"\nidle_timeout = \"1s\""),
        &[&mock],
    )
    .await;
    for (addr, bound) in [(gw.addr, "header_read_timeout"), (gw2.addr, "idle_timeout")] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut served = Instant::now();
        for i in 0..3 {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            assert!(healthz_on(&mut s).await.contains("200"));
            served = Instant::now();
        }
        let (rest, at) = read_to_close(&mut s, Duration::from_secs(5)).await;
        let took = at - served;
        eprintln!("idle HTTP/1 connection ({bound} 1 s): closed {took:?} after its last reply");
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
        assert!(
            took >= Duration::from_millis(800) && took < Duration::from_millis(2500),
            "{bound}: closed {took:?} after the last reply; the bound is 1 s"
        );
    }
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_with_goaway() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(
        &config("header_read_timeout = \"1s\"\nidle_timeout = \"1s\""),
        &[&mock],
    )
    .await;

    // A client that speaks HTTP/2 (prior knowledge), is served, then goes quiet.
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (mut send, conn) = h2::client::handshake(tcp).await.unwrap();
    let conn = spawn(conn);
    let req = http::Request::get(format!("http://{}/healthz", gw.addr))
        .body(())
        .unwrap();
    let (resp, _) = send.send_request(req, true).unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    while let Some(chunk) = body.data().await {
        chunk.unwrap();
    }
    let served = Instant::now();
    // A GOAWAY with NO_ERROR ends the client's connection cleanly.
    let ended = tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("the idle HTTP/2 connection was still open after 5 s")
        .unwrap();
    let took = served.elapsed();
    eprintln!(
        "idle HTTP/2 connection (idle_timeout 1 s): ended {took:?} after its last reply: {ended:?}"
    );
    assert!(ended.is_ok(), "not a graceful GOAWAY: {ended:?}");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(2500),
        "ended {took:?} after the last reply; the bound is 1 s"
    );
    drop(send);

    // A peer that sends its preface and then nothing at all: GOAWAY, then closed.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let start = Instant::now();
    s.write_all(&[PREFACE, &SETTINGS[..]].concat())
        .await
        .unwrap();
    let (got, at) = read_to_close(&mut s, Duration::from_secs(5)).await;
    let types = frame_types(&got);
    eprintln!(
        "silent HTTP/2 peer: frames {types:?}, closed after {:?}",
        at - start
    );
    assert!(types.contains(&GOAWAY), "no GOAWAY: {types:?}");
    // idle_timeout, then up to header_read_timeout for a peer that does not acknowledge.
    assert!(at - start < Duration::from_millis(3500), "{:?}", at - start);
}

#[tokio::test]
async fn an_http2_peer_that_stops_answering_pings_is_dropped() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(
        &config(
            "idle_timeout = \"30s\"\nhttp2_keepalive_interval = \"300ms\"\nhttp2_keepalive_timeout = \"300ms\"",
        ),
        &[&mock],
    )
    .await;
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let start = Instant::now();
    s.write_all(&[PREFACE, &SETTINGS[..]].concat())
        .await
        .unwrap();
    // Never reads an answer to anything, so never acknowledges a PING.
    let (got, at) = read_to_close(&mut s, Duration::from_secs(5)).await;
    let types = frame_types(&got);
    let took = at - start;
    eprintln!("unresponsive HTTP/2 peer: frames {types:?}, dropped after {took:?}");
    assert!(types.contains(&PING), "no PING: {types:?}");
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "dropped after {took:?}: the pings' bound is 0.6 s, the idle one 30 s"
    );
}

/// An HTTP/2 HEADERS frame opening stream `id` with a POST to the chat endpoint (HPACK: the
/// static table's `:method POST`, `:scheme http`, a literal `:path` and `:authority`), its
/// body still to come; then RST_STREAM(CANCEL) on it.
fn open_and_reset(id: u32, out: &mut Vec<u8>) {
    let path = b"/v1/chat/completions";
    let host = b"127.0.0.1";
    let mut block = vec![0x83, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path);
    block.extend_from_slice(&[0x01, host.len() as u8]);
    block.extend_from_slice(host);
    let len = block.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(&[0x1, 0x4]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&block);
    out.extend_from_slice(&[0, 0, 4, 0x3, 0]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&8u32.to_be_bytes());
}

#[tokio::test]
async fn ten_thousand_rapid_resets_end_in_goaway() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let s = TcpStream::connect(gw.addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    let start = Instant::now();
    // The server's frames, read as they come.
    let reader = spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 16384];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), r.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return (got, true),
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                Err(_) => return (got, false),
            }
        }
    });
    w.write_all(&[PREFACE, &SETTINGS[..]].concat())
        .await
        .unwrap();
    let mut written = 0u32;
    // 10,000 streams opened and reset at once, in batches of 100.
    'send: for batch in 0..100u32 {
        let mut out = Vec::new();
        for i in 0..100 {
            open_and_reset(1 + 2 * (batch * 100 + i), &mut out);
        }
        if w.write_all(&out).await.is_err() {
            break 'send;
        }
        written += 100;
    }
    let (got, closed) = reader.await.unwrap();
    let took = start.elapsed();
    // The frames, and a GOAWAY's error code.
    let mut rest = &got[..];
    let mut goaway = None;
    let mut headers = 0;
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let end = (9 + len).min(rest.len());
        match rest[3] {
            GOAWAY if len >= 8 => {
                goaway = Some(u32::from_be_bytes([rest[13], rest[14], rest[15], rest[16]]));
            }
            0x1 => headers += 1,
            _ => {}
        }
        rest = &rest[end..];
    }
    eprintln!(
        "rapid reset: {written} of 10,000 streams opened and reset written; the server answered {headers} with headers, sent GOAWAY {goaway:?} and closed: {closed}, after {took:?}"
    );
    assert_eq!(goaway, Some(0xb), "no GOAWAY ENHANCE_YOUR_CALM");
    assert!(closed, "the connection stayed open");
    // Others are still served.
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    assert!(healthz_on(&mut s).await.contains("200"));
}

#[tokio::test]
async fn at_the_cap_new_connections_wait_while_open_ones_are_served() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let admin = "admin-token-for-the-edge-test-0001";
    let gw = Gateway::start(
        &config(&format!(
            "admin_token = \"{admin}\"\nmax_connections = 10\nheader_read_timeout = \"1500ms\""
        )),
        &[&mock],
    )
    .await;
    // The client already connected.
    let mut kept = TcpStream::connect(gw.addr).await.unwrap();
    assert!(healthz_on(&mut kept).await.contains("200"));
    // 20 connections that send nothing: 9 fill the cap, 11 wait in the backlog.
    let mut silent = Vec::new();
    for _ in 0..20 {
        let s = TcpStream::connect(gw.addr).await.unwrap();
        let start = Instant::now();
        silent.push(spawn(async move {
            let mut s = s;
            let (_, at) = read_to_close(&mut s, Duration::from_secs(10)).await;
            at - start
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A newcomer at the cap waits for a place.
    let newcomer = spawn({
        let addr = gw.addr;
        async move {
            let start = Instant::now();
            let mut s = TcpStream::connect(addr).await.unwrap();
            let status = healthz_on(&mut s).await;
            (status, start.elapsed())
        }
    });
    // Meanwhile the open connection is served, and counted among at most 10.
    let metrics = format!(
        "GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {admin}\r\n\r\n"
    );
    let mut served = 0;
    let mut most_open = 0.0f64;
    while !newcomer.is_finished() {
        let t = Instant::now();
        assert!(healthz_on(&mut kept).await.contains("200"));
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        served += 1;
        kept.write_all(metrics.as_bytes()).await.unwrap();
        let text = read_reply(&mut kept).await;
        let open: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("gatehouse_client_connections "))
            .and_then(|v| v.trim().parse().ok())
            .expect("no gatehouse_client_connections gauge");
        most_open = most_open.max(open);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, waited) = newcomer.await.unwrap();
    eprintln!(
        "at the cap (10): the open connection answered {served} requests; the newcomer waited {waited:?}; at most {most_open} open"
    );
    assert!(status.contains("200"), "{status}");
    assert!(
        most_open <= 10.0,
        "{most_open} connections open, the cap is 10"
    );
    assert!(
        waited >= Duration::from_millis(1000),
        "the newcomer was served after {waited:?}: not held by the cap"
    );
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    assert!(served >= 5, "{served}");
    for t in silent {
        let took = t.await.unwrap();
        assert!(
            took < Duration::from_secs(8),
            "a silent connection closed after {took:?}"
        );
    }
}

/// A whole reply with a content length, as text.
async fn read_reply(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed mid-reply: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
    }
}

/// How a bad connection behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bad {
    /// HTTP/1 that sends nothing.
    Silent,
    /// HTTP/1 that sends one header byte every `period`.
    Trickle,
    /// Half the HTTP/2 magic.
    HalfMagic,
    /// The HTTP/2 magic, no SETTINGS.
    Magic,
    /// The magic and half a SETTINGS frame.
    HalfSettings,
}

/// Open a bad connection to `addr`; once the gateway closes it, how long after connecting.
async fn bad_connection(addr: std::net::SocketAddr, kind: Bad, period: Duration) -> Duration {
    let s = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let (mut r, mut w) = s.into_split();
    let bytes: Vec<u8> = match kind {
        Bad::Silent => vec![],
        Bad::Trickle => b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-padding: aaaaaaaa".to_vec(),
        Bad::HalfMagic => PREFACE[..12].to_vec(),
        Bad::Magic => PREFACE.to_vec(),
        Bad::HalfSettings => [PREFACE, &[0, 0, 6, 4, 0, 0, 0, 0, 0][..]].concat(),
    };
    let writer = spawn(async move {
        if kind == Bad::Trickle {
            for b in bytes {
                if w.write_all(&[b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(period).await;
            }
        } else {
            let _ = w.write_all(&bytes).await;
        }
        // Keep the write half (and so the connection) open until the gateway closes it.
        std::future::pending::<()>().await;
    });
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    writer.abort();
    assert!(
        closed.is_ok(),
        "a {kind:?} connection was still open after 30 s"
    );
    start.elapsed()
}

/// A chat request on the client's kept-alive connection: its latency.
async fn timed_chat(c: &reqwest::Client, url: &str) -> Duration {
    let t = Instant::now();
    let r = c
        .post(url)
        .json(&chat_req("gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    t.elapsed()
}

/// Attack `addr` with `n` bad connections (kinds in turn) while a client sends chat
/// requests on its own kept-alive connection: the client's latencies before and during, the
/// bad connections' lifetimes, and the most descriptors this process held.
async fn under_attack(
    gw: &Gateway,
    n: usize,
    kinds: &[Bad],
    period: Duration,
) -> (Vec<Duration>, Vec<Duration>, Vec<(Bad, Duration)>, usize) {
    let c = reqwest::Client::new();
    let url = gw.url("/v1/chat/completions");
    let mut baseline = Vec::new();
    for _ in 0..200 {
        baseline.push(timed_chat(&c, &url).await);
    }
    // The attacker runs on a thread and runtime of its own, so that its tasks do not queue
    // behind the gateway's and the client's (the machine's cores are still shared).
    let addr = gw.addr;
    let kinds = kinds.to_vec();
    let attacker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut bad = Vec::new();
            for i in 0..n {
                let kind = kinds[i % kinds.len()];
                bad.push((kind, spawn(bad_connection(addr, kind, period))));
                // In waves, as connections arrive in practice: 2,000 connects at once would
                // overflow the listener's accept queue (1,024), and Linux silently drops the
                // handshakes past it, leaving a silent client's socket open on its side alone.
                if i % 100 == 99 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            let mut lifetimes = Vec::new();
            for (kind, t) in bad {
                lifetimes.push((kind, t.await.unwrap()));
            }
            lifetimes
        })
    });
    let mut during = Vec::new();
    let mut most_fds = 0;
    while !attacker.is_finished() {
        during.push(timed_chat(&c, &url).await);
        most_fds = most_fds.max(open_fds());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lifetimes = attacker.join().unwrap();
    (baseline, during, lifetimes, most_fds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_and_trickling_sockets_are_closed_while_a_client_is_served() {
    let limit = gatehouse::server::edge::raise_open_file_limit().unwrap_or(1024);
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(
        &config("header_read_timeout = \"2s\"\nidle_timeout = \"30s\""),
        &[&mock],
    )
    .await;
    let kinds = [
        Bad::Silent,
        Bad::Trickle,
        Bad::HalfMagic,
        Bad::Magic,
        Bad::HalfSettings,
    ];
    let (mut baseline, mut during, lifetimes, most_fds) =
        under_attack(&gw, 2000, &kinds, Duration::from_secs(1)).await;
    let (p99_base, p99_during) = (
        percentile(&mut baseline, 0.99),
        percentile(&mut during, 0.99),
    );
    for kind in kinds {
        let mut l: Vec<Duration> = lifetimes
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, d)| *d)
            .collect();
        eprintln!(
            "{kind:?} x{}: closed after {:?} (median) .. {:?} (max)",
            l.len(),
            percentile(&mut l, 0.5),
            percentile(&mut l, 1.0)
        );
    }
    let ratio = p99_during.as_secs_f64() / p99_base.as_secs_f64();
    eprintln!(
        "2,000 bad sockets, header_read_timeout 2 s: client p50 {:?} / p99 {p99_base:?} before, p50 {:?} / p99 {p99_during:?} during ({ratio:.2}x, {} requests); at most {most_fds} descriptors open in this process (limit {limit})",
        percentile(&mut baseline, 0.5),
        percentile(&mut during, 0.5),
        during.len()
    );
    let longest = lifetimes.iter().map(|(_, d)| *d).max().unwrap();
    assert!(
        longest < Duration::from_secs(5),
        "a bad socket lived {longest:?}; the bound is 2 s"
    );
    // Not before the deadline (less the time the attacker's task may take to note its connect).
    assert!(
        lifetimes
            .iter()
            .all(|(_, d)| *d >= Duration::from_millis(1500)),
        "closed before the bound"
    );
    assert!(
        (most_fds as u64) < limit,
        "{most_fds} descriptors, limit {limit}"
    );
    assert!(
        during.len() >= 20,
        "the client got {} answers during the attack",
        during.len()
    );
    // Generous: the client must not be starved (RELIABILITY 19 aims at < 2x).
    assert!(
        p99_during < (p99_base * 20).max(Duration::from_millis(250)),
        "client p99 {p99_during:?} during the attack against {p99_base:?} before"
    );
}

/// RELIABILITY 19 with the default timeouts: 500 connections each sending one header byte
/// every 5 s are all closed within 10 s, while a client's p99 is measured against its
/// baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_500_connections_are_closed_within_the_default_10_s() {
    let limit = gatehouse::server::edge::raise_open_file_limit().unwrap_or(1024);
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&mock).await;
    let (mut baseline, mut during, lifetimes, most_fds) =
        under_attack(&gw, 500, &[Bad::Trickle], Duration::from_secs(5)).await;
    let (p99_base, p99_during) = (
        percentile(&mut baseline, 0.99),
        percentile(&mut during, 0.99),
    );
    let mut l: Vec<Duration> = lifetimes.iter().map(|(_, d)| *d).collect();
    let (median, longest) = (percentile(&mut l, 0.5), percentile(&mut l, 1.0));
    let ratio = p99_during.as_secs_f64() / p99_base.as_secs_f64();
    eprintln!(
        "slowloris x500 (1 byte / 5 s, defaults): closed after {median:?} (median) .. {longest:?} (max); client p99 {p99_base:?} before, {p99_during:?} during ({ratio:.2}x, {} requests); at most {most_fds} descriptors (limit {limit})",
        during.len()
    );
    // The deadline is 10 s from the accept; the client's clock starts at its connect.
    assert!(
        longest < Duration::from_millis(10_500),
        "a slowloris lived {longest:?}"
    );
    assert!(
        median >= Duration::from_millis(9_500),
        "closed before the deadline: {median:?}"
    );
    assert!(
        p99_during < (p99_base * 20).max(Duration::from_millis(250)),
        "client p99 {p99_during:?} during the attack against {p99_base:?} before"
    );
}

/// CPU time (user + system, in clock ticks of 10 ms) the process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 and 15 of stat(5), counted from the state (field 3) here.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// `gatehouse serve` under `ulimit -n nofile` with `server` in its `[server]` table.
async fn serve_with_nofile(
    name: &str,
    nofile: u32,
    server: &str,
) -> (crate::cli::Running, std::net::SocketAddr) {
    let cfg = crate::cli::write(
        name,
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{server}\n[store]\nurl = \"sqlite::memory:\"\n"
        ),
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -n {nofile} && exec \"$0\" serve --log-format json --config \"$1\""
        ))
        .arg(env!("CARGO_BIN_EXE_gatehouse"))
        .arg(&cfg);
    let (running, url) = crate::cli::start(cmd).await;
    let addr = url.trim_start_matches("http://").parse().unwrap();
    (running, addr)
}

/// Log lines of `running` whose message is `msg`.
fn logged(running: &crate::cli::Running, msg: &str) -> Vec<serde_json::Value> {
    running
        .1
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == msg)
        .collect()
}

/// `n` connections that send nothing, opened in waves; kept open until dropped.
async fn silent_connections(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(TcpStream::connect(addr).await.unwrap());
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    v
}

#[tokio::test]
async fn out_of_descriptors_the_accept_loop_backs_off_and_recovers() {
    // A cap set above what 128 descriptors allow: the accepts run out of descriptors.
    let (gw, addr) = serve_with_nofile(
        "emfile.toml",
        128,
        "max_connections = 1000\nheader_read_timeout = \"2s\"",
    )
    .await;
    let pid = gw.0.as_ref().unwrap().id();
    let mut kept = TcpStream::connect(addr).await.unwrap();
    assert!(healthz_on(&mut kept).await.contains("200"));
    let silent = silent_connections(addr, 200).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (before, t) = (cpu_ticks(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu = Duration::from_millis((cpu_ticks(pid) - before) * 10).as_secs_f64()
        / t.elapsed().as_secs_f64();
    // The open connection is served meanwhile.
    let t = Instant::now();
    assert!(healthz_on(&mut kept).await.contains("200"));
    let kept_latency = t.elapsed();
    let warnings = logged(&gw, "accept failed; backing off");
    eprintln!(
        "out of descriptors (ulimit -n 128, 200 silent connections): gateway CPU {:.0}% of a core, {} warning(s) {:?}, the open connection answered in {kept_latency:?}",
        cpu * 100.0,
        warnings.len(),
        warnings.first().map(|w| w["fields"]["error"].clone())
    );
    assert!(
        !warnings.is_empty(),
        "the gateway never ran out of descriptors: the test tests nothing"
    );
    assert!(
        warnings.len() <= 2,
        "{} warnings: not rate-limited",
        warnings.len()
    );
    assert!(
        cpu < 0.3,
        "the accept loop spun: {:.0}% of a core",
        cpu * 100.0
    );
    // The silent connections are closed at the head deadline, those in the backlog once
    // accepted; then a newcomer is served.
    drop(silent);
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), healthz_on(&mut s))
        .await
        .expect("a new connection was not served within 15 s");
    eprintln!(
        "out of descriptors: a new connection served {:?} after the silent ones left",
        t.elapsed()
    );
    assert!(status.contains("200"), "{status}");
}

#[tokio::test]
async fn the_default_cap_keeps_the_gateway_within_its_descriptors() {
    // 200 descriptors: the default cap is (200 - 64) / 2 = 68 connections.
    let (gw, addr) = serve_with_nofile("cap.toml", 200, "header_read_timeout = \"2s\"").await;
    let mut kept = TcpStream::connect(addr).await.unwrap();
    assert!(healthz_on(&mut kept).await.contains("200"));
    let silent = silent_connections(addr, 150).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..10 {
        let t = Instant::now();
        assert!(healthz_on(&mut kept).await.contains("200"));
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = logged(&gw, "client connections");
    let cap = started
        .first()
        .map(|v| v["fields"]["max_connections"].clone());
    let warnings = logged(&gw, "accept failed; backing off");
    eprintln!(
        "ulimit -n 200, 150 silent connections: max_connections {cap:?}, {} accept failure(s)",
        warnings.len()
    );
    assert_eq!(cap, Some(serde_json::json!(68)));
    assert!(warnings.is_empty(), "ran out of descriptors: {warnings:?}");
    drop(silent);
    let mut s = TcpStream::connect(addr).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), healthz_on(&mut s))
        .await
        .expect("a new connection was not served within 15 s");
    assert!(status.contains("200"), "{status}");
}
