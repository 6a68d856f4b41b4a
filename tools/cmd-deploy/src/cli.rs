//! The command line of `cmd-deploy`; the doc comments are its `--help`.

use std::path::PathBuf;

/// Deploy by running a command on the runner with the images pinned by digest.
///
/// For what is deployed by a program on the runner itself — pulumi, helm,
/// the aws CLI, a team's script — rather than on hosts over SSH. `deploy`
/// pins every image of the env to `repo@sha256:…` (tags resolved through the
/// registry), runs the env's `[envs.<env>.command] run` with `sh -c` in the
/// directory of slipway.toml, waits for the env's `ready_url`, and records
/// the release in the env's history directory. A command that fails or a
/// ready URL that never answers re-runs the command with the previous
/// release's images (unless --no-rollback).
///
/// The command's environment: the runner's (registry credentials such as
/// `REGISTRY_PASSWORD` included: the command may log in with them), the env's `env` table, each
/// image as `SLIPWAY_IMAGE_<NAME>=repo@sha256:…` (the name upper-cased, `-`
/// and `.` as `_`) and under its variable of the env's `images` table,
/// `SLIPWAY_ENV`, `SLIPWAY_RELEASE` and, when known, `SLIPWAY_REVISION`.
/// Its output goes to stderr: stdout is the report.
///
/// The lock is an flock(2) on `<history>/.lock`, held by this process: the
/// kernel drops it when the process ends, killed or not. The command runs
/// in a process group of its own; past its `timeout`, or when cmd-deploy
/// gets SIGINT or SIGTERM, the whole group is stopped (SIGTERM, then
/// SIGKILL 5s later) before cmd-deploy goes on or exits (130, 143).
///
/// Exit status:
///   0  deployed (or the releases listed)
///   1  the deploy ran and failed: the command exited non-zero or ran past
///      its `timeout`, or the ready URL never answered (then the previous
///      release was re-run unless --no-rollback)
///   2  bad input: flags, slipway.toml, image references, an env that is
///      not `target = "command"`
///   3  an operation failed: the registry, the history directory, the
///      env's lock held by another deploy past `lock_timeout`
#[derive(Debug, clap::Parser)]
#[command(name = "cmd-deploy", version = slipway_build_info::VERSION, about, verbatim_doc_comment)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the env's command with the given images, wait for readiness, record the release
    Deploy(DeployArgs),
    /// Re-run the env's command with the images of the previous good release (or `--to N`)
    Rollback(RollbackArgs),
    /// List the releases in the env's history
    Releases(EnvArgs),
}

/// Which env.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvArgs {
    /// The env in slipway.toml (`[envs.<NAME>]`, with `target = "command"`)
    #[arg(long, env = "SLIPWAY_ENV", value_name = "NAME")]
    pub env: String,
}

/// `deploy`.
#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub env: EnvArgs,

    /// An image to deploy: `NAME=REGISTRY/REPO@sha256:…` or a tag such as
    /// `NAME=REGISTRY/REPO:sha-0123456` (resolved to its digest; never
    /// `latest`); repeat per image; wins over --images-from
    #[arg(long = "image", value_name = "NAME=REF")]
    pub images: Vec<String>,

    /// img-build's JSON report (`img-build --format json`), or `-` for stdin
    #[arg(long, value_name = "FILE")]
    pub images_from: Option<PathBuf>,

    /// Refuse to deploy (exit 2, before anything is touched) unless every image's
    /// `org.opencontainers.image.revision` label, read from its registry, is this commit
    /// (a sha or any revision of the repository around slipway.toml, e.g. `HEAD`)
    #[arg(long, value_name = "REV")]
    pub require_revision: Option<String>,

    /// Print the command and the environment it would get; run and record nothing
    #[arg(long)]
    pub dry_run: bool,

    /// When the command or readiness fails, keep it failed: do not re-run the previous release
    #[arg(long)]
    pub no_rollback: bool,

    #[command(flatten)]
    pub registry: slipway_registry::RegistryArgs,
}

/// `rollback`.
#[derive(Debug, Clone, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub env: EnvArgs,

    /// The release to go back to [default: the deployed release before the current one]
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,
}
