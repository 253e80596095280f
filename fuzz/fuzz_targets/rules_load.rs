//! Any bytes as a rules file: loading must return rules or errors, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let files = [vigil_rules::RuleFile { name: "fuzz.yaml".into(), text }];
    let observable = vigil_rules::all_event_types().iter().map(|s| s.to_string()).collect();
    let _ = vigil_rules::load(&files, &vigil_rules::LoadOptions { observable });
});
