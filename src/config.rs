//! Configuration, read once at startup from environment variables or the matching flags.

use crate::client_addr::TrustedProxies;
use crate::cors::CorsOrigins;
use crate::webhook::{self, RetrySchedule, Signer};
use clap::Parser;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The longest job TTL accepted: ten years, far below any timestamp overflow.
pub const MAX_JOB_TTL_SECS: u64 = 10 * 365 * 24 * 3600;
/// The range `MAX_HEADER_BYTES` may be set in: every real client's head fits the lower end.
pub const HEADER_BYTES_RANGE: std::ops::RangeInclusive<u32> = 16 * 1024..=64 * 1024;

/// How a publisher writes a change to the sockets of direct streams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FanoutWrites {
    /// One io_uring submission per batch of sockets (Linux 5.6 or later); plain sends where
    /// io_uring is unavailable (an older kernel, or a container that forbids it).
    #[default]
    IoUring,
    /// One non-blocking `send` per socket.
    Send,
}

/// What the pub/sub relay subscribes to in Redis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RelaySubscribe {
    /// One channel per job watched on this instance: each instance receives only its own
    /// watchers' jobs, at the price of a SUBSCRIBE and UNSUBSCRIBE per stream's job.
    #[default]
    Channels,
    /// One `job:*` pattern for the instance's lifetime: every instance receives every job's
    /// changes and drops those nobody here watches.
    Pattern,
}

/// Everything the server can be told. Each field is a flag and an environment variable of the
/// same name; an invalid value stops startup with a message that names it.
#[derive(Clone, Debug, Parser)]
#[command(name = "jobcast", version, about = "A real-time job-progress server")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "HOST", value_name = "HOST", default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PORT", value_name = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Redis to keep jobs in; `rediss://` for TLS, `redis+unix:///path` for a socket. When it does
    /// not answer at startup the server runs on its embedded in-memory store.
    #[arg(
        long,
        env = "REDIS_URL",
        value_name = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        value_parser = RedisUrl::parse,
        hide_env_values = true
    )]
    pub redis_url: RedisUrl,
    /// How long a job is kept after its last change, in seconds.
    #[arg(long, env = "JOB_TTL_SECS", value_name = "JOB_TTL_SECS", default_value_t = 86_400,
        value_parser = clap::value_parser!(u64).range(1..=MAX_JOB_TTL_SECS))]
    pub job_ttl_secs: u64,
    /// How long a create's `Idempotency-Key` names the job it created, in seconds: a retry with
    /// the key within this time gets that job instead of a new one.
    #[arg(long, env = "IDEMPOTENCY_TTL_SECS", value_name = "IDEMPOTENCY_TTL_SECS",
        default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=MAX_JOB_TTL_SECS))]
    pub idempotency_ttl_secs: u64,
    /// How long a finished job's compact record stays in the history after the job itself
    /// expires, in days; 0 keeps no history.
    #[arg(long, env = "HISTORY_RETENTION_DAYS", value_name = "HISTORY_RETENTION_DAYS",
        default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3650))]
    pub history_retention_days: u64,
    /// Bearer token for the admin and progress-reporting endpoints. Unset: loopback clients only.
    #[arg(long, env = "ADMIN_TOKEN", value_name = "ADMIN_TOKEN", hide_env_values = true,
        value_parser = Secret::parse)]
    pub admin_token: Option<Secret>,
    /// Key of the jobs' control tokens (what a job's creator presents to cancel it). Unset:
    /// `ADMIN_TOKEN`; with neither, a random key per process. Instances sharing a Redis need the
    /// same key for a token to work on all of them.
    #[arg(long, env = "CONTROL_TOKEN_SECRET", value_name = "CONTROL_TOKEN_SECRET",
        hide_env_values = true, value_parser = Secret::parse)]
    pub control_token_secret: Option<Secret>,
    /// Pause between the steps of the built-in deep-research job, in milliseconds.
    #[arg(long, env = "DEEP_RESEARCH_STEP_MS", value_name = "DEEP_RESEARCH_STEP_MS",
        default_value_t = 400, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub deep_research_step_ms: u64,
    /// Jobs this instance runs at once; 0 serves the API and streams only.
    #[arg(long, env = "WORKER_CONCURRENCY", value_name = "WORKER_CONCURRENCY", default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub worker_concurrency: u16,
    /// How long to wait for Redis at startup before running on the memory store, in milliseconds.
    #[arg(long, env = "REDIS_CONNECT_TIMEOUT_MS", value_name = "REDIS_CONNECT_TIMEOUT_MS",
        default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub redis_connect_timeout_ms: u64,
    /// Largest accepted request body, in bytes; larger ones get 413.
    #[arg(long, env = "MAX_BODY_BYTES", value_name = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// How long a worker's claim on a job lasts without renewal, in seconds.
    #[arg(long, env = "LEASE_SECS", value_name = "LEASE_SECS", default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease_secs: u64,
    /// Seconds between SSE keep-alive comments.
    #[arg(long, env = "SSE_KEEPALIVE_SECS", value_name = "SSE_KEEPALIVE_SECS", default_value_t = 15,
        value_parser = clap::value_parser!(u64).range(1..=300))]
    pub sse_keepalive_secs: u64,
    /// Seconds between the server's WebSocket pings; a peer that has not answered one by the next
    /// is dropped.
    #[arg(long, env = "WS_PING_SECS", value_name = "WS_PING_SECS", default_value_t = 20,
        value_parser = clap::value_parser!(u64).range(1..=300))]
    pub ws_ping_secs: u64,
    /// How long what the server sent a client may stay unacknowledged (a client that stopped
    /// reading, or vanished) before the kernel drops the connection, in milliseconds; 0 leaves
    /// it to the system, which keeps a client that stopped reading forever.
    #[arg(long, env = "STALLED_CLIENT_TIMEOUT_MS", value_name = "STALLED_CLIENT_TIMEOUT_MS",
        default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub stalled_client_timeout_ms: u64,
    /// Attempts a job gets: after this many interrupted runs it fails instead of being requeued.
    #[arg(long, env = "MAX_ATTEMPTS", value_name = "MAX_ATTEMPTS", default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// How often the lease sweeper runs, in milliseconds (one instance acts per interval).
    #[arg(long, env = "SWEEP_INTERVAL_MS", value_name = "SWEEP_INTERVAL_MS", default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(50..=600_000))]
    pub sweep_interval_ms: u64,
    /// On SIGTERM, how long running jobs get to reach a checkpoint before their leases are
    /// handed back, in milliseconds.
    #[arg(long, env = "SHUTDOWN_GRACE_MS", value_name = "SHUTDOWN_GRACE_MS", default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub shutdown_grace_ms: u64,
    /// How often idle workers look for queued jobs that other instances created, in milliseconds.
    #[arg(long, env = "QUEUE_POLL_MS", value_name = "QUEUE_POLL_MS", default_value_t = 250,
        value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub queue_poll_ms: u64,
    /// How a change is written to the sockets of the streams that watch it: `io-uring` (many
    /// sockets per system call; plain sends where the kernel forbids io_uring) or `send`.
    #[arg(long, env = "FANOUT_WRITES", value_name = "FANOUT_WRITES", value_enum,
        default_value_t = FanoutWrites::IoUring)]
    pub fanout_writes: FanoutWrites,
    /// The most progress reports one `POST /api/v4/jobs/progress` may carry.
    #[arg(long, env = "BATCH_MAX_UPDATES", value_name = "BATCH_MAX_UPDATES", default_value_t = 500,
        value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_max_updates: u32,
    /// What the pub/sub relay subscribes to: `channels` (one per watched job) or `pattern`
    /// (`job:*`, every job's changes; see BENCHMARKS.md for which costs less).
    #[arg(long, env = "RELAY_SUBSCRIBE", value_name = "RELAY_SUBSCRIBE", value_enum,
        default_value_t = RelaySubscribe::Channels)]
    pub relay_subscribe: RelaySubscribe,
    /// A PEM file of the certificate authority that signed the Redis server's certificate, for
    /// `rediss://` to a server whose certificate no system root vouches for (self-signed).
    #[arg(long, env = "REDIS_TLS_CA_FILE", value_name = "REDIS_TLS_CA_FILE")]
    pub redis_tls_ca_file: Option<std::path::PathBuf>,
    /// Accept any certificate from a `rediss://` server, unverified: only for hosted plans that
    /// offer no CA to verify with. Logged as a warning at startup.
    #[arg(long, env = "REDIS_TLS_INSECURE", value_name = "REDIS_TLS_INSECURE",
        default_value_t = false, action = clap::ArgAction::Set)]
    pub redis_tls_insecure: bool,
    /// The most the in-memory store may hold, in bytes (about: each job's text plus a fixed
    /// overhead). Past it, mirrored copies of Redis's jobs go first, least recently used; jobs only
    /// memory holds (made during an outage) stay, and new ones are refused with 503.
    #[arg(long, env = "MEMORY_STORE_MAX_BYTES", value_name = "MEMORY_STORE_MAX_BYTES",
        default_value_t = 64 * 1024 * 1024,
        value_parser = clap::value_parser!(u64).range(64 * 1024..))]
    pub memory_store_max_bytes: u64,
    /// Reverse proxies whose forwarding headers name the client (comma-separated CIDR blocks,
    /// e.g. `127.0.0.1/32,10.0.0.0/8`); empty trusts none, and a proxied request is never loopback.
    #[arg(long, env = "TRUSTED_PROXIES", value_name = "TRUSTED_PROXIES", default_value = "",
        value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,
    /// Jobs one client may create per minute, sustained; 0 is unlimited.
    #[arg(long, env = "CREATE_RATE_PER_MIN", value_name = "CREATE_RATE_PER_MIN", default_value_t = 30,
        value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub create_rate_per_min: u32,
    /// Jobs one client may create at once before `CREATE_RATE_PER_MIN` applies.
    #[arg(long, env = "CREATE_BURST", value_name = "CREATE_BURST", default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub create_burst: u32,
    /// Streams (SSE, WebSocket, long-poll) one client may open per minute, sustained; 0 is
    /// unlimited.
    #[arg(long, env = "STREAM_RATE_PER_MIN", value_name = "STREAM_RATE_PER_MIN", default_value_t = 120,
        value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub stream_rate_per_min: u32,
    /// Streams one client may open at once before `STREAM_RATE_PER_MIN` applies.
    #[arg(long, env = "STREAM_BURST", value_name = "STREAM_BURST", default_value_t = 60,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub stream_burst: u32,
    /// Most deep-research jobs the queue may hold: creating one more answers 503 with
    /// Retry-After (the check and the push are two steps, so concurrent creates may overshoot
    /// it by as many as run at once).
    #[arg(long, env = "MAX_QUEUED_JOBS", value_name = "MAX_QUEUED_JOBS", default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_queued_jobs: u64,
    /// Every how many sweeps (and at boot) one instance walks the job index and requeues jobs
    /// that are on no queue and hold no lease.
    #[arg(long, env = "RECONCILE_EVERY_SWEEPS", value_name = "RECONCILE_EVERY_SWEEPS",
        default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub reconcile_every_sweeps: u32,
    /// How long a job must have been unchanged before reconciliation touches it, in
    /// milliseconds: a job created a moment ago may be between its creation and its enqueue.
    #[arg(long, env = "RECONCILE_GRACE_MS", value_name = "RECONCILE_GRACE_MS",
        default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub reconcile_grace_ms: u64,
    /// How long a client has to send a whole request head, from the moment its connection is
    /// accepted (or, on a kept-alive connection, from its next request's first byte), in
    /// milliseconds; a connection that has not by then is closed.
    #[arg(long, env = "HEADER_READ_TIMEOUT_MS", value_name = "HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=300_000))]
    pub header_read_timeout_ms: u64,
    /// How long a kept-alive connection may wait, idle, for its next request, in milliseconds.
    #[arg(long, env = "KEEPALIVE_TIMEOUT_MS", value_name = "KEEPALIVE_TIMEOUT_MS",
        default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub keepalive_timeout_ms: u64,
    /// Largest request head (request line and headers), in bytes; a larger one gets 431 and the
    /// connection is closed.
    #[arg(long, env = "MAX_HEADER_BYTES", value_name = "MAX_HEADER_BYTES", default_value_t = 32 * 1024,
        value_parser = clap::value_parser!(u32).range(
            *HEADER_BYTES_RANGE.start() as i64..=*HEADER_BYTES_RANGE.end() as i64))]
    pub max_header_bytes: u32,
    /// Connections this instance holds at once (streams included); one more is answered 503 and
    /// closed at once. Lowered at startup to fit the open-files limit.
    #[arg(long, env = "MAX_CONNECTIONS", value_name = "MAX_CONNECTIONS", default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Browser origins whose pages may call this server (comma-separated `scheme://host[:port]`,
    /// with credentials), or `*` for any origin on the read endpoints; empty: same origin only.
    /// WebSocket upgrades from other origins are refused with 403.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_name = "CORS_ALLOWED_ORIGINS", default_value = "",
        value_parser = CorsOrigins::parse)]
    pub cors_allowed_origins: CorsOrigins,
    /// A second address serving `GET /metrics` with no authentication, for a scraper on a private
    /// network (e.g. `10.0.0.5:9090`); unset: metrics only on the main port, as an admin endpoint.
    #[arg(long, env = "METRICS_ADDR", value_name = "METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// The secrets webhook requests are signed with (`whsec_<base64>`, space-separated: each one
    /// signs, so receivers can rotate); unset: no webhooks are sent.
    #[arg(long, env = "WEBHOOK_SECRET", value_name = "WEBHOOK_SECRET", hide_env_values = true,
        value_parser = Signer::parse)]
    pub webhook_secret: Option<Signer>,
    /// Endpoints that get every job's events (comma-separated http(s) URLs), besides each job's
    /// own `webhook_url`.
    #[arg(long, env = "WEBHOOK_URLS", value_name = "WEBHOOK_URLS", value_delimiter = ',',
        value_parser = parse_webhook_url)]
    pub webhook_urls: Vec<String>,
    /// When a delivery is attempted: seconds after the event, then after each failed attempt.
    #[arg(long, env = "WEBHOOK_RETRY_SCHEDULE", value_name = "WEBHOOK_RETRY_SCHEDULE",
        default_value = webhook::schedule::DEFAULT_SCHEDULE)]
    pub webhook_retry_schedule: RetrySchedule,
    /// How long one attempt may take before it counts as failed, in milliseconds.
    #[arg(long, env = "WEBHOOK_TIMEOUT_MS", value_name = "WEBHOOK_TIMEOUT_MS", default_value_t = 15_000,
        value_parser = clap::value_parser!(u64).range(1..=120_000))]
    pub webhook_timeout_ms: u64,
    /// Deliver to loopback, private and link-local addresses too (refused by default, so that no
    /// one can aim jobcast at what only it can reach).
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE", value_name = "WEBHOOK_ALLOW_PRIVATE", default_value_t = false,
        action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,
    /// Attempts this instance makes at once, over all endpoints.
    #[arg(long, env = "WEBHOOK_MAX_IN_FLIGHT", value_name = "WEBHOOK_MAX_IN_FLIGHT", default_value_t = 32,
        value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub webhook_max_in_flight: u32,
    /// Attempts this instance makes at once to one endpoint (scheme, host and port), so that one
    /// slow endpoint cannot hold up the others.
    #[arg(long, env = "WEBHOOK_MAX_PER_ENDPOINT", value_name = "WEBHOOK_MAX_PER_ENDPOINT", default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub webhook_max_per_endpoint: u32,
    /// How long a delivery and its attempts stay visible after their last change, in seconds.
    #[arg(long, env = "WEBHOOK_RETENTION_SECS", value_name = "WEBHOOK_RETENTION_SECS", default_value_t = 7 * 86_400,
        value_parser = clap::value_parser!(u64).range(60..=MAX_JOB_TTL_SECS))]
    pub webhook_retention_secs: u64,
}

/// One of `WEBHOOK_URLS`.
fn parse_webhook_url(text: &str) -> Result<String, String> {
    webhook::check_url(text.trim()).map(|url| url.to_string())
}

impl Config {
    /// The configuration from the process's flags and environment; exits with a message naming
    /// the variable when a value is invalid.
    pub fn from_env_and_args() -> Self {
        Self::parse()
    }

    /// The defaults, as if no variable were set: a starting point for tests and embedding.
    pub fn defaults() -> Self {
        Self::parse_from(["jobcast"])
    }

    /// Where to listen.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    pub fn sweep_interval(&self) -> Duration {
        Duration::from_millis(self.sweep_interval_ms)
    }

    /// `None` when the system's default applies.
    pub fn stalled_client_timeout(&self) -> Option<Duration> {
        let timeout = Duration::from_millis(self.stalled_client_timeout_ms);
        (!timeout.is_zero()).then_some(timeout)
    }

    pub fn reconcile_grace(&self) -> Duration {
        Duration::from_millis(self.reconcile_grace_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    pub fn redis_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_connect_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.keepalive_timeout_ms)
    }

    pub fn webhook_timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_timeout_ms)
    }
}

/// A Redis URL that never shows its password when printed or logged.
#[derive(Clone)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Accepts any URL the Redis client understands.
    pub fn parse(url: &str) -> Result<Self, String> {
        redis::Client::open(url).map_err(|e| format!("not a Redis URL: {e}"))?;
        Ok(Self(url.to_owned()))
    }

    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedisUrl {
    /// Prints the URL with any password — `user:***@host` or `?pass=***` — replaced.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (address, query) = match self.0.split_once('?') {
            Some((address, query)) => (address, Some(query)),
            None => (self.0.as_str(), None),
        };
        match address.split_once("://").and_then(|(scheme, rest)| {
            let (userinfo, host) = rest.rsplit_once('@')?;
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            Some((scheme, user, host))
        }) {
            Some((scheme, user, host)) => write!(f, "{scheme}://{user}:***@{host}")?,
            None => f.write_str(address)?,
        }
        if let Some(query) = query {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("pass" | "password", _)) => {
                        format!("{}=***", pair.split('=').next().unwrap_or("pass"))
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            write!(f, "?{}", pairs.join("&"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

/// A secret string whose `Debug` output is redacted.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Accepts any non-empty string.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Self(value.to_owned()))
    }

    /// The secret itself, for comparing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redis_url_never_prints_its_password() {
        let url = RedisUrl::parse("rediss://app:hunter2@cache.example:6380/0").unwrap();
        assert_eq!(url.to_string(), "rediss://app:***@cache.example:6380/0");
        assert!(!format!("{url:?}").contains("hunter2"));
    }

    #[test]
    fn a_socket_url_hides_its_pass_parameter() {
        let url = RedisUrl::parse("redis+unix:///run/redis.sock?db=2&pass=hunter2").unwrap();
        assert_eq!(
            url.to_string(),
            "redis+unix:///run/redis.sock?db=2&pass=***"
        );
    }

    #[test]
    fn a_url_without_credentials_prints_unchanged() {
        let url = RedisUrl::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(url.to_string(), "redis://127.0.0.1:6379");
    }
}
