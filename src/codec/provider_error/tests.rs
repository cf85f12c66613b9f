use super::*;

fn msg(body: &str) -> (String, Option<String>, Option<String>) {
    let e = read(body.as_bytes()).unwrap_or_else(|| panic!("nothing read from {body}"));
    (e.message, e.param, e.kind)
}

#[test]
fn openai_and_llama_server_errors() {
    let (m, p, k) = msg(
        r#"{"error":{"message":"max_tokens is too large: 128000. This model supports at most 16384 completion tokens, whereas you provided 128000.","type":"invalid_request_error","param":"max_tokens","code":"invalid_value"}}"#,
    );
    assert!(m.starts_with("max_tokens is too large: 128000."), "{m}");
    assert_eq!(p.as_deref(), Some("max_tokens"));
    assert_eq!(k.as_deref(), Some("invalid_request_error"));
    // llama-server: a numeric code, its own type.
    let (m, p, k) = msg(
        r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":9000,"n_ctx":4096}}"#,
    );
    assert_eq!(
        m,
        "the request exceeds the available context size, try increasing it"
    );
    assert_eq!(p, None);
    assert_eq!(k.as_deref(), Some("exceed_context_size_error"));
    // A code and nothing else.
    assert_eq!(
        msg(r#"{"error":{"message":"","code":"model_not_found"}}"#).0,
        "model_not_found"
    );
}

#[test]
fn azure_content_filter_names_the_inner_code() {
    let (m, _, _) = msg(
        r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}"#,
    );
    assert!(m.ends_with("policy. (ResponsibleAIPolicyViolation)"), "{m}");
}

#[test]
fn mistral_object_message_with_a_pydantic_detail_list() {
    // The body from the issue: Mistral's 422 for a `reasoning_effort` it does not take.
    let (m, p, k) = msg(
        r#"{"object":"error","message":{"detail":[{"type":"enum","loc":["body","reasoning_effort"],"msg":"Input should be 'none' or 'high'","input":"medium","ctx":{"expected":"'none' or 'high'"}}]},"type":"invalid_request_error","param":null,"code":null}"#,
    );
    assert_eq!(
        m,
        "reasoning_effort: Input should be 'none' or 'high' (got 'medium')"
    );
    assert_eq!(p.as_deref(), Some("reasoning_effort"));
    assert_eq!(k.as_deref(), Some("invalid_request_error"));
    // Its string form, and the bare `detail` list of its 422s.
    assert_eq!(
        msg(r#"{"object":"error","message":"Invalid model: devstral-9","type":"invalid_model","param":null,"code":"1500"}"#).0,
        "Invalid model: devstral-9"
    );
    let (m, p, _) = msg(
        r#"{"detail":[{"type":"extra_forbidden","loc":["body","messages",1,"assistant","reasoning_content"],"msg":"Extra inputs are not permitted","input":"I think"}]}"#,
    );
    assert_eq!(
        m,
        "messages.1.assistant.reasoning_content: Extra inputs are not permitted (got 'I think')"
    );
    assert_eq!(p.as_deref(), Some("messages.1.assistant.reasoning_content"));
}

#[test]
fn pydantic_lists_are_bounded_and_long_inputs_left_out() {
    let long = "x".repeat(500);
    let entries: Vec<Value> = (0..8)
        .map(|i| serde_json::json!({"loc": ["body", "messages", i, "content"], "msg": "Field required", "input": long}))
        .collect();
    let body = serde_json::json!({ "detail": entries }).to_string();
    let (m, p, _) = msg(&body);
    assert!(!m.contains("xxxx"), "{m}");
    assert!(m.starts_with("messages.0.content: Field required; messages.1.content"));
    assert!(m.ends_with("; and 3 more"), "{m}");
    assert_eq!(p.as_deref(), Some("messages.0.content"));
    assert_eq!(msg(r#"{"detail":"Not Found"}"#).0, "Not Found");
}

#[test]
fn vllm_old_and_new_shapes() {
    let (m, _, k) = msg(
        r#"{"object":"error","message":"This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.","type":"BadRequestError","param":null,"code":400}"#,
    );
    assert!(m.starts_with("This model's maximum context length is 8192"));
    assert_eq!(k.as_deref(), Some("BadRequestError"));
    let (m, ..) = msg(
        r#"{"error":{"message":"max_tokens must be at least 1, got 0.","type":"BadRequestError","param":null,"code":400}}"#,
    );
    assert_eq!(m, "max_tokens must be at least 1, got 0.");
}

#[test]
fn anthropic_errors() {
    let (m, _, k) = msg(
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: 128000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-5"},"request_id":"req_011"}"#,
    );
    assert!(m.starts_with("max_tokens: 128000 > 64000"));
    assert_eq!(k.as_deref(), Some("invalid_request_error"));
}

#[test]
fn gemini_errors_with_field_violations_and_in_an_array() {
    let (m, p, k) = msg(
        r#"{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"foo\" at 'generation_config': Cannot find field.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"generation_config","description":"Invalid JSON payload received. Unknown name \"foo\" at 'generation_config': Cannot find field."}]}]}}"#,
    );
    assert!(m.starts_with("Invalid JSON payload received."), "{m}");
    // The field is in the message already: not repeated.
    assert_eq!(m.matches("generation_config").count(), 1, "{m}");
    assert_eq!(p.as_deref(), Some("generation_config"));
    assert_eq!(k.as_deref(), Some("INVALID_ARGUMENT"));
    let (m, p, _) = msg(
        r#"[{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT","details":[{"fieldViolations":[{"field":"contents[2].parts[0]","description":"Function call is missing a thought_signature"}]}]}}]"#,
    );
    assert_eq!(
        m,
        "Request contains an invalid argument. contents[2].parts[0]: Function call is missing a thought_signature"
    );
    assert_eq!(p.as_deref(), Some("contents[2].parts[0]"));
}

#[test]
fn bedrock_ollama_and_tgi_errors() {
    let (m, _, k) = msg(
        r#"{"message":"The maximum tokens you requested exceeds the model limit of 64000.","__type":"ValidationException"}"#,
    );
    assert!(m.starts_with("The maximum tokens you requested"));
    assert_eq!(k.as_deref(), Some("ValidationException"));
    assert_eq!(msg(r#"{"Message":"Bad"}"#).0, "Bad");
    assert_eq!(
        msg(r#"{"error":"model \"llama9\" not found, try pulling it first"}"#).0,
        "model \"llama9\" not found, try pulling it first"
    );
    let (m, _, k) = msg(
        r#"{"error":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096","error_type":"validation"}"#,
    );
    assert!(m.starts_with("Input validation error"));
    assert_eq!(k.as_deref(), Some("validation"));
}

#[test]
fn plain_text_but_not_pages_or_nothing() {
    assert_eq!(msg("upstream connect error").0, "upstream connect error");
    assert_eq!(read(b"<html><body>502 Bad Gateway</body></html>"), None);
    assert_eq!(read(b""), None);
    assert_eq!(read(br#"{"error":{}}"#), None);
    assert_eq!(read(br#"{"status":"bad"}"#), None);
    assert_eq!(read("x".repeat(MAX_TEXT + 1).as_bytes()), None);
}
