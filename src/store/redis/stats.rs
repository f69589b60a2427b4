//! The Redis analytics: one hash per hour, `{jobcast}:stats:<hour>`, counted into by create.lua
//! and transition.lua (and by the write-back, restore.lua), read a day of hours per pipeline.

use super::RedisStore;
use crate::stats::Counters;
use crate::stats::fields::counters_of;
use crate::stats::hours::key_of;
use crate::store::{Stats, StoreError};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// How many hours' hashes one pipeline reads. A 30-day window is 720 hashes, each field two bulk
/// strings: read at once they could take longer to parse than a command may (then the store
/// would take it for an outage), so a window is read a day at a time.
pub const STATS_HOURS_PER_READ: usize = 24;

impl Stats for RedisStore {
    async fn stats_hours(
        &self,
        hours: RangeInclusive<i64>,
    ) -> Result<Vec<Arc<Counters>>, StoreError> {
        let hours: Vec<i64> = hours.collect();
        let mut counters = Vec::with_capacity(hours.len());
        for day in hours.chunks(STATS_HOURS_PER_READ) {
            let mut pipeline = redis::pipe();
            for &hour in day {
                pipeline.hgetall(key_of(hour));
            }
            let hashes: Vec<redis::RedisResult<Vec<(String, String)>>> = pipeline
                .ignore_errors()
                .query_async(&mut self.connection())
                .await?;
            counters.extend(day.iter().zip(hashes).map(|(hour, hash)| match hash {
                Ok(hash) => Arc::new(counters_of(hash)),
                // Outside data: a key of another type (written by hand) counts as an empty hour.
                Err(error) => {
                    tracing::warn!(key = key_of(*hour), %error, "a stats hour is unreadable; skipped");
                    Arc::default()
                }
            }));
        }
        Ok(counters)
    }
}
