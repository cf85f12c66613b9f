//! Fuzz target `config_toml`: the input as a config file's TOML text.
//! What it covers: `gatehouse::fuzzing::config_toml`. Seeds: corpus/config_toml/.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gatehouse::fuzzing::config_toml(data));
