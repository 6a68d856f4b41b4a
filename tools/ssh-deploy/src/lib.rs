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
//! - `render`: the report in plain text, as a step summary, as an exit code.

mod access;
mod bundle;
mod cancel;
mod cli;
mod deploy;
mod dry_run;
mod fleet;
mod images;
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
use slipway_core::config::{Config, Host};
use slipway_core::contract::ssh_deploy::Report as Json;
use slipway_core::output::Output;

use access::connect_plan;

pub use cancel::exit_status as cancelled_exit_status;
pub use cli::{
    Cli, Command, ConnectArgs, DeployArgs, LockAction, LockArgs, LockReleaseArgs, RollbackArgs,
    RunArgs,
};
pub use render::Report;
pub use slipway_core::contract::ssh_deploy::{LockHolder, Release, ReleaseResult};
pub use ssh::read_known_hosts;

pub use slipway_core::contract::ssh_deploy::{DryRun, DryRunFile, HostReport, Outcome};

/// Runs `ssh-deploy`.
pub fn run(cli: Cli, out: &Output) -> anyhow::Result<Report> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let config = Config::locate(cli.global.config.as_deref(), &cwd)?;
    match cli.command {
        Command::Deploy(args) => {
            run_deploy(&config, &args.connect, &args.run, Some(&args), None, out)
        }
        Command::Rollback(args) if args.dry_run => {
            let (env, hosts, connection) = connect_plan(&config, &args.connect, out)?;
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
                dry_run: None,
                hosts: reports,
            }))
        }
        Command::Rollback(args) => {
            run_deploy(&config, &args.connect, &args.run, None, Some(args.to), out)
        }
        Command::Releases(connect) => {
            let (env, hosts, connection) = connect_plan(&config, &connect, out)?;
            let reports = per_host(&hosts, |host| {
                deploy::list_releases(host, &connection, &env.remote_path)
            });
            Ok(Report(Json {
                env: env.name.clone(),
                action: "releases".to_owned(),
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
            let (env, hosts, connection) = connect_plan(&config, connect, out)?;
            let reports = per_host(&hosts, |host| {
                deploy::lock_action(host, &connection, &env.name, &env.remote_path, command)
            });
            Ok(Report(Json {
                env: env.name.clone(),
                action: match command {
                    deploy::LockCommand::Status => "lock status",
                    deploy::LockCommand::Release { .. } => "lock release",
                }
                .to_owned(),
                dry_run: None,
                hosts: reports,
            }))
        }
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
    let env = config.env(&connect.env)?;
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
        return Ok(Report(dry_run::report(
            env,
            &hosts,
            &bundle,
            &given.vars,
            &secret_vars,
        )?));
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
