//! `ssh-deploy`: deploy immutable image references to hosts over SSH, with a lock, releases and rollback.
//!
//! This file dispatches the subcommands; each concern has its module:
//! - `cli`: the flags, whose doc comments are `--help`;
//! - `access`: which hosts, how to authenticate and trust them, who deploys;
//! - `images`: the image references (`--images-from`, `--image`) and the revision gate;
//! - `plan`: flags over slipway.toml, `deploy.env`, the remote command line (pure);
//! - `dry_run`: what `deploy --dry-run` shows;
//! - `bundle`: the bundle's files, checked to lie inside the project;
//! - `ssh`: connect, host keys, authentication, streamed commands;
//! - `remote`: what is kept on the host (lock, release records, which files changed), over SFTP;
//! - `tarball`: the changed files as one tar stream on the command's stdin;
//! - `ready`: readiness probed through the SSH connection;
//! - `lock`: the deploy lock, held by the deploy's own SSH session;
//! - `cancel`: SIGINT/SIGTERM turned into a clean stop;
//! - `deploy`: one host's run, every step on one connection;
//! - `preflight`, `fleet`: every host checked before any is touched, then
//!   batches, and a failed host rolls back the hosts already deployed;
//! - `instance`: preview environments, the instances of a template env
//!   (`--instance`, `destroy`, `instances`, `gc`);
//! - `render`: the report in plain text, as a step summary, as an exit code.

mod access;
mod bundle;
mod cancel;
mod cli;
mod deploy;
mod dry_run;
mod fleet;
mod images;
mod instance;
mod lock;
mod plan;
mod preflight;
mod ready;
mod remote;
mod render;
mod ssh;
mod ssh_config;
mod tarball;

use anyhow::Context as _;
use slipway_config::{Config, Host};
use slipway_contract::ssh_deploy::Report as Json;
use slipway_core::output::Output;

use access::connect_plan;

pub use cancel::exit_status as cancelled_exit_status;
pub use cli::{
    Cli, Command, ConnectArgs, DeployArgs, DestroyArgs, GcArgs, LockAction, LockArgs,
    LockReleaseArgs, RollbackArgs, RunArgs, TeardownArgs,
};
pub use render::Report;
pub use slipway_contract::ssh_deploy::{LockHolder, Release, ReleaseResult};
pub use ssh::read_known_hosts;

pub use slipway_contract::ssh_deploy::{DryRun, DryRunFile, HostReport, Outcome};

/// Runs `ssh-deploy`.
pub fn run(cli: Cli, out: &Output) -> anyhow::Result<Report> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let config = Config::locate(cli.global.config.as_deref(), &cwd)?;
    match cli.command {
        Command::Deploy(args) => {
            run_deploy(&config, &args.connect, &args.run, Some(&args), None, out)
        }
        Command::Rollback(args) if args.dry_run => {
            let (env, selected, hosts, connection) = connect_plan(&config, &args.connect, out)?;
            let image_vars = env.images.keys().cloned().collect();
            let progress = out.progress();
            let reports = per_host(&hosts, |host| {
                deploy::plan_rollback(
                    host,
                    &connection,
                    &env.remote_path,
                    args.to,
                    &image_vars,
                    &progress,
                )
            });
            Ok(Report(Json {
                env: env.name.clone(),
                action: "rollback".to_owned(),
                instance: selected.map(|s| s.name),
                dry_run: None,
                hosts: reports,
            }))
        }
        Command::Rollback(args) => {
            run_deploy(&config, &args.connect, &args.run, None, Some(args.to), out)
        }
        Command::Releases(connect) => {
            let (env, selected, hosts, connection) = connect_plan(&config, &connect, out)?;
            let reports = per_host(&hosts, |host| {
                deploy::list_releases(host, &connection, &env.remote_path)
            });
            Ok(Report(Json {
                env: env.name.clone(),
                action: "releases".to_owned(),
                instance: selected.map(|s| s.name),
                dry_run: None,
                hosts: reports,
            }))
        }
        Command::Lock(LockArgs { action }) => {
            let (connect, command) = match &action {
                LockAction::Status(connect) => (connect, deploy::LockCommand::Status),
                LockAction::Release(args) => (
                    &args.connect,
                    deploy::LockCommand::Release {
                        is_forced: args.force,
                    },
                ),
            };
            let (env, selected, hosts, connection) = connect_plan(&config, connect, out)?;
            let reports = per_host(&hosts, |host| {
                deploy::lock_action(host, &connection, &env.name, &env.remote_path, command)
            });
            Ok(Report(Json {
                env: env.name.clone(),
                instance: selected.map(|s| s.name),
                action: match command {
                    deploy::LockCommand::Status => "lock status",
                    deploy::LockCommand::Release { .. } => "lock release",
                }
                .to_owned(),
                dry_run: None,
                hosts: reports,
            }))
        }
        Command::Destroy(args) => {
            let (env, selected, hosts, connection) = connect_plan(&config, &args.connect, out)?;
            let selected = selected.ok_or_else(|| {
                slipway_core::cli::UsageError::new(format!(
                    "`ssh-deploy destroy` needs a template env, and env `{}` has no `instances = true`",
                    env.name
                ))
            })?;
            let template = config.env_for(&args.connect.env, slipway_config::DeployTarget::Ssh)?;
            let teardown = teardown(template, &args.teardown, &connection);
            let identity = access::identity(&config);
            let progress = out.progress();
            let reports = per_host(&hosts, |host| {
                instance::destroy(
                    host,
                    &connection,
                    &identity,
                    &selected,
                    &teardown,
                    &progress,
                )
            });
            Ok(Report(Json {
                env: env.name.clone(),
                action: "destroy".to_owned(),
                instance: Some(selected.name),
                dry_run: None,
                hosts: reports,
            }))
        }
        Command::Instances(connect) => {
            let (env, base, hosts, connection) =
                template_plan(&config, &connect, "instances", out)?;
            let reports = per_host(&hosts, |host| instance::list(host, &connection, &base));
            Ok(Report(Json {
                env: env.name.clone(),
                action: "instances".to_owned(),
                instance: None,
                dry_run: None,
                hosts: reports,
            }))
        }
        Command::Gc(args) => {
            let (env, base, hosts, connection) = template_plan(&config, &args.connect, "gc", out)?;
            let teardown = teardown(env, &args.teardown, &connection);
            let identity = access::identity(&config);
            let progress = out.progress();
            let template = instance::Selected {
                name: String::new(),
                base,
                port_range: env.port_range,
                max_instances: env.max_instances,
                ready_url: None,
            };
            let reports = per_host(&hosts, |host| {
                instance::gc(
                    host,
                    &connection,
                    &identity,
                    &template,
                    args.idle.into(),
                    &teardown,
                    &progress,
                )
            });
            Ok(Report(Json {
                env: env.name.clone(),
                action: "gc".to_owned(),
                instance: None,
                dry_run: None,
                hosts: reports,
            }))
        }
    }
}

/// The hosts and connection of a template env's `instances` or `gc`, and
/// the directory holding its instances.
fn template_plan<'c>(
    config: &'c Config,
    connect: &ConnectArgs,
    subcommand: &str,
    out: &Output,
) -> anyhow::Result<(
    &'c slipway_config::Env,
    std::path::PathBuf,
    Vec<Host>,
    deploy::Connection,
)> {
    instance::refuse_instance(subcommand, connect.instance.as_deref())?;
    let env = config.env_for(&connect.env, slipway_config::DeployTarget::Ssh)?;
    let base = instance::template(env, subcommand)?;
    let hosts = access::hosts(env, &connect.hosts)?;
    Ok((env, base, hosts, access::connection(connect, env, out)?))
}

/// What `destroy` and `gc` run, from the template env and the flags.
fn teardown(
    env: &slipway_config::Env,
    args: &cli::TeardownArgs,
    connection: &deploy::Connection,
) -> instance::Teardown {
    instance::Teardown {
        env: env.name.clone(),
        command: env.teardown.clone(),
        env_vars: env.env_vars.clone(),
        timeout: args.timeout.into(),
        lock_wait: args.lock_wait.map_or(env.lock_timeout, Into::into),
        is_dry_run: args.dry_run,
        io: connection.timeout,
    }
}

fn run_deploy(
    config: &Config,
    connect: &ConnectArgs,
    run: &RunArgs,
    deploy: Option<&DeployArgs>,
    rollback: Option<Option<u64>>,
    out: &Output,
) -> anyhow::Result<Report> {
    let (env, selected) = instance::select(
        config.env_for(&connect.env, slipway_config::DeployTarget::Ssh)?,
        connect.instance.as_deref(),
    )?;
    let env = &env;
    plan::check_remote_path(env)?;
    let hosts = access::hosts(env, &connect.hosts)?;
    let secret_vars = plan::secret_vars(&run.env_vars, env, |name| std::env::var_os(name))?;
    for (_, value) in &secret_vars {
        out.mask(value);
    }
    if let Some(url) = &env.ready_url {
        // Its password or `?token=` is a secret as much as a key is: masked
        // before anything can print it, and redacted wherever it is echoed.
        for secret in slipway_core::secret::url_secrets(url) {
            slipway_core::secret::check_len(
                &secret,
                &format!("a secret in `ready_url` of [envs.{}]", env.name),
            )?;
        }
        for secret in slipway_core::secret::register_url(url) {
            out.mask(&slipway_core::secret::SecretString::from(secret));
        }
    }
    let ready = env
        .ready_url
        .as_deref()
        .map(plan::ready_target)
        .transpose()?;
    let (images, bundle) = match deploy {
        Some(args) => (
            deploy::Images::Given(images::given_images(config, env, args, out)?),
            bundle::bundle_files(&config.root, env, args.dry_run)?,
        ),
        None => (deploy::Images::Release(rollback.flatten()), Vec::new()),
    };
    if let (Some(args), deploy::Images::Given(given)) = (deploy, &images)
        && args.dry_run
    {
        let mut report = dry_run::report(env, &hosts, &bundle, &given.vars, &secret_vars)?;
        if let Some(selected) = &selected {
            report.instance = Some(selected.name.clone());
            if let (Some(dry), Some(range)) = (&mut report.dry_run, selected.port_range) {
                dry.command_env.push((
                    "SLIPWAY_PORT".to_owned(),
                    format!("<the instance's port on each host, from {range}>"),
                ));
                dry.ready_url = selected
                    .ready_url
                    .as_deref()
                    .map(slipway_core::secret::redact_url);
            }
        }
        return Ok(Report(report));
    }
    let connection = access::connection(connect, env, out)?;
    let identity = access::identity(config);
    // From here on a signal stops the deploy cleanly (see `cancel`).
    cancel::install();
    let job = deploy::Job {
        env: env.name.clone(),
        remote_path: env.remote_path.clone(),
        command: env.command.clone(),
        bundle,
        images,
        ready,
        ready_timeout: env.ready_timeout,
        timeout: run.timeout.into(),
        lock_wait: run.lock_wait.map_or(env.lock_timeout, Into::into),
        keep_releases: env.keep_releases,
        is_rollback_allowed: !run.no_rollback,
        image_vars: env.images.keys().cloned().collect(),
        env_vars: env.env_vars.clone().into_iter().collect(),
        secret_vars,
        instance: selected.clone(),
    };
    let progress = out.progress();
    let _group = out.group(&format!("ssh-deploy {}", env.name));
    let batch = match (run.rolling, run.batch.or(env.batch)) {
        (true, _) => 1,
        (false, Some(batch)) => batch.size(hosts.len()),
        (false, None) => hosts.len(),
    };
    let fleet_plan = fleet::Plan {
        batch,
        canary: run.canary.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        is_keep_going: run.keep_going,
    };
    let need_bytes = job.bundle.iter().map(|f| f.size).sum::<u64>()
        + match &job.images {
            deploy::Images::Given(given) => plan::deploy_env_file(&given.vars)?.size,
            _ => 0,
        };
    let checks = preflight::Checks {
        need_bytes,
        is_docker_needed: !env.images.is_empty(),
        command: env.preflight.clone(),
    };
    let reports = fleet::deploy(
        &hosts,
        &connection,
        &identity,
        &job,
        &progress,
        fleet_plan,
        &checks,
    );
    Ok(Report(Json {
        env: env.name.clone(),
        instance: selected.map(|s| s.name),
        action: if deploy.is_some() {
            "deploy"
        } else {
            "rollback"
        }
        .to_owned(),
        dry_run: None,
        hosts: reports,
    }))
}

/// Runs `work` for every host, in parallel threads.
fn per_host(hosts: &[Host], work: impl Fn(&Host) -> HostReport + Sync) -> Vec<HostReport> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|host| (host, scope.spawn(|| work(host))))
            .collect();
        handles
            .into_iter()
            .map(|(host, handle)| {
                handle.join().unwrap_or_else(|_| {
                    let mut report = HostReport::new(&host.to_string());
                    report.outcome = Outcome::Error;
                    report.error = Some("the host's thread panicked (a bug)".to_owned());
                    report
                })
            })
            .collect()
    })
}
