//! The memory store's analytics: the counters of each hour, as Redis's hashes hold them,
//! counted under the store's lock in the step that makes each change.

use super::MemoryStore;
use crate::job::Timestamp;
use crate::stats::hours::expires_at_secs;
use crate::stats::{Counters, Tally};
use crate::store::{Stats, StoreError};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// Each hour's counters, by hour since the epoch; an hour goes when its Redis hash would.
#[derive(Default)]
pub struct Hours {
    /// Shared with readers, which take them without copying; a write to an hour a reader still
    /// holds copies it first (`Arc::make_mut`).
    hours: BTreeMap<i64, Arc<Counters>>,
}

impl Hours {
    /// Adds one to each of `tally`'s counters, dropping the hours that have expired (a tally
    /// of an hour that has expired is dropped too, as Redis's `EXPIREAT` in the past would).
    pub fn add(&mut self, tally: Tally) {
        let now_secs = Timestamp::now().0.timestamp();
        while let Some((&oldest, _)) = self.hours.first_key_value()
            && expires_at_secs(oldest) <= now_secs
        {
            self.hours.remove(&oldest);
        }
        if expires_at_secs(tally.hour) <= now_secs {
            return;
        }
        let counters = Arc::make_mut(self.hours.entry(tally.hour).or_default());
        for field in tally.fields {
            *counters.entry(field).or_default() += 1;
        }
    }
}

impl Stats for MemoryStore {
    async fn stats_hours(
        &self,
        hours: RangeInclusive<i64>,
    ) -> Result<Vec<Arc<Counters>>, StoreError> {
        let now_secs = Timestamp::now().0.timestamp();
        let state = self.lock();
        let kept = &state.stats.hours;
        let counters_of = |hour| match kept.get(&hour) {
            Some(counters) if expires_at_secs(hour) > now_secs => Arc::clone(counters),
            _ => Arc::default(),
        };
        Ok(hours.map(counters_of).collect())
    }
}
