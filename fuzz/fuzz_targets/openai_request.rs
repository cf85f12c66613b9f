//! Fuzz target `openai_request`: the input as a client's Chat Completions request body.
//! What it covers: `gatehouse::fuzzing::openai_request`. Seeds: corpus/openai_request/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::openai_request(data));
