//! OpenAI's published OpenAPI document (../shared/specs/openai/openapi.json) as JSON Schema
//! validators, one per named schema, compiled once. Where ../shared is absent (a user's own
//! clone), a notice is printed and validation is skipped, so the suite still passes there.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

fn spec() -> Option<&'static Value> {
    static SPEC: OnceLock<Option<Value>> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/specs/openai/openapi.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!(
                "notice: {} not found; Responses bodies are not validated against the spec",
                path.display()
            );
            return None;
        };
        Some(serde_json::from_str(&text).expect("OpenAI spec parses"))
    })
    .as_ref()
}

fn validator(schema: &str) -> Option<&'static jsonschema::Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, &'static jsonschema::Validator>>> =
        OnceLock::new();
    let spec = spec()?;
    let cache = CACHE.get_or_init(Mutex::default);
    let mut cache = cache.lock().unwrap();
    if let Some(v) = cache.get(schema) {
        return Some(v);
    }
    let root = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{schema}"),
        "components": spec["components"],
    });
    let v: &'static jsonschema::Validator = Box::leak(Box::new(
        jsonschema::validator_for(&root).expect("OpenAI schema compiles"),
    ));
    cache.insert(schema.to_owned(), v);
    Some(v)
}

/// `Some(errors)` when `body` violates the named schema; `None` when it conforms or the spec
/// is unavailable.
pub fn validate(schema: &str, body: &Value) -> Option<Vec<String>> {
    let v = validator(schema)?;
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    (!errors.is_empty()).then_some(errors)
}

/// The top-level properties the named schema declares, through `allOf` and `$ref`; `None`
/// where the spec is unavailable. OpenAI's API refuses a request body key outside them
/// ("Unrecognized request argument supplied"), which its schemas, open to extra keys, do not
/// say.
pub fn properties(schema: &str) -> Option<Vec<String>> {
    fn collect(all: &Value, s: &Value, out: &mut Vec<String>) {
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or_default();
            return collect(all, &all[name], out);
        }
        for part in s
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            collect(all, part, out);
        }
        if let Some(p) = s.get("properties").and_then(Value::as_object) {
            out.extend(p.keys().cloned());
        }
    }
    let all = &spec()?["components"]["schemas"];
    let mut out = Vec::new();
    collect(all, &all[schema], &mut out);
    Some(out)
}
