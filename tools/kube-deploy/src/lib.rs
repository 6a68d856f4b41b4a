//! `kube-deploy`: deploy image digests to Kubernetes workloads with kubectl.
//!
//! Flags and slipway.toml become a plan first (the env's kubernetes table,
//! the images pinned to digests in `release`, the manifests rendered with
//! those digests in `manifests`), checked whole before a cluster is
//! touched; `--dry-run` prints it. Then `lease` takes the env's Lease,
//! `deploy` runs the kubectl steps through the one runner of `kubectl`,
//! and `report` is what stdout gets. kube-deploy never talks to a cluster
//! but through kubectl.

mod cli;
mod deploy;
mod kubectl;
mod lease;
mod manifests;
mod release;
mod report;

pub use cli::{Cli, ClusterArgs, Command, DeployArgs, RollbackArgs};
pub use report::{Outcome, Report};

use std::time::Duration;

use anyhow::Context as _;
use slipway_config::{Config, DeployTarget, Env, KubernetesSource, KubernetesTarget};
use slipway_core::cli::UsageError;
use slipway_core::output::Output;

use crate::deploy::{Change, Steps};
use crate::kubectl::{Kubectl, Process};
use crate::release::Release;

/// The real runner, `'static` for the lease's renewing thread.
static PROCESS: Process = Process;

/// Runs `kube-deploy`.
pub fn run(cli: Cli, out: &Output) -> anyhow::Result<Report> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let config = Config::locate(cli.global.config.as_deref(), &cwd)?;
    match cli.command {
        Command::Deploy(args) => deploy(&args, &config, out),
        Command::Rollback(args) => rollback(&args, &config, out),
        Command::Releases(args) => releases(&args, &config),
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

/// Who deploys: the CI's actor, else the login name.
fn deployer(env: &dyn Fn(&str) -> Option<String>) -> String {
    [
        "GITHUB_ACTOR",
        "GITLAB_USER_LOGIN",
        "BUILDKITE_BUILD_CREATOR",
        "USER",
    ]
    .iter()
    .find_map(|name| env(name))
    .unwrap_or_else(|| "unknown".to_owned())
}

fn say(out: &Output) -> impl Fn(&str) + '_ {
    let progress = out.progress();
    move |line: &str| progress.println(&format!("kube-deploy: {line}"))
}

fn deploy(args: &DeployArgs, config: &Config, out: &Output) -> anyhow::Result<Report> {
    let (env, kubernetes, kubectl) = target(config, &args.cluster)?;
    let vars = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let images_from = match &args.images_from {
        None => None,
        Some(path) if path.as_os_str() == "-" => Some((
            slipway_core::input::read_stdin_to_string().map_err(|e| {
                UsageError::new(format!("cannot read `--images-from -` (stdin): {e}"))
            })?,
            "-".to_owned(),
        )),
        Some(path) => Some((
            slipway_core::input::read_to_string(path).map_err(|e| {
                UsageError::new(format!(
                    "cannot read `--images-from {}`: {e}; give img-build's JSON report (`img-build --format json > build.json`) or `-` for stdin",
                    path.display()
                ))
            })?,
            path.display().to_string(),
        )),
    };
    let (images, built_revision) = release::pinned(
        config,
        env,
        &args.images,
        images_from.as_ref().map(|(t, s)| (t.as_str(), s.as_str())),
    )?;
    let revision = args.revision.clone().or(built_revision).or_else(|| {
        slipway_core::ci::CiContext::from_env_or_github_variables(vars)
            .ok()
            .and_then(|ci| ci.sha)
    });
    let release = Release {
        id: jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string(),
        images: images
            .iter()
            .map(|i| (i.name.clone(), i.reference()))
            .collect(),
        revision,
        deployer: deployer(&vars),
    };
    let mut report = Report::new("deploy", &env.name, &kubectl, args.dry_run);
    let change = match (&kubernetes.source, source(config, kubernetes)?) {
        (KubernetesSource::Workloads(workloads), _) => {
            deploy::set_image_change(workloads, &images)?
        }
        (_, Some(source)) => {
            let rendered = manifests::render(
                &kubectl,
                &PROCESS,
                &source,
                &images,
                &release,
                &known_images(config),
            )?;
            report.commands.extend(rendered.commands);
            report.kustomization = Some(rendered.kustomization);
            report.manifest = Some(rendered.list.clone());
            Change::Apply {
                list: rendered.list,
                workloads: rendered.workloads,
            }
        }
        (_, None) => anyhow::bail!("a manifests or kustomize env has its manifests"),
    };
    let timeout = args.timeout.unwrap_or(kubernetes.rollout_timeout);
    report.release = Some(release.clone());
    if args.dry_run {
        let lease_name = lease::name(&env.name);
        report.commands.push(lease::get_argv(&kubectl, &lease_name));
        report.commands.push(lease::write_argv(&kubectl, "create"));
        for workload in change.workloads() {
            report
                .commands
                .push(deploy::generation_argv(&kubectl, &workload));
        }
        report.commands.extend(
            deploy::change_commands(&kubectl, &change, &release)
                .into_iter()
                .map(|(argv, _)| argv),
        );
        for workload in change.workloads() {
            report
                .commands
                .push(kubectl.rollout_status(&workload, timeout));
        }
        report.workloads = change
            .workloads()
            .into_iter()
            .map(|workload| report::WorkloadReport {
                workload,
                outcome: None,
                revisions: Vec::new(),
            })
            .collect();
        return Ok(report);
    }
    let say = say(out);
    let holder = format!("{} {}", release.deployer, release.id);
    let held = lease::acquire(
        &kubectl,
        &PROCESS,
        &env.name,
        &holder,
        env.lock_timeout,
        &say,
        &mut report.commands,
    )?;
    report.lease = Some(held.shown());
    let ready = ready_check(env, out);
    let mut steps = Steps {
        runner: &PROCESS,
        commands: std::mem::take(&mut report.commands),
        say: &say,
    };
    let result = deploy::deploy(
        &mut steps,
        &kubectl,
        &change,
        &release,
        timeout,
        &ready,
        args.no_rollback,
        &mut report,
    );
    report.commands = steps.commands;
    if held.is_lost() {
        out.warning("the env's lease could not be renewed during the deploy: another deploy may have run at the same time");
    }
    report.commands.push(held.release(&PROCESS));
    result?;
    Ok(report)
}

/// Waits for the env's `ready_url` as ready-wait does: the milliseconds it
/// took, `None` without a URL, or the last failure.
fn ready_check<'a>(env: &'a Env, out: &'a Output) -> impl Fn() -> Result<Option<u64>, String> + 'a {
    move || {
        let Some(url) = &env.ready_url else {
            return Ok(None);
        };
        let target = slipway_ready::Target::parse(url).map_err(|e| e.to_string())?;
        let mut plan = slipway_ready::Plan::new(vec![target]);
        plan.timeout = env.ready_timeout;
        plan.user_agent = format!("kube-deploy/{}", env!("CARGO_PKG_VERSION"));
        let progress = out.progress();
        progress.println(&format!("kube-deploy: waiting for {url}"));
        let outcome = slipway_ready::wait_blocking(&plan, |_| {}).map_err(|e| e.to_string())?;
        if outcome.ready {
            Ok(Some(
                u64::try_from(outcome.elapsed.as_millis()).unwrap_or(u64::MAX),
            ))
        } else {
            Err(outcome
                .targets
                .first()
                .and_then(|t| t.last_error.clone())
                .unwrap_or_else(|| "not ready".to_owned()))
        }
    }
}

/// The env's workloads: its `workloads`, or those its manifests hold.
fn workloads(
    config: &Config,
    kubernetes: &KubernetesTarget,
    kubectl: &Kubectl,
) -> anyhow::Result<Vec<String>> {
    match (&kubernetes.source, source(config, kubernetes)?) {
        (KubernetesSource::Workloads(list), _) => Ok(list
            .iter()
            .map(|w| format!("{}/{}", w.kind, w.name))
            .collect()),
        (_, Some(source)) => {
            let release = Release {
                id: "query".to_owned(),
                images: Default::default(),
                revision: None,
                deployer: String::new(),
            };
            Ok(manifests::render(kubectl, &PROCESS, &source, &[], &release, &[])?.workloads)
        }
        (_, None) => anyhow::bail!("a manifests or kustomize env has its manifests"),
    }
}

fn releases(args: &ClusterArgs, config: &Config) -> anyhow::Result<Report> {
    let (env, kubernetes, kubectl) = target(config, args)?;
    let workloads = workloads(config, kubernetes, &kubectl)?;
    let mut report = Report::new("releases", &env.name, &kubectl, false);
    let mut steps = Steps {
        runner: &PROCESS,
        commands: Vec::new(),
        say: &|_| {},
    };
    report.workloads = deploy::history(&mut steps, &kubectl, &workloads)?;
    report.commands = steps.commands;
    Ok(report)
}

fn rollback(args: &RollbackArgs, config: &Config, out: &Output) -> anyhow::Result<Report> {
    let (env, kubernetes, kubectl) = target(config, &args.cluster)?;
    let workloads = workloads(config, kubernetes, &kubectl)?;
    let timeout: Duration = args.timeout.unwrap_or(kubernetes.rollout_timeout);
    let mut report = Report::new("rollback", &env.name, &kubectl, args.dry_run);
    let say = say(out);
    let mut steps = Steps {
        runner: &PROCESS,
        commands: Vec::new(),
        say: &say,
    };
    // `--to N` is read from the cluster's history (read-only, also in a dry run).
    let targets: Vec<(String, Option<u64>)> = match args.to {
        Some(to) => {
            deploy::rollback_targets(&deploy::history(&mut steps, &kubectl, &workloads)?, to)?
                .into_iter()
                .map(|(w, n)| (w, Some(n)))
                .collect()
        }
        None => workloads.iter().map(|w| (w.clone(), None)).collect(),
    };
    if args.dry_run {
        report.commands = steps.commands;
        report
            .commands
            .push(lease::get_argv(&kubectl, &lease::name(&env.name)));
        for (workload, to) in &targets {
            report.commands.push(kubectl.rollout_undo(workload, *to));
            report
                .commands
                .push(kubectl.rollout_status(workload, timeout));
        }
        return Ok(report);
    }
    let holder = format!(
        "{} rollback {}",
        deployer(&|n| std::env::var(n).ok()),
        jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S")
    );
    let held = lease::acquire(
        &kubectl,
        &PROCESS,
        &env.name,
        &holder,
        env.lock_timeout,
        &say,
        &mut steps.commands,
    )?;
    report.lease = Some(held.shown());
    let result = (|| -> anyhow::Result<()> {
        for (workload, to) in &targets {
            say(&format!("rollout undo {workload}"));
            let ran = steps.run(kubectl.rollout_undo(workload, *to), b"")?;
            if !ran.is_success() {
                anyhow::bail!("cannot roll back `{workload}` ({})", ran.reason());
            }
            let ran = steps.run(kubectl.rollout_status(workload, timeout), b"")?;
            let outcome = if ran.is_success() {
                "rolled out".to_owned()
            } else {
                report
                    .failure
                    .get_or_insert(format!("`{workload}` did not roll out ({})", ran.reason()));
                format!("failed: {}", ran.reason())
            };
            report.workloads.push(report::WorkloadReport {
                workload: workload.clone(),
                outcome: Some(outcome),
                revisions: Vec::new(),
            });
        }
        if report.failure.is_none() {
            match ready_check(env, out)() {
                Ok(ms) => report.ready_ms = ms,
                Err(reason) => report.failure = Some(format!("the env is not ready: {reason}")),
            }
        }
        report.outcome = if report.failure.is_some() {
            Outcome::Failed
        } else {
            Outcome::Deployed
        };
        Ok(())
    })();
    report.commands = steps.commands;
    report.commands.push(held.release(&PROCESS));
    result?;
    Ok(report)
}
