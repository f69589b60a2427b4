//! Redis stalls (SIGSTOP, CLIENT PAUSE) under several instances: what any instance acknowledged
//! is what every instance, Redis and every watcher end with.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a test stops Redis from answering.
#[derive(Clone, Copy, Debug)]
enum Stall {
    /// `kill -STOP`, then `kill -CONT`: sockets stay open, nothing answers.
    Sigstop,
    /// `CLIENT PAUSE <ms> ALL`: Redis holds every command until the pause ends.
    ClientPause,
}

impl Stall {
    async fn begin(self, redis: &TestRedis, millis: u64) {
        match self {
            Stall::Sigstop => redis.freeze(),
            Stall::ClientPause => {
                let pause = millis.to_string();
                let () = redis.command(&["CLIENT", "PAUSE", &pause, "ALL"]).await;
            }
        }
    }

    fn end(self, redis: &TestRedis) {
        match self {
            Stall::Sigstop => redis.thaw(),
            Stall::ClientPause => {} // it ends by itself
        }
    }
}

/// Instances on one Redis, each with the repair loop tuned for a test.
async fn instances(redis: &TestRedis, count: usize) -> Vec<ServerProcess> {
    let url = redis.url();
    let mut servers = Vec::new();
    for _ in 0..count {
        let vars = [("REDIS_URL", url.as_str()), ("WORKER_CONCURRENCY", "0")];
        servers.push(ServerProcess::start(&vars).await);
    }
    servers
}

async fn call(server: &ServerProcess, path: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .json(&body)
        .timeout(PATIENCE)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn read(server: &ServerProcess, id: &str) -> Value {
    let response = reqwest::get(server.url(&format!("/api/v4/job/{id}")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "job {id}");
    response.json().await.unwrap()
}

/// A job of an external kind, moved to `processing`, and read once through every instance.
async fn running_job(servers: &[ServerProcess]) -> String {
    let (status, job) = call(&servers[0], "/api/v4/jobs", json!({"kind": "external"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = job["job_id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &servers[0],
        &format!("/api/v4/job/{id}/progress"),
        json!({"progress": 5}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for server in servers {
        read(server, &id).await;
    }
    id
}

async fn wait_until_all_on_redis(servers: &[ServerProcess]) {
    for server in servers {
        eventually("an instance never switched back to Redis", || async {
            let ready: Value = reqwest::get(server.url("/ready"))
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (ready["backend"] == "redis").then_some(())
        })
        .await;
    }
}

async fn stored(redis: &TestRedis, id: &str) -> Value {
    let json: String = redis.command(&["GET", &job_key(id)]).await;
    serde_json::from_str(&json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_acknowledged_during_a_redis_stall_survives_progress_from_another_instance() {
    let redis = TestRedis::start().await;
    let servers = instances(&redis, 2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let id = running_job(&servers).await;
    let mut watcher = SseStream::connect(&a.url(&format!("/api/v4/job/{id}/events")), None).await;
    watcher.next_event().await.expect("snapshot");

    redis.freeze();
    let (status, done) = call(
        b,
        &format!("/api/v4/job/{id}/complete"),
        json!({"result": {"verdict": "safe", "found": []}}),
    )
    .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (StatusCode::OK, Some("completed"))
    );
    let mut seen = vec![done["seq"].as_u64().unwrap()];
    for progress in [10, 20, 30] {
        let path = format!("/api/v4/job/{id}/progress");
        let (status, job) = call(a, &path, json!({ "progress": progress })).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        seen.push(job["seq"].as_u64().unwrap());
    }
    redis.thaw();
    wait_until_all_on_redis(&servers).await;

    let events = watcher.collect_until_end().await;
    let last = events.last().expect("the watcher on A ends").json();
    let final_state = eventually("Redis never ended completed", || async {
        let job = stored(&redis, &id).await;
        (job["status"] == "completed").then_some(job)
    })
    .await;
    assert_eq!(
        final_state["result"],
        json!({"verdict": "safe", "found": []})
    );
    assert!(final_state["seq"].as_u64().unwrap() > *seen.iter().max().unwrap());
    assert_eq!(last["status"], "completed", "A's watcher saw {events:?}");
    assert_eq!(last["seq"], final_state["seq"]);
    for server in &servers {
        assert_eq!(read(server, &id).await, final_state);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_outcomes_acknowledged_during_a_stall_keep_the_first_and_record_the_other() {
    let redis = TestRedis::start().await;
    let servers = instances(&redis, 2).await;
    let id = running_job(&servers).await;

    redis.freeze();
    let fail = call(
        &servers[0],
        &format!("/api/v4/job/{id}/fail"),
        json!({"error": "disk full"}),
    )
    .await;
    let complete = call(
        &servers[1],
        &format!("/api/v4/job/{id}/complete"),
        json!({"result": [1, 2]}),
    )
    .await;
    assert_eq!((fail.0, complete.0), (StatusCode::OK, StatusCode::OK));
    redis.thaw();
    wait_until_all_on_redis(&servers).await;

    let merged = eventually("the outcomes were never merged", || async {
        let job = stored(&redis, &id).await;
        (job["superseded"].is_array()).then_some(job)
    })
    .await;
    let first_failed = fail.1["completed_at"].as_str() <= complete.1["completed_at"].as_str();
    let (kept, other) = match first_failed {
        true => ("failed", "completed"),
        false => ("completed", "failed"),
    };
    assert_eq!(merged["status"], kept, "{merged}");
    assert_eq!(merged["superseded"][0]["status"], other, "{merged}");
    for server in &servers {
        assert_eq!(read(server, &id).await, merged);
    }
}

#[tokio::test]
async fn a_job_an_instance_never_saw_is_unavailable_during_an_outage_not_missing() {
    let redis = TestRedis::start().await;
    let servers = instances(&redis, 2).await;
    let (status, job) = call(&servers[0], "/api/v4/jobs", json!({"kind": "external"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = job["job_id"].as_str().unwrap().to_owned();

    redis.freeze();
    let b = &servers[1];
    for path in [
        format!("/api/v4/job/{id}"),
        format!("/api/v4/job/{id}/events"),
    ] {
        let response = reqwest::get(b.url(&path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(response.headers().contains_key("retry-after"), "{path}");
        let body: Value = response.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("unavailable"), "{path}: {detail}");
    }
    let socket = b.url(&format!("/api/v4/job/{id}/ws")).replace("http", "ws");
    match tokio_tungstenite::connect_async(&socket).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected an HTTP 503 before the upgrade, got {other:?}"),
    }
    let (status, _) = call(
        b,
        &format!("/api/v4/job/{id}/progress"),
        json!({"progress": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    redis.thaw();
    wait_until_all_on_redis(&servers).await;
    assert_eq!(read(b, &id).await["job_id"], id.as_str());
}

/// What the reporters of one job were told.
#[derive(Default)]
struct Acknowledged {
    /// (status, result or error) of every terminal report answered 200.
    outcomes: Vec<(String, String)>,
    max_seq: u64,
    max_progress: u64,
}

impl Acknowledged {
    fn take(&mut self, job: &Value) {
        self.max_seq = self.max_seq.max(job["seq"].as_u64().unwrap_or(0));
        self.max_progress = self.max_progress.max(job["progress"].as_u64().unwrap_or(0));
        if let Some(outcome) = outcome_of(job)
            && !self.outcomes.contains(&outcome)
        {
            self.outcomes.push(outcome);
        }
    }
}

/// Job `id` as Redis holds it once it holds what the reporters were `told` (an outcome, if
/// any was acknowledged, and at least the highest `seq`); failing the test, with both, if it
/// does not within [`PATIENCE`].
async fn settled(redis: &TestRedis, id: &str, told: &Acknowledged) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let job = stored(redis, id).await;
        let seq = job["seq"].as_u64().unwrap_or(0);
        let outcome_kept = told.outcomes.is_empty() || outcome_of(&job).is_some();
        if outcome_kept && seq >= told.max_seq {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Redis never held the merged state of {id}: told {:?} up to seq {}, holds {job}",
            told.outcomes,
            told.max_seq
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A terminal job's status and what it ended with.
fn outcome_of(job: &Value) -> Option<(String, String)> {
    match job["status"].as_str()? {
        "completed" => Some(("completed".into(), job["result"].to_string())),
        "failed" => Some(("failed".into(), job["error"].as_str()?.to_owned())),
        _ => None,
    }
}

/// One job's reporters during the stall: progress through random instances, then (for most
/// jobs) one outcome, and for every fifth job a second, different one on another instance.
async fn report_during_stall(
    servers: Arc<Vec<ServerProcess>>,
    id: String,
    n: usize,
    acked: Arc<Mutex<HashMap<String, Acknowledged>>>,
) {
    let mut reports = Vec::new();
    let mut progress = 5;
    for _ in 0..4 {
        progress += fastrand::u64(1..15);
        let server = fastrand::usize(..servers.len());
        reports.push((server, "progress", json!({ "progress": progress })));
    }
    let finisher = fastrand::usize(..servers.len());
    if n % 7 != 3 {
        // (the others are still running when Redis is back)
        let result = json!({"result": {"job": n, "by": finisher}});
        reports.push((finisher, "complete", result));
    }
    if n.is_multiple_of(5) {
        let other = (finisher + 1) % servers.len();
        reports.push((other, "fail", json!({"error": format!("lost by {other}")})));
    }
    for (server, action, body) in reports {
        let path = format!("/api/v4/job/{id}/{action}");
        let (status, job) = call(&servers[server], &path, body).await;
        if status == StatusCode::OK {
            let mut acked = acked.lock().unwrap();
            acked.entry(id.clone()).or_default().take(&job);
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..200))).await;
    }
}

/// What one watcher has received so far.
type Seen = Arc<Mutex<Vec<Value>>>;

/// Follows one job's events on one instance until the stream ends (or the task is aborted).
fn follow(server: &ServerProcess, id: &str) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let url = server.url(&format!("/api/v4/job/{id}/events"));
    let kept = seen.clone();
    let task = tokio::spawn(async move {
        let mut stream = SseStream::connect(&url, None).await;
        while let Some(event) = stream.next_event().await {
            kept.lock().unwrap().push(event.json());
        }
    });
    (seen, task)
}

/// The outcomes a job's `superseded` list keeps, in the form of [`outcome_of`].
fn superseded_outcomes(job: &Value) -> Vec<(String, String)> {
    let superseded = job["superseded"].as_array().into_iter().flatten();
    superseded
        .map(|s| match s["status"].as_str() {
            Some("completed") => {
                let result: Value = serde_json::from_str(s["result"].as_str().unwrap()).unwrap();
                ("completed".to_owned(), result.to_string())
            }
            _ => ("failed".to_owned(), s["error"].as_str().unwrap().to_owned()),
        })
        .collect()
}

/// Waits until a watcher ends (on an outcome) or holds `job`'s final seq; whether it ended on
/// `job`'s own final state.
async fn watcher_end(seen: &Seen, job: &Value) -> bool {
    let last = eventually("a watcher never caught up", || async {
        let last = seen.lock().unwrap().last().cloned()?;
        let caught_up = last["seq"] == job["seq"] || outcome_of(&last).is_some();
        caught_up.then_some(last)
    })
    .await;
    last["status"] == job["status"] && outcome_of(&last) == outcome_of(job)
}

/// Counts, printed as one line for RELIABILITY.md.
#[derive(Debug, Default, serde::Serialize)]
struct ChaosCounts {
    stall: String,
    instances: usize,
    jobs: usize,
    acknowledged_terminal: usize,
    conflicting_outcomes: usize,
    final_states_matching: usize,
    watchers: usize,
    watchers_correct: usize,
    watchers_on_a_superseded_outcome: usize,
}

async fn chaos(stall: Stall, instance_count: usize, job_count: usize) -> ChaosCounts {
    let redis = TestRedis::start().await;
    let servers = Arc::new(instances(&redis, instance_count).await);
    let mut ids = Vec::new();
    for _ in 0..job_count {
        ids.push(running_job(&servers).await);
    }
    let (watchers, tasks): (Vec<(String, Seen)>, Vec<_>) = ids
        .iter()
        .flat_map(|id| servers.iter().map(move |server| (id, follow(server, id))))
        .map(|(id, (seen, task))| ((id.clone(), seen), task))
        .unzip();
    eventually("every watcher has its snapshot", || async {
        watchers
            .iter()
            .all(|(_, seen)| !seen.lock().unwrap().is_empty())
            .then_some(())
    })
    .await;

    let stall_ms = 4_000;
    stall.begin(&redis, stall_ms).await;
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let reporters: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let task = report_during_stall(servers.clone(), id.clone(), n, acked.clone());
            tokio::spawn(task)
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(stall_ms)).await;
    stall.end(&redis);
    for reporter in reporters {
        reporter.await.unwrap();
    }
    wait_until_all_on_redis(&servers).await;

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let mut counts = ChaosCounts {
        stall: format!("{stall:?}"),
        instances: instance_count,
        jobs: job_count,
        watchers: watchers.len(),
        ..Default::default()
    };
    let mut finals = HashMap::new();
    for id in &ids {
        let told = &acked[id];
        let job = settled(&redis, id, told).await;
        counts.acknowledged_terminal += told.outcomes.len();
        counts.conflicting_outcomes += told.outcomes.len().saturating_sub(1);
        let superseded = superseded_outcomes(&job);
        let kept = outcome_of(&job);
        let every_outcome_kept = told
            .outcomes
            .iter()
            .all(|outcome| Some(outcome) == kept.as_ref() || superseded.contains(outcome));
        let matches = every_outcome_kept
            && (told.outcomes.is_empty() || kept.is_some())
            && job["progress"].as_u64().unwrap() >= told.max_progress
            // Equal only when it is a state a client was told with that seq: every watcher is
            // checked to have ended on it below.
            && job["seq"].as_u64().unwrap() >= told.max_seq;
        assert!(matches, "job {id}: told {:?}, ended {job}", told.outcomes);
        for server in servers.iter() {
            assert_eq!(read(server, id).await, job, "instances disagree on {id}");
        }
        counts.final_states_matching += 1;
        finals.insert(id.clone(), job);
    }
    for (id, seen) in &watchers {
        match watcher_end(seen, &finals[id]).await {
            true => counts.watchers_correct += 1,
            false if acked[id].outcomes.len() > 1 => counts.watchers_on_a_superseded_outcome += 1,
            false => panic!(
                "a watcher of {id} ended other than Redis: {:?}",
                seen.lock()
            ),
        }
    }
    tasks.iter().for_each(|task| task.abort()); // before the servers go
    println!("chaos: {}", serde_json::to_string(&counts).unwrap());
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_three_instances_through_a_sigstop_of_redis_keep_every_acknowledged_outcome() {
    let counts = chaos(Stall::Sigstop, 3, 12).await;
    assert!(counts.acknowledged_terminal >= 10, "{counts:?}");
    assert!(counts.conflicting_outcomes >= 1, "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_two_instances_through_a_client_pause_keep_every_acknowledged_outcome() {
    let counts = chaos(Stall::ClientPause, 2, 8).await;
    assert!(counts.acknowledged_terminal >= 6, "{counts:?}");
}
