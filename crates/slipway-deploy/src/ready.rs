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

/// Polls `env`'s `ready_url` (if any) until it is ready or `ready_timeout`
/// passes; `tool` names the `User-Agent`.
pub fn wait(env: &Env, tool: &str) -> anyhow::Result<Gate> {
    let Some(url) = &env.ready_url else {
        return Ok(Gate::NoUrl);
    };
    let target = slipway_ready::Target::parse(url)
        .with_context(|| format!("the `ready_url` of env `{}`", env.name))?;
    let mut plan = slipway_ready::Plan::new(vec![target]);
    plan.timeout = env.ready_timeout;
    plan.user_agent = format!("{tool}/{}", env!("CARGO_PKG_VERSION"));
    plan.validate()
        .with_context(|| format!("the `ready_url` of env `{}`", env.name))?;
    let outcome =
        slipway_ready::wait_blocking(&plan, |_| {}).context("cannot wait for the ready URL")?;
    if outcome.ready {
        return Ok(Gate::Ready(outcome.elapsed));
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
    Ok(Gate::NotReady(format!(
        "`{}` not ready after {}: {last}",
        slipway_core::secret::RedactedUrl(url),
        humanize(env.ready_timeout)
    )))
}

fn humanize(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
