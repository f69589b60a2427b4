//! `POST /api/v4/jobs/progress`: many progress reports in one request, for reporters that
//! update many jobs (one HTTP exchange and one pipelined burst of Redis calls for all of them).

use super::jobs::ProgressReport;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::job::{JobEvent, JobId};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use futures::future::join_all;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v4/jobs/progress", post(report_many))
}

/// One report of a batch: a job's id and what `POST …/{job_id}/progress` takes.
#[derive(Deserialize)]
struct Item {
    job_id: JobId,
    #[serde(flatten)]
    report: ProgressReport,
}

/// Answers 200 with one result per report, in order: `{"job_id", "status": 200, "seq"}` or
/// `{"job_id", "status", "detail"}` with the status the single endpoint would have answered.
/// Each report is its own atomic change; reports of different jobs are applied concurrently
/// (their Redis calls share the connection's writes), those of one job in the order given.
async fn report_many(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(items): ApiJson<Vec<Item>>,
) -> Result<axum::Json<Value>, ApiError> {
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
    let mut results = vec![Value::Null; ids.len()];
    for (at, outcome) in join_all(chains).await.into_iter().flatten() {
        results[at] = answer(ids[at], outcome);
    }
    Ok(axum::Json(Value::Array(results)))
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

fn answer(job_id: JobId, outcome: Result<JobEvent, ApiError>) -> Value {
    match outcome {
        Ok(event) => json!({"job_id": job_id, "status": 200, "seq": event.seq}),
        Err(error) => {
            error.log_if_server_error();
            json!({"job_id": job_id, "status": error.status_code().as_u16(), "detail": error.to_string()})
        }
    }
}
