//! Webhooks: one attempt of a delivery, against a real receiver on loopback — signed so that an
//! independent verifier (the `standardwebhooks` crate) accepts it, never sent to a private
//! address unless allowed, never redirected, bounded in time.

use crate::helpers::*;
use jobcast::webhook::{Sender, Signer};
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
