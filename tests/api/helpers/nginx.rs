//! A real nginx in front of the server under test, as a reverse proxy on loopback.

use std::net::SocketAddr;
use std::process::Stdio;
use tokio::process::{Child, Command};

/// Where Debian's `nginx-light` puts the binary.
pub const NGINX_BINARY: &str = "/usr/sbin/nginx";

/// An nginx process proxying every path to one upstream, killed when dropped.
pub struct Nginx {
    pub addr: SocketAddr,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx in the foreground (one process, everything in a temp dir) on a free loopback
    /// port, proxying to `upstream` and appending the peer to `X-Forwarded-For`, as the usual
    /// reverse-proxy configuration does; returns once it accepts connections.
    pub async fn start(upstream: SocketAddr) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let root = dir.path().display();
        let config = format!(
            "daemon off;\nmaster_process off;\npid {root}/nginx.pid;\nerror_log {root}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n\
               client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n\
               fastcgi_temp_path {root}/fastcgi;\n  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n\
               server {{\n    listen {addr};\n    location / {{\n\
                 proxy_pass http://{upstream};\n      proxy_http_version 1.1;\n      proxy_buffering off;\n\
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }}\n  }}\n}}\n"
        );
        let config_path = dir.path().join("nginx.conf");
        std::fs::write(&config_path, config).expect("nginx.conf written");
        let child = Command::new(NGINX_BINARY)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx runs (Debian's nginx-light)");
        super::eventually("nginx did not start listening", || async {
            tokio::net::TcpStream::connect(addr).await.ok().map(drop)
        })
        .await;
        Self {
            addr,
            _child: child,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}
