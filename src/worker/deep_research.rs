//! Runs one deep-research job through its steps, reporting each as progress, then its report.

use super::RunResult;
use crate::job::{Change, Job, JobStatus};
use crate::research::{self, FINAL_STEP, ResearchInput};
use crate::state::AppState;
use crate::store::JobStore;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// Starts (or resumes) `job` and runs it to completion, failure, or shutdown.
///
/// A resumed job skips the steps below the progress it already reached, so its watchers never
/// see progress go backwards, and the report is the same as an uninterrupted run's.
pub async fn run(state: &AppState, job: Job, shutdown: &CancellationToken) -> RunResult {
    let store = &state.store;
    let first_step = "Preparing comprehensive analysis...".to_owned();
    let job = match job.status {
        JobStatus::Pending => {
            store
                .apply(job.job_id, Change::Start { step: first_step })
                .await?
        }
        _ => return Ok(()), // someone else started it
    };
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
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(pause) => {}
        }
        let change = Change::Progress {
            progress: step.progress,
            step: Some(step.text),
            fence,
        };
        store.apply(job.job_id, change).await?;
    }
    let result = serde_json::value::to_raw_value(&report).expect("a report serialises");
    let change = Change::Complete {
        result,
        step: FINAL_STEP.into(),
        fence,
    };
    store.apply(job.job_id, change).await?;
    info!(overall = %report.overall_risk.level, "deep research completed");
    Ok(())
}

async fn fail(state: &AppState, job: &Job, error: String) -> RunResult {
    info!(error = %error, "deep research failed");
    let change = Change::Fail {
        error,
        fence: Some(job.attempt),
    };
    state.store.apply(job.job_id, change).await?;
    Ok(())
}
