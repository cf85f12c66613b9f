//! Real clients end to end, each completing a task that needs a tool round trip: Claude Code
//! (`claude -p`) through Gatehouse to an OpenAI-style, a Mistral and an Anthropic mock
//! provider; Codex CLI (`codex exec`, Responses API only) to a Chat-Completions-only and an
//! Anthropic mock provider. The clients are installed by `.ci/run` (`npm ci` in
//! tests/e2e/node, as ../shared/CLIENTS.md says); without them the tests print a notice and
//! pass (they fail in CI).

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::mock::{chunk, usage_chunk};
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

fn claude_bin() -> Option<PathBuf> {
    client_bin("claude")
}

const MARKER: &str = "GATEHOUSE_TOOL_OK";

/// The shell tool a client offers, and the arguments that echo the marker with it.
#[derive(Clone, Copy)]
struct Shell {
    tool: &'static str,
    args: fn() -> Value,
}

const CLAUDE_SHELL: Shell = Shell {
    tool: "Bash",
    args: || json!({"command": format!("echo {MARKER}"), "description": "Print the marker"}),
};

const CODEX_SHELL: Shell = Shell {
    tool: "exec_command",
    args: || json!({"cmd": format!("echo {MARKER}")}),
};

/// Plays a model: asked with tools and no tool result yet, it calls Bash to echo the marker
/// (with tool-call id `call_id`); given the tool result, it answers with what the command
/// printed.
fn model(body: &Value, call_id: &str) -> Reply {
    model_with(body, call_id, CLAUDE_SHELL)
}

/// [`model`], calling the client's own shell tool.
fn model_with(body: &Value, call_id: &str, shell: Shell) -> Reply {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let tool_output =
        messages
            .iter()
            .rev()
            .find(|m| m["role"] == "tool")
            .map(|m| match &m["content"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            });
    let stream = body["stream"] == true;
    let text = match (
        &tool_output,
        body["tools"].as_array().is_some_and(|t| !t.is_empty()),
    ) {
        (Some(out), _) => format!("The command printed: {}", out.trim()),
        (None, true) => {
            let args = (shell.args)().to_string();
            return Reply::sse(vec![
                chunk(json!({"role": "assistant", "content": ""}), None),
                chunk(
                    json!({"tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": {"name": shell.tool, "arguments": ""}}]}),
                    None,
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": args}}]}),
                    None,
                ),
                chunk(json!({}), Some("tool_calls")),
                usage_chunk(900, 30),
            ]);
        }
        (None, false) => "ok".to_owned(),
    };
    if stream {
        Reply::sse(vec![
            chunk(json!({"role": "assistant", "content": ""}), None),
            chunk(json!({"content": text}), None),
            chunk(json!({}), Some("stop")),
            usage_chunk(950, 12),
        ])
    } else {
        Reply::json(200, crate::support::mock::chat_body(&text, 950, 12))
    }
}

/// The same model on Anthropic's wire format: a `tool_use` of Bash first, then the answer,
/// streamed as Anthropic streams.
fn anthropic_model(body: &Value) -> Reply {
    anthropic_model_with(body, CLAUDE_SHELL)
}

fn anthropic_model_with(body: &Value, shell: Shell) -> Reply {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let tool_output = messages.iter().rev().find_map(|m| {
        m["content"].as_array()?.iter().find_map(|b| {
            (b["type"] == "tool_result").then(|| match &b["content"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
    });
    let has_tools = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    let (block, delta, stop) = match (&tool_output, has_tools) {
        (None, true) => {
            let args = (shell.args)();
            (
                json!({"type": "tool_use", "id": "toolu_01E2E", "name": shell.tool, "input": {}}),
                json!({"type": "input_json_delta", "partial_json": args.to_string()}),
                "tool_use",
            )
        }
        (out, _) => {
            let text = out.as_ref().map_or_else(
                || "ok".to_owned(),
                |o| format!("The command printed: {}", o.trim()),
            );
            (
                json!({"type": "text", "text": ""}),
                json!({"type": "text_delta", "text": text}),
                "end_turn",
            )
        }
    };
    let model = body["model"].clone();
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_e2e", "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 900, "output_tokens": 1}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": block}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": delta}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 30}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    if body["stream"] == true {
        crate::support::wire::named_sse(&events)
    } else {
        let content = if stop == "tool_use" {
            let mut b = block.clone();
            b["input"] = serde_json::from_str(delta["partial_json"].as_str().unwrap()).unwrap();
            b
        } else {
            json!({"type": "text", "text": delta["text"]})
        };
        Reply::json(
            200,
            json!({"id": "msg_e2e", "type": "message", "role": "assistant", "model": model,
            "content": [content], "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": 900, "output_tokens": 30}}),
        )
    }
}

/// Run `claude -p` against the gateway and check the round trip; returns the provider calls.
async fn run_claude(gw: &Gateway, mock: &MockProvider) -> Vec<crate::support::mock::Recorded> {
    let claude = claude_bin().expect("checked by the caller");
    let home = std::env::temp_dir().join(format!(
        "gatehouse-claude-{}-{}",
        std::process::id(),
        mock.addr.port()
    ));
    std::fs::create_dir_all(&home).unwrap();
    let base = gw.url("/anthropic");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("120")
            .arg(claude)
            .args([
                "-p",
                &format!(
                    "Run `echo {MARKER}` with the Bash tool and tell me exactly what it printed."
                ),
                "--allowedTools",
                "Bash(echo:*)",
            ])
            .current_dir(&home)
            .env("HOME", &home)
            .env("ANTHROPIC_BASE_URL", base)
            .env("ANTHROPIC_AUTH_TOKEN", "sk-gatehouse-test")
            .env_remove("ANTHROPIC_API_KEY")
            .env("DISABLE_TELEMETRY", "1")
            .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let requests = mock.requests();
    let calls: Vec<String> = requests
        .iter()
        .map(|r| {
            format!(
                "{} tools={} stream={} effort={}",
                r.body["model"],
                r.body["tools"].as_array().map_or(0, Vec::len),
                r.body["stream"],
                r.body["reasoning_effort"]
            )
        })
        .collect();
    assert!(
        out.status.success() && stdout.contains(&format!("The command printed: {MARKER}")),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\nprovider calls: {calls:#?}",
        out.status.code()
    );
    // The tool really ran: the provider saw its output come back as a tool result.
    let saw_result = requests.iter().any(|r| {
        r.body["messages"].as_array().is_some_and(|m| {
            m.iter().any(|m| {
                let content = m["content"].to_string();
                (m["role"] == "tool" || content.contains("tool_result")) && content.contains(MARKER)
            })
        })
    });
    assert!(
        saw_result,
        "no tool result reached the provider: {calls:#?}"
    );
    requests
}

#[tokio::test]
async fn claude_code_completes_a_tool_round_trip_on_an_openai_style_provider() {
    if skip_without("claude", "Claude Code") {
        return;
    }
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|b| model(b, "call_e2e1"));
    let gw = Gateway::with_openai(&mock).await;
    run_claude(&gw, &mock).await;
}

#[tokio::test]
async fn claude_code_works_on_a_mistral_model_that_takes_only_none_or_high() {
    if skip_without("claude", "Claude Code") {
        return;
    }
    let mock = MockProvider::start(Profile::Mistral).await;
    mock.two_level_models(&["devstral-2512"]);
    mock.respond_with(|b| model(b, "Dk3p9QxZ1"));
    let cfg = format!(
        "{}[[routes]]\nmatch = {{ model = \"claude-*\" }}\ntargets = [\"p/devstral-2512\"]\n",
        one_provider("mistral")
    );
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let requests = run_claude(&gw, &mock).await;
    // Every body passed the Mistral schema (the mock answers 422 otherwise), and the effort
    // Claude Code asked for was mapped to what the model takes.
    // Claude Code asks for `output_config.effort: medium`; devstral takes none|high.
    for r in &requests {
        assert_eq!(r.body["model"], "devstral-2512");
        assert_eq!(r.body["reasoning_effort"], "high", "{}", r.body);
    }
}

#[tokio::test]
async fn claude_code_passes_through_to_an_anthropic_provider() {
    if skip_without("claude", "Claude Code") {
        return;
    }
    let mock = MockProvider::start(Profile::Anthropic).await;
    mock.respond_with(anthropic_model);
    let gw = Gateway::start(&one_provider("anthropic"), &[&mock]).await;
    let requests = run_claude(&gw, &mock).await;
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

/// Run `codex exec` against the gateway's Responses API and check the round trip; returns
/// the provider calls.
async fn run_codex(gw: &Gateway, mock: &MockProvider) -> Vec<crate::support::mock::Recorded> {
    let codex = client_bin("codex").expect("checked by the caller");
    let home = std::env::temp_dir().join(format!(
        "gatehouse-codex-{}-{}",
        std::process::id(),
        mock.addr.port()
    ));
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
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("120")
            .arg(codex)
            .args([
                "exec",
                "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox",
                &format!("Run `echo {MARKER}` in the shell and tell me exactly what it printed."),
            ])
            .current_dir(&work)
            .env("CODEX_HOME", &home)
            .env("HOME", &home)
            .env("GW_KEY", "sk-gatehouse-test")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let requests = mock.requests();
    let calls: Vec<String> = requests
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.path,
                r.body.to_string().chars().take(300).collect::<String>()
            )
        })
        .collect();
    assert!(
        out.status.success() && stdout.contains("The command printed:") && stdout.contains(MARKER),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\nprovider calls: {calls:#?}",
        out.status.code()
    );
    let saw_result = requests.iter().any(|r| {
        r.body["messages"].as_array().is_some_and(|m| {
            m.iter().any(|m| {
                let content = m["content"].to_string();
                (m["role"] == "tool" || content.contains("tool_result")) && content.contains(MARKER)
            })
        })
    });
    assert!(
        saw_result,
        "no tool result reached the provider: {calls:#?}"
    );
    requests
}

#[tokio::test]
async fn codex_completes_a_tool_round_trip_on_a_chat_completions_provider() {
    if skip_without("codex", "Codex CLI") {
        return;
    }
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|b| model_with(b, "call_codex1", CODEX_SHELL));
    let gw = Gateway::start(&one_provider("openai-compatible"), &[&mock]).await;
    let requests = run_codex(&gw, &mock).await;
    for r in &requests {
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.body["model"], "gpt-5-codex");
    }
}

#[tokio::test]
async fn codex_completes_a_tool_round_trip_on_the_anthropic_provider() {
    if skip_without("codex", "Codex CLI") {
        return;
    }
    let mock = MockProvider::start(Profile::Anthropic).await;
    mock.respond_with(|b| anthropic_model_with(b, CODEX_SHELL));
    let cfg = format!(
        "{}[[routes]]\nmatch = {{ model = \"gpt-5*\" }}\ntargets = [\"p/claude-sonnet-4-5\"]\n",
        one_provider("anthropic")
    );
    let gw = Gateway::start(&cfg, &[&mock]).await;
    let requests = run_codex(&gw, &mock).await;
    for r in &requests {
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(r.body["model"], "claude-sonnet-4-5");
    }
}

const GEMINI_LIST: Shell = Shell {
    tool: "list_directory",
    args: || json!({"dir_path": "."}),
};

/// Gemini CLI (`gemini -p`, Gemini API only) through Gatehouse to a Chat-Completions-only
/// provider: the model lists the working directory (which holds a file named after the
/// marker) with Gemini CLI's own tool, then answers with what it saw.
#[tokio::test]
async fn gemini_cli_answers_through_an_openai_compatible_provider() {
    if skip_without("gemini", "Gemini CLI") {
        return;
    }
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|b| model_with(b, "call_gem1", GEMINI_LIST));
    let gw = Gateway::start(&one_provider("openai-compatible"), &[&mock]).await;
    let gemini = client_bin("gemini").unwrap();
    let home = std::env::temp_dir().join(format!("gatehouse-gemini-{}", std::process::id()));
    let work = home.join("ws");
    std::fs::create_dir_all(home.join(".gemini")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        home.join(".gemini/settings.json"),
        r#"{"security": {"auth": {"selectedType": "gemini-api-key"}}}"#,
    )
    .unwrap();
    std::fs::write(work.join(format!("{MARKER}.txt")), "x").unwrap();
    let base = gw.url("/gemini");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("120")
            .arg(gemini)
            .args([
                "-p",
                "List the files here and tell me what you saw.",
                "-m",
                "gemini-2.5-flash",
            ])
            .current_dir(&work)
            .env("HOME", &home)
            .env("GEMINI_CLI_TRUST_WORKSPACE", "true")
            .env("GEMINI_API_KEY", "sk-gatehouse-test")
            .env("GOOGLE_GEMINI_BASE_URL", base)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let requests = mock.requests();
    assert!(
        out.status.success() && stdout.contains("The command printed:") && stdout.contains(MARKER),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}\nprovider calls: {}",
        out.status.code(),
        requests.len()
    );
    assert!(requests.len() >= 2, "a tool round trip takes two calls");
    for r in &requests {
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.body["model"], "gemini-2.5-flash");
    }
}
