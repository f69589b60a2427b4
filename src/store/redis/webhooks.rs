//! The Redis webhook queue: deliveries queued by `transition.lua` (with `webhooks.lua`), claimed
//! with a lease by any instance (`webhook_claim.lua`), their attempts recorded under the claim's
//! fence (`webhook_record.lua`).

use super::RedisStore;
use crate::job::{JobId, Timestamp};
use crate::store::{StoreError, Webhooks};
use crate::webhook::delivery::{Attempt, Claimed, Delivery, DeliveryStatus, Moved, Next};
use redis::AsyncCommands;
use std::collections::HashMap;
use std::time::Duration;

/// What every webhook key starts with (the shared keys' hash tag).
pub const WEBHOOK_KEY_PREFIX: &str = "{jobcast}:";
/// The deliveries due, scored by when (ms); a claimed one by when its lease runs out.
pub const WEBHOOKS_DUE_KEY: &str = "{jobcast}:webhooks:due";

/// A delivery's hash; `:attempts` after it names its list of attempts.
fn delivery_key(id: &str) -> String {
    format!("{WEBHOOK_KEY_PREFIX}webhook:{id}")
}

/// The job's own endpoint (`webhook_url`), written when it is created.
pub fn job_endpoint_key(id: JobId) -> String {
    format!("{WEBHOOK_KEY_PREFIX}hook:{id}")
}

impl Webhooks for RedisStore {
    async fn claim_deliveries(
        &self,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now = Timestamp::now().0.timestamp_millis();
        let reply: Vec<(String, u64, String, String, usize)> = self
            .scripts
            .webhook_claim
            .key(WEBHOOKS_DUE_KEY)
            .arg(now)
            .arg(lease.as_millis() as u64)
            .arg(limit)
            .arg(delivery_key(""))
            .invoke_async(&mut self.connection())
            .await?;
        Ok(reply
            .into_iter()
            .map(|(id, claim, url, body, attempts_made)| Claimed {
                id,
                claim,
                url,
                body,
                attempts_made,
            })
            .collect())
    }

    async fn record_attempt(
        &self,
        claimed: &Claimed,
        attempt: Option<&Attempt>,
        next: Next,
    ) -> Result<bool, StoreError> {
        let (outcome, due) = match next {
            Next::Succeeded => ("succeeded", 0),
            Next::Failed => ("failed", 0),
            Next::RetryAt(ms) => ("retry", ms),
        };
        let attempt = attempt.map(serde_json::to_string).transpose()?;
        let key = delivery_key(&claimed.id);
        let recorded: bool = self
            .scripts
            .webhook_record
            .key(WEBHOOKS_DUE_KEY)
            .key(&key)
            .key(format!("{key}:attempts"))
            .arg(claimed.claim)
            .arg(attempt.unwrap_or_default())
            .arg(outcome)
            .arg(due)
            .arg(&claimed.id)
            .arg(self.webhooks.retention_secs)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(recorded)
    }

    async fn job_deliveries(&self, job: JobId) -> Result<Vec<Delivery>, StoreError> {
        let ids: Vec<String> = self
            .connection()
            .zrange(job_deliveries_key(job), 0, -1)
            .await?;
        let mut pipeline = redis::pipe();
        for id in &ids {
            let key = delivery_key(id);
            pipeline
                .hgetall(&key)
                .lrange(format!("{key}:attempts"), 0, -1);
        }
        let replies: Vec<(HashMap<String, String>, Vec<String>)> = match ids.is_empty() {
            true => Vec::new(),
            false => pipeline.query_async(&mut self.connection()).await?,
        };
        Ok(ids
            .into_iter()
            .zip(replies)
            .filter_map(|(id, (fields, attempts))| read_delivery(id, job, &fields, &attempts))
            .collect())
    }

    async fn retry_delivery(&self, job: JobId, id: &str) -> Result<bool, StoreError> {
        let now = Timestamp::now().0.timestamp_millis();
        Ok(self
            .scripts
            .webhook_retry
            .key(WEBHOOKS_DUE_KEY)
            .key(delivery_key(id))
            .arg(now)
            .arg(id)
            .arg(job.to_string())
            .invoke_async(&mut self.connection())
            .await?)
    }
}

impl RedisStore {
    /// Writes the deliveries an outage queued in memory (those Redis does not hold already).
    pub async fn restore_deliveries(&self, moved: &[Moved]) -> Result<(), StoreError> {
        for Moved { delivery, body } in moved {
            let key = delivery_key(&delivery.id);
            let status = match delivery.status {
                DeliveryStatus::Pending => "pending",
                DeliveryStatus::Succeeded => "succeeded",
                DeliveryStatus::Failed => "failed",
            };
            let next = delivery
                .next_attempt_at
                .filter(|_| delivery.status == DeliveryStatus::Pending)
                .map(|at| at.0.timestamp_millis().to_string());
            let attempts = delivery
                .attempts
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<Vec<_>, _>>()?;
            let _written: bool = self
                .scripts
                .webhook_restore
                .key(WEBHOOKS_DUE_KEY)
                .key(&key)
                .key(format!("{key}:attempts"))
                .key(job_deliveries_key(delivery.job_id))
                .arg(&delivery.id)
                .arg(delivery.job_id.to_string())
                .arg(&delivery.url)
                .arg(&delivery.event)
                .arg(body)
                .arg(delivery.created_at.0.timestamp_millis())
                .arg(status)
                .arg(next.unwrap_or_default())
                .arg(self.webhooks.retention_secs)
                .arg(attempts)
                .invoke_async(&mut self.connection())
                .await?;
        }
        Ok(())
    }
}

/// The sorted set of a job's deliveries, by when they were queued.
fn job_deliveries_key(job: JobId) -> String {
    format!("{WEBHOOK_KEY_PREFIX}webhooks:job:{job}")
}

/// A delivery from its hash and attempts; `None` (logged) for one that does not read.
fn read_delivery(
    id: String,
    job_id: JobId,
    fields: &HashMap<String, String>,
    attempts: &[String],
) -> Option<Delivery> {
    let instant = |name: &str| {
        let ms = fields.get(name)?.parse::<i64>().ok()?;
        chrono::DateTime::from_timestamp_millis(ms).map(Timestamp)
    };
    let status = match fields.get("status").map(String::as_str) {
        Some("pending") => DeliveryStatus::Pending,
        Some("succeeded") => DeliveryStatus::Succeeded,
        Some("failed") => DeliveryStatus::Failed,
        _ => None?, // expired between the two reads
    };
    let attempts = attempts
        .iter()
        .map(|json| serde_json::from_str(json))
        .collect::<Result<Vec<Attempt>, _>>();
    let Ok(attempts) = attempts else {
        tracing::warn!(delivery = %id, "a webhook delivery's attempts do not parse; skipped");
        return None;
    };
    Some(Delivery {
        url: fields.get("url")?.clone(),
        event: fields.get("event")?.clone(),
        created_at: instant("created_ms")?,
        next_attempt_at: instant("next_ms").filter(|_| status == DeliveryStatus::Pending),
        id,
        job_id,
        status,
        attempts,
    })
}
