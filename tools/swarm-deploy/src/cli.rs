//! The command line of `swarm-deploy`; the doc comments are its `--help`.

use std::path::PathBuf;

/// Deploy an env's compose file as a Docker swarm stack, images pinned by digest.
///
/// `deploy` pins every image of the env to `repo@sha256:…` (tags resolved
/// through the registry), then runs, on the swarm manager,
///
///   docker stack deploy --compose-file COMPOSE_FILE --with-registry-auth [--prune] STACK
///
/// with each variable of the env's `images` table (and its `env` table) in
/// docker's environment, so the compose file's `${APP_IMAGE}` becomes the
/// digest; a compose file that does not use every image variable, or
/// whose any other `image:` is not pinned `repo@sha256:…`, is refused. It then waits (at most `converge_timeout`) until every service
/// of the stack has converged: its update `completed` and its replicas
/// running. A service swarm rolled back (`update_config.failure_action:
/// rollback`), an update that paused, or no convergence in time fails the
/// deploy; so does a `ready_url` that does not answer within
/// `ready_timeout` after convergence. A failed deploy redeploys the
/// previous release's digests (unless --no-rollback).
///
/// The manager: `--docker-host`, else the env's `docker_host`, else
/// `DOCKER_HOST` (`ssh://user@host`: docker does the SSH), else docker's
/// default.
///
/// Records: each release is a docker config `slipway.<stack>.release.<N>.<version>`
/// on the swarm (the cluster's own store: every runner that reaches the
/// manager reads the same history). The lock is a docker config
/// `slipway.<stack>.lock` (created atomically: a second deploy cannot
/// create it) with a 15 s lease renewed every 5 s while the deploy runs,
/// removed when the deploy ends or is cancelled (SIGINT, SIGTERM); a lease
/// past its expiry (a killed deploy) is taken over with a warning. A deploy
/// whose renewals failed for 15 s, or whose lock was taken over, stops
/// before the stack deploy, a rollback or a record (exit 3).
///
/// Exit status:
///   0  deployed (or the releases listed)
///   1  the deploy ran and failed: a service did not converge in time, swarm
///      rolled it back or paused its update, or the ready URL never answered
///      (then the previous release was redeployed unless --no-rollback)
///   2  bad input: flags, slipway.toml, image references, a compose file
///      that does not use the image variables or names an image by tag,
///      an env that is not
///      `target = "swarm"`
///   3  an operation failed: docker (the manager unreachable, not a swarm
///      manager), the registry, the env's lock held by another deploy past
///      `lock_timeout`, or the deploy lost its lock (nothing more changed
///      or recorded)
///   130, 143  cancelled by SIGINT, SIGTERM: the lock removed; the release
///      stays recorded as a deploy that did not finish
#[derive(Debug, clap::Parser)]
#[command(name = "swarm-deploy", version = slipway_build_info::VERSION, about, verbatim_doc_comment)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Deploy the stack with the given images, wait for convergence and readiness, record the release
    Deploy(DeployArgs),
    /// Redeploy the images of the previous good release (or `--to N`)
    Rollback(RollbackArgs),
    /// List the releases recorded on the swarm
    Releases(EnvArgs),
}

/// Which env, and how to reach its manager.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvArgs {
    /// The env in slipway.toml (`[envs.<NAME>]`, with `target = "swarm"`)
    #[arg(long, env = "SLIPWAY_ENV", value_name = "NAME")]
    pub env: String,

    /// The swarm manager, e.g. `ssh://deploy@manager1` or `unix:///var/run/docker.sock`
    /// [default: the env's `docker_host`, else `DOCKER_HOST`, else docker's default]
    #[arg(long, value_name = "URL")]
    pub docker_host: Option<String>,

    /// The docker client to run
    #[arg(long, env = "DOCKER", default_value = "docker", value_name = "PATH")]
    pub docker: PathBuf,
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

    /// Print the docker commands and the environment they would get; change and record nothing
    #[arg(long)]
    pub dry_run: bool,

    /// When convergence or readiness fails, leave the stack as it is: do not redeploy the previous release
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
