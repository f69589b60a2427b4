//! What the Redis backend does to come back from an outage: detect lost data, write jobs back.

use super::RedisStore;
use super::queue::{LEASES_KEY, QUEUE_KEY};
use crate::job::{Job, JobId, Timestamp};
use crate::store::StoreError;
use redis::AsyncCommands;
use std::time::Duration;

/// A random id written once into a Redis with no data; if it changes or vanishes, Redis lost
/// its data (a restart without persistence, a flush, eviction) and nothing it holds is trusted.
pub const EPOCH_KEY: &str = "{jobcast}:epoch";

/// What writing one job back did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restored {
    /// Redis already had this state or a newer one.
    Kept,
    /// Redis had an older state; ours replaced it.
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

    /// Writes `job` back unless Redis has the same seq or a newer one.
    pub async fn restore(&self, job: &Job) -> Result<Restored, StoreError> {
        let left = job.expires_at.0 - Timestamp::now().0;
        let left_ms = u64::try_from(left.num_milliseconds()).unwrap_or(0);
        if left_ms == 0 {
            return Ok(Restored::Kept); // expired meanwhile: nothing to bring back
        }
        let outcome: i64 = self
            .scripts
            .restore
            .key(job.job_id.key())
            .arg(job.to_json())
            .arg(job.seq)
            .arg(left_ms)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(match outcome {
            1 => Restored::Updated,
            2 => Restored::Recreated,
            _ => Restored::Kept,
        })
    }

    /// Puts jobs queued or leased in memory back on the Redis queue and leases.
    pub async fn restore_work(
        &self,
        queued: &[JobId],
        leased: &[JobId],
        lease: Duration,
    ) -> Result<(), StoreError> {
        if queued.is_empty() && leased.is_empty() {
            return Ok(());
        }
        let mut pipeline = redis::pipe();
        for id in queued {
            pipeline.rpush(QUEUE_KEY, id.to_string()).ignore();
        }
        let deadline = Timestamp::now().0.timestamp_millis() + lease.as_millis() as i64;
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
