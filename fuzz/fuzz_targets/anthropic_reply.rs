//! Fuzz target `anthropic_reply`: the input as an Anthropic provider's non-streamed reply.
//! What it covers: `gatehouse::fuzzing::anthropic_reply`. Seeds: corpus/anthropic_reply/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::anthropic_reply(data));
