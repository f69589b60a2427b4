//! Nobody gets in through a proxy: forwarded requests are never loopback, only trusted proxies
//! name the client, and the rightmost untrusted hop is the one believed.

use crate::helpers::*;
use jobcast::client_addr::TrustedProxies;
use jobcast::config::Secret;
use reqwest::StatusCode;
use serde_json::json;

/// The three things an intruder did through a same-host proxy: list, forge, clean up.
async fn admin_statuses(client: &reqwest::Client, base: &str, id: &str) -> [StatusCode; 3] {
    let list = client.get(format!("{base}/api/v4/jobs")).send();
    let progress = client
        .post(format!("{base}/api/v4/job/{id}/progress"))
        .json(&json!({"progress": 42}))
        .send();
    let cleanup = client
        .delete(format!("{base}/api/v4/admin/cleanup-jobs"))
        .send();
    let (list, progress, cleanup) = tokio::join!(list, progress, cleanup);
    [list, progress, cleanup].map(|response| response.expect("request sent").status())
}

#[tokio::test]
async fn through_nginx_without_admin_token_listing_reporting_and_cleanup_are_forbidden() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    let nginx = Nginx::start(app.addr).await;
    let id = app.create_external_job().await;

    let proxied = admin_statuses(&app.client, &nginx.url(""), &id).await;
    assert_eq!(proxied, [StatusCode::FORBIDDEN; 3]);
    let read = app
        .client
        .get(nginx.url(&format!("/api/v4/job/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.status(),
        StatusCode::OK,
        "reading a job through nginx still works"
    );
    assert_eq!(
        app.job(&id).await["progress"],
        0,
        "no forged progress landed"
    );

    let direct = admin_statuses(&app.client, &app.url(""), &id).await;
    assert_eq!(
        direct,
        [StatusCode::OK; 3],
        "a loopback client on its own is admitted"
    );
}

#[tokio::test]
async fn any_forwarding_header_makes_a_loopback_client_an_outsider() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    for (name, value) in [
        ("Forwarded", "for=127.0.0.1"),
        ("X-Forwarded-For", "127.0.0.1"),
        ("X-Real-IP", "127.0.0.1"),
        ("Via", "1.1 proxy"),
    ] {
        let response = app
            .client
            .delete(app.url("/api/v4/admin/cleanup-jobs"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        let detail = detail_of(response, StatusCode::FORBIDDEN).await;
        assert!(detail.contains("loopback"), "{name}: {detail}");
    }
}

#[tokio::test]
async fn with_trusted_proxies_admission_and_rate_limits_follow_the_rightmost_untrusted_hop() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.trusted_proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
    (config.create_rate_per_min, config.create_burst) = (1, 3);
    (config.stream_rate_per_min, config.stream_burst) = (1, 2);
    let app = spawn_app_with(config).await;
    let nginx = Nginx::start(app.addr).await;
    let cleanup = nginx.url("/api/v4/admin/cleanup-jobs");

    let local = app.client.delete(&cleanup).send().await.unwrap();
    assert_eq!(
        local.status(),
        StatusCode::OK,
        "nginx forwards a client on this host"
    );
    let remote = app
        .client
        .delete(&cleanup)
        .header("X-Forwarded-For", "198.51.100.7");
    let remote = remote.send().await.unwrap();
    assert_eq!(
        remote.status(),
        StatusCode::FORBIDDEN,
        "a hop nginx was told of is remote"
    );

    // The leftmost entry is the client's to write: varying it must not buy a new allowance.
    let create = |forwarded_for: String| {
        let body = json!({"product_name": "Cola", "ingredients": ["water"]});
        let request = app.client.post(nginx.url("/api/v4/deep-research"));
        request
            .header("X-Forwarded-For", forwarded_for)
            .json(&body)
            .send()
    };
    let (mut accepted, mut limited) = (0, 0);
    for spoofed in 0..10 {
        let response = create(format!("203.0.113.{spoofed}, 198.51.100.7"))
            .await
            .unwrap();
        match response.status() {
            StatusCode::OK => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    println!("through nginx, one forwarded client: {accepted} accepted, {limited} answered 429");
    assert_eq!((accepted, limited), (3, 7));
    let neighbour = create("203.0.113.1, 198.51.100.8".into()).await.unwrap();
    assert_eq!(
        neighbour.status(),
        StatusCode::OK,
        "another forwarded client has its own allowance"
    );
    // nginx opens a fresh upstream connection per request: streams take the direct path, which
    // reads the same headers.
    let id = app.create_external_job().await;
    let events = nginx.url(&format!("/api/v4/job/{id}/events"));
    let open = |forwarded_for: &'static str| {
        let request = app
            .client
            .get(&events)
            .header("X-Forwarded-For", forwarded_for);
        async move { request.send().await.unwrap().status() }
    };
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(open("203.0.113.1, 198.51.100.9").await);
    }
    println!("streams through nginx, one forwarded client: {statuses:?}");
    let limited = StatusCode::TOO_MANY_REQUESTS;
    assert_eq!(statuses, [StatusCode::OK, StatusCode::OK, limited, limited]);
    assert_eq!(open("203.0.113.1, 198.51.100.10").await, StatusCode::OK);
}

#[tokio::test]
async fn the_server_warns_when_it_listens_beyond_loopback_without_admin_token() {
    let open = ServerProcess::start(&[
        ("HOST", "0.0.0.0"),
        ("REDIS_URL", "redis+unix:///nonexistent.sock"),
    ])
    .await;
    let local = ServerProcess::start(&[("REDIS_URL", "redis+unix:///nonexistent.sock")]).await;
    let with_token = ServerProcess::start(&[
        ("HOST", "0.0.0.0"),
        ("ADMIN_TOKEN", "t"),
        ("REDIS_URL", "redis+unix:///nonexistent.sock"),
    ])
    .await;
    let warning = "listening beyond loopback with no ADMIN_TOKEN";
    assert!(open.logged(warning));
    assert!(!local.logged(warning));
    assert!(!with_token.logged(warning));
}

#[tokio::test]
async fn a_dual_stack_listener_admits_ipv4_loopback_clients() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.host = "::ffff:127.0.0.1".parse().unwrap(); // IPv6 socket, loopback only
    let app = spawn_app_with(config).await;
    let over_ipv4 = format!(
        "http://127.0.0.1:{}/api/v4/admin/cleanup-jobs",
        app.addr.port()
    );

    let response = app.client.delete(over_ipv4).send().await.unwrap();

    assert_eq!(
        response.status(),
        StatusCode::OK,
        "::ffff:127.0.0.1 is loopback"
    );
}

#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_case() {
    let redis = TestRedis::start().await;
    let mut config = test_config(&redis.url());
    config.admin_token = Some(Secret::parse("case-token").unwrap());
    let app = spawn_app_with(config).await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = app
            .client
            .delete(app.url("/api/v4/admin/cleanup-jobs"))
            .header("Authorization", format!("{scheme} case-token"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
}

#[test]
fn a_bad_trusted_proxy_or_limit_stops_startup_naming_the_variable() {
    for (variable, value) in [
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("TRUSTED_PROXIES", "127.0.0.1,nginx"),
        ("CREATE_BURST", "0"),
        ("STREAM_RATE_PER_MIN", "many"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_jobcast"))
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env(variable, value)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("binary runs");
        assert!(!output.status.success(), "{variable}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
}
