//! A private `redis-server` per test, on a unix socket in a temporary directory.

use super::PATIENCE;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A `redis-server` of the test's own, on a unix socket in a temporary directory.
pub struct TestRedis {
    dir: TempDir,
    child: Option<Child>,
    password: Option<String>,
    /// Extra `redis-server` arguments, kept for restarts.
    args: Vec<String>,
}

impl TestRedis {
    /// Starts a fresh server (no persistence) and waits until it answers.
    pub async fn start() -> Self {
        Self::start_with_password(None).await
    }

    /// Starts a fresh server that requires `password` (`requirepass`), if given.
    pub async fn start_with_password(password: Option<&str>) -> Self {
        let mut redis = Self::unstarted(&[]);
        redis.password = password.map(str::to_owned);
        redis.launch().await;
        redis
    }

    /// Starts a fresh server with extra arguments, e.g. `["--appendonly", "yes"]`.
    pub async fn start_with_args(args: &[&str]) -> Self {
        let mut redis = Self::unstarted(args);
        redis.launch().await;
        redis
    }

    /// A server that is not running yet: its URL is known, nothing answers there.
    pub fn unstarted(args: &[&str]) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            password: None,
            args: args.iter().map(|arg| arg.to_string()).collect(),
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The URL the server under test connects with.
    pub fn url(&self) -> String {
        let url = format!("redis+unix://{}", self.socket().display());
        match &self.password {
            Some(password) => format!("{url}?pass={password}"),
            None => url,
        }
    }

    /// Starts the server (again, after [`kill`](Self::kill)) on the same socket and directory.
    pub async fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        if let Some(password) = &self.password {
            command.arg("--requirepass").arg(password);
        }
        let child = command
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .args(&self.args)
            .arg("--unixsocket")
            .arg(self.socket())
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while self.connection().await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the server at once (SIGKILL), as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Freezes the server (SIGSTOP): its sockets stay open and nothing answers, as in a long
    /// stall (a fork for a snapshot on a huge dataset, a VM pause, a hung disk).
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server run again (SIGCONT); what it was sent meanwhile is then served.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// A plain connection, for inspecting what the server stored.
    pub async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        Ok(connection)
    }

    /// Runs one command on the server, for inspecting or disturbing it.
    pub async fn command<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut connection = self.connection().await.expect("redis answers");
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command
            .query_async(&mut connection)
            .await
            .expect("redis command")
    }

    /// How many connections subscribe to `job_id`'s channel: an instance subscribes while it
    /// has a watcher of the job.
    pub async fn job_subscribers(&self, job_id: &str) -> i64 {
        let channel = super::job_channel(job_id);
        self.command::<(String, i64)>(&["PUBSUB", "NUMSUB", &channel])
            .await
            .1
    }

    /// A client, for subscribing.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("valid url")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
