//! Without Redis the server still serves, from its embedded memory store.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn without_redis_the_server_runs_jobs_from_memory_and_says_so() {
    let app = spawn_app_without_redis().await;

    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(
        (
            ready["backend"].as_str(),
            ready["redis_connected"].as_bool()
        ),
        (Some("memory"), Some(false))
    );

    let id = app
        .start_research("Cola", json!(["water", "caffeine"]))
        .await;
    let job = app.wait_until_finished(&id).await;
    assert_eq!(job["status"], "completed");

    let cleanup = app
        .client
        .delete(app.url("/api/v4/admin/cleanup-jobs"))
        .send()
        .await
        .unwrap();
    let cleanup: Value = cleanup.json().await.unwrap();
    assert_eq!(cleanup["backend"], "memory");
    assert_eq!(cleanup["purged_jobs"], 0, "nothing has expired yet");
}
