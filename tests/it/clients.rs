//! Real clients end to end, each completing a task that needs a tool round trip through
//! Gatehouse, on every provider kind's strict mock: Claude Code (`claude -p`, Anthropic
//! Messages), Codex CLI (`codex exec`, Responses API only) and Gemini CLI (`gemini -p`, Gemini
//! API only), each on `openai`, `azure-openai`, `mistral`, `anthropic`, `gemini`, `bedrock`
//! and `openai-compatible` ([`KINDS`]; one test per client and kind, named after both).
//!
//! In every case the mock plays a model in its provider's own wire format
//! (`support::play`): offered tools and no tool result yet, it calls the client's own tool
//! (Claude Code's `Bash` and Codex's `exec_command` echo [`MARKER`]; Gemini CLI's
//! `list_directory` lists a folder holding a file named after it); given the tool's result,
//! it answers with what the tool printed, which the client must print. Each mock refuses
//! what its provider refuses (schemas, output ceilings, Gemini 3's thought signatures,
//! SigV4, Mistral's tool-call ids and effort levels), and the clients ask for what they ask
//! for (Claude Code's `max_tokens: 128000` among it), so a case passes only when the gateway
//! sent every provider call in a form the provider takes.
//!
//! The clients are installed by `.ci/run` (`npm ci` in tests/e2e/node, as
//! ../shared/CLIENTS.md says); without them the tests print a notice and pass (they fail in
//! CI).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::kinds::{self, *};
use crate::support::mock::Recorded;
use crate::support::play::{self, Call, Turn, Wire};
use crate::support::*;

fn client_bin(name: &str) -> Option<PathBuf> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/node/node_modules/.bin")
        .join(name);
    p.exists().then_some(p)
}

/// True (after a notice) when the client is not installed; CI must have it (see .ci/run).
fn skip_without(bin: &str, name: &str) -> bool {
    if client_bin(bin).is_some() {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install {name} (see .ci/run)"
    );
    eprintln!("notice: {name} not installed in tests/e2e/node; test skipped");
    true
}

const MARKER: &str = "GATEHOUSE_TOOL_OK";

// === the clients ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    ClaudeCode,
    Codex,
    GeminiCli,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Self::ClaudeCode => "Claude Code",
            Self::Codex => "Codex CLI",
            Self::GeminiCli => "Gemini CLI",
        }
    }

    fn bin(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude",
            Self::Codex => "codex",
            Self::GeminiCli => "gemini",
        }
    }

    /// The model names the client asks for, as a route's pattern.
    fn models(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude-*",
            Self::Codex => "gpt-5*",
            Self::GeminiCli => "gemini-*",
        }
    }

    /// The client's own tool the model calls, and its arguments.
    fn tool(self) -> (&'static str, Value) {
        match self {
            Self::ClaudeCode => (
                "Bash",
                json!({"command": format!("echo {MARKER}"), "description": "Print the marker"}),
            ),
            Self::Codex => ("exec_command", json!({"cmd": format!("echo {MARKER}")})),
            Self::GeminiCli => ("list_directory", json!({"dir_path": "."})),
        }
    }
}

// === the provider kinds ===

/// Codex on OpenAI: the Responses API passes through, to a model of the family Codex
/// configures its requests for (its reasoning settings, which gpt-4.1 would refuse).
const OPENAI_CODEX: Kind = Kind {
    model: "gpt-5-codex",
    ..OPENAI
};

/// The wire format a provider of this kind speaks with the client's requests: a Responses
/// client passes through to OpenAI's own Responses API; every other pair is translated.
fn wire(client: Client, k: &Kind) -> Wire {
    match k.profile {
        Profile::OpenAi if k.kind == "openai" && client == Client::Codex => Wire::Responses,
        Profile::OpenAi | Profile::Azure | Profile::Mistral => Wire::Chat,
        Profile::Anthropic => Wire::Anthropic,
        Profile::Gemini => Wire::Gemini,
        Profile::Bedrock => Wire::Bedrock,
    }
}

/// The config: a route from the client's models to the kind's model.
fn config(client: Client, k: &Kind) -> String {
    kinds::config(k, client.models())
}

// === the model the mocks play ===

/// The model: offered tools and no tool result yet, it calls the client's tool; given the
/// result, it says what the tool printed (or, if the marker is missing, what it got);
/// without tools (a client's side call), it answers "ok".
/// `model` is the name the reply carries.
fn act(client: Client, k: &Kind, wire: Wire, model: &str, path: &str, body: &Value) -> Reply {
    let results = play::results(wire, body);
    let turn = if results.iter().any(|r| r.contains(MARKER)) {
        Turn {
            text: format!("The command printed: {MARKER}"),
            call: None,
            usage: (950, 12),
        }
    } else if let Some(result) = results.last() {
        Turn {
            text: format!("The tool result lacks the marker: {result}"),
            call: None,
            usage: (950, 12),
        }
    } else if play::offers_tools(wire, body) {
        let (name, args) = client.tool();
        let args = args.to_string();
        // The arguments in two fragments, as streams send them.
        let (a, b) = args.split_at(args.len() / 2);
        let mut call = Call::new(k.call_id, name, &[a, b]);
        if wire == Wire::Gemini {
            call = call.signed("c2lnbmF0dXJlLWUyZQ==");
        }
        Turn {
            text: String::new(),
            call: Some(call),
            usage: (900, 30),
        }
    } else {
        Turn {
            text: "ok".to_owned(),
            call: None,
            usage: (950, 1),
        }
    };
    play::reply(wire, play::streamed(wire, path, body), model, &turn)
}

// === running the clients ===

/// What a client run left: its exit, output, and the provider calls made meanwhile.
struct Run {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
    requests: Vec<Recorded>,
}

/// A fresh folder for one run's home.
fn home_for(client: Client, mock: &MockProvider) -> PathBuf {
    let home = std::env::temp_dir().join(format!(
        "gatehouse-{}-{}-{}",
        client.bin(),
        std::process::id(),
        mock.addr.port()
    ));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    home
}

async fn run_client(client: Client, gw: &Gateway, mock: &MockProvider) -> Run {
    let bin = client_bin(client.bin()).expect("checked by the caller");
    let home = home_for(client, mock);
    let mut cmd = Command::new("timeout");
    cmd.arg("120")
        .arg(bin)
        .env("HOME", &home)
        .stdin(std::process::Stdio::null());
    match client {
        Client::ClaudeCode => {
            cmd.args([
                "-p",
                &format!(
                    "Run `echo {MARKER}` with the Bash tool and tell me exactly what it printed."
                ),
                "--allowedTools",
                "Bash(echo:*)",
            ])
            .current_dir(&home)
            .env("ANTHROPIC_BASE_URL", gw.url("/anthropic"))
            .env("ANTHROPIC_AUTH_TOKEN", "sk-gatehouse-test")
            .env_remove("ANTHROPIC_API_KEY")
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
        }
        Client::Codex => {
            let work = home.join("work");
            std::fs::create_dir_all(&work).unwrap();
            std::fs::write(
                home.join("config.toml"),
                format!(
                    "model = \"gpt-5-codex\"\nmodel_provider = \"gw\"\n[model_providers.gw]\nname = \"gw\"\nbase_url = \"{}\"\nenv_key = \"GW_KEY\"\nwire_api = \"responses\"\n",
                    gw.url("/v1")
                ),
            )
            .unwrap();
            cmd.args([
                "exec",
                "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox",
                &format!("Run `echo {MARKER}` in the shell and tell me exactly what it printed."),
            ])
            .current_dir(&work)
            .env("CODEX_HOME", &home)
            .env("GW_KEY", "sk-gatehouse-test");
        }
        Client::GeminiCli => {
            let work = home.join("ws");
            std::fs::create_dir_all(home.join(".gemini")).unwrap();
            std::fs::create_dir_all(&work).unwrap();
            std::fs::write(
                home.join(".gemini/settings.json"),
                r#"{"security": {"auth": {"selectedType": "gemini-api-key"}}}"#,
            )
            .unwrap();
            // What `list_directory` shows the model.
            std::fs::write(work.join(format!("{MARKER}.txt")), "x").unwrap();
            cmd.args([
                "-p",
                "List the files here and tell me what you saw.",
                "-m",
                "gemini-2.5-flash",
            ])
            .current_dir(&work)
            .env("GEMINI_CLI_TRUST_WORKSPACE", "true")
            .env("GEMINI_API_KEY", "sk-gatehouse-test")
            .env("GOOGLE_GEMINI_BASE_URL", gw.url("/gemini"));
        }
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        requests: mock.requests(),
    }
}

/// The provider calls, one line each, for failure messages.
fn calls(requests: &[Recorded]) -> String {
    requests
        .iter()
        .map(|r| {
            let body = r.body.to_string();
            let cut = body.char_indices().nth(600).map_or(body.len(), |(i, _)| i);
            format!("  {} {}", r.path, &body[..cut])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Run `client` through a gateway to a mock of kind `k` and check the round trip: the client
/// exits 0 and prints the model's answer, the provider saw the tool's result come back, and
/// every provider call went to the kind's endpoint for its model. Returns the provider calls.
async fn round_trip(client: Client, k: Kind) -> Vec<Recorded> {
    let wire = wire(client, &k);
    let mock = kinds::mock(&k).await;
    mock.respond_to(move |path, body| act(client, &k, wire, k.model, path, body));
    let gw = Gateway::start(&config(client, &k), &[&mock]).await;
    let run = run_client(client, &gw, &mock).await;
    let case = format!("{} on {} ({})", client.name(), k.kind, k.model);
    let requests = run.requests;
    assert!(
        run.status.success()
            && run
                .stdout
                .contains(&format!("The command printed: {MARKER}")),
        "{case}: exit {:?}\nstdout:\n{}\nstderr:\n{}\nprovider calls:\n{}",
        run.status.code(),
        run.stdout,
        run.stderr,
        calls(&requests)
    );
    // The tool really ran: the provider saw its output come back as a tool result.
    assert!(
        requests.iter().any(|r| play::results(wire, &r.body)
            .iter()
            .any(|o| o.contains(MARKER))),
        "{case}: no tool result reached the provider:\n{}",
        calls(&requests)
    );
    for r in &requests {
        let path = expected_path(wire, &k, play::streamed(wire, &r.path, &r.body));
        assert_eq!(r.path, path, "{case}: {}", calls(&requests));
        if matches!(wire, Wire::Chat | Wire::Anthropic | Wire::Responses)
            && k.profile != Profile::Azure
        {
            assert_eq!(r.body["model"], k.model, "{case}: {}", calls(&requests));
        }
        if k.profile == Profile::Mistral
            && let Some(effort) = r.body.get("reasoning_effort")
        {
            // Claude Code asks for `output_config.effort: medium`; devstral takes none|high.
            assert_eq!(effort, "high", "{case}: {}", r.body);
        }
    }
    requests
}

/// One test per client and provider kind, so that a failure names both.
macro_rules! matrix {
    ($($(#[$attr:meta])* $name:ident: $client:ident on $kind:ident;)*) => {
        $(
            #[tokio::test]
            $(#[$attr])*
            async fn $name() {
                if skip_without(Client::$client.bin(), Client::$client.name()) {
                    return;
                }
                round_trip(Client::$client, $kind).await;
            }
        )*
    };
}

matrix! {
    claude_code_on_openai: ClaudeCode on OPENAI;
    claude_code_on_azure_openai: ClaudeCode on AZURE;
    claude_code_on_mistral: ClaudeCode on MISTRAL;
    claude_code_on_anthropic: ClaudeCode on ANTHROPIC;
    claude_code_on_gemini: ClaudeCode on GEMINI;
    claude_code_on_bedrock: ClaudeCode on BEDROCK;
    claude_code_on_openai_compatible: ClaudeCode on OPENAI_COMPATIBLE;
    codex_on_openai: Codex on OPENAI_CODEX;
    codex_on_azure_openai: Codex on AZURE;
    codex_on_mistral: Codex on MISTRAL;
    codex_on_anthropic: Codex on ANTHROPIC;
    codex_on_gemini: Codex on GEMINI;
    codex_on_bedrock: Codex on BEDROCK;
    codex_on_openai_compatible: Codex on OPENAI_COMPATIBLE;
    gemini_cli_on_openai: GeminiCli on OPENAI;
    gemini_cli_on_azure_openai: GeminiCli on AZURE;
    gemini_cli_on_mistral: GeminiCli on MISTRAL;
    gemini_cli_on_anthropic: GeminiCli on ANTHROPIC;
    gemini_cli_on_gemini: GeminiCli on GEMINI;
    gemini_cli_on_bedrock: GeminiCli on BEDROCK;
    gemini_cli_on_openai_compatible: GeminiCli on OPENAI_COMPATIBLE;
}

/// Every kind in [`KINDS`] has its three tests above (the list is the matrix's rows).
#[test]
fn the_matrix_covers_every_provider_kind() {
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.kind).collect();
    assert_eq!(
        kinds,
        [
            "openai",
            "azure-openai",
            "mistral",
            "anthropic",
            "gemini",
            "bedrock",
            "openai-compatible"
        ]
    );
}

/// Claude Code passes through to an Anthropic provider with its own model name (no route):
/// its headers reach the provider, its credential does not.
#[tokio::test]
async fn claude_code_passes_through_to_an_anthropic_provider() {
    if skip_without("claude", "Claude Code") {
        return;
    }
    let mock = MockProvider::start(Profile::Anthropic).await;
    // Answering with the model asked for, as Anthropic does.
    mock.respond_to(|path, body| {
        let model = body["model"].as_str().unwrap_or_default();
        act(
            Client::ClaudeCode,
            &ANTHROPIC,
            Wire::Anthropic,
            model,
            path,
            body,
        )
    });
    let gw = Gateway::start(&one_provider("anthropic"), &[&mock]).await;
    let run = run_client(Client::ClaudeCode, &gw, &mock).await;
    assert!(
        run.status.success()
            && run
                .stdout
                .contains(&format!("The command printed: {MARKER}")),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}\nprovider calls:\n{}",
        run.status.code(),
        run.stdout,
        run.stderr,
        calls(&run.requests)
    );
    let requests = run.requests;
    for r in &requests {
        // The client's own headers reached the provider; its credential did not.
        assert!(r.headers.get("anthropic-version").is_some());
        assert_eq!(r.headers["x-api-key"], "sk-provider-secret-0000");
        assert!(r.headers.get("authorization").is_none());
    }
    assert!(
        requests
            .iter()
            .any(|r| r.headers.get("anthropic-beta").is_some()),
        "Claude Code's beta flags were forwarded"
    );
}
