//! When a delivery is attempted: the first attempt and each retry after the one before, as Svix
//! schedules them by default — immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// `WEBHOOK_RETRY_SCHEDULE`'s default, in seconds.
pub const DEFAULT_SCHEDULE: &str = "0,5,300,1800,7200,18000,36000,36000";
/// The longest a receiver's `Retry-After` may put a retry off.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The delay of each attempt after the previous one (the first after the event).
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// How many attempts a delivery gets.
    pub fn attempts(&self) -> usize {
        self.0.len()
    }

    /// How long after the `made`-th attempt the next one is due, if there is one; a receiver's
    /// `Retry-After` puts it off further (up to [`MAX_RETRY_AFTER`]), never sooner.
    pub fn next_after(&self, made: usize, retry_after: Option<Duration>) -> Option<Duration> {
        let scheduled = *self.0.get(made)?;
        Some(scheduled.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER)))
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        DEFAULT_SCHEDULE
            .parse()
            .expect("the default schedule parses")
    }
}

impl FromStr for RetrySchedule {
    type Err = String;

    /// Comma-separated seconds (fractions allowed), at least one.
    fn from_str(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(|part| {
                part.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|secs| {
                        secs.is_finite() && (0.0..=MAX_RETRY_AFTER.as_secs_f64()).contains(secs)
                    })
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        format!(
                            "{part:?} is not a delay in seconds from 0 to {}",
                            MAX_RETRY_AFTER.as_secs()
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(delays))
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs: Vec<String> = self.0.iter().map(|d| d.as_secs_f64().to_string()).collect();
        f.write_str(&secs.join(","))
    }
}

/// A `Retry-After` value: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value.trim()).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_svixs_eight_attempts() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 8);
        assert_eq!(schedule.next_after(0, None), Some(Duration::ZERO));
        assert_eq!(schedule.next_after(2, None), Some(Duration::from_secs(300)));
        assert_eq!(schedule.next_after(8, None), None, "no ninth attempt");
    }

    #[test]
    fn retry_after_puts_a_retry_off_but_never_sooner_or_past_a_day() {
        let schedule: RetrySchedule = "0,5".parse().unwrap();
        let later = Some(Duration::from_secs(60));
        assert_eq!(schedule.next_after(1, later), Some(Duration::from_secs(60)));
        let sooner = Some(Duration::from_secs(1));
        assert_eq!(schedule.next_after(1, sooner), Some(Duration::from_secs(5)));
        let forever = Some(Duration::from_secs(u64::MAX / 2));
        assert_eq!(schedule.next_after(1, forever), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn a_schedule_is_seconds_separated_by_commas() {
        let shrunk: RetrySchedule = "0, 0.2,0.5".parse().unwrap();
        assert_eq!(shrunk.next_after(1, None), Some(Duration::from_millis(200)));
        for bad in ["", "1,,2", "-1", "x", "1e9", "NaN"] {
            assert!(bad.parse::<RetrySchedule>().is_err(), "{bad:?}");
        }
    }
}
