//! Real server processes: instances sharing one Redis, slow clients, SIGTERM with open streams.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_instance_b_watches_live_a_job_created_and_run_on_instance_a() {
    let redis = TestRedis::start().await;
    let url = redis.url();
    let a = ServerProcess::start(&[
        ("REDIS_URL", &url),
        ("WORKER_CONCURRENCY", "1"),
        ("DEEP_RESEARCH_STEP_MS", "40"),
    ])
    .await;
    let b = ServerProcess::start(&[("REDIS_URL", &url), ("WORKER_CONCURRENCY", "0")]).await;

    let body =
        json!({"product_name": "Cola", "ingredients": ["water", "sugar", "aspartame", "caffeine"]});
    let id = a.create("/api/v4/deep-research", body).await;
    let mut stream = SseStream::connect(&b.url(&format!("/api/v4/job/{id}/events")), None).await;
    let events = stream.collect_until_end().await;

    let live: Vec<&SseEvent> = events.iter().filter(|e| e.kind() == "progress").collect();
    assert!(live.len() >= 3, "watched live on B: {events:?}");
    assert!(events.windows(2).all(|pair| pair[1].seq() > pair[0].seq()));
    let last = events.last().unwrap();
    assert_eq!(last.kind(), "completed");
    assert_eq!(last.json()["attempt"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_costs_bounded_memory_and_a_healthy_client_gets_every_update() {
    const UPDATES: usize = 10_000;
    let redis = TestRedis::start().await;
    let server = ServerProcess::start(&[
        ("REDIS_URL", &redis.url()),
        ("WORKER_CONCURRENCY", "0"),
        ("ADMIN_TOKEN", "t"),
    ])
    .await;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(server.url("/api/v4/jobs"))
        .bearer_auth("t")
        .json(&json!({"kind": "bulk"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["job_id"].as_str().unwrap().to_owned();
    let events_path = format!("/api/v4/job/{id}/events");
    let _stalled = open_stalled_stream(server.addr, &events_path).await;
    let mut healthy = SseStream::connect(&server.url(&events_path), None).await;
    assert_eq!(healthy.next_event().await.unwrap().kind(), "snapshot");
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::with_capacity(UPDATES);
        while seqs.len() < UPDATES {
            seqs.push(healthy.next_event().await.expect("stream open").seq());
        }
        seqs
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = server.rss_kib();

    let padding = "x".repeat(450);
    for update in 0..UPDATES {
        let body = json!({"progress": 50, "current_step": format!("{update} {padding}")});
        let response = client
            .post(server.url(&format!("/api/v4/job/{id}/progress")))
            .bearer_auth("t")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
    let seqs = tokio::time::timeout(PATIENCE, reader)
        .await
        .unwrap()
        .unwrap();
    let growth_kib = server.rss_kib().saturating_sub(rss_before);

    let expected: Vec<u64> = (2..2 + UPDATES as u64).collect();
    assert_eq!(
        seqs, expected,
        "the healthy client got every update in order"
    );
    // ~7 MB of updates went to the stalled client; it may hold only a bounded buffer of them.
    assert!(growth_kib < 4 * 1024, "server RSS grew by {growth_kib} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_thousands_of_open_streams_and_the_process_exits_without_waiting_for_silent_connections()
 {
    const STREAMS: usize = 2_000;
    let redis = TestRedis::start().await;
    // A grace longer than the bound below: shutdown must not wait it out for anything here.
    let server = ServerProcess::start(&[
        ("REDIS_URL", &redis.url()),
        ("WORKER_CONCURRENCY", "0"),
        ("SHUTDOWN_GRACE_MS", "20000"),
    ])
    .await;
    let id = server
        .create(
            "/api/v4/deep-research",
            json!({"product_name": "Cola", "ingredients": ["water"]}),
        )
        .await;
    let path = format!("/api/v4/job/{id}/events");
    let _silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut streams = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        streams.push(open_stalled_stream(server.addr, &path).await);
    }
    let mut buffer = vec![0u8; 4096];
    for stream in &mut streams {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert!(read > 0, "every stream is open and has started");
    }

    let took = server.terminate().await;

    for mut stream in streams {
        let ended = tokio::time::timeout(PATIENCE, async {
            while stream.read(&mut buffer).await.unwrap_or(0) > 0 {}
        });
        ended.await.expect("every stream ends");
    }
    println!("exit after SIGTERM with {STREAMS} streams took {took:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
