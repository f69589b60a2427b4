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
async fn a_wrong_password_falls_back_to_memory_instead_of_failing() {
    let redis = TestRedis::start_with_password(Some("right")).await;
    let wrong = redis.url().replace("pass=right", "pass=wrong");
    let app = spawn_app_with(test_config(&wrong)).await;

    let ready: Value = app.get("/ready").await.json().await.unwrap();
    assert_eq!(ready["backend"], "memory", "{ready}");
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

#[tokio::test]
async fn a_rediss_url_connects_over_tls_verifying_the_certificate() {
    let redis = TlsRedis::start();
    while tokio::net::TcpStream::connect(("127.0.0.1", redis.port))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let url = format!("rediss://localhost:{}", redis.port);
    let ca = redis.dir.path().join("ca.pem");
    let server = ServerProcess::start(&[
        ("REDIS_URL", url.as_str()),
        ("SSL_CERT_FILE", ca.to_str().unwrap()),
        ("REDIS_CONNECT_TIMEOUT_MS", "3000"),
    ])
    .await;

    let ready = reqwest::get(server.url("/ready")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["backend"], "redis", "{ready}");
    assert_eq!(ready["redis_connected"], true);
}
