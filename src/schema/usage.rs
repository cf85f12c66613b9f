//! Token usage, in one convention for every provider.
//!
//! Convention: `input_tokens` counts *all* input tokens, including those read from or written to
//! a prompt cache (OpenAI's `prompt_tokens` convention); `cache_read_tokens` and
//! `cache_write_tokens` say how many of them were cache hits or cache writes. Likewise
//! `output_tokens` includes `reasoning_tokens`. So `total = input + output` always holds, and
//! a provider that reports cache tokens separately (Anthropic) adds them into `input_tokens`
//! when it is decoded.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Saturating: the counts come from providers, and a reply claiming `u64::MAX` tokens
    /// must not overflow (found by `fuzz/`).
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Merge a later report into this one: a non-zero later value wins, so a provider that
    /// sends input tokens at the start and output tokens at the end (Anthropic) ends up with
    /// both, and one that repeats cumulative totals is not double counted.
    pub fn merge(&mut self, later: &Usage) {
        fn pick(a: &mut u64, b: u64) {
            if b != 0 {
                *a = b;
            }
        }
        pick(&mut self.input_tokens, later.input_tokens);
        pick(&mut self.output_tokens, later.output_tokens);
        pick(&mut self.cache_read_tokens, later.cache_read_tokens);
        pick(&mut self.cache_write_tokens, later.cache_write_tokens);
        pick(&mut self.reasoning_tokens, later.reasoning_tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_start_and_end_reports() {
        let mut u = Usage {
            input_tokens: 10,
            cache_read_tokens: 4,
            ..Usage::default()
        };
        u.merge(&Usage {
            output_tokens: 7,
            ..Usage::default()
        });
        assert_eq!(u.total(), 17);
        assert_eq!(u.cache_read_tokens, 4);
        u.merge(&Usage {
            input_tokens: 10,
            output_tokens: 9,
            ..Usage::default()
        });
        assert_eq!(u.total(), 19);
    }
}
