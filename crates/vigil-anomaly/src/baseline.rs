//! One quantile's baseline: a winsorized exponentially weighted location and spread.
//!
//! The location moves toward each learned value by `alpha` times the residual clipped to the
//! band, so no single window moves it by more than `alpha` x band (a Huber-type M-estimate, as
//! in robust exponential smoothing); the spread is the EW mean of the same clipped absolute
//! residuals. Windows above the band are not learned at all (the detector holds them out), so
//! outliers have no influence and slow drift, which stays inside the band, is followed.

use crate::Config;

/// Mean absolute deviation over median absolute deviation for normal noise (0.7979 / 0.6745),
/// so the warm-up MAD starts the spread on the scale the EW updates keep it on.
const MAD_TO_MEAN_DEV: f64 = 1.1829;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Track {
    /// Typical value of the quantile, µs.
    pub level: f64,
    /// Typical absolute deviation from `level`, µs.
    pub spread: f64,
}

impl Track {
    /// Starts from warm-up values with their median and median absolute deviation, which a
    /// minority of outlier windows cannot move. `values` must be non-empty; it is reordered.
    pub fn from_warmup(values: &mut [f64]) -> Track {
        let level = median(values);
        for v in values.iter_mut() {
            *v = (*v - level).abs();
        }
        Track {
            level,
            spread: median(values) * MAD_TO_MEAN_DEV,
        }
    }

    /// How far above `level` a value may be before it counts as out of band.
    pub fn band(&self, cfg: &Config) -> f64 {
        (cfg.band_k * self.spread)
            .max(cfg.band_rel_floor * self.level)
            .max(cfg.band_abs_floor_us as f64)
    }

    /// Learns an in-band value; `band` is [`Track::band`] before the update.
    pub fn learn(&mut self, x: f64, band: f64, alpha: f64) {
        // level stays >= 0: x >= 0 gives r >= -level, so the clipped step is >= -alpha * level.
        let r = (x - self.level).clamp(-band, band);
        self.level += alpha * r;
        self.spread += alpha * (r.abs() - self.spread);
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_ignores_a_minority_of_outliers() {
        let mut v = [200.0, 210.0, 190.0, 5000.0, 205.0, 195.0, 9000.0];
        let t = Track::from_warmup(&mut v);
        assert_eq!(t.level, 205.0);
        // |dev| sorted: 0 5 5 10 15 4795 8795 -> median 10.
        assert!((t.spread - 10.0 * MAD_TO_MEAN_DEV).abs() < 1e-9, "{t:?}");
        let mut even = [1.0, 3.0];
        assert_eq!(Track::from_warmup(&mut even).level, 2.0);
    }

    #[test]
    fn band_is_the_largest_of_spread_relative_and_absolute() {
        let cfg = Config::default();
        let t = |level, spread| Track { level, spread }.band(&cfg);
        assert_eq!(t(10.0, 1.0), 100.0, "absolute floor");
        assert_eq!(t(1000.0, 50.0), 500.0, "relative floor");
        assert_eq!(t(1000.0, 200.0), 800.0, "k x spread");
    }

    #[test]
    fn one_update_moves_the_level_at_most_alpha_band() {
        let mut t = Track {
            level: 200.0,
            spread: 20.0,
        };
        t.learn(1_000_000.0, 100.0, 0.1);
        assert_eq!(t.level, 210.0);
        t.learn(0.0, 100.0, 0.1);
        assert_eq!(t.level, 200.0);
        let mut low = Track {
            level: 5.0,
            spread: 0.0,
        };
        low.learn(0.0, 100.0, 1.0);
        assert_eq!(low.level, 0.0, "never negative");
    }

    #[test]
    fn level_converges_to_a_new_in_band_value() {
        let mut t = Track {
            level: 200.0,
            spread: 0.0,
        };
        for _ in 0..100 {
            t.learn(240.0, 100.0, 0.1);
        }
        assert!((t.level - 240.0).abs() < 0.01, "{t:?}");
        assert!(
            t.spread < 0.1,
            "spread decays once the value is steady: {t:?}"
        );
    }
}
