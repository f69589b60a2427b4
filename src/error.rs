//! The one error type of the HTTP layer, mapped once to a status code and a `{"detail": ...}` body.

use crate::follow::FollowError;
use crate::job::{HistoryRecord, Rejection};
use crate::rate_limit::{Limit, Refused};
use crate::store::StoreError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What `Retry-After` tells a client refused because the work queue is full, in seconds.
pub const QUEUE_FULL_RETRY_AFTER_SECS: u64 = 5;

/// The body of every error answer: `{"detail": "..."}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Detail {
    /// What went wrong, for a person to read (a 5xx says no more than that it was the server).
    pub detail: String,
}

/// Everything a handler can fail with. 4xx details are shown to the client; 5xx causes are logged
/// and the client gets a generic message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Job not found")]
    JobNotFound,
    /// The job has expired, but its history record is still kept: answered 410 with it.
    #[error("Job expired: its record from the history is in `history`")]
    JobExpired(Box<HistoryRecord>),
    #[error("{detail}")]
    BadInput { status: StatusCode, detail: String },
    #[error("{0}")]
    Conflict(String),
    #[error("Not authenticated: send Authorization: Bearer <ADMIN_TOKEN>")]
    Unauthorized,
    #[error("Forbidden: this endpoint answers loopback clients only while ADMIN_TOKEN is unset")]
    Forbidden,
    /// A WebSocket upgrade from a browser page of an origin `CORS_ALLOWED_ORIGINS` does not list.
    #[error("Forbidden: this origin may not open a WebSocket here (see CORS_ALLOWED_ORIGINS)")]
    OriginNotAllowed,
    #[error("Not Found")]
    RouteNotFound,
    #[error("Method Not Allowed")]
    MethodNotAllowed,
    #[error("The job store is unavailable, try again shortly")]
    Unavailable(#[source] StoreError),
    #[error(
        "The job store is unavailable (Redis does not answer) and this instance has no copy of \
         this job; try again shortly"
    )]
    StoreUnreachable,
    #[error(
        "The job store is unavailable (Redis does not answer) and this instance's memory is full; \
         try again shortly"
    )]
    MemoryFull,
    /// A client over a per-client rate limit; answered with `Retry-After`.
    #[error("Too many {what} from this client: retry in {retry_after_secs} s")]
    RateLimited {
        what: &'static str,
        retry_after_secs: u64,
    },
    /// A stored record that cannot be read back (written by hand, by an older version, or damaged).
    #[error("This job's stored record is damaged and cannot be served")]
    CorruptJob(#[source] StoreError),
    /// `MAX_QUEUED_JOBS` jobs already wait; answered with `Retry-After`.
    #[error("The work queue is full ({cap} jobs waiting); try again later")]
    QueueFull { cap: u64 },
    /// A bug (a handler panicked); logged where it happened.
    #[error("Internal server error")]
    Internal,
}

/// What `Retry-After` tells a client of a `503`, in seconds: about how long an outage takes to
/// be noticed as over (the store retries Redis at least this often once it has failed for a while).
pub const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 5;

impl ApiError {
    /// A 422 for input that parsed but makes no sense.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::BadInput {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: detail.into(),
        }
    }

    /// A 400 for a request that cannot be read at all.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadInput {
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::JobNotFound | Self::RouteNotFound => StatusCode::NOT_FOUND,
            Self::BadInput { status, .. } => *status,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::JobExpired(_) => StatusCode::GONE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::OriginNotAllowed => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_)
            | Self::StoreUnreachable
            | Self::MemoryFull
            | Self::QueueFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::CorruptJob(_) | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::JobNotFound,
            StoreError::Rejected(rejection) => rejection.into(),
            StoreError::Unreachable => Self::StoreUnreachable,
            StoreError::Full => Self::MemoryFull,
            corrupt @ StoreError::Corrupt(_) => Self::CorruptJob(corrupt),
            other => Self::Unavailable(other),
        }
    }
}

impl From<FollowError> for ApiError {
    fn from(error: FollowError) -> Self {
        match error {
            FollowError::NotFound => Self::JobNotFound,
            FollowError::Store(error) => error.into(),
        }
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        let what = match refused.limit {
            Limit::Create => "jobs created",
            Limit::Stream => "streams opened",
        };
        Self::RateLimited {
            what,
            retry_after_secs: refused.retry_after_secs(),
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        Self::Conflict(format!("Illegal transition: {rejection}"))
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::BadInput {
            status: rejection.status(),
            detail: rejection.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}

impl ApiError {
    /// What `Retry-After` tells the client, for the errors that are worth retrying.
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Unavailable(_) | Self::StoreUnreachable | Self::MemoryFull => {
                Some(RETRY_AFTER_UNAVAILABLE_SECS)
            }
            Self::QueueFull { .. } => Some(QUEUE_FULL_RETRY_AFTER_SECS),
            Self::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

impl ApiError {
    /// Logs the error with its causes if it is the server's (a 5xx); the client only ever gets
    /// its `detail`.
    pub fn log_if_server_error(&self) {
        if self.status_code().is_server_error() {
            tracing::error!(error = %self, cause = %cause_chain(self), "request failed");
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        self.log_if_server_error();
        let body = Json(Detail {
            detail: self.to_string(),
        });
        if let Some(secs) = self.retry_after_secs() {
            return (status, [(header::RETRY_AFTER, secs.to_string())], body).into_response();
        }
        match self {
            Self::Unauthorized => {
                (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
            }
            Self::JobExpired(record) => {
                let body = serde_json::json!({"detail": body.0.detail, "history": record});
                (status, Json(body)).into_response()
            }
            _ => (status, body).into_response(),
        }
    }
}

/// The error's causes, outermost first, joined with `: `.
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut chain = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain.join(": ")
}
