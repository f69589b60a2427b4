//! The hours the counters are kept by: hours since the epoch (UTC), each one Redis hash
//! `{jobcast}:stats:<hour>` (or its copy in the memory store), kept a little past 30 days.
//!
//! create.lua and transition.lua name the same hash from the same constants (a test below
//! reads them).

use crate::job::Timestamp;
use chrono::DateTime;

/// One hour in milliseconds.
pub const MS_PER_HOUR: i64 = 3_600_000;
/// What an hour's hash is named after: the prefix and the hour since the epoch.
pub const STATS_KEY_PREFIX: &str = "{jobcast}:stats:";
/// How long after its end an hour's counters are kept: 30 days (the longest window) and one
/// hour more, so an hour is gone an hour after it left every window.
pub const STATS_KEEP_SECS: i64 = 30 * 86_400 + 3_600;

/// The hour (since the epoch) that the instant `ms` (ms since the epoch) is in.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_HOUR)
}

/// The Redis key of `hour`'s counters.
pub fn key_of(hour: i64) -> String {
    format!("{STATS_KEY_PREFIX}{hour}")
}

/// When `hour`'s counters expire, in seconds since the epoch (Redis's `EXPIREAT`): the same
/// instant whoever counts in the hour, so no write shortens or stretches another's.
pub fn expires_at_secs(hour: i64) -> i64 {
    (hour + 1) * (MS_PER_HOUR / 1000) + STATS_KEEP_SECS
}

/// The instant `hour` starts.
pub fn start_of(hour: i64) -> Timestamp {
    let start = DateTime::from_timestamp_millis(hour * MS_PER_HOUR).unwrap_or_default();
    Timestamp(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_belongs_to_the_hour_that_started_before_it() {
        let noon = chrono::DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z").unwrap();
        let noon_ms = noon.timestamp_millis();
        assert_eq!(hour_of(noon_ms), hour_of(noon_ms + MS_PER_HOUR - 1));
        assert_eq!(hour_of(noon_ms - 1) + 1, hour_of(noon_ms));
        assert_eq!(start_of(hour_of(noon_ms + 1_234)).0, noon);
        assert_eq!(
            start_of(hour_of(noon_ms)).to_string(),
            "2026-12-03T12:00:00.000Z"
        );
    }

    #[test]
    fn an_hour_is_kept_until_an_hour_after_it_leaves_the_30_day_window() {
        let hour = 493_000;
        let leaves_window_secs = (hour + 720) * 3_600;
        assert_eq!(expires_at_secs(hour), leaves_window_secs + 2 * 3_600);
        assert_eq!(key_of(hour), "{jobcast}:stats:493000");
    }

    #[test]
    fn the_scripts_name_the_hash_and_its_expiry_alike() {
        let constants = format!(
            "local STATS_PREFIX, STATS_KEEP_SECS = '{STATS_KEY_PREFIX}', {STATS_KEEP_SECS}"
        );
        for (name, script) in [
            ("create.lua", include_str!("../store/redis/create.lua")),
            (
                "transition.lua",
                include_str!("../store/redis/transition.lua"),
            ),
        ] {
            assert!(script.contains(&constants), "{name}: {constants}");
        }
    }
}
