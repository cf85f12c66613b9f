//! Same-schema passthrough (SPEC §3), for every schema: the client's body is rewritten at its
//! top level only. Every other value is copied as the client's bytes, so fields the gateway
//! does not model, number formats and key order reach the provider untouched.

use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::codec::extra::Key;

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

/// Copy a JSON object member by member. `edit` sees each key and raw value and may write a
/// replacement value into the buffer (returning `true`); otherwise the client's bytes are
/// copied. `append` may then add whole `"key":value` members.
pub fn rewrite_members(
    raw: &[u8],
    mut edit: impl FnMut(&str, &RawValue, &mut Vec<u8>) -> Result<bool, serde_json::Error>,
    append: impl FnOnce(&mut Vec<Vec<u8>>),
) -> Result<Bytes, serde_json::Error> {
    let members: Members<'_> = serde_json::from_slice(raw)?;
    let mut out = Vec::with_capacity(raw.len() + 64);
    out.push(b'{');
    for (i, (key, value)) in members.0.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, key.0.as_ref())?;
        out.push(b':');
        let mark = out.len();
        if !edit(key.0.as_ref(), value, &mut out)? {
            out.truncate(mark);
            out.extend_from_slice(value.get().as_bytes());
        }
    }
    let mut extra = Vec::new();
    append(&mut extra);
    for (i, member) in extra.iter().enumerate() {
        if i > 0 || !members.0.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(member);
    }
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// The client's body with only `model` replaced.
pub fn with_model(raw: &[u8], model: &str) -> Result<Bytes, serde_json::Error> {
    rewrite_members(
        raw,
        |key, _, out| match key {
            "model" => serde_json::to_writer(out, model).map(|()| true),
            _ => Ok(false),
        },
        |_| {},
    )
}
