//! Fuzz target `anthropic_request`: the input as a client's Anthropic Messages request body.
//! What it covers: `gatehouse::fuzzing::anthropic_request`. Seeds: corpus/anthropic_request/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::anthropic_request(data));
