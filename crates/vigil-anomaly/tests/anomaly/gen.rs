//! Seeded synthetic latency windows and a driver that feeds them to a detector.

use vigil_anomaly::{Detector, Metric, Verdict};
use vigil_net::hist::LogHist;

/// Window interval of the synthetic clock: 10 s.
pub const WINDOW_NS: u64 = 10_000_000_000;

/// SplitMix64: tiny, seedable, and good enough for test jitter.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// A workload's latency: lognormal samples around a median that itself wanders a little from
/// window to window, plus a rare slow tail (GC pauses, cache misses).
#[derive(Debug, Clone)]
pub struct Source {
    pub rng: Rng,
    pub median_us: f64,
    /// Log-space standard deviation of one sample.
    pub sigma: f64,
    /// Log-space standard deviation of a window's median.
    pub window_sigma: f64,
    /// Fraction of samples that are `tail_factor` times slower.
    pub tail_fraction: f64,
    pub tail_factor: f64,
    pub samples: u64,
}

impl Source {
    /// Around 200 µs with realistic jitter, 2,000 samples per window.
    pub fn steady(seed: u64) -> Source {
        Source {
            rng: Rng::new(seed),
            median_us: 200.0,
            sigma: 0.3,
            window_sigma: 0.05,
            tail_fraction: 0.002,
            tail_factor: 10.0,
            samples: 2_000,
        }
    }

    /// The next window with every latency multiplied by `scale`.
    pub fn window(&mut self, scale: f64) -> LogHist {
        let mut h = LogHist::new();
        let median = self.median_us * (self.window_sigma * self.rng.normal()).exp() * scale;
        for _ in 0..self.samples {
            let mut v = median * (self.sigma * self.rng.normal()).exp();
            if self.rng.unit() < self.tail_fraction {
                v *= self.tail_factor;
            }
            h.record(v.round() as u64);
        }
        h
    }

    /// `n` windows at `scale`.
    pub fn windows(&mut self, n: usize, scale: f64) -> Vec<LogHist> {
        (0..n).map(|_| self.window(scale)).collect()
    }
}

/// Feeds `windows` in order as one series (window i at `i * WINDOW_NS`) and returns each
/// verdict with the index of the window that produced it.
pub fn run(
    det: &mut Detector,
    workload: &str,
    metric: Metric,
    windows: &[LogHist],
) -> Vec<(usize, Verdict)> {
    windows
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            det.observe(workload, metric, w, i as u64 * WINDOW_NS)
                .map(|v| (i, v))
        })
        .collect()
}

/// Median of one quantile over `windows`, to compare baselines with what was fed.
pub fn median_quantile(windows: &[LogHist], q: f64) -> f64 {
    let mut v: Vec<u64> = windows.iter().map(|w| w.quantile(q).unwrap()).collect();
    v.sort_unstable();
    v[v.len() / 2] as f64
}
