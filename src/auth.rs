//! Who may call the admin and progress-reporting endpoints.
//!
//! With `ADMIN_TOKEN` set: `Authorization: Bearer <token>`, or the session cookie that
//! `POST /api/v4/session` sets in exchange for it (browsers' EventSource cannot send headers).
//! The cookie holds an expiry and an HMAC of it keyed by the token: nothing is stored server-side,
//! any instance can check it, and changing the token ends every session. Without a token, these
//! endpoints answer loopback clients only.

use crate::config::Secret;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "jobcast_session";

/// Proof that the caller may administer jobs and report their progress.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match &state.config.admin_token {
            Some(token) if bearer_matches(parts, token) || session_valid(parts, token) => Ok(Admin),
            Some(_) => Err(ApiError::Unauthorized),
            None => {
                let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
                let loopback = peer.is_some_and(|ConnectInfo(addr)| addr.ip().is_loopback());
                loopback.then_some(Admin).ok_or(ApiError::Forbidden)
            }
        }
    }
}

/// Whether the request carries `Authorization: Bearer <token>` (compared in constant time).
pub fn bearer_matches(parts: &Parts, token: &Secret) -> bool {
    let presented = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    presented.is_some_and(|presented| presented.as_bytes().ct_eq(token.expose().as_bytes()).into())
}

fn session_valid(parts: &Parts, token: &Secret) -> bool {
    let cookies = parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok());
    let session = cookies
        .flat_map(|header| header.split(';'))
        .filter_map(|cookie| {
            cookie
                .trim()
                .strip_prefix(SESSION_COOKIE)?
                .strip_prefix('=')
        })
        .next();
    session.is_some_and(|value| verify_session(value, token, now_secs()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn signature(token: &Secret, expires: u64) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.expose().as_bytes()).expect("any key length");
    mac.update(format!("jobcast-session:{expires}").as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A session value valid for `ttl_secs`: `<expiry>.<hex HMAC>`.
pub fn new_session(token: &Secret, ttl_secs: u64) -> String {
    let expires = now_secs() + ttl_secs;
    let hex: String = signature(token, expires)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{expires}.{hex}")
}

fn verify_session(value: &str, token: &Secret, now: u64) -> bool {
    let Some((expires, hex)) = value.split_once('.') else {
        return false;
    };
    let Ok(expires) = expires.parse::<u64>() else {
        return false;
    };
    let presented: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect();
    let Some(presented) = presented else {
        return false;
    };
    let expected = signature(token, expires);
    expires > now && bool::from(presented.ct_eq(&expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_valid_until_it_expires_and_only_for_its_token() {
        let token = Secret::parse("admin-token").unwrap();
        let session = new_session(&token, 60);
        assert!(verify_session(&session, &token, now_secs()));
        assert!(!verify_session(&session, &token, now_secs() + 61));
        assert!(!verify_session(
            &session,
            &Secret::parse("other").unwrap(),
            now_secs()
        ));
        let (expires, mac) = session.split_once('.').unwrap();
        let extended = format!("{}.{mac}", expires.parse::<u64>().unwrap() + 3600);
        assert!(!verify_session(&extended, &token, now_secs()));
        assert!(!verify_session("garbage", &token, now_secs()));
    }
}
