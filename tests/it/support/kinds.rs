//! The provider kinds the end-to-end tests (real clients in `clients.rs`, the Vercel AI SDK
//! in `frameworks.rs`, the Python SDKs in `sdk.rs`) run on: each kind's config, its strict
//! mock, a realistic model of it, and the path a provider call of it goes to.

use super::mock::{MockProvider, Profile};
use super::one_provider;
use super::play::Wire;

/// A provider kind the end-to-end clients run on: its config kind, its mock, the model a route sends
/// the client's requests to, and a tool-call id of the shape the provider writes.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    pub kind: &'static str,
    pub profile: Profile,
    pub model: &'static str,
    pub call_id: &'static str,
}

pub const OPENAI: Kind = Kind {
    kind: "openai",
    profile: Profile::OpenAi,
    // 32,768 output tokens at most.
    model: "gpt-4.1",
    call_id: "call_Xk2pQ9sLm4TzR8vB1nWc6yHd",
};

pub const AZURE: Kind = Kind {
    kind: "azure-openai",
    profile: Profile::Azure,
    // A deployment named after its model, as Azure's portal suggests.
    model: "gpt-4.1",
    call_id: "call_Az3pQ9sLm4TzR8vB1nWc6yHd",
};

pub const MISTRAL: Kind = Kind {
    kind: "mistral",
    profile: Profile::Mistral,
    // Takes only `none`/`high` as reasoning_effort (`two_level_models`).
    model: "devstral-2512",
    call_id: "Dk3p9QxZ1",
};

pub const ANTHROPIC: Kind = Kind {
    kind: "anthropic",
    profile: Profile::Anthropic,
    // 64,000 output tokens at most.
    model: "claude-sonnet-4-5",
    call_id: "toolu_01E2EPLAYxYz",
};

pub const GEMINI: Kind = Kind {
    kind: "gemini",
    profile: Profile::Gemini,
    // 65,536 output tokens at most; every function call signed, and the signature required
    // back in the next request.
    model: "gemini-3-pro-preview",
    call_id: "unused-gemini-has-no-call-ids",
};

pub const BEDROCK: Kind = Kind {
    kind: "bedrock",
    profile: Profile::Bedrock,
    // 64,000 output tokens at most.
    model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    call_id: "tooluse_kZ3pQ9sLm4TzR8vB1nW",
};

pub const OPENAI_COMPATIBLE: Kind = Kind {
    kind: "openai-compatible",
    profile: Profile::OpenAi,
    model: "qwen2.5-coder",
    call_id: "call_e2e1",
};

/// Every provider kind, in the order of the config reference.
pub const KINDS: [Kind; 7] = [
    OPENAI,
    AZURE,
    MISTRAL,
    ANTHROPIC,
    GEMINI,
    BEDROCK,
    OPENAI_COMPATIBLE,
];

/// The strict mock of the kind: OpenAI and Azure refuse what OpenAI itself refuses; Mistral's
/// model takes only `none`/`high` as its reasoning effort.
pub async fn mock(k: &Kind) -> MockProvider {
    let mock = MockProvider::start(k.profile).await;
    if k.profile == Profile::Mistral {
        mock.two_level_models(&[k.model]);
    }
    if matches!(k.kind, "openai" | "azure-openai") {
        mock.openai_itself();
    }
    mock
}

/// One provider `p` of the kind on the first mock, serving every model (Bedrock's signed
/// with the test environment's AWS credentials).
pub fn provider(k: &Kind) -> String {
    if k.kind == "bedrock" {
        "[server]\nstream_keepalive = \"2s\"\n[providers.p]\nkind = \"bedrock\"\nbase_url = \"{mock0}\"\nmodels = [\"*\"]\ntimeouts = { connect = \"1s\", first_byte = \"5s\", idle = \"3s\" }\n".to_owned()
    } else {
        one_provider(k.kind)
    }
}

/// The config: [`provider`], and a route from `models` (a pattern) to the kind's model.
pub fn config(k: &Kind, models: &str) -> String {
    format!(
        "{}[[routes]]\nmatch = {{ model = \"{models}\" }}\ntargets = [\"p/{}\"]\n",
        provider(k),
        k.model
    )
}

/// The path a provider call of this kind goes to, for its model.
pub fn expected_path(wire: Wire, k: &Kind, streamed: bool) -> String {
    match (wire, k.profile) {
        (Wire::Responses, _) => "/v1/responses".to_owned(),
        (Wire::Chat, Profile::Azure) => format!("/openai/deployments/{}/chat/completions", k.model),
        (Wire::Chat, _) => "/v1/chat/completions".to_owned(),
        (Wire::Anthropic, _) => "/v1/messages".to_owned(),
        (Wire::Gemini, _) => {
            let method = if streamed {
                "streamGenerateContent"
            } else {
                "generateContent"
            };
            format!("/v1beta/models/{}:{method}", k.model)
        }
        (Wire::Bedrock, _) => {
            let op = if streamed {
                "converse-stream"
            } else {
                "converse"
            };
            format!("/model/{}/{op}", k.model.replace(':', "%3A"))
        }
    }
}
