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
    create_jobs(&server, 2_000, 16 * 1024).await; // 32 MiB of job text
    let after = server.rss_kib();
    println!(
        "memory bound: rss_before_kib={before} rss_after_kib={after} jobs=2200 input_kib=16 bound_kib=4096"
    );
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} to {after} KiB for 32 MiB of jobs with a 4 MiB bound"
    );
}
