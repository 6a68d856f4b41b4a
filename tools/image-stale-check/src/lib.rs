//! `image-stale-check`: warn when published images are stale against the code.
//!
//! `run` builds the plan first (config, commit, references, all checked),
//! then reads what is published (registry or local engine) and judges it
//! with `slipway_stale`, which deploy gates and `img-build` reuse.

mod cli;
mod hook;
mod local;
mod report;

use std::time::Duration;

use anyhow::Context as _;
use slipway_config::Config;
use slipway_core::cli::UsageError;
use slipway_core::image_ref::{ImageRef, Tag};
use slipway_core::output::Output;
use slipway_registry::{RegistryClient, RegistryOptions};
use slipway_stale::{FetchOptions, Judge};

pub use cli::{CheckArgs, Cli, Command, InstallHookArgs};
pub use report::{CheckReport, HookReport, Report};
use slipway_contract::image_stale_check::Report as Json;

/// What to check: `(name, reference)` per image.
type Targets = Vec<(String, ImageRef)>;

/// The lookup time limit per image under `--hook`.
const HOOK_TIMEOUT: Duration = Duration::from_secs(2);
/// The lookup time limit per image otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `image-stale-check`.
pub fn run(cli: Cli, out: &Output) -> anyhow::Result<Report> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    match cli.command {
        Some(Command::InstallHook(args)) => {
            hook::install(&args, &cwd).map(|r| Report(Json::Hook(r)))
        }
        None => check(&cli.check, cli.global.config.as_deref(), &cwd, out)
            .map(|r| Report(Json::Check(r))),
    }
}

/// The check: plan, fetch, judge.
fn check(
    args: &CheckArgs,
    explicit_config: Option<&std::path::Path>,
    cwd: &std::path::Path,
    out: &Output,
) -> anyhow::Result<CheckReport> {
    if args.strict && !args.hook {
        return Err(UsageError::new(
            "`--strict` only changes `--hook` mode (without `--hook` a stale image always exits 1)",
        ));
    }
    // A zero budget would fail every lookup at once and blame the registry.
    if args.timeout == Some(Duration::ZERO) {
        return Err(UsageError::new(
            "`--timeout 0s` leaves no time for a lookup: give a duration above zero, e.g. `2s`",
        ));
    }
    let config = Config::locate_optional(explicit_config, cwd)?;
    let repo = slipway_git::Repo::discover(cwd)?;
    let rev = repo
        .resolve(&args.rev)
        .map_err(|e| UsageError::new(format!("`--rev {}`: {e}", args.rev)))?;
    let (tag, targets) = targets(args, config.as_ref())?;
    let timeout = args.timeout.unwrap_or(if args.hook {
        HOOK_TIMEOUT
    } else {
        DEFAULT_TIMEOUT
    });

    let published = if args.local {
        targets
            .iter()
            .map(|(_, image)| local::inspect(&args.docker, image).map_err(|e| format!("{e:#}")))
            .collect()
    } else {
        let client = client(&targets, &args.registry, timeout, args.hook, out)?;
        let options = FetchOptions {
            timeout,
            cache: (!args.no_cache).then(|| slipway_stale::cache_path(&repo)),
        };
        let refs: Vec<ImageRef> = targets.iter().map(|(_, r)| r.clone()).collect();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(slipway_stale::fetch_published(&client, &refs, &options))
            .into_iter()
            .map(|r| r.map_err(|e| slipway_stale::error_chain(&e)))
            .collect()
    };
    // Filters that do not compile and a wrong `.dockerignore` are bad input:
    // the error's type says so (`ExitStatus`).
    let mut judge = Judge::from_repo(config.as_ref(), repo, rev.clone())?;
    let images = slipway_stale::judge_all(&mut judge, &targets, published)?;
    // Under GitHub Actions each stale image is also a warning annotation.
    for image in &images {
        if let Some(reason) = slipway_stale::stale_reason(&image.verdict) {
            out.warning(&format!("`{}` is stale: {reason}", image.image));
        }
    }
    Ok(CheckReport {
        rev,
        tag,
        source: if args.local { "local" } else { "registry" }.to_owned(),
        hook: args.hook,
        strict: args.strict,
        images,
    })
}

/// What to look up: `(name, reference)` per image, and the tag used for
/// slipway.toml's images (none for explicit references).
fn targets(args: &CheckArgs, config: Option<&Config>) -> anyhow::Result<(Option<String>, Targets)> {
    if !args.refs.is_empty() {
        if !args.images.is_empty() || args.tag.is_some() {
            return Err(UsageError::new(
                "`--image` and `--tag` choose among slipway.toml's images; give them or REFs, not both",
            ));
        }
        let mut targets = Vec::new();
        for text in &args.refs {
            let image: ImageRef = text
                .parse()
                .with_context(|| format!("`{text}` is not an image reference"))?;
            let name = config
                .and_then(|c| {
                    c.images
                        .values()
                        .find(|i| i.repository() == image.repository())
                })
                .map_or_else(|| text.clone(), |i| i.name.clone());
            targets.push((name, image));
        }
        return Ok((None, targets));
    }
    let config = config.ok_or_else(|| {
        UsageError::new(
            "no slipway.toml found and no REF given: run in a project, pass --config, or name images like `registry.example.com/app:main`",
        )
    })?;
    let tag_text = args
        .tag
        .clone()
        .unwrap_or_else(|| slipway_stale::published_tag(config));
    let tag: Tag = tag_text
        .parse()
        .map_err(|e| UsageError::new(format!("`--tag {tag_text}`: {e}")))?;
    // An image with `default = false` is checked only when named: it is
    // rebuilt rarely, on purpose, so its age says nothing about this push.
    let defaults = config.default_images();
    let names: Vec<&str> = if args.images.is_empty() {
        defaults.iter().map(String::as_str).collect()
    } else {
        args.images.iter().map(String::as_str).collect()
    };
    // Build order (dependencies first), as changed-paths lists targets.
    let mut targets = Vec::new();
    for name in config.build_order(&names)? {
        let image = config.image(&name)?;
        targets.push((name.clone(), image.repository().with_tag(tag.clone())));
    }
    if targets.is_empty() {
        return Err(UsageError::new(format!(
            "`{}` lists no images: add an `[images.<name>]` table, or name images as REFs",
            config.path.display()
        )));
    }
    Ok((Some(tag_text), targets))
}

/// A registry client with the credentials of every registry involved; one
/// attempt per request under `--hook`, so a slow registry costs at most
/// `timeout`.
fn client(
    targets: &[(String, ImageRef)],
    registry: &slipway_registry::RegistryArgs,
    timeout: Duration,
    hook: bool,
    out: &Output,
) -> anyhow::Result<RegistryClient> {
    let options = RegistryOptions {
        max_attempts: if hook { 1 } else { 3 },
        retry_budget: timeout,
        ..RegistryOptions::for_tool("image-stale-check", registry)
    };
    let registries = targets.iter().map(|(_, image)| image.registry());
    Ok(RegistryClient::for_registries(
        registries, None, options, out,
    )?)
}
