//! Real process crashes and restarts, with counts of what clients saw.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TEN_INGREDIENTS: [&str; 10] = [
    "water",
    "sugar",
    "salt",
    "aspartame",
    "caffeine",
    "citric acid",
    "wheat flour",
    "e150d",
    "sucralose",
    "e211",
];

async fn create(server: &ServerProcess, product: &str) -> String {
    let body = json!({"product_name": product, "ingredients": TEN_INGREDIENTS});
    let response = reqwest::Client::new()
        .post(server.url("/api/v4/deep-research"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn job(server: &ServerProcess, id: &str) -> Value {
    let response = reqwest::get(server.url(&format!("/api/v4/job/{id}")))
        .await
        .unwrap();
    assert!(!response.status().is_server_error());
    response.json().await.unwrap()
}

async fn wait_until(server: &ServerProcess, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(&format!("job {id} stuck"), || async {
        let job = job(server, id).await;
        done(&job).then_some(job)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_an_instance_mid_job_and_the_other_finishes_every_job_once() {
    let redis = TestRedis::start().await;
    let url = redis.url();
    let vars = [
        ("REDIS_URL", url.as_str()),
        ("WORKER_CONCURRENCY", "2"),
        ("DEEP_RESEARCH_STEP_MS", "100"),
        ("LEASE_SECS", "1"),
        ("SWEEP_INTERVAL_MS", "200"),
    ];
    let doomed = ServerProcess::start(&vars).await;
    let running = [create(&doomed, "A").await, create(&doomed, "B").await];
    for id in &running {
        wait_until(&doomed, id, |job| {
            job["status"] == "processing" && job["progress"].as_u64() >= Some(10)
        })
        .await;
    }
    let survivor = ServerProcess::start(&vars).await;
    let queued: Vec<String> = [create(&survivor, "C").await, create(&survivor, "D").await].into();
    let mut watchers = Vec::new();
    for id in running.iter().chain(&queued) {
        watchers.push(
            SseStream::connect(&survivor.url(&format!("/api/v4/job/{id}/events")), None).await,
        );
    }

    doomed.kill().await;

    let mut completed = 0;
    for (id, watcher) in running.iter().chain(&queued).zip(&mut watchers) {
        let events = watcher.collect_until_end().await;
        let finals = events.iter().filter(|e| e.kind() == "completed").count();
        assert_eq!(
            finals, 1,
            "{id} completed exactly once to the client's eyes"
        );
        assert_progress_never_decreases(&events, id);
        completed += 1;
    }
    let attempts: Vec<u64> = {
        let mut attempts = Vec::new();
        for id in &running {
            attempts.push(job(&survivor, id).await["attempt"].as_u64().unwrap());
        }
        attempts
    };
    println!("sigkill: created=4 completed={completed} stuck=0 taken_over_attempts={attempts:?}");
    assert!(
        attempts.iter().all(|&a| a == 2),
        "the jobs running on the killed instance were resumed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_job_then_restart_and_the_reconnecting_sse_client_sees_it_finish() {
    let redis = TestRedis::start().await;
    let url = redis.url();
    let vars = [
        ("REDIS_URL", url.as_str()),
        ("WORKER_CONCURRENCY", "1"),
        ("DEEP_RESEARCH_STEP_MS", "150"),
    ];
    let first = ServerProcess::start(&vars).await;
    let id = create(&first, "Restarted").await;
    let path = format!("/api/v4/job/{id}/events");
    let mut stream = SseStream::connect(&first.url(&path), None).await;
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(stream.next_event().await.unwrap());
    }

    first.terminate().await;
    seen.extend(stream.collect_until_end().await); // the server ended the stream cleanly
    let last_id = seen.last().unwrap().seq();
    let second = ServerProcess::start(&vars).await;
    let mut resumed = SseStream::connect(&second.url(&path), Some(last_id)).await;
    let rest = resumed.collect_until_end().await;

    assert_progress_never_decreases(seen.iter().chain(&rest), "the job across the restart");
    let last = rest.last().expect("events after the restart");
    assert_eq!(last.kind(), "completed");
    assert_eq!(last.json()["attempt"], 2);
    assert!(rest.iter().all(|e| e.seq() > last_id), "nothing resent");
}
