//! Behavior on steady, injected, outlier, drifting, microsecond-scale and sparse workloads.

use vigil_anomaly::{Config, Detector, Metric, Quantile, Verdict, VerdictKind};
use vigil_net::hist::LogHist;

use crate::gen::{median_quantile, run, Source, WINDOW_NS};

const WARMUP: usize = 30;

fn detector() -> Detector {
    let cfg = Config::default();
    assert_eq!(cfg.warmup_windows as usize, WARMUP);
    Detector::new(cfg).unwrap()
}

fn kinds(verdicts: &[(usize, Verdict)]) -> Vec<(usize, VerdictKind)> {
    verdicts.iter().map(|(i, v)| (*i, v.kind)).collect()
}

#[test]
fn steady_workload_never_alerts() {
    let windows = Source::steady(1).windows(1_000, 1.0);
    let mut det = detector();
    assert_eq!(
        kinds(&run(&mut det, "shop/cart", Metric::Runq, &windows)),
        []
    );
    assert_eq!(det.stats().series, 1);
}

#[test]
fn steady_workloads_of_any_scale_never_alert() {
    // Property over seeds, scales from 20 µs to 200 ms, and jitter from calm to rough.
    for seed in 0..16u64 {
        let mut src = Source::steady(100 + seed);
        src.median_us = 20.0 * 10f64.powi((seed % 5) as i32);
        src.sigma = [0.2, 0.4, 0.6][(seed % 3) as usize];
        src.window_sigma = [0.03, 0.08][(seed % 2) as usize];
        src.samples = 300;
        let windows = src.windows(400, 1.0);
        let mut det = detector();
        let v = run(&mut det, "w", Metric::Http, &windows);
        assert!(v.is_empty(), "seed {seed} ({src:?}): {v:?}");
    }
}

#[test]
fn injected_latency_raises_one_anomaly_then_one_recovery() {
    for seed in 0..8u64 {
        let mut src = Source::steady(seed);
        let start = WARMUP + 20;
        let mut windows = src.windows(start, 1.0);
        windows.extend(src.windows(5, 5.0));
        windows.extend(src.windows(50, 1.0));
        let mut det = detector();
        let v = run(&mut det, "shop/cart", Metric::Runq, &windows);
        // Third slow window raises; third normal one after them recovers.
        assert_eq!(
            kinds(&v),
            [
                (start + 2, VerdictKind::Anomaly),
                (start + 7, VerdictKind::Recovery)
            ],
            "seed {seed}"
        );
        let (a, r) = (&v[0].1, &v[1].1);
        let q = a.quantile;
        let typical = median_quantile(&windows[..WARMUP], q.fraction());
        assert_eq!((a.workload.as_str(), a.metric), ("shop/cart", Metric::Runq));
        assert_eq!((a.windows, r.windows), (3, 3));
        assert_eq!(r.quantile, q, "recovery names the anomaly's quantile");
        assert_eq!(a.since_ns, start as u64 * WINDOW_NS);
        assert_eq!(r.since_ns, a.since_ns);
        assert_eq!(r.time_ns, (start + 7) as u64 * WINDOW_NS);
        let base = a.baseline_us as f64;
        assert!(
            (base / typical - 1.0).abs() < 0.15,
            "seed {seed}: baseline {base} vs {typical}"
        );
        assert!(a.current_us as f64 > base + a.band_us as f64);
        let ratio = a.current_us as f64 / base;
        assert!(
            (3.5..7.0).contains(&ratio),
            "seed {seed}: current/baseline {ratio}"
        );
        assert_eq!(
            (r.baseline_us, r.band_us),
            (a.baseline_us, a.band_us),
            "frozen"
        );
        assert!(r.current_us <= r.baseline_us + r.band_us);
    }
}

#[test]
fn outlier_windows_shorter_than_the_trigger_change_nothing() {
    let mut src = Source::steady(3);
    let clean = {
        let mut w = src.windows(100, 1.0);
        w.extend(src.windows(5, 5.0));
        w
    };
    // One outlier window, then two in a row (one short of trigger_windows).
    let mut dirty = clean.clone();
    dirty[50] = src.window(10.0);
    dirty[70] = src.window(10.0);
    dirty[71] = src.window(10.0);
    let clean_v = run(&mut detector(), "w", Metric::BlockIo, &clean);
    let dirty_v = run(&mut detector(), "w", Metric::BlockIo, &dirty);
    assert_eq!(
        kinds(&dirty_v),
        [(102, VerdictKind::Anomaly)],
        "outliers alone never alert"
    );
    assert_eq!(kinds(&clean_v), kinds(&dirty_v));
    // Held out of the baseline: it differs only by the three normal windows they replaced.
    let (c, d) = (&clean_v[0].1, &dirty_v[0].1);
    assert_eq!(c.quantile, d.quantile);
    let drift = (d.baseline_us as f64 / c.baseline_us as f64 - 1.0).abs();
    assert!(
        drift < 0.03,
        "baseline {} vs {}",
        d.baseline_us,
        c.baseline_us
    );
}

#[test]
fn slow_drift_is_followed_without_alerting() {
    let mut src = Source::steady(4);
    let mut windows = src.windows(WARMUP, 1.0);
    let steps: usize = 250;
    for i in 1..=steps {
        windows.push(src.window(1.01f64.powi(i as i32)));
    }
    let mut det = detector();
    assert_eq!(
        kinds(&run(&mut det, "w", Metric::Dns, &windows)),
        [],
        "+1 % per window"
    );
    // The baseline has followed: a jump from the drifted level is still caught, and judged
    // against that level, not the one learned in warm-up.
    let level = 1.01f64.powi(steps as i32);
    windows.extend(src.windows(3, 5.0 * level));
    let v = run(&mut detector(), "w", Metric::Dns, &windows);
    assert_eq!(kinds(&v), [(WARMUP + steps + 2, VerdictKind::Anomaly)]);
    let a = &v[0].1;
    let start = median_quantile(&windows[..WARMUP], a.quantile.fraction());
    let followed = a.baseline_us as f64 / (start * level);
    assert!(
        (0.75..1.1).contains(&followed),
        "baseline {} for level {}",
        a.baseline_us,
        start * level
    );
}

#[test]
fn microsecond_noise_never_alerts_because_of_the_floors() {
    // A 3 µs syscall whose windows swing wildly in relative terms.
    let mut wild = Source::steady(5);
    wild.median_us = 3.0;
    wild.sigma = 0.8;
    wild.window_sigma = 0.4;
    wild.tail_factor = 20.0;
    let windows = wild.windows(1_000, 1.0);
    assert_eq!(
        kinds(&run(&mut detector(), "w", Metric::SyscallOther, &windows)),
        []
    );

    // A calm one that is 8x slower for a while: still far below 100 µs, so no page; without
    // the floors the same windows do alert, so the floors are what keeps it quiet.
    let mut calm = Source::steady(12);
    calm.median_us = 3.0;
    let mut windows = calm.windows(WARMUP + 20, 1.0);
    windows.extend(calm.windows(5, 8.0));
    windows.extend(calm.windows(20, 1.0));
    assert!(windows.iter().all(|w| w.quantile(0.99).unwrap() < 100));
    assert_eq!(
        kinds(&run(&mut detector(), "w", Metric::SyscallOther, &windows)),
        []
    );
    let mut bare = Detector::new(Config {
        band_abs_floor_us: 0,
        band_rel_floor: 0.0,
        ..Config::default()
    })
    .unwrap();
    let start = WARMUP + 20;
    let v = run(&mut bare, "w", Metric::SyscallOther, &windows);
    assert_eq!(kinds(&v)[0], (start + 2, VerdictKind::Anomaly));
}

#[test]
fn a_tail_only_regression_is_reported_on_p99() {
    let mut src = Source::steady(6);
    let mut windows = src.windows(WARMUP + 10, 1.0);
    src.tail_fraction = 0.03;
    windows.extend(src.windows(3, 1.0));
    let v = run(&mut detector(), "w", Metric::TcpRtt, &windows);
    assert_eq!(kinds(&v), [(WARMUP + 12, VerdictKind::Anomaly)]);
    assert_eq!(v[0].1.quantile, Quantile::P99);
}

#[test]
fn windows_with_too_few_samples_are_skipped() {
    let mut small = Source::steady(8);
    small.samples = 99;
    let mut det = detector();
    // Alone they create no series, however slow.
    for i in 0..50 {
        assert!(det
            .observe("w", Metric::Http, &small.window(20.0), i * WINDOW_NS)
            .is_none());
    }
    assert_eq!((det.stats().series, det.stats().skipped), (0, 50));

    // Interleaved with a slow run they neither extend nor break it.
    let mut src = Source::steady(9);
    let mut windows = src.windows(WARMUP + 10, 1.0);
    for _ in 0..3 {
        windows.push(src.window(5.0));
        windows.push(small.window(1.0));
        windows.push(small.window(20.0));
    }
    let v = run(&mut det, "w", Metric::Http, &windows);
    assert_eq!(kinds(&v), [(WARMUP + 10 + 6, VerdictKind::Anomaly)]);
    assert_eq!(v[0].1.windows, 3);
    assert_eq!(det.stats().skipped, 50 + 6);

    let empty = LogHist::new();
    assert!(det.observe("w", Metric::Http, &empty, 0).is_none());
}

#[test]
fn a_lasting_change_is_accepted_after_relearn_windows() {
    let cfg = Config {
        relearn_windows: 20,
        ..Config::default()
    };
    let mut det = Detector::new(cfg).unwrap();
    let mut src = Source::steady(10);
    let mut windows = src.windows(WARMUP, 1.0);
    windows.extend(src.windows(20 + WARMUP + 100, 4.0));
    // Going back down to the old level is an improvement, never an anomaly.
    windows.extend(src.windows(50, 1.0));
    let v = run(&mut det, "w", Metric::TcpConnect, &windows);
    assert_eq!(
        kinds(&v),
        [
            (WARMUP + 2, VerdictKind::Anomaly),
            (WARMUP + 19, VerdictKind::Rebaselined)
        ]
    );
    let r = &v[1].1;
    assert_eq!(r.windows, 20);
    assert_eq!(r.since_ns, v[0].1.since_ns);
    let alert = r.to_alert();
    assert_eq!(alert.rule, "Latency baseline reset");
}

#[test]
fn anomaly_alert_reads_well() {
    let mut src = Source::steady(11);
    let mut windows = src.windows(WARMUP + 5, 1.0);
    windows.extend(src.windows(3, 9.0));
    let v = run(&mut detector(), "shop/cart", Metric::Runq, &windows);
    let alert = v[0].1.to_alert();
    let q = v[0].1.quantile;
    let prefix = format!("Latency anomaly: {q} of runq for workload shop/cart is ");
    assert!(alert.output.starts_with(&prefix), "{}", alert.output);
    assert!(alert.output.ends_with(" for 3 windows"), "{}", alert.output);
    let json = serde_json::to_value(&alert).unwrap();
    assert_eq!(json["rule"], "Latency anomaly");
    assert_eq!(json["priority"], "Warning");
    assert_eq!(json["output_fields"]["vigil.workload"], "shop/cart");
    assert_eq!(json["output_fields"]["vigil.current_us"], v[0].1.current_us);
}
