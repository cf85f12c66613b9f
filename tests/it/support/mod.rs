//! Test support: the in-process gateway harness and the mock provider.

pub mod bedrock_spec;
pub mod gemini_spec;
pub mod kinds;
pub mod logs;
pub mod mistral_spec;
pub mod mock;
pub mod openai_spec;
pub mod otlp;
pub mod play;
mod profiles;
pub mod proxy;
pub mod webdriver;
pub mod wire;

use std::net::SocketAddr;

use gatehouse::config;
use gatehouse::state::AppState;
use tokio::sync::oneshot;

pub use mock::{MockProvider, Profile, Reply};

/// Spawn one of the test's own tasks (a mock server, a client): not the gateway's background
/// work, so not on its tracker (`gatehouse::tasks`).
#[expect(
    clippy::disallowed_methods,
    reason = "the test's own tasks, not the gateway's"
)]
pub fn spawn<F>(task: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(task)
}

/// A gateway running in this process on 127.0.0.1:0.
pub struct Gateway {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Wait (up to 5 s) until every request record handed to the writer is in the store.
    pub async fn flush_records(&self) {
        assert!(
            self.state
                .governance()
                .enforcer()
                .flush(std::time::Duration::from_secs(5))
                .await,
            "request records were not written within 5 s"
        );
    }

    /// Start with a config text; `{mock}` placeholders are replaced by the given base URLs in
    /// order (`{mock0}`, `{mock1}`, ...).
    pub async fn start(config_text: &str, mocks: &[&MockProvider]) -> Self {
        Self::start_with(config_text, mocks, gatehouse::governance::Clock::System).await
    }

    /// Start with the clock budgets and rate limits read (tests move a manual one).
    pub async fn start_with(
        config_text: &str,
        mocks: &[&MockProvider],
        clock: gatehouse::governance::Clock,
    ) -> Self {
        Self::start_inner(config_text, mocks, clock, None).await
    }

    /// Start from a config file at `path` (written from `config_text`), so that reloads read
    /// it again.
    pub async fn start_file(
        config_text: &str,
        mocks: &[&MockProvider],
        path: &std::path::Path,
    ) -> Self {
        Self::start_inner(
            config_text,
            mocks,
            gatehouse::governance::Clock::System,
            Some(path),
        )
        .await
    }

    async fn start_inner(
        config_text: &str,
        mocks: &[&MockProvider],
        clock: gatehouse::governance::Clock,
        file: Option<&std::path::Path>,
    ) -> Self {
        // The gateway's own clock follows tokio's, so `skip` moves it.
        gatehouse::follow_tokio_clock();
        let text = with_mocks(config_text, mocks);
        let env = test_env();
        if let Some(path) = file {
            std::fs::write(path, &text).unwrap();
        }
        let cfg = config::parse("test.toml", &text, &env).unwrap_or_else(|e| panic!("{e:#?}"));
        let store = gatehouse::store::Store::open(&cfg.store).await.unwrap();
        let drain = cfg.server.drain_timeout;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::with_clock(cfg, store, clock).await.unwrap();
        if let Some(path) = file {
            state.set_config_source(
                gatehouse::state::reload::ConfigSource::File {
                    path: path.to_owned(),
                    env: std::sync::Arc::new(env),
                },
                &gatehouse::state::reload::digest(&text),
            );
        }
        let (tx, rx) = oneshot::channel::<()>();
        let st = state.clone();
        let done = spawn(async move {
            gatehouse::server::run(listener, st, drain, async {
                let _ = rx.await;
            })
            .await;
        });
        Self {
            addr,
            state,
            stop: Some(tx),
            done: Some(done),
        }
    }

    /// One OpenAI-compatible mock provider named `p`, serving every model.
    pub async fn with_openai(mock: &MockProvider) -> Self {
        Self::start(&one_provider("openai-compatible"), &[mock]).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POST a Chat Completions body to `/v1/chat/completions`.
    pub async fn chat(&self, body: &serde_json::Value) -> reqwest::Response {
        client()
            .post(self.url("/v1/chat/completions"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// GET `path` with a bearer token and return the body as text.
    pub async fn get_text(&self, path: &str, token: &str) -> String {
        client()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Begin graceful shutdown.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// `config_text` with `{mockN}` replaced by the mocks' base URLs, and an in-memory store
/// unless it names one.
pub fn with_mocks(config_text: &str, mocks: &[&MockProvider]) -> String {
    let mut text = config_text.to_owned();
    for (i, m) in mocks.iter().enumerate() {
        text = text.replace(&format!("{{mock{i}}}"), &m.base_url());
    }
    if !text.contains("[store]") {
        text.push_str("\n[store]\nurl = \"sqlite::memory:\"\n");
    }
    text
}

/// The environment test configs expand from.
pub fn test_env() -> std::collections::HashMap<String, String> {
    [
        ("MOCK_KEY", "sk-provider-secret-0000"),
        ("AWS_ACCESS_KEY_ID", mock::AWS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", mock::AWS_SECRET),
        ("AWS_SESSION_TOKEN", mock::AWS_TOKEN),
        ("AWS_REGION", "us-east-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn one_provider(kind: &str) -> String {
    format!(
        "[server]\nstream_keepalive = \"2s\"\n[providers.p]\nkind = \"{kind}\"\nbase_url = \"{{mock0}}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"*\"]\ntimeouts = {{ connect = \"1s\", first_byte = \"5s\", idle = \"3s\" }}\n"
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub fn chat_req(model: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

/// Split an SSE body into its `data:` payloads and comment lines.
pub fn sse_frames(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// `GET /v1/usage` as the caller with `key`.
pub async fn usage_of(gw: &Gateway, key: &str) -> serde_json::Value {
    client()
        .get(gw.url("/v1/usage"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Run the `gatehouse` binary with `args` and `--config config`; it must succeed. Its
/// standard output.
pub fn run_cli(config: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A Postgres URL with a fresh, empty schema on this machine's server (database `test`), or
/// `None` with a notice where no server runs (a user's clone); CI always has one.
pub async fn fresh_postgres() -> Option<String> {
    let base = "postgres://postgres@127.0.0.1:5432/test";
    let admin = match sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(base)
        .await
    {
        Ok(p) => p,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("notice: PostgreSQL not reachable here ({e}); skipped");
            return None;
        }
        Err(e) => panic!("PostgreSQL must be reachable in CI: {e}"),
    };
    let schema = gatehouse::store::test_schema(&admin).await.unwrap();
    admin.close().await;
    Some(format!("{base}?options=-c%20search_path%3D{schema}"))
}

/// A `[redis]` section with a prefix of its own (tests share the one server), or `None`
/// with a notice where no Redis runs.
pub async fn fresh_redis() -> Option<String> {
    let ok = tokio::net::TcpStream::connect("127.0.0.1:6379")
        .await
        .is_ok();
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("Redis must be reachable in CI on 127.0.0.1:6379");
        }
        eprintln!("notice: Redis not reachable here; skipped");
        return None;
    }
    Some(format!(
        "[redis]\nurl = \"redis://127.0.0.1:6379\"\nprefix = \"gh-test-{}\"\n",
        uuid::Uuid::new_v4().simple()
    ))
}

/// Move tokio's clock `d` ahead at once. The gateway's timers, its key-reload throttle,
/// cool-downs, ejections, retry-budget seconds and idle connections follow it, and what
/// falls due within `d` fires; budget periods and rate-limit windows follow the governance
/// clock instead (a manual one, `Gateway::start_with`). Time then runs on in real time from
/// there. (A test left paused would be worse here: with the gateway on real sockets and the
/// store on a thread of its own, every moment the runtime waits on them tokio jumps to the
/// next timer, which can be a provider's first-byte timeout while the kernel is still
/// delivering the reply.)
pub async fn skip(d: std::time::Duration) {
    gatehouse::follow_tokio_clock();
    tokio::time::pause();
    tokio::time::advance(d).await;
    tokio::time::resume();
}

/// Run `request`, and [`skip`] `d` once `mock` has received it: a timeout of the gateway's
/// that is due within `d` of the send fires at once, and a reply the mock delays longer
/// than `d` never comes first.
pub async fn skip_once_received<T>(
    mock: &MockProvider,
    d: std::time::Duration,
    request: impl std::future::Future<Output = T>,
) -> T {
    let before = mock.calls();
    let jump = async {
        let received = eventually(std::time::Duration::from_secs(5), || async {
            (mock.calls() > before).then_some(())
        })
        .await;
        assert!(received.is_some(), "the request never reached the mock");
        skip(d).await;
    };
    let (out, ()) = tokio::join!(request, jump);
    out
}

/// Wait (up to 5 s) until every tracked background task of the gateway has ended (mirror
/// shadows, settlements and the alerts they send, stored-response writes: `gatehouse::tasks`).
pub async fn background_done() {
    let done = eventually(std::time::Duration::from_secs(5), || async {
        (gatehouse::tasks::running() == 0).then_some(())
    })
    .await;
    assert!(
        done.is_some(),
        "{} background tasks still running",
        gatehouse::tasks::running()
    );
}

/// Poll `f` every 20 ms until it returns `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(within: std::time::Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
