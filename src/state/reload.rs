//! Hot reload of the config (issue #4, RELIABILITY 24): on SIGHUP, on a change of the file
//! (checked every second), or on `POST /admin/api/config/reload`.
//!
//! The file is checked every second against the digest of the active config, so any
//! difference is picked up, whatever reloaded in between. The new file is read and
//! validated in full first. An invalid file changes nothing: the
//! last good config stays active and the reload reports every error with its line and
//! column (in the log, and in the admin API's reply and status). A valid one is swapped in
//! atomically: requests that started before keep the snapshot they hold (`AppState::live`
//! hands each request an `Arc` of its own), new requests see the new one. Provider health,
//! ejections, key cool-downs and connection pools carry over (`routing::backends`).
//!
//! What a running process cannot change, `[server] listen`, `busy_poll` and the connection
//! settings (`header_read_timeout` ... `max_connections`), `[store]` (`url` and `timeout`),
//! `[redis]`, `[log] queue` and `[alerts]`, keeps its running value; the reload says so in
//! its warnings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::AppState;
use crate::config::{self, Config, Env};

/// Where the running config came from, so that a reload reads the same place.
#[derive(Clone)]
pub enum ConfigSource {
    /// A file, with the environment its `${VAR}`s expand from.
    File {
        path: PathBuf,
        env: Arc<dyn Env + Send + Sync>,
    },
    /// The embedded default, rebuilt from the environment.
    Embedded(Arc<dyn Env + Send + Sync>),
    /// Given as text (tests, embedders): nothing to reload from.
    Fixed,
}

impl ConfigSource {
    /// How the admin API and the log name it.
    pub fn describe(&self) -> String {
        match self {
            ConfigSource::File { path, .. } => path.display().to_string(),
            ConfigSource::Embedded(_) => "embedded default".to_owned(),
            ConfigSource::Fixed => "fixed".to_owned(),
        }
    }

    /// The source's text and its validated config.
    fn read(&self) -> Result<(String, Config), Vec<String>> {
        let errors = |es: Vec<config::ConfigError>| -> Vec<String> {
            es.iter().map(ToString::to_string).collect()
        };
        match self {
            ConfigSource::File { path, env } => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| vec![format!("{}: cannot read: {e}", path.display())])?;
                let cfg = config::parse(&path.display().to_string(), &text, env.as_ref())
                    .map_err(errors)?;
                Ok((text, cfg))
            }
            ConfigSource::Embedded(env) => {
                let text = config::embedded_default_text(env.as_ref());
                let cfg = config::parse("(embedded)", &text, env.as_ref()).map_err(errors)?;
                Ok((text, cfg))
            }
            ConfigSource::Fixed => Err(vec![
                "this gateway was started with a config given as text; there is no file to reload"
                    .to_owned(),
            ]),
        }
    }
}

/// What the last reloads did, for `GET /admin/api/config`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    pub source: String,
    /// Incremented by every successful reload (0: the config loaded at start).
    pub version: u64,
    /// Unix seconds when the active config was loaded.
    pub loaded_at: u64,
    /// SHA-256 of the active config's text (hex).
    pub digest: String,
    pub last_attempt: Option<ReloadAttempt>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadAttempt {
    pub at: u64,
    pub trigger: &'static str,
    pub ok: bool,
    /// Why the file was refused (each with file:line:col).
    pub errors: Vec<String>,
    /// Changes that wait for a restart.
    pub warnings: Vec<String>,
}

/// SHA-256 of a config text, hex.
pub fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Read, validate and swap in the config from its source. `trigger` names what asked
/// (`sighup`, `file`, `admin`).
pub async fn reload(state: &AppState, trigger: &'static str) -> ReloadAttempt {
    let _one = state.reload_lock().lock().await;
    let source = state.config_source();
    let read = source.read();
    let attempt = match read {
        Err(errors) => refuse(trigger, errors),
        Ok((text, mut cfg)) => {
            let running = state.live();
            let mut loops = Vec::new();
            if let Some(addr) = state.listener() {
                loops = crate::routing::loopguard::self_pointing(&cfg, addr).await;
            }
            if loops.is_empty() {
                let warnings = keep_running(&running.config, &mut cfg);
                let attempt = ReloadAttempt {
                    at: crate::unix_now(),
                    trigger,
                    ok: true,
                    errors: Vec::new(),
                    warnings,
                };
                // The new version and the attempt that made it are published together.
                state.swap_config(cfg, &digest(&text), &attempt).await;
                tracing::info!(trigger, source = %source.describe(), "config reloaded");
                for w in &attempt.warnings {
                    tracing::warn!("{w}");
                }
                attempt
            } else {
                refuse(trigger, loops)
            }
        }
    };
    // A reload that took is in the status already, with its version.
    if !attempt.ok {
        state.note_reload(&attempt);
    }
    crate::metrics::reload(attempt.ok);
    attempt
}

fn refuse(trigger: &'static str, errors: Vec<String>) -> ReloadAttempt {
    tracing::error!(
        trigger,
        errors = errors.len(),
        "config reload refused; the last good config stays active"
    );
    for e in &errors {
        tracing::error!("{e}");
    }
    ReloadAttempt {
        at: crate::unix_now(),
        trigger,
        ok: false,
        errors,
        warnings: Vec::new(),
    }
}

/// Keep what only a restart can change, and say what was kept.
fn keep_running(running: &Config, new: &mut Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut note = |what: &str| warnings.push(format!("{what} changed: restart to apply it"));
    if new.server.listen != running.server.listen {
        note("server.listen");
        new.server.listen = running.server.listen;
    }
    if new.server.busy_poll != running.server.busy_poll {
        note("server.busy_poll");
        new.server.busy_poll = running.server.busy_poll;
    }
    if new.server.connections != running.server.connections {
        note(
            "server connection settings (header_read_timeout, idle_timeout, http2_keepalive_*, max_connections)",
        );
        new.server.connections = running.server.connections;
    }
    if new.store.url != running.store.url {
        note("store.url");
        new.store = running.store.clone();
    }
    if new.store.timeout != running.store.timeout {
        note("store.timeout");
        new.store = running.store.clone();
    }
    let redis = |c: &Config| {
        c.redis
            .as_ref()
            .map(|r| (r.url.expose().to_owned(), r.prefix.clone(), r.timeout))
    };
    if redis(new) != redis(running) {
        note("[redis]");
        new.redis = running.redis.clone();
    }
    if new.log.queue != running.log.queue {
        note("log.queue");
        new.log = running.log.clone();
    }
    if new.traces != running.traces {
        note("[traces]");
        new.traces = running.traces.clone();
    }
    if new.alert_webhook != running.alert_webhook {
        note("alerts.webhook");
        new.alert_webhook = running.alert_webhook.clone();
    }
    warnings
}

/// Start the reload triggers: SIGHUP always, and a poll of the file when the config came
/// from one. They end when the returned handles are aborted.
pub fn spawn_triggers(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::new();
    #[cfg(unix)]
    if !matches!(state.config_source(), ConfigSource::Fixed) {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered before this returns, so before the listener serves: a SIGHUP that
        // arrives once the gateway answers reloads it instead of killing the process.
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                let st = state.clone();
                #[expect(
                    clippy::disallowed_methods,
                    reason = "a trigger for the server's life, aborted at shutdown; a reload is all or nothing"
                )]
                out.push(tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        reload(&st, "sighup").await;
                    }
                }));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload through the admin API");
            }
        }
    }
    if let ConfigSource::File { path, .. } = state.config_source() {
        let st = state.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "a trigger for the server's life, aborted at shutdown; a reload is all or nothing"
        )]
        out.push(tokio::spawn(async move {
            // The digest of a file that was refused, so a broken file is reported once.
            let mut refused: Option<String> = None;
            loop {
                tokio::time::sleep(FILE_POLL).await;
                let Ok(text) = tokio::fs::read_to_string(&path).await else {
                    continue;
                };
                let d = digest(&text);
                if d != st.reload_status().digest && refused.as_deref() != Some(d.as_str()) {
                    let attempt = reload(&st, "file").await;
                    refused = (!attempt.ok).then_some(d);
                }
            }
        }));
    }
    out
}

/// How often the config file is checked for a change.
pub const FILE_POLL: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        config::parse("r.toml", text, &std::collections::HashMap::new()).unwrap()
    }

    #[test]
    fn what_needs_a_restart_keeps_its_running_value() {
        let running = cfg("[server]\nlisten = \"127.0.0.1:9001\"\n");
        let mut new = cfg(
            "[server]\nlisten = \"127.0.0.1:9002\"\nbusy_poll = \"200us\"\nmax_body_bytes = 10\nmax_connections = 5\n",
        );
        let warnings = keep_running(&running, &mut new);
        assert_eq!(
            warnings,
            [
                "server.listen changed: restart to apply it",
                "server.busy_poll changed: restart to apply it",
                "server connection settings (header_read_timeout, idle_timeout, http2_keepalive_*, max_connections) changed: restart to apply it"
            ]
        );
        assert_eq!(new.server.connections, running.server.connections);
        assert_eq!(new.server.listen, running.server.listen);
        assert_eq!(new.server.busy_poll, Duration::ZERO);
        assert_eq!(new.server.max_body_bytes, 10, "the rest applies at once");
    }
}
