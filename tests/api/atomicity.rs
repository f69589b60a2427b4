//! Every change is one atomic step: no lost updates, no going backwards, terminal is final.

use crate::helpers::*;
use futures::StreamExt;
use jobcast::job::JobId;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

const WRITERS: usize = 50;
const UPDATES_PER_WRITER: usize = 100;

/// 50 writers each push progress 1..=100 with their own step text, racing each other.
async fn race_writers(app: &Arc<TestApp>, id: &str) -> (usize, usize) {
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let app = app.clone();
        let id = id.to_owned();
        writers.push(tokio::spawn(async move {
            let (mut accepted, mut refused) = (0, 0);
            for update in 1..=UPDATES_PER_WRITER {
                let body = json!({"progress": update, "current_step": format!("writer {writer} at {update}")});
                let response = app.report(&id, "progress", &body).await;
                match response.status() {
                    StatusCode::OK => accepted += 1,
                    StatusCode::CONFLICT => refused += 1,
                    other => panic!("unexpected {other}"),
                }
            }
            (accepted, refused)
        }));
    }
    let mut totals = (0, 0);
    for writer in writers {
        let (accepted, refused) = writer.await.unwrap();
        totals = (totals.0 + accepted, totals.1 + refused);
    }
    totals
}

/// Every published state: progress never decreases, seq rises by exactly one each time.
fn assert_published_in_order(published: &[Value], final_seq: u64) {
    assert!(!published.is_empty());
    for pair in published.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        assert_eq!(
            after["seq"].as_u64().unwrap(),
            before["seq"].as_u64().unwrap() + 1,
            "{before} -> {after}"
        );
        assert!(
            after["progress"].as_u64() >= before["progress"].as_u64(),
            "{before} -> {after}"
        );
    }
    assert_eq!(
        published.last().unwrap()["seq"].as_u64().unwrap(),
        final_seq
    );
}

async fn complete_and_check_final(app: &TestApp, id: &str) -> Value {
    let response = app
        .report(
            id,
            "complete",
            &json!({"result": {"answer": [], "big": 12345678901234567890u64}}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let late = app
        .report(
            id,
            "progress",
            &json!({"progress": 100, "current_step": "late"}),
        )
        .await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
    let job = app.job(id).await;
    assert_eq!(job["status"], "completed");
    assert_eq!(job["progress"], 100);
    assert_eq!(
        job["result"],
        json!({"answer": [], "big": 12345678901234567890u64}),
        "payload kept verbatim"
    );
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_never_goes_backwards_under_50_concurrent_writers_on_redis() {
    let redis = TestRedis::start().await;
    let app = Arc::new(spawn_app(&redis).await);
    let id = app.create_external_job().await;
    let mut pubsub = redis.client().get_async_pubsub().await.unwrap();
    pubsub.subscribe(job_channel(&id)).await.unwrap();

    let (accepted, refused) = race_writers(&app, &id).await;
    let job = complete_and_check_final(&app, &id).await;

    assert_eq!(accepted + refused, WRITERS * UPDATES_PER_WRITER);
    let final_seq = job["seq"].as_u64().unwrap();
    let mut messages = pubsub.on_message();
    let mut published = Vec::new();
    while published
        .last()
        .is_none_or(|last: &Value| last["seq"].as_u64() != Some(final_seq))
    {
        let message = tokio::time::timeout(PATIENCE, messages.next())
            .await
            .unwrap()
            .unwrap();
        published.push(serde_json::from_str(&message.get_payload::<String>().unwrap()).unwrap());
    }
    assert_published_in_order(&published, final_seq);
    // No update lost: seq counts creation, every accepted report and the completion.
    assert_eq!(final_seq as usize, 1 + accepted + 1);
    assert_eq!(published.len(), accepted + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_never_goes_backwards_under_50_concurrent_writers_in_memory() {
    let app = Arc::new(spawn_app_without_redis().await);
    let id = app.create_external_job().await;
    let mut subscription = app.state.hub.subscribe(id.parse::<JobId>().unwrap());
    let collector = tokio::spawn(async move {
        let mut published: Vec<Value> = Vec::new();
        while let Some(event) = subscription.next().await {
            published.push(serde_json::from_slice(&event.json).unwrap());
            if event.status.is_terminal() {
                break;
            }
        }
        published
    });

    let (accepted, refused) = race_writers(&app, &id).await;
    let job = complete_and_check_final(&app, &id).await;

    assert_eq!(accepted + refused, WRITERS * UPDATES_PER_WRITER);
    let published = collector.await.unwrap();
    let final_seq = job["seq"].as_u64().unwrap();
    // The hub skips ahead for slow subscribers, so only order is checked here, not completeness.
    for pair in published.windows(2) {
        assert!(pair[1]["seq"].as_u64() > pair[0]["seq"].as_u64());
        assert!(pair[1]["progress"].as_u64() >= pair[0]["progress"].as_u64());
    }
    assert_eq!(
        published.last().unwrap()["seq"].as_u64().unwrap(),
        final_seq
    );
}

async fn illegal_transitions_are_refused(app: &TestApp) {
    let id = app.create_external_job().await;
    let complete = json!({"result": {"ok": true}});
    let refused = app.report(&id, "complete", &complete).await;
    assert!(
        detail_of(refused, StatusCode::CONFLICT)
            .await
            .contains("not started")
    );

    let started = app
        .report(
            &id,
            "progress",
            &json!({"progress": 40, "current_step": "a"}),
        )
        .await;
    assert_eq!(started.status(), StatusCode::OK);
    let backwards = app
        .report(
            &id,
            "progress",
            &json!({"progress": 30, "current_step": "b"}),
        )
        .await;
    assert!(
        detail_of(backwards, StatusCode::CONFLICT)
            .await
            .contains("backwards")
    );
    let same = app
        .report(
            &id,
            "progress",
            &json!({"progress": 40, "current_step": "a"}),
        )
        .await;
    assert_eq!(
        same.json::<Value>().await.unwrap()["seq"],
        2,
        "a repeat changes nothing"
    );
    let new_text = app
        .report(
            &id,
            "progress",
            &json!({"progress": 40, "current_step": "b"}),
        )
        .await;
    assert_eq!(new_text.json::<Value>().await.unwrap()["seq"], 3);

    assert_eq!(
        app.report(&id, "fail", &json!({"error": "boom"}))
            .await
            .status(),
        StatusCode::OK
    );
    for (action, body) in [
        ("complete", &complete),
        ("fail", &json!({"error": "again"})),
        ("progress", &json!({"progress": 99})),
    ] {
        let response = app.report(&id, action, body).await;
        assert!(
            detail_of(response, StatusCode::CONFLICT)
                .await
                .contains("already failed")
        );
    }
    let job = app.job(&id).await;
    assert_eq!(
        (
            job["status"].as_str(),
            job["error"].as_str(),
            job["seq"].as_u64()
        ),
        (Some("failed"), Some("boom"), Some(4))
    );
}

#[tokio::test]
async fn illegal_transitions_are_refused_with_409_on_redis() {
    let redis = TestRedis::start().await;
    illegal_transitions_are_refused(&spawn_app(&redis).await).await;
}

#[tokio::test]
async fn illegal_transitions_are_refused_with_409_in_memory() {
    illegal_transitions_are_refused(&spawn_app_without_redis().await).await;
}

#[tokio::test]
async fn reporting_on_an_unknown_job_is_404() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let response = app
        .report(
            &uuid::Uuid::new_v4().to_string(),
            "progress",
            &json!({"progress": 1}),
        )
        .await;
    assert_eq!(
        detail_of(response, StatusCode::NOT_FOUND).await,
        "Job not found"
    );
}
