//! JSON Schema -> the subset Gemini's `Schema` accepts (an OpenAPI 3.0 subset), for function
//! declarations sent as `parameters`.
//!
//! Gemini's `Schema` knows `type` (upper case: `STRING`, `OBJECT`...), `format`,
//! `description`, `nullable`, `enum` (strings only), `items`, `properties`, `required`,
//! `propertyOrdering`, `anyOf`, the size and range bounds, `pattern`, `default`, `example`
//! and `title`. So: a type list with `null` becomes the type and `nullable`; `const`
//! becomes a one-value `enum`; `oneOf` becomes `anyOf`; a one-element `allOf` is merged;
//! local `$ref`s (`#/$defs/...`, `#/definitions/...`) are inlined (to a depth of 8: a
//! recursive schema is cut there); non-string enums and every other keyword are dropped, and
//! the dropped keywords are reported once.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

const KEPT: &[&str] = &[
    "anyOf",
    "default",
    "description",
    "enum",
    "example",
    "format",
    "items",
    "maxItems",
    "maxLength",
    "maxProperties",
    "maximum",
    "minItems",
    "minLength",
    "minProperties",
    "minimum",
    "nullable",
    "pattern",
    "properties",
    "propertyOrdering",
    "required",
    "title",
    "type",
];

const MAX_DEPTH: usize = 8;

/// The Gemini `Schema` for `schema`, and the keywords that were dropped.
pub fn reduce(schema: &Value) -> (Value, BTreeSet<String>) {
    let mut dropped = BTreeSet::new();
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut out = walk(schema, &defs, 0, &mut dropped);
    // A function's parameters are an object.
    if let Some(o) = out.as_object_mut() {
        o.entry("type").or_insert_with(|| json!("OBJECT"));
        if o.get("type") == Some(&json!("OBJECT")) {
            o.entry("properties").or_insert_with(|| json!({}));
        }
    }
    dropped.remove("$defs");
    dropped.remove("definitions");
    (out, dropped)
}

fn walk(s: &Value, defs: &Value, depth: usize, dropped: &mut BTreeSet<String>) -> Value {
    let Some(o) = s.as_object() else {
        return json!({});
    };
    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/$defs/")
            .or_else(|| r.strip_prefix("#/definitions/"));
        return match name.and_then(|n| defs.get(n)) {
            Some(target) if depth < MAX_DEPTH => walk(target, defs, depth + 1, dropped),
            _ => {
                dropped.insert("$ref".to_owned());
                json!({"type": "OBJECT"})
            }
        };
    }
    let mut o = o.clone();
    if let Some(Value::Array(all)) = o.remove("allOf") {
        if let [one] = all.as_slice()
            && let Some(inner) = one.as_object()
        {
            for (k, v) in inner {
                o.entry(k.clone()).or_insert_with(|| v.clone());
            }
        } else {
            dropped.insert("allOf".to_owned());
        }
    }
    if let Some(one_of) = o.remove("oneOf") {
        o.entry("anyOf").or_insert(one_of);
    }
    if let Some(c) = o.remove("const") {
        o.entry("enum").or_insert_with(|| json!([c]));
    }
    let mut out = Map::new();
    for (k, v) in &o {
        let value = match k.as_str() {
            "type" => match v {
                Value::String(t) => json!(t.to_ascii_uppercase()),
                Value::Array(ts) => {
                    if ts.iter().any(|t| t == "null") {
                        out.insert("nullable".into(), json!(true));
                    }
                    match ts.iter().filter_map(Value::as_str).find(|t| *t != "null") {
                        Some(t) => json!(t.to_ascii_uppercase()),
                        None => json!("NULL"),
                    }
                }
                _ => continue,
            },
            "properties" => match v.as_object() {
                Some(props) => Value::Object(
                    props
                        .iter()
                        .map(|(n, p)| (n.clone(), walk(p, defs, depth, dropped)))
                        .collect(),
                ),
                None => continue,
            },
            "items" => walk(v, defs, depth, dropped),
            "anyOf" => match v.as_array() {
                Some(a) => Value::Array(a.iter().map(|s| walk(s, defs, depth, dropped)).collect()),
                None => continue,
            },
            "enum" => {
                if v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                    v.clone()
                } else {
                    dropped.insert("enum".to_owned());
                    continue;
                }
            }
            "nullable" if out.contains_key("nullable") => continue,
            kept if KEPT.contains(&kept) => v.clone(),
            other => {
                dropped.insert(other.to_owned());
                continue;
            }
        };
        out.insert(k.clone(), value);
    }
    if out.contains_key("enum") {
        // Gemini's enums are strings.
        out.entry("type").or_insert_with(|| json!("STRING"));
        out.entry("format").or_insert_with(|| json!("enum"));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_schema_is_reduced_to_geminis_subset() {
        let (s, dropped) = reduce(&json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "path": {"type": ["string", "null"], "description": "where"},
                "mode": {"const": "fast"},
                "level": {"type": "integer", "enum": [1, 2]},
                "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
                "choice": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "type": {"type": "string", "enum": ["a", "b"]}
            },
            "required": ["path"],
            "$defs": {"Item": {"type": "object", "properties": {"name": {"type": "string", "minLength": 1}}}}
        }));
        assert_eq!(
            s,
            json!({
                "type": "OBJECT",
                "properties": {
                    "path": {"type": "STRING", "nullable": true, "description": "where"},
                    "mode": {"type": "STRING", "enum": ["fast"], "format": "enum"},
                    "level": {"type": "INTEGER"},
                    "items": {"type": "ARRAY", "items": {"type": "OBJECT", "properties": {"name": {"type": "STRING", "minLength": 1}}}},
                    "choice": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]},
                    "type": {"type": "STRING", "enum": ["a", "b"], "format": "enum"}
                },
                "required": ["path"]
            })
        );
        assert_eq!(
            dropped.into_iter().collect::<Vec<_>>(),
            ["$schema", "additionalProperties", "enum"]
        );
    }

    #[test]
    fn recursive_schemas_are_cut() {
        let (s, dropped) = reduce(&json!({
            "type": "object",
            "properties": {"node": {"$ref": "#/$defs/Node"}},
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}
        }));
        assert!(dropped.contains("$ref"));
        let mut depth = 0;
        let mut at = &s["properties"]["node"];
        while let Some(next) = at.pointer("/properties/next") {
            at = next;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
    }
}
