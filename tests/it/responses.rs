//! OpenAI Responses API ingress (issue #5): translated for a Chat Completions provider and
//! for Anthropic, passed through to OpenAI, streamed in the complete event order, checked
//! against the event schemas of ../shared/specs/openai, stored per key and continued with
//! `previous_response_id`.

use serde_json::{Value, json};

use crate::support::mock::{chat_body, thinking_text_tool_stream};
use crate::support::*;

const KEY_A: &str = "sk-responses-key-a-000000001";
const KEY_B: &str = "sk-responses-key-b-000000002";

fn config(kind: &str) -> String {
    format!(
        "[server]\nstream_keepalive = \"2s\"\n\
         [providers.p]\nkind = \"{kind}\"\nbase_url = \"{{mock0}}\"\napi_key = \"${{MOCK_KEY}}\"\nmodels = [\"*\"]\n\
         [[keys]]\nname = \"a\"\nkey = \"{KEY_A}\"\n\
         [[keys]]\nname = \"b\"\nkey = \"{KEY_B}\"\n"
    )
}

async fn post(gw: &Gateway, key: &str, body: &Value) -> reqwest::Response {
    client()
        .post(gw.url("/v1/responses"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The events of a Responses stream, as (event name, data).
fn events(body: &str) -> Vec<(String, Value)> {
    sse_frames(body)
        .iter()
        .map(|f| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in f.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            assert_eq!(data["type"], name.as_str(), "{f}");
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn a_request_is_translated_and_its_stored_reply_is_visible_to_its_key_only() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.push(Reply::json(200, chat_body("Hello", 12, 3)));
    let gw = Gateway::start(&config("openai-compatible"), &[&mock]).await;
    let (status, r) = json_of(
        post(
            &gw,
            KEY_A,
            &json!({"model": "gpt-4o", "instructions": "be brief", "input": "hi", "max_output_tokens": 100,
                "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": "auto", "metadata": {"run": "1"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let sent = mock.last_request();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    );
    assert_eq!(sent.body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent.body["max_tokens"], 100);
    assert_eq!(r["object"], "response");
    assert!(r["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(r["status"], "completed");
    assert_eq!(r["output"][0]["type"], "message");
    assert_eq!(r["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(r["usage"]["total_tokens"], 15);
    assert_eq!(r["instructions"], "be brief");
    assert_eq!(r["metadata"], json!({"run": "1"}));
    if let Some(errors) = openai_spec::validate("Response", &r) {
        panic!("response violates the spec: {errors:#?}\n{r}");
    }

    let id = r["id"].as_str().unwrap();
    let get = |key: &'static str| {
        let url = gw.url(&format!("/v1/responses/{id}"));
        async move { json_of(client().get(url).bearer_auth(key).send().await.unwrap()).await }
    };
    let (status, again) = get(KEY_A).await;
    assert_eq!(status, 200);
    assert_eq!(again, r);
    let (status, other) = get(KEY_B).await;
    assert_eq!(status, 404, "another key sees nothing: {other}");
    let delete = |key: &'static str| {
        let url = gw.url(&format!("/v1/responses/{id}"));
        async move { json_of(client().delete(url).bearer_auth(key).send().await.unwrap()).await }
    };
    assert_eq!(delete(KEY_B).await.0, 404);
    let (status, gone) = delete(KEY_A).await;
    assert_eq!((status, gone["deleted"].clone()), (200, json!(true)));
    assert_eq!(get(KEY_A).await.0, 404);
}

#[tokio::test]
async fn previous_response_id_continues_the_conversation_across_streams() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.push(Reply::json(200, chat_body("first", 5, 1)));
    mock.push(Reply::stream(&["sec", "ond"]));
    mock.push(Reply::json(200, chat_body("third", 5, 1)));
    let gw = Gateway::start(&config("openai-compatible"), &[&mock]).await;
    let (_, r1) = json_of(
        post(
            &gw,
            KEY_A,
            &json!({"model": "m", "instructions": "one", "input": "q1"}),
        )
        .await,
    )
    .await;
    let r2 = post(
        &gw,
        KEY_A,
        &json!({"model": "m", "input": "q2", "stream": true, "previous_response_id": r1["id"]}),
    )
    .await;
    assert_eq!(r2.status(), 200);
    let evs = events(&r2.text().await.unwrap());
    let done = &evs.last().unwrap().1;
    assert_eq!(done["type"], "response.completed");
    let id2 = done["response"]["id"].as_str().unwrap().to_owned();
    // Continued at once: the streamed turn is found even if its write has not landed yet.
    let (status, _) = json_of(
        post(&gw, KEY_A, &json!({"model": "m", "input": [{"role": "user", "content": "q3"}], "previous_response_id": id2})).await,
    )
    .await;
    assert_eq!(status, 200);
    let sent = mock.requests();
    assert_eq!(
        sent[1].body["messages"],
        json!([{"role": "user", "content": "q1"}, {"role": "assistant", "content": "first"}, {"role": "user", "content": "q2"}]),
        "instructions apply to their own request only"
    );
    assert_eq!(
        sent[2].body["messages"],
        json!([{"role": "user", "content": "q1"}, {"role": "assistant", "content": "first"},
               {"role": "user", "content": "q2"}, {"role": "assistant", "content": "second"},
               {"role": "user", "content": "q3"}])
    );
    // Another key cannot continue it; an unknown id is a 404 naming the field.
    for (key, prev) in [(KEY_B, id2.as_str()), (KEY_A, "resp_unknown")] {
        let (status, e) = json_of(
            post(
                &gw,
                key,
                &json!({"model": "m", "input": "x", "previous_response_id": prev}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 404, "{e}");
        assert_eq!(e["error"]["param"], "previous_response_id");
    }
    assert_eq!(mock.calls(), 3);
}

#[tokio::test]
async fn item_references_name_items_the_key_stored_streamed_or_not() {
    // The Vercel AI SDK's second step: the assistant's earlier message by reference, then
    // the call and its output in full.
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.push(Reply::stream(&["Let me ", "check."]));
    mock.push(Reply::json(200, chat_body("Sunny.", 5, 1)));
    mock.push(Reply::json(200, chat_body("Again.", 5, 1)));
    let gw = Gateway::start(&config("openai-compatible"), &[&mock]).await;
    let first = post(
        &gw,
        KEY_A,
        &json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": "weather?"}]}], "stream": true}),
    )
    .await;
    let evs = events(&first.text().await.unwrap());
    let done = &evs.last().unwrap().1["response"];
    let msg_id = done["output"][0]["id"].as_str().unwrap().to_owned();
    assert!(msg_id.starts_with("msg_"), "{done}");
    // At once, as the SDK does: the streamed response's write may not have landed yet.
    let second = json!({"model": "m", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
        {"type": "item_reference", "id": msg_id},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}]});
    let (status, r2) = json_of(post(&gw, KEY_A, &second).await).await;
    assert_eq!(status, 200, "{r2}");
    let messages = &mock.requests()[1].body["messages"];
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"], "Let me check.", "{messages}");
    assert_eq!(
        messages[1]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(messages[2]["role"], "tool");

    // A third turn names the second's reply, which is read from the store (a reply that
    // was not streamed is stored before it is returned).
    let r2_msg = r2["output"][0]["id"].as_str().unwrap().to_owned();
    let third = json!({"model": "m", "input": [
        {"type": "item_reference", "id": msg_id},
        {"type": "item_reference", "id": r2_msg},
        {"role": "user", "content": "and tomorrow?"}]});
    let (status, r3) = json_of(post(&gw, KEY_A, &third).await).await;
    assert_eq!(status, 200, "{r3}");
    let messages = &mock.requests()[2].body["messages"];
    // Consecutive assistant items are one assistant turn, as the decoder reads any input.
    assert_eq!(
        messages,
        &json!([{"role": "assistant", "content": "Let me check.Sunny."},
                {"role": "user", "content": "and tomorrow?"}])
    );

    // Another key's item, or an unknown id: OpenAI's 404 for a missing item, naming it.
    for (key, id) in [(KEY_B, msg_id.as_str()), (KEY_A, "msg_unknown")] {
        let (status, e) = json_of(
            post(
                &gw,
                key,
                &json!({"model": "m", "input": [{"type": "item_reference", "id": id}]}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 404, "{e}");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert_eq!(e["error"]["param"], "input");
        assert_eq!(
            e["error"]["message"],
            format!("Item with id '{id}' not found.")
        );
    }
    assert_eq!(mock.calls(), 3);
}

#[tokio::test]
async fn store_false_keeps_nothing() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| Reply::json(200, chat_body("ok", 5, 1)));
    let gw = Gateway::start(&config("openai-compatible"), &[&mock]).await;
    let (_, r) = json_of(
        post(
            &gw,
            KEY_A,
            &json!({"model": "m", "input": "x", "store": false}),
        )
        .await,
    )
    .await;
    assert_eq!(r["store"], false);
    let url = gw.url(&format!("/v1/responses/{}", r["id"].as_str().unwrap()));
    assert_eq!(
        client()
            .get(url)
            .bearer_auth(KEY_A)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn a_stream_is_complete_ordered_and_valid_against_the_spec() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.push(thinking_text_tool_stream("call_w1"));
    let gw = Gateway::start(&config("openai-compatible"), &[&mock]).await;
    let r = post(
        &gw,
        KEY_A,
        &json!({"model": "m", "input": "weather in Paris?", "stream": true, "reasoning": {"summary": "auto"},
            "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let evs = events(&r.text().await.unwrap());
    let kinds: Vec<&str> = evs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (_, data)) in evs.iter().enumerate() {
        assert_eq!(data["sequence_number"], i);
        if let Some(errors) = openai_spec::validate("ResponseStreamEvent", data) {
            panic!("event {i} violates the spec: {errors:#?}\n{data}");
        }
    }
    let done = &evs.last().unwrap().1["response"];
    let output = done["output"].as_array().unwrap();
    assert_eq!(output[0]["summary"][0]["text"], "think");
    assert_eq!(output[1]["content"][0]["text"], "Let me check.");
    assert_eq!(output[2]["call_id"], "call_w1");
    assert_eq!(output[2]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(done["usage"]["input_tokens"], 40);
    assert_eq!(done["usage"]["output_tokens"], 12);
}

#[tokio::test]
async fn a_tool_round_trip_reaches_the_provider_as_tool_messages() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.push(Reply::json(200, chat_body("It is sunny.", 30, 5)));
    mock.push(Reply::json(200, chat_body("ok", 3, 1)));
    let gw = Gateway::start(&config("openai-compatible"), &[&mock]).await;
    let (status, _) = json_of(
        post(
            &gw,
            KEY_A,
            &json!({"model": "m", "store": false, "input": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are a shell agent."}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
                {"type": "reasoning", "id": "rs_1", "summary": [], "content": null, "encrypted_content": "opaque"},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}", "status": "completed"},
                {"type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "sunny"},
            ], "tools": [{"type": "function", "name": "get_weather", "strict": false, "parameters": {"type": "object"}},
                         {"type": "web_search", "external_web_access": true}],
            "include": ["reasoning.encrypted_content"], "prompt_cache_key": "session-1", "client_metadata": {"x": "y"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let m = &mock.last_request().body["messages"];
    assert_eq!(
        m[0]["role"], "system",
        "a generic server gets developer text as system"
    );
    assert_eq!(m[2]["role"], "assistant");
    assert_eq!(m[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        m[2]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Paris\"}"
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "sunny"})
    );
    let body = &mock.last_request().body;
    assert_eq!(
        body["tools"].as_array().unwrap().len(),
        1,
        "the hosted tool is dropped"
    );
    assert!(body.get("client_metadata").is_none() && body.get("include").is_none());
    assert_eq!(
        body["prompt_cache_key"], "session-1",
        "OpenAI's own field is kept"
    );
    let warned = mock.calls();
    let r = post(&gw, KEY_A, &json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}], "client_metadata": {}})).await;
    assert_eq!(
        r.headers()["x-gatehouse-warnings"],
        "tool web_search dropped: hosted by OpenAI, client_metadata dropped"
    );
    assert_eq!(mock.calls(), warned + 1);
}

#[tokio::test]
async fn a_failure_mid_stream_ends_with_error_and_response_failed() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.push(Reply::stream(&["partial", " text", " more"]).truncate_after(3));
    let gw = Gateway::start(&config("openai-compatible"), &[&mock]).await;
    let r = post(
        &gw,
        KEY_A,
        &json!({"model": "m", "input": "x", "stream": true}),
    )
    .await;
    let evs = events(&r.text().await.unwrap());
    let kinds: Vec<&str> = evs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["error", "response.failed"],
        "{kinds:?}"
    );
    let failed = &evs.last().unwrap().1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["output"][0]["content"][0]["text"], "partial text");
    for (_, data) in &evs {
        if let Some(errors) = openai_spec::validate("ResponseStreamEvent", data) {
            panic!("event violates the spec: {errors:#?}\n{data}");
        }
    }
}

#[tokio::test]
async fn errors_are_openai_errors_naming_the_field() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config("openai-compatible"), &[&mock]).await;
    for (body, param) in [
        (json!({"input": "x"}), "model"),
        (
            json!({"model": "m", "input": "x", "text": {"format": {"type": "xml"}}}),
            "text.format.type",
        ),
    ] {
        let (status, e) = json_of(post(&gw, KEY_A, &body).await).await;
        assert_eq!(status, 400, "{e}");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert_eq!(e["error"]["param"], param);
    }
    let r = client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "m", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(mock.calls(), 0);
}

#[tokio::test]
async fn anthropic_thinking_survives_a_round_trip_as_encrypted_content() {
    let mock = MockProvider::start(Profile::Anthropic).await;
    mock.push(Reply::json(
        200,
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "thinking", "thinking": "let me see", "signature": "EqSig=="},
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 20, "output_tokens": 10}}),
    ));
    mock.push(Reply::json(
        200,
        json!({"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 30, "output_tokens": 2}}),
    ));
    let gw = Gateway::start(&config("anthropic"), &[&mock]).await;
    let tools = json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let (status, r1) = json_of(
        post(&gw, KEY_A, &json!({"model": "claude-sonnet-4-5", "input": "weather?", "tools": tools, "reasoning": {"effort": "medium", "summary": "auto"}})).await,
    )
    .await;
    assert_eq!(status, 200, "{r1}");
    let out = r1["output"].as_array().unwrap();
    assert_eq!(out[0]["type"], "reasoning");
    assert_eq!(out[0]["encrypted_content"], "EqSig==");
    assert_eq!(out[1]["type"], "function_call");
    assert_eq!(out[1]["call_id"], "toolu_1");
    assert_eq!(out[1]["arguments"], "{\"city\":\"Paris\"}");
    // The client sends the items back with the tool's output (stateless, as Codex does).
    let mut input = vec![json!({"role": "user", "content": "weather?"})];
    input.extend(out.iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"}));
    let (status, r2) = json_of(
        post(
            &gw,
            KEY_A,
            &json!({"model": "claude-sonnet-4-5", "input": input, "tools": tools, "store": false,
            "reasoning": {"effort": "medium", "summary": "auto"}}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{r2}");
    let sent = &mock.last_request().body["messages"];
    assert_eq!(
        sent[1]["content"][0],
        json!({"type": "thinking", "thinking": "let me see", "signature": "EqSig=="})
    );
    assert_eq!(sent[1]["content"][1]["type"], "tool_use");
    assert_eq!(sent[2]["content"][0]["type"], "tool_result");
    assert_eq!(sent[2]["content"][0]["tool_use_id"], "toolu_1");
    assert_eq!(r2["output"][0]["content"][0]["text"], "Sunny.");
}

#[tokio::test]
async fn stored_responses_are_shared_by_instances_on_one_postgres() {
    let Some(url) = fresh_postgres().await else {
        return;
    };
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|b| {
        let n = b["messages"].as_array().map_or(0, Vec::len);
        Reply::json(200, chat_body(&format!("reply to {n} messages"), 5, 1))
    });
    let cfg = format!("{}[store]\nurl = \"{url}\"\n", config("openai-compatible"));
    let a = Gateway::start(&cfg, &[&mock]).await;
    let b = Gateway::start(&cfg, &[&mock]).await;
    let mut prev = Value::Null;
    let mut last_item = Value::Null;
    // Turns alternate between the instances: each continues what the other stored.
    for (i, gw) in [&a, &b, &a, &b].into_iter().enumerate() {
        let (status, r) = json_of(
            post(
                gw,
                KEY_A,
                &json!({"model": "m", "input": format!("q{i}"), "previous_response_id": prev}),
            )
            .await,
        )
        .await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(
            r["output"][0]["content"][0]["text"],
            format!("reply to {} messages", 2 * i + 1)
        );
        prev = r["id"].clone();
        last_item = r["output"][0]["id"].clone();
    }
    let id = prev.as_str().unwrap();
    // The last reply's message is found by reference on the other instance.
    let by_reference = json!({"model": "m", "input": [{"type": "item_reference", "id": last_item}, {"role": "user", "content": "more"}]});
    let (status, referring) = json_of(post(&a, KEY_A, &by_reference).await).await;
    assert_eq!(status, 200, "{referring}");
    assert_eq!(
        referring["output"][0]["content"][0]["text"],
        "reply to 2 messages"
    );
    // Read on one instance, deleted on the other, gone on the first.
    for (gw, method, key, want) in [
        (&a, http::Method::GET, KEY_A, 200),
        (&a, http::Method::GET, KEY_B, 404),
        (&b, http::Method::DELETE, KEY_A, 200),
        (&a, http::Method::GET, KEY_A, 404),
    ] {
        let r = client()
            .request(method.clone(), gw.url(&format!("/v1/responses/{id}")))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "{method} with key {key}");
    }
    // The item was also sent (resolved) in the by-reference turn, which is still stored: a
    // reference to it resolves from that turn now.
    let (status, e) = json_of(post(&a, KEY_A, &by_reference).await).await;
    assert_eq!(status, 200, "{e}");
    // Once every response that held it is deleted, it is gone.
    for held in [&referring["id"], &e["id"]] {
        let r = client()
            .delete(b.url(&format!("/v1/responses/{}", held.as_str().unwrap())))
            .bearer_auth(KEY_A)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let (status, e) = json_of(post(&a, KEY_A, &by_reference).await).await;
    assert_eq!(status, 404, "{e}");
}

#[tokio::test]
async fn a_gateway_without_keys_stores_for_anonymous_callers() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    mock.respond_with(|_| Reply::json(200, chat_body("ok", 5, 1)));
    let gw = Gateway::start(&one_provider("openai-compatible"), &[&mock]).await;
    let r: Value = client()
        .post(gw.url("/openai/v1/responses"))
        .json(&json!({"model": "m", "input": "x"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = gw.url(&format!(
        "/openai/v1/responses/{}",
        r["id"].as_str().unwrap()
    ));
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    assert_eq!(client().delete(&url).send().await.unwrap().status(), 200);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 404);
}

/// A response object as OpenAI writes it.
fn openai_response(id: &str, text: &str) -> Value {
    json!({"id": id, "object": "response", "created_at": 1_700_000_000, "status": "completed",
        "error": null, "incomplete_details": null, "instructions": null, "model": "gpt-5-2025-08-07",
        "output": [{"id": format!("msg_{id}"), "type": "message", "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}],
        "parallel_tool_calls": true, "metadata": {}, "tool_choice": "auto", "tools": [], "temperature": 1.0, "top_p": 1.0,
        "usage": {"input_tokens": 21, "input_tokens_details": {"cached_tokens": 7}, "output_tokens": 4,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 25}})
}

#[tokio::test]
async fn openai_gets_the_request_as_it_came_and_the_gateway_keeps_the_chain() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let first = openai_response("resp_up1", "one");
    let reply = serde_json::to_string(&first).unwrap();
    mock.push(Reply::json(200, first.clone()));
    mock.push(Reply::json(200, openai_response("resp_up2", "two")));
    let gw = Gateway::start(&config("openai"), &[&mock]).await;
    let body = r#"{"model":"gpt-5","input":"q1","reasoning":{"effort":"low"},"x-future-field":{"kept":true},"temperature":0.50,"tools":[{"type":"web_search"}]}"#;
    let r = client()
        .post(gw.url("/v1/responses"))
        .bearer_auth(KEY_A)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("x-gatehouse-warnings").is_none(),
        "nothing is dropped for OpenAI"
    );
    assert_eq!(
        r.text().await.unwrap(),
        reply,
        "the reply is relayed byte for byte"
    );
    let sent = mock.last_request();
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(
        std::str::from_utf8(&sent.raw).unwrap(),
        body,
        "the body is sent as it came"
    );
    // Stored under OpenAI's id, and continued by the gateway itself.
    let got: Value = client()
        .get(gw.url("/v1/responses/resp_up1"))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, first);
    let (status, _) = json_of(
        post(
            &gw,
            KEY_A,
            &json!({"model": "gpt-5", "input": "q2", "previous_response_id": "resp_up1"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    let sent = mock.last_request().body;
    assert!(sent.get("previous_response_id").is_none(), "{sent}");
    assert_eq!(
        sent["input"][0],
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "q1"}]})
    );
    assert_eq!(sent["input"][1]["id"], "msg_resp_up1");
    assert_eq!(sent["input"][2], json!({"role": "user", "content": "q2"}));
    gw.flush_records().await;
    let usage = usage_of(&gw, KEY_A).await;
    assert_eq!(
        usage["periods"]["day"]["input_tokens"], 42,
        "both replies' usage counted: {usage}"
    );
    assert_eq!(usage["periods"]["day"]["output_tokens"], 8, "{usage}");
}

#[tokio::test]
async fn openai_streams_are_relayed_event_for_event() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let done = openai_response("resp_up3", "Hi");
    let mut events = vec![
        (
            "response.created",
            json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_up3", "status": "in_progress"}}),
        ),
        (
            "response.output_text.delta",
            json!({"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Hi", "logprobs": [], "obfuscation": "x1"}),
        ),
    ];
    events.push((
        "response.completed",
        json!({"type": "response.completed", "sequence_number": 2, "response": done}),
    ));
    let text: String = events
        .iter()
        .map(|(n, d)| format!("event: {n}\ndata: {d}\n\n"))
        .collect();
    mock.push(Reply {
        body: crate::support::mock::Body::SseText(text.clone()),
        ..Reply::json(200, Value::Null)
    });
    let gw = Gateway::start(&config("openai"), &[&mock]).await;
    let r = post(
        &gw,
        KEY_A,
        &json!({"model": "gpt-5", "input": "hi", "stream": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        text,
        "relayed as OpenAI wrote it, with nothing added"
    );
    assert_eq!(mock.last_request().body.get("stream_options"), None);
    let got = eventually(std::time::Duration::from_secs(5), || async {
        let r = client()
            .get(gw.url("/v1/responses/resp_up3"))
            .bearer_auth(KEY_A)
            .send()
            .await
            .unwrap();
        (r.status() == 200).then_some(())
    })
    .await;
    assert!(got.is_some(), "the streamed response was stored");
    gw.flush_records().await;
    let usage = usage_of(&gw, KEY_A).await;
    assert_eq!(usage["periods"]["day"]["input_tokens"], 21, "{usage}");
    assert_eq!(usage["periods"]["day"]["output_tokens"], 4, "{usage}");
}
