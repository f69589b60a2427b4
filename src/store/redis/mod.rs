//! The Redis backend: jobs under `job:<uuid>` with a TTL, changed only by server-side Lua scripts.

mod history;
mod index;
mod observed;
mod queue;
mod recovery;
mod search;
mod sessions;
mod stats;
mod webhooks;

pub use history::{HISTORY_KEY, HISTORY_RECORDS_KEY};
pub use index::INDEX_KEY;
pub use queue::{ARRIVALS_KEY, LEASES_KEY, LEGACY_QUEUE_KEY, QUEUE_KEY};
pub use recovery::Restored;
pub use search::{MAX_INTERSECTED, SEARCH_WORD_PREFIX, SEARCH_WORDS_KEY};
pub use sessions::REVOKED_SESSION_PREFIX;
pub use webhooks::{WEBHOOKS_DUE_KEY, job_endpoint_key};

use super::listing::{JobPage, ListQuery};
use super::{JobStore, StoreError, WebhookRouting};
use crate::idempotency::{Creation, IdempotencyKey};
use crate::job::{ARRIVALS_PER_BAND, Change, Job, JobEvent, JobId, Rejection, Timestamp, payload};
use crate::metrics::Metrics;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Script};
use observed::Observed;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use webhooks::WEBHOOK_KEY_PREFIX;

/// How long a health check waits for Redis to answer.
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// What a health check learnt of Redis.
#[derive(Debug)]
pub enum RedisHealth {
    Up,
    /// No answer in time: an outage, served from memory.
    Unreachable,
    /// It answers but will not serve this server (see [`is_refusal`]): a configuration error.
    Refusing(::redis::RedisError),
}

/// Whether Redis (or whatever answers at its address) is there but will not serve us: a wrong
/// password or user, missing permissions, a TLS certificate one side does not accept, or a peer
/// that does not speak Redis. That is the operator's mistake, not an outage: falling back to
/// memory would leave every instance with jobs of its own.
pub fn is_refusal(error: &::redis::RedisError) -> bool {
    use ::redis::ErrorKind;
    let refused_kind = matches!(
        error.kind(),
        ErrorKind::AuthenticationFailed
            | ErrorKind::InvalidClientConfig
            | ErrorKind::Parse
            | ErrorKind::RESP3NotSupported
    );
    let refused_code = matches!(error.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"));
    refused_kind || refused_code || is_tls_failure(error)
}

/// Whether a TLS handshake failed: rustls's error inside the I/O error the client reports (which
/// hands out its cause as an `Arc<dyn Error>`, and `io::Error::source` skips the wrapped error).
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    std::iter::successors(Some(error), |error| error.source()).any(|error| {
        let inner: &(dyn std::error::Error + 'static) = match error.downcast_ref::<Shared>() {
            Some(shared) => shared.as_ref(),
            None => error,
        };
        inner.is::<rustls::Error>()
            || inner
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|wrapped| wrapped.is::<rustls::Error>())
    })
}

/// A cheap, clonable handle: the connection manager multiplexes every request on one connection
/// and reconnects by itself.
#[derive(Clone)]
pub struct RedisStore {
    /// Replaced by [`RedisStore::reconnect`]: a manager whose first connection failed does not
    /// always recover by itself.
    connection: Arc<RwLock<ConnectionManager>>,
    client: ::redis::Client,
    manager_config: ConnectionManagerConfig,
    scripts: Arc<Scripts>,
    ttl_secs: u64,
    /// Whether finishing a job writes its history record (`HISTORY_RETENTION_DAYS` above 0).
    keeps_history: bool,
    /// Where webhook deliveries go; none are queued while its retention is 0.
    webhooks: WebhookRouting,
    /// Every command's latency and failure is counted here.
    metrics: Metrics,
}

impl RedisStore {
    fn connection(&self) -> Observed {
        let manager = self.connection.read().expect("connection lock").clone();
        Observed::new(manager, self.metrics.clone())
    }

    /// Opens a fresh connection and uses it from now on (timed like a command).
    pub async fn reconnect(&self) -> Result<(), StoreError> {
        let connecting =
            ConnectionManager::new_with_config(self.client.clone(), self.manager_config.clone());
        let manager = observed::timed(&self.metrics, connecting).await?;
        *self.connection.write().expect("connection lock") = manager;
        Ok(())
    }
}

/// The scripts, hashed once; each call is an EVALSHA (EVAL only after a Redis restart).
struct Scripts {
    create: Script,
    transition: Script,
    restore: Script,
    enqueue: Script,
    claim: Script,
    renew: Script,
    expired: Script,
    search: Script,
    prune_words: Script,
    webhook_claim: Script,
    webhook_record: Script,
    webhook_retry: Script,
    webhook_restore: Script,
}

impl RedisStore {
    /// A store on `client`, connecting lazily; jobs expire `ttl_secs` after their last change.
    /// Its commands are counted in `metrics`.
    pub fn new(
        client: ::redis::Client,
        manager_config: ConnectionManagerConfig,
        ttl_secs: u64,
        metrics: Metrics,
    ) -> Result<Self, StoreError> {
        let connection =
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())?;
        let scripts = Scripts {
            create: Script::new(include_str!("create.lua")),
            // The webhook queue's function comes first: the transition calls it.
            transition: Script::new(concat!(
                include_str!("webhooks.lua"),
                include_str!("transition.lua")
            )),
            restore: Script::new(include_str!("restore.lua")),
            enqueue: Script::new(include_str!("enqueue.lua")),
            claim: Script::new(include_str!("claim.lua")),
            renew: Script::new(include_str!("renew.lua")),
            expired: Script::new(include_str!("expired.lua")),
            search: Script::new(include_str!("search.lua")),
            prune_words: Script::new(include_str!("prune_words.lua")),
            webhook_claim: Script::new(include_str!("webhook_claim.lua")),
            webhook_record: Script::new(include_str!("webhook_record.lua")),
            webhook_retry: Script::new(include_str!("webhook_retry.lua")),
            webhook_restore: Script::new(include_str!("webhook_restore.lua")),
        };
        Ok(Self {
            connection: Arc::new(RwLock::new(connection)),
            client,
            manager_config,
            scripts: Arc::new(scripts),
            ttl_secs,
            keeps_history: true,
            webhooks: WebhookRouting::default(),
            metrics,
        })
    }

    /// This store, queueing webhook deliveries as `routing` says.
    pub fn with_webhooks(mut self, routing: WebhookRouting) -> Self {
        self.webhooks = routing;
        self
    }

    /// This store, writing history records or not.
    pub fn keeping_history(mut self, keep: bool) -> Self {
        self.keeps_history = keep;
        self
    }

    /// Redis's `used_memory` and `maxmemory` (0: no limit), from `INFO memory`.
    pub async fn memory(&self) -> Result<(u64, u64), StoreError> {
        let info: String = ::redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.connection())
            .await?;
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0)
        };
        Ok((field("used_memory"), field("maxmemory")))
    }

    /// Whether Redis answers a PING within [`PING_TIMEOUT`], and if not, why.
    pub async fn health(&self) -> RedisHealth {
        let mut connection = self.connection();
        let ping = ::redis::cmd("PING");
        let reply = ping.query_async::<String>(&mut connection);
        match tokio::time::timeout(PING_TIMEOUT, reply).await {
            Ok(Ok(_)) => RedisHealth::Up,
            Ok(Err(error)) if is_refusal(&error) => RedisHealth::Refusing(error),
            _ => RedisHealth::Unreachable,
        }
    }

    async fn run_transition(&self, id: JobId, change: Change) -> Result<Vec<String>, StoreError> {
        let now = Timestamp::now();
        let (op, progress, step, payload, fence) = match change {
            Change::Start { step } => ("start", 0, step, String::new(), None),
            Change::Progress {
                progress,
                step,
                fence,
            } => (
                "progress",
                u32::from(progress),
                step.unwrap_or_default(),
                String::new(),
                fence,
            ),
            Change::Complete {
                result,
                step,
                fence,
            } => ("complete", 100, step, String::from(result.get()), fence),
            Change::Fail { error, fence } => ("fail", 0, String::new(), error, fence),
            Change::Cancel { reason } => ("cancel", 0, String::new(), reason, None),
            Change::Requeue {
                reason,
                max_attempts,
                fence,
            } => ("requeue", max_attempts, String::new(), reason, fence),
            Change::Prioritise { priority } => (
                "priority",
                u32::from(priority.get()),
                priority.band().to_string(),
                ARRIVALS_PER_BAND.to_string(),
                None,
            ),
        };
        let mut invocation = self.scripts.transition.key(id.key());
        invocation
            .key(QUEUE_KEY)
            .key(HISTORY_KEY)
            .key(HISTORY_RECORDS_KEY)
            .arg(op)
            .arg(now.to_string())
            .arg(self.ttl_secs)
            .arg(now.plus_secs(self.ttl_secs).to_string())
            .arg(progress)
            .arg(step)
            .arg(payload)
            .arg(fence.map(|f| f.to_string()).unwrap_or_default())
            .arg(now.0.timestamp_millis())
            .arg(if self.keeps_history { "1" } else { "0" })
            .arg(WEBHOOK_KEY_PREFIX)
            .arg(self.webhooks.retention_secs)
            .arg(&self.webhooks.urls);
        let mut connection = self.connection();
        Ok(invocation.invoke_async(&mut connection).await?)
    }
}

/// Reads a stored job as outside data: a document that is not a job, or whose payloads no client
/// could read (a lone surrogate, a number beyond `f64`, written by hand or by an older version),
/// is refused with a warning naming the job, never passed on to a handler.
pub fn decode(id: JobId, json: &str) -> Result<Job, StoreError> {
    let checked = serde_json::from_str::<Job>(json).and_then(|job| {
        payload::check(&job.input)?;
        job.result.as_deref().map(payload::check).transpose()?;
        Ok(job)
    });
    checked.map_err(|error| {
        tracing::warn!(job_id = %id, %error, "stored job is corrupt; not serving it");
        StoreError::Corrupt(error)
    })
}

/// Whether the transition script refused a document that is not a job (see transition.lua).
fn is_corrupt_document(error: &::redis::RedisError) -> bool {
    error.to_string().contains("corrupt job document")
}

/// Turns the transition script's reply into the new job's JSON, as stored and published, or the
/// reason it was refused.
fn parse_transition_reply(mut reply: Vec<String>) -> Result<String, StoreError> {
    let number = |i: usize| {
        reply
            .get(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_default()
    };
    match reply.first().map(String::as_str) {
        Some("ok" | "unchanged") if reply.len() > 1 => Ok(reply.swap_remove(1)),
        Some("missing") => Err(StoreError::NotFound),
        Some("rejected") => Err(StoreError::Rejected(match reply[1].as_str() {
            "terminal" => Rejection::Terminal(match reply[2].as_str() {
                "completed" => "completed",
                "cancelled" => "cancelled",
                _ => "failed",
            }),
            "already_started" => Rejection::AlreadyStarted,
            "not_started" => Rejection::NotStarted,
            "backwards" => Rejection::Backwards {
                current: number(2) as u8,
                requested: number(3) as u8,
            },
            _ => Rejection::StaleAttempt {
                fence: number(2),
                current: number(3),
            },
        })),
        _ => Err(StoreError::Redis(::redis::RedisError::from((
            ::redis::ErrorKind::UnexpectedReturnType,
            "unexpected reply from the transition script",
        )))),
    }
}

impl JobStore for RedisStore {
    async fn create(&self, job: &Job) -> Result<(), StoreError> {
        let _created: bool = self
            .create_invocation(job, None)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(())
    }

    async fn create_once(&self, job: &Job, key: &IdempotencyKey) -> Result<Creation, StoreError> {
        let reply: ::redis::Value = self
            .create_invocation(job, Some(key))
            .invoke_async(&mut self.connection())
            .await?;
        match reply {
            ::redis::Value::BulkString(held) => Ok(key.replay(&String::from_utf8_lossy(&held))),
            _ => Ok(Creation::Created),
        }
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        let mut connection = self.connection();
        let json: Option<String> = connection.get(id.key()).await?;
        json.map(|json| decode(id, &json)).transpose()
    }

    async fn apply(&self, id: JobId, change: Change) -> Result<Job, StoreError> {
        Ok(serde_json::from_str(
            &self.apply_as_stored(id, change).await?,
        )?)
    }

    async fn list(&self, query: &ListQuery) -> Result<JobPage, StoreError> {
        self.list_page(query).await
    }
}

impl RedisStore {
    /// A call of `create.lua` storing `job` (under `key`'s record, if any) and indexing it.
    fn create_invocation(
        &self,
        job: &Job,
        key: Option<&IdempotencyKey>,
    ) -> ::redis::ScriptInvocation<'_> {
        let mut invocation = self.scripts.create.prepare_invoke();
        invocation
            .key(job.job_id.key())
            .key(INDEX_KEY)
            .key(SEARCH_WORDS_KEY)
            .key(job_endpoint_key(job.job_id))
            .arg(job.to_json())
            .arg(self.ttl_secs)
            .arg(job.created_at.0.timestamp_millis())
            .arg(SEARCH_WORD_PREFIX)
            .arg(job.webhook_url.as_deref().unwrap_or(""));
        if let Some(key) = key {
            invocation
                .key(&key.record)
                .arg(key.record_value(job.job_id))
                .arg(key.ttl_secs);
        }
        invocation.arg(crate::search::job_words(&job.input));
        invocation
    }

    /// Applies `change` as [`JobStore::apply`] does; the job's new state as an event whose JSON
    /// is the script's, read only as far as ordering and classifying it need (a reporter's
    /// path: the full job is never built).
    pub async fn apply_event(&self, id: JobId, change: Change) -> Result<JobEvent, StoreError> {
        let json = self.apply_as_stored(id, change).await?;
        Ok(JobEvent::from_json(json.into())?)
    }

    /// Applies `change` atomically: the job's JSON as the script stored (and published) it.
    async fn apply_as_stored(&self, id: JobId, change: Change) -> Result<String, StoreError> {
        match self.run_transition(id, change).await {
            Ok(reply) => parse_transition_reply(reply),
            Err(StoreError::Redis(error)) if is_corrupt_document(&error) => {
                tracing::warn!(job_id = %id, %error, "stored job is corrupt; not changing it");
                Err(StoreError::Corrupt(serde::de::Error::custom(error)))
            }
            Err(error) => Err(error),
        }
    }
}
