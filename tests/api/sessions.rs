//! Signing out ends a browser session for real, on every instance sharing the Redis.

use crate::helpers::*;
use jobcast::config::Secret;
use jobcast::store::REVOKED_SESSION_PREFIX;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};

const TOKEN: &str = "session-token";

fn with_token(redis_url: &str) -> jobcast::Config {
    let mut config = test_config(redis_url);
    config.admin_token = Some(Secret::parse(TOKEN).unwrap());
    config
}

/// Signs in on `app`; the `name=value` to send as `Cookie`.
async fn sign_in(app: &TestApp) -> String {
    let response = app
        .client
        .post(app.url("/api/v4/session"))
        .bearer_auth(TOKEN);
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn list_with(app: &TestApp, cookie: &str) -> StatusCode {
    let response = app
        .client
        .get(app.url("/api/v4/jobs"))
        .header(COOKIE, cookie);
    response.send().await.unwrap().status()
}

async fn sign_out(app: &TestApp, cookie: &str) {
    let response = app
        .client
        .delete(app.url("/api/v4/session"))
        .header(COOKIE, cookie);
    let response = response.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn signing_out_on_one_instance_ends_the_session_on_every_instance() {
    let redis = TestRedis::start().await;
    let a = spawn_app_with(with_token(&redis.url())).await;
    let b = spawn_app_with(with_token(&redis.url())).await;
    let cookie = sign_in(&a).await;
    let other = sign_in(&a).await;
    assert_eq!(
        list_with(&b, &cookie).await,
        StatusCode::OK,
        "any instance honours a session"
    );

    sign_out(&a, &cookie).await;

    assert_eq!(list_with(&a, &cookie).await, StatusCode::UNAUTHORIZED);
    assert_eq!(list_with(&b, &cookie).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        list_with(&b, &other).await,
        StatusCode::OK,
        "only that session ended"
    );
    let id = cookie.split_once('=').unwrap().1.split('.').next().unwrap();
    let ttl: i64 = redis
        .command(&["TTL", &format!("{REVOKED_SESSION_PREFIX}{id}")])
        .await;
    assert!(
        (12 * 3600 - 60..=12 * 3600).contains(&ttl),
        "kept as long as the cookie: {ttl}"
    );
}

#[tokio::test]
async fn a_sign_out_made_while_redis_is_down_holds_there_and_reaches_redis_when_it_is_back() {
    let mut redis = TestRedis::start().await;
    let a = spawn_app_with(with_token(&redis.url())).await;
    let b = spawn_app_with(with_token(&redis.url())).await;
    let cookie = sign_in(&a).await;
    redis.kill();

    sign_out(&a, &cookie).await;
    assert_eq!(list_with(&a, &cookie).await, StatusCode::UNAUTHORIZED);

    redis.launch().await;
    eventually("the instance did not switch back to Redis", || async {
        (!a.state.store.is_degraded() && !b.state.store.is_degraded()).then_some(())
    })
    .await;
    // The next session check that reaches Redis writes the revocation there.
    assert_eq!(list_with(&a, &cookie).await, StatusCode::UNAUTHORIZED);
    assert_eq!(list_with(&b, &cookie).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_any_redis_signing_out_still_ends_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = format!("redis+unix://{}", dir.path().join("none.sock").display());
    let app = spawn_app_with(with_token(&nowhere)).await;
    let cookie = sign_in(&app).await;
    assert_eq!(list_with(&app, &cookie).await, StatusCode::OK);

    sign_out(&app, &cookie).await;

    assert_eq!(list_with(&app, &cookie).await, StatusCode::UNAUTHORIZED);
}
