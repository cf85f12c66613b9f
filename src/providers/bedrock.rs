//! `bedrock` provider: Amazon Bedrock's Converse API (`POST {base_url}/model/{modelId}/converse`
//! and `/converse-stream`), requests signed with AWS SigV4 through the AWS SDK's signing crate
//! (credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), or
//! a Bedrock API key sent as a bearer token.
//!
//! Streams come back in AWS's binary event-stream framing (`providers::eventstream`) and are
//! decoded by the Converse codec (`codec::bedrock`). Model ids carry `:` (versions), which is
//! percent-encoded in the path as the AWS SDKs do, and signed as sent. Embeddings call
//! `InvokeModel` with the model family's own body: Amazon Titan (one text per call) or
//! Cohere (a batch).

use http::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::sse::SseEvent;
use super::{
    Adapter, StreamDecoder, StreamMode, StreamStep, UpstreamRequest, bad_reply, bearer, json_body,
    upstream_error,
};
use crate::codec::{Warnings, bedrock};
use crate::config::{ProviderConfig, ProviderKind, Secret};
use crate::error::GatewayError;
use crate::schema::{ChatRequest, ChatResponse, Embedding, EmbeddingRequest, EmbeddingResponse};

const NAME: &str = "bedrock";
/// The SigV4 service name of the Bedrock runtime.
const SERVICE: &str = "bedrock";

pub struct BedrockAdapter {
    config: std::sync::Arc<ProviderConfig>,
}

impl BedrockAdapter {
    pub fn new(config: std::sync::Arc<ProviderConfig>) -> Self {
        Self { config }
    }
}

/// `/model/{modelId}/{op}`, the id percent-encoded (`:` as `%3A`); ids are letters, digits,
/// `.`, `-`, `_`, `:` and `/` (an ARN's).
fn model_path(model: &str, op: &str) -> Result<String, GatewayError> {
    if model.is_empty()
        || !model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/'))
    {
        return Err(GatewayError::invalid_param(
            "model",
            format!("`{model}` is not a valid Bedrock model id"),
        ));
    }
    let id = model.replace(':', "%3A").replace('/', "%2F");
    Ok(format!("/model/{id}/{op}"))
}

fn accept(value: &'static str) -> Vec<(HeaderName, HeaderValue)> {
    vec![(http::header::ACCEPT, HeaderValue::from_static(value))]
}

impl Adapter for BedrockAdapter {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Bedrock
    }

    fn build_chat(
        &self,
        req: &ChatRequest,
        model: &str,
        warnings: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError> {
        let (op, headers) = if req.stream {
            (
                "converse-stream",
                accept("application/vnd.amazon.eventstream"),
            )
        } else {
            ("converse", accept("application/json"))
        };
        let body = bedrock::encode_request(req, model, warnings);
        Ok(UpstreamRequest {
            path: model_path(model, op)?,
            body: json_body(&body)?,
            headers,
            passthrough: false,
        })
    }

    fn parse_chat(&self, body: &[u8]) -> Result<ChatResponse, GatewayError> {
        bedrock::decode_response(body)
    }

    fn stream_decoder(&self, _mode: StreamMode) -> Box<dyn StreamDecoder> {
        Box::new(BedrockStream::default())
    }

    fn build_embeddings(
        &self,
        req: &EmbeddingRequest,
        model: &str,
        _warnings: &mut Warnings,
    ) -> Result<UpstreamRequest, GatewayError> {
        let texts = req.input.texts().ok_or_else(|| {
            GatewayError::invalid_param("input", "bedrock embeds text only, not token ids")
        })?;
        let body = if model.starts_with("cohere.embed") {
            json!({"texts": texts, "input_type": "search_document"})
        } else if let [one] = texts.as_slice() {
            let mut b = json!({"inputText": one});
            if let Some(d) = req.dimensions {
                b["dimensions"] = json!(d);
            }
            b
        } else {
            return Err(GatewayError::invalid_param(
                "input",
                format!("{model} embeds one text per request; send one string"),
            ));
        };
        Ok(UpstreamRequest {
            path: model_path(model, "invoke")?,
            body: json_body(&body)?,
            headers: accept("application/json"),
            passthrough: false,
        })
    }

    fn parse_embeddings(&self, body: &[u8]) -> Result<EmbeddingResponse, GatewayError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| bad_reply(NAME, e))?;
        let vectors: Vec<Value> = if let Some(e) = v.get("embedding") {
            vec![e.clone()]
        } else {
            v.get("embeddings")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| bad_reply(NAME, "no `embedding` or `embeddings`"))?
        };
        Ok(EmbeddingResponse {
            model: String::new(),
            data: vectors
                .into_iter()
                .enumerate()
                .map(|(i, vector)| Embedding {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    vector,
                })
                .collect(),
            input_tokens: v
                .get("inputTextTokenCount")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
    }

    fn parse_error(&self, status: u16, body: &[u8], retry_after: Option<u64>) -> GatewayError {
        upstream_error(NAME, status, body, retry_after)
    }

    /// A Bedrock API key is a bearer token; AWS credentials sign instead (see `sign`).
    fn auth_headers(&self, key: &Secret) -> Vec<(HeaderName, HeaderValue)> {
        bearer(key)
    }

    fn sign(
        &self,
        req: &mut http::Request<http_body_util::Full<bytes::Bytes>>,
        key: Option<&Secret>,
    ) -> Result<(), GatewayError> {
        let (Some(aws), None) = (&self.config.aws, key) else {
            return Ok(());
        };
        let region = self.config.region.as_deref().unwrap_or("us-east-1");
        sigv4(req, aws, region, std::time::SystemTime::now())
    }
}

/// Sign `req` with SigV4 for the Bedrock runtime at `time`; the body is hashed as sent.
pub(crate) fn sigv4(
    req: &mut http::Request<http_body_util::Full<bytes::Bytes>>,
    aws: &crate::config::AwsCredentials,
    region: &str,
    time: std::time::SystemTime,
) -> Result<(), GatewayError> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use http_body_util::BodyExt;
    let failed = |e: &dyn std::fmt::Display| {
        GatewayError::internal(format!("the request to bedrock could not be signed: {e}"))
    };
    let body = futures_util::FutureExt::now_or_never(req.body().clone().collect())
        .and_then(Result::ok)
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let identity = aws_credential_types::Credentials::new(
        aws.access_key_id.expose(),
        aws.secret_access_key.expose(),
        aws.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "environment",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let uri = req.uri().to_string();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    instructions.apply_to_request_http1x(req);
    for name in ["authorization", "x-amz-security-token"] {
        if let Some(v) = req.headers_mut().get_mut(name) {
            v.set_sensitive(true);
        }
    }
    Ok(())
}

/// ConverseStream, unframed into named events; `metadata` (after `messageStop`) is last.
#[derive(Default)]
struct BedrockStream {
    inner: bedrock::StreamDecoder,
}

impl StreamDecoder for BedrockStream {
    fn decode(&mut self, ev: &SseEvent) -> Result<StreamStep, GatewayError> {
        let kind = ev.event.as_deref().unwrap_or("");
        let (events, last) = self.inner.decode(kind, &ev.data)?;
        Ok(if last {
            StreamStep::Last(events)
        } else {
            StreamStep::Events(events)
        })
    }
}
