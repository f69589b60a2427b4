//! The Redis job index: a sorted set of job ids scored by creation time, pruned as keys expire.

use super::{RedisStore, decode};
use crate::job::{Job, JobId};
use crate::store::StoreError;
use crate::store::listing::{Cursor, JobPage, ListQuery, collect_page};
use redis::AsyncCommands;

/// Job ids scored by creation time in milliseconds, under the queue's hash tag.
pub const INDEX_KEY: &str = "{jobcast}:index";
/// How many of the oldest index entries one prune looks at.
pub const PRUNE_BATCH: isize = 500;
/// Extra entries read past a cursor, to step over jobs created in the same millisecond.
const SAME_MILLISECOND_MARGIN: usize = 32;

impl RedisStore {
    /// Adds `job` to the index (idempotent).
    pub async fn index(&self, job: &Job) -> Result<(), StoreError> {
        let score = job.created_at.0.timestamp_millis();
        let _: () = self
            .connection()
            .zadd(INDEX_KEY, job.job_id.to_string(), score)
            .await?;
        Ok(())
    }

    /// A page of jobs, newest first; entries whose job has expired are dropped from the index.
    pub async fn list_page(&self, query: &ListQuery) -> Result<JobPage, StoreError> {
        collect_page(query, |after, count| self.read_index(after, count)).await
    }

    async fn read_index(
        &self,
        after: Option<Cursor>,
        count: usize,
    ) -> Result<Vec<(Cursor, Option<Job>)>, StoreError> {
        let max = after.map_or("+inf".to_owned(), |cursor| cursor.created_ms.to_string());
        let entries: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(INDEX_KEY)
            .arg(max)
            .arg("-inf")
            .arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(count + SAME_MILLISECOND_MARGIN)
            .arg("WITHSCORES")
            .query_async(&mut self.connection())
            .await?;
        let cursors: Vec<Cursor> = entries
            .iter()
            .filter_map(|(id, score)| {
                Some(Cursor {
                    created_ms: *score as i64,
                    job_id: id.parse().ok()?,
                })
            })
            .filter(|cursor| after.is_none_or(|after| *cursor < after))
            .take(count)
            .collect();
        let documents = self.get_many(cursors.iter().map(|c| c.job_id)).await?;
        let expired: Vec<String> = cursors
            .iter()
            .zip(&documents)
            .filter(|(_, json)| json.is_none())
            .map(|(c, _)| c.job_id.to_string())
            .collect();
        if !expired.is_empty() {
            let _: () = self.connection().zrem(INDEX_KEY, expired).await?;
        }
        // A corrupt record is skipped (and logged by `decode`), its index entry kept: it expires
        // with its key like any other.
        Ok(cursors
            .into_iter()
            .zip(documents)
            .map(|(cursor, json)| {
                let job = json.and_then(|json| decode(cursor.job_id, &json).ok());
                (cursor, job)
            })
            .collect())
    }

    /// The stored documents with these ids, `None` where one has expired; one round trip.
    async fn get_many(
        &self,
        ids: impl Iterator<Item = JobId>,
    ) -> Result<Vec<Option<String>>, StoreError> {
        let mut pipeline = redis::pipe();
        let mut any = false;
        for id in ids {
            pipeline.get(id.key());
            any = true;
        }
        if !any {
            return Ok(Vec::new());
        }
        Ok(pipeline.query_async(&mut self.connection()).await?)
    }

    /// Drops index entries of expired jobs, looking at the oldest [`PRUNE_BATCH`]; how many.
    pub async fn prune_index(&self) -> Result<usize, StoreError> {
        let oldest: Vec<String> = self
            .connection()
            .zrange(INDEX_KEY, 0, PRUNE_BATCH - 1)
            .await?;
        if oldest.is_empty() {
            return Ok(0);
        }
        let mut pipeline = redis::pipe();
        for id in &oldest {
            pipeline.exists(format!("job:{id}"));
        }
        let exists: Vec<bool> = pipeline.query_async(&mut self.connection()).await?;
        let gone: Vec<&String> = oldest
            .iter()
            .zip(exists)
            .filter(|(_, exists)| !exists)
            .map(|(id, _)| id)
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        Ok(self.connection().zrem(INDEX_KEY, gone).await?)
    }
}
