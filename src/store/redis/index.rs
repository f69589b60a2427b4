//! The Redis job index: a sorted set of job ids scored by creation time, pruned as keys expire.

use super::{RedisStore, decode};
use crate::job::{Job, JobId};
use crate::store::JobStore;
use crate::store::StoreError;
use crate::store::listing::{Cursor, HeadPage, JobHead, JobPage, ListQuery, collect_page};
use redis::AsyncCommands;
use std::collections::HashMap;

/// Job ids scored by creation time in milliseconds, under the queue's hash tag.
pub const INDEX_KEY: &str = "{jobcast}:index";
/// How many of the oldest index entries one prune looks at.
pub const PRUNE_BATCH: isize = 500;
/// How much of a stored job is read for its head: the fields it needs come first (see `Job`), so
/// this is enough unless `current_step` is unusually long, when the whole record is read.
pub const HEAD_BYTES: isize = 512;
/// Extra entries read past a cursor, to step over entries scored in the same millisecond.
pub(super) const SAME_MILLISECOND_MARGIN: usize = 32;

impl RedisStore {
    /// A page of jobs, newest first; entries whose job has expired are dropped from the index.
    pub async fn list_page(&self, query: &ListQuery) -> Result<JobPage, StoreError> {
        collect_page(query, |after, count| self.read_index(query, after, count)).await
    }

    async fn read_index(
        &self,
        query: &ListQuery,
        after: Option<Cursor>,
        count: usize,
    ) -> Result<Vec<(Cursor, Option<Job>)>, StoreError> {
        let max = after.map(|cursor| cursor.created_ms);
        let entries = match &query.search {
            Some(search) => {
                self.search_cursors(INDEX_KEY, search, (max, None), after, count)
                    .await?
            }
            None => {
                let cursors = self.read_cursors(INDEX_KEY, max, None, after, count);
                cursors.await?.into_iter().map(|c| (c, true)).collect()
            }
        };
        let wanted: Vec<Cursor> = entries
            .iter()
            .filter(|(_, found)| *found)
            .map(|(cursor, _)| *cursor)
            .collect();
        let documents = self.get_many(wanted.iter().map(|c| c.job_id)).await?;
        let expired: Vec<String> = wanted
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
        let mut jobs: HashMap<JobId, Job> = wanted
            .iter()
            .zip(documents)
            .filter_map(|(cursor, json)| Some((cursor.job_id, decode(cursor.job_id, &json?).ok()?)))
            .collect();
        Ok(entries
            .into_iter()
            .map(|(cursor, _)| (cursor, jobs.remove(&cursor.job_id)))
            .collect())
    }

    /// Up to `count` entries of the sorted set `key` (scored in ms) from `max` down to `min`
    /// (unbounded where `None`), strictly after `after` in newest-first order.
    pub(super) async fn read_cursors(
        &self,
        key: &str,
        max: Option<i64>,
        min: Option<i64>,
        after: Option<Cursor>,
        count: usize,
    ) -> Result<Vec<Cursor>, StoreError> {
        let entries: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(key)
            .arg(max.map_or("+inf".to_owned(), |ms| ms.to_string()))
            .arg(min.map_or("-inf".to_owned(), |ms| ms.to_string()))
            .arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(count + SAME_MILLISECOND_MARGIN)
            .arg("WITHSCORES")
            .query_async(&mut self.connection())
            .await?;
        let entries = entries.into_iter().map(|(id, score)| (id, score, ()));
        Ok(cursors_after(entries.collect(), after, count)
            .into_iter()
            .map(|(cursor, ())| cursor)
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
            pipeline.exists(JobId::key_of(id));
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

    /// The heads of up to `count` index entries from position `start`, oldest first. Positions
    /// shift as the oldest entries are pruned, so a walk may step over a few entries; the next
    /// walk sees them.
    pub async fn read_heads(&self, start: usize, count: usize) -> Result<HeadPage, StoreError> {
        let stop = isize::try_from(start + count).unwrap_or(isize::MAX) - 1;
        let start_rank = isize::try_from(start).unwrap_or(isize::MAX);
        let entries: Vec<String> = self
            .connection()
            .zrange(INDEX_KEY, start_rank, stop)
            .await?;
        let next = (entries.len() == count).then_some(start + count);
        let ids: Vec<JobId> = entries.iter().filter_map(|id| id.parse().ok()).collect();
        if ids.is_empty() {
            return Ok(HeadPage {
                heads: vec![],
                next,
            });
        }
        let mut pipeline = redis::pipe();
        for id in &ids {
            pipeline.getrange(id.key(), 0, HEAD_BYTES - 1);
        }
        let prefixes: Vec<Vec<u8>> = pipeline.query_async(&mut self.connection()).await?;
        let mut heads = Vec::with_capacity(ids.len());
        for (id, prefix) in ids.into_iter().zip(prefixes) {
            if !prefix.is_empty()
                && let Some(head) = self.head_of(id, &prefix).await?
            {
                heads.push(head);
            }
        }
        Ok(HeadPage { heads, next })
    }

    /// The head in `prefix`, or, when it is not all there (or not a job), from the whole record.
    async fn head_of(&self, id: JobId, prefix: &[u8]) -> Result<Option<JobHead>, StoreError> {
        if let Some(head) = parse_head(prefix) {
            return Ok(Some(head));
        }
        match self.get(id).await {
            Ok(job) => Ok(job.as_ref().map(JobHead::from)),
            Err(StoreError::Corrupt(_)) => Ok(None), // logged by `decode`
            Err(error) => Err(error),
        }
    }
}

/// Up to `count` of `entries` (ids, their scores in ms and what else was read, newest first)
/// strictly after `after`.
pub(super) fn cursors_after<T>(
    entries: Vec<(String, f64, T)>,
    after: Option<Cursor>,
    count: usize,
) -> Vec<(Cursor, T)> {
    entries
        .into_iter()
        .filter_map(|(id, score, extra)| {
            let cursor = Cursor {
                created_ms: score as i64,
                job_id: id.parse().ok()?,
            };
            Some((cursor, extra))
        })
        .filter(|(cursor, _)| after.is_none_or(|after| *cursor < after))
        .take(count)
        .collect()
}

/// The fields before `,"completed_at":` (which follows `updated_at`; a string value cannot hold
/// it unescaped), read as the transition script reads the scalars before `,"input":`.
fn parse_head(prefix: &[u8]) -> Option<JobHead> {
    const END: &[u8] = b",\"completed_at\":";
    let cut = prefix.windows(END.len()).position(|w| w == END)?;
    let mut scalars = prefix[..cut].to_vec();
    scalars.push(b'}');
    serde_json::from_slice(&scalars).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobStatus, Timestamp};
    use serde_json::value::RawValue;

    fn job(step: &str) -> Job {
        let input = RawValue::from_string(r#"{"input":"a \"tricky\" one"}"#.to_owned()).unwrap();
        let mut job = Job::new("deep-research", input, Timestamp::now(), 60);
        job.status = JobStatus::Processing;
        job.current_step = step.to_owned();
        job
    }

    #[test]
    fn a_head_is_read_from_the_start_of_a_stored_job() {
        let job = job(r#"Step ,"completed_at": quoted"#);
        let json = job.to_json();
        let prefix = &json.as_bytes()[..json.len().min(HEAD_BYTES as usize)];

        let head = parse_head(prefix).expect("a head");

        assert_eq!(
            (head.job_id, head.status),
            (job.job_id, JobStatus::Processing)
        );
        assert_eq!(head.updated_at.to_string(), job.updated_at.to_string());
    }

    #[test]
    fn a_head_longer_than_the_prefix_is_not_guessed() {
        let json = job(&"x".repeat(HEAD_BYTES as usize)).to_json();
        assert!(parse_head(&json.as_bytes()[..HEAD_BYTES as usize]).is_none());
    }
}
