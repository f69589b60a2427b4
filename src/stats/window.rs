//! The windows `GET /api/v4/stats` answers for: whole hours, the current one and those before.

use std::fmt;
use std::ops::RangeInclusive;

/// How far back the statistics look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Window {
    /// The current hour only.
    Hour,
    /// The current hour and the 23 before it.
    #[default]
    Day,
    /// 168 hours.
    Week,
    /// 720 hours: as far back as the counters are kept.
    Month,
}

impl Window {
    /// Every window, as the query names it.
    pub const NAMES: &[&str] = &["1h", "24h", "7d", "30d"];

    /// The window `text` names: `1h`, `24h`, `7d` or `30d`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "1h" => Some(Self::Hour),
            "24h" => Some(Self::Day),
            "7d" => Some(Self::Week),
            "30d" => Some(Self::Month),
            _ => None,
        }
    }

    /// How many hours it covers.
    pub fn hours(self) -> i64 {
        match self {
            Self::Hour => 1,
            Self::Day => 24,
            Self::Week => 7 * 24,
            Self::Month => 30 * 24,
        }
    }

    /// The hours it covers when `current` is the current hour, oldest first.
    pub fn range(self, current: i64) -> RangeInclusive<i64> {
        current - self.hours() + 1..=current
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = match self {
            Self::Hour => 0,
            Self::Day => 1,
            Self::Week => 2,
            Self::Month => 3,
        };
        f.write_str(Self::NAMES[index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_window_reads_back_as_it_is_named_and_covers_whole_hours() {
        for name in Window::NAMES {
            let window = Window::parse(name).unwrap();
            assert_eq!(window.to_string(), *name);
            let range = window.range(1_000);
            assert_eq!(
                (range.end(), range.clone().count() as i64),
                (&1_000, window.hours())
            );
        }
        assert_eq!(Window::parse("30d").unwrap().hours(), 720);
        assert_eq!(Window::default(), Window::Day);
    }

    #[test]
    fn other_windows_are_not_read() {
        for text in ["", "2h", "1d", "24H", "720h", "30 d"] {
            assert_eq!(Window::parse(text), None, "{text:?}");
        }
    }
}
