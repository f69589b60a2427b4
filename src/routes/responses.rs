//! The error answers of each operation, for the API document: every one is `{"detail": ...}`
//! (`ApiError`'s `Detail`), with the status `ApiError::status_code` gives its cause.

use crate::error::Detail;
use std::collections::BTreeMap;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

/// A status and why an operation answers it.
pub type Cause = (u16, &'static str);

/// What the [`crate::auth::Admin`] extractor refuses.
pub const ADMIN: &[Cause] = &[
    (
        401,
        "`ADMIN_TOKEN` is set and the request carries neither `Authorization: Bearer <ADMIN_TOKEN>` \
         nor a valid session cookie (answered with `WWW-Authenticate: Bearer`).",
    ),
    (
        403,
        "`ADMIN_TOKEN` is unset and the client is not on loopback (or came through a proxy).",
    ),
];

/// Who may cancel a job: the admin, or the holder of the job's control token.
pub const ADMIN_OR_CONTROL_TOKEN: &[Cause] = &[
    (
        401,
        "`ADMIN_TOKEN` is set and the request carries neither `Authorization: Bearer <the job's \
         control_token>`, nor the admin's token, nor a valid session cookie.",
    ),
    (
        403,
        "`ADMIN_TOKEN` is unset, the request carries no valid control token, and the client is \
         not on loopback.",
    ),
];

/// Who may ask the public create endpoint for a `priority` above the default: the admin.
pub const PRIORITY_RIGHTS: &[Cause] = &[
    (
        401,
        "A `priority` above 0 was asked, `ADMIN_TOKEN` is set and the request carries neither \
         its bearer token nor a valid session cookie.",
    ),
    (
        403,
        "A `priority` above 0 was asked, `ADMIN_TOKEN` is unset and the client is not on \
         loopback.",
    ),
];

/// A job that has expired but whose record the history keeps.
pub const EXPIRED: &[Cause] = &[(
    410,
    "The job has expired (`JOB_TTL_SECS`); its record from the history is in `history`.",
)];

/// A create's `Idempotency-Key`.
pub const IDEMPOTENCY: &[Cause] = &[
    (
        400,
        "`Idempotency-Key` is not 1 to 255 visible ASCII characters.",
    ),
    (
        409,
        "The job an earlier create with this `Idempotency-Key` made has expired.",
    ),
    (
        422,
        "This client used the `Idempotency-Key` for a different request (another body or \
         endpoint) within `IDEMPOTENCY_TTL_SECS`; nothing is stored.",
    ),
];

/// A cancel's optional body.
pub const CANCEL_BODY: &[Cause] = &[
    (413, "The body is larger than `MAX_BODY_BYTES`."),
    (
        422,
        "The body is neither empty nor `{\"reason\": \"...\"}`, or `reason` is longer than \
         `MAX_CANCEL_REASON_CHARS` (500) characters.",
    ),
];

/// What a `{job_id}` path segment can fail with.
pub const JOB_PATH: &[Cause] = &[
    (400, "`job_id` is not a UUID."),
    (404, "There is no such job, or it has expired."),
];

/// What a delivery's path can fail with.
pub const DELIVERY_PATH: &[Cause] = &[
    (400, "`job_id` is not a UUID."),
    (
        404,
        "The job has no such delivery, or it is past `WEBHOOK_RETENTION_SECS`.",
    ),
];

/// What a JSON body can fail with, before the handler looks at its values.
pub const JSON_BODY: &[Cause] = &[
    (400, "The body is not JSON."),
    (413, "The body is larger than `MAX_BODY_BYTES`."),
    (
        415,
        "The body is not sent as `Content-Type: application/json`.",
    ),
    (
        422,
        "The body lacks a field, has one of the wrong type, or a value is out of range.",
    ),
];

/// A query string that does not parse.
pub const QUERY: &[Cause] = &[(400, "A query parameter has the wrong type.")];

/// A query parameter that parsed but is out of range.
pub const QUERY_VALUE: &[Cause] = &[(422, "A query parameter is out of its documented range.")];

/// A WebSocket upgrade from a page of a foreign origin.
pub const ORIGIN: &[Cause] = &[(
    403,
    "The request's `Origin` is neither this server's nor one `CORS_ALLOWED_ORIGINS` lists.",
)];

/// `CREATE_RATE_PER_MIN`.
pub const CREATE_LIMIT: &[Cause] = &[(
    429,
    "Over the client's `CREATE_RATE_PER_MIN` (requests with the admin's bearer token are not \
     counted); `Retry-After` says when to try again.",
)];

/// `STREAM_RATE_PER_MIN`.
pub const STREAM_LIMIT: &[Cause] = &[(
    429,
    "Over the client's `STREAM_RATE_PER_MIN`; `Retry-After` says when to try again.",
)];

/// A change the job's state machine refuses.
pub const TRANSITION: &[Cause] = &[(
    409,
    "The change is illegal in the job's state (a finished job never changes; a job cannot \
     complete before it started...).",
)];

/// `MAX_QUEUED_JOBS`.
pub const QUEUE: &[Cause] = &[(
    503,
    "`MAX_QUEUED_JOBS` jobs already wait to run; `Retry-After` says when to try again.",
)];

/// What any operation that reads or writes the store can fail with.
pub const STORE: &[Cause] = &[
    (
        500,
        "A bug, or a stored record that cannot be read back (the cause is logged, not sent).",
    ),
    (
        503,
        "The job store is unavailable (Redis does not answer and this instance cannot serve the \
         request from memory); `Retry-After` says when to try again.",
    ),
];

/// `{"detail"}` responses for `groups`, the causes of one status joined into one description.
pub fn detail_responses(groups: &[&[Cause]]) -> BTreeMap<String, RefOr<Response>> {
    let mut causes: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for (status, cause) in groups.iter().copied().flatten() {
        causes.entry(*status).or_default().push(cause);
    }
    causes
        .into_iter()
        .map(|(status, causes)| (status.to_string(), detail_response(status, &causes)))
        .collect()
}

fn detail_response(status: u16, causes: &[&str]) -> RefOr<Response> {
    let detail = Ref::from_schema_name(Detail::name());
    let response = ResponseBuilder::new()
        .description(causes.join(" Or: "))
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(detail)).build(),
        );
    match advice_header(status) {
        Some((name, header)) => response.header(name, header),
        None => response,
    }
    .build()
    .into()
}

/// The header an answer of `status` carries beside its `{"detail"}`, if any.
fn advice_header(status: u16) -> Option<(&'static str, Header)> {
    let (name, kind, description) = match status {
        429 | 503 => (
            "retry-after",
            Type::Integer,
            "Seconds to wait before retrying.",
        ),
        401 => ("www-authenticate", Type::String, "`Bearer`."),
        _ => return None,
    };
    let header = HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(kind)))
        .description(Some(description))
        .build();
    Some((name, header))
}

/// One operation's error answers, named once and listed in its `#[utoipa::path]`.
macro_rules! failures {
    ($($(#[$doc:meta])* $name:ident = [$($group:ident),*];)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                detail_responses(&[$($group),*])
            }
        }
    )*};
}

failures! {
    /// `POST /api/v4/deep-research`.
    ResearchFailures = [PRIORITY_RIGHTS, CREATE_LIMIT, JSON_BODY, IDEMPOTENCY, QUEUE, STORE];
    /// `POST /api/v4/jobs`.
    CreateFailures = [ADMIN, CREATE_LIMIT, JSON_BODY, IDEMPOTENCY, QUEUE, STORE];
    /// `GET /api/v4/job/{job_id}`.
    ReadFailures = [JOB_PATH, EXPIRED, QUERY, QUERY_VALUE, STREAM_LIMIT, STORE];
    /// `POST /api/v4/job/{job_id}/{progress,complete,fail,priority}`.
    ReportFailures = [ADMIN, JOB_PATH, JSON_BODY, TRANSITION, STORE];
    /// `POST /api/v4/job/{job_id}/cancel`.
    CancelFailures = [ADMIN_OR_CONTROL_TOKEN, JOB_PATH, CANCEL_BODY, TRANSITION, STORE];
    /// `POST /api/v4/jobs/progress`.
    BatchFailures = [ADMIN, JSON_BODY, STORE];
    /// Admin endpoints that take no input.
    AdminFailures = [ADMIN, STORE];
    /// `GET /api/v4/job/{job_id}/webhooks`.
    WebhookListFailures = [ADMIN, STORE];
    /// `POST /api/v4/job/{job_id}/webhooks/{delivery_id}/retry`.
    WebhookRetryFailures = [ADMIN, DELIVERY_PATH, STORE];
    /// `DELETE /api/v4/session`.
    StoreFailures = [STORE];
    /// `GET /api/v4/jobs`.
    ListFailures = [ADMIN, QUERY, QUERY_VALUE, STORE];
    /// `GET /api/v4/job/{job_id}/events`.
    StreamFailures = [STREAM_LIMIT, JOB_PATH, STORE];
    /// `GET /api/v4/job/{job_id}/ws`.
    SocketFailures = [ORIGIN, STREAM_LIMIT, JOB_PATH, STORE];
}
