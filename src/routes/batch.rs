//! `POST /api/v4/jobs/progress`: many progress reports in one request, for reporters that
//! update many jobs (one HTTP exchange and one pipelined burst of Redis calls for all of them).

use super::jobs::ProgressReport;
use super::responses::BatchFailures;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::job::{JobEvent, JobId};
use crate::state::AppState;
use axum::extract::State;
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(report_many))
}

/// One report of a batch: a job's id and what `POST …/{job_id}/progress` takes.
#[derive(Deserialize, ToSchema)]
#[schema(as = BatchReport)]
struct Item {
    job_id: JobId,
    #[serde(flatten)]
    report: ProgressReport,
}

/// What became of one report of a batch.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum Outcome {
    /// Applied: `status` is 200.
    Applied {
        job_id: JobId,
        #[schema(minimum = 200, maximum = 200)]
        status: u16,
        /// The job's seq after the change.
        seq: u64,
    },
    /// Refused, with the status and `detail` the single endpoint would have answered.
    Refused {
        job_id: JobId,
        status: u16,
        detail: String,
    },
}

/// Answers 200 with one result per report, in order: `{"job_id", "status": 200, "seq"}` or
/// `{"job_id", "status", "detail"}` with the status the single endpoint would have answered.
/// Each report is its own atomic change; reports of different jobs are applied concurrently
/// (their Redis calls share the connection's writes), those of one job in the order given.
#[utoipa::path(
    post,
    path = "/api/v4/jobs/progress",
    tag = "jobs",
    summary = "Report the progress of many jobs in one request",
    description = "1 to `BATCH_MAX_UPDATES` (default 500) reports, each its own atomic change, \
        answered in order; reports of one job are applied in the order given. A report that is \
        refused does not fail the others: its result carries the status and `detail` that \
        `POST /api/v4/job/{job_id}/progress` would have answered.",
    request_body = Vec<Item>,
    responses(
        (status = 200, description = "One result per report, in order.", body = Vec<Outcome>),
        BatchFailures,
    ),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn report_many(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(items): ApiJson<Vec<Item>>,
) -> Result<axum::Json<Vec<Outcome>>, ApiError> {
    let limit = state.config.batch_max_updates as usize;
    if items.is_empty() || items.len() > limit {
        return Err(ApiError::invalid(format!(
            "a batch holds 1 to {limit} reports (BATCH_MAX_UPDATES)"
        )));
    }
    let ids: Vec<JobId> = items.iter().map(|item| item.job_id).collect();
    let mut by_job: HashMap<JobId, Vec<(usize, ProgressReport)>> = HashMap::new();
    for (at, item) in items.into_iter().enumerate() {
        by_job
            .entry(item.job_id)
            .or_default()
            .push((at, item.report));
    }
    let chains = by_job
        .into_iter()
        .map(|(job_id, reports)| apply_in_order(&state, job_id, reports));
    let mut results: Vec<Option<Outcome>> = (0..ids.len()).map(|_| None).collect();
    for (at, outcome) in join_all(chains).await.into_iter().flatten() {
        results[at] = Some(answer(ids[at], outcome));
    }
    Ok(axum::Json(results.into_iter().flatten().collect()))
}

/// Applies one job's reports one after another; each outcome with its place in the batch.
async fn apply_in_order(
    state: &AppState,
    job_id: JobId,
    reports: Vec<(usize, ProgressReport)>,
) -> Vec<(usize, Result<JobEvent, ApiError>)> {
    let mut outcomes = Vec::with_capacity(reports.len());
    for (at, report) in reports {
        let outcome = match report.change() {
            Ok(change) => state
                .store
                .apply_event(job_id, change)
                .await
                .map_err(ApiError::from),
            Err(invalid) => Err(invalid),
        };
        if let Ok(event) = &outcome {
            state.cache.offer(event);
        }
        outcomes.push((at, outcome));
    }
    outcomes
}

fn answer(job_id: JobId, outcome: Result<JobEvent, ApiError>) -> Outcome {
    match outcome {
        Ok(event) => Outcome::Applied {
            job_id,
            status: 200,
            seq: event.seq,
        },
        Err(error) => {
            error.log_if_server_error();
            Outcome::Refused {
                job_id,
                status: error.status_code().as_u16(),
                detail: error.to_string(),
            }
        }
    }
}
