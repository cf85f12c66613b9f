//! Fuzz target `anthropic_stream`: the input as an Anthropic provider's SSE stream.
//! What it covers: `gatehouse::fuzzing::anthropic_stream`. Seeds: corpus/anthropic_stream/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::anthropic_stream(data));
