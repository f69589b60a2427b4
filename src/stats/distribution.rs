//! A histogram as `GET /api/v4/stats` answers it: its p50, p95 and p99 and its buckets.

use super::buckets::{ERROR_BOUND, bounds};
use super::percentile::{Histogram, percentile};
use serde::Serialize;
use utoipa::ToSchema;

/// Percentiles from a histogram of fixed logarithmic buckets (bounds growing by 2^(1/8)):
/// each is the geometric middle of the bucket the true percentile is in, so within ±4.5% of
/// it (`error_bound`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Distribution {
    /// How many jobs were measured.
    pub count: u64,
    /// The median, in ms; `null` when none was measured.
    #[schema(required = true)]
    pub p50: Option<f64>,
    #[schema(required = true)]
    pub p95: Option<f64>,
    #[schema(required = true)]
    pub p99: Option<f64>,
    /// The largest relative error of a reported percentile: 0.045.
    pub error_bound: f64,
    /// The histogram: every bucket with something in it, shortest first.
    pub buckets: Vec<BucketCount>,
}

/// One bucket of a histogram.
#[derive(Debug, Serialize, ToSchema)]
pub struct BucketCount {
    /// Its lower bound in ms (included).
    pub from_ms: f64,
    /// Its upper bound in ms (excluded).
    pub to_ms: f64,
    pub count: u64,
}

impl Distribution {
    /// The percentiles and buckets of `histogram`.
    pub fn of(histogram: &Histogram) -> Self {
        let buckets = histogram.iter().map(|(&bucket, &count)| {
            let (from_ms, to_ms) = bounds(bucket);
            BucketCount {
                from_ms,
                to_ms,
                count,
            }
        });
        Self {
            count: histogram.values().sum(),
            p50: percentile(histogram, 0.50),
            p95: percentile(histogram, 0.95),
            p99: percentile(histogram, 0.99),
            error_bound: ERROR_BOUND,
            buckets: buckets.collect(),
        }
    }
}
