//! Readiness polling: wait until HTTP(S) or TCP endpoints are really ready.
//!
//! ready-wait is the command-line front; ssh-deploy awaits an env's ready URL
//! through the same code. Build a [`Plan`] (by hand from [`Plan::new`]), then
//! [`wait`] (or [`wait_blocking`]) for an [`Outcome`].
//!
//! - `plan`: targets, checks and timing, parsed and validated, no IO;
//! - `probe`: one attempt against one target;
//! - `wait`: the polling loop, deadlines, backoff and state changes.

mod plan;
mod probe;
mod wait;

pub use plan::{
    HttpCheck, JsonPath, Mode, Plan, PlanError, StatusSet, Target, Tls, parse_cacert,
    parse_duration, parse_header, parse_method, parse_retry_after,
};
pub use wait::{Event, Outcome, State, TargetOutcome, wait, wait_blocking};

/// What slipway-ready's errors say: their exit codes ([`classify`]); none
/// names a place in a file. A tool that uses this crate passes it to
/// [`slipway_core::cli::finish`].
pub const ERRORS: slipway_core::cli::ErrorKinds =
    slipway_core::cli::ErrorKinds::codes_only(classify);

/// The exit code `cause` says if it is one of slipway-ready's errors: a tool that
/// uses this crate passes it to [`slipway_core::cli::finish`].
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    [slipway_core::cli::code::<PlanError>]
        .iter()
        .find_map(|code| code(cause))
}
