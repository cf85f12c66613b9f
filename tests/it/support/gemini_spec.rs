//! Google's discovery document for the Gemini API
//! (../shared/specs/google/generativelanguage-v1beta.discovery.json) as a checker of the
//! bodies Gatehouse writes: every field must be one the named schema declares, of its type
//! (and one of its values, for enums), recursively. Where ../shared is absent, a notice is
//! printed and nothing is checked.

use std::sync::OnceLock;

use serde_json::Value;

fn schemas() -> Option<&'static Value> {
    static DOC: OnceLock<Option<Value>> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/specs/google/generativelanguage-v1beta.discovery.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!(
                "notice: {} not found; Gemini bodies are not checked",
                path.display()
            );
            return None;
        };
        let doc: Value = serde_json::from_str(&text).expect("discovery document parses");
        Some(doc["schemas"].clone())
    })
    .as_ref()
}

/// The violations of `body` against schema `name`; empty when it conforms or the document
/// is unavailable.
pub fn check(name: &str, body: &Value) -> Vec<String> {
    let Some(all) = schemas() else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    walk(
        all,
        &serde_json::json!({"$ref": name}),
        body,
        "",
        &mut errors,
    );
    errors
}

fn walk(all: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return walk(all, &all[r], v, at, errors);
    }
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("any");
    let format = schema.get("format").and_then(Value::as_str);
    let ok = match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        // 64-bit integers are strings in the discovery document, and protobuf's JSON mapping
        // (which Google's APIs parse with) takes them as strings or numbers alike.
        "string" if matches!(format, Some("int64" | "uint64")) => {
            v.is_i64() || v.is_u64() || v.as_str().is_some_and(|s| s.parse::<i128>().is_ok())
        }
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    };
    if !ok {
        errors.push(format!("{at}: expected {ty}, got {v}"));
        return;
    }
    // Gemini takes a schema's `type` in lower case too (`"object"`, as JSON Schema writes it
    // and Google's own function-calling examples send it); other enums as written.
    let lower_too = |values: &[Value]| values.iter().any(|e| e == "TYPE_UNSPECIFIED");
    if let (Some(values), Some(s)) = (schema.get("enum").and_then(Value::as_array), v.as_str())
        && !values
            .iter()
            .any(|e| e == s || (lower_too(values) && e.as_str() == Some(&s.to_uppercase())))
    {
        errors.push(format!("{at}: `{s}` is not one of its values"));
    }
    match v {
        Value::Object(o) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties");
            for (k, child) in o {
                let at = format!("{at}.{k}");
                match (props.and_then(|p| p.get(k)), extra) {
                    (Some(s), _) | (None, Some(s)) => walk(all, s, child, &at, errors),
                    // A free-form object (`args`, `response`) holds anything.
                    (None, None) if props.is_none() => {}
                    (None, None) => errors.push(format!("{at}: not in the schema")),
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, child) in a.iter().enumerate() {
                    walk(all, items, child, &format!("{at}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}
