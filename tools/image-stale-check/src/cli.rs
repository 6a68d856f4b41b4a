//! The command line of `image-stale-check`; the doc comments are its `--help`.

use std::path::PathBuf;
use std::time::Duration;

/// Warn when published images are stale against the code: compare each
/// image's `org.opencontainers.image.revision` label with a commit and with
/// the paths the image is built from.
///
/// Verdicts: `fresh` (built from the commit, or nothing it is built from
/// changed since), `stale` (with the files and the commits that changed
/// them), `missing` (no such tag), `unknown` (no label, or a revision not in
/// the local history), `unchecked` (the registry did not answer in time).
///
/// Exit codes: 0 all fresh; 1 any stale, missing or unknown (under `--hook`
/// only with `--strict`); 2 bad input; 3 the check could not run (under
/// `--hook` a warning instead).
#[derive(Debug, clap::Parser)]
#[command(name = "image-stale-check", version = slipway_build_info::VERSION, about, long_about)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub check: CheckArgs,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Install the pre-push hook into this repository's `.git/hooks/pre-push`
    /// (idempotent: re-running replaces Slipway's block and keeps the rest of
    /// an existing hook)
    InstallHook(InstallHookArgs),
}

/// Flags of `install-hook`.
#[derive(Debug, clap::Args)]
pub struct InstallHookArgs {
    /// Make the hook refuse the push when an image is stale, missing or
    /// unknown [default: warn and push]
    #[arg(long)]
    pub strict: bool,

    /// Make the hook look up this tag [default: the check's own default:
    /// `[stale] tag`, else what a push to the default branch publishes]
    #[arg(long, value_name = "TAG")]
    pub tag: Option<slipway_core::image_ref::Tag>,

    /// Print the hook that would be written, change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Flags of the check itself.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Image references to check instead of slipway.toml's images, e.g.
    /// `registry.example.com/app:main`; one whose repository is an image of
    /// slipway.toml is judged by that image's paths, any other by every file
    #[arg(value_name = "REF")]
    pub refs: Vec<String>,

    /// Check only these images of slipway.toml (repeatable) [default: all]
    #[arg(long = "image", value_name = "NAME")]
    pub images: Vec<String>,

    /// The commit to compare against: any revision git understands
    #[arg(long, default_value = "HEAD", value_name = "REV")]
    pub rev: String,

    /// The tag of slipway.toml's images to look up [default: `[stale] tag`,
    /// else the tag a push to the default branch publishes by `[tags]`
    /// rules: the branch tag (`main`) if they give one, else `latest`, else
    /// their first mutable tag]
    #[arg(long, env = "SLIPWAY_TAG", value_name = "TAG")]
    pub tag: Option<String>,

    /// Read labels from the local Docker engine (`docker image inspect`)
    /// instead of the registry
    #[arg(long)]
    pub local: bool,

    /// The docker client `--local` runs
    #[arg(long, env = "DOCKER", default_value = "docker", value_name = "PATH")]
    pub docker: PathBuf,

    /// Hook mode: one attempt and a short time limit per lookup, exit 0
    /// unless `--strict` (the installed hook sends the report to stderr)
    #[arg(long)]
    pub hook: bool,

    /// Under `--hook`, exit 1 when an image is stale, missing or unknown
    #[arg(long)]
    pub strict: bool,

    /// The most time one image's lookup may take, up to 1week [default: 2s under
    /// `--hook`, else 30s]
    #[arg(long, value_parser = slipway_core::duration::parse, value_name = "DURATION")]
    pub timeout: Option<Duration>,

    /// Do not read or write the label cache (`.git/slipway/stale-cache.json`)
    #[arg(long)]
    pub no_cache: bool,

    #[command(flatten)]
    pub registry: slipway_registry::RegistryArgs,
}
