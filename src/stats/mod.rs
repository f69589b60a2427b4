//! Analytics: counters of every hour (jobs created, how they ended, histograms of durations and
//! queue waits, findings), kept by the stores in the step that makes each change, and what
//! `GET /api/v4/stats` makes of a window of them.
//!
//! Pure logic only: the stores keep the counters (Redis in create.lua and transition.lua, one
//! hash per hour; the memory store the same per hour under its lock).

pub mod buckets;
pub mod distribution;
pub mod fields;
pub mod hours;
pub mod percentile;
pub mod report;
pub mod tally;
pub mod window;

pub use fields::Counters;
pub use report::StatsReport;
pub use tally::Tally;
pub use window::Window;
