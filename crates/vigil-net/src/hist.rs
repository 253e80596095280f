//! A log-linear histogram for latencies in microseconds.
//!
//! Values 0..=3 have a bucket each; every power of two 2^k (k >= 2) is split into four equal
//! sub-buckets, so a bucket's width is at most a quarter of its lower bound (quantiles are within
//! 25 % of the truth) while a range of 2^40 µs (12.7 days) needs only 157 buckets. Values at or
//! above 2^40 share one last, open-ended bucket. The index math is a shift and a mask so the
//! kernel side can compute the same index in C and hand over counts that merge 1:1.

/// Number of buckets: 4 exact ones, 4 per power of two from 2^2 to 2^39, and the overflow bucket.
pub const BUCKET_COUNT: usize = 4 + (40 - 2) * 4 + 1;

/// The bucket a value falls in: `v` for `v < 4`, else with `k = 63 - leading_zeros(v)`,
/// `4 + (k - 2) * 4 + ((v >> (k - 2)) & 3)`, capped at `BUCKET_COUNT - 1` (values >= 2^40).
pub fn bucket_index(v: u64) -> usize {
    if v < 4 {
        return v as usize;
    }
    let k = 63 - v.leading_zeros() as usize;
    let sub = ((v >> (k - 2)) & 3) as usize;
    (4 + (k - 2) * 4 + sub).min(BUCKET_COUNT - 1)
}

/// The largest value (inclusive) bucket `i` holds; `u64::MAX` for the overflow bucket and for any
/// index past it.
pub fn bucket_upper(i: usize) -> u64 {
    if i < 4 {
        return i as u64;
    }
    if i >= BUCKET_COUNT - 1 {
        return u64::MAX;
    }
    let k = (i - 4) / 4 + 2;
    let sub = ((i - 4) % 4) as u64;
    ((5 + sub) << (k - 2)) - 1
}

/// Counts of u64 values in log-linear buckets, plus their exact count, sum and maximum.
///
/// Only the span of buckets between the smallest and largest value seen is stored (latencies of
/// one edge usually cover a few powers of two), so an empty histogram allocates nothing and a full
/// one at most `BUCKET_COUNT` counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogHist {
    count: u64,
    sum: u64,
    max: u64,
    /// Index of `counts[0]`.
    first: usize,
    /// Counts for buckets `first..first + counts.len()`; both ends are non-zero when non-empty.
    counts: Vec<u64>,
}

impl LogHist {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&mut self, v: u64) {
        self.record_n(v, 1);
    }

    /// Records `n` occurrences of `v` (kernel-side histograms arrive as counts).
    pub fn record_n(&mut self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.count = self.count.saturating_add(n);
        self.sum = self.sum.saturating_add(v.saturating_mul(n));
        self.max = self.max.max(v);
        self.add(bucket_index(v), n);
    }

    /// Adds `other`'s observations, as if each had been recorded here.
    pub fn merge(&mut self, other: &LogHist) {
        if other.count == 0 {
            return;
        }
        self.count = self.count.saturating_add(other.count);
        self.sum = self.sum.saturating_add(other.sum);
        self.max = self.max.max(other.max);
        for (i, n) in other.indexed() {
            self.add(i, n);
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of all recorded values (saturating), for Prometheus' `_sum`.
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// Largest recorded value, `None` when empty.
    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    /// The upper bound of the bucket holding the value of rank `ceil(q * count)`, clamped to the
    /// largest recorded value so a quantile never exceeds anything seen. `q` is clamped to
    /// `0.0..=1.0`; `None` when empty or `q` is NaN.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 || q.is_nan() {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, n) in self.indexed() {
            seen = seen.saturating_add(n);
            if seen >= rank {
                return Some(bucket_upper(i).min(self.max));
            }
        }
        // Unreachable while the bucket counts add up to `count`; saturation aside.
        Some(self.max)
    }

    /// Non-empty buckets in ascending order as (inclusive upper bound, count); the overflow
    /// bucket's bound is `u64::MAX` (Prometheus: `+Inf`).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.indexed().map(|(i, n)| (bucket_upper(i), n))
    }

    /// The compact form the service map serializes.
    pub fn summary(&self) -> Summary {
        Summary {
            count: self.count,
            p50: self.quantile(0.5),
            p99: self.quantile(0.99),
            max: self.max(),
        }
    }

    fn indexed(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        let first = self.first;
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(move |(j, n)| (first + j, *n))
    }

    fn add(&mut self, i: usize, n: u64) {
        if self.counts.is_empty() {
            self.first = i;
            self.counts.push(0);
        } else if i < self.first {
            let grow = self.first - i;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.first = i;
        } else if i >= self.first + self.counts.len() {
            self.counts.resize(i - self.first + 1, 0);
        }
        let slot = &mut self.counts[i - self.first];
        *slot = slot.saturating_add(n);
    }
}

/// Count and quantiles of a [`LogHist`]; quantiles and `max` are omitted when `count` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest value in bucket `i`.
    fn lower(i: usize) -> u64 {
        if i == 0 {
            0
        } else {
            bucket_upper(i - 1) + 1
        }
    }

    #[test]
    fn small_values_are_exact() {
        for v in 0..8 {
            assert_eq!(bucket_index(v), v as usize);
            assert_eq!(bucket_upper(v as usize), v);
        }
    }

    #[test]
    fn index_follows_the_documented_formula() {
        // 8..=15: width 2; 16..=31: width 4; 1000 = 0b1111101000: k = 9, sub = (1000 >> 7) & 3 = 3.
        assert_eq!(bucket_index(8), 8);
        assert_eq!(bucket_index(9), 8);
        assert_eq!(bucket_index(10), 9);
        assert_eq!(bucket_index(15), 11);
        assert_eq!(bucket_index(16), 12);
        assert_eq!(bucket_index(1000), 4 + 7 * 4 + 3);
        assert_eq!(bucket_upper(4 + 7 * 4 + 3), 1023);
        assert_eq!(bucket_index((1 << 40) - 1), BUCKET_COUNT - 2);
        assert_eq!(bucket_upper(BUCKET_COUNT - 2), (1 << 40) - 1);
    }

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        assert_eq!(lower(0), 0);
        for i in 0..BUCKET_COUNT - 1 {
            let (lo, hi) = (lower(i), bucket_upper(i));
            assert!(lo <= hi, "bucket {i}");
            assert_eq!(bucket_index(lo), i, "lower bound of {i}");
            assert_eq!(bucket_index(hi), i, "upper bound of {i}");
            assert_eq!(bucket_index(hi + 1), i + 1, "next after {i}");
            // Width at most a quarter of the lower bound: the quantile error bound.
            if lo >= 4 {
                assert!((hi - lo + 1) * 4 <= lo, "bucket {i} too wide");
            }
        }
    }

    #[test]
    fn huge_values_go_to_the_overflow_bucket() {
        assert_eq!(bucket_index(1 << 40), BUCKET_COUNT - 1);
        assert_eq!(bucket_index(u64::MAX), BUCKET_COUNT - 1);
        assert_eq!(bucket_upper(BUCKET_COUNT - 1), u64::MAX);
        assert_eq!(bucket_upper(BUCKET_COUNT + 10), u64::MAX);
        let mut h = LogHist::new();
        h.record(u64::MAX);
        h.record(u64::MAX);
        assert_eq!(h.sum(), u64::MAX, "sum saturates");
        assert_eq!(h.quantile(0.5), Some(u64::MAX));
        assert_eq!(h.buckets().collect::<Vec<_>>(), vec![(u64::MAX, 2)]);
    }

    #[test]
    fn empty_histogram() {
        let h = LogHist::new();
        assert_eq!(h.count(), 0);
        assert_eq!(h.sum(), 0);
        assert_eq!(h.max(), None);
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(h.buckets().count(), 0);
        let s = h.summary();
        assert_eq!((s.count, s.p50, s.p99, s.max), (0, None, None, None));
    }

    #[test]
    fn count_sum_max_and_buckets() {
        let mut h = LogHist::new();
        h.record(5);
        h.record(100);
        h.record_n(9, 3);
        h.record_n(7, 0);
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum(), 5 + 100 + 27);
        assert_eq!(h.max(), Some(100));
        // 5 exact; 9 in 8..=9; 100 in 96..=111.
        assert_eq!(
            h.buckets().collect::<Vec<_>>(),
            vec![(5, 1), (9, 3), (111, 1)]
        );
    }

    #[test]
    fn quantiles_are_bucket_upper_bounds_clamped_to_max() {
        let mut h = LogHist::new();
        for v in 1..=100 {
            h.record(v);
        }
        // The 50th value (50) lies in 48..=55; the 99th (99) in 96..=111, clamped to max 100.
        assert_eq!(h.quantile(0.5), Some(55));
        assert_eq!(h.quantile(0.99), Some(100));
        assert_eq!(h.quantile(1.0), Some(100));
        assert_eq!(h.quantile(0.0), Some(1), "rank is at least 1");
        assert_eq!(h.quantile(-3.0), Some(1));
        assert_eq!(h.quantile(7.0), Some(100));
        assert_eq!(h.quantile(f64::NAN), None);
        assert_eq!(
            h.summary(),
            Summary {
                count: 100,
                p50: Some(55),
                p99: Some(100),
                max: Some(100),
            }
        );
    }

    #[test]
    fn quantile_error_is_bounded() {
        let mut h = LogHist::new();
        let values: Vec<u64> = (0..2000).map(|i| i * i * 37 + 11).collect();
        for &v in &values {
            h.record(v);
        }
        for q in [0.1, 0.5, 0.9, 0.99] {
            let rank = (q * values.len() as f64).ceil() as usize;
            let truth = values[rank - 1];
            let got = h.quantile(q).unwrap();
            assert!(
                got >= truth && got - truth <= truth / 4,
                "q={q}: {got} vs {truth}"
            );
        }
    }

    #[test]
    fn storage_grows_in_both_directions() {
        let mut h = LogHist::new();
        h.record(1000);
        h.record(2);
        h.record(1 << 30);
        h.record(500);
        let b: Vec<_> = h.buckets().collect();
        assert_eq!(
            b.iter().map(|(_, n)| n).sum::<u64>(),
            4,
            "all counts kept: {b:?}"
        );
        assert_eq!(b.first(), Some(&(2, 1)));
        assert!(b.windows(2).all(|w| w[0].0 < w[1].0), "ascending");
        assert!(h.counts.len() <= BUCKET_COUNT);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = LogHist::new();
        let mut b = LogHist::new();
        let mut all = LogHist::new();
        for v in [3, 70, 70, 1 << 20] {
            a.record(v);
            all.record(v);
        }
        for v in [0, 12, 900, 1 << 41] {
            b.record(v);
            all.record(v);
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, all);
        let mut into_empty = LogHist::new();
        into_empty.merge(&all);
        assert_eq!(into_empty, all);
        merged.merge(&LogHist::new());
        assert_eq!(merged, all);
    }

    #[test]
    fn summary_serializes_compactly() {
        // serde_json is a dev-dependency only; the shape is what the service map API returns.
        let mut h = LogHist::new();
        h.record(7);
        assert_eq!(
            serde_json::to_string(&h.summary()).unwrap(),
            r#"{"count":1,"p50":7,"p99":7,"max":7}"#
        );
        assert_eq!(
            serde_json::to_string(&LogHist::new().summary()).unwrap(),
            r#"{"count":0}"#
        );
    }
}
