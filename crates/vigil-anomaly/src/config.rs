//! The `anomaly:` section of the agent's YAML config, with documented defaults, and its checks.

use serde::Deserialize;

/// Detector parameters. Every count is in windows (the agent's read interval, e.g. 10 s), every
/// latency in microseconds. Deserialize, then [`Config::validate`] (done by
/// [`crate::Detector::new`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the agent runs the detector at all (the agent reads this; the detector doesn't).
    /// Default `true`.
    pub enabled: bool,
    /// Windows with fewer samples are skipped: neither judged nor learned from. A p99 of fewer
    /// than ~100 samples is just the window's maximum. Default 100.
    pub min_samples: u64,
    /// Windows (with enough samples) learned before any verdict; the baseline starts at their
    /// median and its spread at their median absolute deviation. Default 30.
    pub warmup_windows: u32,
    /// Weight of each new in-band window in the exponentially weighted baseline and spread;
    /// the half-life is `ln 0.5 / ln(1 - alpha)` windows (6.6 at 0.1). Default 0.1.
    pub alpha: f64,
    /// The band above the baseline is the largest of `band_k` x spread, `band_rel_floor` x
    /// baseline and `band_abs_floor_us`. Default 4 (spread is a mean absolute deviation, so
    /// about 3.2 standard deviations for normal noise).
    pub band_k: f64,
    /// Relative floor of the band: 0.5 = a quantile must rise 50 % above its baseline. Covers
    /// the histogram's bucket quantization (a bucket is up to 25 % wide). Default 0.5.
    pub band_rel_floor: f64,
    /// Absolute floor of the band, so microsecond-scale series don't alert on noise. Default
    /// 100 µs.
    pub band_abs_floor_us: u64,
    /// Consecutive out-of-band windows that raise an anomaly. Default 3.
    pub trigger_windows: u32,
    /// Consecutive in-band windows that end an anomaly. Default 3.
    pub recover_windows: u32,
    /// A series anomalous for this many windows (counting from the first out-of-band one)
    /// accepts its new level: it emits a `Rebaselined` verdict and learns again from scratch,
    /// so a permanent change does not stay an open anomaly forever. 0 = never; else more than
    /// `trigger_windows + recover_windows`. Default 360 (1 h of 10 s windows).
    pub relearn_windows: u32,
    /// Most (workload, metric) series tracked; a new series beyond it takes the slot of one idle
    /// for `idle_secs`, else it is refused and counted. Default 4096.
    pub max_series: usize,
    /// A series not observed for this long may be evicted to make room. Default 900 s.
    pub idle_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            min_samples: 100,
            warmup_windows: 30,
            alpha: 0.1,
            band_k: 4.0,
            band_rel_floor: 0.5,
            band_abs_floor_us: 100,
            trigger_windows: 3,
            recover_windows: 3,
            relearn_windows: 360,
            max_series: 4096,
            idle_secs: 900,
        }
    }
}

/// A config value outside its allowed range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("anomaly.{field} = {value} is invalid: expected {expected}")]
pub struct ConfigError {
    pub field: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl Config {
    /// Checks every range the detector relies on (an `alpha` of 0 would never learn, a NaN
    /// band would never alert).
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn check(
            ok: bool,
            field: &'static str,
            value: impl ToString,
            expected: &'static str,
        ) -> Result<(), ConfigError> {
            if ok {
                Ok(())
            } else {
                Err(ConfigError {
                    field,
                    value: value.to_string(),
                    expected,
                })
            }
        }
        check(
            self.min_samples >= 1,
            "min_samples",
            self.min_samples,
            "at least 1",
        )?;
        check(
            self.warmup_windows >= 1,
            "warmup_windows",
            self.warmup_windows,
            "at least 1",
        )?;
        check(
            self.alpha > 0.0 && self.alpha <= 1.0,
            "alpha",
            self.alpha,
            "0 < alpha <= 1",
        )?;
        check(
            self.band_k.is_finite() && self.band_k > 0.0,
            "band_k",
            self.band_k,
            "a finite number > 0",
        )?;
        check(
            self.band_rel_floor.is_finite() && self.band_rel_floor >= 0.0,
            "band_rel_floor",
            self.band_rel_floor,
            "a finite number >= 0",
        )?;
        check(
            self.trigger_windows >= 1,
            "trigger_windows",
            self.trigger_windows,
            "at least 1",
        )?;
        check(
            self.recover_windows >= 1,
            "recover_windows",
            self.recover_windows,
            "at least 1",
        )?;
        check(
            self.relearn_windows == 0
                || self.relearn_windows > self.trigger_windows.saturating_add(self.recover_windows),
            "relearn_windows",
            self.relearn_windows,
            "0 (never) or more than trigger_windows + recover_windows",
        )?;
        check(
            self.max_series >= 1,
            "max_series",
            self.max_series,
            "at least 1",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Config, serde_yaml::Error> {
        serde_yaml::from_str(yaml)
    }

    #[test]
    fn empty_section_is_the_defaults() {
        let c = parse("{}").unwrap();
        assert_eq!(c, Config::default());
        c.validate().unwrap();
    }

    #[test]
    fn fields_override_individually() {
        let c = parse("band_abs_floor_us: 250\ntrigger_windows: 5\nalpha: 0.05\n").unwrap();
        assert_eq!(c.band_abs_floor_us, 250);
        assert_eq!(c.trigger_windows, 5);
        assert_eq!(c.alpha, 0.05);
        assert_eq!(c.recover_windows, Config::default().recover_windows);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let e = parse("band_floor_us: 250\n").unwrap_err().to_string();
        assert!(e.contains("unknown field `band_floor_us`"), "{e}");
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let bad = [
            ("min_samples: 0", "min_samples"),
            ("warmup_windows: 0", "warmup_windows"),
            ("alpha: 0", "alpha"),
            ("alpha: 1.5", "alpha"),
            ("alpha: .nan", "alpha"),
            ("band_k: -1", "band_k"),
            ("band_k: .inf", "band_k"),
            ("band_rel_floor: -0.1", "band_rel_floor"),
            ("trigger_windows: 0", "trigger_windows"),
            ("recover_windows: 0", "recover_windows"),
            ("relearn_windows: 6", "relearn_windows"),
            ("max_series: 0", "max_series"),
        ];
        for (yaml, field) in bad {
            let err = parse(yaml).unwrap().validate().unwrap_err();
            assert_eq!(err.field, field, "{yaml}");
        }
        let err = parse("alpha: 2").unwrap().validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "anomaly.alpha = 2 is invalid: expected 0 < alpha <= 1"
        );
        parse("relearn_windows: 0").unwrap().validate().unwrap();
        parse("relearn_windows: 7").unwrap().validate().unwrap();
    }
}
