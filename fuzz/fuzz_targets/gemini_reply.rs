//! Fuzz target `gemini_reply`: the input as a Gemini provider's non-streamed reply.
//! What it covers: `gatehouse::fuzzing::gemini_reply`. Seeds: corpus/gemini_reply/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::gemini_reply(data));
