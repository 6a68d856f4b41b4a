//! `swarm-deploy`'s library: the plan from flags and slipway.toml, then
//! slipway-deploy's flow over the swarm target ([`target`]), whose docker
//! commands are in [`docker`] and whose lock is [`lock`].

mod cli;
mod docker;
mod lock;
mod target;

pub use cli::{Cli, Command, DeployArgs, EnvArgs, RollbackArgs};

use slipway_config::{Config, DeployTarget};
use slipway_core::output::Output;
use slipway_deploy::flow::{self, Options};
use slipway_deploy::report::Report;

const TOOL: &str = "swarm-deploy";

/// Runs the subcommand `cli` asks for and returns its report.
pub fn run(cli: Cli, out: &Output) -> anyhow::Result<Report> {
    let cwd = std::env::current_dir()
        .map_err(|e| anyhow::anyhow!("cannot read the current directory: {e}"))?;
    let config = Config::locate(cli.global.config.as_deref(), &cwd)?;
    let env_args = match &cli.command {
        Command::Deploy(args) => &args.env,
        Command::Rollback(args) => &args.env,
        Command::Releases(args) => args,
    };
    let env = config.env_for(&env_args.env, DeployTarget::Swarm)?.clone();
    let mut target = target::SwarmTarget::new(&config, &env, env_args, out)?;
    let who = slipway_deploy::Identity::detect();
    let options = Options {
        tool: TOOL,
        rollback_on_failure: true,
        lock_wait: env.lock_timeout,
    };
    let report = match cli.command {
        Command::Deploy(args) => {
            let request = flow::DeployRequest {
                images: slipway_deploy::images::Request {
                    images_from: args.images_from.as_deref(),
                    images: &args.images,
                    require_revision: args.require_revision.as_deref(),
                    registry: &args.registry,
                    root: Some(&config.root),
                },
                dry_run: args.dry_run,
                no_rollback: args.no_rollback,
            };
            flow::deploy_command(&mut target, &env, &request, &who, &options, out)?
        }
        Command::Rollback(args) => flow::rollback(&mut target, &env, args.to, &who, &options)?,
        Command::Releases(_) => flow::releases(&target, &env)?,
    };
    Ok(Report { report, tool: TOOL })
}
