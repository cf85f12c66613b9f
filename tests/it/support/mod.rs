//! Test support: the in-process gateway harness and the mock provider.

pub mod mistral_spec;
pub mod mock;

use std::net::SocketAddr;

use gatehouse::config;
use gatehouse::state::AppState;
use tokio::sync::oneshot;

pub use mock::{MockProvider, Profile, Reply};

/// A gateway running in this process on 127.0.0.1:0.
pub struct Gateway {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Start with a config text; `{mock}` placeholders are replaced by the given base URLs in
    /// order (`{mock0}`, `{mock1}`, ...).
    pub async fn start(config_text: &str, mocks: &[&MockProvider]) -> Self {
        let mut text = config_text.to_owned();
        for (i, m) in mocks.iter().enumerate() {
            text = text.replace(&format!("{{mock{i}}}"), &m.base_url());
        }
        let env: std::collections::HashMap<String, String> =
            [("MOCK_KEY".to_owned(), "sk-provider-secret-0000".to_owned())].into();
        if !text.contains("[store]") {
            text.push_str("\n[store]\nurl = \"sqlite::memory:\"\n");
        }
        let cfg = config::parse("test.toml", &text, &env).unwrap_or_else(|e| panic!("{e:#?}"));
        let store = gatehouse::store::Store::connect(&cfg.store.url)
            .await
            .unwrap();
        let drain = cfg.server.drain_timeout;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(cfg, store).await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let st = state.clone();
        let done = tokio::spawn(async move {
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

    /// Begin graceful shutdown.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
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
