//! Hot reload (issue #4, RELIABILITY 24): through the admin API, on a change of the file,
//! refused when invalid (the last good config stays), requests in flight keep their
//! snapshot, and reloads under load fail no request.

use std::time::Duration;

use crate::support::*;

const ADMIN: &str = "admin-token-for-reload-tests-00001";

fn config(target: &str) -> String {
    format!(
        r#"
[server]
admin_token = "{ADMIN}"
[providers.a]
kind = "openai-compatible"
base_url = "{{mock0}}"
[providers.b]
kind = "openai-compatible"
base_url = "{{mock1}}"
[[routes]]
match = {{ model = "m" }}
targets = ["{target}"]
"#
    )
}

async fn reload(gw: &Gateway) -> (u16, serde_json::Value) {
    let r = client()
        .post(gw.url("/admin/api/config/reload"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn served_by(gw: &Gateway) -> String {
    let r = gw.chat(&chat_req("m", false)).await;
    assert_eq!(r.status(), 200);
    r.headers()["x-gatehouse-provider"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn reload_applies_a_valid_file_and_keeps_the_last_good_one_otherwise() {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    let dir = tempdir();
    let path = dir.join("gatehouse.toml");
    let gw = Gateway::start_file(&config("a/x"), &[&a, &b], &path).await;
    assert_eq!(served_by(&gw).await, "a");

    std::fs::write(&path, with_mocks(&config("b/x"), &[&a, &b])).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(served_by(&gw).await, "b");

    // An invalid file: refused with each error's position; b still serves.
    let broken = with_mocks(&config("ghost/x"), &[&a, &b]).replace(
        "kind = \"openai-compatible\"\nbase_url = \"http",
        "kind = \"openai-compatible\"\nretries = 3\nbase_url = \"http",
    );
    std::fs::write(&path, &broken).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 422, "{body}");
    let errors: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unknown key `providers.a.retries`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("unknown provider `ghost`")),
        "{errors:?}"
    );
    assert!(
        errors.iter().all(|e| e.contains("gatehouse.toml:")),
        "{errors:?}"
    );
    assert_eq!(served_by(&gw).await, "b");
    let status: serde_json::Value = client()
        .get(gw.url("/admin/api/config"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["version"], 1, "{status}");
    assert_eq!(status["last_attempt"]["ok"], false, "{status}");

    // A change of the file is picked up by itself, at the next check (the clock moves to it).
    std::fs::write(&path, with_mocks(&config("a/x"), &[&a, &b])).unwrap();
    skip(gatehouse::state::reload::FILE_POLL).await;
    let picked = eventually(Duration::from_secs(5), || async {
        (served_by(&gw).await == "a").then_some(())
    })
    .await;
    assert!(picked.is_some(), "the file change was not picked up");
    // Only the admin may reload.
    let r = client()
        .post(gw.url("/admin/api/config/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_request_in_flight_keeps_its_snapshot() {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    a.push(Reply::chat("slow").delay(Duration::from_millis(800)));
    let dir = tempdir();
    let path = dir.join("gatehouse.toml");
    let gw = Gateway::start_file(&config("a/x"), &[&a, &b], &path).await;
    let url = gw.url("/v1/chat/completions");
    let slow = spawn(async move {
        client()
            .post(url)
            .json(&chat_req("m", false))
            .send()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(&path, with_mocks(&config("b/x"), &[&a, &b])).unwrap();
    assert_eq!(reload(&gw).await.0, 200);
    assert_eq!(served_by(&gw).await, "b");
    let r = slow.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-gatehouse-provider"],
        "a",
        "started on the old snapshot"
    );
}

#[tokio::test]
async fn ten_reloads_under_load_fail_no_request() {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    let dir = tempdir();
    let path = dir.join("gatehouse.toml");
    let gw = Gateway::start_file(&config("a/x"), &[&a, &b], &path).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let url = gw.url("/v1/chat/completions");
        let stop = stop.clone();
        workers.push(spawn(async move {
            let c = client();
            let (mut ok, mut failed) = (0u32, 0u32);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let stream = w % 2 == 0;
                let r = c.post(&url).json(&chat_req("m", stream)).send().await;
                let good = match r {
                    Ok(r) if r.status() == 200 => {
                        let text = r.text().await.unwrap_or_default();
                        !text.is_empty() && !text.contains("\"error\"")
                    }
                    _ => false,
                };
                if good {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (ok, failed)
        }));
    }
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let target = if i % 2 == 0 { "b/x" } else { "a/x" };
        std::fs::write(&path, with_mocks(&config(target), &[&a, &b])).unwrap();
        let (status, body) = reload(&gw).await;
        assert_eq!(status, 200, "{body}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for w in workers {
        let (o, f) = w.await.unwrap();
        ok += o;
        failed += f;
    }
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
    assert!(ok > 100, "only {ok} requests ran");
    assert!(a.calls() > 0 && b.calls() > 0);
}

#[tokio::test]
async fn a_provider_pointing_at_the_gateway_itself_is_refused() {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    let dir = tempdir();
    let path = dir.join("gatehouse.toml");
    let gw = Gateway::start_file(&config("a/x"), &[&a, &b], &path).await;
    let own = format!("http://localhost:{}/v1", gw.addr.port());
    let text = with_mocks(&config("b/x"), &[&a, &b]).replace(&b.base_url(), &own);
    std::fs::write(&path, text).unwrap();
    let (status, body) = reload(&gw).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"][0].as_str().unwrap().contains("provider `b`"),
        "{body}"
    );
    assert_eq!(served_by(&gw).await, "a");
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gh-reload-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
