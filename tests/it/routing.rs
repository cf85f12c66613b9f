//! Routing rules that test more than the model, through the gateway: a request header, the
//! caller's key and team, a tag and the estimated input size.

use serde_json::json;

use crate::support::mock::chat_body;
use crate::support::*;

const ALICE: &str = "sk-route-alice-0123456789";
const BOB: &str = "sk-route-bob-0123456789";

#[tokio::test]
async fn rules_route_by_header_key_team_tag_and_input_size() {
    let a = MockProvider::start(Profile::OpenAi).await;
    let b = MockProvider::start(Profile::OpenAi).await;
    a.respond_with(|_| Reply::json(200, chat_body("a", 1, 1)));
    b.respond_with(|_| Reply::json(200, chat_body("b", 1, 1)));
    let text = format!(
        "[providers.a]\nkind = \"openai-compatible\"\nbase_url = \"{{mock0}}\"\nmodels = []\n\
         [providers.b]\nkind = \"openai-compatible\"\nbase_url = \"{{mock1}}\"\nmodels = []\n\
         [[routes]]\nmatch = {{ model = \"m\", header = {{ \"x-env\" = \"staging\" }} }}\ntargets = [\"b/staging\"]\n\
         [[routes]]\nmatch = {{ model = \"m\", key = \"bob\" }}\ntargets = [\"b/bob\"]\n\
         [[routes]]\nmatch = {{ model = \"m\", team = \"ml\", tag = \"feature=*\" }}\ntargets = [\"b/tagged\"]\n\
         [[routes]]\nmatch = {{ model = \"m\", min_input_tokens = 1000 }}\ntargets = [\"b/long\"]\n\
         [[routes]]\nmatch = {{ model = \"m\" }}\ntargets = [\"a/default\"]\n\
         [teams.ml]\n\
         [[keys]]\nname = \"alice\"\nkey = \"{ALICE}\"\nteam = \"ml\"\n\
         [[keys]]\nname = \"bob\"\nkey = \"{BOB}\"\n"
    );
    let gw = Gateway::start(&text, &[&a, &b]).await;
    let send = |key: &'static str, headers: Vec<(&'static str, &'static str)>, content: String| {
        let gw = &gw;
        async move {
            let mut r = client()
                .post(gw.url("/v1/chat/completions"))
                .bearer_auth(key)
                .json(&json!({"model": "m", "messages": [{"role": "user", "content": content}]}));
            for (h, v) in headers {
                r = r.header(h, v);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.headers()["x-gatehouse-model"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(send(ALICE, vec![], "hi".into()).await, "default");
    assert_eq!(
        send(ALICE, vec![("x-env", "staging")], "hi".into()).await,
        "staging"
    );
    assert_eq!(send(BOB, vec![], "hi".into()).await, "bob");
    assert_eq!(
        send(
            ALICE,
            vec![("x-gatehouse-tags", "feature=search")],
            "hi".into()
        )
        .await,
        "tagged"
    );
    assert_eq!(send(ALICE, vec![], "word ".repeat(2_000)).await, "long");
    assert_eq!(b.last_request().body["model"], "long");
}

#[test]
fn bad_conditions_are_reported() {
    let text = "[providers.a]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:1/v1\"\n\
        [[routes]]\nmatch = { model = \"m\", header = { \"bad header\" = \"x\" }, min_input_tokens = 10, max_input_tokens = 5, colour = \"red\" }\ntargets = [\"a\"]\n";
    let errs = gatehouse::config::parse(
        "r.toml",
        text,
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap_err();
    let all = errs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(all.contains("invalid header name `bad header`"), "{all}");
    assert!(
        all.contains("min_input_tokens is above max_input_tokens"),
        "{all}"
    );
    assert!(all.contains("unknown key `routes.0.match.colour`"), "{all}");
}
