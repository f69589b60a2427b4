//! The Redis search index: a sorted set per word of the ids of the jobs found by it (scored by
//! creation, written by `create.lua`), a vocabulary of every word for prefix lookups, and
//! `search.lua` intersecting them with the job index or the history for one page.

use super::RedisStore;
use crate::job::Job;
use crate::search::{MAX_PREFIX_WORDS, Search, job_words};
use crate::store::StoreError;
use crate::store::listing::Cursor;

/// A word's sorted set: this prefix, then the word.
pub const SEARCH_WORD_PREFIX: &str = "{jobcast}:search:w:";
/// Every indexed word, all scored 0, so that `ZRANGE … BYLEX` finds those with a prefix.
pub const SEARCH_WORDS_KEY: &str = "{jobcast}:search:words";
/// The most candidates `search.lua` intersects in full (when a query's rarest word is this rare):
/// the bound of its work on one call, about two microseconds per candidate on Redis 7.
pub const MAX_INTERSECTED: usize = 1_000;
/// Where `search.lua` builds an intersection; it deletes it before it returns.
const SCRATCH_KEY: &str = "{jobcast}:search:scratch";
/// The word the pruning walk of the vocabulary goes on from (see `prune_words.lua`).
const PRUNE_FROM_KEY: &str = "{jobcast}:search:prune-from";

impl RedisStore {
    /// Adds `job` to the job index and to the search index, and keeps its webhook endpoint
    /// (idempotent, one atomic step): for a job created in memory during an outage, once it is
    /// written back (`create.lua` does this for the jobs it creates itself).
    pub async fn index(&self, job: &Job) -> Result<(), StoreError> {
        let created = job.created_at.0.timestamp_millis();
        let id = job.job_id.to_string();
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .zadd(super::INDEX_KEY, &id, created)
            .ignore();
        for word in job_words(&job.input) {
            pipeline
                .zadd(format!("{SEARCH_WORD_PREFIX}{word}"), &id, created)
                .ignore()
                .zadd(SEARCH_WORDS_KEY, &word, 0)
                .ignore();
        }
        if let Some(url) = &job.webhook_url {
            let endpoint = super::job_endpoint_key(job.job_id);
            pipeline.set_ex(endpoint, url, self.ttl_secs).ignore();
        }
        let _: () = pipeline.query_async(&mut self.connection()).await?;
        Ok(())
    }

    /// Up to `count` entries of `target` (the job index or the history, scored in ms) from `max`
    /// down to `min`, strictly after `after` (newest first), each with whether `search` finds its
    /// job. Entries that cannot match may be left out: a batch shorter than `count` is the last.
    pub(super) async fn search_cursors(
        &self,
        target: &str,
        search: &Search,
        (max, min): (Option<i64>, Option<i64>),
        after: Option<Cursor>,
        count: usize,
    ) -> Result<Vec<(Cursor, bool)>, StoreError> {
        let mut invocation = self.scripts.search.prepare_invoke();
        invocation
            .key(target)
            .key(SCRATCH_KEY)
            .key(SEARCH_WORDS_KEY)
            .arg(SEARCH_WORD_PREFIX)
            .arg(search.prefix.as_deref().unwrap_or(""))
            .arg(MAX_PREFIX_WORDS)
            .arg(max.map_or("+inf".to_owned(), |ms| ms.to_string()))
            .arg(min.map_or("-inf".to_owned(), |ms| ms.to_string()))
            .arg(count + super::index::SAME_MILLISECOND_MARGIN)
            .arg(MAX_INTERSECTED)
            .arg(&search.words);
        let entries: Vec<(String, f64, bool)> =
            invocation.invoke_async(&mut self.connection()).await?;
        Ok(super::index::cursors_after(entries, after, count))
    }

    /// Takes jobs created before `before_ms` out of the search index, walking on through the
    /// vocabulary `limit` words at a time (and dropping words no job holds any more); how many
    /// entries went.
    pub async fn prune_search(&self, before_ms: i64, limit: usize) -> Result<usize, StoreError> {
        Ok(self
            .scripts
            .prune_words
            .key(SEARCH_WORDS_KEY)
            .key(PRUNE_FROM_KEY)
            .arg(SEARCH_WORD_PREFIX)
            .arg(format!("({before_ms}"))
            .arg(limit)
            .invoke_async(&mut self.connection())
            .await?)
    }
}
