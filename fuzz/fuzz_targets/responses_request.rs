//! Fuzz target `responses_request`: the input as a client's Responses API (`/v1/responses`) body.
//! What it covers: `gatehouse::fuzzing::responses_request`. Seeds: corpus/responses_request/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::responses_request(data));
