//! A webhook receiver on loopback: it records every request it gets and answers with the
//! statuses it is told to, in turn, like an endpoint that fails a few times and then recovers.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

/// What the receiver answers to one request.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct Inbox {
    received: Vec<Received>,
    /// Answers still to give, in order; 200 once they are used up.
    script: VecDeque<Answer>,
    /// While set, every request is answered with this status (the endpoint is down).
    down: Option<StatusCode>,
    /// How long every answer takes, besides its own delay.
    delay: Duration,
    /// Requests being answered now, by `webhook-id`, and the most there ever were of one id.
    in_flight: HashMap<String, usize>,
    most_at_once: usize,
}

/// The receiver; it stops when dropped.
pub struct Receiver {
    pub port: u16,
    inbox: Arc<Mutex<Inbox>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// A receiver that answers `script` in turn, then 200.
    pub async fn start(script: Vec<Answer>) -> Self {
        let inbox = Arc::new(Mutex::new(Inbox {
            received: Vec::new(),
            script: script.into(),
            down: None,
            delay: Duration::ZERO,
            in_flight: HashMap::new(),
            most_at_once: 0,
        }));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            port,
            inbox,
            server,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answers every request with `status` until [`Receiver::up`].
    pub fn down(&self, status: u16) {
        self.inbox.lock().unwrap().down = Some(StatusCode::from_u16(status).unwrap());
    }

    /// Answers as scripted again.
    pub fn up(&self) {
        self.inbox.lock().unwrap().down = None;
    }

    /// Takes `delay` over every answer.
    pub fn delay_every(&self, delay: Duration) {
        self.inbox.lock().unwrap().delay = delay;
    }

    /// The most requests with one `webhook-id` it was answering at once.
    pub fn most_at_once_per_id(&self) -> usize {
        self.inbox.lock().unwrap().most_at_once
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().received.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = headers
        .get("webhook-id")
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (answer, delay) = {
        let mut inbox = inbox.lock().unwrap();
        inbox.received.push(Received {
            path: uri.path().to_owned(),
            headers,
            body,
            at: Instant::now(),
        });
        let at_once = inbox.in_flight.entry(id.clone()).or_default();
        *at_once += 1;
        let at_once = *at_once;
        inbox.most_at_once = inbox.most_at_once.max(at_once);
        let answer = match inbox.down {
            Some(status) => Answer::status(status.as_u16()),
            None => inbox
                .script
                .pop_front()
                .unwrap_or_else(|| Answer::status(200)),
        };
        let delay = inbox.delay;
        (answer, delay)
    };
    tokio::time::sleep(answer.delay + delay).await;
    *inbox.lock().unwrap().in_flight.entry(id).or_default() -= 1;
    let mut response = answer.status.into_response();
    for (name, value) in answer.headers {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_str(&value).unwrap());
    }
    response
}
