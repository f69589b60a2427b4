//! Headless Chromium driven over WebDriver (Debian's chromium and chromium-driver packages).

use super::PATIENCE;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Where screenshots are written: `target/tmp/screenshots/`, kept as test artifacts.
pub fn screenshot_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

/// A fresh browser profile in a chromedriver of its own; both end when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// chromedriver leads a process group that its Chromium processes join: ending the group
    /// ends them all, where killing chromedriver alone would leave Chromium running.
    fn drop(&mut self) {
        if let Some(group) = self.driver.id() {
            // SAFETY: killpg only sends a signal; the group is this browser's own.
            unsafe { libc::killpg(group as libc::pid_t, libc::SIGKILL) };
        }
    }
}

impl Browser {
    pub async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver must be on PATH (apt-get install chromium chromium-driver)");
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1500",
        ];
        let mut args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let capabilities =
            json!({"goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}});
        let client = ClientBuilder::rustls()
            .expect("tls roots")
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a browser session");
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("page loads");
    }

    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.expect("clickable");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// The element, once it is on the page.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                return element;
            }
            assert!(Instant::now() < deadline, "{css} never appeared");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap_or_default()
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.wait_for(css).await.attr(name).await.unwrap()
    }

    /// Waits until `css`'s text is `expected`.
    pub async fn wait_for_text(&self, css: &str, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let text = self.text(css).await;
            if text == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} shows {text:?}, never {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Whether the page is wider than the window (a person would have to scroll sideways).
    pub async fn scrolls_sideways(&self) -> bool {
        let script =
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth";
        let wider = self.client.execute(script, vec![]).await.unwrap();
        wider == serde_json::Value::Bool(true)
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |all| all.len())
    }

    /// Writes a screenshot of the page to [`screenshot_dir`]`/name.png`.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}
