//! Fuzz target `http1_response`: the input as a provider's HTTP/1.1 response (first byte: the request was `HEAD` if odd), read by the pool and by hyper.
//! What it covers: `gatehouse::fuzzing::http1_response`. Seeds: corpus/http1_response/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::http1_response(data));
