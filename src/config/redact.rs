//! Taking secrets out of text: the [`Redactor`] the config builds from its own secrets
//! (`LogSettings::redactor`), which `bodies` runs over kept request bodies, and
//! [`Redactor::provider_text`], which the executor runs over a provider's error message.
//!
//! It lives in `config`, beside [`Secret`], because the config holds it: the secrets it
//! looks for are the config's, and a reload builds a new one with the new config.

use regex::Regex;

use super::Secret;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Takes secrets out of text: every secret of the config (provider keys, AWS credentials,
/// the admin token, static virtual keys) wherever it appears; the values of JSON fields
/// whose names say they hold one (`api_key`, `authorization`, `password`, ...); and strings
/// shaped like well-known credentials (OpenAI, Anthropic and Gatehouse keys, AWS access key
/// ids, Google API keys, GitHub and Slack tokens, bearer tokens, JWTs, PEM private keys).
pub struct Redactor {
    secrets: Vec<Secret>,
    fields: Regex,
    shapes: Regex,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

/// Secrets shorter than this are not searched for (too likely to match ordinary text).
const MIN_SECRET_LEN: usize = 8;

/// JSON string fields whose value is a secret, whatever it looks like.
const FIELDS: &str = r#"(?i)("(?:api[_-]?key|x-api-key|x-goog-api-key|api[_-]?token|auth[_-]?token|access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret|secret[_-]?key|secret|password|passwd|authorization|private[_-]?key|session[_-]?token|aws[_-]?secret[_-]?access[_-]?key)"\s*:\s*")(?:[^"\\]|\\.)*""#;

/// Strings shaped like credentials.
const SHAPES: &str = concat!(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\z)",
    r"|\bsk-[A-Za-z0-9_\-]{16,}",
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"|\bAIza[0-9A-Za-z_\-]{35}",
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}",
    r"|\bgithub_pat_[A-Za-z0-9_]{30,}",
    r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}",
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
    r"|(?i:\bbearer\s+)[A-Za-z0-9._~+/=\-]{12,}",
);

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = Secret>) -> Self {
        let mut secrets: Vec<Secret> = secrets
            .into_iter()
            .filter(|s| s.expose().len() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a secret that contains another is taken whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.expose().len()));
        secrets.dedup();
        #[expect(
            clippy::expect_used,
            reason = "constant patterns, checked by the tests"
        )]
        Self {
            secrets,
            fields: Regex::new(FIELDS).expect("field pattern"),
            shapes: Regex::new(SHAPES).expect("shape pattern"),
        }
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        self.redact_also(text, &[])
    }

    /// [`Self::redact`], taking out `more` secrets besides the redactor's own.
    pub fn redact_also(&self, text: &str, more: &[&Secret]) -> String {
        let mut out = text.to_owned();
        let more = more
            .iter()
            .copied()
            .filter(|s| s.expose().len() >= MIN_SECRET_LEN);
        for s in self.secrets.iter().chain(more) {
            if out.contains(s.expose()) {
                out = out.replace(s.expose(), REDACTED);
            }
        }
        let out = self.fields.replace_all(&out, |c: &regex::Captures<'_>| {
            format!("{}{REDACTED}\"", &c[1])
        });
        self.shapes.replace_all(&out, REDACTED).into_owned()
    }

    /// Text a provider wrote (an error message, which may quote the key it was sent) with
    /// `secrets` and every credential-shaped string taken out.
    pub fn provider_text(text: &str, secrets: &[&Secret]) -> String {
        static SHAPES: std::sync::LazyLock<Redactor> = std::sync::LazyLock::new(Redactor::default);
        SHAPES.redact_also(text, secrets)
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        Redactor::new([Secret::new("my-provider-key-0001"), Secret::new("short")])
    }

    #[test]
    fn config_secrets_fields_and_shapes_are_redacted() {
        let r = redactor();
        let text = r#"{"messages":[{"content":"use my-provider-key-0001 and sk-ant-api03-abcdefghijklmnop1234 or AKIAIOSFODNN7EXAMPLE"}],"api_key":"hunter2","max_tokens":5,"Authorization":"Basic dXNlcjpwYXNz","note":"Bearer abc.def-ghi_jkl012 ok","short":"short"}"#;
        let out = r.redact(text);
        for gone in [
            "my-provider-key-0001",
            "sk-ant-api03",
            "AKIAIOSFODNN7EXAMPLE",
            "hunter2",
            "dXNlcjpwYXNz",
            "abc.def-ghi_jkl012",
        ] {
            assert!(!out.contains(gone), "{gone} left in {out}");
        }
        // Ordinary fields and short config secrets stay.
        assert!(out.contains(r#""max_tokens":5"#), "{out}");
        assert!(out.contains(r#""short":"short""#), "{out}");
        assert!(out.contains(r#""api_key":"[REDACTED]""#), "{out}");
        assert!(
            serde_json::from_str::<serde_json::Value>(&out).is_ok(),
            "{out}"
        );
    }

    #[test]
    fn tokens_jwts_and_private_keys_are_redacted() {
        let r = redactor();
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let pem =
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
        let text = format!(
            "token {jwt} key {pem} gh ghp_0123456789abcdefghijABCDEFGHIJ0123 google AIzaSyA-0123456789abcdefghijklmnopqrstu gate sk-gate-AbCdEf0123456789XyZ"
        );
        let out = r.redact(&text);
        for gone in [
            "eyJhbGci",
            "MIIEowIBAAKCAQEA",
            "ghp_0123",
            "AIzaSyA",
            "sk-gate-AbCd",
        ] {
            assert!(!out.contains(gone), "{gone} left in {out}");
        }
        assert!(
            out.starts_with("token [REDACTED] key [REDACTED] gh"),
            "{out}"
        );
    }
}
