//! A job's priority (0–9, higher runs first) and where it puts the job in the queue's order.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The highest priority.
pub const MAX_PRIORITY: u8 = 9;
/// The priority of a job created without one (and of jobs stored before priorities existed).
pub const DEFAULT_PRIORITY: u8 = 0;
/// How many arrivals one priority's band of queue scores holds (2^40: at 10,000 jobs a second,
/// over three years' worth): a queued job's score is its band plus its arrival number.
pub const ARRIVALS_PER_BAND: u64 = 1 << 40;

/// Which jobs the workers take first: higher first, first come first served within one priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Priority(u8);

impl Priority {
    /// The priority `value` names, or `None` outside 0 to [`MAX_PRIORITY`].
    pub fn new(value: i64) -> Option<Self> {
        u8::try_from(value)
            .ok()
            .filter(|value| *value <= MAX_PRIORITY)
            .map(Self)
    }

    /// The priority as a number.
    pub fn get(self) -> u8 {
        self.0
    }

    /// The lowest queue score of this priority's jobs: the queue is claimed lowest score first,
    /// so higher priorities get lower bands, and within a band earlier arrivals score lower.
    /// Every score stays below 2^53, exact in a double (how Redis keeps scores).
    pub fn band(self) -> u64 {
        u64::from(MAX_PRIORITY - self.0) * ARRIVALS_PER_BAND
    }
}

impl Default for Priority {
    fn default() -> Self {
        Self(DEFAULT_PRIORITY)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// In the API document: an integer from 0 to 9.
impl utoipa::PartialSchema for Priority {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
            .maximum(Some(MAX_PRIORITY))
            .description(Some(
                "0 to 9: queued jobs run highest priority first, first come first served within \
                 one priority. Default 0.",
            ))
            .examples([serde_json::json!(5)])
            .into()
    }
}

impl utoipa::ToSchema for Priority {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_outside_zero_to_nine_do_not_exist() {
        assert_eq!(Priority::new(-1), None);
        assert_eq!(Priority::new(10), None);
        assert_eq!(Priority::new(9).map(Priority::get), Some(9));
        assert_eq!(Priority::default().get(), DEFAULT_PRIORITY);
    }

    #[test]
    fn a_higher_priority_scores_below_every_arrival_of_a_lower_one() {
        let (high, low) = (Priority::new(5).unwrap(), Priority::new(4).unwrap());
        assert!(high.band() + ARRIVALS_PER_BAND - 1 < low.band());
        let top = Priority::new(0).unwrap().band() + ARRIVALS_PER_BAND - 1;
        assert!(top < 1 << 53, "scores stay exact in a double");
    }
}
