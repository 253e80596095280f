//! Any bytes as the agent's YAML config file: `Config::parse` must return a validated config or
//! an error, never panic, and what it accepts must be usable (the anomaly detector starts on it).
//!
//! crates/vigil is a binary crate, so its config module is compiled here from its own source
//! file: the exact code the agent runs, with nothing moved or re-exported for the fuzzer.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/vigil/src/config.rs"]
#[allow(
    dead_code,
    reason = "the agent reads the parsed values; the fuzzer only parses"
)]
mod config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(c) = config::Config::parse(&text) {
        vigil_anomaly::Detector::new(c.anomaly).expect("parse validated the anomaly section");
    }
});
