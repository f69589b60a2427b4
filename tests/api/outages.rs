//! Redis goes away and comes back: requests keep succeeding from memory, and nothing is lost.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

async fn backend(app: &TestApp) -> String {
    let ready: Value = app.get("/ready").await.json().await.unwrap();
    ready["backend"].as_str().unwrap().to_owned()
}

async fn wait_for_backend(app: &TestApp, wanted: &str) {
    let what = format!("backend never became {wanted}");
    eventually(&what, || async {
        (backend(app).await == wanted).then_some(())
    })
    .await
}

async fn stored_job(redis: &TestRedis, id: &str) -> Option<Value> {
    let json: Option<String> = redis.command(&["GET", &job_key(id)]).await;
    json.map(|json| serde_json::from_str(&json).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_started_without_redis_switches_to_it_when_it_appears_and_writes_its_jobs_back() {
    let mut redis = TestRedis::unstarted(&[]);
    let app = spawn_app(&redis).await;
    assert_eq!(backend(&app).await, "memory");
    let early = app.start_research("Early", json!(["water", "salt"])).await;
    assert_eq!(app.wait_until_finished(&early).await["status"], "completed");

    redis.launch().await;
    wait_for_backend(&app, "redis").await;

    let stored = stored_job(&redis, &early)
        .await
        .expect("written back to Redis");
    assert_eq!(stored, app.job(&early).await);
    let late = app.start_research("Late", json!(["sugar"])).await;
    assert_eq!(app.wait_until_finished(&late).await["status"], "completed");
    assert!(stored_job(&redis, &late).await.is_some());
}

/// Counts of what the clients of a load saw.
#[derive(Default)]
struct LoadCounts {
    created: Vec<String>,
    server_errors: usize,
    other_failures: usize,
}

/// Creates jobs from `creators` tasks until `stop`, as clients would.
async fn create_until_stopped(
    app: Arc<TestApp>,
    creators: usize,
    stop: Arc<AtomicBool>,
) -> LoadCounts {
    let tasks: Vec<_> = (0..creators)
        .map(|creator| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                let mut counts = LoadCounts::default();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = json!({"product_name": format!("P{creator}-{n}"), "ingredients": ["water", "aspartame"]});
                    let response = app.post("/api/v4/deep-research", &body).await;
                    match response.status() {
                        StatusCode::OK => {
                            let job: Value = response.json().await.unwrap();
                            counts.created.push(job["job_id"].as_str().unwrap().to_owned());
                        }
                        status if status.is_server_error() => counts.server_errors += 1,
                        _ => counts.other_failures += 1,
                    }
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                counts
            })
        })
        .collect();
    let mut total = LoadCounts::default();
    for task in tasks {
        let counts = task.await.unwrap();
        total.created.extend(counts.created);
        total.server_errors += counts.server_errors;
        total.other_failures += counts.other_failures;
    }
    total
}

/// Watches jobs over SSE while they run; returns how many streams ended on a final state.
async fn watch_some(app: Arc<TestApp>, stop: Arc<AtomicBool>, finished: Arc<AtomicUsize>) {
    while !stop.load(Ordering::Relaxed) {
        let id = app.create_external_job().await;
        let url = app.url(&format!("/api/v4/job/{id}/events"));
        let mut stream = SseStream::connect(&url, None).await;
        stream.next_event().await.unwrap();
        app.report(&id, "progress", &json!({"progress": 50})).await;
        app.report(&id, "complete", &json!({"result": {}})).await;
        if stream
            .collect_until_end()
            .await
            .last()
            .is_some_and(|e| e.kind() == "completed")
        {
            finished.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_under_load_loses_no_accepted_job_and_clients_see_no_5xx() {
    let mut redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.deep_research_step_ms = 5;
    let app = Arc::new(spawn_app_with(config).await);
    let stop = Arc::new(AtomicBool::new(false));
    let watched = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(create_until_stopped(app.clone(), 4, stop.clone()));
    let watcher = tokio::spawn(watch_some(app.clone(), stop.clone(), watched.clone()));

    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        backend(&app).await,
        "memory",
        "degraded while Redis is down"
    );
    redis.launch().await; // empty: no persistence, so everything must come back from the server
    wait_for_backend(&app, "redis").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let counts = load.await.unwrap();
    watcher.await.unwrap();

    let mut completed = 0;
    for id in &counts.created {
        let job = app.wait_until_finished(id).await;
        assert_eq!(job["status"], "completed", "{job}");
        completed += 1;
    }
    let mut lost = 0;
    for id in &counts.created {
        match stored_job(&redis, id).await {
            Some(stored) if stored["status"] == "completed" => {}
            _ => lost += 1,
        }
    }
    println!(
        "redis kill under load: created={} completed={completed} lost={lost} 5xx={} other_failures={} sse_streams_finished={}",
        counts.created.len(),
        counts.server_errors,
        counts.other_failures,
        watched.load(Ordering::Relaxed)
    );
    assert!(
        counts.created.len() >= 40,
        "the load ran through the outage"
    );
    assert_eq!(
        (lost, counts.server_errors, counts.other_failures),
        (0, 0, 0)
    );
    assert!(watched.load(Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn a_job_survives_a_restart_of_redis_itself_with_appendonly() {
    let mut redis =
        TestRedis::start_with_args(&["--appendonly", "yes", "--appendfsync", "always"]).await;
    let app = spawn_app(&redis).await;
    let id = app.start_research("Kept", json!(["water"])).await;
    let finished = app.wait_until_finished(&id).await;
    app.stop().await; // nothing of this server may write it back afterwards

    redis.kill();
    redis.launch().await;

    assert_eq!(
        stored_job(&redis, &id).await.expect("kept by the AOF"),
        finished
    );
}

#[tokio::test]
async fn an_eviction_policy_other_than_noeviction_is_warned_about() {
    let redis = TestRedis::start_with_args(&["--maxmemory-policy", "allkeys-lru"]).await;
    let server = ServerProcess::start(&[("REDIS_URL", &redis.url())]).await;

    let deadline = Instant::now() + PATIENCE;
    while !server.logged("maxmemory-policy is not noeviction") {
        assert!(Instant::now() < deadline, "no warning logged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
