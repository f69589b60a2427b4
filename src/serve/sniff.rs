//! Recognising, from a connection's first bytes, a request this server answers straight from
//! the socket: `GET /api/v4/job/{uuid}/events` over HTTP/1.1.
//!
//! Anything else, or anything unusual about such a request, is left to axum, which answers it
//! with the same semantics and its full error handling.

use crate::job::JobId;
use crate::watch;

/// The most headers a request the sniffer takes may carry.
pub const SNIFF_MAX_HEADERS: usize = 32;

/// A request for a job's events that can be served directly.
#[derive(Debug, PartialEq, Eq)]
pub struct EventsRequest {
    pub job_id: JobId,
    /// From `Last-Event-ID`, else from `?last_event_id=`.
    pub resume_from: Option<u64>,
}

/// `Some` when `head` holds a whole request for a job's events that needs nothing from axum.
pub fn events_request(head: &[u8]) -> Option<EventsRequest> {
    let mut headers = [httparse::EMPTY_HEADER; SNIFF_MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(_) = request.parse(head).ok()? else {
        return None;
    };
    if request.method? != "GET" || request.version? != 1 {
        return None;
    }
    let (path, query) = match request.path?.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (request.path?, None),
    };
    let job_id = path
        .strip_prefix("/api/v4/job/")?
        .strip_suffix("/events")?
        .parse()
        .ok()?;
    let mut last_event_id = None;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("upgrade") || header.name.eq_ignore_ascii_case("expect")
        {
            return None;
        }
        if header.name.eq_ignore_ascii_case("last-event-id") && last_event_id.is_none() {
            // As the axum route reads it: the first one, if it is visible ASCII.
            last_event_id = Some(visible_ascii(header.value));
        }
    }
    let mut from_query = None;
    if let Some(query) = query {
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if name == "last_event_id" {
                if from_query.is_some() {
                    return None; // a repeated parameter: axum answers it
                }
                from_query = Some(value.into_owned());
            }
        }
    }
    let last_event_id = last_event_id.flatten().or(from_query);
    Some(EventsRequest {
        job_id,
        resume_from: watch::resume_point(last_event_id.as_deref()),
    })
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
        events_request(head.as_bytes())
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
            format!("GET /api/v4/job/{ID}/ws HTTP/1.1\r\n\r\n"),
            format!("GET /api/v4/job/{ID}/events?last_event_id=1&last_event_id=2 HTTP/1.1\r\n\r\n"),
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_owned(),
        ] {
            assert_eq!(sniff(&head), None, "{head:?}");
        }
    }
}
