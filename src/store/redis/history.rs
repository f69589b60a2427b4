//! The Redis history: records of finished jobs (written by transition.lua), listed newest first
//! and pruned as they age past `HISTORY_RETENTION_DAYS`.

use super::RedisStore;
use crate::job::{HistoryRecord, JobId};
use crate::store::listing::{Cursor, HistoryPage, HistoryQuery, collect_history};
use crate::store::{History, StoreError};
use redis::AsyncCommands;

/// Finished job ids scored by when they finished, in ms since the epoch.
pub const HISTORY_KEY: &str = "{jobcast}:history";
/// The records: a hash of job id to record JSON.
pub const HISTORY_RECORDS_KEY: &str = "{jobcast}:history:records";

impl History for RedisStore {
    async fn history_record(&self, id: JobId) -> Result<Option<HistoryRecord>, StoreError> {
        let json: Option<String> = self
            .connection()
            .hget(HISTORY_RECORDS_KEY, id.to_string())
            .await?;
        Ok(json.and_then(|json| parse(id, &json)))
    }

    async fn history_page(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        collect_history(query, |after, count| self.read_history(query, after, count)).await
    }

    async fn prune_history(&self, before_ms: i64, limit: usize) -> Result<usize, StoreError> {
        let old: Vec<String> = redis::cmd("ZRANGE")
            .arg(HISTORY_KEY)
            .arg("-inf")
            .arg(format!("({before_ms}"))
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.connection())
            .await?;
        if old.is_empty() {
            return Ok(0);
        }
        let mut pipeline = redis::pipe();
        pipeline
            .hdel(HISTORY_RECORDS_KEY, &old)
            .ignore()
            .zrem(HISTORY_KEY, &old)
            .ignore();
        let _: () = pipeline.query_async(&mut self.connection()).await?;
        Ok(old.len())
    }
}

impl RedisStore {
    /// Keeps `record` in the history (replacing the job's record, if it had one): for a job that
    /// finished in memory during an outage, once it is written back.
    pub async fn keep_history(&self, record: &HistoryRecord) -> Result<(), StoreError> {
        if !self.keeps_history {
            return Ok(());
        }
        let id = record.job_id.to_string();
        let json = serde_json::to_string(record)?;
        let mut pipeline = redis::pipe();
        pipeline
            .hset(HISTORY_RECORDS_KEY, &id, json)
            .ignore()
            .zadd(HISTORY_KEY, &id, record.finished_ms())
            .ignore();
        let _: () = pipeline.query_async(&mut self.connection()).await?;
        Ok(())
    }

    /// Up to `count` history entries strictly after `after` (newest first) within the query's
    /// time range, with their records.
    async fn read_history(
        &self,
        query: &HistoryQuery,
        after: Option<Cursor>,
        count: usize,
    ) -> Result<Vec<(Cursor, Option<HistoryRecord>)>, StoreError> {
        let max = after.map(|cursor| cursor.created_ms).or(query.until_ms);
        let entries = match &query.search {
            Some(search) => {
                let range = (max, query.since_ms);
                self.search_cursors(HISTORY_KEY, search, range, after, count)
                    .await?
            }
            None => {
                let cursors = self.read_cursors(HISTORY_KEY, max, query.since_ms, after, count);
                cursors.await?.into_iter().map(|c| (c, true)).collect()
            }
        };
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = entries.iter().map(|(c, _)| c.job_id.to_string()).collect();
        let records: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(HISTORY_RECORDS_KEY)
            .arg(&ids)
            .query_async(&mut self.connection())
            .await?;
        // An entry the search does not find is passed over like a missing record.
        Ok(entries
            .into_iter()
            .zip(records)
            .map(|((cursor, found), json)| {
                let record = json.filter(|_| found);
                (cursor, record.and_then(|json| parse(cursor.job_id, &json)))
            })
            .collect())
    }
}

/// A stored record; one that does not parse is skipped with a warning naming the job.
fn parse(id: JobId, json: &str) -> Option<HistoryRecord> {
    match serde_json::from_str::<HistoryRecord>(json) {
        Ok(record) => Some(record.timed()),
        Err(error) => {
            tracing::warn!(job_id = %id, %error, "a history record does not parse; skipped");
            None
        }
    }
}
