//! `x-request-id`: every response carries one — the client's when it sent a usable one, else a
//! new one — and every log line of the request has it in its `request` span.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Request};
use tower_http::request_id::{self, MakeRequestId};
use tracing::Span;

/// The header that carries a request's id, both ways.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// The longest id taken from a client; a longer one (or one with other characters than
/// [`is_usable`] allows) is replaced, so that a client cannot write what it likes into the logs.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// A request's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// The client's id when `sent` is usable, else a new one.
    pub fn from_client(sent: Option<&[u8]>) -> Self {
        match sent.and_then(|sent| HeaderValue::from_bytes(sent).ok()) {
            Some(sent) if is_usable(sent.as_bytes()) => Self(sent),
            _ => Self::new(),
        }
    }

    /// A new random id, formatted as a UUID (random, not secret: it only has to be unique).
    pub fn new() -> Self {
        let uuid = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
        let text = uuid
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .to_owned();
        Self(HeaderValue::try_from(text).expect("a UUID is a valid header value"))
    }

    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("a usable id is visible ASCII")
    }

    /// `headers` with this id added, for a response written by hand.
    pub fn add_to(&self, headers: &mut HeaderMap) {
        headers.insert(REQUEST_ID_HEADER, self.0.clone());
    }

    /// The span every log line of this request is written in.
    pub fn span(&self) -> Span {
        request_span(self.as_str())
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a client's id can be kept: 1 to [`MAX_REQUEST_ID_CHARS`] characters from
/// `A–Z a–z 0–9 - _ . : / + =` (UUIDs, ULIDs, W3C trace ids, base64 all fit).
pub fn is_usable(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

/// Drops a client's unusable `x-request-id` before tower-http's `SetRequestId` (which keeps any
/// id a request carries) gives the request a new one.
pub async fn drop_unusable(mut request: axum::extract::Request) -> axum::extract::Request {
    let unusable = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .is_some_and(|id| !is_usable(id.as_bytes()));
    if unusable {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    request
}

/// tower-http's source of new ids for the axum routes.
#[derive(Clone, Copy, Default)]
pub struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<request_id::RequestId> {
        Some(request_id::RequestId::new(RequestId::new().0))
    }
}

/// The `request` span of an axum request (`SetRequestId` has given it its id by then).
pub fn span_for<B>(request: &Request<B>) -> Span {
    let id = request.headers().get(REQUEST_ID_HEADER);
    let id = id.and_then(|id| id.to_str().ok()).unwrap_or_default();
    let span = request_span(id);
    if tracing::enabled!(tracing::Level::DEBUG) {
        span.record("method", request.method().as_str());
        span.record("path", request.uri().path());
    }
    span
}

/// The id, and the method and path only when debugging: a span's fields are formatted as they
/// are recorded, which at the default `info` happens on every request.
fn request_span(request_id: &str) -> Span {
    use tracing::field::Empty;
    tracing::info_span!("request", request_id, method = Empty, path = Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usable_client_id_is_kept_and_anything_else_is_replaced_by_a_uuid() {
        let kept = RequestId::from_client(Some(b"trace-01HZX:4bf92f/3577b34d+a="));
        assert_eq!(kept.as_str(), "trace-01HZX:4bf92f/3577b34d+a=");
        let too_long = vec![b'a'; MAX_REQUEST_ID_CHARS + 1];
        let at_limit = vec![b'a'; MAX_REQUEST_ID_CHARS];
        assert_eq!(
            RequestId::from_client(Some(&at_limit)).as_str().len(),
            MAX_REQUEST_ID_CHARS
        );
        for unusable in [
            &b""[..],
            b"two words",
            b"<script>",
            b"caf\xc3\xa9",
            &too_long,
        ] {
            let replaced = RequestId::from_client(Some(unusable));
            assert!(
                uuid::Uuid::parse_str(replaced.as_str()).is_ok(),
                "{unusable:?}"
            );
        }
        assert_ne!(RequestId::new(), RequestId::new());
    }
}
