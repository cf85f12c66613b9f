//! The `gatehouse` command: `serve`, `check`, `--version` (SPEC §1).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc: allocation was ~11% of the gateway's CPU under load with the system allocator
/// (every request allocates its parsed JSON and the bodies it builds). The
/// `system-allocator` feature leaves it out, for memory profilers that watch `malloc`
/// (heaptrack, valgrind): see docs/development.md.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where transparent huge pages are `always` on (the default of many distributions), the
/// kernel backs mimalloc's arenas with 2 MiB pages as soon as a byte of one is touched: the
/// bench config measured 15.7 MB anonymous memory at idle and 45 MB resident under load at
/// 64 connections, against 3.2 and 30.6 MB with them off, at the same throughput. The
/// process opts out (PR_SET_THP_DISABLE; it starts no other processes to inherit it); the
/// system's setting is left alone.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

use gatehouse::commands;
use gatehouse::config::{self, Config, ConfigError, ProcessEnv};
use gatehouse::server;
use gatehouse::state::AppState;
use gatehouse::store::{GroupBy, Store};

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "An AI gateway: one endpoint, any client schema, any provider"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file; without it, the embedded default (loopback, providers from the environment).
        #[arg(long, env = "GATEHOUSE_CONFIG")]
        config: Option<PathBuf>,
        /// Listen address, overriding the config's `server.listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Allow a non-loopback listen address without client authentication.
        #[arg(long)]
        insecure_no_auth: bool,
        #[arg(long, value_enum, default_value_t = LogFormat::Human)]
        log_format: LogFormat,
    },
    /// Validate a config file and print every error with file:line:col.
    Check {
        #[arg(long, env = "GATEHOUSE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Manage virtual keys in the store the config names.
    Keys {
        #[arg(long, env = "GATEHOUSE_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Spend and tokens from the store's usage records, grouped.
    Usage {
        #[arg(long, env = "GATEHOUSE_CONFIG")]
        config: Option<PathBuf>,
        /// key, team, user, project, model, provider, tag or day.
        #[arg(long, default_value = "key", value_parser = parse_group)]
        by: GroupBy,
        /// How far back, e.g. `7d`, `24h`.
        #[arg(long, default_value = "7d", value_parser = parse_lifetime)]
        since: std::time::Duration,
        #[arg(long)]
        json: bool,
    },
    /// The request log, newest first, from the store (what `GET /admin/api/logs` serves).
    Logs {
        #[arg(long, env = "GATEHOUSE_CONFIG")]
        config: Option<PathBuf>,
        /// How far back, e.g. `1d`, `30m`.
        #[arg(long, default_value = "1d", value_parser = parse_lifetime)]
        since: std::time::Duration,
        /// A key's id.
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        team: Option<String>,
        /// Asked for or served.
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        provider: Option<String>,
        /// ok, error or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// `name=value`.
        #[arg(long)]
        tag: Option<String>,
        /// Text of the error.
        #[arg(long)]
        error: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// table, json (lines) or csv.
        #[arg(long, default_value = "table")]
        format: String,
    },
}

fn parse_group(s: &str) -> Result<GroupBy, String> {
    GroupBy::parse(s).ok_or_else(|| {
        format!(
            "unknown grouping `{s}`: expected key, team, user, project, model, provider, tag or day"
        )
    })
}

#[derive(Subcommand)]
#[expect(clippy::large_enum_variant, reason = "parsed once at start")]
enum KeysAction {
    /// Create a key and print it (it is shown this once).
    Create {
        #[arg(long)]
        name: String,
        /// A team defined in the config (`[teams.NAME]`).
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        project: Option<String>,
        /// Model globs this key may use, comma-separated (default: what its team may use).
        #[arg(long, value_delimiter = ',')]
        models: Option<Vec<String>>,
        /// Lifetime, e.g. `30d`, `12h` (default: no expiry).
        #[arg(long, value_parser = parse_lifetime)]
        expires_in: Option<std::time::Duration>,
        /// A budget of the key's own, e.g. `5usd/daily`, `200000tokens/monthly`; repeat for
        /// several.
        #[arg(long = "budget")]
        budgets: Vec<String>,
        /// Time zone of the budgets' periods (default UTC).
        #[arg(long)]
        budget_timezone: Option<String>,
        /// Where requests go once a budget is spent, `provider/model` (default: refused).
        #[arg(long)]
        budget_route_to: Option<String>,
        /// Requests per minute.
        #[arg(long)]
        rpm: Option<u64>,
        /// Tokens per minute (reserved up front: input plus max_tokens).
        #[arg(long)]
        tpm: Option<u64>,
        /// Concurrent requests.
        #[arg(long)]
        concurrent: Option<u64>,
        /// Bodies kept in the key's request records: off, client or all (default: the
        /// provider's, then `[log] bodies`).
        #[arg(long, value_parser = parse_body_level)]
        log_bodies: Option<gatehouse::config::BodyLevel>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never the keys themselves: a hint of each).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id or name.
    Revoke { key: String },
}

fn parse_body_level(s: &str) -> Result<gatehouse::config::BodyLevel, String> {
    gatehouse::config::BodyLevel::parse(s)
        .ok_or_else(|| format!("`{s}`: expected off, client or all"))
}

fn parse_lifetime(s: &str) -> Result<std::time::Duration, String> {
    config::parse_duration(s).ok_or_else(|| format!("invalid duration `{s}` (e.g. 30d, 12h, 90m)"))
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match load(config.as_ref()) {
            Ok(cfg) => {
                let _ = writeln!(
                    std::io::stdout(),
                    "ok: {} provider(s), {} route(s)",
                    cfg.providers.len(),
                    cfg.routes.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                report(&errors);
                ExitCode::FAILURE
            }
        },
        Command::Keys { config, action } => {
            run_with_config(config.as_ref(), |cfg| keys_command(cfg, action))
        }
        Command::Usage {
            config,
            by,
            since,
            json,
        } => run_with_config(config.as_ref(), |cfg| usage_command(cfg, by, since, json)),
        Command::Logs {
            config,
            since,
            key,
            team,
            model,
            provider,
            status,
            tag,
            error,
            limit,
            format,
        } => {
            let now = gatehouse::governance::now_unix();
            let filter = gatehouse::store::LogFilter {
                since: now.saturating_sub(i64::try_from(since.as_secs()).unwrap_or(i64::MAX)),
                key_id: key,
                team,
                model,
                provider,
                status,
                tag,
                error_text: error,
                limit: limit.clamp(1, gatehouse::store::MAX_PAGE),
                ..Default::default()
            };
            run_with_config(config.as_ref(), |cfg| logs_command(cfg, &filter, &format))
        }
        Command::Serve {
            config,
            listen,
            insecure_no_auth,
            log_format,
        } => {
            init_logging(log_format);
            let mut cfg = match load(config.as_ref()) {
                Ok(c) => c,
                Err(errors) => {
                    report(&errors);
                    return ExitCode::FAILURE;
                }
            };
            if let Some(addr) = listen {
                cfg.server.listen = addr;
            }
            let source = match &config {
                Some(path) => gatehouse::state::reload::ConfigSource::File {
                    path: path.clone(),
                    env: std::sync::Arc::new(ProcessEnv),
                },
                None => gatehouse::state::reload::ConfigSource::Embedded(std::sync::Arc::new(
                    ProcessEnv,
                )),
            };
            match serve(cfg, source, insecure_no_auth) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Load the config (or report its errors) and run a command on it; its error is printed.
fn run_with_config(
    path: Option<&PathBuf>,
    command: impl FnOnce(&Config) -> Result<(), String>,
) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(errors) => {
            report(&errors);
            return ExitCode::FAILURE;
        }
    };
    match command(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Run `f` on the config's store, on a small runtime of its own; the store is closed after.
fn with_store(
    cfg: &Config,
    f: impl AsyncFnOnce(&Store) -> Result<(), String>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let store = Store::open(&cfg.store).await.map_err(|e| e.to_string())?;
        let result = f(&store).await;
        store.close().await;
        result
    })
}

fn keys_command(cfg: &Config, action: KeysAction) -> Result<(), String> {
    with_store(cfg, async |store| {
        let mut out = std::io::stdout().lock();
        let now = gatehouse::governance::now_unix();
        match action {
            KeysAction::Create {
                name,
                team,
                user,
                project,
                models,
                expires_in,
                budgets,
                budget_timezone,
                budget_route_to,
                rpm,
                tpm,
                concurrent,
                log_bodies,
                json,
            } => {
                let limits = commands::KeyLimits {
                    budgets,
                    timezone: budget_timezone,
                    route_to: budget_route_to,
                    rate_limit: config::RateLimit {
                        rpm,
                        tpm,
                        concurrent,
                    },
                    log_bodies,
                };
                let new = commands::NewKey {
                    name,
                    team,
                    user,
                    project,
                    models,
                    expires_in,
                    policy: None,
                    role: None,
                };
                async {
                    let new = commands::NewKey {
                        policy: commands::policy_json(cfg, &limits)?,
                        ..new
                    };
                    commands::create_key(cfg, store, new).await
                }
                .await
                .map(|(row, key)| {
                    if json {
                        let mut j = commands::key_json(&row, now);
                        j["key"] = serde_json::Value::String(key);
                        let _ = writeln!(out, "{j}");
                    } else {
                        let _ = writeln!(out, "{key}");
                        let _ = writeln!(
                            std::io::stderr(),
                            "created key {} ({}); it is shown only this once",
                            row.id,
                            row.name
                        );
                    }
                })
            }
            KeysAction::List { json } => match store.list_keys().await {
                Ok(rows) if json => {
                    let list: Vec<_> = rows.iter().map(|k| commands::key_json(k, now)).collect();
                    let _ = writeln!(out, "{}", serde_json::Value::Array(list));
                    Ok(())
                }
                Ok(rows) => {
                    commands::write_key_table(&mut out, &rows, now).map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            },
            KeysAction::Revoke { key } => match store.revoke_key(&key, now).await {
                Ok(Some(row)) => {
                    let _ = writeln!(out, "revoked {} ({})", row.id, row.name);
                    Ok(())
                }
                Ok(None) => Err(format!("no key with id or name `{key}`")),
                Err(e) => Err(e.to_string()),
            },
        }
    })
}

fn usage_command(
    cfg: &Config,
    by: GroupBy,
    since: std::time::Duration,
    json: bool,
) -> Result<(), String> {
    with_store(cfg, async |store| {
        let now = gatehouse::governance::now_unix();
        let filter = gatehouse::store::UsageFilter {
            since: now.saturating_sub(i64::try_from(since.as_secs()).unwrap_or(i64::MAX)),
            ..Default::default()
        };
        let rows = store
            .usage_report(by, &filter)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        if json {
            let _ = writeln!(out, "{}", commands::report_json(by, &rows));
        } else {
            commands::write_report(&mut out, by, &rows).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

fn logs_command(
    cfg: &Config,
    filter: &gatehouse::store::LogFilter,
    format: &str,
) -> Result<(), String> {
    if !matches!(format, "table" | "json" | "csv") {
        return Err(format!(
            "unknown format `{format}`: expected table, json or csv"
        ));
    }
    with_store(cfg, async |store| {
        let (rows, _) = store.logs(filter).await.map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        let written = match format {
            "json" => rows.iter().try_for_each(|r| writeln!(out, "{r}")),
            "csv" => write!(out, "{}", gatehouse::store::logs_csv(&rows)),
            _ => commands::write_logs(&mut out, &rows),
        };
        written.map_err(|e| e.to_string())
    })
}

fn load(path: Option<&PathBuf>) -> Result<Config, Vec<ConfigError>> {
    match path {
        Some(p) => config::load(p, &ProcessEnv),
        None => config::embedded_default(&ProcessEnv),
    }
}

fn report(errors: &[ConfigError]) {
    let mut err = std::io::stderr().lock();
    for e in errors {
        let _ = writeln!(err, "{e}");
    }
    let _ = writeln!(err, "{} error(s)", errors.len());
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: a log file or a collector gets plain text. Every line,
    // at every level and from every crate (hyper's and h2's debug output included), passes
    // through the redactor of the config's secrets and credential shapes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(config::LogWriter::new(std::io::stderr));
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Run the gateway until SIGTERM.
fn serve(
    cfg: Config,
    source: gatehouse::state::reload::ConfigSource,
    insecure_no_auth: bool,
) -> std::io::Result<()> {
    // One worker per CPU by default (tokio follows the affinity mask, so a gateway pinned with
    // taskset gets one); `GATEHOUSE_WORKERS` overrides it, and 1 means a single-threaded runtime.
    let workers = std::env::var("GATEHOUSE_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?
    };
    // Client connections each hold a descriptor: start from the hard open-file limit, not a
    // soft 1,024 (`[server] max_connections` defaults to half of it; `server::edge`).
    server::edge::raise_open_file_limit();
    runtime.block_on(async move {
        // Fail fast with a clear error rather than start half-working.
        let store = Store::open(&cfg.store).await.map_err(std::io::Error::other)?;
        let state = AppState::new(cfg, store.clone()).await.map_err(std::io::Error::other)?;
        let cfg = state.live().config.clone();
        // With no key anywhere the gateway is open, so it may only listen on loopback unless
        // the operator says otherwise (SPEC §1).
        if state.governance().is_open() && !cfg.server.listen.ip().is_loopback() && !insecure_no_auth {
            return Err(std::io::Error::other(format!(
                "refusing to listen on {} without client authentication: create a key (`gatehouse keys create`), add [[keys]] to the config, use a loopback address, or pass --insecure-no-auth",
                cfg.server.listen
            )));
        }
        let listener = tokio::net::TcpListener::bind(cfg.server.listen).await?;
        let addr = listener.local_addr()?;
        // The loop guard: a provider pointed at this very listener would bounce forever.
        let loops = gatehouse::routing::loopguard::self_pointing(&cfg, addr).await;
        if !loops.is_empty() {
            return Err(std::io::Error::other(loops.join("; ")));
        }
        let text = match &source {
            gatehouse::state::reload::ConfigSource::File { path, .. } => std::fs::read_to_string(path).unwrap_or_default(),
            _ => String::new(),
        };
        state.set_config_source(source, &gatehouse::state::reload::digest(&text));
        for p in &cfg.providers {
            tracing::info!(provider = %p.name, kind = p.kind.as_str(), base_url = %p.base_url, keys = p.api_keys.len(), "provider configured");
        }
        if cfg.providers.is_empty() {
            tracing::warn!("no provider configured: set OPENAI_API_KEY, MISTRAL_API_KEY or GATEHOUSE_OPENAI_COMPATIBLE_URL, or pass --config");
        }
        tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), store = store.backend(), "gatehouse listening");
        let drain = cfg.server.drain_timeout;
        server::run(listener, state, drain, server::shutdown_signal()).await;
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    })
}
