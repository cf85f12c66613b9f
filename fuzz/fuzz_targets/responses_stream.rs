//! Fuzz target `responses_stream`: the input as an OpenAI provider's Responses event stream.
//! What it covers: `gatehouse::fuzzing::responses_stream`. Seeds: corpus/responses_stream/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::responses_stream(data));
