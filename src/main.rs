//! The `jobcast` binary: configuration, logs, then the server until SIGTERM or Ctrl-C.

use jobcast::{App, Config, shutdown::shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env_and_args();
    telemetry::init();
    // Every open stream is a socket: allow as many as the hard limit permits.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
    }
    let app = App::build(config).await?;
    app.run_until_stopped(shutdown_signal()).await
}
