//! Long-poll for clients that can use neither SSE nor WebSocket.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answers_as_soon_as_seq_moves_past_the_given_one() {
    let redis = TestRedis::start().await;
    let app = std::sync::Arc::new(spawn_app(&redis).await);
    let id = app.create_external_job().await;
    let poller = {
        let app = app.clone();
        let id = id.clone();
        tokio::spawn(async move {
            app.get(&format!("/api/v4/job/{id}?wait_for_change=1&timeout=60"))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!poller.is_finished(), "nothing changed yet");

    app.report(
        &id,
        "progress",
        &json!({"progress": 5, "current_step": "moved"}),
    )
    .await;
    let response = tokio::time::timeout(PATIENCE, poller)
        .await
        .unwrap()
        .unwrap();

    assert_eq!(response.headers()["etag"], "\"2\"");
    let job: Value = response.json().await.unwrap();
    assert_eq!(
        (job["seq"].as_u64(), job["progress"].as_u64()),
        (Some(2), Some(5))
    );
}

#[tokio::test]
async fn a_long_poll_behind_the_current_seq_answers_at_once_and_one_that_times_out_gets_the_current_state()
 {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    app.report(&id, "progress", &json!({"progress": 5})).await;

    let behind: Value = app
        .get(&format!("/api/v4/job/{id}?wait_for_change=1&timeout=60"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(behind["seq"], 2);
    let timed_out: Value = app
        .get(&format!("/api/v4/job/{id}?wait_for_change=2&timeout=0.2"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(timed_out["seq"], 2);
    let bad = app
        .get(&format!("/api/v4/job/{id}?wait_for_change=2&timeout=9999"))
        .await;
    detail_of(bad, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
}
