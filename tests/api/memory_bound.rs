//! The in-memory mirror of Redis's jobs stays within `MEMORY_STORE_MAX_BYTES`.

use crate::helpers::*;
use serde_json::json;
use std::sync::Arc;

/// Creates `count` jobs, each with an input of `input_bytes`, from 8 clients at once.
async fn create_jobs(server: &Arc<ServerProcess>, count: usize, input_bytes: usize) {
    let body = Arc::new(json!({"kind": "bulk", "input": {"blob": "x".repeat(input_bytes)}}));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (server, body) = (server.clone(), body.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for _ in 0..count / 8 {
                    let response = client
                        .post(server.url("/api/v4/jobs"))
                        .json(&*body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 201);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_of_redis_jobs_stays_within_its_bound_however_many_jobs_pass() {
    let redis = TestRedis::start().await;
    let server = Arc::new(
        ServerProcess::start(&[
            ("REDIS_URL", &redis.url()),
            ("WORKER_CONCURRENCY", "0"),
            ("MEMORY_STORE_MAX_BYTES", "4194304"),
        ])
        .await,
    );
    create_jobs(&server, 200, 16 * 1024).await; // warm up allocator and connections
    let before = server.rss_kib();
    // 32 MiB of job text by default; JOBS and INPUT_BYTES change the load for a one-off figure.
    let jobs = env_or("JOBS", 2_000);
    let input_bytes = env_or("INPUT_BYTES", 16 * 1024);
    create_jobs(&server, jobs, input_bytes).await;
    let after = server.rss_kib();
    println!(
        "memory bound: rss_before_kib={before} rss_after_kib={after} jobs={jobs} input_bytes={input_bytes} bound_kib=4096"
    );
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} to {after} KiB for {jobs} jobs of {input_bytes} bytes with a 4 MiB bound"
    );
}
