//! Same-schema passthrough (SPEC §3), for every schema: the client's body is rewritten at its
//! top level only. Every other value is copied as the client's bytes, so fields the gateway
//! does not model, number formats and key order reach the provider untouched.

use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::codec::extra::Key;
use crate::schema::WireSchema;

/// The top-level members of a JSON object, values left as raw JSON.
struct Members<'de>(Vec<(Key<'de>, &'de RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(k) = map.next_key::<Key<'de>>()? {
                    members.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// What [`rewrite_members`] does with one member.
pub enum Member {
    /// Copy the client's bytes.
    Keep,
    /// The edit wrote a replacement value.
    Replaced,
    /// Leave the member out.
    Drop,
}

/// Copy a JSON object member by member. `edit` sees each key and raw value and may write a
/// replacement value into the buffer or drop the member; otherwise the client's bytes are
/// copied. `append` may then add whole `"key":value` members.
///
/// The members are found by one validating scan ([`crate::codec::scan`]); a body whose keys
/// have escapes, or that the scan refuses, goes through serde_json instead, which decodes the
/// keys (and words the error).
pub fn rewrite_members(
    raw: &[u8],
    mut edit: impl FnMut(&str, &[u8], &mut Vec<u8>) -> Result<Member, serde_json::Error>,
    append: impl FnOnce(&mut Vec<Vec<u8>>),
) -> Result<Bytes, serde_json::Error> {
    let mut plain: Vec<(Key<'_>, &[u8])> = Vec::with_capacity(16);
    let mut escaped = false;
    let scanned = crate::codec::scan::for_each_member(raw, |k, v| {
        if k.contains('\\') {
            escaped = true;
        } else {
            plain.push((Key(k.into()), v));
        }
        !escaped
    });
    let parsed: Members<'_>;
    let members: &[(Key<'_>, &[u8])] = if scanned.is_ok() && !escaped {
        &plain
    } else {
        parsed = serde_json::from_slice(raw)?;
        plain = parsed
            .0
            .iter()
            .map(|(k, v)| (Key(k.0.clone()), v.get().as_bytes()))
            .collect();
        &plain
    };
    let mut out = Vec::with_capacity(raw.len() + 64);
    out.push(b'{');
    let mut first = true;
    for (key, value) in members {
        let start = out.len();
        if !first {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, key.0.as_ref())?;
        out.push(b':');
        let mark = out.len();
        match edit(key.0.as_ref(), value, &mut out)? {
            Member::Keep => {
                out.truncate(mark);
                out.extend_from_slice(value);
            }
            Member::Replaced => {}
            Member::Drop => {
                out.truncate(start);
                continue;
            }
        }
        first = false;
    }
    let mut extra = Vec::new();
    append(&mut extra);
    for member in &extra {
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(member);
        first = false;
    }
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// The client's body with `model` replaced and the members named in `drop` left out.
pub fn with_model(raw: &[u8], model: &str, drop: &[&str]) -> Result<Bytes, serde_json::Error> {
    rewrite_members(
        raw,
        |key, _, out| match key {
            "model" => serde_json::to_writer(out, model).map(|()| Member::Replaced),
            k if drop.contains(&k) => Ok(Member::Drop),
            _ => Ok(Member::Keep),
        },
        |_| {},
    )
}

/// The client's body (in `schema`) asking for at most `limit` output tokens: its maximum
/// (`max_tokens` and `max_completion_tokens`, `max_output_tokens`, Gemini's
/// `generationConfig.maxOutputTokens`) lowered to `limit` where it is above, and an
/// Anthropic thinking budget kept below the new maximum, as Anthropic requires. Every other
/// member keeps the client's bytes. `None`: nothing was above the limit.
pub fn with_max_output(
    schema: WireSchema,
    raw: &[u8],
    limit: u64,
) -> Result<Option<Bytes>, serde_json::Error> {
    let mut changed = false;
    let body = rewrite_members(
        raw,
        |key, value, out| {
            let lowered = match (schema, key) {
                (WireSchema::AnthropicMessages, "max_tokens")
                | (WireSchema::OpenAiChat, "max_tokens" | "max_completion_tokens")
                | (WireSchema::OpenAiResponses, "max_output_tokens") => {
                    serde_json::from_slice::<u64>(value)
                        .ok()
                        .filter(|n| *n > limit)
                        .map(|_| serde_json::Value::from(limit))
                }
                (WireSchema::AnthropicMessages, "thinking") => {
                    let mut v: serde_json::Value = serde_json::from_slice(value)?;
                    lower(v.get_mut("budget_tokens"), limit.saturating_sub(1)).then_some(v)
                }
                (WireSchema::Gemini, "generationConfig" | "generation_config") => {
                    let mut v: serde_json::Value = serde_json::from_slice(value)?;
                    let field = v
                        .get("maxOutputTokens")
                        .map_or("max_output_tokens", |_| "maxOutputTokens");
                    lower(v.get_mut(field), limit).then_some(v)
                }
                _ => None,
            };
            match lowered {
                Some(v) => {
                    changed = true;
                    serde_json::to_writer(out, &v).map(|()| Member::Replaced)
                }
                None => Ok(Member::Keep),
            }
        },
        |_| {},
    )?;
    Ok(changed.then_some(body))
}

/// Lower the integer at `slot` to `limit` if it is above; true if it was.
fn lower(slot: Option<&mut serde_json::Value>, limit: u64) -> bool {
    match slot {
        Some(v) if v.as_u64().is_some_and(|n| n > limit) => {
            *v = serde_json::Value::from(limit);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_maximum_is_lowered_in_each_schema_and_nothing_else_moves() {
        let lowered = |schema, raw: &str, limit| {
            with_max_output(schema, raw.as_bytes(), limit)
                .unwrap()
                .map(|b| String::from_utf8(b.to_vec()).unwrap())
        };
        assert_eq!(
            lowered(
                WireSchema::AnthropicMessages,
                r#"{"model":"c","max_tokens":128000,"thinking":{"type":"enabled","budget_tokens":100000},"x":1.50}"#,
                64_000
            )
            .as_deref(),
            Some(
                r#"{"model":"c","max_tokens":64000,"thinking":{"budget_tokens":63999,"type":"enabled"},"x":1.50}"#
            )
        );
        assert_eq!(
            lowered(
                WireSchema::AnthropicMessages,
                r#"{"max_tokens":32000,"thinking":{"type":"adaptive"}}"#,
                64_000
            ),
            None
        );
        assert_eq!(
            lowered(
                WireSchema::OpenAiChat,
                r#"{"max_completion_tokens":128000,"max_tokens":100}"#,
                16_384
            )
            .as_deref(),
            Some(r#"{"max_completion_tokens":16384,"max_tokens":100}"#)
        );
        assert_eq!(
            lowered(
                WireSchema::OpenAiResponses,
                r#"{"max_output_tokens":200000}"#,
                128_000
            )
            .as_deref(),
            Some(r#"{"max_output_tokens":128000}"#)
        );
        assert_eq!(
            lowered(
                WireSchema::Gemini,
                r#"{"contents":[],"generationConfig":{"temperature":0.5,"maxOutputTokens":128000}}"#,
                65_536
            )
            .as_deref(),
            Some(r#"{"contents":[],"generationConfig":{"maxOutputTokens":65536,"temperature":0.5}}"#)
        );
        assert_eq!(
            lowered(
                WireSchema::Gemini,
                r#"{"generation_config":{"max_output_tokens":70000}}"#,
                65_536
            )
            .as_deref(),
            Some(r#"{"generation_config":{"max_output_tokens":65536}}"#)
        );
        // Another schema's field of the same name, or a value that is not a count: kept.
        assert_eq!(
            lowered(WireSchema::OpenAiResponses, r#"{"max_tokens":9999999}"#, 10),
            None
        );
        assert_eq!(
            lowered(WireSchema::OpenAiChat, r#"{"max_tokens":"lots"}"#, 10),
            None
        );
    }

    #[test]
    fn members_are_kept_replaced_or_dropped_with_valid_commas() {
        let out = with_model(
            br#"{"max_tokens":5,"model":"a","x":[1, 2]}"#,
            "b",
            &["max_tokens"],
        )
        .unwrap();
        assert_eq!(&out[..], br#"{"model":"b","x":[1, 2]}"#);
        let out = with_model(br#"{"model":"a","max_tokens":5}"#, "b", &["max_tokens"]).unwrap();
        assert_eq!(&out[..], br#"{"model":"b"}"#);
        let out = with_model(br#"{"max_tokens":5}"#, "b", &["max_tokens"]).unwrap();
        assert_eq!(&out[..], b"{}");
    }
}
