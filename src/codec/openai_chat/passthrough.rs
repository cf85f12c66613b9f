//! Same-schema passthrough (SPEC §3): a Chat Completions request for an OpenAI-style provider
//! is sent as the client wrote it, apart from `model` (and, for a stream,
//! `stream_options.include_usage`, because the gateway always reads usage); the provider's
//! non-streamed reply goes back as it came, with only its usage read (STYLE §3.2: a
//! passthrough must still pull out usage).
//!

use bytes::Bytes;
use serde::Deserialize;

use super::response::decode_usage;
use super::wire::{OaiStreamOptions, OaiUsage};
use crate::codec::passthrough::{Member, rewrite_members};
use crate::schema::{FinishReason, Usage};

/// The client's request body with `model` set to the provider's model name; for a stream,
/// `stream_options.include_usage` is also set (other stream options are kept).
pub fn request_body(raw: &[u8], model: &str, stream: bool) -> Result<Bytes, serde_json::Error> {
    let has_options = std::cell::Cell::new(false);
    rewrite_members(
        raw,
        |key, value, out| match key {
            "model" => serde_json::to_writer(out, model).map(|()| Member::Replaced),
            "stream_options" if stream => {
                has_options.set(true);
                let mut opts: OaiStreamOptions = serde_json::from_slice(value)?;
                opts.include_usage = Some(true);
                serde_json::to_writer(out, &opts).map(|()| Member::Replaced)
            }
            _ => Ok(Member::Keep),
        },
        |out| {
            if stream && !has_options.get() {
                out.push(br#""stream_options":{"include_usage":true}"#.to_vec());
            }
        },
    )
}

/// What a relayed stream chunk means for accounting, read without decoding its content.
#[derive(Debug, Default, PartialEq)]
pub struct ChunkMeta {
    pub usage: Option<Usage>,
    /// (choice, reason) for each choice that finished in this chunk.
    pub finishes: Vec<(u32, FinishReason)>,
    /// The chunk has no choices: the usage chunk the gateway asked for, or an error.
    pub no_choices: bool,
    /// The chunk carries an `error` object.
    pub error: bool,
}

/// Whether a chunk may carry what [`chunk_meta`] reads: a `usage`, `finish_reason` or `error`
/// key whose value is not `null`. Most chunks of a stream carry only content, and this scan
/// (a few SIMD substring searches) lets them be relayed without parsing. Inside a string the
/// quotes are escaped, so text never matches; a false positive (the same key nested deeper)
/// only costs a parse.
pub fn may_carry_meta(data: &str) -> bool {
    use std::sync::LazyLock;
    static KEYS: LazyLock<[memchr::memmem::Finder<'static>; 3]> = LazyLock::new(|| {
        [
            memchr::memmem::Finder::new(br#""usage""#),
            memchr::memmem::Finder::new(br#""finish_reason""#),
            memchr::memmem::Finder::new(br#""error""#),
        ]
    });
    let b = data.as_bytes();
    KEYS.iter().any(|key| {
        key.find_iter(b).any(|pos| {
            let rest = &b[pos + key.needle().len()..];
            let value = rest
                .iter()
                .position(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b':'))
                .map_or(&b""[..], |i| &rest[i..]);
            !value.starts_with(b"null")
        })
    })
}

/// The text content of a chunk, per choice (parsed in full: only for mirrored requests).
pub fn chunk_texts(data: &str) -> Vec<(u32, String)> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
        return Vec::new();
    };
    v["choices"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| {
                    let text = c["delta"]["content"].as_str()?;
                    let index = u32::try_from(c["index"].as_u64().unwrap_or(0)).ok()?;
                    (!text.is_empty()).then(|| (index, text.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Read a stream chunk's usage, finish reasons and error flag; strings and content are
/// skipped, not decoded.
pub fn chunk_meta(data: &str) -> Result<ChunkMeta, serde_json::Error> {
    #[derive(Deserialize)]
    struct ChoiceIn<'a> {
        #[serde(default)]
        index: u32,
        #[serde(default, borrow)]
        finish_reason: Option<std::borrow::Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct ChunkIn<'a> {
        #[serde(default, borrow)]
        choices: Vec<ChoiceIn<'a>>,
        #[serde(default)]
        usage: Option<OaiUsage>,
        #[serde(default)]
        error: Option<serde::de::IgnoredAny>,
    }
    let c: ChunkIn<'_> = serde_json::from_str(data)?;
    Ok(ChunkMeta {
        usage: c.usage.as_ref().map(decode_usage),
        no_choices: c.choices.is_empty(),
        finishes: c
            .choices
            .iter()
            .filter_map(|ch| {
                Some((
                    ch.index,
                    FinishReason::from_openai(ch.finish_reason.as_deref()?),
                ))
            })
            .collect(),
        error: c.error.is_some(),
    })
}

/// The usage of a non-streamed reply, reading nothing else (the reply must still be valid
/// JSON, or it is not relayed).
pub fn reply_usage(body: &[u8]) -> Result<Option<Usage>, serde_json::Error> {
    use serde::de::Error;
    let usage =
        crate::codec::scan::top_level_member(body, "usage").map_err(serde_json::Error::custom)?;
    usage_member(usage)
}

/// The usage of a chat completion from its raw `usage` member.
pub fn usage_member(usage: Option<&[u8]>) -> Result<Option<Usage>, serde_json::Error> {
    let Some(usage) = usage else { return Ok(None) };
    // `from_str` after one check of the member's UTF-8, rather than one check a key.
    let text = std::str::from_utf8(usage).map_err(serde::de::Error::custom)?;
    let usage: Option<OaiUsage> = serde_json::from_str(text)?;
    Ok(usage.as_ref().map(decode_usage))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn only_model_changes_and_bytes_of_other_values_are_kept() {
        let raw = br#"{"temperature":1.50,"model":"alias","messages":[{"role":"developer","content":"x","zz":1}],"x-custom":{"a":[1,2]}}"#;
        let out = request_body(raw, "gpt-4o", false).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"temperature":1.50,"model":"gpt-4o","messages":[{"role":"developer","content":"x","zz":1}],"x-custom":{"a":[1,2]}}"#
        );
    }

    #[test]
    fn streams_always_ask_for_usage() {
        let out = request_body(br#"{"model":"a","stream":true}"#, "b", true).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"model":"b","stream":true,"stream_options":{"include_usage":true}})
        );
        let out = request_body(
            br#"{"model":"a","stream":true,"stream_options":{"include_usage":false,"other":1}}"#,
            "b",
            true,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"], json!({"include_usage":true,"other":1}));
    }

    #[test]
    fn keys_with_escapes_are_written_back_escaped() {
        let out = request_body(br#"{"a\"b":1,"model":"m"}"#, "n\"q", false).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!({"a\"b":1,"model":"n\"q"}));
    }

    #[test]
    fn only_chunks_with_a_non_null_usage_finish_or_error_need_reading() {
        let content = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"say \"usage\": null"},"finish_reason":null}],"usage":null}"#;
        assert!(!may_carry_meta(content));
        assert!(!may_carry_meta(
            r#"{"choices":[{"finish_reason": null}], "usage" : null}"#
        ));
        assert!(may_carry_meta(r#"{"choices":[{"finish_reason": "stop"}]}"#));
        assert!(may_carry_meta(
            r#"{"choices":[],"usage":{"prompt_tokens":1}}"#
        ));
        assert!(may_carry_meta(r#"{"error":{"message":"x"}}"#));
        // Key text inside content has its quotes escaped, so it never matches.
        assert!(!may_carry_meta(
            r#"{"choices":[{"delta":{"content":"\"error\": 1"}}]}"#
        ));
    }

    #[test]
    fn usage_is_read_from_a_reply_and_bad_json_is_an_error() {
        let u = reply_usage(br#"{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":2}}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cache_read_tokens),
            (3, 4, 2)
        );
        assert_eq!(reply_usage(br#"{"choices":[]}"#).unwrap(), None);
        assert!(reply_usage(b"{\"choices\":[").is_err());
    }
}
