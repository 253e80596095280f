//! Any bytes as an `anomaly:` config section, a NUL, then a run of latency windows: a config
//! that validates must give a detector that judges any windows without panicking and within
//! `max_series`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_anomaly::{Config, Detector, Metric};
use vigil_net::hist::LogHist;

const WORKLOADS: [&str; 4] = ["w0", "w1", "w2", "w3"];

fuzz_target!(|data: &[u8]| {
    let (yaml, mut windows) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(cfg) = serde_yaml::from_str::<Config>(&String::from_utf8_lossy(yaml)) else {
        return;
    };
    let max_series = cfg.max_series;
    let Ok(mut detector) = Detector::new(cfg) else {
        return;
    };
    // Each window: a control byte (workload, metric, forget, time jump), a sample count byte,
    // a 16-bit latency and a byte for a second, larger latency (the tail).
    let mut now_ns = 0u64;
    while let [control, n, lo, hi, tail, rest @ ..] = windows {
        windows = rest;
        let workload = WORKLOADS[usize::from(control & 3)];
        let metric = Metric::ALL[usize::from((control >> 2) & 0x0f) % Metric::ALL.len()];
        now_ns = now_ns.saturating_add(if control & 0x40 != 0 {
            1_000_000_000_000
        } else {
            10_000_000_000
        });
        if control & 0x80 != 0 && control & 0x40 != 0 {
            detector.forget(workload);
            continue;
        }
        let value = u64::from(u16::from_le_bytes([*lo, *hi])) << (n >> 4);
        let mut window = LogHist::new();
        window.record_n(value, u64::from(n & 0x0f) * 16 + 1);
        window.record_n(value.saturating_mul(u64::from(*tail)), u64::from(tail & 7));
        if let Some(v) = detector.observe(workload, metric, &window, now_ns) {
            let _ = v.to_alert();
        }
        assert!(detector.stats().series <= max_series);
    }
});
