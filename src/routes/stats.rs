//! `GET /api/v4/stats`: how jobs are doing over the last hour, day, week or month, from the
//! counters every instance keeps per hour (never from scanning jobs).

use super::responses::AdminFailures;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::job::Timestamp;
use crate::state::AppState;
use crate::stats::hours::hour_of;
use crate::stats::{StatsReport, Window};
use crate::store::Stats;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(job_stats))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StatsParams {
    /// `1h`, `24h` (the default), `7d` or `30d`: the current hour and the hours before it.
    #[param(example = "24h")]
    window: Option<String>,
}

/// Counts, success rate, percentiles, jobs per hour and top findings over a window.
#[utoipa::path(
    get,
    path = "/api/v4/stats",
    tag = "dashboard",
    summary = "How jobs are doing: counts, success rate, durations, jobs per hour, top findings",
    description = "The window is whole hours (UTC): the current hour and the 0, 23, 167 or 719 \
        before it (`1h`, `24h`, `7d`, `30d`). Every instance counts each creation and change in \
        the same atomic step that makes it, into one Redis hash per hour (kept 30 days and an \
        hour after it ends), so the counts are exact over the window and cost one read per \
        hour. A creation counts in the hour it was made, an end (and its duration) in the hour \
        it happened, a queue wait in the hour of the job's first start. Percentiles come from \
        fixed logarithmic buckets (bounds growing by 2^(1/8)): each is its bucket's geometric \
        middle, within ±4.5% of the true value. Findings are counted as the reports list \
        their ingredients.",
    params(StatsParams),
    responses(
        (status = 200, description = "The window's figures.", body = StatsReport),
        (status = 400, description = "`window` is not one of 1h, 24h, 7d, 30d.",
            body = crate::error::Detail),
        AdminFailures,
    ),
    security(("admin_token" = []), ("session_cookie" = [])),
)]
async fn job_stats(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Json<StatsReport>, ApiError> {
    let window = match params.window.as_deref() {
        None | Some("") => Window::default(),
        Some(text) => Window::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "window must be one of {}, not {text:?}",
                Window::NAMES.join(", ")
            ))
        })?,
    };
    let current = hour_of(Timestamp::now().0.timestamp_millis());
    let hours = state.store.stats_hours(window.range(current)).await?;
    Ok(Json(StatsReport::build(window, current, &hours)))
}
