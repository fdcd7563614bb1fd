//! `AtomicHistogram`: a fixed-bucket latency histogram that records with atomic adds only.
//!
//! Why not `prometheus_client::metrics::histogram::Histogram`: in 0.23 its `observe` takes a
//! `parking_lot::RwLock` write lock (see its `TODO: Consider using atomics`), which every request on
//! every core would contend for. This type keeps one `AtomicU64` per bucket plus the sum in
//! nanoseconds, and implements prometheus-client's `EncodeMetric` so it sits in a `Family` like the
//! stock histogram and renders the same exposition.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds in seconds for request durations: sub-millisecond local answers up to slow upstreams.
pub(crate) const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram of durations; clones share the same buckets.
#[derive(Clone, Debug)]
pub(crate) struct AtomicHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bounds: &'static [f64],
    /// One counter per bound, plus the `+Inf` bucket last. Not cumulative: encoding sums them.
    buckets: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with these ascending upper bounds (seconds); `+Inf` is added.
    pub(crate) fn new(bounds: &'static [f64]) -> AtomicHistogram {
        AtomicHistogram {
            inner: Arc::new(Inner {
                bounds,
                buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                sum_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// Record one duration. Two relaxed atomic adds; no lock, no allocation.
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        // First bucket whose upper bound is >= the value (Prometheus buckets are `le`).
        let i = self.inner.bounds.partition_point(|b| *b < secs);
        if let Some(bucket) = self.inner.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many values were recorded.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.inner
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }

    /// The sum of recorded values, in seconds.
    pub(crate) fn sum_seconds(&self) -> f64 {
        self.inner.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// `(upper bound, count in this bucket)` pairs, `+Inf` as `f64::MAX` (what prometheus-client's
    /// encoder expects; it makes them cumulative).
    fn snapshot(&self) -> Vec<(f64, u64)> {
        self.inner
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(self.inner.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect()
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets = self.snapshot();
        // The count is derived from the buckets read just now, so `_count` always equals the
        // `+Inf` bucket even while requests are being recorded concurrently.
        let count = buckets.iter().map(|(_, c)| c).sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum_seconds(), count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_is_not_smaller() {
        let h = AtomicHistogram::new(&[0.1, 1.0]);
        h.observe(Duration::from_millis(100)); // exactly on a bound: `le` includes it
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(5));
        assert_eq!(
            h.snapshot(),
            vec![(0.1, 1), (1.0, 1), (f64::MAX, 1)],
            "one value per bucket"
        );
        assert_eq!(h.count(), 3);
        assert!((h.sum_seconds() - 5.6).abs() < 1e-9);
    }

    #[test]
    fn encodes_cumulative_buckets_like_the_stock_histogram() {
        let h = AtomicHistogram::new(&[0.1, 1.0]);
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(500));
        let mut registry = Registry::default();
        registry.register("latency_seconds", "Latency", h.clone());
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        assert!(out.contains("# TYPE latency_seconds histogram\n"), "{out}");
        assert!(out.contains("latency_seconds_count 2\n"), "{out}");
        assert!(
            out.contains("latency_seconds_bucket{le=\"0.1\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("latency_seconds_bucket{le=\"1.0\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("latency_seconds_bucket{le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("latency_seconds_sum 0.55\n"), "{out}");
    }
}
