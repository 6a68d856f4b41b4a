//! The readiness gate of every target: the env's `ready_url` polled from
//! the runner (slipway-ready's loop) until `ready_timeout`.

use std::time::Duration;

use anyhow::Context as _;
use slipway_config::Env;

/// How the gate ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The env has no `ready_url`: nothing to wait for.
    NoUrl,
    /// The URL answered as ready after this long.
    Ready(Duration),
    /// It did not before `ready_timeout`: the last problem seen.
    NotReady(String),
}

/// The readiness plan of `env`'s `ready_url` (`None`: no URL), checked:
/// built before anything is locked or changed, so a URL the probe cannot
/// use is bad input that leaves the target as it was. `tool` names the
/// `User-Agent`.
pub fn plan(env: &Env, tool: &str) -> anyhow::Result<Option<slipway_ready::Plan>> {
    let Some(url) = &env.ready_url else {
        return Ok(None);
    };
    let target = slipway_ready::Target::parse(url)
        .with_context(|| format!("the `ready_url` of env `{}`", env.name))?;
    let mut plan = slipway_ready::Plan::new(vec![target]);
    plan.timeout = env.ready_timeout;
    plan.user_agent = format!("{tool}/{}", env!("CARGO_PKG_VERSION"));
    plan.validate()
        .with_context(|| format!("the `ready_url` of env `{}`", env.name))?;
    Ok(Some(plan))
}

/// Polls `plan` (`env`'s, from [`plan`]) until it is ready or
/// `ready_timeout` passes. A wait that cannot even start counts as not
/// ready, so the deploy is rolled back rather than left half-done.
pub fn wait(plan: Option<&slipway_ready::Plan>, env: &Env) -> Gate {
    let (Some(plan), Some(url)) = (plan, &env.ready_url) else {
        return Gate::NoUrl;
    };
    let shown = slipway_core::secret::RedactedUrl(url);
    let outcome = match slipway_ready::wait_blocking(plan, |_| {}) {
        Ok(outcome) => outcome,
        Err(error) => return Gate::NotReady(format!("cannot wait for `{shown}`: {error}")),
    };
    if outcome.ready {
        return Gate::Ready(outcome.elapsed);
    }
    let last = outcome
        .targets
        .first()
        .and_then(|t| {
            t.last_error
                .clone()
                .or_else(|| t.last_status.map(|s| format!("status {s}")))
        })
        .unwrap_or_else(|| "no answer".to_owned());
    Gate::NotReady(format!(
        "`{shown}` not ready after {}: {last}",
        humanize(env.ready_timeout)
    ))
}

fn humanize(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
