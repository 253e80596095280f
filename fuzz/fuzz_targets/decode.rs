//! Any bytes as a ring-buffer record: decoding must return an event or an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = vigil_events::decode(data);
});
