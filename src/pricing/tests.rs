//! Tests of the price table: the built-in file, lookups and exact cost arithmetic.

use super::*;

fn price(input: f64, output: f64) -> Price {
    Price {
        input,
        output,
        cache_read: None,
        cache_write: None,
        tier: None,
        max_output_tokens: None,
        context_window: None,
    }
}

fn usage(input: u64, cache_read: u64, cache_write: u64, output: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        reasoning_tokens: 0,
    }
}

fn all_entries(e: &Entries) -> Vec<(String, Price)> {
    let mut v: Vec<_> = e
        .exact
        .iter()
        .map(|(k, p)| (k.clone(), p.clone()))
        .collect();
    v.extend(e.globs.iter().map(|g| (g.pattern.clone(), g.price.clone())));
    v
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

// === the built-in table ===

#[test]
fn builtin_parses_and_every_price_is_positive() {
    let entries = parse_builtin(BUILTIN_TOML).expect("builtin.toml parses");
    let all = all_entries(&entries);
    assert!(all.len() > 80, "{} entries", all.len());
    for (name, p) in &all {
        assert!(p.input > 0.0, "{name}: input");
        // Embedding models have no output tokens; everything else must price them.
        if name.contains("embed") {
            assert!(p.output == 0.0, "{name}: output");
        } else {
            assert!(p.output > 0.0, "{name}: output");
        }
        if let Some(r) = p.cache_read {
            assert!(r > 0.0 && r < p.input, "{name}: cache_read is a discount");
        }
        if let Some(w) = p.cache_write {
            assert!(w >= p.input, "{name}: cache_write");
        }
        if let Some(t) = &p.tier {
            assert!(t.above_input_tokens >= 100_000, "{name}: tier threshold");
            assert!(
                t.input > p.input && t.output >= p.output,
                "{name}: tier prices"
            );
            assert_eq!(t.cache_read.is_some(), p.cache_read.is_some(), "{name}");
            assert_eq!(t.cache_write.is_some(), p.cache_write.is_some(), "{name}");
        }
    }
    // The shared table is the same one, parsed without error.
    assert!(!PriceTable::builtin().builtin.is_empty());
}

#[test]
fn builtin_claude_cache_prices_follow_anthropic_multipliers() {
    let entries = parse_builtin(BUILTIN_TOML).expect("parses");
    let mut seen = 0;
    for (name, p) in all_entries(&entries) {
        // Claude 3 Haiku's page prices ($0.30 write, $0.03 read) are rounded from the
        // multipliers ($0.3125, $0.025); the table keeps the page's figures.
        if !name.contains("claude") || name == "claude-3-haiku" {
            continue;
        }
        seen += 1;
        let check = |input: f64, read: Option<f64>, write: Option<f64>| {
            assert!(
                close(read.unwrap_or(0.0), input * 0.1),
                "{name}: cache_read"
            );
            assert!(
                close(write.unwrap_or(0.0), input * 1.25),
                "{name}: cache_write"
            );
        };
        check(p.input, p.cache_read, p.cache_write);
        if let Some(t) = &p.tier {
            check(t.input, t.cache_read, t.cache_write);
        }
    }
    assert!(seen >= 15, "{seen}");
}

#[test]
fn builtin_has_the_required_models() {
    let t = PriceTable::builtin();
    let required = [
        "gpt-5.5",
        "gpt-5.4",
        "gpt-5.2",
        "gpt-5.1",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-4o",
        "gpt-4o-mini",
        "o1",
        "o3",
        "o3-mini",
        "o4-mini",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "text-embedding-ada-002",
        "claude-opus-4-5",
        "claude-opus-4-1",
        "claude-opus-4",
        "claude-sonnet-4-5",
        "claude-sonnet-4",
        "claude-3-7-sonnet",
        "claude-haiku-4-5",
        "claude-3-5-haiku",
        "claude-3-haiku",
        "mistral-large-latest",
        "mistral-medium",
        "mistral-small",
        "codestral",
        "devstral-2512",
        "devstral-medium",
        "devstral-small",
        "magistral-medium",
        "magistral-small",
        "ministral-8b",
        "ministral-3b",
        "open-mistral-nemo",
        "pixtral-large",
        "mistral-embed",
        "gemini-3-pro-preview",
        "gemini-3-pro",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.5-flash-lite",
        "gemini-2.0-flash",
        "gemini-embedding-001",
        "amazon.nova-pro-v1:0",
        "amazon.nova-lite-v1:0",
        "amazon.nova-micro-v1:0",
        "meta.llama3-3-70b-instruct-v1:0",
        "mistral.mistral-large-2407-v1:0",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
    ];
    for m in required {
        assert!(t.lookup(m).is_some(), "{m}");
    }
}

#[test]
fn parse_builtin_rejects_mistakes() {
    let ok = "[models.\"a\"]\ninput = 1.0\noutput = 2.0\n";
    assert!(parse_builtin(ok).is_ok());
    let typo = "[models.\"a\"]\ninput = 1.0\noutput = 2.0\ncache_reed = 0.1\n";
    assert!(parse_builtin(typo).unwrap_err().contains("cache_reed"));
    let tier_typo = "[models.\"a\"]\ninput = 1.0\noutput = 2.0\n\
                     tier = { above_input_tokens = 5, input = 2.0, output = 3.0, x = 1 }\n";
    assert!(parse_builtin(tier_typo).is_err());
    let twice = "[models.\"a\"]\ninput = 1.0\noutput = 2.0\n\
                 [models.\"b\"]\ninput = 1.0\noutput = 2.0\naliases = [\"A\"]\n";
    assert!(parse_builtin(twice).unwrap_err().contains("twice"));
    let negative = "[models.\"a\"]\ninput = -1.0\noutput = 2.0\n";
    assert!(parse_builtin(negative).is_err());
    assert!(parse_builtin("[models.\"a[\"]\ninput = 1.0\noutput = 2.0\n").is_err());
}

// === lookup ===

#[test]
fn lookup_forgives_provider_spellings() {
    let t = PriceTable::builtin();
    let same = [
        ("openai/gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        (" gpt-4o ", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-5.1-chat-latest", "gpt-5.1"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o1-2024-12-17", "o1"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("claude-opus-4-20250514", "claude-opus-4"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("anthropic/claude-haiku-4-5", "claude-haiku-4-5"),
        ("claude-3-5-haiku@20241022", "claude-3-5-haiku"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
        (
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            "claude-3-5-haiku",
        ),
        (
            "eu.anthropic.claude-sonnet-4-20250514-v1:0",
            "claude-sonnet-4",
        ),
        (
            "apac.anthropic.claude-3-7-sonnet-20250219-v1:0",
            "claude-3-7-sonnet",
        ),
        (
            "anthropic.claude-3-haiku-20240307-v1:0:200k",
            "claude-3-haiku",
        ),
        (
            "bedrock/global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "claude-sonnet-4-5",
        ),
        (
            "global.anthropic.claude-opus-4-5-20251101-v1:0",
            "claude-opus-4-5",
        ),
        ("us.amazon.nova-pro-v1:0", "amazon.nova-pro"),
        ("amazon.nova-micro-v1:0", "amazon.nova-micro"),
        (
            "us.meta.llama3-3-70b-instruct-v1:0",
            "meta.llama3-3-70b-instruct",
        ),
        (
            "mistral.mistral-large-2407-v1:0",
            "mistral.mistral-large-2407",
        ),
        ("mistral-large-latest", "mistral-large"),
        ("mistral-large-2512", "mistral-large"),
        ("mistral/mistral-small-2506", "mistral-small"),
        ("codestral-2508", "codestral"),
        ("devstral-medium-2507", "devstral-medium"),
        ("labs-devstral-small-2512", "devstral-small"),
        ("magistral-medium-latest", "magistral-medium"),
        ("ministral-8b-2512", "ministral-8b"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("gemini-2.5-pro-preview-06-05", "gemini-2.5-pro"),
        ("gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash"),
        (
            "gemini-2.5-flash-lite-preview-06-17",
            "gemini-2.5-flash-lite",
        ),
        ("gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini-2.0-flash-exp", "gemini-2.0-flash"),
        ("google/gemini-3-pro-preview", "gemini-3.1-pro-preview"),
    ];
    for (query, canonical) in same {
        let want = t
            .lookup(canonical)
            .unwrap_or_else(|| panic!("{canonical} is priced"));
        assert_eq!(t.lookup(query), Some(want), "{query} -> {canonical}");
    }
}

#[test]
fn dated_entries_beat_date_stripping() {
    let t = PriceTable::builtin();
    assert_eq!(t.lookup("gpt-4o-2024-05-13").map(|p| p.input), Some(5.0));
    assert_eq!(t.lookup("gpt-4o-2024-11-20").map(|p| p.input), Some(2.5));
    assert_eq!(t.lookup("mistral-large-2411").map(|p| p.input), Some(2.0));
    assert_eq!(t.lookup("mistral-large-2407").map(|p| p.input), Some(2.0));
    assert_eq!(t.lookup("mistral-medium-2508").map(|p| p.input), Some(0.4));
    assert_eq!(t.lookup("ministral-8b-2410").map(|p| p.input), Some(0.1));
    assert_eq!(t.lookup("devstral-2512").map(|p| p.output), Some(2.0));
}

#[test]
fn bedrock_regional_endpoints_of_claude_4_5_cost_ten_percent_more() {
    let t = PriceTable::builtin();
    let direct = t.lookup("claude-sonnet-4-5").expect("priced");
    let global = t
        .lookup("global.anthropic.claude-sonnet-4-5-20250929-v1:0")
        .expect("priced");
    let regional = t
        .lookup("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
        .expect("priced");
    let in_region = t
        .lookup("anthropic.claude-sonnet-4-5-20250929-v1:0")
        .expect("priced");
    assert_eq!(global, direct);
    assert_eq!(regional, in_region);
    assert!(close(regional.input, 3.3) && close(regional.output, 16.5));
    let haiku = t
        .lookup("eu.anthropic.claude-haiku-4-5-20251001-v1:0")
        .expect("priced");
    assert!(close(haiku.input, 1.1));
    // Earlier generations cost the same everywhere.
    assert_eq!(
        t.lookup("us.anthropic.claude-sonnet-4-20250514-v1:0"),
        t.lookup("claude-sonnet-4")
    );
}

#[test]
fn unknown_models_have_no_price() {
    let t = PriceTable::builtin();
    for m in [
        "",
        "/",
        "totally-unknown",
        "gpt-4o-mini-transcribe",
        "claude-opus-4-9",
        "claude-sonnet-9",
        "gpt-4-0613",
        "llama-3.3-70b",
        "us.",
        "-v1:0",
    ] {
        assert_eq!(t.lookup(m), None, "{m}");
    }
    assert_eq!(PriceTable::empty().lookup("gpt-4o"), None);
}

#[test]
fn normalisation_steps() {
    assert_eq!(strip_bedrock_version("a-v1:0"), Some("a"));
    assert_eq!(strip_bedrock_version("a-v1:0:200k"), Some("a"));
    assert_eq!(strip_bedrock_version("a-v2"), Some("a"));
    assert_eq!(strip_bedrock_version("gpt-4-vision"), None);
    assert_eq!(strip_bedrock_version("a-v"), None);
    assert_eq!(strip_numeric_segment("x-20250929"), Some("x"));
    assert_eq!(strip_numeric_segment("x-001"), Some("x"));
    assert_eq!(strip_numeric_segment("gpt-5"), None);
    assert_eq!(strip_numeric_segment("x-123456789"), None);
    assert_eq!(strip_numeric_segment("ministral-8b"), None);
    assert_eq!(strip_region("global.anthropic.x"), Some("anthropic.x"));
    assert_eq!(strip_provider("a/b/c"), Some("c"));
}

// === overrides ===

fn over(input: f64, output: f64) -> ModelOverride {
    ModelOverride {
        input: Some(input),
        output: Some(output),
        ..ModelOverride::default()
    }
}

/// A model's input and output prices in `t`.
fn rates_of(t: &PriceTable, model: &str) -> Option<(f64, f64)> {
    t.lookup(model).map(|p| (p.input, p.output))
}

#[test]
fn overrides_win_over_builtins() {
    let t = PriceTable::builtin().with_overrides(vec![
        ("gpt-4o".to_owned(), over(1.0, 2.0)),
        ("claude-sonnet-4-5".to_owned(), over(7.0, 8.0)),
        ("acme-*".to_owned(), over(3.0, 4.0)),
        ("acme-large-*".to_owned(), over(5.0, 6.0)),
    ]);
    assert_eq!(rates_of(&t, "gpt-4o"), Some((1.0, 2.0)));
    // New prices replace every built-in price, the cache's too; the limits stay.
    let gpt_4o = t.lookup("gpt-4o").unwrap();
    assert_eq!(gpt_4o.cache_read, None);
    assert_eq!(gpt_4o.max_output_tokens, Some(16_384));
    assert_eq!(rates_of(&t, "openai/gpt-4o-2024-08-06"), Some((1.0, 2.0)));
    // An override reaches the Bedrock ids too, ahead of the built-in Bedrock globs.
    assert_eq!(
        rates_of(&t, "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
        Some((7.0, 8.0))
    );
    assert_eq!(rates_of(&t, "acme-small"), Some((3.0, 4.0)));
    assert_eq!(
        rates_of(&t, "acme-large-2"),
        Some((5.0, 6.0)),
        "longest literal"
    );
    // Untouched models keep their built-in price.
    assert_eq!(
        t.lookup("gpt-4o-mini"),
        PriceTable::builtin().lookup("gpt-4o-mini")
    );
}

#[test]
fn bad_overrides_are_skipped_and_later_ones_replace_earlier() {
    let mut nan = over(1.0, 1.0);
    nan.cache_read = Some(f64::NAN);
    let t = PriceTable::empty().with_overrides(vec![
        ("a".to_owned(), over(1.0, 1.0)),
        ("A".to_owned(), over(2.0, 2.0)),
        ("b".to_owned(), nan),
        ("c[".to_owned(), over(1.0, 1.0)),
        ("c*".to_owned(), over(1.0, 1.0)),
        ("c*".to_owned(), over(9.0, 9.0)),
    ]);
    assert_eq!(t.lookup("a"), Some(&price(2.0, 2.0)));
    assert_eq!(t.lookup("b"), None);
    assert_eq!(t.lookup("cx"), Some(&price(9.0, 9.0)));
    assert_eq!(t.overrides.globs.len(), 1);
}

#[test]
fn limits_are_overridden_apart_from_prices() {
    let limits = |max: Option<u64>, window: Option<u64>| ModelOverride {
        max_output_tokens: max,
        context_window: window,
        ..ModelOverride::default()
    };
    let t = PriceTable::builtin().with_overrides(vec![
        ("gpt-4o".to_owned(), limits(Some(8_192), None)),
        ("my-finetune".to_owned(), limits(Some(4_096), Some(32_768))),
        ("claude-*".to_owned(), limits(Some(1_000), None)),
    ]);
    let builtin = PriceTable::builtin();
    assert_eq!(t.max_output_tokens("gpt-4o-2024-08-06"), Some(8_192));
    // Limits alone change no price: the built-in ones stay (the dated snapshot's own too),
    // a model the table lacks stays unpriced, and a limits glob makes nothing free.
    for model in [
        "gpt-4o",
        "gpt-4o-2024-05-13",
        "claude-sonnet-4-5",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ] {
        assert_eq!(t.lookup(model), builtin.lookup(model), "{model}");
    }
    assert_eq!(t.max_output_tokens("claude-sonnet-4-5"), Some(1_000));
    assert_eq!(t.max_output_tokens("my-finetune"), Some(4_096));
    assert_eq!(t.lookup("my-finetune"), None);
    // Half a price for an unknown model, cache prices alone, a zero ceiling: refused.
    let half = ModelOverride {
        input: Some(1.0),
        ..ModelOverride::default()
    };
    assert!(half.apply(None).is_err());
    assert_eq!(
        half.apply(builtin.lookup("gpt-4o"))
            .map(|p| (p.input, p.output)),
        Ok((1.0, 10.0)),
        "the other price from the table"
    );
    let cache_only = ModelOverride {
        cache_read: Some(0.1),
        ..ModelOverride::default()
    };
    assert!(cache_only.apply(builtin.lookup("gpt-4o")).is_err());
    assert!(limits(Some(0), None).apply(None).is_err());
}

#[test]
fn known_models_have_output_ceilings() {
    let t = PriceTable::builtin();
    for (model, max) in [
        ("gpt-4o", 16_384),
        ("gpt-4o-mini-2024-07-18", 16_384),
        ("gpt-4.1", 32_768),
        ("gpt-5-codex", 128_000),
        ("o3", 100_000),
        ("claude-sonnet-4-5-20250929", 64_000),
        ("claude-opus-4-1", 32_000),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", 64_000),
        ("gemini-2.5-pro", 65_536),
        ("models/gemini-2.5-flash", 65_536),
        ("gemini-3-pro-preview", 65_536),
    ] {
        assert_eq!(t.max_output_tokens(model), Some(max), "{model}");
    }
    assert_eq!(t.max_output_tokens("qwen2.5-coder"), None);
}

#[test]
fn price_deserializes_with_a_tier_and_validates() {
    let p: Price = toml::from_str(
        "input = 1.25\noutput = 10\ncache_read = 0.125\n\
         tier = { above_input_tokens = 200000, input = 2.5, output = 15 }\n",
    )
    .expect("parses");
    assert_eq!(p.tier.as_ref().map(|t| t.above_input_tokens), Some(200_000));
    assert!(p.validate().is_ok());
    let mut bad = p.clone();
    bad.input = -1.0;
    assert!(bad.validate().is_err());
    let mut bad = p.clone();
    bad.output = f64::INFINITY;
    assert!(bad.validate().is_err());
    let mut bad = p;
    if let Some(t) = bad.tier.as_mut() {
        t.above_input_tokens = 0;
    }
    assert!(bad.validate().is_err());
}

// === arithmetic ===

#[test]
fn cost_is_exact_for_typical_prices() {
    let t = PriceTable::builtin();
    let gpt_4o = t.lookup("gpt-4o").expect("priced");
    assert_eq!(
        cost_nanos(gpt_4o, &usage(1_000_000, 0, 0, 0)),
        2_500_000_000
    );
    assert_eq!(
        cost_nanos(gpt_4o, &usage(0, 0, 0, 1_000_000)),
        10_000_000_000
    );
    let small = t.lookup("text-embedding-3-small").expect("priced");
    assert_eq!(cost_nanos(small, &usage(1, 0, 0, 0)), 20);
    // Float noise would make these 301 and 526 with a plain f64 ceil.
    assert_eq!(cost_nanos(&price(0.1, 0.0), &usage(3, 0, 0, 0)), 300);
    assert_eq!(cost_nanos(&price(0.075, 0.0), &usage(7, 0, 0, 0)), 525);
    // A fraction of a nano-USD is rounded up, once for the whole request.
    assert_eq!(cost_nanos(&price(0.0001, 0.0001), &usage(1, 0, 0, 1)), 1);
    assert_eq!(cost_nanos(&price(0.0001, 0.0), &usage(10, 0, 0, 0)), 1);
    assert_eq!(cost_nanos(&price(0.0001, 0.0), &usage(11, 0, 0, 0)), 2);
    assert_eq!(cost_nanos(&price(1.0, 1.0), &Usage::default()), 0);
}

#[test]
fn cache_reads_and_writes_are_priced_apart() {
    let t = PriceTable::builtin();
    let sonnet = t.lookup("claude-sonnet-4-5-20250929").expect("priced");
    // 10k input of which 8k read from and 1k written to the cache, 500 output:
    // 1k x $3 + 8k x $0.30 + 1k x $3.75 + 500 x $15 (per million).
    let u = usage(10_000, 8_000, 1_000, 500);
    assert_eq!(
        cost_nanos(sonnet, &u),
        3_000_000 + 2_400_000 + 3_750_000 + 7_500_000
    );
    // The discount: all 10k read from the cache costs a tenth of 10k uncached.
    assert_eq!(cost_nanos(sonnet, &usage(10_000, 10_000, 0, 0)), 3_000_000);
    assert_eq!(cost_nanos(sonnet, &usage(10_000, 0, 0, 0)), 30_000_000);
    // No cache prices: cache tokens cost the input price.
    let p = price(2.0, 0.0);
    assert_eq!(
        cost_nanos(&p, &usage(1_000, 600, 400, 0)),
        cost_nanos(&p, &usage(1_000, 0, 0, 0))
    );
    // A report with more cache tokens than input does not underflow.
    assert_eq!(cost_nanos(&p, &usage(10, 20, 0, 0)), 40_000);
}

#[test]
fn the_tier_applies_above_its_threshold() {
    let t = PriceTable::builtin();
    let pro = t.lookup("gemini-2.5-pro").expect("priced");
    // At the threshold: base prices ($1.25 in, $10 out).
    assert_eq!(cost_nanos(pro, &usage(200_000, 0, 0, 0)), 250_000_000);
    // Above: every token at the higher prices ($2.50 in, $15 out), not just the excess.
    assert_eq!(
        cost_nanos(pro, &usage(300_000, 0, 0, 1_000)),
        750_000_000 + 15_000_000
    );
    // Cache reads count towards the threshold and take the tier's cache price ($0.25).
    assert_eq!(
        cost_nanos(pro, &usage(300_000, 100_000, 0, 0)),
        500_000_000 + 25_000_000
    );
    assert_eq!(
        worst_case_nanos(pro, 200_000, 1_000),
        250_000_000 + 10_000_000
    );
    assert_eq!(
        worst_case_nanos(pro, 200_001, 1_000),
        500_002_500 + 15_000_000
    );
    let sonnet = t.lookup("claude-sonnet-4").expect("priced");
    assert_eq!(cost_nanos(sonnet, &usage(250_000, 0, 0, 0)), 1_500_000_000);
}

#[test]
fn worst_case_prices_input_and_max_output() {
    let gpt_4o = PriceTable::builtin()
        .lookup("gpt-4o")
        .cloned()
        .expect("priced");
    assert_eq!(worst_case_nanos(&gpt_4o, 1_000, 500), 2_500_000 + 5_000_000);
    assert_eq!(worst_case_nanos(&gpt_4o, 0, 0), 0);
}

#[test]
fn costs_saturate_instead_of_overflowing() {
    let p = price(1_000_000.0, 1_000_000.0);
    let max = u64::MAX;
    assert_eq!(cost_nanos(&p, &usage(max, max, max, max)), u64::MAX);
    assert_eq!(worst_case_nanos(&p, max, max), u64::MAX);
    let mut huge = price(f64::MAX, 1.0);
    assert_eq!(worst_case_nanos(&huge, 1, 0), u64::MAX);
    huge.input = f64::NAN;
    assert_eq!(worst_case_nanos(&huge, 1, 0), 0);
}
