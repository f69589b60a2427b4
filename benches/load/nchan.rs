//! Nchan, the peer: Debian's nginx with its Nchan module, publishing through Redis, run as one
//! process in a temporary directory so its CPU time is that one pid's.

use crate::client::{self, Connection};
use crate::procfs::Metered;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Where Debian's `nginx-light` puts the binary.
pub const NGINX_BINARY: &str = "/usr/sbin/nginx";

/// Where Debian's `libnginx-mod-nchan` puts the module.
pub const NCHAN_MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

/// Messages Nchan keeps per channel (in Redis): enough for a watcher that lags an update, small
/// enough that Redis does not grow with every message published.
const MESSAGE_BUFFER_LENGTH: u32 = 2;

/// Why Nchan cannot run here, and whether that fails the run: a machine without nginx skips the
/// row; one with nginx but not the module is missing what CI installs, so it fails.
pub fn unavailable() -> Option<(String, bool)> {
    if !Path::new(NGINX_BINARY).exists() {
        return Some((format!("{NGINX_BINARY} is absent (nginx-light)"), false));
    }
    if !Path::new(NCHAN_MODULE).exists() {
        let reason = format!("{NCHAN_MODULE} is absent (apt-get install libnginx-mod-nchan)");
        return Some((reason, true));
    }
    None
}

/// nginx with Nchan on a free loopback port: `POST /pub/<id>` publishes to channel `<id>`,
/// `GET /sub/<id>` subscribes as an EventSource; both through the Redis at `redis`. Killed when
/// dropped.
pub struct Nchan {
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nchan {
    /// Starts it; returns once it accepts publishes (it answers 503 until it is connected to Redis).
    pub async fn start(redis: SocketAddr) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr: SocketAddr = ([127, 0, 0, 1], crate::processes::free_port()).into();
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config(dir.path(), addr, redis)).expect("nginx.conf written");
        let child = Command::new(NGINX_BINARY)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx runs");
        let deadline = Instant::now() + Duration::from_secs(10);
        let probe = client::request("POST", "/pub/bench-probe", Some("{}"));
        while !accepts(addr, &probe).await {
            assert!(Instant::now() < deadline, "nginx with Nchan did not start");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self {
            addr,
            child,
            _dir: dir,
        }
    }
}

/// Whether Nchan at `addr` accepts the publish `probe`.
async fn accepts(addr: SocketAddr, probe: &[u8]) -> bool {
    let Ok(mut connection) = Connection::open(addr).await else {
        return false;
    };
    connection
        .exchange(probe)
        .await
        .is_ok_and(|status| status < 400)
}

impl Metered for Nchan {
    fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }
}

/// One process in the foreground (no master, so one pid does all the work), everything in `root`.
fn config(root: &Path, addr: SocketAddr, redis: SocketAddr) -> String {
    let root = root.display();
    format!(
        "load_module {NCHAN_MODULE};
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 65536; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 600s;
  upstream bench_redis {{ nchan_redis_server redis://{redis}; }}
  nchan_message_buffer_length {MESSAGE_BUFFER_LENGTH};
  nchan_message_timeout 120s;
  server {{
    listen {addr};
    location ~ ^/pub/(.+)$ {{
      nchan_publisher;
      nchan_channel_id $1;
      nchan_redis_pass bench_redis;
    }}
    location ~ ^/sub/(.+)$ {{
      nchan_subscriber eventsource;
      nchan_channel_id $1;
      nchan_redis_pass bench_redis;
      nchan_subscriber_first_message oldest;
    }}
  }}
}}
"
    )
}
