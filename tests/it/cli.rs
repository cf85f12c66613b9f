//! The binary: `--version`, `check`, the loopback rule, and SIGTERM drain.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
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

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let pieces: Vec<String> = (0..15).map(|i| format!("{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    mock.push(Reply::stream(&refs).every(Duration::from_millis(100)));
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = write(
        "drain.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndrain_timeout = \"10s\"\n[store]\nurl = \"sqlite::memory:\"\n[providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{}\"\n",
            mock.base_url()
        ),
    );
    let mut child = bin()
        .args(["serve", "--config"])
        .arg(&cfg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let c = client();
    let mut up = false;
    for _ in 0..100 {
        if c.get(format!("{url}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "gatehouse did not start");
    let resp = c
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat_req("m", true))
        .send()
        .await
        .unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let body = resp.text().await.unwrap();
    assert!(
        body.ends_with("data: [DONE]\n\n"),
        "stream cut by SIGTERM: {body}"
    );
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}

#[tokio::test]
async fn embedded_default_creates_its_sqlite_file_and_reports_ready() {
    let dir = std::env::temp_dir().join(format!("gatehouse-default-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = bin()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(&dir)
        .env_remove("GATEHOUSE_CONFIG")
        .env_remove("OPENAI_API_KEY")
        .env_remove("MISTRAL_API_KEY")
        .env_remove("GATEHOUSE_OPENAI_COMPATIBLE_URL")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let c = client();
    let mut ready = None;
    for _ in 0..100 {
        if let Ok(r) = c
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            ready = Some(r.json::<serde_json::Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
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
