//! Mistral's published OpenAPI schema (../shared/specs/mistral/openapi-public-doc.yaml) as a
//! JSON Schema validator, compiled once. Where ../shared is absent (a user's own clone), a
//! notice is printed and validation is skipped, so the suite still passes there.

use std::sync::OnceLock;

use serde_json::Value;

pub fn spec_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/specs/mistral/openapi-public-doc.yaml")
}

fn spec() -> Option<&'static Value> {
    static SPEC: OnceLock<Option<Value>> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = spec_path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!(
                "notice: {} not found; Mistral bodies are not validated against the spec",
                path.display()
            );
            return None;
        };
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("Mistral spec parses");
        Some(serde_json::to_value(yaml).expect("Mistral spec converts to JSON"))
    })
    .as_ref()
}

fn validator(schema: &str) -> Option<&'static jsonschema::Validator> {
    static CHAT: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    static EMBED: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    let cell = if schema == "ChatCompletionRequest" {
        &CHAT
    } else {
        &EMBED
    };
    cell.get_or_init(|| {
        let spec = spec()?;
        let root = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{schema}"),
            "components": spec["components"],
        });
        Some(jsonschema::validator_for(&root).expect("Mistral schema compiles"))
    })
    .as_ref()
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

/// Whether the spec is available (tests that depend on it say so when it is not).
pub fn available() -> bool {
    spec().is_some()
}
