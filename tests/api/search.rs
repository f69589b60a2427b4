//! Search: `?q=` on the job listing and the history finds jobs by the words of their product
//! name and ingredients, whatever their case and accents, the last word as a prefix, newest
//! first with a cursor — from the index every instance shares, or the memory store's own.

use crate::helpers::*;
use jobcast::store::{MAX_INTERSECTED, SEARCH_WORD_PREFIX, SEARCH_WORDS_KEY};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn nowhere() -> String {
    let socket = std::env::temp_dir().join(format!("{}.sock", uuid::Uuid::new_v4()));
    format!("redis+unix://{}", socket.display())
}

/// An external job (it stays pending) about `product`, made of `ingredients`.
async fn create_product(app: &TestApp, product: &str, ingredients: Value) -> String {
    let input = json!({ "product_name": product, "ingredients": ingredients });
    let response = app
        .post(
            "/api/v4/jobs",
            &json!({ "kind": "external", "input": input }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let job: Value = response.json().await.unwrap();
    job["job_id"].as_str().unwrap().to_owned()
}

/// The ids a search of `path` (`/api/v4/jobs` or `/api/v4/history`) lists on its first page.
async fn found(app: &TestApp, path: &str, query: &str) -> Vec<String> {
    let response = app.get(&format!("{path}?{query}")).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    job_ids(&response.json().await.unwrap())
}

#[tokio::test]
async fn a_search_finds_jobs_by_any_case_and_accent_and_the_start_of_the_last_word() {
    let redis = TestRedis::start().await;
    for url in [redis.url(), nowhere()] {
        let app = spawn_app_with(test_config(&url)).await;
        let created = create_products(&app).await;
        check_searches(&app, &created).await;
    }
    // With every word held by more jobs than one call intersects in full (here, by jobs that
    // are gone), the index is walked instead: the same answers.
    let app = spawn_app(&redis).await;
    let created = create_products(&app).await;
    let words: Vec<String> = redis
        .command(&["ZRANGE", SEARCH_WORDS_KEY, "0", "-1"])
        .await;
    for word in words {
        let key = format!("{SEARCH_WORD_PREFIX}{word}");
        let mut command = vec!["ZADD".to_owned(), key];
        for _ in 0..=MAX_INTERSECTED {
            command.extend(["1".to_owned(), uuid::Uuid::new_v4().to_string()]);
        }
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let _: () = redis.command(&args).await;
    }
    check_searches(&app, &created).await;
}

/// Jobs about four products, in this order (the listing shows the last first), each created in
/// a later millisecond than the one before (jobs of one millisecond are listed by id).
async fn create_products(app: &TestApp) -> [String; 4] {
    let products = [
        ("Crème Brûlée", json!(["cream", "sugar"])),
        ("Diet Cola", json!("carbonated water, aspartame")),
        ("Diet Coconut Water", json!(["coconut"])),
        ("COLA classic", json!(["Water", "Sugar"])),
    ];
    let mut ids = Vec::new();
    for (product, ingredients) in products {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        ids.push(create_product(app, product, ingredients).await);
    }
    ids.try_into().unwrap()
}

async fn check_searches(app: &TestApp, [creme, cola, coconut, classic]: &[String; 4]) {
    let jobs = |query: &'static str| async move {
        let listed = found(app, "/api/v4/jobs", query).await;
        let ours = [creme, cola, coconut, classic];
        listed
            .into_iter()
            .filter(|id| ours.contains(&id))
            .collect::<Vec<_>>()
    };
    assert_eq!(jobs("q=creme%20brulee").await, [creme.as_str()]);
    assert_eq!(jobs("q=BR%C3%9BL%C3%89E").await, [creme.as_str()], "BRÛLÉE");
    assert_eq!(jobs("q=diet%20co").await, [coconut.as_str(), cola.as_str()]);
    assert_eq!(
        jobs("q=diet%20cola%20").await,
        [cola.as_str()],
        "a space ends a word"
    );
    assert_eq!(jobs("q=aspart").await, [cola.as_str()]);
    assert_eq!(
        jobs("q=sugar&status=pending").await,
        [classic.as_str(), creme.as_str()]
    );
    assert_eq!(jobs("q=tea").await, Vec::<String>::new());
    assert_eq!(jobs("q=diet%20tea").await, Vec::<String>::new());

    let first: Value = app
        .get("/api/v4/jobs?q=water&limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job_ids(&first), [classic.as_str(), coconut.as_str()]);
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let second: Value = app
        .get(&format!("/api/v4/jobs?q=water&limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(&job_ids(&second)[..1], [cola.as_str()]);
}

#[tokio::test]
async fn every_instance_finds_the_jobs_another_created() {
    let redis = TestRedis::start().await;
    let one = spawn_app(&redis).await;
    let other = spawn_app(&redis).await;
    let id = create_product(&one, "Ginger ale", json!(["ginger"])).await;

    assert_eq!(found(&other, "/api/v4/jobs", "q=ging").await, [id]);
}

#[tokio::test]
async fn the_history_finds_a_job_long_after_it_expired() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.job_ttl_secs = 1;
    let app = spawn_app_with(config).await;
    let gone = create_product(&app, "Crème brûlée", json!(["cream"])).await;
    app.report(&gone, "fail", &json!({"error": "burnt"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(2)).await; // finished a millisecond later
    let other = create_product(&app, "Crème fraîche", json!(["cream"])).await;
    app.report(&other, "fail", &json!({"error": "sour"})).await;
    create_product(&app, "Brûlée pending", json!([])).await; // not finished: not history

    eventually("the job never expired", || async {
        let answer = app.get(&format!("/api/v4/job/{gone}")).await;
        (answer.status() == StatusCode::GONE).then_some(())
    })
    .await;

    let history = |query: &'static str| found(&app, "/api/v4/history", query);
    assert_eq!(history("q=brulee").await, [gone.as_str()]);
    assert_eq!(history("q=CREME").await, [other.clone(), gone.clone()]);
    assert_eq!(history("q=cre&status=failed&limit=1").await, [other]);
    eventually("the expired jobs stayed listed", || async {
        let live = found(&app, "/api/v4/jobs", "q=creme").await;
        live.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_query_without_words_or_too_long_answers_422() {
    let app = spawn_app_without_redis().await;
    let long = "a%20".repeat(120);
    for (query, detail) in [
        ("q=%20-%2C", "q must hold a letter or a digit"),
        (
            "q=a%20b%20c%20d%20e%20f%20g%20h%20i",
            "q holds more than 8 words",
        ),
        (long.as_str(), "q is longer than 200 characters"),
    ] {
        for path in ["/api/v4/jobs", "/api/v4/history"] {
            let query = if query.starts_with("q=") {
                query.to_owned()
            } else {
                format!("q={query}")
            };
            let answer = app.get(&format!("{path}?{query}")).await;
            assert_eq!(
                detail_of(answer, StatusCode::UNPROCESSABLE_ENTITY).await,
                detail
            );
        }
    }
}

#[tokio::test]
async fn jobs_past_the_retention_leave_the_search_index() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.sweep_interval_ms = 100;
    let app = spawn_app_with(config).await;
    let kept = create_product(&app, "Fresh", json!(["mint"])).await;
    let long_ago = (chrono::Utc::now() - chrono::TimeDelta::days(40)).timestamp_millis();
    let old = uuid::Uuid::new_v4().to_string();
    let stale = format!("{SEARCH_WORD_PREFIX}stale");
    let mint = format!("{SEARCH_WORD_PREFIX}mint");
    for (key, word) in [(&stale, "stale"), (&mint, "mint")] {
        let _: () = redis
            .command(&["ZADD", key, &long_ago.to_string(), &old])
            .await;
        let _: () = redis.command(&["ZADD", SEARCH_WORDS_KEY, "0", word]).await;
    }

    eventually("the old entries were never pruned", || async {
        let left: usize = redis.command(&["EXISTS", &stale]).await;
        (left == 0).then_some(())
    })
    .await;
    let mints: Vec<String> = redis.command(&["ZRANGE", &mint, "0", "-1"]).await;
    assert_eq!(mints, [kept], "the recent job stays");
    let words: Vec<String> = redis
        .command(&["ZRANGE", SEARCH_WORDS_KEY, "0", "-1"])
        .await;
    assert!(!words.contains(&"stale".to_owned()), "{words:?}");
    assert!(words.contains(&"mint".to_owned()), "{words:?}");
}
