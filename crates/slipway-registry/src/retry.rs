//! The one retry policy of every registry request: which answers are worth
//! another attempt (429, 5xx, a dropped connection; never a TLS failure),
//! how long to wait (exponential backoff with jitter, or the registry's
//! `Retry-After` in full), and the bounds ([`crate::RegistryOptions`]'s
//! `max_attempts` and `retry_budget`, each attempt within
//! `request_timeout`) that the transport applies around every call.

use std::time::Duration;

/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Whether an answer with `status` is worth another attempt: 429 (too many
/// requests) and 5xx (the registry or a proxy in front of it failed).
pub(crate) fn is_retryable(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// How long to wait after a retryable `response`: its `Retry-After`, in
/// full, when it has one (the caller retries only when that fits the retry
/// budget, else stops at once and says so), else `backoff`.
pub(crate) fn retry_wait(response: &reqwest::Response, backoff: Duration) -> Duration {
    retry_after(response).unwrap_or(backoff)
}

/// The response's `Retry-After`, if it has a valid one.
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
}

/// The wait a `Retry-After` value asks for, at `now`: delta-seconds or an
/// HTTP date (RFC 9110 §10.2.3); a date in the past means no wait.
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `first · 2^(attempt-1)`, capped at [`MAX_BACKOFF`], then scaled into its
/// upper half by `jitter` (0 to 1): clients that failed together do not
/// retry together, and no wait is shorter than half the nominal one.
pub(crate) fn backoff(first: Duration, attempt: u32, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    let nominal = first.saturating_mul(factor).min(MAX_BACKOFF);
    nominal.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_backoff(attempt: u32, jitter: f64, expected_ms: u64) {
        let got = backoff(Duration::from_millis(200), attempt, jitter);
        assert_eq!(
            got,
            Duration::from_millis(expected_ms),
            "attempt {attempt}, jitter {jitter}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_five_seconds_with_jitter_in_the_upper_half() {
        check_backoff(1, 1.0, 200);
        check_backoff(1, 0.0, 100);
        check_backoff(1, 0.5, 150);
        check_backoff(2, 1.0, 400);
        check_backoff(3, 1.0, 800);
        check_backoff(5, 1.0, 3200);
        check_backoff(6, 1.0, 5000);
        check_backoff(6, 0.0, 2500);
        check_backoff(40, 1.0, 5000);
        // Out-of-range jitter is clamped, never a longer or negative wait.
        check_backoff(1, 7.0, 200);
        check_backoff(1, -1.0, 100);
    }

    #[track_caller]
    fn check_retry_after(value: &str, expected: Option<u64>) {
        // Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after(value, now),
            expected.map(Duration::from_secs),
            "`{value}`"
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        check_retry_after("3", Some(3));
        check_retry_after(" 0 ", Some(0));
        check_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", Some(10));
        check_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", Some(0));
        // A date already past: retry at once.
        check_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", Some(0));
        check_retry_after("-1", None);
        check_retry_after("soon", None);
        check_retry_after("", None);
    }
}
