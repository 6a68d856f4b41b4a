//! `img-build`: build the selected images from their Dockerfiles, labelled, tagged, in dependency order.
//!
//! Flags and slipway.toml become a plan (`plan`: targets, order, tags,
//! labels), checked whole before anything runs; a backend (`backend`) spells
//! each build and push as an argv (`work` lists them per image, which
//! `--dry-run` prints); `run` executes them concurrently in dependency
//! order; `index` assembles the OCI index of a multi-platform image built
//! without buildx; `freshness` asks the registry which images
//! `--only-stale` skips; `report` is what stdout gets.

mod backend;
mod cli;
mod dockerfile;
mod forward;
mod freshness;
mod index;
mod plan;
mod registry;
mod report;
mod run;
mod verify;
mod work;

pub use cli::{BackendChoice, Cli};
pub use report::Report;

use std::collections::BTreeMap;

use anyhow::Context as _;
use slipway_config::Config;
use slipway_core::cli::UsageError;
use slipway_core::output::Output;

/// Runs `img-build`.
pub fn run(cli: Cli, out: &Output) -> anyhow::Result<Report> {
    if cli.only_stale && !cli.push {
        return Err(UsageError::new(
            "`--only-stale` requires `--push`: it skips images already published for this commit, and only pushed images are found there next time",
        ));
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let config = Config::locate(cli.global.config.as_deref(), &cwd)?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut plan = plan::plan(&cli, &config, &env, &cwd)?;
    let builder = backend::backend(&plan);
    let progress = out.progress();
    progress.println(&format!(
        "img-build: backend {} ({})",
        plan.backend, plan.backend_reason
    ));
    for notice in &plan.notices {
        progress.println(&format!("img-build: {notice}"));
    }

    let freshness = if cli.only_stale {
        freshness::check(&plan, &config, out)?
    } else {
        BTreeMap::new()
    };
    // Under GitHub Actions each stale image is also a warning annotation.
    for (name, check) in &freshness {
        if let Some(reason) = slipway_stale::stale_reason(&check.verdict) {
            out.warning(&format!("`{name}` is stale: {reason}; it is rebuilt"));
        }
    }
    let is_skipped = |name: &str| freshness.get(name).is_some_and(|f| f.skip);

    if cli.dry_run {
        // The dependency's digest is only known once it is pushed: the dry
        // run shows where it goes (`repo@<digest of base>`), or the main tag
        // that an unpushed run passes.
        let works = plan
            .targets
            .iter()
            .map(|target| {
                if is_skipped(&target.name) {
                    return work::Work {
                        commands: Vec::new(),
                        index_tags: None,
                    };
                }
                let dependency_ref = target.dependency_arg.as_ref().and_then(|arg| {
                    let dep = plan.target(&arg.image)?;
                    // A skipped dependency is handed over as what is published.
                    match freshness.get(&dep.name).filter(|f| f.skip) {
                        Some(fresh) => crate::freshness::published_reference(fresh, dep),
                        None if plan.push => {
                            Some(format!("{}@<digest of {}>", dep.repository, dep.name))
                        }
                        None => dep.tags.first().cloned(),
                    }
                });
                let secret_file = |id: &str| format!("<0600 temp file holding secret {id}>");
                work::work(
                    &plan,
                    builder.as_ref(),
                    target,
                    dependency_ref.as_deref(),
                    &secret_file,
                )
            })
            .collect();
        return Ok(Report::plan(&plan, works, freshness));
    }
    if plan.targets.is_empty() {
        progress.println("img-build: nothing to build");
    }
    // The dry run shows every tag; which mutable tags stay where they are
    // is asked of the registry only by a real run.
    let held = if plan.push && !cli.force_tags {
        forward::hold_tags(&mut plan, &config, out)?
    } else {
        BTreeMap::new()
    };
    let outcomes = run::execute(&plan, builder.as_ref(), out, &env, &freshness)?;
    let report = Report::built(&plan, outcomes, held);
    if cli.log_dir.is_none() {
        // A temp dir of ours: gone after a success, kept and named after a failure.
        if report.is_success() {
            if let Err(error) = fs_err::remove_dir_all(&plan.log_dir) {
                tracing::warn!(%error, "cannot remove the build logs");
            }
        } else {
            progress.println(&format!(
                "img-build: the build logs are kept in `{}`",
                plan.log_dir.display()
            ));
        }
    }
    Ok(report)
}
