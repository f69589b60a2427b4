//! Recognising, from a connection's first bytes, a request this server answers straight from
//! the socket: `GET /api/v4/job/{uuid}/events` or a WebSocket upgrade of
//! `GET /api/v4/job/{uuid}/ws`, over HTTP/1.1.
//!
//! Anything else, or anything unusual about such a request, is left to axum, which answers it
//! with the same semantics and its full error handling.

use crate::client_addr::Forwarding;
use crate::follow;
use crate::job::JobId;
use crate::request_id::RequestId;

/// The most headers a request the sniffer takes may carry.
pub const SNIFF_MAX_HEADERS: usize = 32;

/// A request that can be served directly.
#[derive(Debug, PartialEq, Eq)]
pub enum Direct {
    Events(EventsRequest),
    WebSocket(WebSocketRequest),
}

/// A request for a job's events.
#[derive(Debug, PartialEq, Eq)]
pub struct EventsRequest {
    pub job_id: JobId,
    /// From `Last-Event-ID`, else from `?last_event_id=`.
    pub resume_from: Option<u64>,
    /// The forwarding headers, for the client's address.
    pub forwarding: Forwarding,
    /// `Origin`, for the CORS headers of the answer.
    pub origin: Option<String>,
    /// The client's `x-request-id` when usable, else a new one.
    pub request_id: RequestId,
}

/// A WebSocket upgrade for a job's changes.
#[derive(Debug, PartialEq, Eq)]
pub struct WebSocketRequest {
    pub job_id: JobId,
    /// From `?last_seq=`.
    pub resume_from: Option<u64>,
    /// `Sec-WebSocket-Key`, for the handshake's answer.
    pub key: String,
    /// The forwarding headers, for the client's address.
    pub forwarding: Forwarding,
    /// `Origin` and `Host`, for the cross-origin check.
    pub origin: Option<String>,
    pub host: Option<String>,
    /// The client's `x-request-id` when usable, else a new one.
    pub request_id: RequestId,
}

/// `Some` when `head` holds a whole request that can be served directly.
pub fn sniff(head: &[u8]) -> Option<Direct> {
    let mut headers = [httparse::EMPTY_HEADER; SNIFF_MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(_) = request.parse(head).ok()? else {
        return None;
    };
    if request.method? != "GET" || request.version? != 1 {
        return None;
    }
    let (path, query) = match request.path?.split_once('?') {
        Some((path, query)) => (path, query),
        None => (request.path?, ""),
    };
    let (job_id, stream) = path.strip_prefix("/api/v4/job/")?.split_once('/')?;
    let job_id = job_id.parse().ok()?;
    let header = |name: &str| {
        let mut values = request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name));
        values.next().map(|h| visible_ascii(h.value))
    };
    if header("expect").is_some() {
        return None;
    }
    let forwarding = Forwarding::from_pairs(request.headers.iter().map(|h| (h.name, h.value)));
    match stream {
        "events" if header("upgrade").is_none() => {
            events_request(job_id, &header, query, forwarding)
        }
        "ws" => websocket_request(job_id, &header, query, forwarding),
        _ => None,
    }
}

/// The first header of a name, and its value if it is visible ASCII.
type Header<'a> = dyn Fn(&str) -> Option<Option<String>> + 'a;

/// A request for `job_id`'s events, resuming where `Last-Event-ID` (or `?last_event_id=`) says.
fn events_request(
    job_id: JobId,
    header: &Header<'_>,
    query: &str,
    forwarding: Forwarding,
) -> Option<Direct> {
    // As the axum route reads it: the first header, if it is visible ASCII.
    let last_event_id = match header("last-event-id").flatten() {
        Some(header) => Some(header),
        None => single_query_value(query, "last_event_id").ok()?,
    };
    Some(Direct::Events(EventsRequest {
        job_id,
        resume_from: follow::resume_point(last_event_id.as_deref()),
        forwarding,
        origin: present(header("origin"))?,
        request_id: request_id(header),
    }))
}

/// A WebSocket upgrade for `job_id`'s changes, if the head is a complete and valid one.
fn websocket_request(
    job_id: JobId,
    header: &Header<'_>,
    query: &str,
    forwarding: Forwarding,
) -> Option<Direct> {
    let upgrade = header("upgrade").flatten()?;
    let connection = header("connection").flatten()?;
    let version = header("sec-websocket-version").flatten()?;
    let key = header("sec-websocket-key").flatten()?;
    let upgrades = connection
        .split(',')
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if !upgrade.eq_ignore_ascii_case("websocket") || !upgrades || version.trim() != "13" {
        return None;
    }
    let last_seq = single_query_value(query, "last_seq").ok()?;
    Some(Direct::WebSocket(WebSocketRequest {
        job_id,
        resume_from: follow::resume_point(last_seq.as_deref()),
        key: key.trim().to_owned(),
        forwarding,
        origin: present(header("origin"))?,
        host: present(header("host"))?,
        request_id: request_id(header),
    }))
}

/// The client's `x-request-id` when usable, else a new one.
fn request_id(header: &Header<'_>) -> RequestId {
    let sent = header("x-request-id").flatten();
    RequestId::from_client(sent.as_deref().map(str::as_bytes))
}

/// An optional header's value (`Some(None)` when absent); `None` when it is not visible ASCII,
/// which is left to axum.
fn present(header: Option<Option<String>>) -> Option<Option<String>> {
    match header {
        None => Some(None),
        Some(value) => value.map(Some),
    }
}

/// The value of query parameter `name`, if present; `Err` when it is repeated (axum answers that).
fn single_query_value(query: &str, name: &str) -> Result<Option<String>, ()> {
    let mut found = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if key == name {
            if found.is_some() {
                return Err(());
            }
            found = Some(value.into_owned());
        }
    }
    Ok(found)
}

/// `value` as text when it is visible ASCII (what `HeaderValue::to_str` accepts).
fn visible_ascii(value: &[u8]) -> Option<String> {
    let visible = value.iter().all(|&b| b == b'\t' || (32..127).contains(&b));
    visible.then(|| String::from_utf8_lossy(value).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "7f0c3f5e-8d1a-4c52-9a47-2f4b1b6d9e10";

    fn sniff(head: &str) -> Option<EventsRequest> {
        match super::sniff(head.as_bytes()) {
            Some(Direct::Events(request)) => Some(request),
            _ => None,
        }
    }

    fn sniff_websocket(head: &str) -> Option<WebSocketRequest> {
        match super::sniff(head.as_bytes()) {
            Some(Direct::WebSocket(request)) => Some(request),
            _ => None,
        }
    }

    #[test]
    fn a_websocket_upgrade_is_taken_with_its_key_and_resume_point() {
        let upgrade = "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let request = sniff_websocket(&format!(
            "GET /api/v4/job/{ID}/ws?last_seq=4 HTTP/1.1\r\nHost: x\r\n{upgrade}\r\n"
        ))
        .unwrap();
        assert_eq!(request.resume_from, Some(4));
        assert_eq!(request.key, "dGhlIHNhbXBsZSBub25jZQ==");
        for declined in [
            format!("GET /api/v4/job/{ID}/ws HTTP/1.1\r\nHost: x\r\n\r\n"),
            format!(
                "GET /api/v4/job/{ID}/ws HTTP/1.1\r\n{}\r\n",
                upgrade.replace("13", "8")
            ),
            format!("GET /api/v4/job/{ID}/ws?last_seq=1&last_seq=2 HTTP/1.1\r\n{upgrade}\r\n"),
        ] {
            assert_eq!(sniff_websocket(&declined), None, "{declined:?}");
        }
    }

    #[test]
    fn an_events_request_is_taken_with_its_resume_point_from_the_header_or_the_query() {
        let plain = sniff(&format!(
            "GET /api/v4/job/{ID}/events HTTP/1.1\r\nHost: x\r\n\r\n"
        ));
        assert_eq!(plain.unwrap().job_id.to_string(), ID);
        let header = format!(
            "GET /api/v4/job/{ID}/events?last_event_id=3 HTTP/1.1\r\nLast-Event-ID: 7\r\n\r\n"
        );
        assert_eq!(sniff(&header).unwrap().resume_from, Some(7));
        let query = format!("GET /api/v4/job/{ID}/events?x=1&last_event_id=%35 HTTP/1.1\r\n\r\n");
        assert_eq!(sniff(&query).unwrap().resume_from, Some(5));
        let garbage = format!("GET /api/v4/job/{ID}/events?last_event_id=abc HTTP/1.1\r\n\r\n");
        assert_eq!(sniff(&garbage).unwrap().resume_from, None);
        let first = format!(
            "GET /api/v4/job/{ID}/events HTTP/1.1\r\nLast-Event-ID: 2\r\nLast-Event-ID: 9\r\n\r\n"
        );
        assert_eq!(sniff(&first).unwrap().resume_from, Some(2));
        let not_ascii = format!(
            "GET /api/v4/job/{ID}/events?last_event_id=4 HTTP/1.1\r\nLast-Event-ID: 5\u{e9}\r\n\r\n"
        );
        assert_eq!(sniff(&not_ascii).unwrap().resume_from, Some(4));
    }

    #[test]
    fn everything_else_is_left_to_axum() {
        for head in [
            format!("GET /api/v4/job/{ID} HTTP/1.1\r\n\r\n"),
            format!("POST /api/v4/job/{ID}/events HTTP/1.1\r\n\r\n"),
            format!("HEAD /api/v4/job/{ID}/events HTTP/1.1\r\n\r\n"),
            format!("GET /api/v4/job/{ID}/events HTTP/1.0\r\n\r\n"),
            format!("GET /api/v4/job/{ID}/events HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"),
            format!("GET /api/v4/job/{ID}/events HTTP/1.1\r\nHost: x\r\n"), // incomplete
            "GET /api/v4/job/not-a-uuid/events HTTP/1.1\r\n\r\n".to_owned(),
            format!("GET /api/v4/job/{ID}/events?last_event_id=1&last_event_id=2 HTTP/1.1\r\n\r\n"),
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_owned(),
        ] {
            assert_eq!(sniff(&head), None, "{head:?}");
        }
    }
}
