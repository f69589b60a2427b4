//! History: every finished job leaves a compact record for `HISTORY_RETENTION_DAYS`, listed
//! newest first with a cursor and filters, answered as 410 Gone once the job itself expires.

use crate::helpers::*;
use jobcast::store::{HISTORY_KEY, HISTORY_RECORDS_KEY};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

fn nowhere() -> String {
    let socket = std::env::temp_dir().join(format!("{}.sock", uuid::Uuid::new_v4()));
    format!("redis+unix://{}", socket.display())
}

async fn history(app: &TestApp, query: &str) -> Value {
    let response = app.get(&format!("/api/v4/history{query}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// A completed deep-research job, a failed and a cancelled external one, and one left pending.
async fn finish_three(app: &TestApp) -> [String; 3] {
    let researched = app
        .start_research("Diet cola", json!(["carbonated water", "aspartame"]))
        .await;
    app.wait_until_finished(&researched).await;
    let failed = app.create_external_job().await;
    app.report(&failed, "fail", &json!({"error": "the source went away"}))
        .await;
    let cancelled = app.create_external_job().await;
    let answer = app
        .post(&format!("/api/v4/job/{cancelled}/cancel"), &json!({}))
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    app.create_external_job().await; // pending: not history
    [researched, failed, cancelled]
}

#[tokio::test]
async fn a_finished_job_leaves_the_same_record_on_redis_and_in_memory() {
    let redis = TestRedis::start().await;
    let mut listed = Vec::new();
    for url in [redis.url(), nowhere()] {
        let app = spawn_app_with(test_config(&url)).await;
        let [researched, failed, cancelled] = finish_three(&app).await;

        let page = history(&app, "").await;
        let jobs = page["jobs"].as_array().unwrap();
        let ids: Vec<&str> = jobs.iter().map(|j| j["job_id"].as_str().unwrap()).collect();
        assert_eq!(ids, [&cancelled, &failed, &researched], "newest first");
        assert_eq!(page["next_cursor"], Value::Null);
        let research = &jobs[2];
        assert_eq!(
            (research["status"].as_str(), research["kind"].as_str()),
            (Some("completed"), Some("deep-research"))
        );
        assert_eq!(research["product_name"], "Diet cola");
        assert_eq!(research["overall_risk"], "possible", "aspartame is IARC 2B");
        assert_eq!(
            (research["attempts"].as_u64(), research["error"].is_null()),
            (Some(1), true)
        );
        let (created, finished) = (
            timestamp(research, "created_at"),
            timestamp(research, "finished_at"),
        );
        assert_eq!(
            research["duration_ms"].as_i64(),
            Some((finished - created).num_milliseconds())
        );
        assert_eq!(jobs[1]["error"], "the source went away");
        assert_eq!(jobs[0]["error"], "Cancelled");
        assert_eq!(
            (
                jobs[0]["product_name"].is_null(),
                jobs[0]["overall_risk"].is_null()
            ),
            (true, true)
        );
        let mut fields: Vec<String> = research.as_object().unwrap().keys().cloned().collect();
        fields.sort();
        listed.push(fields);
    }
    assert_eq!(
        listed[0], listed[1],
        "Redis and memory write the same fields"
    );
}

#[tokio::test]
async fn the_history_filters_by_status_kind_and_time_and_pages_with_a_cursor() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let [researched, failed, cancelled] = finish_three(&app).await;
    let cut = timestamp(&app.job(&failed).await, "completed_at");

    let failures = history(&app, "?status=failed").await;
    assert_eq!(job_ids(&failures), std::slice::from_ref(&failed));
    let external = history(&app, "?kind=external").await;
    assert_eq!(job_ids(&external), [cancelled.clone(), failed.clone()]);
    let until = cut.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let early = history(&app, &format!("?until={}", until.replace('+', "%2B"))).await;
    assert_eq!(job_ids(&early), [failed.clone(), researched.clone()]);
    let late = history(&app, &format!("?since={until}")).await;
    assert_eq!(job_ids(&late), [cancelled.clone(), failed.clone()]);

    let first = history(&app, "?limit=2").await;
    assert_eq!(job_ids(&first), [cancelled, failed]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = history(&app, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(job_ids(&second), [researched]);
    assert_eq!(second["next_cursor"], Value::Null);

    for (query, detail) in [
        ("?since=yesterday", "since must be an RFC 3339 instant"),
        ("?status=lost", "status must be"),
    ] {
        let answer = app.get(&format!("/api/v4/history{query}")).await;
        let text = detail_of(answer, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(text.starts_with(detail), "{text}");
    }
}

#[tokio::test]
async fn an_expired_job_answers_410_gone_with_its_record() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.job_ttl_secs = 1;
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;
    app.report(&id, "fail", &json!({"error": "gave up"})).await;

    let gone = eventually("the job never expired", || async {
        let answer = app.get(&format!("/api/v4/job/{id}")).await;
        (answer.status() == StatusCode::GONE).then_some(answer)
    })
    .await;

    let body: Value = gone.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().starts_with("Job expired"),
        "{body}"
    );
    assert_eq!(
        (
            body["history"]["job_id"].as_str(),
            body["history"]["status"].as_str()
        ),
        (Some(id.as_str()), Some("failed"))
    );
    let never = app
        .get(&format!("/api/v4/job/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(never.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn records_past_the_retention_are_pruned_and_zero_days_keeps_none() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.sweep_interval_ms = 100;
    let app = spawn_app_with(config).await;
    let kept = app.create_external_job().await;
    app.report(&kept, "fail", &json!({"error": "recent"})).await;
    let old = uuid::Uuid::new_v4().to_string();
    let month_ago = (chrono::Utc::now() - chrono::TimeDelta::days(31)).timestamp_millis();
    let _: () = redis
        .command(&["ZADD", HISTORY_KEY, &month_ago.to_string(), &old])
        .await;
    let _: () = redis
        .command(&["HSET", HISTORY_RECORDS_KEY, &old, "{}"])
        .await;

    eventually("the old record was never pruned", || async {
        let left: usize = redis.command(&["ZCARD", HISTORY_KEY]).await;
        (left == 1).then_some(())
    })
    .await;
    let records: Vec<String> = redis.command(&["HKEYS", HISTORY_RECORDS_KEY]).await;
    assert_eq!(records, [kept]);

    let other = TestRedis::start().await;
    let mut config = test_config(&other.url());
    config.history_retention_days = 0;
    let without = spawn_app_with(config).await;
    let id = without.create_external_job().await;
    without
        .report(&id, "fail", &json!({"error": "untracked"}))
        .await;
    assert_eq!(job_ids(&history(&without, "").await), Vec::<String>::new());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let written: usize = other.command(&["ZCARD", HISTORY_KEY]).await;
    assert_eq!(written, 0);
}
