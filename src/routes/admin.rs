//! Administration: purging what has expired.

use crate::auth::Admin;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::delete;
use axum::{Json, Router};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v4/admin/cleanup-jobs", delete(cleanup_jobs))
}

/// `DELETE /api/v4/admin/cleanup-jobs`: purges expired jobs and stale queue and lease entries.
async fn cleanup_jobs(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let report = state.store.cleanup().await?;
    tracing::info!(?report, "cleanup done");
    Ok(Json(json!({
        "message": format!(
            "Cleaned up {} expired jobs and {} stale index entries",
            report.purged_jobs, report.purged_index_entries
        ),
        "purged_jobs": report.purged_jobs,
        "purged_index_entries": report.purged_index_entries,
        "backend": state.store.kind(),
        "redis_connected": state.store.redis_connected().await,
    })))
}
