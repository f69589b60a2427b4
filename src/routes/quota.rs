//! The per-client rate limits as extractors: a handler that takes one has counted the request
//! against its client's allowance, or the client got a 429 with `Retry-After`.

use crate::auth;
use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::rate_limit::Limit;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// A job creation within the client's `CREATE_RATE_PER_MIN`. A request with the admin's bearer
/// token is not counted: the operator's own scripts are not throttled.
pub struct CreateQuota;

impl FromRequestParts<AppState> for CreateQuota {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let admin = state
            .config
            .admin_token
            .as_ref()
            .is_some_and(|token| auth::bearer_matches(parts, token));
        if !admin {
            admit(parts, state, Limit::Create)?;
        }
        Ok(Self)
    }
}

/// A stream (SSE, WebSocket) opened within the client's `STREAM_RATE_PER_MIN`.
pub struct StreamQuota;

impl FromRequestParts<AppState> for StreamQuota {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        admit(parts, state, Limit::Stream).map(|()| Self)
    }
}

/// Counts the request against `limit` for its client.
pub fn admit(parts: &Parts, state: &AppState, limit: Limit) -> Result<(), ApiError> {
    let client = ClientAddr::of_request(parts, &state.config.trusted_proxies);
    Ok(state.limits.admit(limit, client.ip)?)
}

/// The request's client address, for a handler that counts it against a limit only sometimes.
pub struct Client(pub ClientAddr);

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(ClientAddr::of_request(
            parts,
            &state.config.trusted_proxies,
        )))
    }
}
