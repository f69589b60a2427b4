//! Runs one started deep-research job through its steps, reporting each as progress, then its report.

use super::{RunEnd, apply_retrying};
use crate::job::{Change, Job};
use crate::research::{self, FINAL_STEP, ResearchInput};
use crate::state::AppState;
use crate::store::StoreError;
use std::time::Duration;
use tracing::info;

/// Runs `job` (just started by this worker) to completion, failure, or a shutdown checkpoint.
///
/// A resumed job skips the steps below the progress it already reached, so its watchers never
/// see progress go backwards, and the report is the same as an uninterrupted run's.
pub async fn run(state: &AppState, job: Job) -> Result<RunEnd, StoreError> {
    let fence = Some(job.attempt);
    let input = match serde_json::from_str::<ResearchInput>(job.input.get()) {
        Ok(input) => input,
        Err(e) => return fail(state, &job, format!("Unreadable job input: {e}")).await,
    };
    let report = match research::research(&input) {
        Ok(report) => report,
        Err(error) => return fail(state, &job, error).await,
    };
    let pause = Duration::from_millis(state.config.deep_research_step_ms);
    for step in research::plan(&input.usable_ingredients()) {
        if step.progress < job.progress {
            continue;
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => return Ok(RunEnd::Interrupted),
            _ = tokio::time::sleep(pause) => {}
        }
        let change = Change::Progress {
            progress: step.progress,
            step: Some(step.text),
            fence,
        };
        apply_retrying(state, job.job_id, change).await?;
    }
    let result = serde_json::value::to_raw_value(&report).expect("a report serialises");
    let change = Change::Complete {
        result,
        step: FINAL_STEP.into(),
        fence,
    };
    apply_retrying(state, job.job_id, change).await?;
    info!(overall = %report.overall_risk.level, attempt = job.attempt, "deep research completed");
    Ok(RunEnd::Finished)
}

async fn fail(state: &AppState, job: &Job, error: String) -> Result<RunEnd, StoreError> {
    info!(error = %error, "deep research failed");
    let change = Change::Fail {
        error,
        fence: Some(job.attempt),
    };
    apply_retrying(state, job.job_id, change).await?;
    Ok(RunEnd::Finished)
}
