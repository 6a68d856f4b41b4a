//! `ready-wait --format json`: one [`Outcome`].

use std::time::Duration;

/// How a wait ended; the whole JSON document of `ready-wait --format json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// Whether the plan's targets are ready (all, or one under `--any`).
    pub ready: bool,
    /// Time from the start to the end of the wait; JSON `elapsed_ms`,
    /// whole milliseconds.
    #[serde(rename = "elapsed_ms", with = "super::millis")]
    pub elapsed: Duration,
    /// One entry per target, in the plan's order.
    pub targets: Vec<TargetOutcome>,
}

/// What is known about one target at the end of a wait.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TargetOutcome {
    /// The target as shown to people (no password).
    pub target: String,
    /// Whether it became ready.
    pub ready: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The HTTP status of the last answer (null for TCP, or no answer).
    pub last_status: Option<u16>,
    /// Why the last attempt was not ready.
    pub last_error: Option<String>,
    /// The start of the last body, on one line.
    pub body_excerpt: Option<String>,
    /// When it became ready, from the start of the wait; JSON
    /// `ready_after_ms`, whole milliseconds, null when it did not.
    #[serde(rename = "ready_after_ms", with = "super::millis::option")]
    pub ready_after: Option<Duration>,
}
