//! Fuzz target `auth_headers`: the input as an HTTP/1.1 request head (credentials, loop guard, `Host`/`Origin`).
//! What it covers: `gatehouse::fuzzing::auth_headers`. Seeds: corpus/auth_headers/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::auth_headers(data));
