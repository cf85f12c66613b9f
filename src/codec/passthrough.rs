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

#[cfg(test)]
mod tests {
    use super::*;

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
