//! The waiting itself: poll every target of a [`Plan`] until it is ready or
//! the deadline passes, sleeping between attempts.
//!
//! Each target polls on its own task; the waiting task keeps the latest
//! facts of each, reports state changes (never single polls) and stops
//! everything at the deadline. Nothing here prints or panics.
//!
//! Every target gets at least one attempt, with its full `--attempt-timeout`,
//! even when `--timeout` is shorter (`--timeout 0s` checks once, as
//! `kubectl wait --timeout=0` does): a wait that ends "after 0 attempts"
//! would say nothing about why the target is not ready. Later attempts are
//! cut to what is left of `--timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::plan::{Mode, Plan, Target};
use super::probe::{self, Attempt};
pub use slipway_contract::ready_wait::{Outcome, TargetOutcome};

/// How much the pause grows after each failed attempt.
const BACKOFF: f64 = 1.5;
/// The share of a pause that jitter may take off (never adds, so a pause
/// never exceeds `--max-interval`).
const JITTER: f64 = 0.2;
/// The shortest pause, even when `Retry-After: 0` asks for none.
const MIN_PAUSE: Duration = Duration::from_millis(50);

/// A change in one target's state, for people watching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The target's position in [`Plan::targets`].
    pub index: usize,
    /// The target as shown to people.
    pub target: String,
    /// The new state.
    pub state: State,
}

/// What a target looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The last attempt failed, for this reason.
    Waiting(String),
    /// Successful attempts in a row, short of `--stable`.
    Passing {
        /// Successes in a row so far.
        successes: u32,
        /// Successes in a row needed.
        needed: u32,
    },
    /// Ready.
    Ready {
        /// Attempts made.
        attempts: u32,
        /// Time from the start of the wait.
        after: Duration,
    },
}

/// What a polling task tells the waiting one after each attempt.
struct Update {
    index: usize,
    facts: TargetOutcome,
    state: State,
}

/// What is known of `target` before its first attempt.
fn pending(target: &Target) -> TargetOutcome {
    TargetOutcome {
        target: target.to_string(),
        ready: false,
        attempts: 0,
        last_status: None,
        last_error: None,
        body_excerpt: None,
        ready_after: None,
    }
}

/// Polls the plan's targets until they are ready or `plan.timeout` passes,
/// calling `events` on each state change. Never panics and never fails:
/// every problem ends up in the [`Outcome`].
pub async fn wait(plan: &Plan, mut events: impl FnMut(&Event)) -> Outcome {
    let started = Instant::now();
    let deadline =
        tokio::time::Instant::from_std(slipway_core::duration::deadline(started, plan.timeout));
    let mut facts: Vec<TargetOutcome> = plan.targets.iter().map(pending).collect();
    let needs_client = plan.targets.iter().any(|t| matches!(t, Target::Http(_)));
    let client = if needs_client {
        match probe::build_client(plan) {
            Ok(client) => Some(client),
            Err(error) => {
                for fact in &mut facts {
                    fact.last_error = Some(error.clone());
                }
                return Outcome {
                    ready: false,
                    elapsed: started.elapsed(),
                    targets: facts,
                };
            }
        }
    } else {
        None
    };

    let shared = Arc::new(plan.clone());
    let (sender, mut receiver) = mpsc::unbounded_channel::<Update>();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..plan.targets.len() {
        tasks.spawn(poll(
            Arc::clone(&shared),
            index,
            client.clone(),
            started,
            sender.clone(),
        ));
    }
    drop(sender);

    let mut last_states: Vec<Option<State>> = vec![None; plan.targets.len()];
    let is_done = |facts: &[TargetOutcome]| match plan.mode {
        Mode::All => facts.iter().all(|f| f.ready),
        Mode::Any => facts.iter().any(|f| f.ready),
    };
    let every_target_tried = |facts: &[TargetOutcome]| facts.iter().all(|f| f.attempts > 0);
    let mut is_past_deadline = false;
    while !is_done(&facts) {
        let update = if is_past_deadline {
            // Only the first attempts still count; each is bounded by
            // `--initial-delay` and `--attempt-timeout`.
            receiver.recv().await
        } else {
            tokio::select! {
                update = receiver.recv() => update,
                () = tokio::time::sleep_until(deadline) => {
                    is_past_deadline = true;
                    if every_target_tried(&facts) {
                        break;
                    }
                    continue;
                }
            }
        };
        let Some(update) = update else { break };
        let changed = match (&last_states[update.index], &update.state) {
            (Some(State::Passing { .. }), State::Passing { .. }) => false,
            (Some(old), new) => old != new,
            (None, _) => true,
        };
        if changed {
            events(&Event {
                index: update.index,
                target: update.facts.target.clone(),
                state: update.state.clone(),
            });
        }
        last_states[update.index] = Some(update.state);
        facts[update.index] = update.facts;
        if is_past_deadline && every_target_tried(&facts) {
            break;
        }
    }
    tasks.abort_all();
    Outcome {
        ready: is_done(&facts),
        elapsed: started.elapsed(),
        targets: facts,
    }
}

/// Like [`wait`], on a runtime of its own, for callers without one.
pub fn wait_blocking(plan: &Plan, events: impl FnMut(&Event)) -> std::io::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(wait(plan, events)))
}

/// Polls one target until it is ready, reporting after every attempt. The
/// waiting task aborts it at the deadline.
async fn poll(
    plan: Arc<Plan>,
    index: usize,
    client: Option<reqwest::Client>,
    started: Instant,
    updates: mpsc::UnboundedSender<Update>,
) {
    let target = &plan.targets[index];
    let deadline = slipway_core::duration::deadline(started, plan.timeout);
    let mut facts = pending(target);
    if !plan.initial_delay.is_zero() {
        tokio::time::sleep(plan.initial_delay).await;
    }
    let mut backoff = plan.interval;
    let mut successes = 0;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let limit = if facts.attempts == 0 {
            plan.attempt_timeout
        } else if remaining.is_zero() {
            return;
        } else {
            plan.attempt_timeout.min(remaining)
        };
        let attempt =
            match tokio::time::timeout(limit, attempt(&plan, target, client.as_ref())).await {
                Ok(attempt) => attempt,
                Err(_) => Attempt {
                    problem: Some(format!(
                        "no answer within {}",
                        humantime::format_duration(limit)
                    )),
                    ..Attempt::default()
                },
            };
        facts.attempts += 1;
        facts.last_status = attempt.status;
        facts.last_error = attempt.problem.clone();
        facts.body_excerpt = attempt.body_excerpt.clone();
        let mut pause;
        let state = if attempt.is_ready {
            successes += 1;
            backoff = plan.interval;
            pause = plan.interval;
            if successes >= plan.stable {
                let after = started.elapsed();
                facts.ready = true;
                facts.ready_after = Some(after);
                State::Ready {
                    attempts: facts.attempts,
                    after,
                }
            } else {
                State::Passing {
                    successes,
                    needed: plan.stable,
                }
            }
        } else {
            successes = 0;
            pause = jitter(backoff);
            backoff = backoff.mul_f64(BACKOFF).min(plan.max_interval);
            State::Waiting(attempt.problem.clone().unwrap_or_default())
        };
        let is_ready = facts.ready;
        if updates
            .send(Update {
                index,
                facts: facts.clone(),
                state,
            })
            .is_err()
            || is_ready
        {
            return;
        }
        if let Some(retry_after) = attempt.retry_after {
            // The server knows best when to come back, shorter or longer;
            // the deadline still wins, as the waiting task stops us there.
            pause = retry_after.max(MIN_PAUSE);
        }
        tokio::time::sleep(pause).await;
    }
}

async fn attempt(plan: &Plan, target: &Target, client: Option<&reqwest::Client>) -> Attempt {
    match (target, client) {
        (Target::Http(url), Some(client)) => probe::http(client, url, &plan.http).await,
        (Target::Http(_), None) => Attempt {
            problem: Some("no HTTP client".to_owned()),
            ..Attempt::default()
        },
        (Target::Tcp { host, port }, _) => probe::tcp(host, *port).await,
    }
}

/// Takes up to [`JITTER`] off a pause, so many waiters started together
/// spread out.
fn jitter(pause: Duration) -> Duration {
    pause.mul_f64(1.0 - JITTER * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(pause_ms: u64) {
        let pause = Duration::from_millis(pause_ms);
        for _ in 0..100 {
            let jittered = jitter(pause);
            assert!(
                jittered <= pause && jittered >= pause.mul_f64(1.0 - JITTER),
                "{jittered:?} from {pause:?}"
            );
        }
    }

    #[test]
    fn jitter_only_shortens_a_pause() {
        check(250);
        check(2_000);
    }
}
