//! The flow every target shares. A deploy: lock, number the release after
//! the target's history, apply (the target waits for convergence), wait
//! for readiness, and when either fails put the previous deployed release
//! back (unless told not to), recording the outcome either way. A rollback:
//! the same with an older release's images. Releases: the history.

use std::time::Duration;

use slipway_config::Env;
use slipway_contract::ssh_deploy::{DryRun, HostReport, Outcome, Report};

use crate::images::Pinned;
use crate::ready::{self, Gate};
use crate::{Identity, Release, ReleaseResult, Target};

/// What a deploy or rollback is asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// The tool's name, for the `User-Agent` of readiness.
    pub tool: &'static str,
    /// Put the previous release back when the deploy fails.
    pub rollback_on_failure: bool,
    /// How long to wait for another deploy's lock.
    pub lock_wait: Duration,
}

fn host(target: &dyn Target) -> HostReport {
    HostReport {
        host: target.name(),
        outcome: Outcome::Listed,
        release: None,
        uploaded: Vec::new(),
        unchanged: Vec::new(),
        exit_status: None,
        ready: None,
        ready_ms: None,
        rolled_back_to: None,
        error: None,
        releases: Vec::new(),
        lock: None,
        instances: Vec::new(),
    }
}

fn report(env: &Env, action: &str, hosts: Vec<HostReport>) -> Report {
    Report {
        env: env.name.clone(),
        action: action.to_owned(),
        instance: None,
        dry_run: None,
        hosts,
    }
}

/// The release a deploy of `pinned` would record as number `id`.
fn new_release(env: &Env, id: u64, pinned: &Pinned, who: &Identity) -> Release {
    Release {
        id,
        env: env.name.clone(),
        time: crate::timestamp(crate::now()),
        git_sha: pinned.revision.clone(),
        images: pinned.vars.clone(),
        tags: pinned.tags.clone(),
        deployer_sha: who.deployer_sha.clone(),
        rolled_back_to: None,
        who: who.who.clone(),
        result: ReleaseResult::Deployed,
        rollback_of: None,
        detail: None,
    }
}

/// The newest release whose result is `deployed`: what runs now.
fn current(history: &[Release]) -> Option<&Release> {
    history
        .iter()
        .rev()
        .find(|r| r.result == ReleaseResult::Deployed)
}

/// `--dry-run`: the exact commands, the environment they get, the ready
/// URL; nothing is locked, applied or recorded.
pub fn dry_run(
    target: &dyn Target,
    env: &Env,
    pinned: &Pinned,
    who: &Identity,
    options: &Options,
) -> anyhow::Result<Report> {
    // The ready URL is checked as a deploy would, before anything.
    ready::plan(env, options.tool)?;
    let release = new_release(env, 0, pinned, who);
    let mut report = report(env, "deploy", Vec::new());
    report.dry_run = Some(DryRun {
        hosts: vec![target.name()],
        remote_path: String::new(),
        files: Vec::new(),
        deploy_env: String::new(),
        command_env: target.command_env(&release),
        command_line: target.commands(&release).join("\n"),
        ready_url: env
            .ready_url
            .as_deref()
            .map(|u| slipway_core::secret::RedactedUrl(u).to_string()),
    });
    Ok(report)
}

/// What a tool's `deploy` subcommand was asked, beyond the env.
#[derive(Debug)]
pub struct DeployRequest<'a> {
    /// The images given and how to check them.
    pub images: crate::images::Request<'a>,
    /// `--dry-run`: print the plan, change nothing.
    pub dry_run: bool,
    /// `--no-rollback`: keep a failed release in place.
    pub no_rollback: bool,
}

/// A tool's `deploy` subcommand: pins the images, then prints the plan
/// ([`dry_run`]) or deploys them ([`deploy`]).
pub fn deploy_command(
    target: &mut dyn Target,
    env: &Env,
    request: &DeployRequest<'_>,
    who: &Identity,
    options: &Options,
    out: &slipway_core::output::Output,
) -> anyhow::Result<Report> {
    let pinned = crate::images::pin_images(env, &request.images, options.tool, out)?;
    if request.dry_run {
        return dry_run(target, env, &pinned, who, options);
    }
    let options = Options {
        rollback_on_failure: !request.no_rollback,
        ..options.clone()
    };
    deploy(target, env, &pinned, who, &options)
}

/// Deploys `pinned` to `target`.
pub fn deploy(
    target: &mut dyn Target,
    env: &Env,
    pinned: &Pinned,
    who: &Identity,
    options: &Options,
) -> anyhow::Result<Report> {
    let ready = ready::plan(env, options.tool)?;
    let _lock = target.lock(who, options.lock_wait)?;
    let history = target.history()?;
    let id = history.iter().map(|r| r.id).max().unwrap_or(0) + 1;
    let previous = current(&history).cloned();
    let release = new_release(env, id, pinned, who);
    let host = run(
        target,
        env,
        release,
        previous.as_ref(),
        ready.as_ref(),
        options,
    )?;
    Ok(report(env, "deploy", vec![host]))
}

/// Redeploys release `to` (by default the deployed release before the one
/// that runs now) as a new release.
pub fn rollback(
    target: &mut dyn Target,
    env: &Env,
    to: Option<u64>,
    who: &Identity,
    options: &Options,
) -> anyhow::Result<Report> {
    let ready = ready::plan(env, options.tool)?;
    let _lock = target.lock(who, options.lock_wait)?;
    let history = target.history()?;
    let running = current(&history).cloned();
    let chosen = match to {
        Some(id) => history
            .iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| {
                let ids: Vec<String> = history.iter().map(|r| r.id.to_string()).collect();
                slipway_core::cli::UsageError::new(format!(
                    "`--to {id}`: env `{}` has no release {id} on {}; its releases are {}",
                    env.name,
                    target.name(),
                    if ids.is_empty() {
                        "none".to_owned()
                    } else {
                        ids.join(", ")
                    }
                ))
            })?,
        None => {
            let before = running.as_ref().map_or(u64::MAX, |r| r.id);
            history
                .iter()
                .rev()
                .find(|r| r.result == ReleaseResult::Deployed && r.id < before)
                .cloned()
                .ok_or_else(|| {
                    slipway_core::cli::UsageError::new(format!(
                        "env `{}` has no deployed release before the one that runs on {}; nothing to roll back to (`releases` lists them)",
                        env.name,
                        target.name()
                    ))
                })?
        }
    };
    if chosen.result != ReleaseResult::Deployed {
        return Err(slipway_core::cli::UsageError::new(format!(
            "release {} of env `{}` {}; roll back only to a release that was deployed (`releases` lists them)",
            chosen.id,
            env.name,
            match chosen.result {
                ReleaseResult::Failed => "failed",
                _ => "was cancelled",
            }
        )));
    }
    let id = history.iter().map(|r| r.id).max().unwrap_or(0) + 1;
    let release = Release {
        id,
        env: env.name.clone(),
        time: crate::timestamp(crate::now()),
        git_sha: chosen.git_sha.clone(),
        images: chosen.images.clone(),
        tags: chosen.tags.clone(),
        deployer_sha: who.deployer_sha.clone(),
        rolled_back_to: Some(chosen.id),
        who: who.who.clone(),
        result: ReleaseResult::Deployed,
        rollback_of: running.as_ref().map(|r| r.id),
        detail: None,
    };
    let host = run(
        target,
        env,
        release,
        running.as_ref(),
        ready.as_ref(),
        options,
    )?;
    Ok(report(env, "rollback", vec![host]))
}

/// The env's releases on `target`, oldest first.
pub fn releases(target: &dyn Target, env: &Env) -> anyhow::Result<Report> {
    let mut host = host(target);
    host.releases = target.history()?;
    Ok(report(env, "releases", vec![host]))
}

/// Applies `release`, waits for readiness, restores `previous` when either
/// fails (if asked), and records the outcome.
fn run(
    target: &mut dyn Target,
    env: &Env,
    mut release: Release,
    previous: Option<&Release>,
    ready: Option<&slipway_ready::Plan>,
    options: &Options,
) -> anyhow::Result<HostReport> {
    let mut host = host(target);
    host.release = Some(release.id);
    // The release is recorded before anything changes, as failed until it
    // is known to have worked: a deploy killed half-way leaves a record
    // that says so, never one that claims success.
    release.result = ReleaseResult::Failed;
    release.detail = Some("the deploy did not finish".to_owned());
    target.record(&release, env.keep_releases)?;
    let failure = match target.apply(&release) {
        Err(error) => Some(format!("{error:#}")),
        Ok(()) => match ready::wait(ready, env) {
            Gate::NoUrl => None,
            Gate::Ready(elapsed) => {
                host.ready = Some(true);
                host.ready_ms = Some(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
                None
            }
            Gate::NotReady(why) => {
                host.ready = Some(false);
                Some(why)
            }
        },
    };
    let Some(why) = failure else {
        release.result = ReleaseResult::Deployed;
        release.detail = None;
        target.record(&release, env.keep_releases)?;
        host.outcome = Outcome::Deployed;
        return Ok(host);
    };
    tracing::info!(release = release.id, %why, "the deploy failed");
    release.detail = Some(why.clone());
    host.outcome = Outcome::Failed;
    host.error = Some(why);
    match previous {
        Some(previous) if options.rollback_on_failure => match target.restore(&release, previous) {
            Ok(()) => {
                release.rolled_back_to = Some(previous.id);
                host.rolled_back_to = Some(previous.id);
                host.outcome = Outcome::RolledBack;
            }
            Err(error) => {
                let detail = format!(
                    "{}; putting release {} back failed too: {error:#}",
                    release.detail.as_deref().unwrap_or_default(),
                    previous.id
                );
                release.detail = Some(detail.clone());
                host.error = Some(detail);
            }
        },
        _ => {}
    }
    target.record(&release, env.keep_releases)?;
    Ok(host)
}
