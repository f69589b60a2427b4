//! One attempt of one delivery: a signed `POST` to the endpoint, refused when its address is not
//! public (unless allowed), never following a redirect, reading at most a little of the answer,
//! within `WEBHOOK_TIMEOUT_MS`.

use super::address::is_public;
use super::schedule::parse_retry_after;
use super::signing::Signer;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{StatusCode, Url, redirect};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest `webhook_url` accepted.
pub const MAX_URL_CHARS: usize = 2048;
/// How much of an endpoint's answer is read (the rest is dropped with the connection).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// `text` as an endpoint URL (`http` or `https`, with a host); why it cannot be one.
pub fn check_url(text: &str) -> Result<Url, String> {
    if text.chars().count() > MAX_URL_CHARS {
        return Err(format!(
            "webhook_url is longer than {MAX_URL_CHARS} characters"
        ));
    }
    let url = Url::parse(text).map_err(|error| format!("webhook_url is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err("webhook_url must be an http or https URL with a host".to_owned());
    }
    Ok(url)
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempted {
    /// The endpoint's status code, if it answered.
    pub status: Option<u16>,
    pub latency: Duration,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
    /// The endpoint's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
}

impl Attempted {
    /// Whether the endpoint took the event (a 2xx).
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    /// Whether the endpoint asked never to be sent this again (`410 Gone`).
    pub fn gone(&self) -> bool {
        self.status == Some(StatusCode::GONE.as_u16())
    }
}

/// Sends deliveries.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    signer: Signer,
    allow_private: bool,
}

impl Sender {
    pub fn new(signer: Signer, timeout: Duration, allow_private: bool) -> Self {
        // The TLS provider jobcast uses everywhere (startup installs it too; once is enough).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .dns_resolver(Arc::new(PublicOnly { allow_private }))
            .user_agent(concat!("jobcast/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the webhook client builds");
        Self {
            client,
            signer,
            allow_private,
        }
    }

    /// POSTs `body` to `url` as message `id`, signed now.
    pub async fn send(&self, url: &str, id: &str, body: &str) -> Attempted {
        let started = Instant::now();
        let result = self.try_send(url, id, body).await;
        let latency = started.elapsed();
        match result {
            Ok((status, retry_after)) => Attempted {
                status: Some(status.as_u16()),
                latency,
                error: (!status.is_success()).then(|| format!("the endpoint answered {status}")),
                retry_after,
            },
            Err(error) => Attempted {
                status: None,
                latency,
                error: Some(error),
                retry_after: None,
            },
        }
    }

    async fn try_send(
        &self,
        url: &str,
        id: &str,
        body: &str,
    ) -> Result<(StatusCode, Option<Duration>), String> {
        let url = check_url(url)?;
        if let Some(ip) = literal_ip(&url)
            && !self.allow_private
            && !is_public(ip)
        {
            return Err(format!("{ip} is not a public address"));
        }
        let timestamp = chrono::Utc::now().timestamp();
        let mut response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                self.signer.signature(id, timestamp, body),
            )
            .body(body.to_owned())
            .send()
            .await
            .map_err(describe)?;
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let mut read = 0;
        while read < MAX_RESPONSE_BYTES
            && let Ok(Some(chunk)) = response.chunk().await
        {
            read += chunk.len();
        }
        Ok((response.status(), retry_after))
    }
}

/// The host of `url` when it is an address rather than a name (names go through [`PublicOnly`]).
fn literal_ip(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// An error as one line: what went wrong at the bottom ("Connection refused", or why a name
/// was refused), or that the endpoint took too long.
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return "the endpoint did not answer in time".to_owned();
    }
    let mut innermost: &dyn std::error::Error = &error;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    innermost.to_string()
}

/// The system's resolver, keeping only public addresses: checked when the connection is made,
/// so a name that resolves elsewhere by then is refused too.
struct PublicOnly {
    allow_private: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if usable.is_empty() && !found.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(usable.into_iter()) as Addrs)
        })
    }
}
