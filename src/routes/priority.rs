//! `POST /api/v4/job/{job_id}/priority`: the admin moves a queued job up or down the queue.

use super::create::priority_of;
use super::jobs::{JobPath, answer_applied};
use super::responses::ReportFailures;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{ApiJson, JobIdPath};
use crate::job::{Change, Job, JobEvent, Priority};
use crate::state::AppState;
use crate::store::JobStore;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(prioritise_job))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPriority {
    #[schema(value_type = Priority)]
    priority: Value,
}

/// Re-prioritises a pending job in one atomic change: the job's `priority` and its place in the
/// queue move together, keeping its arrival among the jobs of its new priority.
#[utoipa::path(
    post,
    path = "/api/v4/job/{job_id}/priority",
    tag = "jobs",
    summary = "Change a pending job's priority",
    description = "Moves a job that has not started yet to another priority (0 to 9, higher runs \
        first); among the jobs of its new priority it keeps its arrival order. A job that has \
        started or finished answers 409.",
    params(JobPath),
    request_body = NewPriority,
    responses((status = 200, description = "The job after the change.", body = Job), ReportFailures),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn prioritise_job(
    _: Admin,
    State(state): State<AppState>,
    JobIdPath(job_id): JobIdPath,
    ApiJson(request): ApiJson<NewPriority>,
) -> Result<Response, ApiError> {
    let priority = priority_of(&request.priority)?;
    let job = state
        .store
        .apply(job_id, Change::Prioritise { priority })
        .await?;
    tracing::info!(%job_id, %priority, "job re-prioritised");
    answer_applied(&state, JobEvent::from(&job))
}
