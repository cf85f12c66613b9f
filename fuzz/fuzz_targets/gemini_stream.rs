//! Fuzz target `gemini_stream`: the input as a Gemini provider's SSE stream.
//! What it covers: `gatehouse::fuzzing::gemini_stream`. Seeds: corpus/gemini_stream/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::gemini_stream(data));
