//! Creating jobs: the seed's `POST /api/v4/deep-research` and `POST /api/v4/jobs` for any kind,
//! both storing the job, queueing the kinds this server runs, and answering its control token.

use super::jobs::{etag, validate_payload};
use super::quota::{Client, CreateQuota};
use super::responses::{CreateFailures, ResearchFailures};
use super::shapes::{CreatedJob, ResearchRequest};
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::idempotency::{Creation, IdempotencyKey};
use crate::job::{DEEP_RESEARCH_KIND, Job, JobId, MAX_PRIORITY, Priority, Timestamp};
use crate::research::ResearchInput;
use crate::state::AppState;
use crate::store::{JobStore, WorkQueue};
use crate::webhook;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The header that marks the answer to a retried create, as Stripe names it.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The longest `kind`, in characters.
pub const MAX_KIND_CHARS: usize = 64;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_deep_research))
        .routes(routes!(create_job))
}

/// The `Idempotency-Key` both create endpoints take, for the API document.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // a description: the handlers read the header themselves
struct IdempotencyHeader {
    /// Makes the create safe to retry: a retry with the same key (from the same client, within
    /// `IDEMPOTENCY_TTL_SECS`, 24 h by default) answers the job the first request created,
    /// with the same status, instead of creating another. 1 to 255 visible ASCII characters.
    #[param(rename = "idempotency-key", example = "order-8e03978e")]
    idempotency_key: Option<String>,
}

/// `POST /api/v4/deep-research`: the seed's endpoint, answering 200 with the pending job.
#[utoipa::path(
    post,
    path = "/api/v4/deep-research",
    tag = "jobs",
    summary = "Start a deep-research job (run by this server's workers)",
    description = "Stores a pending job and queues it at its `priority`; built-in workers run it \
        and report its progress. Unauthenticated (limited per client by `CREATE_RATE_PER_MIN`), \
        except that a `priority` above 0 is the admin's to give.",
    params(IdempotencyHeader),
    request_body = ResearchRequest,
    responses(
        (status = 200, description = "The new pending job (or, for a retry with the same \
            `Idempotency-Key`, the job the first request made, as it is now).", body = CreatedJob,
            headers(
                ("etag" = String, description = "`\"<seq>\"`"),
                ("idempotent-replayed" = String, description = "`true` on the answer to a retry."),
            )),
        ResearchFailures,
    ),
)]
async fn create_deep_research(
    admin: Result<Admin, ApiError>,
    _: CreateQuota,
    Client(client): Client,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let input = ResearchInput::from_request(&body).map_err(ApiError::invalid)?;
    let asked = Asked {
        kind: DEEP_RESEARCH_KIND.into(),
        input: raw_json(&input),
        priority: requested_priority(body.get("priority"))?,
        webhook_url: requested_webhook(&state, body.get("webhook_url"))?,
    };
    // Retries are matched per client: the admin, or else the client's address.
    let scope = match admin {
        Ok(Admin) => "admin".to_owned(),
        Err(_) => format!("client {}", client.ip),
    };
    // An anonymous caller may neither jump the queue nor make this server call out.
    if asked.priority != Priority::default() || asked.webhook_url.is_some() {
        admin?;
    }
    let key = asked.idempotency_key(&state, &headers, &scope, "deep-research")?;
    let created = create_and_queue(&state, &asked, key.as_ref()).await?;
    Ok(created_response(&state, &created, StatusCode::OK))
}

#[derive(Deserialize, ToSchema)]
struct NewJob {
    /// 1 to `MAX_KIND_CHARS` (64) letters, digits, `-`, `_` or `.`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "external")]
    kind: String,
    /// Any JSON, stored verbatim (`{}` when absent); for `deep-research`, what
    /// `POST /api/v4/deep-research` takes.
    #[schema(value_type = Option<serde_json::Value>)]
    input: Option<Box<RawValue>>,
    /// Where a queued job goes in the queue (only `deep-research` jobs are queued here).
    #[schema(value_type = Option<Priority>)]
    priority: Option<Value>,
    /// An endpoint told when the job ends (see the README's Webhooks); never shown with the job.
    #[schema(value_type = Option<String>, example = "https://backend.example/jobcast-events")]
    webhook_url: Option<Value>,
}

/// `POST /api/v4/jobs`: a job of any kind; only `deep-research` is run by built-in workers.
#[utoipa::path(
    post,
    path = "/api/v4/jobs",
    tag = "jobs",
    summary = "Create a job of any kind",
    description = "Only `deep-research` is queued for this server's workers; a job of another \
        kind waits for its progress to be reported through the admin endpoints.",
    params(IdempotencyHeader),
    request_body = NewJob,
    responses(
        (status = 201, description = "The new pending job (or, for a retry with the same \
            `Idempotency-Key`, the job the first request made, as it is now).", body = CreatedJob,
            headers(
                ("location" = String, description = "`/api/v4/job/{job_id}`"),
                ("etag" = String, description = "`\"<seq>\"`"),
                ("idempotent-replayed" = String, description = "`true` on the answer to a retry."),
            )),
        CreateFailures,
    ),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn create_job(
    _: Admin,
    _: CreateQuota,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<NewJob>,
) -> Result<Response, ApiError> {
    validate_kind(&request.kind)?;
    let priority = requested_priority(request.priority.as_ref())?;
    let input = request
        .input
        .unwrap_or_else(|| raw_json(&serde_json::json!({})));
    validate_payload("input", &input)?;
    let input = if request.kind == DEEP_RESEARCH_KIND {
        let body: Value = serde_json::from_str(input.get())
            .map_err(|_| ApiError::invalid("input is not JSON"))?;
        let research = ResearchInput::from_request(&body).map_err(ApiError::invalid)?;
        raw_json(&research)
    } else {
        input
    };
    let asked = Asked {
        kind: request.kind,
        input,
        priority,
        webhook_url: requested_webhook(&state, request.webhook_url.as_ref())?,
    };
    let key = asked.idempotency_key(&state, &headers, "admin", "jobs")?;
    let created = create_and_queue(&state, &asked, key.as_ref()).await?;
    let mut response = created_response(&state, &created, StatusCode::CREATED);
    let location = format!("/api/v4/job/{}", created.job.job_id);
    response.headers_mut().insert(
        header::LOCATION,
        location.parse().expect("a path is a valid header"),
    );
    Ok(response)
}

/// What a create asks for, read and checked.
struct Asked {
    kind: String,
    input: Box<RawValue>,
    priority: Priority,
    webhook_url: Option<String>,
}

impl Asked {
    /// The request's `Idempotency-Key`, kept per `scope`, for this request to `endpoint`.
    fn idempotency_key(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        scope: &str,
        endpoint: &str,
    ) -> Result<Option<IdempotencyKey>, ApiError> {
        let priority = self.priority.to_string();
        let webhook = self.webhook_url.as_deref().unwrap_or("");
        let request = [endpoint, &self.kind, &priority, webhook, self.input.get()];
        let ttl_secs = state.config.idempotency_ttl_secs;
        IdempotencyKey::from_headers(headers, scope, &request, ttl_secs)
            .map_err(ApiError::bad_request)
    }
}

/// A job a create answers: made now, or by an earlier request with the same idempotency key.
struct Created {
    job: Job,
    replayed: bool,
}

/// Stores a new job and, for kinds the built-in workers run, queues it at its priority and wakes
/// a local worker; with an idempotency key a create made before answers its job instead.
async fn create_and_queue(
    state: &AppState,
    asked: &Asked,
    key: Option<&IdempotencyKey>,
) -> Result<Created, ApiError> {
    let kind = asked.kind.as_str();
    if kind == DEEP_RESEARCH_KIND {
        refuse_when_queue_full(state).await?;
    }
    let ttl_secs = state.config.job_ttl_secs;
    let mut job = Job::new(kind, asked.input.clone(), Timestamp::now(), ttl_secs);
    job.priority = asked.priority;
    job.webhook_url = asked.webhook_url.clone();
    let creation = match key {
        Some(key) => state.store.create_once(&job, key).await?,
        None => state.store.create(&job).await.map(|()| Creation::Created)?,
    };
    match creation {
        Creation::Created => {}
        Creation::Replayed(id) => return replayed(state, id).await,
        Creation::KeyReused => {
            return Err(ApiError::invalid(
                "this Idempotency-Key was used for a different request (another body or \
                 endpoint) within IDEMPOTENCY_TTL_SECS",
            ));
        }
    }
    state.metrics.jobs().created(kind);
    if kind == DEEP_RESEARCH_KIND {
        state.store.enqueue(job.job_id, job.priority).await?;
        state.work_queued.notify_one();
    }
    tracing::info!(job_id = %job.job_id, kind, "job created");
    Ok(Created {
        job,
        replayed: false,
    })
}

/// The job an earlier create with the same idempotency key made, as it is now.
async fn replayed(state: &AppState, id: JobId) -> Result<Created, ApiError> {
    let job = state.store.get(id).await?.ok_or_else(|| {
        ApiError::Conflict(
            "the job this Idempotency-Key created has expired (JOB_TTL_SECS is shorter than \
             IDEMPOTENCY_TTL_SECS)"
                .into(),
        )
    })?;
    tracing::info!(job_id = %id, "create replayed by its idempotency key");
    Ok(Created {
        job,
        replayed: true,
    })
}

/// 503 when `MAX_QUEUED_JOBS` jobs already wait, before anything is stored. The length is read,
/// then the job pushed: concurrent creates may overshoot the cap by as many as run at once.
async fn refuse_when_queue_full(state: &AppState) -> Result<(), ApiError> {
    let queued = state.store.queued_len().await?;
    let cap = state.config.max_queued_jobs;
    if u64::try_from(queued).unwrap_or(u64::MAX) >= cap {
        return Err(ApiError::QueueFull { cap });
    }
    Ok(())
}

/// A create's `webhook_url`: absent or null is none; else an http(s) URL, on a server that sends
/// webhooks.
fn requested_webhook(state: &AppState, value: Option<&Value>) -> Result<Option<String>, ApiError> {
    let url = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(url)) => webhook::check_url(url).map_err(ApiError::invalid)?,
        Some(_) => return Err(ApiError::invalid("webhook_url must be a string")),
    };
    if state.config.webhook_secret.is_none() {
        return Err(ApiError::invalid(
            "this server sends no webhooks: WEBHOOK_SECRET is not set",
        ));
    }
    Ok(Some(url.to_string()))
}

/// A create's `priority`: absent or null is the default, else as [`priority_of`] reads it.
fn requested_priority(value: Option<&Value>) -> Result<Priority, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Priority::default()),
        Some(value) => priority_of(value),
    }
}

/// A priority given as JSON: an integer from 0 to `MAX_PRIORITY`.
pub(super) fn priority_of(value: &Value) -> Result<Priority, ApiError> {
    value.as_i64().and_then(Priority::new).ok_or_else(|| {
        ApiError::invalid(format!(
            "priority must be an integer from 0 to {MAX_PRIORITY}"
        ))
    })
}

fn validate_kind(kind: &str) -> Result<(), ApiError> {
    let valid = !kind.is_empty()
        && kind.len() <= MAX_KIND_CHARS
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    valid.then_some(()).ok_or_else(|| {
        ApiError::invalid(format!(
            "kind must be 1 to {MAX_KIND_CHARS} characters of letters, digits, '-', '_' or '.'"
        ))
    })
}

fn raw_json(value: &impl serde::Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("serialisable input")
}

/// A new job, with its `control_token` (in this answer only: see [`crate::control_token`]).
fn created_response(state: &AppState, created: &Created, status: StatusCode) -> Response {
    let job = &created.job;
    let token = state.control_tokens.for_job(job.job_id);
    let mut json = job.to_json();
    json.pop(); // the closing brace
    json.push_str(&format!(r#","control_token":"{token}"}}"#));
    let headers = [
        (header::CONTENT_TYPE, "application/json".to_owned()),
        (header::ETAG, etag(job.seq)),
        (header::CACHE_CONTROL, "no-store".to_owned()),
    ];
    let mut response = (status, headers, json).into_response();
    if created.replayed {
        let replayed = HeaderValue::from_static("true");
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, replayed);
    }
    response
}
