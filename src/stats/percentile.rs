//! Percentiles from a histogram of fixed buckets: the nearest-rank percentile, reported as the
//! representative value of the bucket it falls in.

use super::buckets::representative;
use std::collections::BTreeMap;

/// How many durations fell in each bucket (buckets with none are absent).
pub type Histogram = BTreeMap<u32, u64>;

/// The `p`-th percentile (0 < p ≤ 1) of the durations counted in `histogram`, in ms: the
/// representative value of the bucket that holds the ⌈p·n⌉-th smallest of the n durations.
/// `None` when there are none.
pub fn percentile(histogram: &Histogram, p: f64) -> Option<f64> {
    let total: u64 = histogram.values().sum();
    if total == 0 {
        return None;
    }
    let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    histogram.iter().find_map(|(&bucket, &count)| {
        seen += count;
        (seen >= rank).then(|| representative(bucket))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::buckets::bucket_of;

    fn histogram_of(durations: &[i64]) -> Histogram {
        let mut histogram = Histogram::new();
        for &ms in durations {
            *histogram.entry(bucket_of(ms)).or_default() += 1;
        }
        histogram
    }

    #[test]
    fn no_durations_have_no_percentile() {
        assert_eq!(percentile(&Histogram::new(), 0.5), None);
    }

    #[test]
    fn percentiles_land_in_the_bucket_of_the_nearest_rank() {
        // 1..=100 ms: p50 is the 50th (50 ms), p95 the 95th, p99 the 99th.
        let durations: Vec<i64> = (1..=100).collect();
        let histogram = histogram_of(&durations);
        for (p, nth) in [(0.5, 50), (0.95, 95), (0.99, 99), (1.0, 100)] {
            let reported = percentile(&histogram, p).unwrap();
            assert_eq!(reported, representative(bucket_of(nth)), "p{p}");
            assert!((reported - nth as f64).abs() / nth as f64 <= 0.045);
        }
    }

    #[test]
    fn one_slow_job_in_a_hundred_shows_at_p99_only() {
        let mut durations = vec![200; 99];
        durations.push(60_000);
        let histogram = histogram_of(&durations);
        let p95 = percentile(&histogram, 0.95).unwrap();
        let p99 = percentile(&histogram, 0.99).unwrap();
        let p100 = percentile(&histogram, 1.0).unwrap();
        assert!((190.0..210.0).contains(&p95) && (190.0..210.0).contains(&p99));
        assert!((57_000.0..63_000.0).contains(&p100), "{p100}");
    }
}
