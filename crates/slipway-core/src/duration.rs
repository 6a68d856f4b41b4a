//! Durations users type (`--timeout 30s`, `ready_timeout = "2m"`): the one
//! parser every duration flag and slipway.toml key goes through, with a
//! range check, so no value can overflow a deadline (`Instant + Duration`
//! panics past the clock's range: `--timeout 584542046090y` did).
//!
//! The syntax is humantime's (`30s`, `500ms`, `2m`, `1h30m`, `1day`); the
//! range is zero (or, for [`parse_positive`], one millisecond) up to
//! [`MAX`], one week: no deploy, readiness wait or registry lookup should
//! take longer, and a week added to any `Instant` is far from overflowing.

use std::time::{Duration, Instant};

/// The longest duration any flag or key accepts: one week.
pub const MAX: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The shortest duration [`parse_positive`] accepts.
pub const MIN_POSITIVE: Duration = Duration::from_millis(1);

/// Why a duration was refused; the message says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a duration at all (`soon`, `90` without a unit).
    #[error("{reason}; expected a duration such as `30s`, `500ms` or `2m`")]
    Syntax {
        /// What humantime found wrong.
        reason: String,
    },
    /// Longer than [`MAX`] (or too large to represent at all).
    #[error("`{text}` is out of range: give a duration from `{min}` to {max}")]
    TooLong {
        /// The value as typed.
        text: String,
        /// The shortest allowed duration, as written.
        min: &'static str,
        /// The longest allowed duration, as written (with backticks).
        max: &'static str,
    },
    /// Zero where only a positive duration makes sense.
    #[error("`{text}` must be more than zero: give a duration from `1ms` to `1week` (7 days)")]
    Zero {
        /// The value as typed.
        text: String,
    },
}

crate::cli::exit_status!(DurationError => USAGE);

/// Parses a duration from zero to [`MAX`].
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    parse_in_range(text, "0s", MAX, MAX_TEXT)
}

/// The longest age [`parse_age`] accepts: 366 days.
pub const MAX_AGE: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// Parses an age, from one minute to [`MAX_AGE`]: how long something may
/// have been idle (`ssh-deploy gc --idle 14d`). An age is compared with a
/// recorded time, never added to an `Instant`, so it may pass [`MAX`].
pub fn parse_age(text: &str) -> Result<Duration, DurationError> {
    let duration = parse_in_range(text, "1m", MAX_AGE, "`366days`")?;
    if duration < Duration::from_secs(60) {
        return Err(DurationError::TooLong {
            text: text.trim().to_owned(),
            min: "1m",
            max: "`366days`",
        });
    }
    Ok(duration)
}

/// [`MAX`] as the messages write it.
const MAX_TEXT: &str = "`1week` (7 days)";

/// Parses a duration from [`MIN_POSITIVE`] to [`MAX`], for timeouts and
/// intervals where zero means nothing (or a busy loop).
pub fn parse_positive(text: &str) -> Result<Duration, DurationError> {
    let duration = parse_in_range(text, "1ms", MAX, MAX_TEXT)?;
    if duration < MIN_POSITIVE {
        return Err(DurationError::Zero {
            text: text.trim().to_owned(),
        });
    }
    Ok(duration)
}

fn parse_in_range(
    text: &str,
    min: &'static str,
    max: Duration,
    max_text: &'static str,
) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let duration = humantime::parse_duration(trimmed).map_err(|error| match error {
        humantime::DurationError::NumberOverflow => DurationError::TooLong {
            text: trimmed.to_owned(),
            min,
            max: max_text,
        },
        other => DurationError::Syntax {
            reason: other.to_string(),
        },
    })?;
    if duration > max {
        return Err(DurationError::TooLong {
            text: trimmed.to_owned(),
            min,
            max: max_text,
        });
    }
    Ok(duration)
}

/// A duration as users write it (`1m 30s`, `250ms`); [`parse`] reads it back.
pub fn format(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// `start + duration`, never panicking: a duration past the clock's range
/// (which the parsers above never return) is cut to [`MAX`], and if even
/// that overflows, the deadline is `start` itself.
pub fn deadline(start: Instant, duration: Duration) -> Instant {
    start
        .checked_add(duration)
        .or_else(|| start.checked_add(MAX))
        .unwrap_or(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expected: Result<Duration, &str>) {
        assert_eq!(
            parse(text).map_err(|e| e.to_string()),
            expected.map_err(str::to_owned),
            "`{text}`"
        );
    }

    #[test]
    fn durations_parse_within_the_range() {
        check("30s", Ok(Duration::from_secs(30)));
        check(" 1m30s ", Ok(Duration::from_secs(90)));
        check("500ms", Ok(Duration::from_millis(500)));
        check("0s", Ok(Duration::ZERO));
        check("1week", Ok(MAX));
        check("7days", Ok(MAX));
        check(
            "584542046090y",
            Err("`584542046090y` is out of range: give a duration from `0s` to `1week` (7 days)"),
        );
        check(
            "99999999999999999999999s",
            Err(
                "`99999999999999999999999s` is out of range: give a duration from `0s` to `1week` (7 days)",
            ),
        );
        check(
            "8days",
            Err("`8days` is out of range: give a duration from `0s` to `1week` (7 days)"),
        );
        check(
            "90",
            Err(
                "time unit needed, for example 90sec or 90ms; expected a duration such as `30s`, `500ms` or `2m`",
            ),
        );
        assert_eq!(
            parse_positive("0s").unwrap_err().to_string(),
            "`0s` must be more than zero: give a duration from `1ms` to `1week` (7 days)"
        );
        assert_eq!(parse_positive("1ms").unwrap(), Duration::from_millis(1));
    }

    #[test]
    fn ages_reach_past_a_week_to_a_year() {
        let check_age = |text: &str, expected: Result<Duration, &str>| {
            assert_eq!(
                parse_age(text).map_err(|e| e.to_string()),
                expected.map_err(str::to_owned),
                "`{text}`"
            );
        };
        check_age("7d", Ok(MAX));
        check_age("14d", Ok(Duration::from_secs(14 * 24 * 3600)));
        check_age("366days", Ok(MAX_AGE));
        check_age(
            "367days",
            Err("`367days` is out of range: give a duration from `1m` to `366days`"),
        );
        check_age(
            "30s",
            Err("`30s` is out of range: give a duration from `1m` to `366days`"),
        );
    }

    #[test]
    fn what_is_formatted_parses_back() {
        for duration in [
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_nanos(1_500_000_123),
            Duration::from_secs(90),
            MAX,
        ] {
            assert_eq!(parse(&format(duration)), Ok(duration), "{duration:?}");
        }
    }

    #[test]
    fn deadlines_never_overflow() {
        let now = Instant::now();
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(deadline(now, Duration::MAX), now + MAX);
    }
}
