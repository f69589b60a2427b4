//! Request extractors whose rejections use our `{"detail": ...}` shape.

use crate::error::ApiError;
use crate::job::JobId;
use axum::extract::{FromRequest, FromRequestParts, Path};
use axum::http::request::Parts;

/// `axum::Json`, answering malformed, mistyped or oversized bodies with `{"detail": ...}`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` with our error shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The `{job_id}` path segment, which must be a UUID.
pub struct JobIdPath(pub JobId);

impl<S: Send + Sync> FromRequestParts<S> for JobIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        job_id_of(&raw).map(Self)
    }
}

/// A `job_id` path segment, or the 400 that explains it.
pub fn job_id_of(raw: &str) -> Result<JobId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("Invalid job_id {raw:?}: expected a UUID")))
}
