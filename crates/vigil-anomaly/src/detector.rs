//! The per-series state machine and the bounded set of series.

use std::collections::HashMap;

use serde::Serialize;
use vigil_net::hist::{bucket_index, bucket_upper, LogHist};

use crate::baseline::Track;
use crate::{Config, ConfigError, Metric, Quantile, Verdict, VerdictKind};

/// Judges latency windows per (workload, metric) against their own learned baseline.
#[derive(Debug)]
pub struct Detector {
    cfg: Config,
    /// Workload -> its series (at most one per metric, so a short list).
    workloads: HashMap<String, Vec<Series>>,
    series: usize,
    refused: u64,
    evicted: u64,
    skipped: u64,
    /// No series can have been idle for `idle_secs` before this time, so a full detector
    /// refuses without scanning until then (see [`Detector::evict_idle`]).
    no_eviction_before_ns: u64,
}

/// Counters for self-telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Stats {
    /// (workload, metric) series tracked now.
    pub series: usize,
    /// Windows dropped because `max_series` series were tracked and none was idle.
    pub refused: u64,
    /// Idle series dropped to make room for a new one.
    pub evicted: u64,
    /// Windows with fewer than `min_samples` samples.
    pub skipped: u64,
}

impl Detector {
    pub fn new(cfg: Config) -> Result<Detector, ConfigError> {
        cfg.validate()?;
        Ok(Detector {
            cfg,
            workloads: HashMap::new(),
            series: 0,
            refused: 0,
            evicted: 0,
            skipped: 0,
            no_eviction_before_ns: 0,
        })
    }

    /// Feeds one window (the histogram delta of one interval) of `metric` for `workload`,
    /// observed at `now_ns` (any monotonic clock). Returns a verdict when the series changes
    /// state. Windows with fewer than `min_samples` samples are skipped: not learned, not
    /// judged, and they neither extend nor break a run of windows.
    pub fn observe(
        &mut self,
        workload: &str,
        metric: Metric,
        window: &LogHist,
        now_ns: u64,
    ) -> Option<Verdict> {
        let existing = self
            .workloads
            .get_mut(workload)
            .and_then(|list| list.iter_mut().find(|s| s.metric == metric));
        if window.count() < self.cfg.min_samples {
            self.skipped += 1;
            if let Some(s) = existing {
                s.last_seen_ns = now_ns;
            }
            return None;
        }
        let x = Quantile::ALL.map(|q| Reading::of(window, q));
        if let Some(s) = existing {
            return s.observe(&self.cfg, workload, x, now_ns);
        }
        if self.series >= self.cfg.max_series && !self.evict_idle(now_ns) {
            self.refused += 1;
            return None;
        }
        let mut s = Series {
            metric,
            last_seen_ns: now_ns,
            phase: Phase::learning(&self.cfg),
        };
        let verdict = s.observe(&self.cfg, workload, x, now_ns);
        self.workloads
            .entry(workload.to_owned())
            .or_default()
            .push(s);
        self.series += 1;
        verdict
    }

    /// Drops every series of `workload` (it is gone); returns how many there were.
    pub fn forget(&mut self, workload: &str) -> usize {
        let n = self.workloads.remove(workload).map_or(0, |list| list.len());
        self.series -= n;
        n
    }

    pub fn stats(&self) -> Stats {
        Stats {
            series: self.series,
            refused: self.refused,
            evicted: self.evicted,
            skipped: self.skipped,
        }
    }

    /// Drops the least recently seen series if it has been idle for `idle_secs`. Refusing
    /// rather than evicting active series keeps a flood of new workloads from erasing the
    /// baselines of existing ones.
    fn evict_idle(&mut self, now_ns: u64) -> bool {
        if now_ns < self.no_eviction_before_ns {
            return false;
        }
        let idle_ns = self.cfg.idle_secs.saturating_mul(1_000_000_000);
        let Some((seen, workload, metric)) = self
            .workloads
            .iter()
            .flat_map(|(w, list)| list.iter().map(move |s| (s.last_seen_ns, w, s.metric)))
            .min_by_key(|(seen, _, _)| *seen)
        else {
            return false;
        };
        if now_ns.saturating_sub(seen) < idle_ns {
            // Last-seen times only grow, so nothing can expire before the oldest does.
            self.no_eviction_before_ns = seen.saturating_add(idle_ns);
            return false;
        }
        let workload = workload.clone();
        if let Some(list) = self.workloads.get_mut(&workload) {
            list.retain(|s| s.metric != metric);
            if list.is_empty() {
                self.workloads.remove(&workload);
            }
        }
        self.series -= 1;
        self.evicted += 1;
        true
    }
}

#[derive(Debug)]
struct Series {
    metric: Metric,
    last_seen_ns: u64,
    phase: Phase,
}

/// Tracks are indexed like [`Quantile::ALL`].
#[derive(Debug)]
enum Phase {
    /// Collecting the warm-up windows' quantiles.
    Learning { seen: Vec<[f64; 2]> },
    /// Learning in-band windows; `streak` out-of-band windows in a row so far, the first at
    /// `since_ns`. Out-of-band windows are held out of the baseline.
    Watching {
        tracks: [Track; 2],
        streak: u32,
        since_ns: u64,
    },
    /// Baseline frozen; `windows` judged since `since_ns`, the last `in_band` of them in band.
    Anomalous {
        tracks: [Track; 2],
        quantile: usize,
        since_ns: u64,
        windows: u32,
        in_band: u32,
    },
}

impl Phase {
    fn learning(cfg: &Config) -> Phase {
        Phase::Learning {
            seen: Vec::with_capacity(cfg.warmup_windows as usize),
        }
    }
}

impl Series {
    fn observe(
        &mut self,
        cfg: &Config,
        workload: &str,
        x: [Reading; 2],
        now_ns: u64,
    ) -> Option<Verdict> {
        self.last_seen_ns = now_ns;
        let verdict =
            |kind, tracks: &[Track; 2], bands: [f64; 2], q: usize, windows, since_ns| Verdict {
                kind,
                workload: workload.to_owned(),
                metric: self.metric,
                quantile: Quantile::ALL[q],
                baseline_us: tracks[q].level.round() as u64,
                band_us: bands[q].round() as u64,
                current_us: x[q].value,
                windows,
                since_ns,
                time_ns: now_ns,
            };
        match &mut self.phase {
            Phase::Learning { seen } => {
                seen.push(x.map(|r| r.value as f64));
                if seen.len() >= cfg.warmup_windows as usize {
                    let tracks = [0, 1].map(|q| {
                        let mut values: Vec<f64> = seen.iter().map(|w| w[q]).collect();
                        Track::from_warmup(&mut values)
                    });
                    self.phase = Phase::Watching {
                        tracks,
                        streak: 0,
                        since_ns: now_ns,
                    };
                }
                None
            }
            Phase::Watching {
                tracks,
                streak,
                since_ns,
            } => {
                let bands = tracks.map(|t| t.band(cfg));
                let Some(q) = worst_out_of_band(x, tracks, bands) else {
                    *streak = 0;
                    for (q, t) in tracks.iter_mut().enumerate() {
                        t.learn(x[q].value as f64, bands[q], cfg.alpha);
                    }
                    return None;
                };
                if *streak == 0 {
                    *since_ns = now_ns;
                }
                *streak = streak.saturating_add(1);
                if *streak < cfg.trigger_windows {
                    return None;
                }
                let v = verdict(VerdictKind::Anomaly, tracks, bands, q, *streak, *since_ns);
                self.phase = Phase::Anomalous {
                    tracks: *tracks,
                    quantile: q,
                    since_ns: *since_ns,
                    windows: *streak,
                    in_band: 0,
                };
                Some(v)
            }
            Phase::Anomalous {
                tracks,
                quantile,
                since_ns,
                windows,
                in_band,
            } => {
                let bands = tracks.map(|t| t.band(cfg));
                *windows = windows.saturating_add(1);
                if worst_out_of_band(x, tracks, bands).is_some() {
                    *in_band = 0;
                } else {
                    *in_band += 1;
                }
                let (q, since) = (*quantile, *since_ns);
                if *in_band >= cfg.recover_windows {
                    let v = verdict(VerdictKind::Recovery, tracks, bands, q, *in_band, since);
                    self.phase = Phase::Watching {
                        tracks: *tracks,
                        streak: 0,
                        since_ns: now_ns,
                    };
                    Some(v)
                } else if cfg.relearn_windows > 0 && *windows >= cfg.relearn_windows {
                    let v = verdict(VerdictKind::Rebaselined, tracks, bands, q, *windows, since);
                    self.phase = Phase::learning(cfg);
                    Some(v)
                } else {
                    None
                }
            }
        }
    }
}

/// The quantile furthest above its threshold (baseline + band), relative to it; `None` when
/// every quantile is in band. Only rises count: lower latency is never an anomaly.
fn worst_out_of_band(x: [Reading; 2], tracks: &[Track; 2], bands: [f64; 2]) -> Option<usize> {
    let ratio = |q: usize| x[q].floor as f64 / (tracks[q].level + bands[q]);
    (0..2)
        .filter(|&q| x[q].floor as f64 > tracks[q].level + bands[q])
        .max_by(|&a, &b| ratio(a).total_cmp(&ratio(b)))
}

/// A window quantile as the histogram knows it: somewhere in one bucket.
#[derive(Debug, Clone, Copy)]
struct Reading {
    /// What [`LogHist::quantile`] reports (the bucket's upper bound, at most the window's
    /// maximum): what is learned and shown, as everywhere else in Vigil.
    value: u64,
    /// The bucket's lower bound: what is judged, so a quantile is out of band only when its
    /// whole bucket is (a bucket is up to 25 % wide; straddling the threshold is no departure).
    floor: u64,
}

impl Reading {
    /// `window` must not be empty.
    fn of(window: &LogHist, q: Quantile) -> Reading {
        let value = window.quantile(q.fraction()).unwrap_or(0);
        let i = bucket_index(value);
        let floor = if i == 0 { 0 } else { bucket_upper(i - 1) + 1 };
        Reading { value, floor }
    }
}
