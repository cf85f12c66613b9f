//! A real browser for the dashboard's tests: headless Chromium driven by chromedriver over
//! the W3C WebDriver protocol (plain JSON over HTTP, so a few calls of our own instead of a
//! client crate). `.ci/run` installs `chromium` and `chromium-driver`; elsewhere a machine
//! without them skips the test with a notice.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// A browser session; chromedriver is stopped when it is dropped.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    driver: Child,
}

/// The W3C key for Tab.
pub const TAB: &str = "\u{E004}";

impl Browser {
    /// A headless Chromium at `width` x 900, or `None` with a notice where chromedriver or
    /// Chromium is missing (CI installs both, and fails there instead).
    pub async fn start(width: u32) -> Option<Browser> {
        let found = |bin: &str| {
            Command::new(bin)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !found("chromedriver") || !found("chromium") {
            assert!(
                std::env::var("CI").is_err(),
                "chromium and chromedriver must be installed in CI (.ci/run)"
            );
            eprintln!(
                "notice: no chromium/chromedriver here (.ci/run installs them); browser test skipped"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut b = Browser {
            http: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
            driver,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={width},900")],
            },
        }}});
        for _ in 0..100 {
            if let Ok(r) = b
                .http
                .post(format!("{}/session", b.base))
                .json(&caps)
                .send()
                .await
            {
                let v: Value = r.json().await.unwrap();
                let id = v["value"]["sessionId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no session: {v}"));
                b.base = format!("{}/session/{id}", b.base);
                return Some(b);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if let Some(e) = v["value"]["error"].as_str() {
            panic!("webdriver {path}: {e}: {}", v["value"]["message"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Wait up to 5 s for the page's URL to end with `suffix` (a form's submission navigates
    /// after the click returns); whether it did.
    pub async fn arrives_at(&self, suffix: &str) -> bool {
        for _ in 0..50 {
            if self.url().await.ends_with(suffix) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The text the page shows (what a reader sees, markup excluded).
    pub async fn text(&self) -> String {
        let body = self.element("body").await;
        self.call(reqwest::Method::GET, &format!("/element/{body}/text"), None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The first element matching a CSS selector.
    pub async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Press keys (W3C key values, e.g. [`TAB`]) wherever the focus is.
    pub async fn keys(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                [
                    json!({"type": "keyDown", "value": c.to_string()}),
                    json!({"type": "keyUp", "value": c.to_string()}),
                ]
            })
            .collect();
        self.call(
            reqwest::Method::POST,
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        )
        .await;
    }

    /// The focused element's outer HTML.
    pub async fn focused(&self) -> String {
        let e = self
            .call(reqwest::Method::GET, "/element/active", None)
            .await;
        let id = e
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap()
            .to_owned();
        self.call(
            reqwest::Method::GET,
            &format!("/element/{id}/property/outerHTML"),
            None,
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_owned()
    }

    /// The cookies the browser holds for the current page.
    pub async fn cookies(&self) -> Vec<Value> {
        self.call(reqwest::Method::GET, "/cookie", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// A PNG of the viewport, written to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    /// End the session, so that Chromium closes (also when a test panics), then chromedriver.
    fn drop(&mut self) {
        use std::io::{Read as _, Write as _};
        let Some((addr, path)) = self
            .base
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once('/'))
        else {
            return;
        };
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                s,
                "DELETE /{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = s.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
