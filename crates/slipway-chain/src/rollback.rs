//! `slipway rollback` (and `cargo xtask rollback`): `ssh-deploy rollback` on an env, then a summary
//! of what each host runs now, read back with `ssh-deploy releases`
//! (docs/pipeline.md).
//!
//! The rollback itself (which release, the lock, readiness, the record) is
//! ssh-deploy's: xtask only chains the two commands and reads their JSON.

use anyhow::{Context as _, bail};
use slipway_config::Config;
use slipway_contract::ssh_deploy::{self, ReleaseResult};
use xshell::{Shell, cmd};

use crate::runner::{self, Connection};
use crate::tools::Provide;

/// Flags of `cargo xtask rollback`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The env of slipway.toml to roll back
    #[arg(long, value_name = "ENV")]
    pub env: String,
    /// Redeploy release N, as `ssh-deploy releases` numbers them [default:
    /// the newest good release whose images differ from the current one]
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,
    #[command(flatten)]
    pub connection: Connection,
}

/// What each host runs after the rollback: `(host, newest good release)`.
pub type Running = Vec<(String, Option<ssh_deploy::Release>)>;

/// `cargo xtask rollback`: the summary table is on stdout.
pub fn run(sh: &Shell, provide: Provide<'_>, args: &Args) -> anyhow::Result<()> {
    rollback(sh, provide, args).map(|_| ())
}

/// Rolls back, prints what runs now, and returns it; an error names the step.
pub fn rollback(sh: &Shell, provide: Provide<'_>, args: &Args) -> anyhow::Result<Running> {
    let repo = sh.current_dir().join(&args.connection.repo);
    let config = Config::discover(&repo).context("`--repo`: cannot load slipway.toml")?;
    let env_config = config
        .env(&args.env)
        .with_context(|| format!("`--env {}` is not an env of slipway.toml", args.env))?;
    // The env's deploy tool; each prints ssh-deploy's report shape.
    let tool = env_config.target.tool();
    step("find the tools");
    let tools = provide(sh)?;
    tools.require(&[tool])?;
    let ssh_deploy = tools.path(tool);
    let _dir = sh.push_dir(&repo);
    let env = &args.env;
    let flags = &args.connection.flags_for(env_config);
    let to: Vec<String> = args
        .to
        .map(|n| vec!["--to".to_owned(), n.to_string()])
        .unwrap_or_default();

    step(&format!(
        "{tool} rollback --env {env}{}",
        args.to.map(|n| format!(" --to {n}")).unwrap_or_default()
    ));
    let output = runner::json_output(
        cmd!(
            sh,
            "{ssh_deploy} rollback --env {env} {to...} {flags...} --format json"
        ),
        None,
    )?;
    let report: ssh_deploy::Report =
        runner::parse_report(&output.stdout, &format!("{tool} rollback"))?;
    let failures: Vec<String> = report
        .hosts
        .iter()
        .filter_map(runner::host_failure)
        .collect();

    step(&format!("{tool} releases: what each host runs now"));
    let text = cmd!(
        sh,
        "{ssh_deploy} releases --env {env} {flags...} --format json"
    )
    .read()
    .with_context(|| format!("step `{tool} releases` failed"))?;
    let releases: ssh_deploy::Report =
        runner::parse_report(text.as_bytes(), &format!("{tool} releases"))?;
    let running: Running = releases
        .hosts
        .into_iter()
        .map(|host| {
            let newest = host
                .releases
                .into_iter()
                .filter(|r| r.result == ReleaseResult::Deployed)
                .max_by_key(|r| r.id);
            (host.host, newest)
        })
        .collect();
    print_summary(&report, &running);
    if !output.status.success() || !failures.is_empty() || report.hosts.is_empty() {
        bail!(
            "step `{tool} rollback --env {env}` failed ({}): {}",
            output.status,
            if failures.is_empty() {
                "no host reported".to_owned()
            } else {
                failures.join("; ")
            }
        );
    }
    Ok(running)
}

/// One line per host and image: the rollback's outcome, the release it
/// recorded, and the release and reference running now.
fn print_summary(report: &ssh_deploy::Report, running: &Running) {
    let mut lines = vec![[
        "host".to_owned(),
        "result".to_owned(),
        "release".to_owned(),
        "running".to_owned(),
        "variable".to_owned(),
        "image".to_owned(),
    ]];
    for host in &report.hosts {
        let recorded = host.release.map_or("-".to_owned(), |n| n.to_string());
        let line = |now: String, variable: &str, image: &str| {
            [
                host.host.clone(),
                host.outcome.as_str().to_owned(),
                recorded.clone(),
                now,
                variable.to_owned(),
                image.to_owned(),
            ]
        };
        let now = running
            .iter()
            .find(|(h, _)| *h == host.host)
            .and_then(|(_, r)| r.as_ref());
        let Some(now) = now else {
            lines.push(line("no good release".to_owned(), "-", "-"));
            continue;
        };
        let id = match now.rollback_of {
            Some(of) => format!("{} (rollback of {of})", now.id),
            None => now.id.to_string(),
        };
        for (variable, reference) in &now.images {
            lines.push(line(id.clone(), variable, reference));
        }
    }
    let mut widths = [0; 6];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    println!();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn step(name: &str) {
    eprintln!("\n== rollback: {name}");
}
