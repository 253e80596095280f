//! The series bound: refusal when full, idle eviction, `forget`.

use vigil_anomaly::{Config, Detector, Metric, Stats};

use crate::gen::Source;

const S: u64 = 1_000_000_000;

#[test]
fn max_series_is_honoured_and_forget_frees_slots() {
    let mut det = Detector::new(Config {
        max_series: 3,
        ..Config::default()
    })
    .unwrap();
    let w = Source::steady(20).window(1.0);
    det.observe("a", Metric::Runq, &w, 0);
    det.observe("a", Metric::Dns, &w, 0);
    det.observe("b", Metric::Runq, &w, 0);
    det.observe("c", Metric::Runq, &w, 0);
    det.observe("a", Metric::Http, &w, 0);
    det.observe("a", Metric::Runq, &w, S);
    let st = det.stats();
    assert_eq!((st.series, st.refused), (3, 2), "{st:?}");

    assert_eq!(det.forget("a"), 2);
    assert_eq!(det.forget("a"), 0);
    det.observe("c", Metric::Runq, &w, 2 * S);
    det.observe("d", Metric::Runq, &w, 2 * S);
    assert_eq!(det.stats().series, 3);
    det.observe("e", Metric::Runq, &w, 2 * S);
    assert_eq!(
        det.stats(),
        Stats {
            series: 3,
            refused: 3,
            evicted: 0,
            skipped: 0
        }
    );
}

#[test]
fn a_full_detector_evicts_only_idle_series() {
    let mut det = Detector::new(Config {
        max_series: 3,
        idle_secs: 60,
        ..Config::default()
    })
    .unwrap();
    let w = Source::steady(21).window(1.0);
    let mut tiny = Source::steady(22);
    tiny.samples = 5;
    det.observe("a", Metric::Runq, &w, 0);
    det.observe("b", Metric::Runq, &w, 0);
    det.observe("c", Metric::Runq, &w, 0);
    // A skipped window still shows the series is alive.
    det.observe("b", Metric::Runq, &tiny.window(1.0), 50 * S);
    det.observe("c", Metric::Runq, &w, 50 * S);

    det.observe("d", Metric::Runq, &w, 59 * S);
    assert_eq!(
        (det.stats().refused, det.stats().evicted),
        (1, 0),
        "nothing idle for 60 s yet"
    );
    det.observe("d", Metric::Runq, &w, 61 * S);
    assert_eq!(
        (det.stats().refused, det.stats().evicted),
        (1, 1),
        "a was idle"
    );
    det.observe("a", Metric::Runq, &w, 62 * S);
    assert_eq!(
        (det.stats().refused, det.stats().evicted),
        (2, 1),
        "b, c seen at 50 s"
    );
    det.observe("a", Metric::Runq, &w, 111 * S);
    let st = det.stats();
    assert_eq!(
        (st.series, st.refused, st.evicted, st.skipped),
        (3, 2, 2, 1),
        "{st:?}"
    );
}
