//! Amazon's service model of the Bedrock runtime
//! (../shared/specs/bedrock/bedrock-runtime-2023-09-30.service-2.json) as a checker of the
//! bodies Gatehouse sends: members, required members, unions holding exactly one member,
//! types, enums, string lengths and patterns, number bounds, recursively. Where ../shared is
//! absent, a notice is printed and nothing is checked.

use std::sync::OnceLock;

use serde_json::Value;

fn shapes() -> Option<&'static Value> {
    static DOC: OnceLock<Option<Value>> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/specs/bedrock/bedrock-runtime-2023-09-30.service-2.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!(
                "notice: {} not found; Bedrock bodies are not checked",
                path.display()
            );
            return None;
        };
        let doc: Value = serde_json::from_str(&text).expect("service model parses");
        Some(doc["shapes"].clone())
    })
    .as_ref()
}

/// The violations of `body` against shape `name`; empty when it conforms or the model is
/// unavailable. Members bound to the URI or headers (`location`) are not in a body.
pub fn check(name: &str, body: &Value) -> Vec<String> {
    let Some(all) = shapes() else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    walk(all, name, body, "", &mut errors);
    errors
}

fn walk(all: &Value, name: &str, v: &Value, at: &str, errors: &mut Vec<String>) {
    let s = &all[name];
    let ty = s["type"].as_str().unwrap_or("");
    let num = |k: &str| s.get(k).and_then(Value::as_f64);
    match ty {
        "structure" if s["document"] == true => {}
        "structure" => {
            let Some(o) = v.as_object() else {
                return errors.push(format!("{at}: expected an object ({name})"));
            };
            let members = s["members"].as_object().cloned().unwrap_or_default();
            for (k, child) in o {
                match members.get(k) {
                    Some(m) if m.get("location").is_none() => {
                        walk(
                            all,
                            m["shape"].as_str().unwrap_or(""),
                            child,
                            &format!("{at}.{k}"),
                            errors,
                        );
                    }
                    _ => errors.push(format!("{at}.{k}: not a member of {name}")),
                }
            }
            for r in s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let bound = members.get(r).is_some_and(|m| m.get("location").is_some());
                if !bound && !o.contains_key(r) {
                    errors.push(format!("{at}: {name} requires `{r}`"));
                }
            }
            if s["union"] == true && o.len() != 1 {
                errors.push(format!(
                    "{at}: the union {name} must hold exactly one member, has {}",
                    o.len()
                ));
            }
        }
        "list" => {
            let Some(a) = v.as_array() else {
                return errors.push(format!("{at}: expected an array ({name})"));
            };
            if num("min").is_some_and(|m| (a.len() as f64) < m) {
                errors.push(format!("{at}: fewer items than {name} allows"));
            }
            let member = s["member"]["shape"].as_str().unwrap_or("");
            for (i, child) in a.iter().enumerate() {
                walk(all, member, child, &format!("{at}[{i}]"), errors);
            }
        }
        "map" => {
            let Some(o) = v.as_object() else {
                return errors.push(format!("{at}: expected an object ({name})"));
            };
            let value = s["value"]["shape"].as_str().unwrap_or("");
            for (k, child) in o {
                walk(all, value, child, &format!("{at}.{k}"), errors);
            }
        }
        "string" | "blob" | "timestamp" => {
            let Some(text) = v.as_str() else {
                return errors.push(format!("{at}: expected a string ({name})"));
            };
            if let Some(values) = s["enum"].as_array()
                && !values.iter().any(|e| e == text)
            {
                errors.push(format!("{at}: `{text}` is not one of {name}'s values"));
            }
            let len = text.chars().count() as f64;
            if num("min").is_some_and(|m| len < m) || num("max").is_some_and(|m| len > m) {
                errors.push(format!("{at}: length {len} outside {name}'s bounds"));
            }
            if ty == "string"
                && let Some(p) = s["pattern"].as_str()
                && let Ok(re) = regex_lite(p)
                && !re(text)
            {
                errors.push(format!(
                    "{at}: `{text}` does not match {name}'s pattern {p}"
                ));
            }
        }
        "integer" | "long" | "float" | "double" => {
            let Some(n) = v.as_f64() else {
                return errors.push(format!("{at}: expected a number ({name})"));
            };
            if matches!(ty, "integer" | "long") && v.as_i64().is_none() && v.as_u64().is_none() {
                errors.push(format!("{at}: expected an integer ({name})"));
            }
            if num("min").is_some_and(|m| n < m) || num("max").is_some_and(|m| n > m) {
                errors.push(format!("{at}: {n} outside {name}'s bounds"));
            }
        }
        "boolean" if !v.is_boolean() => errors.push(format!("{at}: expected a boolean ({name})")),
        _ => {}
    }
}

/// The character-class patterns the model uses (`[a-zA-Z0-9_-]+`, ...): a whole-string
/// match of one class repeated; other patterns are not checked.
fn regex_lite(p: &str) -> Result<impl Fn(&str) -> bool, ()> {
    let class = p
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix("]+"))
        .ok_or(())?;
    let mut allowed: Vec<(char, char)> = Vec::new();
    let chars: Vec<char> = class.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if i + 2 < chars.len() && chars[i + 1] == '-' {
            allowed.push((chars[i], chars[i + 2]));
            i += 3;
        } else {
            allowed.push((chars[i], chars[i]));
            i += 1;
        }
    }
    Ok(move |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| allowed.iter().any(|(a, b)| (*a..=*b).contains(&c)))
    })
}
