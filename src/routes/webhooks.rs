//! `GET /api/v4/job/{job_id}/webhooks`: every delivery of a job's events and every attempt; and
//! `POST …/webhooks/{delivery_id}/retry`: the admin sends one again.

use super::jobs::JobPath;
use super::responses::{WebhookListFailures, WebhookRetryFailures};
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::{JobIdPath, job_id_of};
use crate::job::JobId;
use crate::state::AppState;
use crate::store::Webhooks;
use crate::webhook::delivery::Delivery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

/// A job's deliveries.
#[derive(Serialize, ToSchema)]
struct Deliveries {
    /// Oldest first, each with its attempts.
    deliveries: Vec<Delivery>,
}

/// Every delivery of the job's events, with every attempt: when, the endpoint's status code,
/// latency, error, and when the next attempt is due.
#[utoipa::path(
    get,
    path = "/api/v4/job/{job_id}/webhooks",
    tag = "webhooks",
    summary = "List a job's webhook deliveries and their attempts",
    description = "One delivery per event (`job.completed`, `job.failed`, `job.cancelled`) and \
        endpoint (the job's `webhook_url`, then `WEBHOOK_URLS`), kept for \
        `WEBHOOK_RETENTION_SECS` after its last change. Its `id` is the `webhook-id` header of \
        every attempt.",
    params(JobPath),
    responses((status = 200, description = "The deliveries.", body = Deliveries), WebhookListFailures),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn list_deliveries(
    _: Admin,
    State(state): State<AppState>,
    JobIdPath(job_id): JobIdPath,
) -> Result<Json<Deliveries>, ApiError> {
    let deliveries = state.store.job_deliveries(job_id).await?;
    Ok(Json(Deliveries { deliveries }))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // a description of the path, read by hand
struct DeliveryPath {
    /// The job's id.
    #[param(example = "3f2c8a4e-9b1d-4c7a-8e6f-2a5b7c9d0e1f")]
    job_id: JobId,
    /// The delivery's `id` (its `webhook-id`).
    #[param(example = "msg_3f2c8a4e9b1d4c7a8e6f2a5b7c9d0e1f_7_0")]
    delivery_id: String,
}

/// Makes one delivery due again now, whatever became of it; the next attempt keeps its
/// `webhook-id`.
#[utoipa::path(
    post,
    path = "/api/v4/job/{job_id}/webhooks/{delivery_id}/retry",
    tag = "webhooks",
    summary = "Send one webhook delivery again",
    params(DeliveryPath),
    responses(
        (status = 202, description = "The delivery, due now.", body = Delivery),
        WebhookRetryFailures,
    ),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn retry_delivery(
    _: Admin,
    State(state): State<AppState>,
    Path((job_id, delivery_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let job_id = job_id_of(&job_id)?;
    let no_such = || ApiError::BadInput {
        status: StatusCode::NOT_FOUND,
        detail: "This job has no such webhook delivery".into(),
    };
    if !state.store.retry_delivery(job_id, &delivery_id).await? {
        return Err(no_such());
    }
    tracing::info!(%job_id, delivery = %delivery_id, "webhook delivery retried by the admin");
    let deliveries = state.store.job_deliveries(job_id).await?;
    let delivery = deliveries.into_iter().find(|d| d.id == delivery_id);
    Ok((StatusCode::ACCEPTED, Json(delivery.ok_or_else(no_such)?)))
}
