//! Which browser origins may read this server's answers (`CORS_ALLOWED_ORIGINS`): one policy
//! for the axum routes (tower-http's `CorsLayer`), the direct event streams and both WebSocket
//! paths' `Origin` checks.

use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_ORIGIN, AUTHORIZATION, CONTENT_TYPE,
    HeaderName, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight's answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);
/// The methods a public (`*`) policy lets any origin use: reads only.
const PUBLIC_METHODS: [Method; 2] = [Method::GET, Method::HEAD];
/// The methods a listed origin may use.
const LISTED_METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];
/// The request headers a cross-origin client may send.
const ALLOWED_HEADERS: [HeaderName; 3] = [
    AUTHORIZATION,
    CONTENT_TYPE,
    HeaderName::from_static("last-event-id"),
];

/// The origins allowed to read this server's answers from a browser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Unset: same origin only, no CORS headers at all.
    #[default]
    SameOrigin,
    /// `*`: any origin may read (the public read endpoints), without credentials.
    Any,
    /// These exact origins (`scheme://host[:port]`), with credentials.
    Listed(Vec<String>),
}

impl CorsOrigins {
    /// Parses a comma-separated list of origins, or `*` on its own; empty is [`Self::SameOrigin`].
    pub fn parse(value: &str) -> Result<Self, String> {
        let entries: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect();
        match entries.as_slice() {
            [] => Ok(Self::SameOrigin),
            ["*"] => Ok(Self::Any),
            _ if entries.contains(&"*") => Err("`*` must stand alone".into()),
            _ => entries
                .iter()
                .map(|entry| parse_origin(entry))
                .collect::<Result<_, _>>()
                .map(Self::Listed),
        }
    }

    /// Whether a browser page of `origin` may read the answers.
    pub fn allows(&self, origin: &[u8]) -> bool {
        match self {
            Self::SameOrigin => false,
            Self::Any => true,
            Self::Listed(origins) => origins.iter().any(|allowed| allowed.as_bytes() == origin),
        }
    }

    /// Whether a WebSocket upgrade with this `Origin` (and `Host`) may proceed: no `Origin` (not
    /// a browser), the server's own origin, or an allowed one.
    pub fn allows_websocket(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let own = host.is_some_and(|host| {
            origin.strip_prefix("http://") == Some(host)
                || origin.strip_prefix("https://") == Some(host)
        });
        own || self.allows(origin.as_bytes())
    }

    /// The headers an answer to a (non-preflight) request from `origin` carries.
    pub fn response_headers(&self, origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if matches!(self, Self::SameOrigin) {
            return headers;
        }
        headers.insert(VARY, HeaderValue::from_static("origin"));
        let Some(origin) = origin.filter(|origin| self.allows(origin.as_bytes())) else {
            return headers;
        };
        if let Self::Any = self {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else if let Ok(value) = HeaderValue::from_str(origin) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        headers
    }

    /// The layer answering preflights and adding the headers on the axum routes; `None` when
    /// only the same origin is served.
    pub fn layer(&self) -> Option<CorsLayer> {
        let layer = CorsLayer::new()
            .allow_headers(ALLOWED_HEADERS)
            .max_age(PREFLIGHT_MAX_AGE);
        match self {
            Self::SameOrigin => None,
            Self::Any => Some(
                layer
                    .allow_origin(AllowOrigin::any())
                    .allow_methods(PUBLIC_METHODS),
            ),
            Self::Listed(_) => {
                let policy = self.clone();
                let allowed =
                    AllowOrigin::predicate(move |origin, _| policy.allows(origin.as_bytes()));
                Some(
                    layer
                        .allow_origin(allowed)
                        .allow_methods(LISTED_METHODS)
                        .allow_credentials(true),
                )
            }
        }
    }
}

/// `entry` when it is an origin as browsers send it: `http(s)://host[:port]`, nothing after.
fn parse_origin(entry: &str) -> Result<String, String> {
    let invalid = || format!("{entry:?} is not an origin (scheme://host[:port])");
    let (scheme, authority) = entry.split_once("://").ok_or_else(invalid)?;
    if !matches!(scheme, "http" | "https") || authority.is_empty() {
        return Err(invalid());
    }
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (address, after) = bracketed.split_once(']').ok_or_else(invalid)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or_else(invalid)?),
            };
            (address.parse::<std::net::Ipv6Addr>().is_ok(), port)
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            let name = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
            (!host.is_empty() && host.bytes().all(name), port)
        }
    };
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok());
    if !host_ok || !port_ok || HeaderValue::from_str(entry).is_err() {
        return Err(invalid());
    }
    Ok(entry.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_parsed_and_bad_ones_refused() {
        assert_eq!(CorsOrigins::parse(""), Ok(CorsOrigins::SameOrigin));
        assert_eq!(CorsOrigins::parse("*"), Ok(CorsOrigins::Any));
        let listed =
            CorsOrigins::parse("https://dash.example, http://127.0.0.1:8081, http://[::1]")
                .unwrap();
        assert!(listed.allows(b"http://[::1]"));
        assert!(CorsOrigins::parse("http://[::1]:8080").is_ok());
        assert!(listed.allows(b"https://dash.example"));
        assert!(listed.allows(b"http://127.0.0.1:8081"));
        assert!(!listed.allows(b"http://127.0.0.1:8082"));
        for bad in [
            "dash.example",
            "ftp://x",
            "https://",
            "https://x/path",
            "https://x:99999",
            "*,https://x",
            "http://[::1",
            "http://a:1:2",
        ] {
            assert!(CorsOrigins::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_websocket_from_its_own_origin_or_no_browser_is_allowed() {
        let policy = CorsOrigins::SameOrigin;
        assert!(policy.allows_websocket(None, Some("h:1")));
        assert!(policy.allows_websocket(Some("http://h:1"), Some("h:1")));
        assert!(policy.allows_websocket(Some("https://h:1"), Some("h:1")));
        assert!(!policy.allows_websocket(Some("http://evil:1"), Some("h:1")));
    }
}
