//! Taking secrets out of text: the [`Redactor`] the config builds from its own secrets
//! (`LogSettings::redactor`), which `bodies` runs over kept request bodies, and the one
//! process-wide redactor ([`live`]) that everything else leaving the process passes
//! through: a provider's error text on its way to a client and the request log
//! ([`Redactor::provider_text`]), every log line at every level ([`LogWriter`]), the
//! metrics exposition and the spans of traces.
//!
//! It lives in `config`, beside [`Secret`], because the config holds it: the secrets it
//! looks for are the config's, and a reload builds a new one with the new config. Every
//! config this process builds adds its secrets to [`live`] (a secret a reload removed is
//! still taken out: a line about a request that ran before the reload may carry it).

use std::borrow::Cow;
use std::sync::{Arc, LazyLock, Mutex};

use aho_corasick::{AhoCorasick, MatchKind};
use arc_swap::ArcSwap;
use regex::{Regex, RegexSet};

use super::Secret;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Takes secrets out of text: every secret of the config (provider keys, AWS credentials,
/// the admin token, static virtual keys, secret-named provider and trace headers, the Redis
/// URL, the alert webhook), as written and as JSON or a URL would escape it, wherever it
/// appears; the values of JSON fields whose names say they hold one (`api_key`,
/// `authorization`, `password`, ...), of headers written as text (`x-api-key: ...`) and of
/// URL query parameters that carry one (Gemini's `?key=`); and strings shaped like
/// well-known credentials (OpenAI, Anthropic and Gatehouse keys, AWS access key ids, Google
/// API keys, GitHub and Slack tokens, bearer and basic credentials, JWTs, PEM private keys).
pub struct Redactor {
    secrets: Vec<Secret>,
    /// Every form of every secret, longest first (leftmost-longest matching).
    exact: Option<AhoCorasick>,
    fields: Regex,
    headers: Regex,
    query: Regex,
    userinfo: Regex,
    shapes: Regex,
    /// The five patterns above at once: one scan tells whether any of them is in a text, so
    /// the common text with none (a model name, a log line) costs one pass, not five.
    any: RegexSet,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

/// Secrets shorter than this are not searched for (too likely to match ordinary text).
const MIN_SECRET_LEN: usize = 8;

/// JSON string fields whose value is a secret, whatever it looks like.
const FIELDS: &str = r#"(?i)("(?:api[_-]?key|x-api-key|x-goog-api-key|api[_-]?token|auth[_-]?token|access[_-]?token|refresh[_-]?token|id[_-]?token|client[_-]?secret|secret[_-]?key|secret|password|passwd|authorization|proxy-authorization|private[_-]?key|session[_-]?token|x-amz-security-token|aws[_-]?secret[_-]?access[_-]?key)"\s*:\s*")(?:[^"\\]|\\.)*""#;

/// Credential headers written as text (`x-api-key: abc`, `Authorization=Basic abc`, a
/// provider's `Invalid header 'x-goog-api-key': 'abc'`): the value after the name.
const HEADERS: &str = r#"(?i)(\b(?:x-api-key|x-goog-api-key|api-key|authorization|proxy-authorization|x-amz-security-token)['"]?\s*[:=]\s*['"]?)(?:(?:bearer|basic|token|digest)\s+)?[^\s'",;}\[\]]{4,}"#;

/// URL query parameters that carry a credential (Gemini's `?key=`, presigned URLs).
const QUERY: &str = r##"(?i)([?&](?:key|api[_-]?key|access[_-]?token|token|auth|x-amz-security-token|x-amz-signature|x-amz-credential|sig|signature)=)[^&\s'"#<>]+"##;

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
    r"|(?i:\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=\-]{12,}",
);

/// The password of a URL's user info (`redis://user:password@host`).
const USERINFO: &str = r"(?i)(\b[a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^/\s@]+@";

/// The forms a secret may take in text: as written, as a JSON string escapes it, and as a
/// URL's query or path encodes it.
fn forms(s: &str) -> Vec<String> {
    let mut out = vec![s.to_owned()];
    if let Ok(json) = serde_json::to_string(s) {
        out.push(json[1..json.len() - 1].to_owned());
    }
    let mut encoded = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    out.push(encoded);
    out.sort();
    out.dedup();
    out
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = Secret>) -> Self {
        let mut secrets: Vec<Secret> = secrets
            .into_iter()
            .filter(|s| s.expose().len() >= MIN_SECRET_LEN)
            .collect();
        secrets.sort_by(|a, b| a.expose().cmp(b.expose()));
        secrets.dedup();
        let patterns: Vec<String> = secrets.iter().flat_map(|s| forms(s.expose())).collect();
        #[expect(
            clippy::expect_used,
            reason = "constant patterns, checked by the tests"
        )]
        Self {
            exact: (!patterns.is_empty())
                .then(|| {
                    AhoCorasick::builder()
                        .match_kind(MatchKind::LeftmostLongest)
                        .build(&patterns)
                        .ok()
                })
                .flatten(),
            secrets,
            fields: Regex::new(FIELDS).expect("field pattern"),
            headers: Regex::new(HEADERS).expect("header pattern"),
            query: Regex::new(QUERY).expect("query pattern"),
            userinfo: Regex::new(USERINFO).expect("user info pattern"),
            shapes: Regex::new(SHAPES).expect("shape pattern"),
            any: RegexSet::new([FIELDS, HEADERS, QUERY, USERINFO, SHAPES]).expect("patterns"),
        }
    }

    /// The secrets this redactor looks for.
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        self.redact_cow(text).into_owned()
    }

    /// [`Self::redact`], taking out `more` secrets besides the redactor's own.
    pub fn redact_also(&self, text: &str, more: &[&Secret]) -> String {
        let mut out = self.redact_cow(text).into_owned();
        for s in more.iter().filter(|s| s.expose().len() >= MIN_SECRET_LEN) {
            for f in forms(s.expose()) {
                if out.contains(&f) {
                    out = out.replace(&f, REDACTED);
                }
            }
        }
        out
    }

    /// [`Self::redact`] of a string the caller owns: kept as it is when it holds no secret.
    pub fn redact_owned(&self, text: String) -> String {
        let changed = match self.redact_cow(&text) {
            Cow::Owned(o) => Some(o),
            Cow::Borrowed(_) => None,
        };
        changed.unwrap_or(text)
    }

    /// [`Self::redact`], borrowing `text` back when it holds no secret (the common case of
    /// a log line or a model name: no copy).
    pub fn redact_cow<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = match &self.exact {
            Some(ac) if ac.is_match(text) => {
                Cow::Owned(ac.replace_all(text, &vec![REDACTED; ac.patterns_len()]))
            }
            _ => Cow::Borrowed(text),
        };
        if !self.any.is_match(&out) {
            return out;
        }
        let keep = |prefix: &str, end: &str| format!("{prefix}{REDACTED}{end}");
        let steps: [(&Regex, &str); 4] = [
            (&self.fields, "\""),
            (&self.headers, ""),
            (&self.query, ""),
            (&self.userinfo, "@"),
        ];
        for (re, end) in steps {
            if let Cow::Owned(s) = re.replace_all(&out, |c: &regex::Captures<'_>| keep(&c[1], end))
            {
                out = Cow::Owned(s);
            }
        }
        if let Cow::Owned(s) = self.shapes.replace_all(&out, REDACTED) {
            out = Cow::Owned(s);
        }
        out
    }

    /// Text a provider wrote (an error message, which may quote the key it was sent, or the
    /// header that carried it) with `secrets`, every secret of every config this process
    /// built ([`live`]) and every credential-shaped string taken out.
    pub fn provider_text(text: &str, secrets: &[&Secret]) -> String {
        live().redact_also(text, secrets)
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// The process-wide redactor: the secrets of every config built in this process.
static LIVE: LazyLock<ArcSwap<Redactor>> =
    LazyLock::new(|| ArcSwap::from_pointee(Redactor::default()));

/// The redactor that logs, metrics, traces and provider text pass through.
pub fn live() -> Arc<Redactor> {
    LIVE.load_full()
}

/// Add `secrets` to the [`live`] redactor (a config was built).
pub fn publish(secrets: &[Secret]) {
    static WRITER: Mutex<()> = Mutex::new(());
    let _one = WRITER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let current = LIVE.load();
    let fresh: Vec<&Secret> = secrets
        .iter()
        .filter(|s| s.expose().len() >= MIN_SECRET_LEN)
        .filter(|s| {
            current
                .secrets
                .binary_search_by(|c| c.expose().cmp(s.expose()))
                .is_err()
        })
        .collect();
    if fresh.is_empty() {
        return;
    }
    let all = current.secrets.iter().chain(fresh).cloned();
    LIVE.store(Arc::new(Redactor::new(all.collect::<Vec<_>>())));
}

/// A `tracing-subscriber` writer that passes every log line through the [`live`] redactor
/// before it reaches `W` (standard error for the gateway): whatever a line holds, a field
/// of ours, a provider's words or a dependency's debug output of headers, no secret leaves.
/// The formatter writes each event with one `write_all`, so a line is redacted whole.
pub struct LogWriter<W> {
    inner: W,
}

impl<W> LogWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner }
    }
}

impl<W: std::io::Write> std::io::Write for LogWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner.write_all(live().redact_cow(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<'a, M> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter<M>
where
    M: tracing_subscriber::fmt::MakeWriter<'a>,
{
    type Writer = LogWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter::new(self.inner.make_writer())
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
    #[test]
    fn headers_query_parameters_and_url_passwords_are_redacted() {
        let r = Redactor::default();
        let text = "Authorization: Bearer abcdefghijklmnop, x-api-key: plainkey123, x-goog-api-key='gk-777777', api-key=azurekey99 \
            at https://generativelanguage.googleapis.com/v1beta/models/m:generateContent?alt=sse&key=gemkey0001 \
            and redis://default:hunter2pass@cache:6379/0";
        let out = r.redact(text);
        for gone in [
            "abcdefghijklmnop",
            "plainkey123",
            "gk-777777",
            "azurekey99",
            "gemkey0001",
            "hunter2pass",
        ] {
            assert!(!out.contains(gone), "{gone} left in {out}");
        }
        assert!(out.contains("?alt=sse&key=[REDACTED]"), "{out}");
        assert!(
            out.contains("redis://default:[REDACTED]@cache:6379/0"),
            "{out}"
        );
    }

    #[test]
    fn redacting_twice_changes_nothing_more() {
        let r = Redactor::new([Secret::new("canary-key-0123456789")]);
        let text = "Incorrect API key: canary-key-0123456789; Authorization: Bearer canary-key-0123456789, x-api-key: canary-key-0123456789 https://h/p?key=canary-key-0123456789&x=1";
        let once = r.redact(text);
        assert!(!once.contains("canary-key"), "{once}");
        assert_eq!(r.redact(&once), once);
        assert!(!once.contains("]]"), "{once}");
    }

    #[test]
    fn a_secret_is_found_as_json_and_a_url_escape_it() {
        let r = Redactor::new([Secret::new("pa/ss\"word+1234")]);
        let json = serde_json::to_string(&serde_json::json!({"note": "pa/ss\"word+1234"})).unwrap();
        assert!(!r.redact(&json).contains("word+1234"), "{json}");
        assert!(!r.redact("u=pa%2Fss%22word%2B1234").contains("word"));
        // Unchanged text is borrowed, not copied.
        assert!(matches!(r.redact_cow("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn published_secrets_reach_the_live_redactor_and_the_log_writer() {
        publish(&[Secret::new("published-canary-0001")]);
        publish(&[Secret::new("published-canary-0002")]);
        let live = live();
        let out = live.redact("a published-canary-0001 b published-canary-0002");
        assert_eq!(out, "a [REDACTED] b [REDACTED]");
        let mut buf = Vec::new();
        {
            let mut w = LogWriter::new(&mut buf);
            std::io::Write::write_all(&mut w, b"line with published-canary-0002\n").unwrap();
        }
        assert_eq!(String::from_utf8(buf).unwrap(), "line with [REDACTED]\n");
    }
}
