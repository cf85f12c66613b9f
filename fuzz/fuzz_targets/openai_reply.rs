//! Fuzz target `openai_reply`: the input as an OpenAI-style provider's non-streamed reply.
//! What it covers: `gatehouse::fuzzing::openai_reply`. Seeds: corpus/openai_reply/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::openai_reply(data));
