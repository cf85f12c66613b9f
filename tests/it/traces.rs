//! OpenTelemetry traces (issue #6): one span per request and a child per attempt, with the
//! GenAI semantic conventions, exported over OTLP/HTTP to a local receiver; a client's
//! `traceparent` is continued and each attempt's is sent to its provider; off unless
//! configured.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};

use crate::support::otlp::{Receiver, attr};
use crate::support::*;

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn config(receiver: &Receiver, extra: &str) -> String {
    format!(
        r#"
[providers.a]
kind = "openai-compatible"
base_url = "{{mock0}}"
[providers.b]
kind = "openai"
base_url = "{{mock1}}"
api_key = "sk-provider-b-key-0000000001"
[[routes]]
name = "chain"
match = {{ model = "m" }}
targets = ["a/first", "b/second"]
[traces]
endpoint = "{}"
headers = {{ "x-collector-key" = "collector-secret-123" }}
service_name = "gatehouse-test"
{extra}
"#,
        receiver.endpoint()
    )
}

async fn flush(gw: &Gateway) {
    assert!(
        gw.state
            .governance()
            .enforcer()
            .flush(Duration::from_secs(10))
            .await
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_request_is_a_span_with_a_child_per_attempt() {
    let receiver = Receiver::start().await;
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(&receiver, ""), &[&a, &b]).await;
    a.push(Reply::error(503, "overloaded"));
    b.push(Reply::chat("hello"));
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .json(&chat_req("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    flush(&gw).await;

    let spans = receiver.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let root = &spans[0];
    assert_eq!(hex(&root.trace_id), CLIENT_TRACE);
    assert_eq!(hex(&root.parent_span_id), CLIENT_SPAN);
    assert_eq!(root.kind, SpanKind::Server as i32);
    assert_eq!(root.name, "chat m");
    let at = |k: &str| attr(&root.attributes, k);
    assert_eq!(at("gen_ai.operation.name").as_deref(), Some("chat"));
    assert_eq!(at("gen_ai.request.model").as_deref(), Some("m"));
    assert_eq!(at("gen_ai.response.model").as_deref(), Some("second"));
    assert_eq!(at("gen_ai.provider.name").as_deref(), Some("openai"));
    assert_eq!(
        at("gatehouse.request_id").as_deref(),
        Some(request_id.as_str())
    );
    assert_eq!(at("gatehouse.route").as_deref(), Some("chain"));
    assert_eq!(at("gatehouse.fallback").as_deref(), Some("true"));
    assert!(
        at("gen_ai.usage.input_tokens")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert!(
        at("gen_ai.usage.output_tokens")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    assert_eq!(at("http.response.status_code").as_deref(), Some("200"));
    assert!(root.status.is_none(), "{:?}", root.status);
    assert!(root.end_time_unix_nano > root.start_time_unix_nano);

    // The attempts, children of the request's span, in order, within it.
    let (first, second) = (&spans[1], &spans[2]);
    for s in [first, second] {
        assert_eq!(s.trace_id, root.trace_id);
        assert_eq!(s.parent_span_id, root.span_id);
        assert_eq!(s.kind, SpanKind::Client as i32);
        assert!(s.start_time_unix_nano >= root.start_time_unix_nano);
        assert!(s.end_time_unix_nano <= root.end_time_unix_nano + 1_000_000);
        assert_eq!(
            attr(&s.attributes, "server.address").as_deref(),
            Some("127.0.0.1")
        );
    }
    assert!(second.start_time_unix_nano >= first.end_time_unix_nano);
    assert_eq!(first.name, "chat first");
    assert_eq!(
        attr(&first.attributes, "gen_ai.provider.name").as_deref(),
        Some("a")
    );
    assert_eq!(
        attr(&first.attributes, "error.type").as_deref(),
        Some("upstream_failed")
    );
    assert_eq!(
        first.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert_eq!(second.name, "chat second");
    assert_eq!(
        attr(&second.attributes, "gen_ai.provider.name").as_deref(),
        Some("openai")
    );
    assert_eq!(
        attr(&second.attributes, "server.port"),
        Some(
            b.base_url()
                .parse::<http::Uri>()
                .unwrap()
                .port_u16()
                .unwrap()
                .to_string()
        )
    );
    assert!(attr(&second.attributes, "gen_ai.usage.output_tokens").is_some());
    assert!(second.status.is_none());

    // Each provider got a traceparent naming its attempt's span.
    let sent = |m: &MockProvider| {
        m.last_request().headers["traceparent"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        sent(&a),
        format!("00-{CLIENT_TRACE}-{}-01", hex(&first.span_id))
    );
    assert_eq!(
        sent(&b),
        format!("00-{CLIENT_TRACE}-{}-01", hex(&second.span_id))
    );

    // The export carried the collector's header and the service's name.
    let exports = receiver.exports();
    let (headers, resource) = &exports[0];
    assert_eq!(headers["x-collector-key"], "collector-secret-123");
    assert_eq!(headers["content-type"], "application/x-protobuf");
    assert_eq!(
        attr(resource, "service.name").as_deref(),
        Some("gatehouse-test")
    );
}

#[tokio::test]
async fn a_failed_stream_and_the_clients_sampling_decision() {
    let receiver = Receiver::start().await;
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(&receiver, "sample = 0.0"), &[&a, &b]).await;
    // With no traceparent and a share of 0, nothing is traced, and providers get none.
    a.push(Reply::chat("x"));
    assert_eq!(gw.chat(&chat_req("m", false)).await.status(), 200);
    flush(&gw).await;
    assert!(receiver.spans().is_empty());
    assert!(a.last_request().headers.get("traceparent").is_none());
    // A client's sampled traceparent overrides the share; a 400 is not retried.
    a.push(Reply::error(400, "bad request from the provider"));
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .json(&chat_req("m", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    flush(&gw).await;
    let spans = receiver.spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    assert_eq!(
        spans[0].status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert!(
        spans[0]
            .status
            .as_ref()
            .unwrap()
            .message
            .contains("bad request from the provider")
    );
    assert_eq!(
        attr(&spans[0].attributes, "error.type").as_deref(),
        Some("upstream_rejected")
    );
    assert_eq!(
        attr(&spans[0].attributes, "http.response.status_code").as_deref(),
        Some("400")
    );
}

#[tokio::test]
async fn a_collector_that_refuses_for_a_while_gets_the_spans_after() {
    let receiver = Receiver::start().await;
    receiver.refuse_next(2);
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(&receiver, ""), &[&a, &b]).await;
    a.push(Reply::chat("x"));
    assert_eq!(gw.chat(&chat_req("m", false)).await.status(), 200);
    // The exporter's linger (200 ms) and its waits after each refusal (500 ms, then 1 s)
    // pass as the clock moves in steps; the posts go over real sockets in between.
    let posted = eventually(Duration::from_secs(10), || async {
        skip(Duration::from_millis(100)).await;
        (receiver.posts() >= 3).then_some(())
    })
    .await;
    assert!(posted.is_some(), "{} posts", receiver.posts());
    flush(&gw).await;
    assert_eq!(receiver.posts(), 3);
    assert_eq!(receiver.spans().len(), 2);
}

#[tokio::test]
async fn without_traces_configured_nothing_is_sent() {
    let a = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::with_openai(&a).await;
    a.push(Reply::chat("x"));
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .json(&chat_req("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(a.last_request().headers.get("traceparent").is_none());
}
