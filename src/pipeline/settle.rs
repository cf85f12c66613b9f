//! The one place a request settles: [`Settle`], a guard created when the request is
//! admitted.
//!
//! It owns what the request holds until it ends: the admission (budget reservations,
//! rate-limit leases, the request's record and trace), the in-flight counts of the backend
//! and key that serve it, the capture of its bodies, and for a stream the count of what was
//! delivered. It settles exactly once, by one of its methods or by being dropped:
//! - [`Settle::complete`]: a whole reply went out (translated or passed through);
//! - [`Settle::fail`]: the request failed before its reply, with the error the client got;
//! - a stream: the guard moves into the response body ([`super::relay`]), which feeds it
//!   each event ([`Settle::observe`]) and its end ([`Settle::end`]); it settles when the
//!   body is dropped, however the stream ended (the provider's end, a failure mid-stream,
//!   the client gone);
//! - dropped unsettled: the client left (the request's future, or the stream's body, was
//!   dropped), recorded as cancelled, charged for what a stream delivered.
//!
//! A client that leaves before a whole (non-streamed) reply went out is charged by how far
//! its provider got, so that leaving early is never a way around a budget:
//! - the provider's whole reply had arrived ([`Settle::answered`], noted before anything
//!   else is awaited): its usage, as if the reply had gone out;
//! - an attempt was under way ([`Settle::sent`]; the provider call is dropped with the
//!   request, within RELIABILITY 13's second): the input tokens as estimated at admission,
//!   on the model attempted, since the provider has read the prompt but what it generated
//!   is unknown;
//! - no attempt under way (still in admission, between attempts, or every attempt failed):
//!   nothing.
//!
//! A stream cut before the provider's final usage is charged for what was delivered: output
//! tokens counted from the text sent (o200k_base, plus 20 % for other vendors' tokenizers,
//! and at least one token per content event), input tokens as estimated at admission unless
//! the provider said.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::codec::Warnings;
use crate::error::GatewayError;
use crate::governance::admission::{CLIENT_LEFT, Delivered};
use crate::governance::{Admission, Outcome, Report};
use crate::routing::backends::InFlight;
use crate::schema::{Delta, FinishReason, StreamEvent, Usage};

/// Text kept to count a cut stream's tokens; beyond it the count is extrapolated.
const MAX_COUNTED_TEXT: usize = 64 * 1024;

/// What a request holds until it settles (see the module header). `complete` and `fail`
/// settle in place (the guard then holds nothing but the in-flight counts, released when it
/// drops), so the guard is never moved until a stream takes it.
#[derive(Default)]
pub struct Settle {
    admission: Option<Admission>,
    /// In-flight counts of the backend and key that serve, held until the reply ends.
    holds: Vec<InFlight>,
    /// The bodies its record may keep (`None`: none will be).
    capture: Option<Arc<crate::bodies::Capture>>,
    /// A shadow copy went to a mirror: the record keeps the reply's text.
    mirrored: bool,
    /// The stream under way, once the guard moved into its body.
    stream: Option<Box<StreamState>>,
    /// The attempt under way, (provider, model), and once its whole reply arrived, the
    /// usage it reported: what a client that leaves is charged (see the module header).
    upstream: Option<((String, String), Option<Usage>)>,
}

/// What a stream has sent so far.
struct StreamState {
    request_id: String,
    served: (String, String),
    started: Instant,
    warnings: Warnings,
    first_byte: Option<Duration>,
    usage: Usage,
    finish: Option<FinishReason>,
    /// `None` while it runs; how it ended.
    outcome: Option<Result<(), GatewayError>>,
    /// Text sent to the client (up to [`MAX_COUNTED_TEXT`] bytes), its full size, and how
    /// many content events carried it.
    delivered: String,
    delivered_bytes: u64,
    content_events: u64,
}

/// The facts of a request its settlement reports, lent by its context.
pub struct Summary<'a> {
    pub request_id: &'a str,
    pub served: Option<&'a (String, String)>,
    pub started: Instant,
    pub warnings: &'a Warnings,
}

impl Settle {
    /// The guard of an admitted request.
    pub fn new(admission: Admission, capture: Option<Arc<crate::bodies::Capture>>) -> Self {
        Self {
            admission: Some(admission),
            holds: Vec::new(),
            capture,
            mirrored: false,
            stream: None,
            upstream: None,
        }
    }

    /// An attempt to `provider`'s `model` is being sent.
    pub fn sent(&mut self, provider: &str, model: &str) {
        self.upstream = Some(((provider.to_owned(), model.to_owned()), None));
    }

    /// The attempt under way failed: a client that leaves now is charged nothing.
    pub fn unsent(&mut self) {
        self.upstream = None;
    }

    /// The provider's whole reply arrived, reporting `usage`: a client that leaves from now
    /// on is charged it.
    pub fn answered(&mut self, served: Option<&(String, String)>, usage: Usage) {
        if let Some(served) = served {
            self.upstream = Some((served.clone(), Some(usage)));
        }
    }

    pub fn admission_mut(&mut self) -> Option<&mut Admission> {
        self.admission.as_mut()
    }

    pub fn admission(&self) -> Option<&Admission> {
        self.admission.as_ref()
    }

    pub fn capture(&self) -> Option<&Arc<crate::bodies::Capture>> {
        self.capture.as_ref()
    }

    /// Hold these in-flight counts until the reply ends.
    pub fn hold(&mut self, holds: impl IntoIterator<Item = InFlight>) {
        self.holds.extend(holds);
    }

    pub fn set_mirrored(&mut self) {
        self.mirrored = true;
    }

    pub fn mirrored(&self) -> bool {
        self.mirrored
    }

    /// A whole reply (200) went out: settle with the usage the provider reported and, for a
    /// mirrored request, the reply's text.
    pub fn complete(
        &mut self,
        of: &Summary<'_>,
        usage: Usage,
        output: impl FnOnce() -> Option<String>,
    ) {
        let Some(adm) = self.admission.take() else {
            return;
        };
        let (provider, model) = of.served.cloned().unzip();
        adm.finish(Outcome {
            provider,
            model,
            usage,
            status: "ok",
            delivered: None,
            output: if self.mirrored { output() } else { None },
            report: Report {
                http_status: 200,
                // A whole reply: its first byte is now.
                ttft_ms: Some(crate::millis(of.started.elapsed())),
                warnings: warnings_text(of.warnings),
                error: None,
            },
            bodies: self.capture.take(),
        });
    }

    /// The request failed with `e` before its reply (a request refused before admission has
    /// nothing to settle): its record says why.
    pub fn fail(&mut self, of: &Summary<'_>, e: &GatewayError) {
        let Some(adm) = self.admission.take() else {
            return;
        };
        let (provider, model) = of.served.cloned().unzip();
        let mut report = Report::failed(e);
        report.warnings = warnings_text(of.warnings);
        adm.finish(Outcome {
            provider,
            model,
            status: "error",
            report,
            bodies: self.capture.take(),
            ..Default::default()
        });
    }

    /// The guard of a stream about to be relayed: from now on it counts what goes out and
    /// settles when the stream's body is dropped.
    pub fn streaming(mut self, of: &Summary<'_>) -> Self {
        self.stream = Some(Box::new(StreamState {
            request_id: of.request_id.to_owned(),
            served: of.served.cloned().unwrap_or_default(),
            started: of.started,
            warnings: of.warnings.clone(),
            first_byte: None,
            usage: Usage::default(),
            finish: None,
            outcome: None,
            delivered: String::new(),
            delivered_bytes: 0,
            content_events: 0,
        }));
        self
    }

    /// An event the stream is about to send.
    pub fn observe(&mut self, ev: &StreamEvent) {
        let admitted = self.admission.is_some();
        let Some(s) = self.stream.as_deref_mut() else {
            return;
        };
        match ev {
            StreamEvent::Usage(u) => s.usage.merge(u),
            StreamEvent::Finish { reason, .. } => s.finish = Some(reason.clone()),
            StreamEvent::Delta { delta, .. } => {
                let text = match delta {
                    Delta::Text(t) | Delta::Refusal(t) | Delta::Reasoning(t) => t,
                    Delta::ToolCallArgs { fragment, .. } => fragment,
                    Delta::ToolCallStart { name, .. } => name,
                    Delta::ReasoningSignature(_)
                    | Delta::RedactedReasoning(_)
                    | Delta::Unrepresented(_)
                    | Delta::Citation { .. } => return,
                };
                s.content_events += 1;
                s.delivered_bytes += text.len() as u64;
                if s.delivered.len() + text.len() <= MAX_COUNTED_TEXT {
                    s.delivered.push_str(text);
                }
            }
            // A raw chunk (OpenAI passthrough) carries about one token.
            StreamEvent::Raw(_) if admitted => s.content_events += 1,
            _ => {}
        }
    }

    /// A translation note the stream made as it went (what the client's schema could not
    /// carry).
    pub fn warn(&mut self, w: impl Into<String>) {
        if let Some(s) = self.stream.as_deref_mut() {
            s.warnings.push(w);
        }
    }

    /// The stream's first bytes (not a keep-alive) go out now.
    pub fn first_byte(&mut self) {
        if let Some(s) = self.stream.as_deref_mut()
            && s.first_byte.is_none()
        {
            s.first_byte = Some(s.started.elapsed());
        }
    }

    /// Bytes of the stream as they go out, for the record's copy of the reply.
    pub fn tap(&self, bytes: &[u8]) {
        if let Some(c) = &self.capture {
            c.reply_chunk(bytes);
        }
    }

    /// The stream ended: normally (`Ok`) or with the error its last event carried.
    pub fn end(&mut self, result: Result<(), GatewayError>) {
        if let Some(s) = self.stream.as_deref_mut() {
            s.outcome = Some(result);
        }
    }

    /// Settle a stream however it ended (see [`Self::end`]; never ended: the client left).
    fn settle_stream(&mut self, s: &mut StreamState) {
        if let Some(adm) = self.admission.take() {
            // Counting what was delivered needs the tokenizer: the settlement does it off the
            // runtime, never this drop (which may run while the provider connection closes).
            let output = self.mirrored.then(|| s.delivered.clone());
            let delivered =
                (s.usage.output_tokens == 0 || s.usage.input_tokens == 0).then(|| Delivered {
                    text: std::mem::take(&mut s.delivered),
                    bytes: s.delivered_bytes,
                    content_events: s.content_events,
                });
            let (provider, model) = s.served.clone();
            adm.finish(Outcome {
                provider: Some(provider),
                model: Some(model),
                usage: s.usage,
                delivered,
                output,
                status: match &s.outcome {
                    Some(Ok(())) => "ok",
                    Some(Err(_)) => "error",
                    None => "cancelled",
                },
                report: Report {
                    // The stream's headers went out before any of this.
                    http_status: 200,
                    error: match &s.outcome {
                        Some(Err(e)) => Some((e.label(), e.message.clone())),
                        Some(Ok(())) => None,
                        None => Some((
                            CLIENT_LEFT,
                            "the client closed the connection mid-stream".to_owned(),
                        )),
                    },
                    ttft_ms: s.first_byte.map(crate::millis),
                    warnings: warnings_text(&s.warnings),
                },
                bodies: self.capture.take(),
            });
        }
        // Read only when the line is written.
        let ms = || crate::millis(s.started.elapsed());
        let (u, (provider, model), id) = (&s.usage, &s.served, &s.request_id);
        match &s.outcome {
            Some(Ok(())) => tracing::debug!(
                request_id = %id, provider = %provider, model = %model,
                ttft_ms = s.first_byte.map(crate::millis),
                ms = ms(), input_tokens = u.input_tokens, output_tokens = u.output_tokens,
                finish = ?s.finish, "stream completed"
            ),
            Some(Err(e)) => tracing::warn!(
                request_id = %id, provider = %provider, model = %model,
                ms = ms(), input_tokens = u.input_tokens, output_tokens = u.output_tokens,
                error = %e, "stream failed after it started"
            ),
            None => tracing::debug!(
                request_id = %id, provider = %provider, model = %model,
                ms = ms(), output_tokens = u.output_tokens,
                "stream cancelled by the client"
            ),
        }
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        if let Some(mut s) = self.stream.take() {
            self.settle_stream(&mut s);
            return;
        }
        // Unsettled before any reply: the request's future was dropped, which is how a
        // client that leaves before the reply shows (the upstream call is dropped with it).
        // Charged by how far its provider got (see the module header).
        if let Some(adm) = self.admission.take() {
            adm.finish(match self.upstream.take() {
                Some(((provider, model), usage)) => {
                    Outcome::client_left_upstream(provider, model, usage)
                }
                None => Outcome::client_left(),
            });
        }
    }
}

fn warnings_text(w: &Warnings) -> Option<String> {
    (!w.is_empty()).then(|| w.header_value())
}
