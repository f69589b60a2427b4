//! Webhooks: jobcast calls back the backends that start jobs when they end — signed (Standard
//! Webhooks), retried on a schedule, queued durably with the change that causes them.

pub mod address;
pub mod delivery;
pub mod schedule;
pub mod sender;
pub mod signing;

pub use schedule::RetrySchedule;
pub use sender::{Attempted, Sender, check_url};
pub use signing::Signer;
