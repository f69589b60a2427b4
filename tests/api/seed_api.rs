//! The API existing clients use: same paths, same shapes, now backed by Redis.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

#[tokio::test]
async fn creating_a_deep_research_job_answers_with_a_pending_job() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    let config_ttl = config.job_ttl_secs;
    let app = spawn_app_with(config).await;

    let body = json!({"product_name": "Cola", "ingredients": ["water", "sugar"]});
    let response = app.post("/api/v4/deep-research", &body).await;

    assert_eq!(response.status(), StatusCode::OK);
    let mut job: Value = response.json().await.unwrap();
    // The creation answer alone adds the job's control token (what its creator cancels it with).
    let token = job.as_object_mut().unwrap().remove("control_token");
    let token = token
        .as_ref()
        .and_then(Value::as_str)
        .expect("a control_token");
    assert!(
        token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    let id = job["job_id"].as_str().expect("job_id is a string");
    let expected = Expected {
        id,
        kind: "deep-research",
        status: "pending",
        input: body,
        ttl_secs: config_ttl,
    };
    check_job(&job, &expected);
    assert_eq!(job, app.job(id).await, "the answer is the stored job");
}

#[tokio::test]
async fn a_job_has_the_seed_fields_and_the_new_ones_each_with_its_value_and_type() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    let ttl_secs = config.job_ttl_secs;
    let app = spawn_app_with(config).await;
    // A deep-research input is normalised: the name trimmed, the ingredients split and trimmed.
    let id = app.start_research(" Cola ", json!("water, sugar ")).await;
    let external = json!({"source": "test", "nested": {"n": [1, 2.5, null]}});
    let created = app
        .post(
            "/api/v4/jobs",
            &json!({"kind": "external", "input": external}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let other: Value = created.json().await.unwrap();

    let job = app.job(&id).await;

    let research = json!({"product_name": "Cola", "ingredients": ["water", "sugar"]});
    let pending = |id, kind, input| Expected {
        id,
        kind,
        status: "pending",
        input,
        ttl_secs,
    };
    check_job(&job, &pending(&id, "deep-research", research));
    assert_eq!(
        (&job["progress"], &job["seq"], &job["attempt"]),
        (&json!(0), &json!(1), &json!(0))
    );
    assert_eq!(job["created_at"], job["updated_at"], "{job}");
    let other_id = other["job_id"].as_str().unwrap();
    check_job(
        &app.job(other_id).await,
        &pending(other_id, "external", external),
    );
}

#[tokio::test]
async fn a_deep_research_job_runs_to_a_completed_report() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let ingredients = json!(["Carbonated Water", "E150d", "Aspartame", "unobtainium"]);
    let id = app.start_research("Diet Cola", ingredients.clone()).await;

    let job = app.wait_until_finished(&id).await;

    let input = json!({"product_name": "Diet Cola", "ingredients": ingredients});
    let ttl_secs = jobcast::Config::defaults().job_ttl_secs;
    check_job(
        &job,
        &Expected {
            id: &id,
            kind: "deep-research",
            status: "completed",
            input,
            ttl_secs,
        },
    );
    assert_eq!(job["progress"], 100);
    assert_eq!(job["attempt"], 1, "{job}");
    assert_eq!(job["current_step"], "Complete");
    assert!(job["completed_at"].is_string());
    let report = &job["result"];
    assert_eq!(report["product_name"], "Diet Cola");
    assert_eq!(report["findings"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(report["unmatched"], json!(["unobtainium"]));
    assert_eq!(report["overall_risk"]["level"], "possible", "{report}");
    assert!(
        report["overall_risk"]["derivation"]
            .as_str()
            .unwrap()
            .contains("aspartame")
    );
}

#[tokio::test]
async fn ingredients_may_be_one_comma_separated_string() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app
        .start_research("Bread", json!("wheat flour, water, salt"))
        .await;

    let job = app.wait_until_finished(&id).await;

    assert_eq!(job["result"]["ingredients_analyzed"], 3, "{job}");
    assert_eq!(job["result"]["overall_risk"]["level"], "low");
}

#[tokio::test]
async fn an_empty_ingredient_list_ends_failed_with_a_readable_error() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.start_research("Nothing", json!([])).await;

    let job = app.wait_until_finished(&id).await;

    let input = json!({"product_name": "Nothing", "ingredients": []});
    let ttl_secs = jobcast::Config::defaults().job_ttl_secs;
    check_job(
        &job,
        &Expected {
            id: &id,
            kind: "deep-research",
            status: "failed",
            input,
            ttl_secs,
        },
    );
    assert!(job["error"].as_str().unwrap().contains("empty"), "{job}");
    assert!(job["completed_at"].is_string());
}

#[tokio::test]
async fn the_job_key_holds_the_job_json_with_a_ttl_of_at_most_job_ttl_secs() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.job_ttl_secs = 3600;
    let app = spawn_app_with(config).await;
    let id = app.start_research("Cola", json!(["water"])).await;
    app.wait_until_finished(&id).await;

    let mut connection = redis.connection().await.unwrap();
    let key = job_key(&id);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();
    let stored: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .unwrap();

    assert!(ttl > 0 && ttl <= 3600, "ttl {ttl}");
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored, app.job(&id).await);
    assert_eq!(stored["result"]["findings"][0]["matched"], "water");
}

#[tokio::test]
async fn a_poll_with_the_current_etag_answers_304_without_a_body() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    let app = spawn_app_with(config).await;
    let id = app.start_research("Cola", json!(["water"])).await;
    let path = app.url(&format!("/api/v4/job/{id}"));

    let first = app.client.get(&path).send().await.unwrap();
    let etag = first.headers()[ETAG].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"1\"");
    let again = app
        .client
        .get(&path)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());

    app.report(
        &id,
        "progress",
        &json!({"progress": 5, "current_step": "Going"}),
    )
    .await;
    let changed = app
        .client
        .get(&path)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(changed.headers()[ETAG], "\"2\"");
}

#[tokio::test]
async fn an_unknown_job_is_404_job_not_found() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    let response = app
        .get(&format!("/api/v4/job/{}", uuid::Uuid::new_v4()))
        .await;

    assert_eq!(
        detail_of(response, StatusCode::NOT_FOUND).await,
        "Job not found"
    );
}

#[tokio::test]
async fn cleanup_purges_queue_entries_of_vanished_jobs_and_names_the_backend() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    let app = spawn_app_with(config).await;
    let gone = app.start_research("Gone", json!(["water"])).await;
    let kept = app.start_research("Kept", json!(["water"])).await;
    let mut connection = redis.connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(job_key(&gone))
        .query_async(&mut connection)
        .await
        .unwrap();

    let response = app
        .client
        .delete(app.url("/api/v4/admin/cleanup-jobs"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        report["purged_index_entries"], 2,
        "its queue and index entries: {report}"
    );
    assert_eq!(report["backend"], "redis");
    assert_eq!(report["redis_connected"], true);
    let queue: Vec<String> = redis::cmd("ZRANGE")
        .arg(QUEUE_KEY)
        .arg(0)
        .arg(-1)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(queue, vec![kept]);
}

#[tokio::test]
async fn a_job_survives_a_server_restart() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.worker_concurrency = 0;
    let first = spawn_app_with(config.clone()).await;
    let id = first
        .start_research("Cola", json!(["water", "sugar"]))
        .await;
    first.stop().await;

    config.worker_concurrency = 1;
    let second = spawn_app_with(config).await;
    let job = second.wait_until_finished(&id).await;

    assert_eq!(job["status"], "completed");
    assert_eq!(job["result"]["ingredients_analyzed"], 2);
}

#[tokio::test]
async fn health_is_ok_and_ready_names_the_redis_backend() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
    let ready = app.get("/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["backend"], "redis");
    assert_eq!(ready["redis_connected"], true);
}

#[tokio::test]
async fn the_page_is_served_with_security_headers() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;

    for (path, content_type) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/analytics.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{path}"
        );
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"),
            "{policy}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
}
