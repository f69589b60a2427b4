//! Administration: purging what has expired.

use super::responses::AdminFailures;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::BackendKind;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(cleanup_jobs))
}

/// What a cleanup removed, and the backend it ran on.
#[derive(Serialize, ToSchema)]
struct CleanupAnswer {
    /// The counts below, in words.
    message: String,
    /// Expired jobs removed from the memory store (Redis expires its keys by itself).
    purged_jobs: usize,
    /// Queue, lease and job-index entries removed because their job no longer exists.
    purged_index_entries: usize,
    backend: BackendKind,
    redis_connected: bool,
}

/// `DELETE /api/v4/admin/cleanup-jobs`: purges expired jobs and stale queue and lease entries.
#[utoipa::path(
    delete,
    path = "/api/v4/admin/cleanup-jobs",
    tag = "operations",
    summary = "Purge expired jobs and stale queue, lease and index entries",
    responses((status = 200, description = "What was purged.", body = CleanupAnswer), AdminFailures),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn cleanup_jobs(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<CleanupAnswer>, ApiError> {
    let report = state.store.cleanup().await?;
    tracing::info!(?report, "cleanup done");
    Ok(Json(CleanupAnswer {
        message: format!(
            "Cleaned up {} expired jobs and {} stale index entries",
            report.purged_jobs, report.purged_index_entries
        ),
        purged_jobs: report.purged_jobs,
        purged_index_entries: report.purged_index_entries,
        backend: state.store.kind(),
        redis_connected: state.store.redis_connected().await,
    }))
}
