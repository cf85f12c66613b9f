//! Config files: TOML text through `config::parse` (syntax, shape with unknown keys, then
//! validation with `${VAR}` expansion), and on success the structures a reload builds from
//! it without I/O (key ring, directory of teams and users, provider adapters).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::config;

/// The environment `${VAR}` references see: a provider key, a URL, an empty value.
fn env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        [
            ("OPENAI_API_KEY", "sk-fuzz-openai"),
            ("ANTHROPIC_API_KEY", "sk-ant-fuzz"),
            ("LOCAL_URL", "http://127.0.0.1:11434/v1"),
            ("EMPTY", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    })
}

/// A config file's text. Parsing is deterministic: the same text gives the same errors (with
/// their positions) twice. Text that is not UTF-8 is refused before it reaches the parser
/// (`config::load` reads the file as a string), so it is read lossily here to reach it.
pub fn config_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let first = config::parse("fuzz.toml", &text, env());
    match &first {
        Ok(c) => {
            let _ = crate::governance::keys::KeyRing::build(c, &[]);
            let _ = crate::governance::directory::Directory::build(c, &Default::default());
            for p in &c.providers {
                let _ = crate::providers::adapter_for(p);
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a config refused without an error");
            for e in errors {
                let _ = e.to_string();
            }
        }
    }
    let again = config::parse("fuzz.toml", &text, env());
    assert!(
        again.as_ref().err() == first.as_ref().err() && again.is_ok() == first.is_ok(),
        "the same config text parsed differently twice"
    );
}
