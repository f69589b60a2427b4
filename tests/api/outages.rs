//! Redis goes away and comes back: requests keep succeeding from memory, and nothing is lost.

use crate::helpers::*;
use jobcast::store::HISTORY_RECORDS_KEY;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    let searched: Value = app
        .get("/api/v4/jobs?q=early%20sal")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        job_ids(&searched),
        [early.as_str()],
        "found in Redis's search index"
    );
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

/// One SSE watcher of the outage test: its job and what its stream ended on.
struct Watched {
    id: String,
    /// The statuses answered to its progress and complete reports; `None` if its task panicked.
    reports: Option<[StatusCode; 2]>,
    /// The stream's last event; `None` when it ended (or its task panicked) without one.
    last: Option<SseEvent>,
}

/// Until `stop`, creates a job, watches it over SSE, reports progress and completion, and
/// records what the stream ended on.
async fn watch_some(app: Arc<TestApp>, stop: Arc<AtomicBool>) -> Vec<Watched> {
    let mut watched = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let id = app.create_external_job().await;
        let task = tokio::spawn(watch_one(app.clone(), id.clone()));
        let (reports, last) = match task.await {
            Ok((reports, last)) => (Some(reports), last),
            Err(_) => (None, None),
        };
        watched.push(Watched { id, reports, last });
    }
    watched
}

/// Watches job `id` while reporting its progress and completion.
async fn watch_one(app: Arc<TestApp>, id: String) -> ([StatusCode; 2], Option<SseEvent>) {
    let url = app.url(&format!("/api/v4/job/{id}/events"));
    let mut stream = SseStream::connect(&url, None).await;
    let snapshot = stream.next_event().await;
    let progress = app.report(&id, "progress", &json!({"progress": 50})).await;
    let complete = app.report(&id, "complete", &json!({"result": {}})).await;
    let last = stream.collect_until_end().await.pop().or(snapshot);
    ([progress.status(), complete.status()], last)
}

/// How a watcher's stream ended, measured against its job's final state in Redis.
#[derive(PartialEq)]
enum Ending {
    /// On a terminal event whose job is the stored one, `seq` included.
    OnStoredFinalState,
    /// Anywhere else: another state, no event, or nothing stored.
    Elsewhere,
}

/// Compares `watched`'s last event with its job as stored in `redis` now.
async fn ending(redis: &TestRedis, watched: &Watched) -> Ending {
    let (Some(last), Some(mut stored)) = (&watched.last, stored_job(redis, &watched.id).await)
    else {
        return Ending::Elsewhere;
    };
    let mut seen = last.json();
    if !matches!(last.kind(), "completed" | "failed") || stored["status"] != last.kind() {
        return Ending::Elsewhere;
    }
    let stored_seq = stored["seq"].take().as_u64().unwrap();
    seen["seq"].take();
    match stored == seen && stored_seq == last.seq() {
        true => Ending::OnStoredFinalState,
        false => Ending::Elsewhere,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_under_load_loses_no_accepted_job_and_clients_see_no_5xx() {
    let mut redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.deep_research_step_ms = 5;
    let app = Arc::new(spawn_app_with(config).await);
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(create_until_stopped(app.clone(), 4, stop.clone()));
    let watcher = tokio::spawn(watch_some(app.clone(), stop.clone()));

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
    let watched = watcher.await.unwrap();

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
    let mut endings = Vec::new();
    for one in &watched {
        let ended = ending(&redis, one).await;
        if ended == Ending::Elsewhere {
            println!("watcher of {} ended on {:?}", one.id, one.last);
        }
        endings.push(ended);
    }
    let count = |wanted: Ending| endings.iter().filter(|e| **e == wanted).count();
    let on_final_state = count(Ending::OnStoredFinalState);
    let report_failures = watched
        .iter()
        .filter(|one| one.reports != Some([StatusCode::OK; 2]))
        .count();
    println!(
        "redis kill under load: created={} completed={completed} lost={lost} 5xx={} other_failures={} \
         sse_watchers_started={} sse_watchers_ended_on_final_state={} report_failures={report_failures}",
        counts.created.len(),
        counts.server_errors,
        counts.other_failures,
        watched.len(),
        on_final_state,
    );
    assert!(
        counts.created.len() >= 40,
        "the load ran through the outage"
    );
    assert_eq!(
        (lost, counts.server_errors, counts.other_failures),
        (0, 0, 0)
    );
    assert!(
        !watched.is_empty(),
        "streams were watched through the outage"
    );
    assert_eq!(
        (on_final_state, report_failures),
        (watched.len(), 0),
        "every watcher ends on its job's stored final state"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_finished_during_an_outage_reaches_the_redis_history_with_the_write_back() {
    let mut redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    redis.kill();
    wait_for_backend(&app, "memory").await;
    let failed = app
        .report(
            &id,
            "fail",
            &json!({"error": "failed while Redis was down"}),
        )
        .await;
    assert_eq!(failed.status(), StatusCode::OK);

    redis.launch().await; // empty: the record can only come from the write-back
    wait_for_backend(&app, "redis").await;

    let record: Option<String> = redis.command(&["HGET", HISTORY_RECORDS_KEY, &id]).await;
    let record: Value = serde_json::from_str(&record.expect("a record in Redis")).unwrap();
    assert_eq!(record["status"], "failed");
    assert_eq!(record["error"], "failed while Redis was down");
    let page: Value = app.get("/api/v4/history").await.json().await.unwrap();
    assert_eq!(job_ids(&page), [id]);
}
