//! The Redis analytics: one hash per hour, `{jobcast}:stats:<hour>`, counted into by create.lua
//! and transition.lua (and by the write-back, restore.lua) and read with one pipeline.

use super::RedisStore;
use crate::stats::Counters;
use crate::stats::fields::counters_of;
use crate::stats::hours::key_of;
use crate::store::{Stats, StoreError};
use std::collections::HashMap;
use std::ops::RangeInclusive;

impl Stats for RedisStore {
    async fn stats_hours(&self, hours: RangeInclusive<i64>) -> Result<Vec<Counters>, StoreError> {
        let mut pipeline = redis::pipe();
        for hour in hours {
            pipeline.hgetall(key_of(hour));
        }
        let hashes: Vec<HashMap<String, String>> =
            pipeline.query_async(&mut self.connection()).await?;
        Ok(hashes.into_iter().map(counters_of).collect())
    }
}
