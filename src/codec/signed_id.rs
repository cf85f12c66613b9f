//! A reasoning signature carried inside a tool-call id, for client schemas with no place for
//! one (Chat Completions).
//!
//! Gemini 3 signs each step's first function call (`thoughtSignature`) and refuses a
//! function-calling history whose calls come back unsigned. An Anthropic or Responses client
//! has a place for the signature (a thinking block, a reasoning item's `encrypted_content`),
//! but a Chat Completions client has only the call's id, which every client returns verbatim
//! with the call and its result. So the Chat codec writes `{id}.sig.{base64url(signature)}`
//! as the id of a call whose reasoning is only a signature (Gemini's, or Anthropic's thinking
//! with its display omitted), and reads it back into the call's own id and a reasoning part
//! carrying the signature. Stateless: any instance, after any restart, restores it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Between a call's id and its signature.
const MARK: &str = ".sig.";

/// The id a client sees for call `id` whose reasoning signature is `signature`.
pub fn sign(id: &str, signature: &str) -> String {
    format!("{id}{MARK}{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A client's call id as the call's own id and the signature it carries, if any. An id that
/// only looks signed (the part after the mark is not base64 text) is kept whole.
pub fn split(id: &str) -> (&str, Option<String>) {
    if let Some((own, encoded)) = id.split_once(MARK)
        && let Ok(bytes) = URL_SAFE_NO_PAD.decode(encoded)
        && let Ok(signature) = String::from_utf8(bytes)
    {
        return (own, Some(signature));
    }
    (id, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_rides_in_the_id_and_comes_back() {
        for sig in ["CiQBjz1rX+/abc==", "skip_thought_signature_validator", "é"] {
            let id = sign("call_1", sig);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                "{id}"
            );
            assert_eq!(split(&id), ("call_1", Some(sig.to_owned())));
        }
        assert_eq!(split("call_1"), ("call_1", None));
        assert_eq!(split("a.sig.%%%"), ("a.sig.%%%", None));
    }
}
