use std::collections::HashMap;

use super::*;
use crate::schema::ReasoningEffort;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const GOOD: &str = r#"
[server]
listen = "127.0.0.1:9090"

[providers.mistral]
kind = "mistral"
api_key = "${MISTRAL_API_KEY}"
reasoning_effort = { "devstral-*" = ["none", "high"] }

[providers.local]
kind = "openai-compatible"
base_url = "http://127.0.0.1:8081/v1/"
timeouts = { connect = "2s", first_byte = "30s", idle = "10s" }

[[routes]]
match = { model = "claude-opus-*" }
rewrite = "claude-sonnet-4-5"

[[routes]]
match = { model = "claude-*" }
targets = ["mistral/devstral-2512", "local/qwen2.5-coder"]
"#;

#[test]
fn parses_a_complete_file() {
    let cfg = parse("g.toml", GOOD, &env(&[("MISTRAL_API_KEY", "sk-m-123")])).unwrap();
    assert_eq!(cfg.server.listen.port(), 9090);
    assert_eq!(cfg.providers.len(), 2);
    assert_eq!(cfg.providers[0].name, "mistral");
    assert_eq!(cfg.providers[0].api_keys[0].expose(), "sk-m-123");
    assert_eq!(cfg.providers[1].base_url, "http://127.0.0.1:8081/v1");
    assert_eq!(cfg.providers[1].timeouts.idle, Duration::from_secs(10));
    assert!(cfg.providers[1].is_catch_all());
    assert_eq!(
        cfg.providers[0].reasoning_levels_for("devstral-2512"),
        Some(&[ReasoningEffort::None, ReasoningEffort::High][..])
    );
    assert_eq!(cfg.routes.len(), 2);
    match &cfg.routes[1].action {
        RouteAction::Targets { targets, balance } => {
            assert_eq!(
                targets[0].target,
                Target {
                    provider: "mistral".into(),
                    model: Some("devstral-2512".into())
                }
            );
            assert_eq!(targets[0].weight, 1);
            assert_eq!(*balance, crate::config::Balance::Failover);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reports_every_error_with_its_position() {
    let text = "[server]\nlisten = \"nope\"\nlisen = 1\n\n[providers.m]\nkind = \"mistral\"\napi_key = \"${MISSING_KEY}\"\napi_kye = \"x\"\n\n[[routes]]\nmatch = { model = \"a*\" }\ntargets = [\"ghost/model\"]\n";
    let errs = parse("bad.toml", text, &env(&[])).unwrap_err();
    let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert!(
        lines
            .contains(&"bad.toml:2:10: invalid listen address `nope`: expected IP:PORT".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"bad.toml:3:1: unknown key `server.lisen`".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"bad.toml:8:1: unknown key `providers.m.api_kye`".to_owned()),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("bad.toml:7:11:") && l.contains("MISSING_KEY")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("bad.toml:12:12:") && l.contains("ghost")),
        "{lines:#?}"
    );
}

#[test]
fn syntax_errors_have_positions() {
    let errs = parse("s.toml", "[server]\nlisten = \n", &env(&[])).unwrap_err();
    assert_eq!(errs[0].line, 2, "{errs:?}");
}

#[test]
fn type_errors_have_positions() {
    let errs = parse("t.toml", "[server]\nmax_body_bytes = \"big\"\n", &env(&[])).unwrap_err();
    assert_eq!((errs[0].line, errs[0].col), (2, 18), "{errs:?}");
}

#[test]
fn secrets_never_appear_in_errors() {
    let text =
        "[providers.o]\nkind = \"openai\"\napi_key = \"${K}\"\nbase_url = \"ftp://${K}@x\"\n";
    let errs = parse("x.toml", text, &env(&[("K", "sk-canary-9999")])).unwrap_err();
    for e in &errs {
        assert!(!e.to_string().contains("sk-canary"), "{e}");
    }
    let dbg = format!(
        "{:?}",
        parse(
            "y.toml",
            "[providers.o]\nkind = \"openai\"\napi_key = \"${K}\"\n",
            &env(&[("K", "sk-canary-99999999")])
        )
        .unwrap()
    );
    assert!(!dbg.contains("sk-canary"), "{dbg}");
}

#[test]
fn embedded_default_follows_the_environment() {
    let cfg = embedded_default(&env(&[])).unwrap();
    assert!(cfg.providers.is_empty());
    assert_eq!(cfg.server.listen.to_string(), DEFAULT_LISTEN);
    assert_eq!(cfg.store.url, DEFAULT_STORE_URL);
    let cfg = embedded_default(&env(&[
        ("OPENAI_API_KEY", "sk-o"),
        ("MISTRAL_API_KEY", "sk-m"),
        (
            "GATEHOUSE_OPENAI_COMPATIBLE_URL",
            "http://127.0.0.1:8081/v1",
        ),
    ]))
    .unwrap();
    let names: Vec<_> = cfg.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["openai", "mistral", "local"]);
}

#[test]
fn the_example_config_is_valid() {
    let text = include_str!("../../config/example.toml");
    let e = env(&[
        ("OPENAI_API_KEY", "sk-o"),
        ("MISTRAL_API_KEY", "sk-m"),
        ("GATEHOUSE_ADMIN_TOKEN", "t"),
        ("ALICE_KEY", "sk-alice-0123456789abcdef"),
    ]);
    if let Err(errs) = parse("config/example.toml", text, &e) {
        panic!("{errs:#?}");
    }
}

const GOVERNED: &str = r#"
[providers.local]
kind = "openai-compatible"
base_url = "http://127.0.0.1:8081/v1"
budget = { tokens = 100000, period = "daily" }

[pricing."my-model"]
input = 1.5
output = 6

[teams.platform]
budget = [{ usd = 500, period = "monthly" }, { usd = 50, period = "daily", timezone = "Europe/Paris" }]
rate_limit = { rpm = 600, tpm = 2000000 }

[users."alice@example.com"]
rate_limit = { concurrent = 4 }

[projects.search]
budget = { tokens = 5000000, period = "weekly" }

[[keys]]
name = "alice"
key = "sk-alice-0123456789abcdef"
team = "platform"
budget = { usd = 5, period = "daily", on_exhausted = { route_to = "local/qwen2.5-coder" } }
"#;

#[test]
fn budgets_and_rate_limits_parse_into_integers() {
    let cfg = parse("g.toml", GOVERNED, &env(&[])).unwrap();
    let team = &cfg.teams["platform"].policy;
    assert_eq!(team.budgets.len(), 2);
    assert_eq!(team.budgets[0].unit, BudgetUnit::Usd);
    assert_eq!(team.budgets[0].limit, 500_000_000_000);
    assert_eq!(team.budgets[1].timezone, "Europe/Paris");
    assert_eq!(team.rate_limit.rpm, Some(600));
    assert_eq!(
        cfg.users["alice@example.com"].rate_limit.concurrent,
        Some(4)
    );
    assert_eq!(cfg.projects["search"].budgets[0].period, Period::Weekly);
    assert_eq!(cfg.providers[0].budgets[0].limit, 100_000);
    let key = &cfg.keys[0].policy.budgets[0];
    assert_eq!(key.limit, 5_000_000_000);
    assert_eq!(
        key.on_exhausted,
        OnExhausted::RouteTo(Target {
            provider: "local".into(),
            model: Some("qwen2.5-coder".into())
        })
    );
    assert_eq!(cfg.pricing.lookup("my-model").map(|p| p.output), Some(6.0));
}

#[test]
fn budget_mistakes_are_reported_with_positions() {
    let text = r#"
[providers.p]
kind = "openai-compatible"
base_url = "http://127.0.0.1:1/v1"
budget = { tokens = 10, period = "daily", on_exhausted = { route_to = "p/x" } }

[teams.t]
budget = { usd = 5, period = "fortnightly", cap = 3 }
rate_limit = { rpm = 0, burst = 2 }

[[keys]]
name = "k"
key = "sk-0123456789abcdef"
budget = [{ usd = 1, tokens = 5, period = "daily" }, { tokens = 9, period = "daily", timezone = "Mars/Olympus" }]
"#;
    let errs = parse("b.toml", text, &env(&[])).unwrap_err();
    let all = errs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for want in [
        "provider budget cannot route elsewhere",
        "unknown key `teams.t.budget.cap`",
        "unknown period `fortnightly`",
        "unknown key `teams.t.rate_limit.burst`",
        "rate_limit rpm must be greater than 0",
        "in usd or in tokens, not both",
        "unknown time zone `Mars/Olympus`",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
    assert!(errs.iter().all(|e| e.line > 0), "{all}");
}

#[test]
fn routing_rules_and_settings_are_validated() {
    let env: HashMap<String, String> = HashMap::new();
    let head = "[providers.a]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:1/v1\"\n[providers.b]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:2/v1\"\n";
    let errors = |tail: &str| -> Vec<String> {
        super::parse("t.toml", &format!("{head}{tail}"), &env)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.message)
            .collect()
    };
    let cases = [
        (
            "[[routes]]\nmatch = { model = \"m\" }\ntargets = [\"a/x\", \"b/y\", \"a/x\"]\n",
            "listed twice",
        ),
        (
            "[[routes]]\nmatch = { model = \"m\" }\nsplit = [{ target = \"a/x\", weight = 0 }]\n",
            "add up to 0",
        ),
        (
            "[[routes]]\nmatch = { model = \"m\" }\ntargets = [\"a\"]\nsticky = \"user\"\n",
            "sticky applies to a split only",
        ),
        (
            "[[routes]]\nmatch = { model = \"m\" }\nsplit = [\"a\"]\nsticky = \"session\"\n",
            "unknown sticky",
        ),
        (
            "[[routes]]\nmatch = { model = \"m\" }\ntargets = [\"a\"]\nbalance = \"random\"\n",
            "unknown balance",
        ),
        (
            "[[routes]]\nmatch = { model = \"m\" }\ntargets = [\"a\"]\nmirror = { target = \"b\", sample = 1.5 }\n",
            "between 0 and 1",
        ),
        (
            "[[routes]]\nmatch = { model = \"m\" }\nrewrite = \"n\"\nmirror = { target = \"b\" }\n",
            "cannot mirror",
        ),
        (
            "[[routes]]\nmatch = { model = \"m\" }\ntargets = [\"a\"]\nsplit = [\"b\"]\n",
            "not several",
        ),
        (
            "[[routes]]\nmatch = { budget_exhausted = \"org\" }\ntargets = [\"a\"]\n",
            "unknown budget `org`",
        ),
        (
            "[[routes]]\nmatch = { budget_available = \"provider:c\" }\ntargets = [\"a\"]\n",
            "unknown provider `c`",
        ),
        (
            "[[routes]]\nmatch = { budget_exhausted = \"provider:a\" }\ntargets = [\"b\"]\n",
            "provider `a` has no budget",
        ),
        (
            "[[routes]]\nmatch = { budget_exhausted = 1 }\ntargets = [\"b\"]\n",
            "true, false or a string",
        ),
        ("[routing]\nmax_attempts = 6\n", "between 1 and 5"),
        (
            "[routing]\nretry_budget = { percent = 120 }\n",
            "at most 100",
        ),
        (
            "[routing]\noutlier = { consecutive_failures = 0 }\n",
            "at least 1",
        ),
        (
            "[routing]\noutlier = { ejection = \"60s\", max_ejection = \"30s\" }\n",
            "at least the first ejection's length",
        ),
    ];
    for (tail, want) in cases {
        let got = errors(tail);
        assert!(got.iter().any(|e| e.contains(want)), "{tail}: {got:?}");
    }
    let ok = super::parse(
        "t.toml",
        &format!("{head}[[routes]]\nname = \"ab\"\nmatch = {{ model = \"m\" }}\nsplit = [{{ target = \"a/x\", weight = 90 }}, \"b/y\"]\nsticky = {{ header = \"X-Session\" }}\nmirror = {{ target = \"b/z\", sample = 0.05, budget = {{ usd = 1, period = \"daily\" }} }}\ntimeout = \"30s\"\n[routing]\nmax_attempts = 3\nkey_cooldown = \"5s\"\n"),
        &env,
    )
    .unwrap();
    let r = &ok.routes[0];
    assert_eq!(r.name, "ab");
    assert_eq!(r.timeout, Some(std::time::Duration::from_secs(30)));
    match &r.action {
        RouteAction::Split { targets, sticky } => {
            assert_eq!(
                targets.iter().map(|w| w.weight).collect::<Vec<_>>(),
                [90, 1]
            );
            assert_eq!(
                *sticky,
                Some(crate::config::Sticky::Header(
                    http::HeaderName::from_static("x-session")
                ))
            );
        }
        other => panic!("{other:?}"),
    }
    let m = r.mirror.as_ref().unwrap();
    assert_eq!(
        (m.target.to_string(), m.sample, m.budgets.len()),
        ("b/z".to_owned(), 0.05, 1)
    );
    assert_eq!(ok.routing.max_attempts, 3);
    assert_eq!(ok.routing.key_cooldown, std::time::Duration::from_secs(5));
    // Ejections last at most ten times the first unless `max_ejection` says otherwise.
    let secs = std::time::Duration::from_secs;
    assert_eq!(
        (ok.routing.ejection, ok.routing.max_ejection),
        (secs(30), secs(300))
    );
    for (outlier, max) in [
        ("{ ejection = \"10s\" }", secs(100)),
        ("{ ejection = \"10s\", max_ejection = \"45s\" }", secs(45)),
    ] {
        let c = super::parse(
            "t.toml",
            &format!("{head}[routing]\noutlier = {outlier}\n"),
            &env,
        )
        .unwrap();
        assert_eq!(c.routing.max_ejection, max, "{outlier}");
    }
}

#[test]
fn model_patterns_match_as_their_globs_do() {
    let names = [
        "",
        "claude-opus-4-5",
        "claude-",
        "claude",
        "gpt-4o",
        "gpt-4o-mini",
        "openai/gpt-4o",
        "x-claude-y",
        "o3",
        "a*b",
        "mistral-large-latest",
        "MODEL",
    ];
    let patterns = [
        "*",
        "claude-*",
        "*-mini",
        "gpt-4o",
        "gpt-4o*",
        "*latest",
        "o?",
        "claude-[a-z]*",
        "{gpt,o3}*",
        "openai/*",
        "*/gpt-4o",
        "model",
        "a\\*b",
        "**",
    ];
    for p in patterns {
        let fast = super::ModelPattern::new(p).unwrap();
        let glob = globset::Glob::new(p).unwrap().compile_matcher();
        for n in names {
            assert_eq!(fast.matches(n), glob.is_match(n), "pattern {p:?} on {n:?}");
        }
    }
}

#[test]
fn log_settings_are_validated() {
    let env: HashMap<String, String> = HashMap::new();
    let errors = |text: &str| -> Vec<String> {
        super::parse("t.toml", text, &env)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.message)
            .collect()
    };
    assert!(errors("[log]\nretention_days = 7\n")[0].contains("at least 32"));
    assert!(errors("[log]\nqueue = 0\n")[0].contains("at least 1"));
    let forever = super::parse("t.toml", "[log]\nretention_days = 0\nqueue = 5\n", &env).unwrap();
    assert_eq!((forever.log.retention_days, forever.log.queue), (None, 5));
    let default = super::parse("t.toml", "", &env).unwrap();
    assert_eq!(
        default.log.retention_days,
        Some(super::DEFAULT_RETENTION_DAYS)
    );
    assert_eq!(default.log.bodies, BodyLevel::Off);
    assert!(errors("[log]\nbodies = \"some\"\n")[0].contains("unknown body level `some`"));
    assert!(errors("[log]\nbody_limit = 10\n")[0].contains("between 256"));
    let text = "[log]\nbodies = \"client\"\nbody_limit = 4096\n[providers.p]\nkind = \"openai\"\napi_key = \"sk-a-provider-key-123456\"\nlog_bodies = \"all\"\n[[keys]]\nname = \"k\"\nkey = \"sk-gate-static-key-0001\"\nlog_bodies = \"off\"\n";
    let c = super::parse("t.toml", text, &env).unwrap();
    assert_eq!(
        (c.log.bodies, c.log.body_limit, c.log.provider_bodies),
        (BodyLevel::Client, 4096, true)
    );
    assert_eq!(c.keys[0].log_bodies, Some(BodyLevel::Off));
    // The config's secrets are taken out of kept bodies.
    assert_eq!(
        c.log.redactor.redact("a sk-a-provider-key-123456 b"),
        "a [REDACTED] b"
    );
}

#[test]
fn busy_poll_is_off_unless_set_and_bounded() {
    let cfg = parse("b.toml", "", &env(&[])).unwrap();
    assert_eq!(cfg.server.busy_poll, Duration::ZERO);
    let cfg = parse("b.toml", "[server]\nbusy_poll = \"200us\"\n", &env(&[])).unwrap();
    assert_eq!(cfg.server.busy_poll, Duration::from_micros(200));
    let errs = parse("b.toml", "[server]\nbusy_poll = \"1s\"\n", &env(&[])).unwrap_err();
    assert_eq!((errs[0].line, errs[0].col), (2, 13), "{errs:?}");
    assert!(errs[0].to_string().contains("at most 10ms"), "{errs:?}");
    let errs = parse("b.toml", "[server]\nbusy_poll = \"fast\"\n", &env(&[])).unwrap_err();
    assert!(errs[0].to_string().contains("invalid duration"), "{errs:?}");
}

#[test]
fn cancel_on_disconnect_is_on_unless_turned_off() {
    let cfg = parse("c.toml", "", &env(&[])).unwrap();
    assert!(cfg.server.cancel_on_disconnect);
    let cfg = parse(
        "c.toml",
        "[server]\ncancel_on_disconnect = false\n",
        &env(&[]),
    )
    .unwrap();
    assert!(!cfg.server.cancel_on_disconnect);
    let errs = parse(
        "c.toml",
        "[server]\ncancel_on_disconnect = \"no\"\n",
        &env(&[]),
    )
    .unwrap_err();
    // At the value, with what was expected.
    assert_eq!((errs[0].line, errs[0].col), (2, 24), "{errs:?}");
    assert!(errs[0].message.contains("expected a boolean"), "{errs:?}");
}

#[test]
fn allowed_hosts_and_origins_are_read_and_checked() {
    let cfg = parse(
        "s.toml",
        "[server]\nallowed_hosts = [\"Gateway.Internal\"]\nallowed_origins = [\"https://App.example.com\", \"null\"]\n",
        &env(&[]),
    )
    .unwrap();
    assert_eq!(cfg.server.allowed_hosts, ["gateway.internal"]);
    assert_eq!(
        cfg.server.allowed_origins,
        ["https://app.example.com", "null"]
    );
    let errs = parse(
        "s.toml",
        "[server]\nallowed_hosts = [\"http://x/\"]\nallowed_origins = [\"app.example.com\"]\n",
        &env(&[]),
    )
    .unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|e| e.contains("allowed_hosts")), "{text:?}");
    assert!(
        text.iter().any(|e| e.contains("allowed_origins")),
        "{text:?}"
    );
}

#[test]
fn idempotency_settings_have_defaults_and_are_validated() {
    let env: HashMap<String, String> = HashMap::new();
    let head =
        "[providers.a]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:1/v1\"\n";
    let cfg = parse("t.toml", head, &env).unwrap();
    assert_eq!(cfg.idempotency, IdempotencySettings::default());
    assert_eq!(cfg.idempotency.ttl, Duration::from_secs(24 * 3600));
    assert_eq!(cfg.idempotency.memory, 64 * 1024 * 1024);
    assert_eq!(cfg.idempotency.max_reply, 4 * 1024 * 1024);
    assert!(cfg.idempotency.enabled);
    let text = format!(
        "{head}[idempotency]\nttl = \"2h\"\nmemory = 1000\nmax_reply_bytes = 500\nredis_down = \"refuse\"\n"
    );
    let cfg = parse("t.toml", &text, &env).unwrap();
    assert_eq!(cfg.idempotency.ttl, Duration::from_secs(7200));
    assert_eq!(cfg.idempotency.memory, 1000);
    assert_eq!(cfg.idempotency.max_reply, 500);
    assert_eq!(cfg.idempotency.redis_down, RedisDown::Refuse);
    // A memory bound below the default reply bound lowers it.
    let cfg = parse(
        "t.toml",
        &format!("{head}[idempotency]\nmemory = 1000\n"),
        &env,
    )
    .unwrap();
    assert_eq!(cfg.idempotency.max_reply, 1000);
    for (tail, want) in [
        (
            "ttl = \"0s\"",
            "idempotency.ttl must be between 1s and 168h",
        ),
        (
            "ttl = \"200h\"",
            "idempotency.ttl must be between 1s and 168h",
        ),
        ("memory = 0", "idempotency.memory must be greater than 0"),
        (
            "max_reply_bytes = 0",
            "max_reply_bytes must be greater than 0",
        ),
        (
            "memory = 10\nmax_reply_bytes = 11",
            "max_reply_bytes (11) must not exceed idempotency.memory (10)",
        ),
        ("redis_down = \"maybe\"", "expected `local` or `refuse`"),
        ("size = 1", "unknown key `idempotency.size`"),
    ] {
        let errs = parse("t.toml", &format!("{head}[idempotency]\n{tail}\n"), &env).unwrap_err();
        let all = errs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(all.contains(want), "{tail}: missing {want:?} in:\n{all}");
    }
}

#[test]
fn connection_settings_have_defaults_and_are_checked() {
    let c = parse("c.toml", "", &env(&[])).unwrap().server.connections;
    assert_eq!(c, super::ConnectionLimits::default());
    assert_eq!(c.header_read_timeout, Duration::from_secs(10));
    assert_eq!(c.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.http2_keepalive_interval, Duration::from_secs(20));
    assert_eq!(c.http2_keepalive_timeout, Duration::from_secs(20));
    assert_eq!(
        c.max_connections, None,
        "derived from the open-file limit at start"
    );
    let text = "[server]\nheader_read_timeout = \"2s\"\nidle_timeout = \"5m\"\nhttp2_keepalive_interval = \"1s\"\nhttp2_keepalive_timeout = \"500ms\"\nmax_connections = 300\n";
    let c = parse("c.toml", text, &env(&[])).unwrap().server.connections;
    assert_eq!(c.header_read_timeout, Duration::from_secs(2));
    assert_eq!(c.idle_timeout, Duration::from_secs(300));
    assert_eq!(c.http2_keepalive_interval, Duration::from_secs(1));
    assert_eq!(c.http2_keepalive_timeout, Duration::from_millis(500));
    assert_eq!(c.max_connections, Some(300));
    let text = "[server]\nheader_read_timeout = \"0s\"\nidle_timeout = \"soon\"\nhttp2_keepalive_interval = \"0ms\"\nhttp2_keepalive_timeout = \"0s\"\nmax_connections = 0\n";
    let errs = parse("c.toml", text, &env(&[])).unwrap_err();
    let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(errs.len(), 5, "{msgs:?}");
    assert_eq!((errs[0].line, errs[0].col), (2, 23), "{msgs:?}");
    assert!(
        msgs[0].contains("header_read_timeout must be greater than 0"),
        "{msgs:?}"
    );
    assert!(msgs[1].contains("invalid duration"), "{msgs:?}");
    assert!(
        msgs[2].contains("http2_keepalive_interval must be greater than 0"),
        "{msgs:?}"
    );
    assert!(
        msgs[3].contains("http2_keepalive_timeout must be greater than 0"),
        "{msgs:?}"
    );
    assert!(
        msgs[4].contains("max_connections must be at least 1"),
        "{msgs:?}"
    );
}

#[test]
fn the_store_timeout_has_a_default_and_a_range() {
    let cfg = parse("s.toml", "[store]\nurl = \"sqlite::memory:\"\n", &env(&[])).unwrap();
    assert_eq!(cfg.store.timeout, DEFAULT_STORE_TIMEOUT);
    let cfg = parse("s.toml", "[store]\ntimeout = \"750ms\"\n", &env(&[])).unwrap();
    assert_eq!(cfg.store.timeout, std::time::Duration::from_millis(750));
    for bad in ["0s", "5ms", "10m"] {
        let errs = parse(
            "s.toml",
            &format!("[store]\ntimeout = \"{bad}\"\n"),
            &env(&[]),
        )
        .unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].to_string().contains("s.toml:2:11")
                && errs[0]
                    .to_string()
                    .contains("store.timeout must be between"),
            "{}",
            errs[0]
        );
    }
    let errs = parse("s.toml", "[store]\ntimeout = \"soon\"\n", &env(&[])).unwrap_err();
    assert!(
        errs[0].to_string().contains("invalid duration"),
        "{}",
        errs[0]
    );
}
