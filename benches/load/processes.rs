//! The processes a benchmark runs against: its own redis-server, jobcast, and a bare axum server.

use jobcast::sink::FanoutWrites;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A redis-server on a unix socket in a temporary directory, killed when dropped.
pub struct Redis {
    dir: tempfile::TempDir,
    _child: Child,
}

impl Redis {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(dir.path().join("redis.sock"))
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server on PATH");
        let redis = Self { dir, _child: child };
        let client = redis::Client::open(redis.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.get_multiplexed_async_connection().await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        redis
    }

    pub fn url(&self) -> String {
        format!(
            "redis+unix://{}",
            self.dir.path().join("redis.sock").display()
        )
    }
}

/// A server process (jobcast, or this binary serving bare axum), killed when dropped.
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    /// The jobcast binary with `vars`; returns once it listens.
    pub async fn jobcast(vars: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_jobcast"));
        command
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "warn,jobcast::startup=info")
            .env("ADMIN_TOKEN", crate::ADMIN_TOKEN)
            // Every load client comes from one address; the per-client limits would refuse them.
            .env("CREATE_RATE_PER_MIN", "0")
            .env("STREAM_RATE_PER_MIN", "0")
            // The 10,000-subscriber fan-out holds more than the default cap of connections (the
            // server lowers this to what its open-files limit allows).
            .env("MAX_CONNECTIONS", "1000000")
            .envs(vars.iter().copied());
        Self::spawn(command, "jobcast listening").await
    }

    /// This binary serving `body` at every path with plain axum: the machine's HTTP ceiling.
    pub async fn bare(body_file: &std::path::Path) -> Self {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.arg("--serve-bare").arg(body_file);
        Self::spawn(command, "bare listening").await
    }

    /// This binary as the fan-out floor (`floor.rs`), writing the `writes` way.
    pub async fn floor(writes: FanoutWrites) -> Self {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.args(["--serve-floor", crate::scenarios::fanout_writes_var(writes)]);
        Self::spawn(command, "floor listening").await
    }

    async fn spawn(mut command: Command, ready_line: &str) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("server starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the server exited before listening");
            if !line.contains(ready_line) {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(&line).unwrap();
            break value["fields"]["addr"].as_str().unwrap().parse().unwrap();
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { addr, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// User plus system CPU time the process has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let per_second = 100; // USER_HZ on Linux
        Duration::from_millis(ticks * 1000 / per_second)
    }

    /// Resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

/// Serves `body` as JSON on every path: the ceiling a handler returning bytes from memory reaches.
pub async fn serve_bare(body_file: &str) {
    let body = bytes::Bytes::from(std::fs::read(body_file).unwrap());
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    println!(
        "{}",
        serde_json::json!({"fields": {"message": "bare listening", "addr": addr.to_string()}})
    );
    axum::serve(listener, app).await.unwrap();
}
