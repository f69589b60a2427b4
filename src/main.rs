//! The `jobcast` binary: configuration, logs, then the server until SIGTERM or Ctrl-C.

use jobcast::{App, Config, shutdown::shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env_and_args();
    telemetry::init();
    let app = App::build(config).await?;
    app.run_until_stopped(shutdown_signal()).await
}
