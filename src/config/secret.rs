//! Secrets (provider keys, the admin token): never printed, logged or serialized.

use std::fmt;
use std::sync::Arc;

/// A secret string. `Debug` and `Display` show at most a hint (the last four characters of a
/// long secret), never the value; reading it takes an explicit [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that sends it (an upstream request header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A safe hint: `…abcd` for secrets of 16 characters or more, `***` otherwise.
    pub fn hint(&self) -> String {
        let n = self.0.chars().count();
        if n >= 16 {
            let tail: String = self.0.chars().skip(n - 4).collect();
            format!("…{tail}")
        } else {
            "***".to_owned()
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.hint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("sk-proj-0123456789abcdef");
        assert_eq!(format!("{s:?}"), "Secret(…cdef)");
        assert!(!format!("{s}").contains("0123"));
        assert_eq!(Secret::new("short").hint(), "***");
    }
}
