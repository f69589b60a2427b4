//! Server-Sent Events: snapshot, every change in order, the end; exact across reconnects.

use crate::helpers::*;
use jobcast::research::{self, ResearchInput};
use jobcast::sink::FanoutWrites;
use reqwest::StatusCode;
use serde_json::json;

fn events_url(app: &TestApp, id: &str) -> String {
    app.url(&format!("/api/v4/job/{id}/events"))
}

async fn progress(app: &TestApp, id: &str, progress: u8, step: &str) {
    let response = app
        .report(
            id,
            "progress",
            &json!({"progress": progress, "current_step": step}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sees_every_progress_value_of_a_paced_job_in_order_then_the_end() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    let api = spawn_app_with(config.clone()).await;
    let ingredients = json!(["water", "sugar", "aspartame", "E150d", "citric acid"]);
    let id = api.start_research("Cola", ingredients.clone()).await;
    let mut stream = SseStream::connect(&events_url(&api, &id), None).await;
    let snapshot = stream.next_event().await.unwrap();
    assert_eq!((snapshot.kind(), snapshot.seq()), ("snapshot", 1));

    config.worker_concurrency = 1;
    config.deep_research_step_ms = 30;
    let _worker = spawn_app_with(config).await;
    let events = stream.collect_until_end().await;

    let input =
        ResearchInput::from_request(&json!({"product_name": "Cola", "ingredients": ingredients}))
            .unwrap();
    let mut expected: Vec<u64> = research::plan(&input.usable_ingredients())
        .iter()
        .map(|s| s.progress as u64)
        .collect();
    expected.extend([100]);
    expected.dedup();
    let mut seen: Vec<u64> = events
        .iter()
        .map(|e| e.json()["progress"].as_u64().unwrap())
        .collect();
    seen.dedup();
    seen.retain(|p| *p > 0);
    assert_eq!(seen, expected);
    for pair in events.windows(2) {
        assert_eq!(pair[1].seq(), pair[0].seq() + 1, "no change skipped");
    }
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e.kind() == "progress")
    );
    assert_eq!(events.last().unwrap().kind(), "completed");
}

#[tokio::test]
async fn the_stream_says_no_cache_no_buffering_and_hints_a_jittered_retry() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;

    let mut stream = SseStream::connect(&events_url(&app, &id), None).await;

    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    assert_eq!(stream.headers["cache-control"], "no-cache");
    assert_eq!(stream.headers["x-accel-buffering"], "no");
    let retry = stream
        .next_block()
        .await
        .unwrap()
        .retry
        .expect("retry hint first");
    assert!((1_000..=3_000).contains(&retry), "{retry}");
}

#[tokio::test]
async fn reconnecting_with_the_latest_last_event_id_resends_nothing() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let mut first = SseStream::connect(&events_url(&app, &id), None).await;
    assert_eq!(first.next_event().await.unwrap().seq(), 1);
    progress(&app, &id, 10, "one").await;
    let last = first.next_event().await.unwrap();
    assert_eq!((last.kind(), last.seq()), ("progress", 2));
    drop(first);

    let mut again = SseStream::connect(&events_url(&app, &id), Some(last.seq())).await;
    progress(&app, &id, 20, "two").await;

    let next = again.next_event().await.unwrap();
    assert_eq!(
        (next.kind(), next.seq()),
        ("progress", 3),
        "no snapshot resent"
    );
}

#[tokio::test]
async fn reconnecting_with_an_old_last_event_id_gets_exactly_one_snapshot() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    for (value, step) in [(10, "a"), (20, "b"), (30, "c")] {
        progress(&app, &id, value, step).await;
    }

    let mut stream = SseStream::connect(&events_url(&app, &id), Some(2)).await;
    let snapshot = stream.next_event().await.unwrap();
    app.report(&id, "complete", &json!({"result": {}})).await;
    let rest = stream.collect_until_end().await;

    assert_eq!((snapshot.kind(), snapshot.seq()), ("snapshot", 4));
    assert_eq!(snapshot.json()["progress"], 30);
    assert_eq!(rest.len(), 1);
    assert_eq!((rest[0].kind(), rest[0].seq()), ("completed", 5));
}

#[tokio::test]
async fn a_garbage_or_unknown_last_event_id_gets_a_fresh_snapshot() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;

    for query in ["?last_event_id=banana", "?last_event_id=999"] {
        let url = format!("{}{query}", events_url(&app, &id));
        let mut stream = SseStream::connect(&url, None).await;
        let first = stream.next_event().await.unwrap();
        assert_eq!((first.kind(), first.seq()), ("snapshot", 1), "{query}");
    }
}

#[tokio::test]
async fn a_finished_job_sends_its_final_state_and_ends_then_204_once_the_client_has_it() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.start_research("Cola", json!(["water"])).await;
    let done = app.wait_until_finished(&id).await;
    let final_seq = done["seq"].as_u64().unwrap();

    let mut stream = SseStream::connect(&events_url(&app, &id), Some(1)).await;
    let events = stream.collect_until_end().await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].kind(), events[0].seq()), ("snapshot", final_seq));
    assert_eq!(events[0].json()["status"], "completed");

    let finished = SseStream::connect(&events_url(&app, &id), Some(final_seq)).await;
    assert_eq!(finished.status, StatusCode::NO_CONTENT);
    let by_query = SseStream::connect(
        &format!("{}?last_event_id={final_seq}", events_url(&app, &id)),
        None,
    )
    .await;
    assert_eq!(by_query.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_unknown_job_is_404_before_any_stream() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let response = app
        .get(&format!("/api/v4/job/{}/events", uuid::Uuid::new_v4()))
        .await;

    assert_eq!(
        detail_of(response, StatusCode::NOT_FOUND).await,
        "Job not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pubsub_connection_is_repaired_and_the_client_still_gets_the_final_state() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let mut stream = SseStream::connect(&events_url(&app, &id), None).await;
    assert_eq!(stream.next_event().await.unwrap().kind(), "snapshot");
    progress(&app, &id, 10, "before").await;
    assert_eq!(stream.next_event().await.unwrap().seq(), 2);

    let killed: i64 = redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]).await;
    assert_eq!(killed, 1, "one pub/sub connection per instance");
    progress(&app, &id, 50, "while away").await;
    app.report(&id, "complete", &json!({"result": {"ok": true}}))
        .await;
    let rest = stream.collect_until_end().await;

    let last = rest.last().expect("the final state arrives");
    assert_eq!((last.kind(), last.seq()), ("completed", 4));
    assert!(rest.windows(2).all(|pair| pair[1].seq() > pair[0].seq()));
}

#[tokio::test]
async fn without_redis_streams_run_from_the_local_hub() {
    let app = spawn_app_without_redis().await;
    let id = app.create_external_job().await;
    let mut stream = SseStream::connect(&events_url(&app, &id), None).await;
    assert_eq!(stream.next_event().await.unwrap().kind(), "snapshot");

    progress(&app, &id, 60, "halfway").await;
    app.report(&id, "fail", &json!({"error": "gave up"})).await;
    let events = stream.collect_until_end().await;

    let kinds: Vec<&str> = events.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, ["progress", "failed"]);
}

#[tokio::test]
async fn an_idle_stream_gets_keep_alive_comments_that_repeat_at_the_interval_on_both_paths() {
    const COMMENTS: usize = 3;
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.sse_keepalive_secs = 1;
    let interval = std::time::Duration::from_secs(config.sse_keepalive_secs);
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;

    // A new connection's first request takes the direct socket path (answered with
    // `connection: close`); after another request on a kept-alive connection, the axum route.
    let kept_alive = reqwest::Client::new();
    for (client, direct) in [(reqwest::Client::new(), true), (kept_alive.clone(), false)] {
        if !direct {
            kept_alive.get(app.url("/health")).send().await.unwrap();
        }
        let response = client.get(events_url(&app, &id)).send().await.unwrap();
        assert_eq!(response.headers().contains_key("connection"), direct);
        let arrivals = keep_alive_arrivals(response, COMMENTS).await;

        let gaps: Vec<_> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
        println!("keep-alive gaps (direct: {direct}, interval {interval:?}): {gaps:?}");
        assert!(
            gaps.iter()
                .all(|gap| *gap >= interval / 2 && *gap <= interval * 4),
            "one comment about every {interval:?}, not a burst (direct: {direct}): {gaps:?}"
        );
    }
}

/// When each of the first `count` keep-alive comments of `response`'s event stream arrived;
/// panics if an event with data comes first (the stream was meant to be idle).
async fn keep_alive_arrivals(response: reqwest::Response, count: usize) -> Vec<std::time::Instant> {
    let mut body = response.bytes_stream();
    let (mut buffer, mut arrivals) = (String::new(), Vec::new());
    while arrivals.len() < count {
        let chunk = tokio::time::timeout(PATIENCE, futures::StreamExt::next(&mut body))
            .await
            .expect("a keep-alive comment in time")
            .expect("the stream stays open")
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let lines: Vec<&str> = block.lines().filter(|l| !l.is_empty()).collect();
            if lines.iter().all(|line| line.starts_with(':')) {
                arrivals.push(std::time::Instant::now());
            } else if arrivals.is_empty() {
                // The opening: the retry hint and the snapshot precede the idle time.
                assert!(
                    block.starts_with("retry:") || block.contains("event: snapshot"),
                    "{block}"
                );
            } else {
                panic!("an idle stream sent more than comments: {block}");
            }
        }
    }
    arrivals
}

#[tokio::test]
async fn the_instance_subscribes_to_a_jobs_channel_only_while_someone_watches() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let subscribers = || redis.job_subscribers(&id);
    assert_eq!(subscribers().await, 0);

    let mut stream = SseStream::connect(&events_url(&app, &id), None).await;
    stream.next_event().await.unwrap();
    assert_eq!(subscribers().await, 1);
    let second = SseStream::connect(&events_url(&app, &id), None).await;
    assert_eq!(
        subscribers().await,
        1,
        "one subscription per instance, not per client"
    );

    drop(stream);
    drop(second);
    let deadline = std::time::Instant::now() + PATIENCE;
    while subscribers().await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "unsubscribed after the last watcher left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let ready: serde_json::Value = app.get("/ready").await.json().await.unwrap();
    assert_eq!(ready["pubsub_connected"], true);
}

#[tokio::test]
async fn with_relay_subscribe_pattern_an_instance_holds_one_pattern_and_still_relays_every_watched_job()
 {
    let redis = TestRedis::start().await;
    let writer = spawn_app(&redis).await;
    let mut config = test_config(&redis.url());
    config.relay_subscribe = jobcast::config::RelaySubscribe::Pattern;
    let watcher = spawn_app_with(config).await;
    let id = writer.create_external_job().await;

    let mut stream = SseStream::connect(&events_url(&watcher, &id), None).await;
    assert_eq!(stream.next_event().await.unwrap().kind(), "snapshot");
    let patterns: i64 = redis.command(&["PUBSUB", "NUMPAT"]).await;
    assert_eq!(patterns, 1, "one job:* pattern");
    assert_eq!(redis.job_subscribers(&id).await, 0, "no channel per job");
    progress(&writer, &id, 10, "start").await;
    progress(&writer, &id, 60, "middle").await;
    let complete = json!({"result": {"ok": true}});
    assert_eq!(
        writer.report(&id, "complete", &complete).await.status(),
        StatusCode::OK
    );
    let events = stream.collect_until_end().await;
    let kinds: Vec<&str> = events.iter().map(SseEvent::kind).collect();
    assert_eq!(kinds, ["progress", "progress", "completed"]);
    assert_eq!(events[1].json()["progress"], 60);
}

#[tokio::test]
async fn a_stream_is_the_same_on_a_new_connection_and_on_a_kept_alive_one() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.start_research("Cola", json!(["water"])).await;
    let final_seq = app.wait_until_finished(&id).await["seq"].as_u64().unwrap();
    let unknown = app.url(&format!("/api/v4/job/{}/events", uuid::Uuid::new_v4()));

    // A new connection's first request is answered straight from the socket and then closed;
    // after another request on a kept-alive connection, the axum route answers.
    let kept_alive = reqwest::Client::new();
    let use_connection = |client: &reqwest::Client| {
        let request = client.get(app.url("/health")).send();
        async move { request.await.unwrap().text().await.unwrap() }
    };
    for (client, direct) in [(reqwest::Client::new(), true), (kept_alive.clone(), false)] {
        if !direct {
            use_connection(&kept_alive).await;
        }
        let mut stream = SseStream::connect_with(&client, &events_url(&app, &id), None).await;
        assert_eq!(stream.status, StatusCode::OK);
        assert_eq!(stream.headers["content-type"], "text/event-stream");
        assert_eq!(stream.headers.contains_key("connection"), direct);
        let events = stream.collect_until_end().await;
        assert_eq!(events.len(), 1, "direct: {direct}");
        assert_eq!((events[0].kind(), events[0].seq()), ("snapshot", final_seq));

        let done = SseStream::connect_with(&client, &events_url(&app, &id), Some(final_seq)).await;
        assert_eq!(done.status, StatusCode::NO_CONTENT, "direct: {direct}");

        if !direct {
            use_connection(&kept_alive).await;
        }
        let missing = client.get(&unknown).send().await.unwrap();
        assert_eq!(missing.headers().contains_key("connection"), direct);
        assert_eq!(
            detail_of(missing, StatusCode::NOT_FOUND).await,
            "Job not found"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stalls_then_reads_again_gets_newer_states_in_order_and_the_end() {
    stalled_client_gets_newer_states_in_order_and_the_end(FanoutWrites::IoUring).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_send_per_socket_a_stalled_client_still_gets_newer_states_and_the_end() {
    stalled_client_gets_newer_states_in_order_and_the_end(FanoutWrites::Send).await;
}

async fn stalled_client_gets_newer_states_in_order_and_the_end(writes: FanoutWrites) {
    use tokio::io::AsyncReadExt;
    const UPDATES: u64 = 6_000;
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.fanout_writes = writes;
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;
    let mut stalled = open_stalled_stream(app.addr, &format!("/api/v4/job/{id}/events")).await;
    // The stream has started (its snapshot is on the way) before the job changes.
    let mut received = read_until_snapshot(&mut stalled).await;

    // About 3 MB of updates while the client reads nothing more: far more than the sockets
    // hold, so the server must stop writing to this client and later send it only what is newest.
    let padding = "x".repeat(480);
    for update in 0..UPDATES {
        let step = format!("{update} {padding}");
        progress(&app, &id, 50, &step).await;
    }
    let done = app.report(&id, "complete", &json!({"result": {}})).await;
    assert_eq!(done.status(), StatusCode::OK);

    let read_all = stalled.read_to_end(&mut received);
    tokio::time::timeout(PATIENCE, read_all)
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&received);
    let ids: Vec<u64> = text
        .lines()
        .filter_map(|line| line.strip_prefix("id: ")?.parse().ok())
        .collect();
    let final_seq = UPDATES + 2;
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "in order");
    assert_eq!(ids.first(), Some(&1), "the snapshot came first");
    assert_eq!(ids.last(), Some(&final_seq), "the final state came last");
    assert!(text.contains("event: completed"));
    assert!(
        text.ends_with("\r\n0\r\n\r\n"),
        "the response ended properly"
    );
    println!("the stalled client got {} of {final_seq} states", ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_once_the_stall_timeout_passes() {
    use tokio::io::AsyncReadExt;
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.stalled_client_timeout_ms = 500;
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;
    let watchers = || redis.job_subscribers(&id);
    let mut stalled = open_stalled_stream(app.addr, &format!("/api/v4/job/{id}/events")).await;
    eventually("the stream is open", || async {
        (watchers().await == 1).then_some(())
    })
    .await;

    // Far more than the client's window and the server's socket buffer hold, never read.
    let padding = "x".repeat(480);
    for update in 0..2_000 {
        progress(&app, &id, 50, &format!("{update} {padding}")).await;
    }
    eventually("the server dropped the stalled stream", || async {
        (watchers().await == 0).then_some(())
    })
    .await;
    let mut received = Vec::new();
    let ended = tokio::time::timeout(PATIENCE, stalled.read_to_end(&mut received)).await;
    assert!(ended.is_ok(), "the connection is gone for the client too");
    assert!(
        !received.ends_with(b"\r\n0\r\n\r\n"),
        "cut off, not ended as if the job were over"
    );
}
