//! `kube-deploy`: deploy image digests to Kubernetes workloads with kubectl.
//!
//! slipway-deploy's flow (images pinned, lock, record, apply, readiness,
//! restore, the report every deploy tool prints) over the kubernetes target
//! (`target`): the Lease of `lease`, the manifests of `manifests` rendered
//! with the digests (`release`), the steps of `deploy`, every kubectl
//! command an argv run through the one runner of `kubectl`. kube-deploy
//! never talks to a cluster but through kubectl.

mod cli;
mod deploy;
mod kubectl;
mod lease;
mod manifests;
mod release;
mod report;
mod target;

pub use cli::{Cli, ClusterArgs, Command, DeployArgs, RollbackArgs};
pub use report::Report;

use anyhow::Context as _;
use slipway_config::{Config, DeployTarget, Env, KubernetesSource, KubernetesTarget};
use slipway_core::cli::UsageError;
use slipway_core::output::Output;
use slipway_deploy::flow::{self, Options};

use crate::kubectl::{Kubectl, Process};

const TOOL: &str = "kube-deploy";

/// The real runner, `'static` for the lease's renewing thread.
static PROCESS: Process = Process;

/// Runs `kube-deploy`.
pub fn run(cli: Cli, out: &Output) -> anyhow::Result<Report> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let config = Config::locate(cli.global.config.as_deref(), &cwd)?;
    let cluster = match &cli.command {
        Command::Deploy(args) => &args.cluster,
        Command::Rollback(args) => &args.cluster,
        Command::Releases(args) => args,
    };
    let (env, kubernetes, kubectl) = target(&config, cluster)?;
    let timeout = match &cli.command {
        Command::Deploy(args) => args.timeout,
        Command::Rollback(args) => args.timeout,
        Command::Releases(_) => None,
    }
    .unwrap_or(kubernetes.rollout_timeout);
    let progress = out.progress();
    let say = move |line: &str| progress.println(&format!("kube-deploy: {line}"));
    let mut target =
        target::KubeTarget::new(&config, env, kubernetes, kubectl, &PROCESS, timeout, &say)?;
    let who = slipway_deploy::Identity::detect();
    let options = Options {
        tool: TOOL,
        rollback_on_failure: true,
        lock_wait: env.lock_timeout,
    };
    let deploy = match cli.command {
        Command::Deploy(args) => {
            let request = slipway_deploy::images::Request {
                images_from: args.images_from.as_deref(),
                images: &args.images,
                require_revision: args.require_revision.as_deref(),
                registry: &args.registry,
                root: Some(&config.root),
            };
            let pinned = slipway_deploy::images::pin_images(env, &request, TOOL, out)?;
            // The change is planned (the manifests rendered, offline) and
            // checked before any cluster is touched; a dry run shows it.
            target.change(&dry_release(env, &pinned, &who))?;
            if args.dry_run {
                flow::dry_run(&target, env, &pinned, &who, &options)?
            } else {
                let options = Options {
                    rollback_on_failure: !args.no_rollback,
                    ..options
                };
                flow::deploy(&mut target, env, &pinned, &who, &options)?
            }
        }
        Command::Rollback(args) if args.dry_run => {
            // The records are read (the one cluster read); nothing is locked or changed.
            let history = slipway_deploy::Target::history(&target)?;
            let chosen = rollback_to(&history, args.to, env, &target)?;
            let pinned = slipway_deploy::images::Pinned {
                vars: chosen.images.clone(),
                tags: chosen.tags.clone(),
                revision: chosen.git_sha.clone(),
            };
            target.change(&dry_release(env, &pinned, &who))?;
            let mut report = flow::dry_run(&target, env, &pinned, &who, &options)?;
            report.action = "rollback".to_owned();
            report
        }
        Command::Rollback(args) => flow::rollback(&mut target, env, args.to, &who, &options)?,
        Command::Releases(_) => flow::releases(&target, env)?,
    };
    let is_dry_run = deploy.dry_run.is_some();
    let rendered = target.rendered.take();
    Ok(Report {
        deploy: slipway_deploy::report::Report {
            report: deploy,
            tool: TOOL,
        },
        // A dry run's commands are in its `command_line`.
        commands: if is_dry_run {
            Vec::new()
        } else {
            target.commands.take()
        },
        kustomization: rendered.as_ref().map(|r| r.kustomization.clone()),
        // Only a dry run shows the List, and never a Secret's values: the
        // report goes to CI logs, and the manifests' Secrets (a kustomize
        // `secretGenerator`'s too) were never registered for redaction.
        manifest: rendered
            .filter(|_| is_dry_run)
            .and_then(|r| report::shown_manifest(&r.list)),
    })
}

/// The release `rollback` would redeploy, chosen as slipway-deploy's flow
/// chooses it: release `to`, else the newest deployed release before the
/// one that runs now.
fn rollback_to<'a>(
    history: &'a [slipway_deploy::Release],
    to: Option<u64>,
    env: &Env,
    target: &dyn slipway_deploy::Target,
) -> anyhow::Result<&'a slipway_deploy::Release> {
    use slipway_deploy::ReleaseResult::Deployed;
    let chosen = match to {
        Some(id) => history.iter().find(|r| r.id == id),
        None => {
            let running = history.iter().rev().find(|r| r.result == Deployed);
            let before = running.map_or(u64::MAX, |r| r.id);
            history
                .iter()
                .rev()
                .find(|r| r.result == Deployed && r.id < before)
        }
    };
    match chosen {
        Some(release) if release.result == Deployed => Ok(release),
        Some(release) => Err(UsageError::new(format!(
            "release {} of env `{}` failed; roll back only to a release that was deployed (`releases` lists them)",
            release.id, env.name
        ))),
        None => Err(UsageError::new(format!(
            "env `{}` has no release to roll back to on {}{} (`releases` lists them)",
            env.name,
            target.name(),
            to.map(|id| format!(" numbered {id}")).unwrap_or_default()
        ))),
    }
}

/// The release a plan is checked with, and a dry run shows (number 0: nothing is recorded).
fn dry_release(
    env: &Env,
    pinned: &slipway_deploy::images::Pinned,
    who: &slipway_deploy::Identity,
) -> slipway_deploy::Release {
    slipway_deploy::Release {
        id: 0,
        env: env.name.clone(),
        time: slipway_deploy::timestamp(slipway_deploy::now()),
        git_sha: pinned.revision.clone(),
        images: pinned.vars.clone(),
        tags: pinned.tags.clone(),
        deployer_sha: who.deployer_sha.clone(),
        rolled_back_to: None,
        who: who.who.clone(),
        result: slipway_deploy::ReleaseResult::Deployed,
        rollback_of: None,
        detail: None,
    }
}

/// The env, its kubernetes table and how kubectl reaches it (flags over slipway.toml).
fn target<'a>(
    config: &'a Config,
    args: &ClusterArgs,
) -> anyhow::Result<(&'a Env, &'a KubernetesTarget, Kubectl)> {
    let env = config.env_for(&args.env, DeployTarget::Kubernetes)?;
    let kubernetes = env
        .kubernetes
        .as_ref()
        .context("a kubernetes env has its [envs.<name>.kubernetes] table (checked at load)")?;
    if let Some(namespace) = &args.namespace {
        let is_label = (1..=63).contains(&namespace.len())
            && namespace
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !namespace.starts_with('-')
            && !namespace.ends_with('-');
        if !is_label {
            return Err(UsageError::new(format!(
                "invalid `--namespace {namespace}`: a namespace is 1 to 63 lowercase letters, digits and `-`, starting and ending with a letter or digit"
            )));
        }
    }
    if args.context.as_deref().is_some_and(str::is_empty) {
        return Err(UsageError::new(
            "invalid `--context`: empty; leave it out for the env's `context` or kubectl's current one",
        ));
    }
    let kubectl = Kubectl {
        program: args.kubectl.clone(),
        context: args.context.clone().or_else(|| kubernetes.context.clone()),
        namespace: args
            .namespace
            .clone()
            .unwrap_or_else(|| kubernetes.namespace.clone()),
    };
    // The Lease and the records are named after the env in DNS spelling
    // (`Pre_Prod` and `pre-prod` are both `slipway-pre-prod`): two envs of
    // one namespace with one spelling would share a lock and a history,
    // and a rollback of one would deploy the other's images.
    let lease = lease::name(&env.name);
    if let Some(other) = config.envs.values().find(|other| {
        other.name != env.name
            && lease::name(&other.name) == lease
            && other
                .kubernetes
                .as_ref()
                .is_some_and(|k| k.namespace == kubectl.namespace && k.context == kubectl.context)
    }) {
        return Err(UsageError::new(format!(
            "envs `{}` and `{}` of slipway.toml both keep their Lease and release records as `{lease}` in namespace `{}`: they would share a lock and a history; rename one (lowercase letters, digits and `-` name them exactly) or give it another `namespace`",
            env.name, other.name, kubectl.namespace
        )));
    }
    Ok((env, kubernetes, kubectl))
}

/// The manifests of a `manifests` or `kustomize` env; `None` for `workloads`.
fn source(
    config: &Config,
    kubernetes: &KubernetesTarget,
) -> anyhow::Result<Option<manifests::Source>> {
    Ok(match &kubernetes.source {
        KubernetesSource::Workloads(_) => None,
        KubernetesSource::Manifests(path) => {
            Some(manifests::Source::manifests(&config.resolve(path))?)
        }
        KubernetesSource::Kustomize(path) => {
            Some(manifests::Source::Kustomize(config.resolve(path)))
        }
    })
}

/// Every `[images.*]` as (name, repository), in both spellings of the repository.
fn known_images(config: &Config) -> Vec<(String, String)> {
    config
        .images
        .values()
        .flat_map(|image| {
            [
                (image.name.clone(), image.repository().to_string()),
                (image.name.clone(), image.repository().familiar()),
            ]
        })
        .collect()
}
