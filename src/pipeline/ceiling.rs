//! The output-ceiling step of an attempt: a request asking for more output tokens than the
//! served model can produce is clamped to the model's ceiling (the model table,
//! [`crate::pricing`]), with a warning, because the providers refuse it outright (Claude Code
//! asks for 128,000; gpt-4o produces at most 16,384 and Gemini 2.5 Pro 65,536). A model the
//! table has no ceiling for gets the request's own maximum. Admission reserves the same
//! clamped amount (`governance::admission`).

use std::borrow::Cow;

use crate::codec::Warnings;
use crate::codec::passthrough::with_max_output;
use crate::error::GatewayError;
use crate::pricing::PriceTable;
use crate::schema::ChatRequest;

/// `req` as `model` takes it: its output maximum (and the client's own body, for a
/// passthrough) at most the model's ceiling.
pub(super) fn fit<'r>(
    req: &'r ChatRequest,
    model: &str,
    pricing: &PriceTable,
    w: &mut Warnings,
) -> Result<Cow<'r, ChatRequest>, GatewayError> {
    // A request that sets no maximum needs no look-up.
    let Some(asked) = req.max_output_tokens else {
        return Ok(Cow::Borrowed(req));
    };
    let Some(ceiling) = pricing.max_output_tokens(model).filter(|c| asked > *c) else {
        return Ok(Cow::Borrowed(req));
    };
    let mut fitted = req.clone();
    fitted.max_output_tokens = Some(ceiling);
    if let Some(raw) = &mut fitted.raw
        && let Some(bytes) = with_max_output(raw.schema, &raw.bytes, ceiling)
            .map_err(|e| GatewayError::invalid(format!("malformed request body: {e}")))?
    {
        raw.bytes = bytes;
    }
    w.push(format!("max_tokens {asked}->{ceiling} for {model}"));
    Ok(Cow::Owned(fitted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{RawBody, WireSchema};

    fn request(max: Option<u64>) -> ChatRequest {
        ChatRequest {
            model: "claude-opus-5-5".into(),
            max_output_tokens: max,
            raw: Some(RawBody {
                schema: WireSchema::AnthropicMessages,
                bytes: bytes::Bytes::from(format!(
                    r#"{{"model":"claude-opus-5-5","max_tokens":{}}}"#,
                    max.unwrap_or(0)
                )),
                headers: Vec::new(),
            }),
            ..ChatRequest::default()
        }
    }

    #[test]
    fn above_the_ceiling_is_clamped_with_a_warning_and_the_rest_passes() {
        let pricing = PriceTable::builtin();
        let mut w = Warnings::default();
        let req = request(Some(128_000));
        let fitted = fit(&req, "gpt-4o", &pricing, &mut w).unwrap();
        assert_eq!(fitted.max_output_tokens, Some(16_384));
        assert_eq!(
            &fitted.raw.as_ref().unwrap().bytes[..],
            br#"{"model":"claude-opus-5-5","max_tokens":16384}"#
        );
        assert_eq!(w.header_value(), "max_tokens 128000->16384 for gpt-4o");

        // Within the ceiling, no maximum at all, or a model without a known ceiling: as is.
        let mut w = Warnings::default();
        for (req, model) in [
            (request(Some(1_000)), "gpt-4o"),
            (request(None), "gpt-4o"),
            (request(Some(128_000)), "qwen2.5-coder"),
        ] {
            assert!(matches!(
                fit(&req, model, &pricing, &mut w).unwrap(),
                Cow::Borrowed(_)
            ));
        }
        assert!(w.is_empty());
    }
}
