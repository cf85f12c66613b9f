//! Fuzz target `openai_stream`: the input as an OpenAI-style provider's SSE stream.
//! What it covers: `gatehouse::fuzzing::openai_stream`. Seeds: corpus/openai_stream/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::openai_stream(data));
