//! `GET /api/v4/history`: finished jobs, newest first, for `HISTORY_RETENTION_DAYS` after they
//! finished (long after the jobs themselves expire).

use super::dashboard::{cursor_param, limit_param, search_param, status_param};
use super::responses::ListFailures;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::job::HistoryRecord;
use crate::state::AppState;
use crate::store::History;
use crate::store::listing::HistoryQuery;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_history))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryParams {
    /// Only jobs that ended so: `completed`, `failed` or `cancelled`.
    status: Option<String>,
    /// Only jobs of this kind.
    kind: Option<String>,
    /// Only jobs whose product name and ingredients hold these words (case and accents do not
    /// matter; the last word may be the beginning of one, unless a space ends the query).
    #[param(example = "diet co")]
    q: Option<String>,
    /// Only jobs that finished at or after this instant (RFC 3339).
    #[param(example = "2026-12-01T00:00:00Z")]
    since: Option<String>,
    /// Only jobs that finished at or before this instant (RFC 3339).
    until: Option<String>,
    /// Records per page: 1 to `MAX_PAGE` (100), default 20.
    #[param(minimum = 1)]
    limit: Option<usize>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// One page of the history.
#[derive(Serialize, ToSchema)]
struct HistoryPage {
    /// Newest first, by when they finished.
    jobs: Vec<HistoryRecord>,
    /// Where the next page starts; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Finished jobs' records, newest first.
#[utoipa::path(
    get,
    path = "/api/v4/history",
    tag = "dashboard",
    summary = "List finished jobs, newest first, for HISTORY_RETENTION_DAYS",
    description = "Each job that ended (completed, failed or cancelled) leaves a compact record, \
        written in the same atomic step that ended it and kept for `HISTORY_RETENTION_DAYS` \
        (30 by default) after it finished, long after the job itself expires (`JOB_TTL_SECS`). \
        A page looks through at most 2,000 records while filtering; `next_cursor` goes on.",
    params(HistoryParams),
    responses((status = 200, description = "One page.", body = HistoryPage), ListFailures),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn list_history(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<Json<HistoryPage>, ApiError> {
    let query = HistoryQuery {
        status: status_param(params.status.as_deref())?,
        kind: params.kind.filter(|kind| !kind.is_empty()),
        search: search_param(params.q.as_deref())?,
        since_ms: instant_param("since", params.since.as_deref())?,
        until_ms: instant_param("until", params.until.as_deref())?,
        limit: limit_param(params.limit)?,
        after: cursor_param(params.cursor.as_deref())?,
    };
    let page = state.store.history_page(&query).await?;
    Ok(Json(HistoryPage {
        jobs: page.records,
        next_cursor: page.next.map(|cursor| cursor.to_string()),
    }))
}

/// An RFC 3339 query parameter, in ms since the epoch.
fn instant_param(name: &str, text: Option<&str>) -> Result<Option<i64>, ApiError> {
    match text {
        None | Some("") => Ok(None),
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|instant| Some(instant.timestamp_millis()))
            .map_err(|_| {
                ApiError::invalid(format!(
                    "{name} must be an RFC 3339 instant, such as 2026-12-01T00:00:00Z"
                ))
            }),
    }
}
