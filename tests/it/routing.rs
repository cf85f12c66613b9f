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

const SPLIT: &str = r#"
[providers.a]
kind = "openai-compatible"
base_url = "{mock0}"
[providers.b]
kind = "openai-compatible"
base_url = "{mock1}"
[providers.shadow]
kind = "openai-compatible"
base_url = "{mock2}"
[[routes]]
name = "sticky"
match = { model = "s" }
split = [{ target = "a/m", weight = 50 }, { target = "b/m", weight = 50 }]
sticky = { header = "x-session" }
[[routes]]
name = "ab"
match = { model = "m" }
split = [{ target = "a/m", weight = 80 }, { target = "b/m", weight = 20 }]
mirror = { target = "shadow/candidate", sample = 1.0, budget = { tokens = 40, period = "daily" } }
"#;

#[tokio::test]
async fn splits_follow_their_weights_and_stick_when_asked() {
    let (a, b, c) = (
        MockProvider::start(Profile::OpenAi).await,
        MockProvider::start(Profile::OpenAi).await,
        MockProvider::start(Profile::OpenAi).await,
    );
    let gw = Gateway::start(SPLIT, &[&a, &b, &c]).await;
    // The same session always lands on the same side; sessions spread over both.
    let mut sides = std::collections::HashMap::new();
    for session in 0..40 {
        for _ in 0..3 {
            let r = client()
                .post(gw.url("/v1/chat/completions"))
                .header("x-session", format!("session-{session}"))
                .json(&chat_req("s", false))
                .send()
                .await
                .unwrap();
            let p = r.headers()["x-gatehouse-provider"]
                .to_str()
                .unwrap()
                .to_owned();
            let first = sides.entry(session).or_insert_with(|| p.clone());
            assert_eq!(*first, p, "session {session} moved");
        }
    }
    let on_a = sides.values().filter(|p| *p == "a").count();
    assert!((8..=32).contains(&on_a), "40 sessions, {on_a} on a");
}

#[tokio::test]
async fn a_mirror_copies_without_touching_the_reply_and_within_its_budget() {
    let (a, b, c) = (
        MockProvider::start(Profile::OpenAi).await,
        MockProvider::start(Profile::OpenAi).await,
        MockProvider::start(Profile::OpenAi).await,
    );
    let primary = |body: &serde_json::Value| {
        if body["stream"] == true {
            Reply::stream(&["primary ", "says hi"])
        } else {
            Reply::json(200, chat_body("primary says hi", 5, 3))
        }
    };
    a.respond_with(primary);
    b.respond_with(primary);
    // The shadow is slow and answers differently; neither may show in the reply.
    c.respond_with(|_| {
        Reply::json(200, chat_body("shadow says hello", 5, 4))
            .delay(std::time::Duration::from_millis(700))
    });
    let gw = Gateway::start(SPLIT, &[&a, &b, &c]).await;
    let started = tokio::time::Instant::now();
    let r = gw
        .chat(
            &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-gatehouse-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = r.text().await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_millis(600),
        "the shadow delayed the reply"
    );
    assert!(!body.contains("shadow"), "{body}");
    // The shadow's record sits beside the primary's: output, usage, latency.
    let store = gw.state.store().clone();
    let shadow_id = eventually(std::time::Duration::from_secs(5), || async {
        store.mirrors_of(&id).await.unwrap().into_iter().next()
    })
    .await
    .expect("the shadow's record");
    let shadow = eventually(std::time::Duration::from_secs(5), || async {
        store.usage_record(&shadow_id).await.unwrap()
    })
    .await
    .unwrap();
    assert_eq!(shadow.provider.as_deref(), Some("shadow"));
    assert_eq!(shadow.model.as_deref(), Some("candidate"));
    assert_eq!(shadow.output.as_deref(), Some("shadow says hello"));
    assert_eq!((shadow.input_tokens, shadow.output_tokens), (5, 4));
    assert_eq!(shadow.mirror_route.as_deref(), Some("ab"));
    assert_eq!(
        shadow.key_id, None,
        "the caller's budgets never count a shadow"
    );
    assert!(shadow.latency_ms.unwrap() >= 700);
    let primary = store.usage_record(&id).await.unwrap().unwrap();
    assert_eq!(primary.output.as_deref(), Some("primary says hi"));
    let shadow_req = c.last_request();
    assert_eq!(shadow_req.body["model"], "candidate");
    assert_eq!(
        shadow_req.body["stream"],
        serde_json::Value::Null,
        "a shadow asks for a whole reply"
    );

    // Its budget (40 tokens a day) is spent after some shadows: the primary goes on.
    for _ in 0..12 {
        assert_eq!(gw.chat(&chat_req("m", false)).await.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    // Every shadow sent or refused.
    background_done().await;
    let shadows = c.calls();
    assert!(shadows < 13, "{shadows} shadows went out past their budget");
    assert!(shadows >= 2, "{shadows}");
}

/// The README's routing recipes are whole, valid config files.
#[test]
fn readme_recipes_are_valid_configs() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("### Routing recipes")
        .expect("the recipes section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let env: std::collections::HashMap<String, String> = [
        "MISTRAL_API_KEY",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "ALICE_KEY",
        "BOB_KEY",
    ]
    .iter()
    .map(|k| ((*k).to_owned(), format!("sk-recipe-placeholder-{k}")))
    .collect();
    let mut n = 0;
    for block in section.split("```toml\n").skip(1) {
        let text = &block[..block.find("```").unwrap()];
        gatehouse::config::parse("README.md", text, &env)
            .unwrap_or_else(|e| panic!("recipe {n} is invalid: {e:#?}\n{text}"));
        n += 1;
    }
    assert_eq!(n, 4, "four recipes");
}
