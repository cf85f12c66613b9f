//! The fuzz targets on stable Rust: every seed in `fuzz/corpus/<target>/` is run through its
//! entry point in `gatehouse::fuzzing`, and so are random byte mutations of the seeds (bits
//! flipped, bytes set, inserted or deleted, runs duplicated, the tail cut), a bounded number
//! per target. A panic on any input fails the test and names the input; proptest shrinks a
//! failing mutation to a small one.
//!
//! JSON seeds also get structured edits (a value replaced, removed or repeated) and SSE seeds
//! event edits (dropped, repeated, swapped, renamed); the other targets' seeds (binary event
//! streams, HTTP heads and responses, TOML) get byte edits only.
//!
//! This is not coverage-guided fuzzing (that is `cargo fuzz run <target>`, see
//! fuzz/README.md); it keeps the corpus honest and catches the shallow crashes on every run.
//! A new target needs its entry point, a `fuzz/fuzz_targets/<name>.rs`, a corpus folder and a
//! line in [`TARGETS`]; `corpus_and_targets_match` checks the last three agree.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gatehouse::fuzzing;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

/// A fuzz entry point.
type Entry = fn(&[u8]);

/// Each fuzz target's name (its corpus folder and `fuzz_targets/<name>.rs`) and entry point.
const TARGETS: &[(&str, Entry)] = &[
    ("anthropic_request", fuzzing::anthropic_request),
    ("openai_request", fuzzing::openai_request),
    ("anthropic_reply", fuzzing::anthropic_reply),
    ("openai_reply", fuzzing::openai_reply),
    ("anthropic_stream", fuzzing::anthropic_stream),
    ("openai_stream", fuzzing::openai_stream),
    ("gemini_request", fuzzing::gemini_request),
    ("gemini_reply", fuzzing::gemini_reply),
    ("gemini_stream", fuzzing::gemini_stream),
    ("responses_request", fuzzing::responses_request),
    ("responses_stream", fuzzing::responses_stream),
    ("bedrock_stream", fuzzing::bedrock_stream),
    ("http1_response", fuzzing::http1_response),
    ("config_toml", fuzzing::config_toml),
    ("auth_headers", fuzzing::auth_headers),
];

/// How a target's seeds are shaped, which says which structured edits apply to them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// One JSON document.
    Json,
    /// SSE events with JSON data.
    Sse,
    /// Anything else (binary frames, an HTTP head, TOML): byte edits only.
    Bytes,
}

fn shape(target: &str) -> Shape {
    match target {
        "bedrock_stream" | "http1_response" | "config_toml" | "auth_headers" => Shape::Bytes,
        t if t.ends_with("_stream") => Shape::Sse,
        _ => Shape::Json,
    }
}

/// Mutated inputs per target. A JSON target's input takes about a millisecond in a debug
/// build; a stream's several (parsed in five chunkings, decoded and encoded for five client
/// streams); a config file's about 30 ms (validation builds the price table, globs and
/// time zones, twice). Set `PROPTEST_CASES` for a longer local hunt.
fn cases(target: &str) -> u32 {
    match target {
        "config_toml" => 150,
        t if t.ends_with("_stream") => 500,
        _ => 1000,
    }
}

fn config(target: &str) -> ProptestConfig {
    let cases = match std::env::var("PROPTEST_CASES") {
        Ok(_) => ProptestConfig::default().cases,
        Err(_) => cases(target),
    };
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Seed files: (file name, contents).
type Seeds = Vec<(String, Vec<u8>)>;

/// The seeds of one target, in name order.
fn seeds(target: &str) -> Seeds {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut out: Seeds = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn entry(target: &str) -> Entry {
    TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no entry point for {target}"))
}

/// Run one input; `Err` with the panic message if it panicked.
fn run(target: &str, data: &[u8]) -> Result<(), String> {
    let f = entry(target);
    catch_unwind(AssertUnwindSafe(|| f(data))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "non-string panic".to_owned())
    })
}

#[test]
fn corpus_and_targets_match() {
    let mut folders: Vec<String> = std::fs::read_dir(fuzz_dir().join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    names.sort();
    assert_eq!(folders, names, "fuzz/corpus folders and TARGETS differ");
    for name in &names {
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&target)
            .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        assert!(
            text.contains(&format!("gatehouse::fuzzing::{name}(")),
            "{} does not call gatehouse::fuzzing::{name}",
            target.display()
        );
        let n = seeds(name).len();
        assert!(n >= 5, "{name} has {n} seeds; give it at least 5");
    }
}

#[test]
fn every_seed_runs_without_panicking() {
    let mut failures = Vec::new();
    for (target, _) in TARGETS {
        for (name, data) in seeds(target) {
            if let Err(msg) = run(target, &data) {
                failures.push(format!("{target}/{name}: {msg}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "seeds panicked:\n{}",
        failures.join("\n")
    );
}

// === byte mutations ===

#[derive(Debug, Clone)]
enum ByteEdit {
    Flip {
        at: Index,
        bit: u8,
    },
    Set {
        at: Index,
        byte: u8,
    },
    Insert {
        at: Index,
        bytes: Vec<u8>,
    },
    Delete {
        at: Index,
        len: usize,
    },
    /// Copy a run of bytes to just after itself (repeats a key, an element, an event).
    Duplicate {
        at: Index,
        len: usize,
    },
    Truncate {
        at: Index,
    },
}

/// Bytes that mean something to JSON, SSE, HTTP or TOML, besides any byte at all.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]\":,\\-+.0123456789eEntfu \r\n\t:\xff\xc3;=#$aAfF".to_vec()),
    ]
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| ByteEdit::Flip { at, bit }),
        3 => (any::<Index>(), byte()).prop_map(|(at, byte)| ByteEdit::Set { at, byte }),
        3 => (any::<Index>(), prop::collection::vec(byte(), 1..8))
            .prop_map(|(at, bytes)| ByteEdit::Insert { at, bytes }),
        2 => (any::<Index>(), 1usize..32).prop_map(|(at, len)| ByteEdit::Delete { at, len }),
        1 => (any::<Index>(), 1usize..64).prop_map(|(at, len)| ByteEdit::Duplicate { at, len }),
        1 => any::<Index>().prop_map(|at| ByteEdit::Truncate { at }),
    ]
}

/// Byte edits for a third of the inputs: the others stay well-formed where the seed is, so
/// that the structured edits reach past the parsers.
fn byte_edits() -> impl Strategy<Value = Vec<ByteEdit>> {
    prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::collection::vec(byte_edit(), 1..5),
    ]
}

fn apply_bytes(d: &mut Vec<u8>, edits: &[ByteEdit]) {
    for e in edits {
        let len = d.len();
        match e {
            ByteEdit::Flip { at, bit } if len > 0 => d[at.index(len)] ^= 1 << bit,
            ByteEdit::Set { at, byte } if len > 0 => d[at.index(len)] = *byte,
            ByteEdit::Insert { at, bytes } => {
                let i = at.index(len + 1);
                d.splice(i..i, bytes.iter().copied());
            }
            ByteEdit::Delete { at, len: n } if len > 0 => {
                let i = at.index(len);
                d.drain(i..(i + n).min(len));
            }
            ByteEdit::Duplicate { at, len: n } if len > 0 => {
                let i = at.index(len);
                let run = d[i..(i + n).min(len)].to_vec();
                let end = i + run.len();
                d.splice(end..end, run);
            }
            ByteEdit::Truncate { at } => d.truncate(at.index(len + 1)),
            _ => {}
        }
    }
}

// === structured mutations ===
//
// Byte edits mostly break the JSON, so the decoders' logic behind the parser is reached
// rarely. These edit the parsed seed instead: a JSON value somewhere is replaced, removed or
// repeated (a request, a reply, or one stream event's data), and stream events are dropped,
// repeated, swapped or renamed, which reaches the decoders' state machines.

#[derive(Debug, Clone)]
enum JsonOp {
    Replace(Value),
    Remove(Index),
    /// Repeat an array element or, for an object, set a known key to a copy of a sibling.
    Repeat(Index),
    Wrap,
}

/// A path into the document (each step picks a child while there are children) and an op.
#[derive(Debug, Clone)]
struct JsonEdit {
    path: Vec<Index>,
    op: JsonOp,
}

#[derive(Debug, Clone)]
enum StructEdit {
    /// For a stream, applied to the data of the event at the index.
    Json(Index, JsonEdit),
    DropEvent(Index),
    RepeatEvent(Index),
    SwapEvents(Index, Index),
    RenameEvent(Index, &'static str),
}

/// Type names and values the codecs branch on.
const NAMES: &[&str] = &[
    "text",
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "image",
    "document",
    "mid_conv_system",
    "base64",
    "url",
    "file",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
    "ping",
    "text_delta",
    "thinking_delta",
    "signature_delta",
    "input_json_delta",
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "auto",
    "any",
    "none",
    "required",
    "enabled",
    "adaptive",
    "disabled",
    "json_schema",
    "json_object",
    "stop",
    "length",
    "tool_calls",
    "end_turn",
    "max_tokens",
    "[DONE]",
    "",
    "\u{0}",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![
            0u64,
            1,
            2,
            1023,
            1024,
            1025,
            u32::MAX as u64,
            u64::MAX
        ])
        .prop_map(Value::from),
        prop::sample::select(vec![-1i64, i64::MIN]).prop_map(Value::from),
        prop::sample::select(vec![0.5f64, -0.0, 1e308, -1e308]).prop_map(Value::from),
        prop::sample::select(NAMES).prop_map(Value::from),
        "[a-z_ ]{0,12}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        prop::sample::select(NAMES).prop_map(|t| json!({"type": t})),
    ]
}

fn json_edit() -> impl Strategy<Value = JsonEdit> {
    let op = prop_oneof![
        4 => leaf().prop_map(JsonOp::Replace),
        2 => any::<Index>().prop_map(JsonOp::Remove),
        2 => any::<Index>().prop_map(JsonOp::Repeat),
        1 => Just(JsonOp::Wrap),
    ];
    (prop::collection::vec(any::<Index>(), 0..8), op).prop_map(|(path, op)| JsonEdit { path, op })
}

fn struct_edit() -> impl Strategy<Value = StructEdit> {
    prop_oneof![
        6 => (any::<Index>(), json_edit()).prop_map(|(i, e)| StructEdit::Json(i, e)),
        1 => any::<Index>().prop_map(StructEdit::DropEvent),
        1 => any::<Index>().prop_map(StructEdit::RepeatEvent),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| StructEdit::SwapEvents(a, b)),
        1 => (any::<Index>(), prop::sample::select(NAMES))
            .prop_map(|(i, n)| StructEdit::RenameEvent(i, n)),
    ]
}

fn apply_json(root: &mut Value, edit: &JsonEdit) {
    let mut node = root;
    for step in &edit.path {
        let len = match &*node {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            _ => 0,
        };
        if len == 0 {
            break;
        }
        let i = step.index(len);
        node = match node {
            Value::Array(a) => &mut a[i],
            Value::Object(o) => o.values_mut().nth(i).unwrap(),
            _ => unreachable!(),
        };
    }
    match (&edit.op, node) {
        (JsonOp::Replace(v), node) => *node = v.clone(),
        (JsonOp::Remove(i), Value::Array(a)) if !a.is_empty() => {
            a.remove(i.index(a.len()));
        }
        (JsonOp::Remove(i), Value::Object(o)) if !o.is_empty() => {
            let key = o.keys().nth(i.index(o.len())).cloned().unwrap();
            o.remove(&key);
        }
        (JsonOp::Repeat(i), Value::Array(a)) if !a.is_empty() => {
            let copy = a[i.index(a.len())].clone();
            a.push(copy);
        }
        (JsonOp::Repeat(i), Value::Object(o)) if !o.is_empty() => {
            let (key, value) = o.iter().nth(i.index(o.len())).unwrap();
            let (key, value) = (format!("{key}_"), value.clone());
            o.insert(key, value);
        }
        (JsonOp::Wrap, node) => *node = json!([node.take()]),
        _ => {}
    }
}

/// An SSE stream as (event name, data) pairs, and back.
fn sse_split(data: &[u8]) -> Vec<(Option<String>, String)> {
    let mut parser = gatehouse::providers::sse::SseParser::new();
    let mut out = Vec::new();
    let _ = parser.feed(data, &mut out);
    out.into_iter().map(|e| (e.event, e.data)).collect()
}

fn sse_join(events: &[(Option<String>, String)]) -> Vec<u8> {
    let mut out = String::new();
    for (name, data) in events {
        if let Some(name) = name {
            out.push_str(&format!("event: {name}\n"));
        }
        for line in data.split('\n') {
            out.push_str(&format!("data: {line}\n"));
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// The seed with the structured edits applied; unchanged where it does not parse.
fn apply_struct(seed: &[u8], shape: Shape, edits: &[StructEdit]) -> Vec<u8> {
    if edits.is_empty() || shape == Shape::Bytes {
        return seed.to_vec();
    }
    if shape == Shape::Json {
        let Ok(mut doc) = serde_json::from_slice::<Value>(seed) else {
            return seed.to_vec();
        };
        for e in edits {
            if let StructEdit::Json(_, edit) = e {
                apply_json(&mut doc, edit);
            }
        }
        return serde_json::to_vec(&doc).unwrap();
    }
    let mut events = sse_split(seed);
    for e in edits {
        let n = events.len();
        if n == 0 {
            break;
        }
        match e {
            StructEdit::Json(i, edit) => {
                let data = &mut events[i.index(n)].1;
                if let Ok(mut doc) = serde_json::from_str::<Value>(data) {
                    apply_json(&mut doc, edit);
                    *data = doc.to_string();
                }
            }
            StructEdit::DropEvent(i) => {
                events.remove(i.index(n));
            }
            StructEdit::RepeatEvent(i) => {
                let copy = events[i.index(n)].clone();
                events.insert(i.index(n), copy);
            }
            StructEdit::SwapEvents(a, b) => events.swap(a.index(n), b.index(n)),
            StructEdit::RenameEvent(i, name) => events[i.index(n)].0 = Some((*name).to_owned()),
        }
    }
    sse_join(&events)
}

// === running mutations ===

/// Every target's seeds, read once per test process.
fn all_seeds(target: &str) -> &'static [(String, Vec<u8>)] {
    static SEEDS: OnceLock<Vec<(&'static str, Seeds)>> = OnceLock::new();
    let all = SEEDS.get_or_init(|| TARGETS.iter().map(|(n, _)| (*n, seeds(n))).collect());
    all.iter()
        .find(|(n, _)| *n == target)
        .map(|(_, s)| s.as_slice())
        .unwrap()
}

fn mutated(
    target: &str,
    seed: Index,
    structured: &[StructEdit],
    bytes: &[ByteEdit],
) -> Result<(), TestCaseError> {
    let seeds = all_seeds(target);
    let (name, data) = &seeds[seed.index(seeds.len())];
    let shape = shape(target);
    let mut input = apply_struct(data, shape, structured);
    apply_bytes(&mut input, bytes);
    // Byte edits only: every input gets some.
    if shape == Shape::Bytes {
        apply_bytes(&mut input, &structured_as_bytes(structured));
    }
    run(target, &input).map_err(|msg| {
        TestCaseError::fail(format!(
            "{target}: a mutation of {name} panicked: {msg}\ninput: {:?}",
            String::from_utf8_lossy(&input)
        ))
    })
}

/// For a target without structured edits, the drawn structured edits as byte edits instead
/// (so that such a target's inputs are edited at all more often than a third of the time).
fn structured_as_bytes(structured: &[StructEdit]) -> Vec<ByteEdit> {
    structured
        .iter()
        .map(|e| match e {
            StructEdit::Json(at, _) => ByteEdit::Flip { at: *at, bit: 3 },
            StructEdit::DropEvent(at) => ByteEdit::Delete { at: *at, len: 4 },
            StructEdit::RepeatEvent(at) => ByteEdit::Duplicate { at: *at, len: 16 },
            StructEdit::SwapEvents(at, _) => ByteEdit::Set {
                at: *at,
                byte: b'\n',
            },
            StructEdit::RenameEvent(at, name) => ByteEdit::Insert {
                at: *at,
                bytes: name.as_bytes().to_vec(),
            },
        })
        .collect()
}

macro_rules! mutation_tests {
    ($($name:ident => $target:literal,)*) => {
        $(
            proptest! {
                #![proptest_config(config($target))]
                #[test]
                fn $name(
                    seed in any::<Index>(),
                    structured in prop::collection::vec(struct_edit(), 0..4),
                    bytes in byte_edits(),
                ) {
                    mutated($target, seed, &structured, &bytes)?;
                }
            }
        )*
    };
}

mutation_tests! {
    anthropic_request_mutations => "anthropic_request",
    openai_request_mutations => "openai_request",
    anthropic_reply_mutations => "anthropic_reply",
    openai_reply_mutations => "openai_reply",
    anthropic_stream_mutations => "anthropic_stream",
    openai_stream_mutations => "openai_stream",
    gemini_request_mutations => "gemini_request",
    gemini_reply_mutations => "gemini_reply",
    gemini_stream_mutations => "gemini_stream",
    responses_request_mutations => "responses_request",
    responses_stream_mutations => "responses_stream",
    bedrock_stream_mutations => "bedrock_stream",
    http1_response_mutations => "http1_response",
    config_toml_mutations => "config_toml",
    auth_headers_mutations => "auth_headers",
}
