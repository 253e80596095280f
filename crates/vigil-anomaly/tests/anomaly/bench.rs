//! Cost of `observe`, printed (never asserted: timing depends on the machine and the build).

use std::hint::black_box;
use std::time::Instant;

use vigil_anomaly::{Config, Detector, Metric};

use crate::gen::{Source, WINDOW_NS};

#[test]
fn observe_cost() {
    let mut src = Source::steady(7);
    src.samples = 1_000;
    let windows = src.windows(64, 1.0);
    let workloads: Vec<String> = (0..100).map(|i| format!("ns/workload-{i}")).collect();
    let mut det = Detector::new(Config::default()).unwrap();
    let rounds = 200;
    let start = Instant::now();
    for r in 0..rounds {
        for (i, w) in workloads.iter().enumerate() {
            for (j, m) in [Metric::Runq, Metric::Http].into_iter().enumerate() {
                let window = &windows[(r + i + j) % windows.len()];
                black_box(det.observe(w, m, window, r as u64 * WINDOW_NS));
            }
        }
    }
    let n = rounds * workloads.len() * 2;
    let per = start.elapsed().as_nanos() as f64 / n as f64;
    assert_eq!(det.stats().series, 200);
    println!("observe: {per:.0} ns per window over {n} windows of 200 series (incl. two quantile scans of the window)");
}
