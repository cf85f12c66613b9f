//! The binary: `--version`, `check`, the loopback rule, and SIGTERM drain.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

pub(crate) fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
}

pub(crate) fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gatehouse-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn version() {
    let out = bin().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("gatehouse {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_prints_every_error_with_positions_and_no_secrets() {
    let p = write(
        "bad.toml",
        "[server]\nlisten = \"nowhere\"\n[providers.o]\nkind = \"openai\"\napi_key = \"${CANARY}\"\nbase_url = \"ftp://${CANARY}@h\"\nbogus = 1\n[[routes]]\nmatch = { model = \"x\" }\ntargets = [\"ghost/y\"]\n",
    );
    let out = bin()
        .args(["check", "--config"])
        .arg(&p)
        .env("CANARY", "sk-canary-secret-123456")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = p.display().to_string();
    for needle in [
        format!("{file}:2:10:"),
        format!("{file}:6:12:"),
        format!("{file}:7:1: unknown key `providers.o.bogus`"),
        format!("{file}:10:12:"),
    ] {
        assert!(err.contains(&needle), "missing {needle} in:\n{err}");
    }
    assert!(!err.contains("sk-canary"), "secret printed:\n{err}");
    assert!(err.contains("4 error(s)"), "{err}");

    let missing = bin()
        .args(["check", "--config"])
        .arg(&p)
        .env_remove("CANARY")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("environment variable `CANARY` is not set")
    );
}

#[test]
fn check_accepts_the_example_config() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let out = bin()
        .args(["check", "--config"])
        .arg(example)
        .env("OPENAI_API_KEY", "x")
        .env("MISTRAL_API_KEY", "y")
        .env("GATEHOUSE_ADMIN_TOKEN", "z")
        .env("ALICE_KEY", "sk-alice-0123456789abcdef")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: 3 provider(s), 5 route(s)"));
}

#[test]
fn serve_refuses_a_public_address_without_auth() {
    let out = bin()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("GATEHOUSE_CONFIG")
        // The embedded default opens `gatehouse.db` in the working directory.
        .current_dir(write("x", "").parent().unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure-no-auth"));
}

/// A config file `name` for `gatehouse serve`: port 0, `server` lines added to `[server]`, a
/// fresh SQLite store of its own (the path returned beside the config's) and one
/// OpenAI-compatible provider, `mock`.
fn sqlite_config(
    name: &str,
    server: &str,
    mock: &MockProvider,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-{}-{}",
        name.trim_end_matches(".toml"),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("log.db");
    let _ = std::fs::remove_file(&db);
    let cfg = write(
        name,
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{server}[store]\nurl = \"sqlite://{}\"\n[providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\n",
            db.display(),
            mock.base_url()
        ),
    );
    (cfg, db)
}

/// A `gatehouse serve` process, killed if the test ends without waiting for it.
pub(crate) struct Running(
    pub(crate) Option<std::process::Child>,
    /// Its log lines after the "listening" one.
    pub(crate) std::sync::Arc<std::sync::Mutex<Vec<String>>>,
);

impl Running {
    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    pub(crate) fn signal(&self, sig: &str) {
        let child = self.0.as_ref().unwrap();
        let status = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait for the process to exit.
    pub(crate) async fn exit(mut self) -> std::process::ExitStatus {
        let mut child = self.0.take().unwrap();
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `gatehouse serve --config cfg`, its config listening on port 0: the running process and
/// its URL.
pub(crate) async fn serve(cfg: &std::path::Path) -> (Running, String) {
    let mut cmd = bin();
    cmd.args(["serve", "--log-format", "json", "--config"])
        .arg(cfg);
    start(cmd).await
}

/// Start a `gatehouse serve ... --log-format json` command listening on port 0: the running
/// process and its URL, read from its "listening" log line (so no other process can have
/// taken the port), once it answers `/healthz`.
pub(crate) async fn start(mut cmd: Command) -> (Running, String) {
    use std::io::BufRead;
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let logged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let running = Running(Some(child), std::sync::Arc::clone(&logged));
    let addr = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stderr).lines();
        let addr = lines.by_ref().map_while(Result::ok).find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(&line).ok()?;
            (v["fields"]["message"] == "gatehouse listening")
                .then(|| v["fields"]["addr"].as_str().map(str::to_owned))
                .flatten()
        });
        // Keep reading (and keeping), so that the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                logged.lock().unwrap().push(line);
            }
        });
        addr
    })
    .await
    .unwrap()
    .expect("gatehouse did not start");
    let url = format!("http://{addr}");
    let c = client();
    for _ in 0..100 {
        if c.get(format!("{url}/healthz")).send().await.is_ok() {
            return (running, url);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gatehouse did not answer");
}

#[tokio::test]
async fn sighup_reloads_the_config() {
    let admin = "admin-token-for-sighup-test-000001";
    let cfg = write(
        "hup.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_token = \"{admin}\"\n[store]\nurl = \"sqlite::memory:\"\n[providers.p]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:9/v1\"\n"
        ),
    );
    let (child, url) = serve(&cfg).await;
    let c = client();
    let status = || async {
        c.get(format!("{url}/admin/api/config"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let before = status().await;
    assert_eq!(before["version"], 0, "{before}");
    // The file is unchanged, so its poll never reloads: only the signal can.
    child.signal("-HUP");
    let mut after = before.clone();
    for _ in 0..100 {
        after = status().await;
        if after["version"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(after["version"], 1, "{after}");
    assert_eq!(after["last_attempt"]["trigger"], "sighup", "{after}");
    assert_eq!(after["last_attempt"]["ok"], true, "{after}");
    assert!(
        c.get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    child.signal("-TERM");
    let exit = child.exit().await;
    assert!(exit.success(), "exit status {exit:?}");
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let pieces: Vec<String> = (0..15).map(|i| format!("{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    mock.push(Reply::stream(&refs).every(Duration::from_millis(100)));
    let cfg = write(
        "drain.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"10s\"\n[store]\nurl = \"sqlite::memory:\"\n[providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\n",
            mock.base_url()
        ),
    );
    let (child, url) = serve(&cfg).await;
    let c = client();
    let resp = c
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat_req("m", true))
        .send()
        .await
        .unwrap();
    child.signal("-TERM");
    let body = resp.text().await.unwrap();
    assert!(
        body.ends_with("data: [DONE]\n\n"),
        "stream cut by SIGTERM: {body}"
    );
    let exit = child.exit().await;
    assert!(exit.success(), "exit status {exit:?}");
}

/// RELIABILITY 23, at full size: SIGTERM with 50 streams of 20 s in flight. Readiness fails at
/// once (the listener closes: a probe's new connection is refused), every stream completes,
/// every request's record is in the store when the process exits, and it exits soon after the
/// last stream ends. The figures are printed.
#[tokio::test]
async fn sigterm_with_50_streams_of_20_s_completes_them_all_and_flushes_their_records() {
    const STREAMS: usize = 50;
    let mock = MockProvider::start(Profile::OpenAi).await;
    let pieces: Vec<String> = (0..20).map(|i| format!("{i} ")).collect();
    mock.respond_with(move |_| {
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        Reply::stream(&refs).every(Duration::from_secs(1))
    });
    let (cfg, db) = sqlite_config("drain50.toml", "drain_timeout = \"40s\"\n", &mock);
    let (child, url) = serve(&cfg).await;
    let mut streams = Vec::new();
    for _ in 0..STREAMS {
        let url = url.clone();
        streams.push(spawn(async move {
            let resp = reqwest::Client::new()
                .post(format!("{url}/v1/chat/completions"))
                .json(&chat_req("m", true))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let body = resp.text().await.unwrap();
            (body, tokio::time::Instant::now())
        }));
    }
    // Every stream is under way (the mock has them all) before the signal.
    for _ in 0..200 {
        if mock.calls() >= STREAMS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        mock.calls(),
        STREAMS,
        "not every stream reached the provider"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sigterm = tokio::time::Instant::now();
    child.signal("-TERM");
    // A readiness probe fails from the moment of the signal.
    let mut not_ready = None;
    for _ in 0..200 {
        let probe = reqwest::Client::new()
            .get(format!("{url}/readyz"))
            .timeout(Duration::from_millis(500))
            .send()
            .await;
        if probe.map_or(true, |r| r.status() == 503) {
            not_ready = Some(sigterm.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let not_ready = not_ready.expect("still ready after SIGTERM");
    let mut last_end = sigterm;
    for s in streams {
        let (body, ended) = s.await.unwrap();
        assert!(
            body.ends_with("data: [DONE]\n\n") && body.contains("19 "),
            "a stream was cut by SIGTERM: {body}"
        );
        last_end = last_end.max(ended);
    }
    let exit = child.exit().await;
    let exited = tokio::time::Instant::now();
    assert!(exit.success(), "exit status {exit:?}");
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_records")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let after_last = exited.saturating_duration_since(last_end);
    eprintln!(
        "SIGTERM with {STREAMS} streams of 20 s: readiness failed after {not_ready:?}; last stream ended {:?} after the signal; the process exited {after_last:?} after it ({:?} after the signal); {rows} records",
        last_end - sigterm,
        exited - sigterm
    );
    assert!(
        not_ready < Duration::from_secs(1),
        "readiness failed only after {not_ready:?}"
    );
    assert_eq!(rows, STREAMS as i64, "records lost at exit");
    assert!(
        after_last < Duration::from_secs(2),
        "exit {after_last:?} after the last stream ended"
    );
}

#[tokio::test]
async fn embedded_default_creates_its_sqlite_file_and_reports_ready() {
    let dir = std::env::temp_dir().join(format!("gatehouse-default-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = bin();
    cmd.args(["serve", "--log-format", "json", "--listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .env_remove("GATEHOUSE_CONFIG")
        .env_remove("OPENAI_API_KEY")
        .env_remove("MISTRAL_API_KEY")
        .env_remove("GATEHOUSE_OPENAI_COMPATIBLE_URL");
    let (child, url) = start(cmd).await;
    let ready = client()
        .get(format!("{url}/readyz"))
        .send()
        .await
        .ok()
        .map(|r| r.json::<serde_json::Value>());
    let ready = match ready {
        Some(f) => Some(f.await.unwrap()),
        None => None,
    };
    child.signal("-TERM");
    let exit = child.exit().await;
    assert_eq!(
        ready,
        Some(serde_json::json!({"status": "ready", "store": "sqlite"}))
    );
    assert!(
        dir.join("gatehouse.db").exists(),
        "the embedded default keeps its store in ./gatehouse.db"
    );
    assert!(exit.success());
}

/// RELIABILITY 25: `kill -9` under 100 requests a second loses at most a flush interval of
/// request records, and leaves the SQLite file whole (WAL, integrity check).
#[tokio::test]
async fn kill_9_loses_at_most_a_flush_interval_of_records() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let (cfg, db) = sqlite_config("kill9.toml", "", &mock);
    let (child, url) = serve(&cfg).await;
    let c = client();
    let mut served = 0u64;
    let end = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < end {
        let r = c
            .post(format!("{url}/v1/chat/completions"))
            .json(&chat_req("m", false))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            served += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.signal("-KILL");
    let _ = child.exit().await;
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_records")
        .fetch_one(&pool)
        .await
        .unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let rows = u64::try_from(rows).unwrap();
    eprintln!("kill -9: {rows} of {served} records written");
    assert_eq!(check, "ok");
    assert_eq!(mode, "wal");
    assert!(served >= 50, "only {served} requests served in 2 s");
    assert!(rows <= served, "{rows} rows for {served} requests");
    // 100 rows is a second of this traffic; the writer's flush interval is 50 ms.
    assert!(
        served - rows <= 100,
        "{} of {served} records lost",
        served - rows
    );
}

/// `[log] requests = true` with `--log-format json`: one JSON log line per request, with its
/// record's fields.
#[tokio::test]
async fn each_request_can_be_a_json_log_line() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let cfg = write(
        "requests.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite::memory:\"\n[log]\nrequests = true\n[providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\n",
            mock.base_url()
        ),
    );
    let (child, url) = serve(&cfg).await;
    let r = client()
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat_req("m", false))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut line = None;
    for _ in 0..100 {
        line = child.1.lock().unwrap().iter().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["target"] == "gatehouse::request" && v["fields"]["request_id"] == id.as_str())
                .then_some(v)
        });
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v = line.expect("no request log line");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["status"], "ok");
    assert_eq!(v["fields"]["http_status"], 200);
    assert_eq!(v["fields"]["provider"], "p");
    assert_eq!(v["fields"]["schema"], "chat");
    child.signal("-TERM");
    assert!(child.exit().await.success());
}
