//! Schemas, for the API document, of what is read or written by hand rather than through a
//! serde type: the deep-research request, a listed job, a WebSocket message. Tests check real
//! answers against them (`tests/api/openapi.rs`).

#[cfg(test)]
use crate::job::FrameKind;
use crate::job::{Job, Priority};
use serde::Deserialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa::{PartialSchema, ToSchema};

/// `POST /api/v4/deep-research`'s body, as `ResearchInput::from_request` reads it.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // a schema: the handler reads the body as JSON and explains what is wrong
pub struct ResearchRequest {
    /// 1 to `MAX_PRODUCT_NAME_CHARS` (200) characters, trimmed.
    #[schema(example = "Cola")]
    product_name: String,
    ingredients: Ingredients,
    /// Above 0 only with the admin's rights.
    priority: Option<Priority>,
    /// An endpoint told when the job ends (see the README's Webhooks), only with the admin's
    /// rights; never shown with the job.
    #[schema(example = "https://backend.example/jobcast-events")]
    webhook_url: Option<String>,
}

/// At most `MAX_INGREDIENTS` (500), each at most `MAX_INGREDIENT_CHARS` (200) characters.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema, as above
pub enum Ingredients {
    List(Vec<String>),
    /// Comma-separated.
    Text(String),
}

/// A job in a listing: a [`Job`] without its `result` (derived from `Job`'s schema).
pub struct JobSummary;

impl PartialSchema for JobSummary {
    fn schema() -> RefOr<Schema> {
        let mut schema = Job::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.properties.shift_remove("result");
            object.required.retain(|field| field != "result");
            object.description =
                Some("A job as `GET /api/v4/job/{job_id}` serves it, without its `result`.".into());
        }
        schema
    }
}

impl ToSchema for JobSummary {}

/// A job as its creation answers it: a [`Job`] and its `control_token` (derived from `Job`'s
/// schema).
pub struct CreatedJob;

impl PartialSchema for CreatedJob {
    fn schema() -> RefOr<Schema> {
        let mut schema = Job::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            let token = utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .description(Some(
                    "Lets the creator cancel this job (`Authorization: Bearer <control_token>` on \
                     `POST /api/v4/job/{job_id}/cancel`). Sent in this answer only: keep it.",
                ))
                .build();
            object
                .properties
                .insert("control_token".into(), token.into());
            object.required.push("control_token".into());
            object.description = Some("A new job, with its control token.".into());
        }
        schema
    }
}

impl ToSchema for CreatedJob {}

/// What a stream frame tells: the job's state at the start of a stream, or the change it made.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // a schema of `FrameKind::as_str`, checked by the test below
pub enum EventKind {
    Snapshot,
    Progress,
    Completed,
    Failed,
    Cancelled,
}

/// One WebSocket text message, as `Frame::websocket` writes it.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema, as above
pub struct StreamMessage {
    event: EventKind,
    /// The job's `seq`: resume with `?last_seq=` set to the last one received.
    seq: u64,
    job: Job,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_event_kinds_are_the_ones_frames_are_sent_with() {
        let schema = serde_json::to_value(EventKind::schema()).unwrap();
        let kinds = [
            FrameKind::Snapshot,
            FrameKind::Progress,
            FrameKind::Completed,
            FrameKind::Failed,
            FrameKind::Cancelled,
        ]
        .map(FrameKind::as_str);
        assert_eq!(schema["enum"], serde_json::json!(kinds), "{schema}");
    }
}
