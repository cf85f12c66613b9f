//! The open default (no keys) against a web page, in a real headless Chromium: a page on
//! another site may POST to the gateway on loopback without a preflight (a `no-cors`
//! `text/plain` request), and a site that re-points its own name at this machine (DNS
//! rebinding) addresses the gateway by that name. Neither may reach a provider; the
//! settings that allow them do.
//!
//! The page's site is `evil.example`, mapped to 127.0.0.1 by Chromium's resolver rules, so
//! its origin is not a loopback one though it is served from this machine.

use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::*;

/// Chromium, or `None` with a notice (a machine without it cannot run this test; CI
/// installs it in `.ci/run`).
fn chromium() -> Option<&'static str> {
    for bin in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(bin);
        }
    }
    eprintln!("notice: no chromium on this machine (.ci/run installs it); browser test skipped");
    None
}

/// Serve `page` to every request on a port of its own; the port.
async fn serve_page(page: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let page = page.clone();
            spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    page.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(page.as_bytes()).await;
            });
        }
    });
    port
}

/// The attacking page (the gateway's port in its query): a cross-site POST to the
/// gateway's loopback address, and one to the gateway by the page's own (re-pointed) name;
/// then `done` in the document.
const PAGE: &str = r#"<html><body><pre id="out">pending</pre><script>
const gw = new URLSearchParams(location.search).get("gw");
const body = JSON.stringify({model: "gpt-4o-mini", messages: [{role: "user", content: "hi"}]});
const post = (url) => fetch(url, {method: "POST", mode: "no-cors", headers: {"content-type": "text/plain"}, body})
  .then(() => "sent", (e) => "error " + e);
(async () => {
  const a = await post("http://127.0.0.1:" + gw + "/v1/chat/completions");
  const b = await post("http://evil.example:" + gw + "/v1/chat/completions");
  document.getElementById("out").textContent = "done " + a + " " + b;
})();
</script></body></html>"#;

/// Open `url` in headless Chromium until its scripts are done; the document.
fn visit(bin: &str, url: &str) -> String {
    // A profile of its own: tests run side by side, and a profile is locked by its browser.
    let profile =
        std::env::temp_dir().join(format!("gatehouse-chromium-{}", gatehouse::random_u64()));
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--host-resolver-rules=MAP evil.example 127.0.0.1",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many requests reached the provider while the page ran against an open gateway
/// with `[server]` settings `settings` (`{page}` is the page's port).
async fn provider_calls_from_page(bin: &str, settings: &str) -> usize {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let page_port = serve_page(PAGE.to_owned()).await;
    let settings = settings.replace("{page}", &page_port.to_string());
    let cfg = one_provider("openai").replacen("[server]\n", &format!("[server]\n{settings}"), 1);
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let url = format!("http://evil.example:{page_port}/?gw={}", gw.addr.port());
    let bin = bin.to_owned();
    let dom = tokio::task::spawn_blocking(move || visit(&bin, &url))
        .await
        .unwrap();
    assert!(
        dom.contains("done sent sent"),
        "the page's scripts did not run: {dom}"
    );
    // What the gateway let through reached the mock before the page saw it answered; a
    // moment more for a request still being relayed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    mock.requests().len()
}

#[tokio::test]
async fn a_web_page_cannot_use_an_open_gateway() {
    let Some(bin) = chromium() else { return };
    let n = provider_calls_from_page(bin, "").await;
    assert_eq!(
        n, 0,
        "a cross-site page reached the provider through the open gateway"
    );
}

/// The same page, with the settings that allow it: its origin allowed lets its POST to the
/// loopback address through (and shows the browser does send it), while the one by the
/// page's own name is still refused for its `Host`; the name allowed too lets both through.
#[tokio::test]
async fn the_settings_let_a_named_site_and_host_through() {
    let Some(bin) = chromium() else { return };
    let origin = "allowed_origins = [\"http://evil.example:{page}\"]\n";
    assert_eq!(provider_calls_from_page(bin, origin).await, 1);
    let both = format!("{origin}allowed_hosts = [\"evil.example\"]\n");
    assert_eq!(provider_calls_from_page(bin, &both).await, 2);
}
