//! The `jobcast` binary as a real process, for tests that need separate instances, signals or kills.

use super::PATIENCE;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `jobcast` process, killed when dropped.
pub struct ServerProcess {
    pub addr: SocketAddr,
    child: Child,
    /// Every log line so far, as JSON.
    logs: Arc<Mutex<Vec<Value>>>,
}

impl ServerProcess {
    /// Starts the binary on a free loopback port with `vars` added to its environment, and waits
    /// until it listens.
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_jobcast"))
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("LOG_FORMAT", "json")
            .env("DEEP_RESEARCH_STEP_MS", "0")
            .env("QUEUE_POLL_MS", "20")
            .env("CREATE_RATE_PER_MIN", "0")
            .env("STREAM_RATE_PER_MIN", "0")
            .envs(vars.iter().copied())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the jobcast binary runs");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let addr = loop {
            let line = tokio::time::timeout(PATIENCE, lines.next_line())
                .await
                .expect("the server logs that it listens")
                .expect("stdout readable")
                .expect("the server did not exit");
            let entry: Value = serde_json::from_str(&line).expect("JSON log line");
            let listening = entry["fields"]["message"] == "jobcast listening";
            let addr = entry["fields"]["addr"].as_str().map(str::to_owned);
            logs.lock().unwrap().push(entry);
            if listening {
                break addr.expect("addr").parse().expect("socket address");
            }
        };
        // Keep reading the logs so the server never blocks on a full pipe.
        let kept = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(entry) = serde_json::from_str(&line) {
                    kept.lock().unwrap().push(entry);
                }
            }
        });
        Self { addr, child, logs }
    }

    /// Runs the binary as [`start`](Self::start) would, expecting it to stop by itself: its exit
    /// status and everything it wrote to stderr.
    pub async fn expect_exit(vars: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
        let child = Command::new(env!("CARGO_BIN_EXE_jobcast"))
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the jobcast binary runs");
        let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
            .await
            .expect("the server stops by itself")
            .expect("wait");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status, stderr)
    }

    /// POSTs `body` to a create endpoint (`path`), asserting success; the new job's id.
    pub async fn create(&self, path: &str, body: Value) -> String {
        let response = reqwest::Client::new()
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request sent");
        assert!(response.status().is_success(), "{}", response.status());
        let job: Value = response.json().await.expect("json");
        job["job_id"].as_str().expect("job_id").to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends SIGTERM and returns how long the process took to exit.
    pub async fn terminate(mut self) -> Duration {
        let started = std::time::Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("the server exits after SIGTERM")
            .expect("wait");
        started.elapsed()
    }

    /// Every log line so far, as JSON.
    pub fn logs(&self) -> Vec<Value> {
        self.logs.lock().unwrap().clone()
    }

    /// Whether a log line's message contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        let logs = self.logs.lock().unwrap();
        logs.iter().any(|entry| {
            entry["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(text))
        })
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill");
    }

    /// The process's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}
