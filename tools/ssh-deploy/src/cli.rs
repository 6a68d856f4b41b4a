//! The command line of `ssh-deploy`; the doc comments are its `--help`.

use std::path::PathBuf;

/// Deploy immutable image references to hosts over SSH, with a lock, releases and rollback.
///
/// `deploy` uploads the env's bundle files over SFTP (unchanged files are
/// skipped), writes `deploy.env` (mode 0600) with the image references, runs
/// the env's command in the remote path with its output streamed to stderr
/// prefixed by host, waits for the env's ready URL through the SSH connection
/// and records the release on the host. A failed readiness rolls back to the
/// previous good release.
///
/// A fleet fails as a unit: before any host is touched, a preflight checks
/// every host (connection, host key, the lock, free space for the bundle, a
/// `docker` client when the env deploys images, the env's `preflight`
/// command); hosts deploy in batches (`--batch`, `--canary`), and when a
/// host fails, the hosts not started are not started and those this run
/// deployed are rolled back (unless `--keep-going`).
///
/// Preview environments: an env with `instances = true` is a template;
/// `--instance pr-123` deploys (or rolls back, lists, locks) one instance of
/// it, with its own directory (`{instance}` in `remote_path`), lock,
/// releases and a port from `port_range` (`SLIPWAY_PORT`, `{port}` in
/// `ready_url`). `destroy` runs the env's `teardown` and removes an
/// instance, `instances` lists them, `gc --idle 7d` destroys idle ones;
/// `max_instances` refuses a new instance past the limit (exit 3, before
/// any host is touched).
///
/// Exit status:
///   0  deployed (or the query answered)
///   1  the deploy ran and failed: the remote command exited non-zero, timed
///      out, or the ready URL never answered (then the previous release was
///      redeployed unless --no-rollback); hosts the run did not start and
///      hosts it rolled back because another host failed also exit 1; a
///      `teardown` command that failed (the instance is kept)
///   2  bad input: flags, slipway.toml, image references
///   3  an operation failed: SSH connection (refused, cut, silent), host key
///      refused, authentication, upload, a full disk on the host, the env's
///      lock is held by another deploy, or a host failed the preflight
///      (also: a new instance past `max_instances`)
///   130, 143  cancelled by SIGINT, SIGTERM: the remote command was stopped,
///      the release recorded as `cancelled`, the lock released
///
/// The lock is held by the deploy's own SSH session on the host: a killed,
/// cancelled or disconnected deploy frees it by itself.
#[derive(Debug, clap::Parser)]
#[command(name = "ssh-deploy", version = slipway_build_info::VERSION, about, verbatim_doc_comment)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Deploy image references to every host of an env
    Deploy(DeployArgs),
    /// Redeploy the previous good release (or `--to N`) of an env
    Rollback(RollbackArgs),
    /// List the releases recorded on each host of an env
    Releases(ConnectArgs),
    /// Show or release the deploy lock of an env
    Lock(LockArgs),
    /// Destroy an instance of a template env: run the env's `teardown` command in the
    /// instance's directory, remove the directory, record the destruction
    Destroy(DestroyArgs),
    /// List the instances of a template env on each host: state, port, last deploy, images
    Instances(ConnectArgs),
    /// Destroy the instances of a template env whose last deploy is older than `--idle`
    Gc(GcArgs),
}

/// How to reach and trust the hosts of an env.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// The env in slipway.toml (`[envs.<NAME>]`)
    #[arg(long, env = "SLIPWAY_ENV", value_name = "NAME")]
    pub env: String,

    /// The instance of a template env (`instances = true` in slipway.toml), e.g. `pr-123`: a
    /// DNS label, 1 to 63 lowercase letters, digits and `-`; it fills `{instance}` in the env's
    /// `remote_path` and `env`, and has its own lock, releases and port. Required for a
    /// template env, refused for any other
    #[arg(long, env = "SLIPWAY_INSTANCE", value_name = "NAME", value_parser = instance_name)]
    pub instance: Option<String>,

    /// Deploy to this host instead of the env's hosts, `[user@]host[:port]` (repeatable)
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,

    /// Private key file [default: the ssh-agent]
    #[arg(
        long,
        env = "SLIPWAY_SSH_KEY",
        value_name = "FILE",
        conflicts_with = "ssh_key_env",
        // A key pasted here starts with `-----BEGIN`: it must reach our
        // check, which refuses it without echoing it, not clap's
        // "unexpected argument" error, which would print it.
        allow_hyphen_values = true
    )]
    pub ssh_key: Option<PathBuf>,

    /// Environment variable holding the private key itself (a CI secret; never printed)
    #[arg(
        long,
        env = "SLIPWAY_SSH_KEY_ENV",
        value_name = "VARIABLE",
        allow_hyphen_values = true
    )]
    pub ssh_key_env: Option<String>,

    /// Environment variable holding the passphrase of an encrypted `--ssh-key` or
    /// `--ssh-key-env` key (never printed) [default: the env's `ssh_key_passphrase_env`]
    #[arg(
        long,
        env = "SLIPWAY_SSH_KEY_PASSPHRASE_ENV",
        value_name = "VARIABLE",
        allow_hyphen_values = true
    )]
    pub ssh_key_passphrase_env: Option<String>,

    /// OpenSSH client config read for the hosts: `Host` blocks' `HostName`, `User`, `Port`,
    /// `IdentityFile` and `ProxyJump` (a bastion) apply where slipway.toml and the flags say
    /// nothing [default: ~/.ssh/config, when it exists]
    #[arg(long, env = "SLIPWAY_SSH_CONFIG", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,

    /// known_hosts file the host keys are checked against [default: ~/.ssh/known_hosts]
    #[arg(long, env = "SLIPWAY_KNOWN_HOSTS", value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,

    /// Accept only a host key with this fingerprint, `SHA256:…` as `ssh-keygen -lf` prints it
    /// (instead of known_hosts)
    #[arg(long, env = "SLIPWAY_HOST_KEY_FINGERPRINT", value_name = "FINGERPRINT")]
    pub host_key_fingerprint: Option<String>,

    /// Trust a host that known_hosts does not list yet and add its key there
    /// (trust on first use); a changed key is still refused
    #[arg(long, conflicts_with = "host_key_fingerprint")]
    pub accept_new_host_key: bool,

    /// Give up connecting to a host after this long; once connected, an SSH step that waits
    /// this long for the host fails the deploy (the host or network went silent) (1ms to 1week)
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = positive_duration)]
    pub connect_timeout: humantime::Duration,
}

/// `deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub run: RunArgs,

    /// An image reference, `<image>=<registry/repo>@sha256:…` or `…:<tag>` (not `latest`; a tag
    /// is resolved to its digest through the registry before any host is touched); every image
    /// the env's `images` table names is required (repeatable)
    #[arg(long = "image", value_name = "IMAGE=REF")]
    pub images: Vec<String>,

    /// img-build's JSON report (`img-build --format json`), a file or `-` for stdin: the
    /// `reference` of each built image the env deploys; `--image` values win over it
    #[arg(long, value_name = "FILE")]
    pub images_from: Option<PathBuf>,

    /// Refuse to deploy (exit 2, before any host is touched) unless every image's
    /// `org.opencontainers.image.revision` label, read from its registry, is this commit
    /// (a sha or any revision of the repository around slipway.toml, e.g. `HEAD`)
    #[arg(long, value_name = "REV")]
    pub require_revision: Option<String>,

    /// Print what would be uploaded and run, without connecting to any host
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub registry: slipway_registry::RegistryArgs,
}

/// What deploys and rollbacks share.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Deploy one host at a time (the same as `--batch 1`)
    #[arg(long, conflicts_with = "batch")]
    pub rolling: bool,

    /// Deploy this many hosts at once, `N` or a percentage like `25%` (rounded up); each batch
    /// must be deployed and ready before the next starts [default: the env's `batch`, else all
    /// hosts at once]
    #[arg(long, value_name = "N|P%")]
    pub batch: Option<slipway_config::Batch>,

    /// Deploy this many hosts first, wait until they are ready, then the rest in batches
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub canary: Option<u32>,

    /// When a host fails, go on with the other hosts and leave the hosts already deployed as
    /// they are [default: the hosts not yet started are not started, and those already
    /// deployed by this run are rolled back to their previous release]
    #[arg(long)]
    pub keep_going: bool,

    /// Pass the runner's environment variable NAME to the remote command (repeatable); its
    /// value is a secret: masked, never printed, sent on the command's stdin (never on a
    /// command line or into a file on the host). The env's `env` table adds plain values
    #[arg(long = "env-var", value_name = "NAME")]
    pub env_vars: Vec<String>,

    /// Give the remote command this long, then stop it on the host and fail the deploy;
    /// uploading the bundle gets as long again (1ms to 1week)
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = positive_duration)]
    pub timeout: humantime::Duration,

    /// Wait this long for another deploy's lock, e.g. `5m`, `0s` not to wait (up to 1week)
    /// [default: the env's `lock_timeout`]
    #[arg(long, value_name = "DURATION", value_parser = any_duration)]
    pub lock_wait: Option<humantime::Duration>,

    /// When the ready URL does not answer, leave the failed release in place
    #[arg(long)]
    pub no_rollback: bool,
}

/// `rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub run: RunArgs,

    /// The release to redeploy, as `releases` lists it [default: the newest good release before
    /// the current one whose images differ from it]
    #[arg(long, value_name = "N")]
    pub to: Option<u64>,

    /// Show which release each host would roll back to, and why, without changing anything
    #[arg(long)]
    pub dry_run: bool,
}

/// `lock`.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    #[command(subcommand)]
    pub action: LockAction,
}

/// `lock status|release`.
#[derive(Debug, clap::Subcommand)]
pub enum LockAction {
    /// Show who holds the env's lock on each host, and whether that deploy is alive
    Status(ConnectArgs),
    /// Clear a free lock's holder record; a live deploy's lock is refused unless `--force`
    Release(LockReleaseArgs),
}

/// `lock release`.
#[derive(Debug, clap::Args)]
pub struct LockReleaseArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Also stop a live deploy that holds the lock (its lock holder on the host), freeing it
    #[arg(long)]
    pub force: bool,
}

/// `destroy`.
#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub teardown: TeardownArgs,
}

/// `gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Destroy the instances whose last deploy (or, never deployed, whose creation) is older
    /// than this, e.g. `7d` (1m to 366days)
    #[arg(long, value_name = "DURATION", value_parser = age)]
    pub idle: humantime::Duration,

    #[command(flatten)]
    pub teardown: TeardownArgs,
}

/// What `destroy` and `gc` share.
#[derive(Debug, Clone, clap::Args)]
pub struct TeardownArgs {
    /// Give the env's `teardown` command this long (1ms to 1week)
    #[arg(long, default_value = "10m", value_name = "DURATION", value_parser = positive_duration)]
    pub timeout: humantime::Duration,

    /// Wait this long for a deploy of the instance to end, e.g. `5m`, `0s` not to wait (up to
    /// 1week) [default: the env's `lock_timeout`]
    #[arg(long, value_name = "DURATION", value_parser = any_duration)]
    pub lock_wait: Option<humantime::Duration>,

    /// Show which instances would be destroyed on each host, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `--instance`: a DNS label.
fn instance_name(text: &str) -> Result<String, String> {
    crate::instance::parse_name(text)
}

/// An age flag (`--idle`), from 1m to 366 days, range-checked by slipway-core.
fn age(text: &str) -> Result<humantime::Duration, slipway_core::duration::DurationError> {
    slipway_core::duration::parse_age(text).map(humantime::Duration::from)
}

/// A duration flag that must be above zero, range-checked by slipway-core.
fn positive_duration(
    text: &str,
) -> Result<humantime::Duration, slipway_core::duration::DurationError> {
    slipway_core::duration::parse_positive(text).map(humantime::Duration::from)
}

/// A duration flag that may be zero, range-checked by slipway-core.
fn any_duration(text: &str) -> Result<humantime::Duration, slipway_core::duration::DurationError> {
    slipway_core::duration::parse(text).map(humantime::Duration::from)
}
