//! Secret hygiene (RELIABILITY 29): an error-heavy suite against the `gatehouse` binary,
//! whose providers echo every credential they were sent (and the config's other secrets)
//! in their error replies and mid-stream errors, with the gateway logging at TRACE for
//! every target, its requests recorded with their bodies, its metrics scraped, its traces
//! collected and its admin API read; then every byte of all of it is searched for each
//! canary secret: none may appear.

use std::io::{BufRead, Read};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::otlp;
use crate::support::wire::{chunk, gemini_chunk, gemini_stream, named_sse};
use crate::support::*;

const OPENAI_KEY: &str = "canary-openai-3vQ8pZ1LrT6wYb";
const ANTHROPIC_KEY: &str = "canary-anthropic-9KfX2mWq7Ze";
const GEMINI_KEY: &str = "canary-gemini-Hs4Yt8Lp0Nc2Rj";
const DOWN_KEY: &str = "canary-unreachable-Jx5Wd3Ko";
const VIRTUAL_KEY: &str = "canary-vkey-Rb5Jd1Qe8Uv3Mz";
const ADMIN_TOKEN: &str = "canary-admin-Wn6Gk2Sx9Ao4Lt";
const TRACE_TOKEN: &str = "canary-trace-Pm3Ci7Vz5Eb1Qs";
const HEADER_SECRET: &str = "canary-header-Ty2Fo6Mh4Kd8";
/// Keys a client sends that match nothing: a Gatehouse-shaped one and a Google-shaped one.
const INVALID_GATE_KEY: &str = "sk-gate-CanaryInvalidKey0123456789abcdefghijklmnopq";
const INVALID_GOOGLE_KEY: &str = "AIzaCanaryInvalidGoogleKey0123456789abcd";

const ALL: &[&str] = &[
    OPENAI_KEY,
    ANTHROPIC_KEY,
    GEMINI_KEY,
    DOWN_KEY,
    VIRTUAL_KEY,
    ADMIN_TOKEN,
    TRACE_TOKEN,
    HEADER_SECRET,
    INVALID_GATE_KEY,
    INVALID_GOOGLE_KEY,
];

/// What a careless provider says when it refuses `key`: the key itself, the headers that
/// carried it, a URL with it in the query, and the config's other secrets.
fn echo(key: &str) -> String {
    format!(
        "Incorrect API key provided: {key}. Request headers: Authorization: Bearer {key}, x-api-key: {key}, x-goog-api-key: {key}, api-key={key}, x-proxy-key: {HEADER_SECRET}. Also seen: {VIRTUAL_KEY} {ADMIN_TOKEN} {TRACE_TOKEN}. Retry at https://generativelanguage.googleapis.com/v1beta/models/m:generateContent?key={key}&alt=sse"
    )
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The mode a model's name asks of the mock: `{provider}-{mode}`.
fn mode(model: &str) -> &str {
    model.split_once('-').map_or("", |(_, m)| m)
}

fn openai_reply(model: &str) -> Reply {
    let e = echo(OPENAI_KEY);
    match mode(model) {
        "e401" => Reply::json(
            401,
            json!({"error": {"message": e, "type": "invalid_request_error", "param": e, "code": OPENAI_KEY}}),
        ),
        "e400" => Reply::json(
            400,
            json!({"object": "error", "message": e, "type": "invalid_request_error", "param": e, "code": 400}),
        ),
        "e500text" => Reply {
            body: crate::support::mock::Body::Raw(leak(e)),
            ..Reply::json(500, Value::Null)
        },
        "badjson" => Reply {
            body: crate::support::mock::Body::Raw(leak(format!(
                "{{\"id\": \"x\", \"choices\": \"{OPENAI_KEY}\", \"usage\": {{\"prompt_tokens\": \"{OPENAI_KEY}"
            ))),
            ..Reply::json(200, Value::Null)
        },
        _ => Reply::sse(vec![
            chunk(json!({"role": "assistant", "content": "Hel"}), None),
            json!({"error": {"message": e, "type": "server_error", "code": OPENAI_KEY}}),
        ]),
    }
}

fn anthropic_reply(model: &str) -> Reply {
    let e = echo(ANTHROPIC_KEY);
    let err = |status: u16, kind: &str| {
        Reply::json(
            status,
            json!({"type": "error", "error": {"type": kind, "message": e}}),
        )
    };
    match mode(model) {
        "e401" => err(401, "authentication_error"),
        "e400" => err(400, "invalid_request_error"),
        "e500text" => Reply {
            body: crate::support::mock::Body::Raw(leak(e)),
            ..Reply::json(500, Value::Null)
        },
        "badjson" => Reply {
            body: crate::support::mock::Body::Raw(leak(format!(
                "{{\"type\": \"message\", \"usage\": {{\"input_tokens\": \"{ANTHROPIC_KEY}"
            ))),
            ..Reply::json(200, Value::Null)
        },
        _ => named_sse(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
            ),
            (
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": e}}),
            ),
        ]),
    }
}

fn gemini_reply(path: &str) -> Reply {
    let model = path
        .rsplit('/')
        .next()
        .and_then(|m| m.split(':').next())
        .unwrap_or("");
    let e = echo(GEMINI_KEY);
    let err = |code: u16, status: &str| {
        Reply::json(
            code,
            json!({"error": {"code": code, "message": e, "status": status, "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": e, "description": e}]}]}}),
        )
    };
    match mode(model) {
        "e401" => err(401, "UNAUTHENTICATED"),
        "e400" => err(400, "INVALID_ARGUMENT"),
        "e500text" => Reply {
            body: crate::support::mock::Body::Raw(leak(e)),
            ..Reply::json(500, Value::Null)
        },
        "badjson" => Reply {
            body: crate::support::mock::Body::Raw(leak(format!(
                "{{\"usageMetadata\": {{\"promptTokenCount\": \"{GEMINI_KEY}"
            ))),
            ..Reply::json(200, Value::Null)
        },
        _ => gemini_stream(vec![
            gemini_chunk(json!([{"text": "Hel"}]), None),
            json!({"error": {"code": 500, "message": e, "status": "INTERNAL"}}),
        ]),
    }
}

fn config(dir: &std::path::Path, mocks: [&MockProvider; 3], collector: &otlp::Receiver) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
admin_token = "{ADMIN_TOKEN}"
stream_keepalive = "2s"

[providers.oai]
kind = "openai-compatible"
base_url = "{}"
api_key = "{OPENAI_KEY}"
models = ["oai-*"]
headers = {{ "x-proxy-key" = "{HEADER_SECRET}" }}
timeouts = {{ connect = "1s", first_byte = "5s", idle = "3s" }}

[providers.ant]
kind = "anthropic"
base_url = "{}"
api_key = "{ANTHROPIC_KEY}"
models = ["ant-*"]
timeouts = {{ connect = "1s", first_byte = "5s", idle = "3s" }}

[providers.gem]
kind = "gemini"
base_url = "{}"
api_key = "{GEMINI_KEY}"
models = ["gem-*"]
timeouts = {{ connect = "1s", first_byte = "5s", idle = "3s" }}

[providers.down]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
api_key = "{DOWN_KEY}"
models = ["down-*"]
timeouts = {{ connect = "1s", first_byte = "5s", idle = "3s" }}

[routing]
max_attempts = 1

[[keys]]
name = "tenant"
key = "{VIRTUAL_KEY}"

[log]
requests = true
bodies = "all"

[traces]
endpoint = "{}"
headers = {{ authorization = "Bearer {TRACE_TOKEN}" }}
sample = 1.0

[store]
url = "sqlite://{}/gatehouse.db"
"#,
        mocks[0].base_url(),
        mocks[1].base_url(),
        mocks[2].base_url(),
        collector.endpoint(),
        dir.display(),
    )
}

/// A request in client schema `schema` for `model`, with the valid key in the schema's
/// own header.
fn request(
    c: &reqwest::Client,
    base: &str,
    schema: &str,
    model: &str,
    stream: bool,
) -> reqwest::RequestBuilder {
    let msgs = json!([{"role": "user", "content": "hi"}]);
    match schema {
        "chat" => c
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(VIRTUAL_KEY)
            .json(&json!({"model": model, "messages": msgs, "stream": stream})),
        "messages" => c
            .post(format!("{base}/v1/messages"))
            .header("x-api-key", VIRTUAL_KEY)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": model, "max_tokens": 50, "messages": msgs, "stream": stream})),
        "responses" => c
            .post(format!("{base}/v1/responses"))
            .bearer_auth(VIRTUAL_KEY)
            .json(&json!({"model": model, "input": "hi", "stream": stream})),
        _ => {
            let method = if stream {
                "streamGenerateContent?alt=sse"
            } else {
                "generateContent"
            };
            c.post(format!("{base}/v1beta/models/{model}:{method}"))
                .header("x-goog-api-key", VIRTUAL_KEY)
                .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        }
    }
}

/// Everything a reply shows: status, headers and body.
async fn shown(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let mut out = format!("{status}\n");
    for (k, v) in r.headers() {
        out.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    out.push_str(&r.text().await.unwrap_or_default());
    (status, out)
}

/// The address the binary logged it listens on.
fn listening(log: &std::path::Path) -> Option<String> {
    let f = std::fs::File::open(log).ok()?;
    std::io::BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.contains("gatehouse listening"))
        .find_map(|l| {
            let at = l.find("addr=")? + 5;
            Some(l[at..].split_whitespace().next()?.to_owned())
        })
}

#[tokio::test]
async fn no_secret_leaves_the_gateway_whatever_fails() {
    let dir = std::env::temp_dir().join(format!("gh-secrets-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (oai, ant, gem) = (
        MockProvider::start(Profile::OpenAi).await,
        MockProvider::start(Profile::Anthropic).await,
        MockProvider::start(Profile::Gemini).await,
    );
    oai.respond_with(|body| openai_reply(body["model"].as_str().unwrap_or("")));
    ant.respond_with(|body| anthropic_reply(body["model"].as_str().unwrap_or("")));
    gem.respond_to(|path, _| gemini_reply(path));
    let collector = otlp::Receiver::start().await;
    let cfg_path = dir.as_path().join("gatehouse.toml");
    std::fs::write(
        &cfg_path,
        config(dir.as_path(), [&oai, &ant, &gem], &collector),
    )
    .unwrap();
    let log_path = dir.as_path().join("gatehouse.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["serve", "--config"])
        .arg(&cfg_path)
        .env("GATEHOUSE_LOG", "trace")
        .env("GATEHOUSE_WORKERS", "2")
        .stdout(std::fs::File::create(dir.as_path().join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let addr = eventually(Duration::from_secs(20), || async { listening(&log_path) }).await;
    let Some(addr) = addr else {
        let _ = child.kill();
        panic!(
            "the gateway did not start: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    };
    let base = format!("http://{addr}");
    let c = client();
    let mut seen = String::new();
    let mut requests = 0usize;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();

    // Every client schema × provider × failure.
    for schema in ["chat", "messages", "responses", "gemini"] {
        for provider in ["oai", "ant", "gem", "down"] {
            for (m, stream) in [
                ("e401", false),
                ("e400", false),
                ("e500text", false),
                ("badjson", false),
                ("streamerr", true),
                ("e401", true),
            ] {
                let model = format!("{provider}-{m}");
                let r = request(&c, &base, schema, &model, stream)
                    .send()
                    .await
                    .unwrap();
                let (status, text) = shown(r).await;
                assert_ne!(
                    status, 401,
                    "{schema} {model}: the valid key was refused: {text}"
                );
                *statuses.entry(status).or_default() += 1;
                requests += 1;
                seen.push_str(&text);
            }
        }
    }
    assert!(
        statuses.keys().any(|s| *s >= 400) && statuses.contains_key(&200),
        "the suite should see refusals and streams that fail after 200: {statuses:?}"
    );

    // Keys that match nothing, in every place a client may put one.
    let invalid: Vec<reqwest::RequestBuilder> = vec![
        c.post(format!("{base}/v1/chat/completions"))
            .bearer_auth(INVALID_GATE_KEY)
            .json(&chat_req("oai-e401", false)),
        c.post(format!("{base}/v1/messages"))
            .header("x-api-key", INVALID_GATE_KEY)
            .json(&json!({"model": "ant-e401", "max_tokens": 5, "messages": []})),
        c.post(format!("{base}/v1/responses"))
            .bearer_auth(INVALID_GOOGLE_KEY)
            .json(&json!({"model": "oai-e401", "input": "hi"})),
        c.post(format!(
            "{base}/v1beta/models/gem-e401:generateContent?key={INVALID_GOOGLE_KEY}"
        ))
        .json(&json!({"contents": []})),
        c.post(format!(
            "{base}/v1beta/models/gem-e401:generateContent?key={INVALID_GATE_KEY}"
        ))
        .json(&json!({"contents": []})),
        c.post(format!("{base}/v1beta/models/gem-e401:generateContent"))
            .header("x-goog-api-key", INVALID_GOOGLE_KEY)
            .json(&json!({"contents": []})),
        c.get(format!("{base}/admin/api/keys"))
            .bearer_auth(INVALID_GATE_KEY),
        c.get(format!("{base}/metrics"))
            .bearer_auth(INVALID_GOOGLE_KEY),
    ];
    for r in invalid {
        let (status, text) = shown(r.send().await.unwrap()).await;
        assert!(
            status == 401 || status == 403,
            "an invalid key got {status}: {text}"
        );
        requests += 1;
        seen.push_str(&text);
    }
    // The valid key as Gemini's `?key=`, against a provider that echoes it.
    let (_, text) = shown(
        c.post(format!(
            "{base}/v1beta/models/gem-e401:generateContent?key={VIRTUAL_KEY}"
        ))
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap(),
    )
    .await;
    requests += 1;
    seen.push_str(&text);

    // The records, with their bodies, through the admin API; then metrics and traces.
    let admin = |path: &str| {
        c.get(format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    let logged = eventually(Duration::from_secs(10), || async {
        let v: Value = admin("/admin/api/logs?limit=1000")
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let n = v["data"].as_array().map_or(0, Vec::len);
        (n >= 4 * 4 * 6).then_some(v)
    })
    .await
    .expect("the requests' records never all reached the admin API");
    seen.push_str(&logged.to_string());
    let ids: Vec<String> = logged["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["request_id"].as_str().map(str::to_owned))
        .collect();
    assert!(!ids.is_empty(), "{logged}");
    for id in &ids {
        let (_, text) = shown(admin(&format!("/admin/api/logs/{id}")).await.unwrap()).await;
        seen.push_str(&text);
    }
    for path in [
        "/metrics",
        "/admin/api/keys",
        "/admin/api/config",
        "/admin/api/routing",
        "/admin/api/usage",
        "/admin/api/budgets",
        "/admin/api/logs?format=csv&limit=1000",
        "/admin/api/logs?format=jsonl&limit=1000",
    ] {
        let (status, text) = shown(admin(path).await.unwrap()).await;
        assert!(status < 500, "{path}: {text}");
        seen.push_str(&text);
    }
    let spans = eventually(Duration::from_secs(10), || async {
        let s = collector.spans();
        (s.len() >= ids.len()).then_some(s)
    })
    .await
    .unwrap_or_else(|| collector.spans());
    assert!(!spans.is_empty(), "no trace reached the collector");
    seen.push_str(&format!("{spans:?}"));
    // The resources of the exports (their headers carry the collector's own credential,
    // which is where it has to go).
    for (_, resource) in collector.exports() {
        seen.push_str(&format!("{resource:?}"));
    }
    // The CLI reads the same records.
    seen.push_str(&run_cli(&cfg_path, &["logs", "--format", "json"]));

    // Stop the gateway (SIGTERM), then read its log and its database.
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while child.try_wait().ok().flatten().is_none() {
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut log = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let log_lines = log.lines().count();
    let mut db = Vec::new();
    for entry in std::fs::read_dir(dir.as_path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("gatehouse.db"))
        {
            db.extend(std::fs::read(&p).unwrap());
        }
    }
    let db = String::from_utf8_lossy(&db).into_owned();
    let stdout = std::fs::read_to_string(dir.as_path().join("stdout.log")).unwrap_or_default();

    // The suite did reach the places a secret could leak from.
    assert!(log_lines > 500, "only {log_lines} log lines at TRACE");
    assert!(
        log.contains(" TRACE ") && log.contains("hyper_util"),
        "the log has no TRACE line of a dependency"
    );
    assert!(log.contains("gatehouse::request"), "no request log line");
    assert!(
        seen.contains("gatehouse_requests_total"),
        "metrics not scraped"
    );

    let sources = [
        ("replies, admin API, metrics, traces, CLI", &seen),
        ("log", &log),
        ("database", &db),
        ("stdout", &stdout),
    ];
    let mut hits = Vec::new();
    for (what, text) in sources {
        for canary in ALL {
            let n = text.matches(canary).count();
            if n > 0 {
                let at = text.find(canary).unwrap();
                let from = text.floor_char_boundary(at.saturating_sub(200));
                let to = text.ceil_char_boundary((at + 200).min(text.len()));
                hits.push(format!("{canary} ×{n} in {what}: …{}…", &text[from..to]));
            }
        }
    }
    let bytes = seen.len() + log.len() + db.len() + stdout.len();
    eprintln!(
        "secret hygiene: {requests} requests, {log_lines} log lines ({} bytes), {} spans, {bytes} bytes searched for {} canaries: {} hits",
        log.len(),
        spans.len(),
        ALL.len(),
        hits.len()
    );
    assert!(hits.is_empty(), "secrets leaked:\n{}", hits.join("\n\n"));
}
