//! Memory: what Redis holds for one typical deep-research job, pending and completed, and the
//! RSS of one instance that has created (and answered polls for) many jobs.

use crate::batch::{self, Batch};
use crate::client;
use crate::latency::round2;
use crate::processes::{Redis, Server};
use crate::scenarios::post_for_job_id;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// A typical deep-research request: a real product's name and its eight ingredients.
const RESEARCH_REQUEST: &str = r#"{"product_name":"Diet Cola Zero Sugar 330 ml can","ingredients":["carbonated water","caramel colour E150d","phosphoric acid","aspartame","acesulfame potassium","natural flavourings","caffeine","sodium citrate"]}"#;

/// One deep-research job's bytes in Redis (`MEMORY USAGE job:<id>`), pending and completed.
pub async fn stored_job() -> Value {
    let redis = Redis::start().await;
    let url = redis.url();
    let api = Server::jobcast(&[("REDIS_URL", &url), ("WORKER_CONCURRENCY", "0")]).await;
    let id = post_for_job_id(api.addr, "/api/v4/deep-research", RESEARCH_REQUEST.into()).await;
    let pending = (
        memory_usage(&redis, &id).await,
        job_bytes(api.addr, &id).await,
    );
    let worker_vars = [
        ("REDIS_URL", url.as_str()),
        ("WORKER_CONCURRENCY", "1"),
        ("DEEP_RESEARCH_STEP_MS", "1"),
    ];
    let _worker = Server::jobcast(&worker_vars).await;
    let completed = completes(api.addr, &id).await;
    let done = (
        memory_usage(&redis, &id).await,
        job_bytes(api.addr, &id).await,
    );
    json!({"scenario": "memory-job", "ingredients": 8, "completed": completed,
           "errors": u64::from(!completed),
           "pending_redis_bytes": pending.0, "pending_json_bytes": pending.1,
           "completed_redis_bytes": done.0, "completed_json_bytes": done.1})
}

/// The RSS of one instance before and after creating `jobs` jobs through it over `connections`
/// and answering one poll of each, and what Redis grew by per job.
pub async fn instance(jobs: usize, connections: usize) -> Value {
    let redis = Redis::start().await;
    let server = Server::jobcast(&[("REDIS_URL", &redis.url()), ("WORKER_CONCURRENCY", "0")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss_before, redis_before) = (server.rss_kib(), used_memory(&redis).await);
    let (ids, mut errors) = batch::create_jobs(&[server.addr], connections, jobs).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_created = server.rss_kib();
    errors += poll_each(server.addr, connections, &ids).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss_after, redis_after) = (server.rss_kib(), used_memory(&redis).await);
    let per_job =
        |after: u64, before: u64| round2(after.saturating_sub(before) as f64 / jobs as f64);
    json!({"scenario": "memory-instance", "jobs": jobs, "created": ids.len(), "errors": errors,
           "rss_before_kib": rss_before, "rss_after_create_kib": rss_created,
           "rss_after_poll_kib": rss_after,
           "rss_bytes_per_job": per_job(rss_after * 1024, rss_before * 1024),
           "redis_bytes_per_job": per_job(redis_after, redis_before)})
}

/// Whether job `id` completes within 60 s.
async fn completes(addr: SocketAddr, id: &str) -> bool {
    let url = format!("http://{addr}/api/v4/job/{id}");
    for _ in 0..1200 {
        let job: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if job["status"] == "completed" {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Polls every job once; returns how many polls failed.
async fn poll_each(addr: SocketAddr, connections: usize, ids: &[String]) -> u64 {
    let batch = Batch {
        addrs: &[addr],
        connections,
        count: ids.len(),
        spacing: Duration::ZERO,
    };
    let write = |i: usize, out: &mut Vec<u8>| {
        let path = format_args!("/api/v4/job/{}", ids[i]);
        client::write_request(out, "GET", path, None);
    };
    let mut failed = 0;
    batch::send(batch, write, |_, answer| {
        failed += u64::from(answer.is_none_or(|(status, _)| status != 200));
    })
    .await;
    failed
}

async fn job_bytes(addr: SocketAddr, id: &str) -> usize {
    let url = format!("http://{addr}/api/v4/job/{id}");
    reqwest::get(url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len()
}

/// `MEMORY USAGE job:<id> SAMPLES 0`: the key's exact bytes in Redis.
async fn memory_usage(redis: &Redis, id: &str) -> u64 {
    let mut connection = connect(redis).await;
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(format!("job:{id}"))
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut connection)
        .await
        .unwrap()
}

/// Redis's `used_memory`, from `INFO memory`.
async fn used_memory(redis: &Redis) -> u64 {
    let mut connection = connect(redis).await;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut connection)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap()
}

async fn connect(redis: &Redis) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}
