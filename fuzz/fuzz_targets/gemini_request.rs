//! Fuzz target `gemini_request`: the input as a client's Gemini `generateContent` (and `countTokens`) body.
//! What it covers: `gatehouse::fuzzing::gemini_request`. Seeds: corpus/gemini_request/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::gemini_request(data));
