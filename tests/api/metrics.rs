//! `GET /metrics`: who may read it, and figures that move as jobs, streams and limits do.
//!
//! Each app has its own registry, so every count here is exact: nothing another test does in
//! this process reaches it.

use crate::helpers::*;
use futures::StreamExt;
use jobcast::config::Secret;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const OPEN: &str = "jobcast_streams_open";
const OPENED: &str = "jobcast_streams_opened_total";
const DELIVERIES: &str = "jobcast_deliveries_total";
const HTTP: &str = "jobcast_http_requests_total";

fn stream(transport: &'static str, path: &'static str) -> [(&'static str, &'static str); 2] {
    [("transport", transport), ("path", path)]
}

/// A WebSocket on a fresh connection (the direct path), or after another request on it (axum).
async fn websocket(app: &TestApp, id: &str, reused: bool) -> Socket {
    websocket_on(app, id, reused).await.0
}

/// The `seq` of the socket's next text frame; `None` once it closes.
async fn next_seq(socket: &mut Socket) -> Option<u64> {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("a frame in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                return frame["seq"].as_u64();
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Scrapes until `ready` holds for the scrape, failing with `what` after [`PATIENCE`].
async fn scrape_until(app: &TestApp, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    eventually(what, || async {
        let scrape = app.scrape().await;
        ready(&scrape).then_some(scrape)
    })
    .await
}

#[tokio::test]
async fn metrics_answer_only_the_admin_when_a_token_is_set() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.admin_token = Some(Secret::parse("scrape-token").unwrap());
    let app = spawn_app_with(config).await;

    let anonymous = app.get("/metrics").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let scraper = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-token")
        .send()
        .await
        .unwrap();
    assert_eq!(scraper.status(), StatusCode::OK);
    let content_type = scraper.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let scrape = Scrape(scraper.text().await.unwrap());
    assert_eq!(scrape.value("jobcast_relay_messages_total", &[]), Some(0.0));
}

#[tokio::test]
async fn metrics_addr_serves_the_figures_without_the_token_and_only_them() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.admin_token = Some(Secret::parse("scrape-token").unwrap());
    config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    let app = spawn_app_with(config).await;
    let private = app.metrics_addr.expect("METRICS_ADDR is bound");
    assert_ne!(private, app.addr);

    let scrape = reqwest::get(format!("http://{private}/metrics"))
        .await
        .unwrap();
    assert_eq!(scrape.status(), StatusCode::OK);
    assert!(
        scrape
            .text()
            .await
            .unwrap()
            .contains("jobcast_backend{backend=\"redis\"} 1")
    );
    let api = reqwest::get(format!("http://{private}/api/v4/jobs"))
        .await
        .unwrap();
    assert_eq!(
        api.status(),
        StatusCode::NOT_FOUND,
        "only /metrics is served there"
    );
}

#[tokio::test]
async fn two_apps_in_one_process_count_only_their_own_traffic() {
    let redis = TestRedis::start().await;
    let (busy, idle) = (spawn_app(&redis).await, spawn_app(&redis).await);

    busy.create_external_job().await;

    let created = [("kind", "external")];
    assert_eq!(
        busy.scrape()
            .await
            .count("jobcast_jobs_created_total", &created),
        1.0
    );
    assert_eq!(
        idle.scrape()
            .await
            .count("jobcast_jobs_created_total", &created),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_watched_over_sse_and_websocket_on_both_paths_moves_every_stream_figure() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let events = app.url(&format!("/api/v4/job/{id}/events"));
    let kept_alive = reqwest::Client::new();
    kept_alive.get(app.url("/health")).send().await.unwrap();
    let mut sse_direct = SseStream::connect(&events, None).await;
    let mut sse_axum = SseStream::connect_with(&kept_alive, &events, None).await;
    let mut ws_direct = websocket(&app, &id, false).await;
    let mut ws_axum = websocket(&app, &id, true).await;
    for sse in [&mut sse_direct, &mut sse_axum] {
        assert_eq!(sse.next_event().await.unwrap().kind(), "snapshot");
    }
    for ws in [&mut ws_direct, &mut ws_axum] {
        assert_eq!(next_seq(ws).await, Some(1));
    }
    let open_streams = [
        stream("sse", "direct"),
        stream("sse", "axum"),
        stream("websocket", "direct"),
        stream("websocket", "axum"),
    ];
    let scrape = app.scrape().await;
    for labels in &open_streams {
        assert_eq!(scrape.count(OPEN, labels), 1.0, "{labels:?}");
        assert_eq!(scrape.count(OPENED, labels), 1.0, "{labels:?}");
    }
    // Let the direct streams join their job's sinks (right after their snapshot went out).
    tokio::time::sleep(Duration::from_millis(200)).await;

    let progress = app.report(&id, "progress", &json!({"progress": 50})).await;
    assert_eq!(progress.status(), StatusCode::OK);
    assert_eq!(sse_direct.next_event().await.unwrap().seq(), 2);
    assert_eq!(sse_axum.next_event().await.unwrap().seq(), 2);
    assert_eq!(next_seq(&mut ws_direct).await, Some(2));
    assert_eq!(next_seq(&mut ws_axum).await, Some(2));
    let scrape = app.scrape().await;
    assert_eq!(scrape.count("jobcast_relay_messages_total", &[]), 1.0);
    assert_eq!(scrape.count(DELIVERIES, &[("path", "direct")]), 2.0);
    assert_eq!(scrape.count(DELIVERIES, &[("path", "axum")]), 2.0);
    let reported = [
        ("method", "POST"),
        ("route", "/api/v4/job/{job_id}/progress"),
        ("status", "200"),
    ];
    assert_eq!(scrape.count(HTTP, &reported), 1.0);

    let done = app
        .report(&id, "complete", &json!({"result": {"ok": true}}))
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    sse_direct.collect_until_end().await;
    sse_axum.collect_until_end().await;
    while next_seq(&mut ws_direct).await.is_some() {}
    while next_seq(&mut ws_axum).await.is_some() {}
    let scrape = scrape_until(&app, "every stream counted closed", |scrape| {
        open_streams
            .iter()
            .all(|labels| scrape.count(OPEN, labels) == 0.0)
    })
    .await;
    let kind = [("kind", "external")];
    assert_eq!(scrape.count("jobcast_jobs_created_total", &kind), 1.0);
    assert_eq!(scrape.count("jobcast_jobs_completed_total", &kind), 1.0);
    assert_eq!(scrape.count("jobcast_jobs_failed_total", &kind), 0.0);
    let completed = [("kind", "external"), ("status", "completed")];
    assert_eq!(
        scrape.count("jobcast_job_duration_seconds_count", &completed),
        1.0
    );
    assert_eq!(scrape.count("jobcast_relay_messages_total", &[]), 2.0);
    assert_eq!(scrape.count("jobcast_relay_lag_seconds_count", &[]), 2.0);
    assert_eq!(scrape.count("jobcast_pubsub_connected", &[]), 1.0);
}

#[tokio::test]
async fn a_long_poll_is_an_open_stream_until_it_answers() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let longpoll = stream("longpoll", "axum");

    let waiting = tokio::spawn({
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/api/v4/job/{id}?wait_for_change=1&timeout=30")),
        );
        async move { client.get(url).send().await.unwrap().status() }
    });
    scrape_until(&app, "the long-poll counted open", |scrape| {
        scrape.count(OPEN, &longpoll) == 1.0
    })
    .await;
    app.report(&id, "progress", &json!({"progress": 10})).await;

    assert_eq!(waiting.await.unwrap(), StatusCode::OK);
    let scrape = scrape_until(&app, "the long-poll counted closed", |scrape| {
        scrape.count(OPEN, &longpoll) == 0.0
    })
    .await;
    assert_eq!(scrape.count(OPENED, &longpoll), 1.0);
}

#[tokio::test]
async fn a_create_over_the_rate_limit_is_counted_as_a_429() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.create_rate_per_min = 1;
    config.create_burst = 1;
    config.worker_concurrency = 0;
    let app = spawn_app_with(config).await;
    let body = json!({"product_name": "Cola", "ingredients": ["aspartame"]});

    assert_eq!(
        app.post("/api/v4/deep-research", &body).await.status(),
        StatusCode::OK
    );
    let refused = app.post("/api/v4/deep-research", &body).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);

    let scrape = app.scrape().await;
    assert_eq!(
        scrape.count("jobcast_rate_limited_total", &[("limit", "create")]),
        1.0
    );
    assert_eq!(
        scrape.count("jobcast_rate_limited_total", &[("limit", "stream")]),
        0.0
    );
    let route = ("route", "/api/v4/deep-research");
    let answered = |status| [("method", "POST"), route, ("status", status)];
    assert_eq!(scrape.count(HTTP, &answered("429")), 1.0);
    assert_eq!(scrape.count(HTTP, &answered("200")), 1.0);
    let depth = scrape_until(&app, "the queue's depth sampled", |scrape| {
        scrape.count("jobcast_queue_depth", &[]) == 1.0
    });
    depth.await;
}

#[tokio::test]
async fn a_job_run_by_a_worker_counts_its_wait_its_duration_and_its_completion() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let id = app.start_research("Cola", json!(["aspartame"])).await;
    app.wait_until_finished(&id).await;

    let scrape = app.scrape().await;
    let kind = [("kind", "deep-research")];
    assert_eq!(scrape.count("jobcast_jobs_created_total", &kind), 1.0);
    assert_eq!(scrape.count("jobcast_jobs_completed_total", &kind), 1.0);
    assert_eq!(
        scrape.count("jobcast_job_queue_wait_seconds_count", &kind),
        1.0
    );
    let completed = [("kind", "deep-research"), ("status", "completed")];
    assert_eq!(
        scrape.count("jobcast_job_duration_seconds_count", &completed),
        1.0
    );
    let within_a_minute = [
        ("kind", "deep-research"),
        ("status", "completed"),
        ("le", "60"),
    ];
    assert_eq!(
        scrape.count("jobcast_job_duration_seconds_bucket", &within_a_minute),
        1.0
    );
    assert_eq!(scrape.count("jobcast_jobs_running", &[]), 0.0);
}

#[tokio::test]
async fn a_failed_job_is_counted_as_failed_for_its_kind() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;

    let failed = app
        .report(&id, "fail", &json!({"error": "the source went away"}))
        .await;
    assert_eq!(failed.status(), StatusCode::OK);
    let again = app.report(&id, "fail", &json!({"error": "twice"})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);

    let scrape = app.scrape().await;
    assert_eq!(
        scrape.count("jobcast_jobs_failed_total", &[("kind", "external")]),
        1.0
    );
    assert_eq!(
        scrape.count("jobcast_jobs_completed_total", &[("kind", "external")]),
        0.0
    );
    let failed = [("kind", "external"), ("status", "failed")];
    assert_eq!(
        scrape.count("jobcast_job_duration_seconds_count", &failed),
        1.0
    );
}

#[tokio::test]
async fn without_redis_the_backend_is_memory_and_the_outage_and_its_errors_are_counted() {
    let app = spawn_app_without_redis().await;

    let scrape = app.scrape().await;
    assert_eq!(
        scrape.count("jobcast_backend", &[("backend", "memory")]),
        1.0
    );
    assert_eq!(
        scrape.count("jobcast_backend", &[("backend", "redis")]),
        0.0
    );
    assert_eq!(scrape.count("jobcast_degraded", &[]), 1.0);
    assert_eq!(scrape.count("jobcast_outages_total", &[]), 1.0);
    let failed = scrape.count(
        "jobcast_redis_command_errors_total",
        &[("kind", "connection")],
    );
    assert!(failed >= 1.0, "{failed}");
    assert_eq!(scrape.count("jobcast_pubsub_connected", &[]), 0.0);
    scrape_until(&app, "time degraded counted", |scrape| {
        scrape.count("jobcast_degraded_seconds_total", &[]) >= 1.0
    })
    .await;
}

#[tokio::test]
async fn with_redis_its_memory_is_sampled_and_its_commands_are_timed() {
    let redis = TestRedis::start_with_args(&["--maxmemory", "100mb"]).await;
    let app = spawn_app(&redis).await;
    app.create_external_job().await;

    let scrape = scrape_until(&app, "Redis's memory sampled", |scrape| {
        scrape.count("jobcast_redis_used_memory_bytes", &[]) > 0.0
    })
    .await;
    let max = scrape.count("jobcast_redis_maxmemory_bytes", &[]);
    assert_eq!(max, 100.0 * 1024.0 * 1024.0);
    assert!(scrape.count("jobcast_redis_command_duration_seconds_count", &[]) >= 2.0);
    assert_eq!(
        scrape.count(
            "jobcast_redis_command_errors_total",
            &[("kind", "connection")]
        ),
        0.0
    );
    assert_eq!(scrape.count("jobcast_outages_total", &[]), 0.0);
}

#[tokio::test]
async fn a_request_to_no_route_is_counted_as_unmatched_not_by_its_path() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let path = format!("/no/such/{}", uuid::Uuid::new_v4());

    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);

    let scrape = app.scrape().await;
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert_eq!(scrape.count(HTTP, &unmatched), 1.0);
    assert!(!scrape.0.contains(&path), "a path never becomes a label");
}

#[tokio::test]
async fn a_websocket_peer_that_stops_answering_pings_is_counted_as_a_dropped_slow_client() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.ws_ping_secs = 1;
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;
    let mut socket = websocket(&app, &id, false).await;
    assert_eq!(next_seq(&mut socket).await, Some(1));

    // Not reading means not answering: the client library answers pings only as it reads.
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    assert_eq!(next_seq(&mut socket).await, None);
    scrape_until(&app, "the dropped peer counted", |scrape| {
        scrape.count("jobcast_slow_clients_dropped_total", &[]) == 1.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_skips_states_and_they_are_counted_as_coalesced() {
    const UPDATES: u64 = 6_000;
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let mut stalled = open_stalled_stream(app.addr, &format!("/api/v4/job/{id}/events")).await;
    read_until_snapshot(&mut stalled).await;

    // About 3 MB while the client reads nothing: far more than the sockets hold.
    let padding = "x".repeat(480);
    for update in 0..UPDATES {
        let step = format!("{update} {padding}");
        app.report(
            &id,
            "progress",
            &json!({"progress": 50, "current_step": step}),
        )
        .await;
    }

    let scrape = scrape_until(&app, "every change handed to the stream", |scrape| {
        scrape.count(DELIVERIES, &[("path", "direct")]) == UPDATES as f64
    })
    .await;
    let coalesced = scrape.count("jobcast_coalesced_states_total", &[]);
    assert!(
        coalesced > 0.0 && coalesced < UPDATES as f64,
        "states were skipped: {coalesced} of {UPDATES}"
    );
}

#[tokio::test]
async fn a_scrape_during_traffic_is_valid_for_promtool_check_metrics() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app
        .start_research("Cola", json!(["aspartame", "E150d"]))
        .await;
    let mut events = SseStream::connect(&app.url(&format!("/api/v4/job/{id}/events")), None).await;
    events.next_event().await.unwrap();
    app.get("/no/such/route").await;

    let scrape = app.scrape().await;
    let lint = promtool(&["check", "metrics"], Some(&scrape.0));
    assert!(
        lint.status.success() && lint.stdout.is_empty(),
        "{lint:?}\n{}",
        scrape.0
    );
}

#[test]
fn the_alerting_rules_pass_promtool_check_rules_and_their_unit_tests() {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/alerts.yml");
    let tests = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/alerts.test.yml");
    let checked = promtool(&["check", "rules", rules], None);
    assert!(checked.status.success(), "{checked:?}");
    let tested = promtool(&["test", "rules", tests], None);
    assert!(tested.status.success(), "{tested:?}");
}

/// Runs Debian's `promtool` (package `prometheus`) with `stdin`, if given.
fn promtool(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus; .ci/run installs it)");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}
