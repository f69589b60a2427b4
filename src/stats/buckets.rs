//! The fixed histogram of durations: logarithmic buckets, eight per doubling, so that a
//! bucket's representative value is within [`ERROR_BOUND`] of any duration in it.
//!
//! transition.lua computes the same bucket of a duration (`bucket_of` there): keep the two in
//! step (a test below reads the script's constants).

/// Buckets per doubling: bucket bounds grow by 2^(1/8) ≈ 1.0905.
pub const BUCKETS_PER_DOUBLING: u32 = 8;
/// The last bucket: 2^42 ms (139 years) and more all land here.
pub const MAX_BUCKET: u32 = 1 + 42 * BUCKETS_PER_DOUBLING;
/// How far a reported percentile may be from the true one, as a fraction of the true value:
/// the geometric middle of a bucket is within 2^(1/16) − 1 ≈ 4.43% of either bound, and the
/// reported value is rounded to the microsecond.
pub const ERROR_BOUND: f64 = 0.045;

/// The bucket of a duration of `ms` milliseconds: bucket 0 holds 0 ms (and the negative
/// durations a skewed clock can give), bucket k ≥ 1 holds [2^((k−1)/8), 2^(k/8)) ms.
pub fn bucket_of(ms: i64) -> u32 {
    if ms < 1 {
        return 0;
    }
    // The nudge keeps exact powers of two (1, 2, 4... ms) in the bucket they start, whatever
    // the last bit of the logarithm; Lua computes the very same expression.
    let exponent = f64::from(BUCKETS_PER_DOUBLING) * (ms as f64).ln() / 2f64.ln() + 1e-12;
    (1 + exponent.floor() as u32).min(MAX_BUCKET)
}

/// The bounds of bucket `k` in ms: from (inclusive) and to (exclusive).
pub fn bounds(k: u32) -> (f64, f64) {
    if k == 0 {
        return (0.0, 1.0);
    }
    let step = f64::from(BUCKETS_PER_DOUBLING);
    (
        2f64.powf(f64::from(k - 1) / step),
        2f64.powf(f64::from(k) / step),
    )
}

/// What bucket `k` reports: its geometric middle (0 for bucket 0), in ms rounded to the µs.
pub fn representative(k: u32) -> f64 {
    if k == 0 {
        return 0.0;
    }
    let (from, to) = bounds(k);
    ((from * to).sqrt() * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_falls_within_its_buckets_bounds() {
        for ms in (1..5_000).chain([65_536, 1_000_000, 86_400_000, 2_592_000_000]) {
            let (from, to) = bounds(bucket_of(ms));
            assert!(
                from <= ms as f64 && (ms as f64) < to,
                "{ms} in [{from}, {to})"
            );
        }
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(-40), 0, "a skewed clock's negative duration");
    }

    #[test]
    fn powers_of_two_start_their_bucket() {
        for power in 0..40 {
            let k = bucket_of(1 << power);
            assert_eq!(k, 1 + power * BUCKETS_PER_DOUBLING, "2^{power} ms");
            if power >= 4 {
                assert_eq!(
                    bucket_of((1 << power) - 1),
                    k - 1,
                    "just below 2^{power} ms"
                );
            }
        }
    }

    #[test]
    fn the_representative_is_within_the_error_bound_of_every_duration_in_the_bucket() {
        for ms in (1..20_000).chain((20_000..100_000_000).step_by(9_973)) {
            let reported = representative(bucket_of(ms));
            let error = (reported - ms as f64).abs() / ms as f64;
            assert!(
                error <= ERROR_BOUND,
                "{ms} ms reported as {reported}: {error}"
            );
        }
        assert_eq!(representative(0), 0.0);
    }

    #[test]
    fn very_long_durations_share_the_last_bucket() {
        assert_eq!(bucket_of(i64::MAX), MAX_BUCKET);
        assert_eq!(bucket_of(1 << 50), MAX_BUCKET);
    }

    #[test]
    fn transition_lua_buckets_with_the_same_constants() {
        let script = include_str!("../store/redis/transition.lua");
        let constants = format!(
            "local BUCKETS_PER_DOUBLING, MAX_BUCKET = {BUCKETS_PER_DOUBLING}, {MAX_BUCKET}"
        );
        assert!(script.contains(&constants), "transition.lua: {constants}");
    }
}
