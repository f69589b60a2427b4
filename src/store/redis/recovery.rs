//! What the Redis backend does to come back from an outage: detect lost data, write jobs back.

use super::RedisStore;
use super::queue::LEASES_KEY;
use crate::job::{Job, JobId, Priority, Timestamp};
use crate::stats::{hours, tally};
use crate::store::{StoreError, WorkQueue};
use redis::AsyncCommands;
use std::time::Duration;

/// A random id written once into a Redis with no data; if it changes or vanishes, Redis lost
/// its data (a restart without persistence, a flush, eviction) and nothing it holds is trusted.
pub const EPOCH_KEY: &str = "{jobcast}:epoch";

/// How often a write-back reads, merges and tries its compare-and-set before giving up (until
/// the next recovery attempt): each retry means another instance changed the job just then.
pub const RESTORE_TRIES: usize = 16;

/// A stored document the write-back can merge with; one that does not parse is replaced.
fn decode_stored(raw: &str) -> Option<Job> {
    match serde_json::from_str(raw) {
        Ok(job) => Some(job),
        Err(error) => {
            tracing::warn!(%error, "a stored job does not parse; the write-back replaces it");
            None
        }
    }
}

/// What writing `merged` back over `held` (Redis's state of the job, if it had one) adds to
/// the stats, as restore.lua reads it: `[[hash key, its EXPIREAT, field...], ...]`.
fn stats_of_write_back(held: Option<&Job>, merged: &Job) -> String {
    let tallies = tally::of_write_back(held, merged).into_iter().map(|tally| {
        let mut entry = vec![
            hours::key_of(tally.hour),
            hours::expires_at_secs(tally.hour).to_string(),
        ];
        entry.extend(tally.fields);
        entry
    });
    serde_json::to_string(&tallies.collect::<Vec<_>>()).unwrap_or_default()
}

/// What writing one job back did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restored {
    /// Redis already had this state or one that includes it.
    Kept,
    /// Redis had another state; the merge of both replaced it.
    Updated,
    /// Redis had no such key (expired, evicted or flushed); ours was put back.
    Recreated,
}

impl RedisStore {
    /// The data epoch of this Redis, setting one if it has none.
    pub async fn epoch(&self) -> Result<String, StoreError> {
        let mut connection = self.connection();
        let fresh = uuid::Uuid::new_v4().to_string();
        let _: Option<String> = redis::cmd("SET")
            .arg(EPOCH_KEY)
            .arg(&fresh)
            .arg("NX")
            .query_async(&mut connection)
            .await?;
        Ok(connection.get(EPOCH_KEY).await?)
    }

    /// Merges `job` into what Redis holds (see [`Job::merged_with`]) and writes the merge back
    /// in one compare-and-set, reading and merging again when another instance changed the job
    /// in between. Returns what it did and the job as Redis now holds it.
    pub async fn restore(&self, job: &Job) -> Result<(Restored, Job), StoreError> {
        for _ in 0..RESTORE_TRIES {
            let stored: Option<String> = self.connection().get(job.job_id.key()).await?;
            let held = stored.as_deref().and_then(decode_stored);
            let (outcome, merged) = match &held {
                Some(held) => match job.written_over(held) {
                    Some(merged) => (Restored::Updated, merged),
                    None => return Ok((Restored::Kept, held.clone())),
                },
                None => (Restored::Recreated, job.clone()),
            };
            let left = merged.expires_at.0 - Timestamp::now().0;
            let left_ms = u64::try_from(left.num_milliseconds()).unwrap_or(0);
            if left_ms == 0 {
                return Ok((Restored::Kept, merged)); // expired meanwhile: nothing to bring back
            }
            let written: i64 = self
                .scripts
                .restore
                .key(job.job_id.key())
                .arg(stored.as_deref().unwrap_or_default())
                .arg(merged.to_json())
                .arg(left_ms)
                .arg(stats_of_write_back(held.as_ref(), &merged))
                .invoke_async(&mut self.connection())
                .await?;
            if written == 1 {
                return Ok((outcome, merged));
            }
        }
        Err(StoreError::Contended)
    }

    /// Puts jobs queued (with their priorities, in claim order) or leased in memory back on the
    /// Redis queue and leases.
    pub async fn restore_work(
        &self,
        queued: &[(JobId, Priority)],
        leased: &[JobId],
        lease: Duration,
    ) -> Result<(), StoreError> {
        for &(id, priority) in queued {
            self.enqueue(id, priority).await?;
        }
        if leased.is_empty() {
            return Ok(());
        }
        let deadline = Timestamp::now().0.timestamp_millis() + lease.as_millis() as i64;
        let mut pipeline = redis::pipe();
        for id in leased {
            pipeline.zadd(LEASES_KEY, id.to_string(), deadline).ignore();
        }
        let _: () = pipeline.query_async(&mut self.connection()).await?;
        Ok(())
    }

    /// Warns when Redis may evict keys: job keys and leases would vanish under memory pressure.
    pub async fn check_eviction_policy(&self) {
        let reply: Result<(String, String), _> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut self.connection())
            .await;
        match reply {
            Ok((_, policy)) if policy == "noeviction" => {}
            Ok((_, policy)) => tracing::warn!(
                %policy,
                "Redis maxmemory-policy is not noeviction: under memory pressure Redis may evict job \
                 keys and leases, losing jobs; set `maxmemory-policy noeviction`"
            ),
            Err(error) => {
                tracing::info!(%error, "cannot read Redis maxmemory-policy (CONFIG is disabled?)")
            }
        }
    }
}
