//! Who may call the admin and progress-reporting endpoints.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// Proof that the caller may administer jobs and report their progress: the right bearer token
/// when `ADMIN_TOKEN` is set, otherwise a connection from loopback.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match &state.config.admin_token {
            Some(token) => {
                let presented = parts
                    .headers
                    .get(AUTHORIZATION)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.strip_prefix("Bearer "))
                    .ok_or(ApiError::Unauthorized)?;
                let matches: bool = presented.as_bytes().ct_eq(token.expose().as_bytes()).into();
                matches.then_some(Admin).ok_or(ApiError::Unauthorized)
            }
            None => {
                let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
                let loopback = peer.is_some_and(|ConnectInfo(addr)| addr.ip().is_loopback());
                loopback.then_some(Admin).ok_or(ApiError::Forbidden)
            }
        }
    }
}
