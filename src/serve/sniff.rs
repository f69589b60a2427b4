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
        if header.name.eq_ignore_ascii_case("last-event-id") {
            last_event_id = Some(std::str::from_utf8(header.value).ok()?.to_owned());
        }
    }
    if last_event_id.is_none() {
        last_event_id = query.and_then(|query| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "last_event_id")
                .map(|(_, value)| value.into_owned())
        });
    }
    Some(EventsRequest {
        job_id,
        resume_from: watch::resume_point(last_event_id.as_deref()),
    })
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
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_owned(),
        ] {
            assert_eq!(sniff(&head), None, "{head:?}");
        }
    }
}
