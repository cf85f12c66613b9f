//! Fuzz target `bedrock_stream`: the input as a Bedrock provider's binary event stream (ConverseStream).
//! What it covers: `gatehouse::fuzzing::bedrock_stream`. Seeds: corpus/bedrock_stream/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::bedrock_stream(data));
