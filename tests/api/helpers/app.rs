//! The real server, running in-process on a free port.

use super::PATIENCE;
use super::redis::TestRedis;
use jobcast::{App, Config};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The server under test, running in this process on a free port.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `METRICS_ADDR`'s listener, when the test set one.
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub state: jobcast::state::AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Test defaults: a free port on loopback, no pacing, two workers, no rate limits.
pub fn test_config(redis_url: &str) -> Config {
    let mut config = Config::defaults();
    config.host = [127, 0, 0, 1].into();
    config.port = 0;
    config.redis_url = jobcast::config::RedisUrl::parse(redis_url).expect("valid url");
    config.deep_research_step_ms = 0;
    config.worker_concurrency = 2;
    config.queue_poll_ms = 20;
    config.admin_token = None;
    // Tests drive many jobs and streams from one address; the rate-limit tests turn these on.
    config.create_rate_per_min = 0;
    config.stream_rate_per_min = 0;
    config
}

/// The server on `redis`, with the test defaults.
pub async fn spawn_app(redis: &TestRedis) -> TestApp {
    spawn_app_with(test_config(&redis.url())).await
}

/// The server without any Redis: it must fall back to its memory store.
pub async fn spawn_app_without_redis() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let nowhere = format!("redis+unix://{}", dir.path().join("none.sock").display());
    spawn_app_with(test_config(&nowhere)).await
}

/// The server with a configuration of the test's making.
pub async fn spawn_app_with(config: Config) -> TestApp {
    // Logs only when RUST_LOG is set, e.g. RUST_LOG=jobcast=debug cargo test name -- --nocapture.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let app = App::build(config).await.expect("app builds");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        metrics_addr,
        client: reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .expect("client"),
        state,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server as SIGTERM would and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// A POST of `body` as it is, declared JSON: for bodies `serde_json` would not write.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> Response {
        self.client
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// `POST /api/v4/deep-research`, returning the new job's id.
    pub async fn start_research(&self, product: &str, ingredients: Value) -> String {
        let body = json!({ "product_name": product, "ingredients": ingredients });
        let response = self.post("/api/v4/deep-research", &body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let job: Value = response.json().await.expect("json");
        job["job_id"].as_str().expect("job_id").to_owned()
    }

    /// `POST /api/v4/jobs` for a kind no built-in worker runs, returning the job's id.
    pub async fn create_external_job(&self) -> String {
        let body = json!({ "kind": "external", "input": { "source": "test" } });
        let response = self.post("/api/v4/jobs", &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let job: Value = response.json().await.expect("json");
        job["job_id"].as_str().expect("job_id").to_owned()
    }

    /// `GET /api/v4/job/{id}` as JSON, asserting it exists.
    pub async fn job(&self, id: &str) -> Value {
        let response = self.get(&format!("/api/v4/job/{id}")).await;
        assert_eq!(response.status(), StatusCode::OK, "job {id}");
        response.json().await.expect("json")
    }

    /// Polls the job until it is completed or failed.
    pub async fn wait_until_finished(&self, id: &str) -> Value {
        super::eventually(&format!("job {id} did not finish"), || async {
            let job = self.job(id).await;
            matches!(job["status"].as_str(), Some("completed" | "failed")).then_some(job)
        })
        .await
    }

    /// `POST /api/v4/job/{id}/{action}`.
    pub async fn report(&self, id: &str, action: &str, body: &Value) -> Response {
        self.post(&format!("/api/v4/job/{id}/{action}"), body).await
    }
}

/// The ids of a listing page (`GET /api/v4/jobs`), in its order.
pub fn job_ids(page: &Value) -> Vec<String> {
    page["jobs"]
        .as_array()
        .expect("a listing has jobs")
        .iter()
        .map(|job| job["job_id"].as_str().expect("job_id").to_owned())
        .collect()
}

/// The `detail` of an error response, asserting its status.
pub async fn detail_of(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("error body is JSON");
    body["detail"]
        .as_str()
        .expect("detail is a string")
        .to_owned()
}
