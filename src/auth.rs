//! Who may call the admin and progress-reporting endpoints.
//!
//! With `ADMIN_TOKEN` set: `Authorization: Bearer <token>` (the scheme in any case, RFC 9110), or
//! the session cookie that `POST /api/v4/session` sets in exchange for it (browsers' EventSource
//! cannot send headers). The cookie is `<id>.<expiry>.<HMAC of both, keyed by the token>`: any
//! instance can check it, changing the token ends every session, and signing out puts its id on
//! the store's revocation list until it would have expired. Without a token, these endpoints
//! answer loopback clients only — never a request forwarded by a proxy (see
//! [`crate::client_addr`]).

use crate::client_addr::ClientAddr;
use crate::config::Secret;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "jobcast_session";

/// Proof that the caller may administer jobs and report their progress.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = &state.config.admin_token else {
            let client = ClientAddr::of_request(parts, &state.config.trusted_proxies);
            return client
                .is_loopback()
                .then_some(Admin)
                .ok_or(ApiError::Forbidden);
        };
        if bearer_matches(parts, token) {
            return Ok(Admin);
        }
        let Some(session) = presented_session(&parts.headers, token) else {
            return Err(ApiError::Unauthorized);
        };
        match state.store.is_session_revoked(&session.id).await? {
            true => Err(ApiError::Unauthorized),
            false => Ok(Admin),
        }
    }
}

/// Whether the request carries `Authorization: Bearer <token>` (compared in constant time).
pub fn bearer_matches(parts: &Parts, token: &Secret) -> bool {
    bearer(&parts.headers)
        .is_some_and(|presented| presented.as_bytes().ct_eq(token.expose().as_bytes()).into())
}

/// The credentials of `Authorization: Bearer <credentials>` (the scheme in any case).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim_start_matches(' '))
}

/// A session cookie whose signature and expiry hold.
#[derive(Debug, PartialEq, Eq)]
pub struct Session {
    /// Random, unique per sign-in: what a sign-out revokes.
    pub id: String,
    /// Seconds since the epoch.
    pub expires: u64,
}

impl Session {
    /// How long the session has left: how long its revocation must be remembered.
    pub fn remaining(&self) -> Duration {
        Duration::from_secs(self.expires.saturating_sub(now_secs()))
    }
}

/// The request's session cookie, if one is valid for `token` (revocation is not checked here).
pub fn presented_session(headers: &HeaderMap, token: &Secret) -> Option<Session> {
    let cookies = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok());
    let mut sessions = cookies
        .flat_map(|header| header.split(';'))
        .filter_map(|cookie| {
            cookie
                .trim()
                .strip_prefix(SESSION_COOKIE)?
                .strip_prefix('=')
        });
    sessions.find_map(|value| verify_session(value, token, now_secs()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn signature(token: &Secret, id: &str, expires: u64) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.expose().as_bytes()).expect("any key length");
    mac.update(format!("jobcast-session:{id}:{expires}").as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A new session value valid for `ttl_secs`: `<id>.<expiry>.<hex HMAC>`.
pub fn new_session(token: &Secret, ttl_secs: u64) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let expires = now_secs() + ttl_secs;
    let hex: String = signature(token, &id, expires)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{id}.{expires}.{hex}")
}

fn verify_session(value: &str, token: &Secret, now: u64) -> Option<Session> {
    let mut fields = value.splitn(3, '.');
    let (id, expires, hex) = (fields.next()?, fields.next()?, fields.next()?);
    let expires = expires.parse::<u64>().ok()?;
    let presented: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect();
    let expected = signature(token, id, expires);
    let genuine = bool::from(presented?.ct_eq(&expected));
    (genuine && expires > now).then(|| Session {
        id: id.to_owned(),
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_valid_until_it_expires_and_only_for_its_token_and_id() {
        let token = Secret::parse("admin-token").unwrap();
        let session = new_session(&token, 60);
        let valid = verify_session(&session, &token, now_secs()).unwrap();
        assert_eq!(valid.id.len(), 32);
        assert!(verify_session(&session, &token, now_secs() + 61).is_none());
        let other = Secret::parse("other").unwrap();
        assert!(verify_session(&session, &other, now_secs()).is_none());
        let (id, rest) = session.split_once('.').unwrap();
        let (expires, mac) = rest.split_once('.').unwrap();
        let extended = format!("{id}.{}.{mac}", expires.parse::<u64>().unwrap() + 3600);
        assert!(verify_session(&extended, &token, now_secs()).is_none());
        let renamed = format!("{}.{expires}.{mac}", "0".repeat(32));
        assert!(verify_session(&renamed, &token, now_secs()).is_none());
        assert!(verify_session("garbage", &token, now_secs()).is_none());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let token = Secret::parse("t0ken").unwrap();
        for (header, admitted) in [
            ("Bearer t0ken", true),
            ("bearer t0ken", true),
            ("BEARER  t0ken", true),
            ("Basic t0ken", false),
            ("Bearer t0ke", false),
            ("Bearert0ken", false),
        ] {
            let request = axum::http::Request::builder()
                .header(AUTHORIZATION, header)
                .body(())
                .unwrap();
            let (parts, ()) = request.into_parts();
            assert_eq!(bearer_matches(&parts, &token), admitted, "{header}");
        }
    }
}
