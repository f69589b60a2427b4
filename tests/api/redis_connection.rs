//! Connecting to Redis the ways production does: with a password, over TLS.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

#[tokio::test]
async fn a_password_protected_redis_is_used_when_the_url_carries_the_password() {
    let redis = TestRedis::start_with_password(Some("s3cret pass")).await;
    let app = spawn_app(&redis).await;

    let ready: Value = app.get("/ready").await.json().await.unwrap();
    assert_eq!(ready["backend"], "redis", "{ready}");
    let id = app.start_research("Cola", json!(["water"])).await;
    assert_eq!(app.wait_until_finished(&id).await["status"], "completed");
}

#[tokio::test]
async fn a_wrong_password_stops_startup_naming_redis_url_with_the_password_masked() {
    let redis = TestRedis::start_with_password(Some("right")).await;
    let wrong = redis.url().replace("pass=right", "pass=hunter2wrong");
    let (status, stderr) = ServerProcess::expect_exit(&[("REDIS_URL", &wrong)]).await;

    assert!(!status.success());
    assert!(stderr.contains("REDIS_URL=redis+unix://"), "{stderr}");
    assert!(stderr.contains("pass=***"), "{stderr}");
    assert!(
        !stderr.contains("hunter2wrong"),
        "the password leaked: {stderr}"
    );
}

#[tokio::test]
async fn a_redis_that_starts_refusing_mid_run_makes_the_server_not_ready() {
    let redis = TestRedis::start().await;
    let app = spawn_app(&redis).await;
    assert_eq!(app.get("/ready").await.status(), StatusCode::OK);

    // The operator rotates the password in Redis but not in REDIS_URL, and connections reset.
    let _: () = redis
        .command(&["CONFIG", "SET", "requirepass", "rotated"])
        .await;
    let mut admin = redis::Client::open(format!("{}?pass=rotated", redis.url()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .query_async(&mut admin)
        .await
        .unwrap_or(0);

    let ready = eventually("/ready never said not ready", || async {
        let response = app.get("/ready").await;
        (response.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(response)
    })
    .await;
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "not ready", "{ready}");
    assert!(
        ready["detail"].as_str().unwrap().contains("refuses"),
        "{ready}"
    );
}

/// A TLS-only redis-server with a self-signed certificate made by openssl for this test.
struct TlsRedis {
    dir: tempfile::TempDir,
    port: u16,
    child: std::process::Child,
}

impl TlsRedis {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // A CA, and a server certificate for "localhost" signed by it: what a managed Redis has.
        let script = "set -e
            openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.pem
            openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out server.csr
            printf 'subjectAltName=DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext.cnf
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem";
        let made = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(dir.path())
            .stderr(Stdio::null())
            .status()
            .expect("openssl must be on PATH");
        assert!(made.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                "cert.pem",
                "--tls-key-file",
                "key.pem",
                "--tls-ca-cert-file",
                "ca.pem",
            ])
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server");
        Self { dir, port, child }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TlsRedis {
    /// Waits until the TLS port accepts connections.
    async fn ready(&self) {
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("rediss://localhost:{}", self.port)
    }

    fn ca(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }
}

async fn assert_ready_on_redis(server: &ServerProcess) {
    let ready = reqwest::get(server.url("/ready")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["backend"], "redis", "{ready}");
    assert_eq!(ready["redis_connected"], true);
}

#[tokio::test]
async fn a_rediss_url_connects_over_tls_verifying_the_certificate() {
    let redis = TlsRedis::start();
    redis.ready().await;
    let (url, ca) = (redis.url(), redis.ca());
    let server = ServerProcess::start(&[
        ("REDIS_URL", url.as_str()),
        ("SSL_CERT_FILE", ca.as_str()),
        ("REDIS_CONNECT_TIMEOUT_MS", "3000"),
    ])
    .await;
    assert_ready_on_redis(&server).await;
}

#[tokio::test]
async fn a_certificate_nobody_vouches_for_stops_startup_instead_of_falling_back_to_memory() {
    let redis = TlsRedis::start();
    redis.ready().await;
    let url = redis.url();
    let (status, stderr) = ServerProcess::expect_exit(&[
        ("REDIS_URL", url.as_str()),
        ("REDIS_CONNECT_TIMEOUT_MS", "3000"),
    ])
    .await;
    assert!(!status.success());
    assert!(stderr.contains("REDIS_URL=rediss://localhost"), "{stderr}");
    assert!(
        stderr.contains("REDIS_TLS_CA_FILE"),
        "names the way out: {stderr}"
    );
}

#[tokio::test]
async fn a_self_signed_redis_is_trusted_through_redis_tls_ca_file() {
    let redis = TlsRedis::start();
    redis.ready().await;
    let (url, ca) = (redis.url(), redis.ca());
    let server = ServerProcess::start(&[
        ("REDIS_URL", url.as_str()),
        ("REDIS_TLS_CA_FILE", ca.as_str()),
        ("REDIS_CONNECT_TIMEOUT_MS", "3000"),
    ])
    .await;
    assert_ready_on_redis(&server).await;
}

#[tokio::test]
async fn redis_tls_insecure_connects_without_verifying_and_says_so() {
    let redis = TlsRedis::start();
    redis.ready().await;
    let url = redis.url();
    let server = ServerProcess::start(&[
        ("REDIS_URL", url.as_str()),
        ("REDIS_TLS_INSECURE", "true"),
        ("REDIS_CONNECT_TIMEOUT_MS", "3000"),
    ])
    .await;
    assert_ready_on_redis(&server).await;
    assert!(server.logged("certificate is not verified"));
}
