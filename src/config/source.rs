//! The config file as text: positions, `${VAR}` expansion, durations, and locating keys.
//!
//! Every error the config loader reports is a [`ConfigError`] naming `file:line:col`, so that
//! `gatehouse check` can print all of them at once and an editor can jump to each.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

/// One problem in the configuration, with its position (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

/// Where configuration values come from: the process environment, or a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// The text being loaded and the errors found in it so far.
pub struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub env: &'a dyn Env,
    pub errors: Vec<ConfigError>,
}

impl<'a> Source<'a> {
    pub fn new(file: &'a str, text: &'a str, env: &'a dyn Env) -> Self {
        Self {
            file,
            text,
            env,
            errors: Vec::new(),
        }
    }

    /// Record an error at a byte offset of the text.
    pub fn error_at(&mut self, offset: usize, message: impl Into<String>) {
        let (line, col) = line_col(self.text, offset);
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            col,
            message: message.into(),
        });
    }

    pub fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.error_at(span.start, message);
    }

    /// Expand `${NAME}` references in a string value; `$$` is a literal `$`. A missing
    /// variable is an error naming it (its value, when present, is never echoed anywhere).
    pub fn expand(&mut self, value: &toml::Spanned<String>) -> String {
        let raw = value.get_ref();
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw.as_str();
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('{') {
                let Some(end) = body.find('}') else {
                    self.error(&value.span(), "unterminated `${` in string");
                    return out;
                };
                let name = &body[..end];
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    self.error(
                        &value.span(),
                        format!("invalid variable name `${{{name}}}`"),
                    );
                } else if let Some(v) = self.env.var(name) {
                    out.push_str(&v);
                } else {
                    self.error(
                        &value.span(),
                        format!("environment variable `{name}` is not set"),
                    );
                }
                rest = &body[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        out
    }

    /// Expand and parse a duration such as `500ms`, `30s`, `5m`, `1h`.
    ///
    /// Error messages quote the value as written (`${VAR}` unexpanded), never its expansion,
    /// which may hold a secret; the same rule holds throughout the loader.
    pub fn duration(&mut self, value: &toml::Spanned<String>) -> Option<Duration> {
        let s = self.expand(value);
        match parse_duration(&s) {
            Some(d) => Some(d),
            None => {
                self.error(
                    &value.span(),
                    format!(
                        "invalid duration `{}`: expected e.g. `200us`, `500ms`, `30s`, `5m` or `1h`",
                        value.get_ref()
                    ),
                );
                None
            }
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "us" => n / 1_000_000.0,
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => return None,
    };
    // `try_`: a value too large for a Duration is an error, not a panic.
    Duration::try_from_secs_f64(secs).ok()
}

/// One step of a path to a key, as `serde_ignored` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Turn a `serde_ignored` path into segments, outermost first.
pub fn segments(path: &serde_ignored::Path<'_>) -> Vec<Segment> {
    use serde_ignored::Path;
    let mut out = match path {
        Path::Root => return Vec::new(),
        Path::Seq { parent, .. }
        | Path::Map { parent, .. }
        | Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments(parent),
    };
    match path {
        Path::Seq { index, .. } => out.push(Segment::Index(*index)),
        // `Spanned<T>` deserializes through a private wrapper key; it is not the user's.
        Path::Map { key, .. } if key.starts_with("$__serde_spanned") => {}
        Path::Map { key, .. } => out.push(Segment::Key(key.clone())),
        _ => {}
    }
    out
}

/// Byte offset of the key at `path` in the parsed document, for error positions.
pub fn key_offset(doc: &DeTable<'_>, path: &[Segment]) -> Option<usize> {
    let (Segment::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let (key, value) = doc
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == first.as_str())?;
    if rest.is_empty() {
        return Some(key.span().start);
    }
    value_offset(value.get_ref(), rest).or(Some(key.span().start))
}

fn value_offset(value: &DeValue<'_>, path: &[Segment]) -> Option<usize> {
    match (value, path.first()?) {
        (DeValue::Table(t), Segment::Key(_)) => key_offset(t, path),
        (DeValue::Array(a), Segment::Index(i)) => {
            let item = a.get(*i)?;
            if path.len() == 1 {
                Some(item.span().start)
            } else {
                value_offset(item.get_ref(), &path[1..]).or(Some(item.span().start))
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, t.find('=').unwrap()), (1, 3));
        assert_eq!(line_col(t, t.rfind('=').unwrap()), (2, 4));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("200us"), Some(Duration::from_micros(200)));
        assert_eq!(parse_duration("99999999999999999999s"), None, "too large");
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("3 days"), None);
    }

    #[test]
    fn expansion_reports_missing_variables_without_values() {
        let env: HashMap<String, String> = [("KEY".to_owned(), "sk-secret".to_owned())].into();
        let text = "x";
        let mut src = Source::new("f.toml", text, &env);
        let v = toml::Spanned::new(0..1, "a ${KEY} b $$ ${NOPE}".to_owned());
        let out = src.expand(&v);
        assert_eq!(out, "a sk-secret b $ ");
        assert_eq!(src.errors.len(), 1);
        assert!(src.errors[0].message.contains("NOPE"));
        assert!(!src.errors[0].to_string().contains("sk-secret"));
    }
}
