//! Any bytes as the `otlp:` config section: deserializing and validating (endpoint URL, header
//! names and values, event kinds, sizes) must return a config or an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(c) = serde_yaml::from_str::<vigil_otlp::OtlpConfig>(&text) {
        let _ = c.check();
    }
});
