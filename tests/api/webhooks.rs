//! Webhooks: one attempt of a delivery, against a real receiver on loopback — signed so that an
//! independent verifier (the `standardwebhooks` crate) accepts it, never sent to a private
//! address unless allowed, never redirected, bounded in time.

use crate::helpers::*;
use jobcast::webhook::{Sender, Signer};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &str = r#"{"type":"job.completed","timestamp":"2026-12-03T10:00:00.000Z","data":{}}"#;

fn sender(allow_private: bool, timeout: Duration) -> Sender {
    Sender::new(Signer::parse(SECRET).unwrap(), timeout, allow_private)
}

#[tokio::test]
async fn a_delivery_is_signed_so_that_an_independent_verifier_accepts_it_and_no_forgery() {
    let receiver = Receiver::start(vec![]).await;
    let attempted = sender(true, Duration::from_secs(5))
        .send(&receiver.url("/hook"), "msg_1", BODY)
        .await;

    assert!(attempted.succeeded(), "{attempted:?}");
    assert_eq!(attempted.status, Some(200));
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.path, "/hook");
    assert_eq!(request.headers["webhook-id"], "msg_1");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.body, BODY.as_bytes());
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    verifier
        .verify(&request.body, &request.headers)
        .expect("a valid signature");

    let forged = BODY.replace("completed", "failed");
    assert!(
        verifier
            .verify(forged.as_bytes(), &request.headers)
            .is_err()
    );
    let other = standardwebhooks::Webhook::new("whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk=");
    assert!(
        other
            .unwrap()
            .verify(&request.body, &request.headers)
            .is_err()
    );
    let mut late = request.headers.clone();
    let hour_ago = chrono::Utc::now().timestamp() - 3600;
    let resigned = Signer::parse(SECRET)
        .unwrap()
        .signature("msg_1", hour_ago, BODY);
    late.insert("webhook-timestamp", hour_ago.to_string().parse().unwrap());
    late.insert("webhook-signature", resigned.parse().unwrap());
    assert!(
        verifier.verify(BODY.as_bytes(), &late).is_err(),
        "a replay an hour late is refused"
    );
}

#[tokio::test]
async fn loopback_endpoints_are_refused_unless_private_addresses_are_allowed() {
    let receiver = Receiver::start(vec![]).await;
    let strict = sender(false, Duration::from_secs(5));
    for url in [
        receiver.url("/hook"),
        format!("http://localhost:{}/hook", receiver.port),
        format!("http://[::ffff:127.0.0.1]:{}/hook", receiver.port),
    ] {
        let refused = strict.send(&url, "msg_1", BODY).await;
        let error = refused.error.expect("refused");
        assert!(error.contains("public address"), "{url}: {error}");
        assert_eq!(refused.status, None);
    }
    assert!(receiver.received().is_empty(), "nothing reached it");
    for url in [
        "ftp://example.com/",
        "mailto:a@example.com",
        "http://",
        "not a url",
    ] {
        let refused = strict.send(url, "msg_1", BODY).await;
        assert!(refused.error.unwrap().starts_with("webhook_url"), "{url}");
    }

    let allowed = sender(true, Duration::from_secs(5));
    let delivered = allowed.send(&receiver.url("/hook"), "msg_1", BODY).await;
    assert!(delivered.succeeded(), "{delivered:?}");
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_retry_after_and_gone_are_read() {
    let elsewhere = Receiver::start(vec![]).await;
    let receiver = Receiver::start(vec![
        Answer::status(307).with_header("location", &elsewhere.url("/stolen")),
        Answer::status(503).with_header("retry-after", "7"),
        Answer::status(410),
    ])
    .await;
    let sender = sender(true, Duration::from_secs(5));

    let redirected = sender.send(&receiver.url("/hook"), "msg_1", BODY).await;
    assert_eq!(redirected.status, Some(307));
    assert!(!redirected.succeeded());
    assert!(
        elsewhere.received().is_empty(),
        "the redirect was not followed"
    );
    let busy = sender.send(&receiver.url("/hook"), "msg_1", BODY).await;
    assert_eq!(
        (busy.status, busy.retry_after),
        (Some(503), Some(Duration::from_secs(7)))
    );
    let gone = sender.send(&receiver.url("/hook"), "msg_1", BODY).await;
    assert!(gone.gone() && !gone.succeeded());
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_in_time_fails_the_attempt() {
    let receiver = Receiver::start(vec![Answer::status(200).after(Duration::from_secs(5))]).await;
    let attempted = sender(true, Duration::from_millis(200))
        .send(&receiver.url("/slow"), "msg_1", BODY)
        .await;

    assert_eq!(attempted.status, None);
    assert_eq!(
        attempted.error.as_deref(),
        Some("the endpoint did not answer in time")
    );
    assert!(attempted.latency < Duration::from_secs(2), "{attempted:?}");
}

// ---------------------------------------------------------------------------------------------
// Deliveries of jobs' events, end to end.
// ---------------------------------------------------------------------------------------------

fn nowhere() -> String {
    let socket = std::env::temp_dir().join(format!("{}.sock", uuid::Uuid::new_v4()));
    format!("redis+unix://{}", socket.display())
}

/// A server that signs with [`SECRET`], may deliver to loopback, and sends every job's events to
/// `everyone` (besides each job's own `webhook_url`), retrying on `schedule`.
fn webhook_config(
    redis_url: &str,
    everyone: Vec<String>,
    schedule: &str,
) -> jobcast::config::Config {
    let mut config = test_config(redis_url);
    config.webhook_secret = Some(Signer::parse(SECRET).unwrap());
    config.webhook_allow_private = true;
    config.webhook_urls = everyone;
    config.webhook_retry_schedule = schedule.parse().unwrap();
    config
}

/// Waits until `receiver` has at least `count` requests, and returns them.
async fn received(receiver: &Receiver, count: usize) -> Vec<Received> {
    eventually(
        &format!("the receiver never got {count} requests"),
        || async {
            let got = receiver.received();
            (got.len() >= count).then_some(got)
        },
    )
    .await
}

/// A request's body as JSON, after checking its signature with the `standardwebhooks` crate.
fn verified(request: &Received) -> Value {
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap();
    verifier
        .verify(&request.body, &request.headers)
        .expect("a valid signature");
    serde_json::from_slice(&request.body).unwrap()
}

async fn deliveries(app: &TestApp, id: &str) -> Vec<Value> {
    let answer = app.get(&format!("/api/v4/job/{id}/webhooks")).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let page: Value = answer.json().await.unwrap();
    page["deliveries"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_failed_and_cancelled_jobs_each_reach_the_receiver_once_signed() {
    let redis = TestRedis::start().await;
    for url in [redis.url(), nowhere()] {
        let receiver = Receiver::start(vec![]).await;
        let config = webhook_config(&url, vec![receiver.url("/all")], "0,1");
        let app = spawn_app_with(config).await;
        let body = json!({"product_name": "Cola", "ingredients": ["water"],
            "webhook_url": receiver.url("/own")});
        let researched: Value = app
            .post("/api/v4/deep-research", &body)
            .await
            .json()
            .await
            .unwrap();
        let researched = researched["job_id"].as_str().unwrap().to_owned();
        let failed = app.create_external_job().await;
        app.report(&failed, "fail", &json!({"error": "no source"}))
            .await;
        let cancelled = app.create_external_job().await;
        app.post(&format!("/api/v4/job/{cancelled}/cancel"), &json!({}))
            .await;

        received(&receiver, 4).await;
        tokio::time::sleep(Duration::from_millis(300)).await; // nothing more comes
        let requests = receiver.received().into_iter();
        let mut seen: Vec<(String, String, String)> = requests
            .map(|request| {
                let event = verified(&request);
                let job = event["data"]["job_id"].as_str().unwrap().to_owned();
                assert_eq!(
                    event["data"]["status"],
                    event["type"].as_str().unwrap()[4..]
                );
                (
                    request.path,
                    event["type"].as_str().unwrap().to_owned(),
                    job,
                )
            })
            .collect();
        seen.sort();
        let mut expected = vec![
            (
                "/all".to_owned(),
                "job.cancelled".to_owned(),
                cancelled.clone(),
            ),
            (
                "/all".to_owned(),
                "job.completed".to_owned(),
                researched.clone(),
            ),
            ("/all".to_owned(), "job.failed".to_owned(), failed.clone()),
            (
                "/own".to_owned(),
                "job.completed".to_owned(),
                researched.clone(),
            ),
        ];
        expected.sort();
        assert_eq!(seen, expected, "once each, on {url}");
        let ids: std::collections::HashSet<String> = receiver
            .received()
            .iter()
            .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 4, "one webhook-id per delivery");

        let shown = deliveries(&app, &researched).await;
        assert_eq!(shown.len(), 2);
        for delivery in &shown {
            assert_eq!(delivery["status"], "succeeded");
            assert_eq!(delivery["event"], "job.completed");
            let attempts = delivery["attempts"].as_array().unwrap();
            assert_eq!(attempts.len(), 1);
            assert_eq!(attempts[0]["status_code"], 200);
            assert!(delivery["next_attempt_at"].is_null());
        }
        let job = app.job(&researched).await;
        assert!(job.get("webhook_url").is_none(), "never shown with the job");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_gets_three_attempts_with_one_webhook_id_on_the_schedule() {
    let redis = TestRedis::start().await;
    let receiver = Receiver::start(vec![Answer::status(500), Answer::status(503)]).await;
    let config = webhook_config(&redis.url(), vec![receiver.url("/flaky")], "0,0.4,0.8,5");
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;
    app.report(&id, "fail", &json!({"error": "broken"})).await;

    let requests = received(&receiver, 3).await;
    let webhook_ids: Vec<&str> = requests
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap())
        .collect();
    assert_eq!(webhook_ids, [webhook_ids[0]; 3], "stable across retries");
    for request in &requests {
        assert_eq!(verified(request)["type"], "job.failed");
    }
    let gaps = [
        requests[1].at - requests[0].at,
        requests[2].at - requests[1].at,
    ];
    assert!(gaps[0] >= Duration::from_millis(400), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(800), "{gaps:?}");

    let shown = eventually("the delivery never showed as succeeded", || async {
        let shown = deliveries(&app, &id).await;
        (shown[0]["status"] == "succeeded").then_some(shown)
    })
    .await;
    let codes: Vec<&Value> = shown[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(503), &json!(200)]);
    assert_eq!(shown[0]["id"], webhook_ids[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_stops_the_retries_and_the_admin_can_send_a_delivery_again() {
    let redis = TestRedis::start().await;
    let receiver = Receiver::start(vec![Answer::status(410)]).await;
    let config = webhook_config(&redis.url(), vec![receiver.url("/gone")], "0,0.2,0.2");
    let app = spawn_app_with(config).await;
    let id = app.create_external_job().await;
    app.report(&id, "fail", &json!({"error": "broken"})).await;

    let shown = eventually("the delivery never failed", || async {
        let shown = deliveries(&app, &id).await;
        (shown.first()?["status"] == "failed").then_some(shown)
    })
    .await;
    assert_eq!(
        shown[0]["attempts"].as_array().unwrap().len(),
        1,
        "no retry after 410"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1);

    let delivery = shown[0]["id"].as_str().unwrap();
    let retried = app
        .post(
            &format!("/api/v4/job/{id}/webhooks/{delivery}/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(retried.status(), StatusCode::ACCEPTED);
    let requests = received(&receiver, 2).await;
    assert_eq!(requests[1].headers["webhook-id"], delivery);
    eventually("the retry never succeeded", || async {
        let shown = deliveries(&app, &id).await;
        (shown[0]["status"] == "succeeded").then_some(())
    })
    .await;
    let unknown = app
        .post(
            &format!("/api/v4/job/{id}/webhooks/msg_nothing/retry"),
            &json!({}),
        )
        .await;
    assert_eq!(
        detail_of(unknown, StatusCode::NOT_FOUND).await,
        "This job has no such webhook delivery"
    );
}

#[tokio::test]
async fn only_an_admin_may_attach_a_webhook_and_only_a_url_on_a_server_that_signs() {
    let receiver = Receiver::start(vec![]).await;
    let mut config = webhook_config(&nowhere(), vec![], "0");
    config.admin_token = Some(jobcast::config::Secret::parse("s3cret-token").unwrap());
    let app = spawn_app_with(config).await;
    let body = json!({"product_name": "Cola", "ingredients": ["water"],
        "webhook_url": receiver.url("/own")});
    let anonymous = app.post("/api/v4/deep-research", &body).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let admin = app
        .client
        .post(app.url("/api/v4/deep-research"))
        .bearer_auth("s3cret-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
    let bad = json!({"kind": "external", "webhook_url": "file:///etc/passwd"});
    let refused = app
        .client
        .post(app.url("/api/v4/jobs"))
        .bearer_auth("s3cret-token")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(
        detail_of(refused, StatusCode::UNPROCESSABLE_ENTITY).await,
        "webhook_url must be an http or https URL with a host"
    );

    let unsigned = spawn_app_without_redis().await;
    let asked = json!({"kind": "external", "webhook_url": receiver.url("/own")});
    let answer = unsigned.post("/api/v4/jobs", &asked).await;
    assert_eq!(
        detail_of(answer, StatusCode::UNPROCESSABLE_ENTITY).await,
        "this server sends no webhooks: WEBHOOK_SECRET is not set"
    );
}

async fn wait_for_backend(app: &TestApp, wanted: &str) {
    eventually(&format!("the backend never became {wanted}"), || async {
        let ready: Value = app.get("/ready").await.json().await.ok()?;
        (ready["backend"] == wanted).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_queued_during_a_redis_outage_move_to_redis_and_are_delivered_from_there() {
    let mut redis = TestRedis::start().await;
    let receiver = Receiver::start(vec![]).await;
    receiver.down(503);
    let config = webhook_config(
        &redis.url(),
        vec![receiver.url("/all")],
        "0,0.2,0.2,0.2,0.2,0.2,30",
    );
    let app = spawn_app_with(config).await;
    let before = app.create_external_job().await;
    redis.kill();
    wait_for_backend(&app, "memory").await;
    let during = app
        .post(
            "/api/v4/jobs",
            &json!({"kind": "external", "webhook_url": receiver.url("/own")}),
        )
        .await;
    let during: Value = during.json().await.unwrap();
    let during = during["job_id"].as_str().unwrap().to_owned();
    app.report(&before, "fail", &json!({"error": "while Redis was down"}))
        .await;
    received(&receiver, 2).await; // attempted from memory, refused, and again

    redis.launch().await; // empty: what it holds can only come from the write-back
    wait_for_backend(&app, "redis").await;
    receiver.up();
    let delivered = eventually("the moved delivery never succeeded", || async {
        let shown = deliveries(&app, &before).await;
        (shown.first()?["status"] == "succeeded").then_some(shown)
    })
    .await;
    let attempts = delivered[0]["attempts"].as_array().unwrap();
    assert!(
        attempts.len() >= 2,
        "the attempts made from memory moved too: {attempts:?}"
    );
    assert_eq!(attempts[0]["status_code"], 503);
    let due: usize = redis
        .command(&["ZCARD", jobcast::store::WEBHOOKS_DUE_KEY])
        .await;
    assert_eq!(due, 0, "nothing left to deliver");

    // The job created during the outage keeps its own endpoint in Redis.
    app.report(&during, "fail", &json!({"error": "after the outage"}))
        .await;
    let own = eventually("the job's own endpoint was never called", || async {
        let got = receiver.received();
        got.into_iter().find(|r| r.path == "/own")
    })
    .await;
    assert_eq!(verified(&own)["data"]["job_id"], during.as_str());
}

// ---------------------------------------------------------------------------------------------
// Real processes: a killed instance's deliveries, and two instances sharing the work.
// ---------------------------------------------------------------------------------------------

/// A `jobcast` process on `redis_url` that sends every job's events to `everyone`.
async fn webhook_server(redis_url: &str, everyone: &str, schedule: &str) -> ServerProcess {
    ServerProcess::start(&[
        ("REDIS_URL", redis_url),
        ("WEBHOOK_SECRET", SECRET),
        ("WEBHOOK_URLS", everyone),
        ("WEBHOOK_ALLOW_PRIVATE", "true"),
        ("WEBHOOK_RETRY_SCHEDULE", schedule),
        ("WEBHOOK_TIMEOUT_MS", "1000"),
    ])
    .await
}

/// Creates an external job on `server` and fails it; the job's id.
async fn fail_a_job(server: &ServerProcess, client: &reqwest::Client) -> String {
    let id = server
        .create("/api/v4/jobs", json!({"kind": "external"}))
        .await;
    let failed = client
        .post(server.url(&format!("/api/v4/job/{id}/fail")))
        .json(&json!({"error": "broken"}))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), StatusCode::OK);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_delivery_is_made_by_another_after_redis_restarts_too() {
    let mut redis =
        TestRedis::start_with_args(&["--appendonly", "yes", "--appendfsync", "always"]).await;
    let receiver = Receiver::start(vec![]).await;
    receiver.delay_every(Duration::from_secs(30)); // down: it never answers
    let everyone = receiver.url("/all");
    let first = webhook_server(&redis.url(), &everyone, "0,0.3,60").await;
    let id = fail_a_job(&first, &reqwest::Client::new()).await;
    let hung = received(&receiver, 1).await;
    let webhook_id = hung[0].headers["webhook-id"].clone();

    first.kill().await; // SIGKILL, mid-attempt: its claim is never recorded
    redis.kill();
    redis.launch().await;
    receiver.delay_every(Duration::ZERO);
    let second = webhook_server(&redis.url(), &everyone, "0,0.3,60").await;

    let delivered = eventually("the delivery was never made again", || async {
        receiver.received().get(1).cloned()
    })
    .await;
    assert_eq!(
        delivered.headers["webhook-id"], webhook_id,
        "the same delivery"
    );
    assert_eq!(verified(&delivered)["data"]["job_id"], id.as_str());
    let shown = eventually("the delivery never showed as succeeded", || async {
        let url = second.url(&format!("/api/v4/job/{id}/webhooks"));
        let shown: Value = reqwest::get(url).await.ok()?.json().await.ok()?;
        (shown["deliveries"][0]["status"] == "succeeded").then_some(shown)
    })
    .await;
    let attempts = shown["deliveries"][0]["attempts"].as_array().unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "the killed attempt left no record: {attempts:?}"
    );
    assert_eq!(attempts[0]["status_code"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_every_event_of_200_jobs_and_never_one_attempt_twice() {
    let redis = TestRedis::start().await;
    // Slow enough answers that two attempts of one delivery would overlap, were they made.
    let receiver = Receiver::start(vec![]).await;
    receiver.delay_every(Duration::from_millis(20));
    let everyone = receiver.url("/all");
    let servers = [
        webhook_server(&redis.url(), &everyone, "0,1").await,
        webhook_server(&redis.url(), &everyone, "0,1").await,
    ];
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 0..200 {
        ids.push(fail_a_job(&servers[n % 2], &client).await);
    }

    received(&receiver, 200).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // and no more come
    let requests = receiver.received();
    assert_eq!(requests.len(), 200, "one attempt per delivery");
    let mut delivered: Vec<String> = requests
        .iter()
        .map(|request| {
            verified(request)["data"]["job_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    delivered.sort();
    ids.sort();
    assert_eq!(delivered, ids, "every job's event, once");
    assert_eq!(receiver.most_at_once_per_id(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_hangs_holds_up_no_other() {
    let hanging = Receiver::start(vec![]).await;
    hanging.delay_every(Duration::from_secs(30));
    let prompt = Receiver::start(vec![]).await;
    let everyone = vec![hanging.url("/slow"), prompt.url("/fast")];
    let mut config = webhook_config(&nowhere(), everyone, "0,60");
    config.webhook_max_per_endpoint = 2;
    config.webhook_max_in_flight = 4;
    let app = spawn_app_with(config).await;
    for _ in 0..10 {
        let id = app.create_external_job().await;
        app.report(&id, "fail", &json!({"error": "broken"})).await;
    }

    received(&prompt, 10).await; // every one, while the slow endpoint holds its two
    assert_eq!(
        hanging.received().len(),
        2,
        "at most WEBHOOK_MAX_PER_ENDPOINT at once"
    );
}
