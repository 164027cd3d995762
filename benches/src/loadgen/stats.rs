//! Numbers out of measurements: latency histograms (hdrhistogram, nanoseconds, 3 significant
//! digits), their percentile summary, histogram buckets for the plot, and the median and spread
//! of a value over repeated runs.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency recorded (60 s); larger values are clamped to it.
const MAX_NS: u64 = 60_000_000_000;

/// A latency histogram in nanoseconds.
#[derive(Debug, Clone)]
pub struct LatencyHist(Histogram<u64>);

impl Default for LatencyHist {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHist {
    /// Empty, 1 ns – 60 s at 3 significant digits.
    pub fn new() -> Self {
        Self(Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds"))
    }

    /// Records one value (clamped to 1 ns – 60 s).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        let _ = self.0.record(ns.clamp(1, MAX_NS));
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &LatencyHist) {
        let _ = self.0.add(&other.0);
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Forgets every value.
    pub fn clear(&mut self) {
        self.0.reset();
    }

    /// The value at quantile `q` (0–1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1e6
    }

    /// Percentile summary in milliseconds.
    pub fn summary(&self) -> Percentiles {
        if self.0.is_empty() {
            return Percentiles::default();
        }
        let ms = |v: u64| v as f64 / 1e6;
        Percentiles {
            count: self.0.len(),
            mean_ms: self.0.mean() / 1e6,
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p90_ms: ms(self.0.value_at_quantile(0.90)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            p999_ms: ms(self.0.value_at_quantile(0.999)),
            max_ms: ms(self.0.max()),
        }
    }

    /// Counts in log-spaced buckets (`per_decade` per power of ten), from the bucket holding the
    /// minimum to the one holding the maximum: `(upper bound in ms, count)`.
    pub fn log_buckets(&self, per_decade: u32) -> Vec<(f64, u64)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        let step = 10f64.powf(1.0 / f64::from(per_decade));
        let lo_ns = self.0.min().max(1) as f64;
        let mut upper = 10f64.powf((lo_ns.log10() * f64::from(per_decade)).floor() / f64::from(per_decade));
        let mut out = Vec::new();
        let mut below = 0u64;
        loop {
            upper *= step;
            let at = self.0.count_between(0, upper as u64);
            out.push((upper / 1e6, at - below));
            below = at;
            if upper >= self.0.max() as f64 {
                break;
            }
        }
        out
    }
}

/// Latency percentiles (ms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// The median and range of one measure over repeated runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Runs that had the measure.
    pub n: usize,
}

impl Spread {
    /// Over `values` (NaN values are left out); all zero when none remain.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Spread { median, min: v[0], max: v[n - 1], n }
    }

    /// `median (min–max)` with `decimals` decimals; `median` alone for one run, `—` for none.
    pub fn show(&self, decimals: usize) -> String {
        match self.n {
            0 => "—".to_owned(),
            1 => format!("{:.*}", decimals, self.median),
            _ => {
                format!("{:.*} ({:.*}–{:.*})", decimals, self.median, decimals, self.min, decimals, self.max)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = LatencyHist::new();
        for i in 1..=1000u64 {
            h.record(i * 1_000_000); // 1..1000 ms
        }
        let s = h.summary();
        assert_eq!(s.count, 1000);
        let near = |a: f64, b: f64| (a - b).abs() / b < 0.002;
        assert!(near(s.p50_ms, 500.0), "{s:?}");
        assert!(near(s.p99_ms, 990.0), "{s:?}");
        assert!(near(s.p999_ms, 999.0), "{s:?}");
        assert!(near(s.max_ms, 1000.0), "{s:?}");
        assert!(near(s.mean_ms, 500.5), "{s:?}");
        assert_eq!(LatencyHist::new().summary(), Percentiles::default());
    }

    #[test]
    fn merge_and_clamp() {
        let mut a = LatencyHist::new();
        let mut b = LatencyHist::new();
        a.record(0);
        b.record(u64::MAX);
        a.merge(&b);
        assert_eq!(a.len(), 2);
        assert!(a.summary().max_ms >= 59_000.0);
    }

    #[test]
    fn log_buckets_cover_every_value() {
        let mut h = LatencyHist::new();
        for v in [150_000u64, 300_000, 450_000, 2_000_000, 9_000_000] {
            h.record(v);
        }
        let b = h.log_buckets(10);
        assert_eq!(b.iter().map(|(_, c)| c).sum::<u64>(), 5);
        assert!(b.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(b.last().unwrap().0 >= 9.0);
    }

    #[test]
    fn spread_median_and_range() {
        let s = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        assert_eq!(Spread::of([4.0, 1.0, 3.0, 2.0]).median, 2.5);
        assert_eq!(Spread::of([f64::NAN, 5.0]).n, 1);
        assert_eq!(Spread::of([]).show(1), "—");
        assert_eq!(Spread::of([1.25]).show(1), "1.2");
        assert_eq!(Spread::of([1.0, 2.0, 3.0]).show(1), "2.0 (1.0–3.0)");
    }
}
