//! The binary's configuration: invalid values stop startup naming the variable; secrets stay out of logs.

use std::process::{Command, Stdio};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_jobcast");

fn start_with(vars: &[(&str, &str)]) -> std::process::Output {
    Command::new(BINARY)
        .envs(vars.iter().copied())
        .env(
            "PORT",
            vars.iter()
                .find(|(k, _)| *k == "PORT")
                .map_or("0", |(_, v)| v),
        )
        .env("HOST", "127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .expect("binary runs")
}

#[test]
fn an_invalid_value_stops_startup_naming_the_variable() {
    for (variable, value) in [
        ("PORT", "eighty"),
        ("JOB_TTL_SECS", "0"),
        ("WORKER_CONCURRENCY", "-1"),
        ("DEEP_RESEARCH_STEP_MS", "soon"),
        ("REDIS_URL", "http://not-redis"),
        ("FANOUT_WRITES", "carrier-pigeon"),
        ("STALLED_CLIENT_TIMEOUT_MS", "a while"),
    ] {
        let output = start_with(&[(variable, value)]);
        assert!(!output.status.success(), "{variable}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
    }
}

#[tokio::test]
async fn the_redis_password_never_appears_in_the_logs() {
    let child = tokio::process::Command::new(BINARY)
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("REDIS_URL", "redis://app:hunter2@127.0.0.1:1/0")
        .env("REDIS_CONNECT_TIMEOUT_MS", "200")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary runs");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().expect("running") as i32;
    // SIGTERM, as an orchestrator would; the server must stop by itself.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("stopped after SIGTERM")
        .unwrap();

    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(logs.contains("in-memory store"), "{logs}");
    assert!(logs.contains("app:***@127.0.0.1"), "{logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
}
