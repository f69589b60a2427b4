//! The bundled page, driven in headless Chromium the way a person uses it.

use crate::helpers::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Watches the progress bar until the job is finished; returns every value it showed.
async fn watch_progress(browser: &Browser) -> BTreeSet<u64> {
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = browser.attr("#progressbar", "aria-valuenow").await {
            seen.insert(value.parse().unwrap());
        }
        if browser.text("#connection").await == "finished" {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "the page never finished; saw {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
}

/// Starts the "Diet cola" example from the form and follows it to the report.
async fn start_example_and_watch_it_finish(browser: &Browser, app_url: &str, name: &str) -> String {
    browser.goto(app_url).await;
    browser.click("button[data-example='cola']").await;
    browser.click("#start-button").await;
    let seen = watch_progress(browser).await;

    assert!(seen.len() >= 3, "the bar took only {seen:?}");
    browser.wait_for_text("#status", "completed").await;
    assert_eq!(browser.text("#percent").await, "100%");
    assert!(
        browser.count("#report table tbody tr").await >= 5,
        "a row per matched ingredient"
    );
    let level = browser.text("#report .risk").await;
    assert!(
        ["low", "possible", "elevated", "high"].contains(&level.to_lowercase().as_str()),
        "{level}"
    );
    browser.screenshot(&format!("{name}-finished")).await;
    browser.text("#job-id").await
}

/// Opens the shared link of a finished job and checks it shows the same final state.
async fn reopen_shared_link(browser: &Browser, app_url: &str, job_id: &str, name: &str) {
    browser.goto(&format!("{app_url}/?job={job_id}")).await;
    browser.wait_for_text("#status", "completed").await;
    browser.wait_for_text("#connection", "finished").await;
    assert_eq!(browser.text("#percent").await, "100%");
    assert!(browser.count("#report table tbody tr").await >= 5);
    browser.screenshot(&format!("{name}-reopened")).await;
}

fn paced_config(redis: &TestRedis) -> jobcast::Config {
    let mut config = test_config(&redis.url());
    config.deep_research_step_ms = 120;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_starts_a_job_from_the_form_and_watches_it_live_over_sse() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(paced_config(&redis)).await;
    let browser = Browser::start().await;
    let url = app.url("");

    let job_id = start_example_and_watch_it_finish(&browser, &url, "sse").await;
    reopen_shared_link(&browser, &url, &job_id, "sse").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_websocket_switch_on_the_page_does_the_same() {
    let redis = TestRedis::start().await;
    let app = spawn_app_with(paced_config(&redis)).await;
    let browser = Browser::start().await;
    let url = app.url("");
    browser.goto(&url).await;
    browser.click("input[name='transport'][value='ws']").await;

    let job_id = start_example_and_watch_it_finish(&browser, &url, "websocket").await;
    reopen_shared_link(&browser, &url, &job_id, "websocket").await;
    let checked = browser
        .client
        .execute(
            "return document.querySelector('input[value=ws]').checked",
            vec![],
        )
        .await;
    assert_eq!(
        checked.unwrap(),
        Value::Bool(true),
        "the choice is remembered"
    );
}

#[tokio::test]
async fn the_servers_validation_message_shows_next_to_the_field() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let browser = Browser::start().await;
    browser.goto(&app.url("")).await;

    browser.type_into("#ingredients", "water, salt").await;
    browser.click("#start-button").await;

    let error = browser
        .wait_for("#product-error:not([hidden])")
        .await
        .text()
        .await
        .unwrap();
    assert!(error.contains("product_name"), "{error}");
    assert_eq!(
        browser.attr("#product", "aria-invalid").await.as_deref(),
        Some("true")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_lists_recent_jobs_and_updates_them_live() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let earlier = app.create_external_job().await;
    let browser = Browser::start().await;
    browser.goto(&app.url("")).await;
    browser
        .wait_for(&format!("li[data-job-id='{earlier}']"))
        .await;

    let live = app.create_external_job().await;
    let row = format!("li[data-job-id='{live}']");
    browser.wait_for(&row).await;
    app.report(&live, "progress", &serde_json::json!({"progress": 40}))
        .await;
    browser
        .wait_for_text(&format!("{row} .status"), "processing")
        .await;
    app.report(&live, "complete", &serde_json::json!({"result": {}}))
        .await;
    browser
        .wait_for_text(&format!("{row} .status"), "completed")
        .await;
    browser.screenshot("dashboard").await;

    browser.click(&format!("{row} button")).await; // open it from the list
    browser.wait_for_text("#job-id", &live).await;
    browser.wait_for_text("#status", "completed").await;
    browser.wait_for_text("#connection", "finished").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_searches_the_dashboard_as_they_type() {
    let app = spawn_app_without_redis().await;
    let mut ids = Vec::new();
    for product in ["Diet Cola", "Diet Coconut Water", "Lemonade"] {
        let input = serde_json::json!({"product_name": product, "ingredients": ["water"]});
        let body = serde_json::json!({"kind": "external", "input": input});
        let job: serde_json::Value = app.post("/api/v4/jobs", &body).await.json().await.unwrap();
        ids.push(job["job_id"].as_str().unwrap().to_owned());
    }
    let browser = Browser::start().await;
    browser.goto(&app.url("")).await;
    browser
        .wait_for(&format!("li[data-job-id='{}']", ids[2]))
        .await;

    browser.type_into("#search-filter", "diet co").await;
    eventually("the list never narrowed to the search", || async {
        let rows = browser.count("#job-list li").await;
        let lemonade = browser
            .count(&format!("li[data-job-id='{}']", ids[2]))
            .await;
        (rows == 2 && lemonade == 0).then_some(())
    })
    .await;
    browser
        .wait_for(&format!("li[data-job-id='{}']", ids[0]))
        .await;

    browser
        .type_into("#search-filter", "a b c d e f g h i")
        .await;
    browser
        .wait_for_text("#dashboard-note", "q holds more than 8 words")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_view_shows_a_jobs_webhook_attempts_to_an_admin() {
    let receiver = Receiver::start(vec![Answer::status(500)]).await;
    let mut config = test_config(&format!(
        "redis+unix://{}/nowhere.sock",
        std::env::temp_dir().display()
    ));
    config.webhook_secret =
        Some(jobcast::webhook::Signer::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());
    config.webhook_allow_private = true;
    config.webhook_retry_schedule = "0,0.5".parse().unwrap();
    let app = spawn_app_with(config).await;
    let body = serde_json::json!({"kind": "external", "webhook_url": receiver.url("/hook")});
    let job: serde_json::Value = app.post("/api/v4/jobs", &body).await.json().await.unwrap();
    let id = job["job_id"].as_str().unwrap().to_owned();
    app.report(&id, "fail", &serde_json::json!({"error": "no source"}))
        .await;

    let browser = Browser::start().await;
    browser.goto(&app.url(&format!("/?job={id}"))).await;
    browser.wait_for_text("#status", "failed").await;
    browser
        .wait_for_text("#webhook-list .delivery-status", "succeeded")
        .await;
    assert_eq!(browser.count("#webhook-list .attempts li").await, 2);
    let first = browser.text("#webhook-list .attempts li:first-child").await;
    assert!(first.starts_with("500 · "), "{first}");
    assert_eq!(
        browser.text("#webhook-list code").await,
        receiver.url("/hook")
    );
    browser.screenshot("webhooks").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_reconnects_after_a_server_restart_and_sees_the_job_finish() {
    let redis = TestRedis::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let vars = [
        ("REDIS_URL", redis.url()),
        ("PORT", port.clone()),
        ("DEEP_RESEARCH_STEP_MS", "250".into()),
        ("WORKER_CONCURRENCY", "1".into()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = ServerProcess::start(&vars).await;
    let url = server.url("");
    let browser = Browser::start().await;
    browser.goto(&url).await;
    browser.click("button[data-example='cola']").await;
    browser.click("#start-button").await;
    browser.wait_for_text("#connection", "live").await;
    let deadline = Instant::now() + PATIENCE;
    while browser
        .attr("#progressbar", "aria-valuenow")
        .await
        .as_deref()
        == Some("0")
    {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    server.terminate().await;
    browser.wait_for_text("#connection", "reconnecting").await;
    browser.screenshot("restart-reconnecting").await;
    let _restarted = ServerProcess::start(&vars).await;

    browser.wait_for_text("#status", "completed").await;
    browser.wait_for_text("#connection", "finished").await;
    assert_eq!(browser.text("#percent").await, "100%");
    browser.screenshot("restart-finished").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_watching_one_job_share_a_single_stream() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let id = app.create_external_job().await;
    let job_id: jobcast::job::JobId = id.parse().unwrap();
    let browser = Browser::start().await;
    let page = app.url(&format!("/?job={id}"));
    browser.goto(&page).await;
    browser.wait_for_text("#connection", "live").await;
    let first = browser.client.window().await.unwrap();
    let second = browser.client.new_window(true).await.unwrap().handle;
    browser.client.switch_to_window(second).await.unwrap();
    browser.goto(&page).await;
    browser.wait_for_text("#seq", "1").await;

    app.report(
        &id,
        "progress",
        &serde_json::json!({"progress": 60, "current_step": "Shared"}),
    )
    .await;
    browser.wait_for_text("#percent", "60%").await;
    assert_eq!(
        app.state.hub.subscriber_count(job_id),
        1,
        "one stream for both tabs"
    );

    // The tab holding the stream closes; the other takes over from its last seq.
    browser.client.switch_to_window(first).await.unwrap();
    browser.client.close_window().await.unwrap();
    let remaining = browser.client.windows().await.unwrap().pop().unwrap();
    browser.client.switch_to_window(remaining).await.unwrap();
    app.report(&id, "complete", &serde_json::json!({"result": {}}))
        .await;
    browser.wait_for_text("#status", "completed").await;
    assert!(app.state.hub.subscriber_count(job_id) <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_shows_its_error_and_the_page_fits_a_phone() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let browser = Browser::start().await;
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.goto(&app.url("")).await;

    browser.click("button[data-example='empty']").await;
    browser.click("#start-button").await;

    browser.wait_for_text("#status", "failed").await;
    let report = browser.text("#report").await;
    assert!(
        report.contains("failed") && report.contains("empty"),
        "{report}"
    );
    assert!(
        !browser.scrolls_sideways().await,
        "no horizontal scrolling at phone width"
    );
    browser.screenshot("phone-failed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_an_outage_the_page_keeps_waiting_for_a_job_its_server_never_saw() {
    let redis = TestRedis::start().await;
    let url = redis.url();
    let vars = [("REDIS_URL", url.as_str()), ("WORKER_CONCURRENCY", "0")];
    let (a, b) = (
        ServerProcess::start(&vars).await,
        ServerProcess::start(&vars).await,
    );
    let id = a
        .create("/api/v4/jobs", serde_json::json!({"kind": "external"}))
        .await;
    let client = reqwest::Client::new();

    redis.freeze();
    let browser = Browser::start().await;
    browser.goto(&b.url(&format!("/?job={id}"))).await;
    browser
        .wait_for_text("#connection", "store unavailable")
        .await;
    browser.screenshot("outage-store-unavailable").await;
    assert_ne!(browser.text("#status").await, "not found");
    redis.thaw();

    let done = client
        .post(a.url(&format!("/api/v4/job/{id}/fail")))
        .json(&serde_json::json!({"error": "stopped by the test"}))
        .send()
        .await
        .unwrap();
    assert!(done.status().is_success());
    browser.wait_for_text("#status", "failed").await;
    browser.wait_for_text("#connection", "finished").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_cancels_the_job_they_started_and_the_dashboard_shows_it_cancelled() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.deep_research_step_ms = 400;
    let app = spawn_app_with(config).await;
    let browser = Browser::start().await;
    browser.goto(&app.url("")).await;
    browser.click("button[data-example='cola']").await;
    browser.click("#start-button").await;
    browser.wait_for_text("#connection", "live").await;
    browser.wait_for_text("#status", "processing").await;

    browser.click("#cancel-button").await;
    browser.wait_for_text("#status", "cancelled").await;
    browser.wait_for_text("#connection", "finished").await;
    let report = browser.text("#report").await;
    assert_eq!(report, "Cancelled: stopped from the page");
    let hidden = browser.attr("#cancel-button", "hidden").await;
    assert!(hidden.is_some(), "no Cancel button on a finished job");
    let id = browser.text("#job-id").await;
    let job = app.job(&id).await;
    assert_eq!(job["status"], "cancelled");
    assert!(job["progress"].as_u64() < Some(100), "{job}");
    browser.screenshot("cancelled").await;

    let row = format!("li[data-job-id='{id}'] .status");
    browser.wait_for_text(&row, "cancelled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_panel_shows_the_admin_the_windows_counts_chart_and_top_findings() {
    const TOKEN: &str = "analytics-admin";
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.admin_token = Some(jobcast::config::Secret::parse(TOKEN).unwrap());
    let app = spawn_app_with(config).await;
    for ingredients in [
        serde_json::json!(["aspartame", "caffeine"]),
        serde_json::json!(["aspartame"]),
    ] {
        let id = app.start_research("Diet cola", ingredients).await;
        app.wait_until_finished(&id).await;
    }
    let admin = |path: &str, body: Value| {
        app.client
            .post(app.url(path))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    for (end, body) in [
        ("fail", serde_json::json!({"error": "bad file"})),
        ("cancel", serde_json::json!({"reason": "not needed"})),
    ] {
        let created = admin("/api/v4/jobs", serde_json::json!({"kind": "import"}));
        let job: Value = created.await.unwrap().json().await.unwrap();
        let path = format!("/api/v4/job/{}/{end}", job["job_id"].as_str().unwrap());
        let ended = admin(&path, body).await;
        assert!(ended.unwrap().status().is_success());
    }

    let browser = Browser::start().await;
    browser.goto(&app.url("")).await;
    browser.wait_for("#stats-note:not([hidden])").await;
    assert!(
        browser
            .text("#stats-note")
            .await
            .starts_with("Sign in above")
    );
    browser.type_into("#admin-token", TOKEN).await;
    browser.click("#sign-in button").await;

    browser.wait_for_text("#stats-created", "4").await;
    for (figure, expected) in [
        ("#stats-completed", "2"),
        ("#stats-failed", "1"),
        ("#stats-cancelled", "1"),
        ("#stats-success", "50.0%"),
    ] {
        assert_eq!(browser.text(figure).await, expected, "{figure}");
    }
    assert_eq!(browser.text("#stats-duration td:nth-child(5)").await, "4");
    assert_ne!(browser.text("#stats-duration td:nth-child(2)").await, "–");
    assert_eq!(browser.count("#stats-chart svg g.hour").await, 24);
    assert_eq!(browser.count("#stats-chart rect.bar-completed").await, 1);
    assert!(browser.count("#stats-distribution rect.bar-duration").await >= 1);
    assert_eq!(
        browser
            .text("#stats-findings li:first-child .ingredient")
            .await,
        "aspartame"
    );
    assert_eq!(
        browser.text("#stats-findings li:first-child .count").await,
        "2"
    );
    assert_eq!(browser.count("#stats-findings li").await, 2);

    browser.click("#stats-window option[value='7d']").await;
    let deadline = Instant::now() + PATIENCE;
    while browser.count("#stats-chart svg g.hour").await != 168 {
        assert!(
            Instant::now() < deadline,
            "the 7-day chart never showed 168 hours"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(browser.text("#stats-created").await, "4");
    browser
        .client
        .execute(
            "document.getElementById('analytics').scrollIntoView()",
            vec![],
        )
        .await
        .unwrap();
    browser.screenshot("analytics").await;

    browser.client.set_window_size(390, 844).await.unwrap();
    assert!(!browser.scrolls_sideways().await, "the panel fits a phone");
    let figures = "document.querySelector('#analytics .figures').scrollIntoView()";
    browser.client.execute(figures, vec![]).await.unwrap();
    browser.screenshot("analytics-phone").await;
}
