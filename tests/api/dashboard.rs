//! The dashboard's server side: the job listing, every job's changes, and browser sign-in.

use crate::helpers::*;
use jobcast::config::Secret;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

async fn list(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v4/jobs{query}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn listing_pages_newest_first_and_filters_by_status(app: &TestApp) {
    let mut created = Vec::new();
    for n in 0..7 {
        // Creation time has millisecond resolution; jobs of the same millisecond tie.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        created.push(app.create_external_job().await);
        if n % 3 == 0 {
            app.report(&created[n], "fail", &json!({"error": "no"}))
                .await;
        }
    }
    created.reverse(); // newest first

    let first = list(app, "?limit=3").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = list(app, &format!("?limit=3&cursor={cursor}")).await;
    let cursor = second["next_cursor"].as_str().unwrap().to_owned();
    let third = list(app, &format!("?limit=3&cursor={cursor}")).await;
    let paged: Vec<String> = [job_ids(&first), job_ids(&second), job_ids(&third)].concat();
    assert_eq!(paged, created);
    assert!(
        first["jobs"][0].get("result").is_none(),
        "lists leave results out"
    );

    let failed = list(app, "?status=failed").await;
    assert_eq!(job_ids(&failed).len(), 3);
    assert!(
        failed["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|job| job["status"] == "failed")
    );
    let bad = app.get("/api/v4/jobs?status=sleeping").await;
    detail_of(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    detail_of(
        app.get("/api/v4/jobs?cursor=nonsense").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn the_listing_pages_newest_first_and_filters_by_status_on_redis() {
    let redis = TestRedis::start().await;
    listing_pages_newest_first_and_filters_by_status(&spawn_app(&redis).await).await;
}

#[tokio::test]
async fn the_listing_pages_newest_first_and_filters_by_status_in_memory() {
    listing_pages_newest_first_and_filters_by_status(&spawn_app_without_redis().await).await;
}

#[tokio::test]
async fn index_entries_go_when_their_job_key_expires() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let kept = app.create_external_job().await;
    let expired = app.create_external_job().await;
    let _: () = redis.command(&["DEL", &job_key(&expired)]).await;

    assert_eq!(job_ids(&list(&app, "").await), vec![kept.clone()]);
    let in_index: Option<f64> = redis.command(&["ZSCORE", INDEX_KEY, &expired]).await;
    assert_eq!(in_index, None, "pruned while listing");

    let other = app.create_external_job().await;
    let _: () = redis.command(&["DEL", &job_key(&other)]).await;
    app.client
        .delete(app.url("/api/v4/admin/cleanup-jobs"))
        .send()
        .await
        .unwrap();
    let in_index: Option<f64> = redis.command(&["ZSCORE", INDEX_KEY, &other]).await;
    assert_eq!(in_index, None, "pruned by cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_on_one_instance_sees_every_jobs_changes_made_on_another() {
    let redis = TestRedis::start().await;
    let watcher = spawn_app(&redis).await;
    let worker = spawn_app(&redis).await;
    let mut stream = SseStream::connect(&watcher.url("/api/v4/jobs/events"), None).await;
    let first_event = tokio::spawn(async move {
        let mut events = Vec::new();
        while events.len() < 2 * 3 {
            events.push(stream.next_event().await.expect("stream open"));
        }
        events
    });
    while redis.command::<i64>(&["PUBSUB", "NUMPAT"]).await == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await; // the relay subscribes
    }

    let ids = [
        worker.create_external_job().await,
        worker.create_external_job().await,
    ];
    for id in &ids {
        worker
            .report(id, "progress", &json!({"progress": 50}))
            .await;
        worker.report(id, "complete", &json!({"result": {}})).await;
    }
    let events = first_event.await.unwrap();

    for id in &ids {
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| e.json()["job_id"] == id.as_str())
            .map(|e| e.kind())
            .collect();
        assert_eq!(kinds, ["created", "progress", "completed"], "{id}");
    }
}

#[tokio::test]
async fn a_browser_trades_the_admin_token_for_a_session_cookie() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.admin_token = Some(Secret::parse("dashboard-token").unwrap());
    let app = spawn_app_with(config).await;

    let refused = app
        .client
        .post(app.url("/api/v4/session"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let signed_in = app
        .client
        .post(app.url("/api/v4/session"))
        .bearer_auth("dashboard-token")
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::NO_CONTENT);
    let set_cookie = signed_in.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let with_cookie = app
        .client
        .get(app.url("/api/v4/jobs"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(with_cookie.status(), StatusCode::OK);
    let events = app
        .client
        .get(app.url("/api/v4/jobs/events"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    let without = app.get("/api/v4/jobs").await;
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    let forged = format!("{}0", cookie);
    let tampered = app
        .client
        .get(app.url("/api/v4/jobs"))
        .header(COOKIE, forged)
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), StatusCode::UNAUTHORIZED);
}
