//! Analytics: `GET /api/v4/stats` counts every creation and end exactly, by status and kind,
//! with percentiles from fixed buckets, a series per hour and the top findings, on Redis and in
//! memory, across instances and across an outage's write-back.

use crate::helpers::*;
use jobcast::stats::buckets::{ERROR_BOUND, bucket_of};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// The slowest job waits and runs at least this long (it is held back by sleeping).
const SLOW_MS: u64 = 300;

async fn stats(app: &TestApp, window: &str) -> Value {
    let response = app.get(&format!("/api/v4/stats?window={window}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn create_job_of(app: &TestApp, kind: &str) -> String {
    let response = app.post("/api/v4/jobs", &json!({ "kind": kind })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let job: Value = response.json().await.unwrap();
    job["job_id"].as_str().unwrap().to_owned()
}

async fn report_ok(app: &TestApp, id: &str, action: &str, body: Value) {
    let answer = app.report(id, action, &body).await;
    assert_eq!(answer.status(), StatusCode::OK, "{action} {id}");
}

/// Two deep-research reports, an import that waits and runs [`SLOW_MS`] each before it
/// completes, a failed and a cancelled import, and a pending job of a third kind.
async fn drive_jobs(app: &TestApp) {
    for (product, ingredients) in [
        (
            "Diet cola",
            json!(["carbonated water", "aspartame", "caffeine"]),
        ),
        ("Cured ham", json!(["Sodium nitrite", "aspartame"])),
    ] {
        let id = app.start_research(product, ingredients).await;
        app.wait_until_finished(&id).await;
    }
    let slow = create_job_of(app, "import").await;
    tokio::time::sleep(Duration::from_millis(SLOW_MS)).await;
    report_ok(app, &slow, "progress", json!({"progress": 10})).await;
    tokio::time::sleep(Duration::from_millis(SLOW_MS)).await;
    report_ok(app, &slow, "complete", json!({"result": {"rows": 3}})).await;
    let failed = create_job_of(app, "import").await;
    report_ok(app, &failed, "fail", json!({"error": "bad file"})).await;
    let cancelled = create_job_of(app, "import").await;
    let answer = app
        .post(&format!("/api/v4/job/{cancelled}/cancel"), &json!({}))
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    create_job_of(app, "export").await;
}

/// The counts of a report that do not depend on timing.
fn counts(report: &Value) -> Value {
    json!({
        "created": report["created"],
        "created_by_kind": report["created_by_kind"],
        "finished": report["finished"],
        "finished_by_kind": report["finished_by_kind"],
        "success_rate": report["success_rate"],
        "durations": report["duration_ms"]["count"],
        "waits": report["queue_wait_ms"]["count"],
        "top_findings": report["top_findings"],
    })
}

fn ms(value: &Value) -> f64 {
    value.as_f64().expect("a percentile")
}

#[tokio::test]
async fn stats_count_every_end_by_status_and_kind_alike_on_redis_and_in_memory() {
    let redis = TestRedis::start().await;
    let mut seen = Vec::new();
    for backend in ["redis", "memory"] {
        let app = match backend {
            "redis" => spawn_app(&redis).await,
            _ => spawn_app_without_redis().await,
        };
        let before = stats(&app, "24h").await;
        assert_eq!(
            (before["created"].as_u64(), before["success_rate"].is_null()),
            (Some(0), true)
        );
        drive_jobs(&app).await;
        let report = stats(&app, "24h").await;

        let expected = json!({
            "created": 6,
            "created_by_kind": {"deep-research": 2, "export": 1, "import": 3},
            "finished": {"completed": 3, "failed": 1, "cancelled": 1},
            "finished_by_kind": {
                "deep-research": {"completed": 2, "failed": 0, "cancelled": 0},
                "import": {"completed": 1, "failed": 1, "cancelled": 1},
            },
            "success_rate": 0.6,
            "durations": 5,
            "waits": 3,
            "top_findings": [
                {"ingredient": "aspartame", "count": 2},
                {"ingredient": "Sodium nitrite", "count": 1},
                {"ingredient": "caffeine", "count": 1},
                {"ingredient": "carbonated water", "count": 1},
            ],
        });
        assert_eq!(counts(&report), expected, "on {backend}");

        // The slow import is the longest of five durations and of three waits: p99 is its
        // bucket, within the error bound of at least what it was held back.
        let slowest_ms = SLOW_MS as f64 * (1.0 - ERROR_BOUND);
        let (durations, waits) = (&report["duration_ms"], &report["queue_wait_ms"]);
        assert!(ms(&durations["p99"]) >= 2.0 * slowest_ms, "{durations}");
        assert!(ms(&waits["p99"]) >= slowest_ms, "{waits}");
        assert!(ms(&durations["p50"]) <= ms(&durations["p95"]));
        assert!(ms(&durations["p95"]) <= ms(&durations["p99"]));
        assert!(
            ms(&durations["p50"]) < slowest_ms,
            "four of five are quick: {durations}"
        );
        let bucketed: u64 = durations["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        assert_eq!(
            (bucketed, durations["error_bound"].as_f64()),
            (5, Some(ERROR_BOUND))
        );

        let hours = report["per_hour"].as_array().unwrap();
        assert_eq!(hours.len(), 24);
        let sum = |field: &str| {
            hours
                .iter()
                .map(|h| h[field].as_u64().unwrap())
                .sum::<u64>()
        };
        assert_eq!(
            (
                sum("created"),
                sum("completed"),
                sum("failed"),
                sum("cancelled")
            ),
            (6, 3, 1, 1)
        );
        let oldest = timestamp(&hours[0], "hour");
        let newest = timestamp(&hours[23], "hour");
        assert_eq!(
            (newest - oldest).num_hours(),
            23,
            "oldest first, one an hour"
        );
        assert_eq!(timestamp(&report, "from"), oldest);
        for window in ["1h", "7d", "30d"] {
            let wider = stats(&app, window).await;
            let length = wider["per_hour"].as_array().unwrap().len();
            let hours = jobcast::stats::Window::parse(window).unwrap().hours();
            assert_eq!((length as i64, &wider["window"]), (hours, &json!(window)));
        }
        seen.push(counts(&report));
    }
    assert_eq!(seen[0], seen[1], "Redis and memory count alike");
}

#[tokio::test]
async fn two_instances_on_one_redis_count_each_others_jobs() {
    let redis = TestRedis::start().await;
    let (a, b) = (spawn_app(&redis).await, spawn_app(&redis).await);
    for _ in 0..2 {
        let id = create_job_of(&a, "import").await;
        report_ok(&a, &id, "fail", json!({"error": "on a"})).await;
    }
    let id = create_job_of(&b, "import").await;
    report_ok(&b, &id, "progress", json!({"progress": 50})).await;
    report_ok(&a, &id, "complete", json!({"result": {}})).await;

    for app in [&a, &b] {
        let report = stats(app, "24h").await;
        assert_eq!(report["created"], 3);
        assert_eq!(
            report["finished"],
            json!({"completed": 1, "failed": 2, "cancelled": 0})
        );
        assert_eq!(report["success_rate"].as_f64(), Some(1.0 / 3.0));
        assert_eq!(report["queue_wait_ms"]["count"], 1);
    }
}

#[tokio::test]
async fn a_bad_window_answers_400_and_the_stats_are_the_admins() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    for window in ["2h", "30", "1d", "7D"] {
        let answer = app.get(&format!("/api/v4/stats?window={window}")).await;
        let detail = detail_of(answer, StatusCode::BAD_REQUEST).await;
        assert!(
            detail.starts_with("window must be one of 1h, 24h, 7d, 30d"),
            "{detail}"
        );
    }
    let default = stats(&app, "").await;
    assert_eq!(default["window"], "24h");

    let router = jobcast::routes::router(app.state.clone());
    let remote: std::net::SocketAddr = ([203, 0, 113, 7], 40_000).into();
    let request = axum::http::Request::get("/api/v4/stats")
        .extension(axum::extract::ConnectInfo(remote))
        .body(axum::body::Body::empty())
        .unwrap();
    let answer = tower::ServiceExt::oneshot(router, request).await.unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::FORBIDDEN,
        "no token: loopback only"
    );

    let mut config = test_config(&redis.url());
    config.admin_token = Some(jobcast::config::Secret::parse("stats-admin").unwrap());
    let guarded = spawn_app_with(config).await;
    let anonymous = guarded.get("/api/v4/stats").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let admin = guarded
        .client
        .get(guarded.url("/api/v4/stats?window=7d"))
        .bearer_auth("stats-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_ended_in_memory_during_an_outage_is_counted_in_redis_once() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = create_job_of(&app, "import").await;
    report_ok(&app, &id, "progress", json!({"progress": 5})).await;
    let other = create_job_of(&app, "import").await;

    redis.freeze();
    report_ok(&app, &id, "fail", json!({"error": "while Redis slept"})).await;
    assert!(app.state.store.is_degraded());
    report_ok(&app, &other, "progress", json!({"progress": 50})).await;
    report_ok(&app, &other, "complete", json!({"result": {}})).await;
    redis.thaw();
    eventually("the instance never switched back", || async {
        (!app.state.store.is_degraded()).then_some(())
    })
    .await;

    let report = stats(&app, "24h").await;
    assert_eq!(
        report["created"], 2,
        "counted by create.lua before the outage, not again"
    );
    assert_eq!(
        report["finished"],
        json!({"completed": 1, "failed": 1, "cancelled": 0})
    );
    assert_eq!(report["duration_ms"]["count"], 2);
    // A job keeps no time of its first start: one started during the outage is not counted.
    assert_eq!(
        report["queue_wait_ms"]["count"], 1,
        "the wait counted before the outage"
    );
}

/// The Lua functions of transition.lua's stats block, to run on their own.
fn lua_stats_functions() -> String {
    let script = include_str!("../../src/store/redis/transition.lua");
    let start = script
        .find("local BUCKETS_PER_DOUBLING")
        .expect("the bucket constants");
    let end = script.find("local counted = {}").expect("the stats block");
    script[start..end].to_owned()
}

#[tokio::test]
async fn lua_buckets_durations_and_reads_timestamps_as_rust_does() {
    let redis = TestRedis::start().await;
    let durations: Vec<i64> = (0..3_000)
        .chain((0..41).flat_map(|p| [(1_i64 << p) - 1, 1 << p, (1 << p) + 1]))
        .chain((1..200).map(|i| i * 7_919_993))
        .collect();
    let texts: Vec<String> = durations.iter().map(i64::to_string).collect();
    let script = format!(
        "{}local out = {{}} for i, ms in ipairs(ARGV) do out[i] = bucket_of(tonumber(ms)) end return out",
        lua_stats_functions()
    );
    let mut args = vec!["EVAL", script.as_str(), "0"];
    args.extend(texts.iter().map(String::as_str));
    let buckets: Vec<String> = redis.command(&args).await;
    for (ms, bucket) in durations.iter().zip(buckets) {
        assert_eq!(bucket, bucket_of(*ms).to_string(), "{ms} ms");
    }

    let instants = [
        "2026-11-29T19:33:37.123Z",
        "2024-02-29T23:59:59.999Z",
        "2000-03-01T00:00:00.000Z",
        "1970-01-01T00:00:00.000Z",
        "2099-12-31T12:00:00.5Z",
    ];
    let script = format!(
        "{}local out = {{}} for i, t in ipairs(ARGV) do out[i] = string.format('%d', ms_of(t)) end return out",
        lua_stats_functions()
    );
    let mut args = vec!["EVAL", script.as_str(), "0"];
    args.extend(instants);
    let read: Vec<String> = redis.command(&args).await;
    for (text, ms) in instants.iter().zip(read) {
        let expected = chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis();
        assert_eq!(ms, expected.to_string(), "{text}");
    }
}

#[tokio::test]
async fn a_stats_key_that_is_not_a_hash_stops_no_change_and_reads_as_an_empty_hour() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let hour = chrono::Utc::now().timestamp_millis() / 3_600_000;
    let key = jobcast::stats::hours::key_of(hour);
    let _: () = redis.command(&["SET", &key, "written by hand"]).await;
    let _: () = redis
        .command(&[
            "HSET",
            &jobcast::stats::hours::key_of(hour - 1),
            "created",
            "2",
        ])
        .await;

    let id = create_job_of(&app, "import").await;
    report_ok(&app, &id, "progress", json!({"progress": 5})).await;
    report_ok(&app, &id, "complete", json!({"result": {}})).await;

    let report = stats(&app, "24h").await;
    assert_eq!(report["created"], 2, "the hour before still counts");
    assert_eq!(app.job(&id).await["status"], "completed");
    assert!(!app.state.store.is_degraded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_created_and_ended_in_memory_reaches_a_redis_that_lost_its_data_counted_once() {
    let mut redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    redis.kill();
    let id = create_job_of(&app, "import").await;
    assert!(app.state.store.is_degraded());
    report_ok(&app, &id, "fail", json!({"error": "while Redis was away"})).await;
    let in_memory = stats(&app, "24h").await;
    assert_eq!(
        (
            in_memory["created"].as_u64(),
            in_memory["finished"]["failed"].as_u64()
        ),
        (Some(1), Some(1))
    );

    redis.launch().await; // empty: only the write-back can count the job
    eventually("the instance never switched back", || async {
        (!app.state.store.is_degraded()).then_some(())
    })
    .await;
    let report = stats(&app, "24h").await;
    assert_eq!(report["created_by_kind"], json!({"import": 1}));
    assert_eq!(
        report["finished"],
        json!({"completed": 0, "failed": 1, "cancelled": 0})
    );
    assert_eq!(report["duration_ms"]["count"], 1);
}
