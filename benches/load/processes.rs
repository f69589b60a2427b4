//! The processes a benchmark runs against: its own redis-server, jobcast, a bare axum server and
//! this binary as a floor.

use crate::procfs::{self, Metered};
use jobcast::sink::FanoutWrites;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A redis-server on a unix socket in a temporary directory (and on a loopback port when asked),
/// killed when dropped.
pub struct Redis {
    dir: tempfile::TempDir,
    child: Child,
    /// The loopback port it also listens on, for clients that speak only TCP (Nchan).
    tcp_port: Option<u16>,
}

impl Redis {
    /// A redis-server on a unix socket only.
    pub async fn start() -> Self {
        Self::spawn(None).await
    }

    /// A redis-server on a unix socket and on a free loopback port.
    pub async fn start_with_tcp() -> Self {
        Self::spawn(Some(free_port())).await
    }

    async fn spawn(tcp_port: Option<u16>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = tcp_port.unwrap_or(0).to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--unixsocket"])
            .arg(dir.path().join("redis.sock"))
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server on PATH");
        let redis = Self {
            dir,
            child,
            tcp_port,
        };
        let client = redis::Client::open(redis.url()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.get_multiplexed_async_connection().await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        redis
    }

    /// Its unix socket, as a `REDIS_URL`.
    pub fn url(&self) -> String {
        format!(
            "redis+unix://{}",
            self.dir.path().join("redis.sock").display()
        )
    }

    /// Its loopback address, when it was started with one.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_port.map(|port| ([127, 0, 0, 1], port).into())
    }
}

impl Metered for Redis {
    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The jobcast servers' `RUST_LOG`: `BENCH_SERVER_RUST_LOG`, by default warnings only (and the
/// line that says where it listens); `info` measures what the default filter costs.
fn server_log_filter() -> String {
    std::env::var("BENCH_SERVER_RUST_LOG").unwrap_or_else(|_| "warn,jobcast::startup=info".into())
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
            .env("RUST_LOG", server_log_filter())
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
        Self::floor_serving(fanout_writes_var(writes)).await
    }

    /// This binary as the floor of many jobs with one watcher each (`many_floor.rs`).
    pub async fn many_floor() -> Self {
        Self::floor_serving(crate::many_floor::MODE).await
    }

    async fn floor_serving(mode: &str) -> Self {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.args(["--serve-floor", mode]);
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

    /// Resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        procfs::rss_kib(self.pid())
    }
}

impl Metered for Server {
    fn pid(&self) -> u32 {
        self.child.id().unwrap()
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

/// `FANOUT_WRITES` for `writes`.
pub fn fanout_writes_var(writes: FanoutWrites) -> &'static str {
    match writes {
        FanoutWrites::IoUring => "io-uring",
        FanoutWrites::Send => "send",
    }
}
