//! `ssh-deploy`: deploy immutable image references to hosts over SSH, with a lock, releases and rollback.
//!
//! - `plan`: flags over slipway.toml, `deploy.env`, the remote command line (pure);
//! - `bundle`: the bundle's files, checked to lie inside the project;
//! - `ssh`: connect, host keys, authentication, streamed commands;
//! - `remote`: what is kept on the host (lock, release records, uploads), over SFTP;
//! - `ready`: readiness probed through the SSH connection;
//! - `lock`: the deploy lock, held by the deploy's own SSH session;
//! - `cancel`: SIGINT/SIGTERM turned into a clean stop;
//! - `deploy`: one host's run, every step on one connection.

mod bundle;
mod cancel;
mod cli;
mod deploy;
mod lock;
mod plan;
mod ready;
mod remote;
mod ssh;
mod ssh_config;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use slipway_core::cli::{UsageError, exit};
use slipway_core::config::{Config, Env, Host};
use slipway_core::contract::ssh_deploy::Report as Json;
use slipway_core::output::{Output, Style, escape_control, shell_quote};
use slipway_core::secret::{ExposeSecret as _, SecretString};

pub use cancel::exit_status as cancelled_exit_status;
pub use cli::{
    Cli, Command, ConnectArgs, DeployArgs, LockAction, LockArgs, LockReleaseArgs, RollbackArgs,
    RunArgs,
};
pub use slipway_core::contract::ssh_deploy::{LockHolder, Release, ReleaseResult};
pub use ssh::read_known_hosts;

pub use slipway_core::contract::ssh_deploy::{DryRun, DryRunFile, HostReport, Outcome};

/// The report of a run: [`slipway_core::contract::ssh_deploy::Report`], as
/// `--format json` prints it.
#[derive(Debug, serde::Serialize)]
#[serde(transparent)]
pub struct Report(pub slipway_core::contract::ssh_deploy::Report);

impl slipway_core::output::Report for Report {
    fn render_plain(&self, style: &Style) -> String {
        let mut text = String::new();
        if let Some(dry) = &self.0.dry_run {
            let _ = writeln!(text, "dry run: nothing was uploaded or run");
            let _ = writeln!(text, "hosts: {}", dry.hosts.join(" "));
            let _ = writeln!(text, "remote path: {}", dry.remote_path);
            for file in &dry.files {
                let _ = writeln!(
                    text,
                    "upload {} mode={} size={} sha256={}",
                    file.name, file.mode, file.size, file.sha256
                );
            }
            let _ = writeln!(text, "deploy.env:");
            for line in dry.deploy_env.lines() {
                let _ = writeln!(text, "  {line}");
            }
            let _ = writeln!(text, "command env:");
            for (name, value) in &dry.command_env {
                let _ = writeln!(text, "  {}", shell_quote(&format!("{name}={value}")));
            }
            let _ = writeln!(text, "run: {}", dry.command_line);
            if let Some(url) = &dry.ready_url {
                let _ = writeln!(text, "ready: {url} (through the SSH connection)");
            }
            return text;
        }
        for host in &self.0.hosts {
            let outcome = match host.outcome {
                Outcome::Deployed | Outcome::Listed | Outcome::Unlocked | Outcome::Released => {
                    style.ok(outcome_name(host.outcome))
                }
                Outcome::Skipped | Outcome::Locked | Outcome::Cancelled => {
                    style.warn(outcome_name(host.outcome))
                }
                _ => style.error(outcome_name(host.outcome)),
            };
            let _ = write!(text, "{outcome} ");
            // Everything after the (styled) outcome may hold text from the
            // host (a holder, an error from the remote command): control
            // characters are escaped so none can start a line of its own
            // (`::error …`) or move the cursor.
            let mut line = host.host.to_string();
            if let Some(release) = host.release {
                let _ = write!(line, " release={release}");
            }
            if !host.uploaded.is_empty() || !host.unchanged.is_empty() {
                let _ = write!(
                    line,
                    " uploaded={} unchanged={}",
                    host.uploaded.len(),
                    host.unchanged.len()
                );
            }
            if let Some(status) = host.exit_status {
                let _ = write!(line, " exit_status={status}");
            }
            if let Some(ready) = host.ready {
                let _ = write!(line, " ready={ready}");
            }
            if let Some(to) = host.rolled_back_to {
                let _ = write!(line, " rolled_back_to={to}");
            }
            if let Some(lock) = &host.lock {
                let _ = write!(line, " lock={}", shell_quote(&remote::describe(lock)));
            }
            if let Some(error) = &host.error {
                let _ = write!(line, " error={}", shell_quote(error));
            }
            text.push_str(&escape_control(&line));
            text.push('\n');
            for release in &host.releases {
                let images: Vec<String> = release
                    .images
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                // A record is host data: escaped as the host line is.
                let line = format!(
                    "  {} {} {} git={} who={} {}{}",
                    release.id,
                    release.time,
                    match release.result {
                        ReleaseResult::Deployed => "deployed",
                        ReleaseResult::Failed => "failed",
                        ReleaseResult::Cancelled => "cancelled",
                    },
                    release
                        .git_sha
                        .as_deref()
                        .map_or("-", |s| s.get(..12).unwrap_or(s)),
                    release.who,
                    images.join(" "),
                    release
                        .rollback_of
                        .map(|n| format!(" rollback_of={n}"))
                        .unwrap_or_default()
                );
                let _ = writeln!(text, "{}", escape_control(&line));
            }
        }
        text
    }

    fn outputs(&self) -> Vec<(String, String)> {
        let deployed = self.0.hosts.iter().all(|h| h.outcome == Outcome::Deployed);
        let mut outputs = vec![("deployed".to_owned(), deployed.to_string())];
        if let Some(release) = self.0.hosts.iter().find_map(|h| h.release) {
            outputs.push(("release".to_owned(), release.to_string()));
        }
        outputs
    }

    fn summary_markdown(&self) -> Option<String> {
        let mut text = format!(
            "### ssh-deploy {} `{}`\n\n| host | outcome | release | error |\n| --- | --- | ---: | --- |\n",
            self.0.action, self.0.env
        );
        for host in &self.0.hosts {
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} |",
                host.host,
                outcome_name(host.outcome),
                host.release.map(|r| r.to_string()).unwrap_or_default(),
                host.error
                    .as_deref()
                    .unwrap_or_default()
                    .replace('|', "\\|")
            );
        }
        Some(text)
    }

    fn exit_code(&self) -> u8 {
        if self.0.hosts.iter().any(|h| h.outcome == Outcome::Error) {
            exit::FAILURE
        } else if self.0.hosts.iter().any(|h| {
            matches!(
                h.outcome,
                Outcome::Failed | Outcome::RolledBack | Outcome::Skipped | Outcome::Cancelled
            )
        }) {
            exit::NO
        } else {
            exit::SUCCESS
        }
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Deployed => "deployed",
        Outcome::Failed => "failed",
        Outcome::RolledBack => "rolled-back",
        Outcome::Skipped => "skipped",
        Outcome::Error => "error",
        Outcome::Listed => "releases",
        Outcome::Locked => "locked",
        Outcome::Unlocked => "unlocked",
        Outcome::Released => "lock-released",
        Outcome::Cancelled => "cancelled",
    }
}

/// Runs `ssh-deploy`.
pub fn run(cli: Cli, out: &Output) -> anyhow::Result<Report> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let config = Config::locate(cli.global.config.as_deref(), &cwd)?;
    match cli.command {
        Command::Deploy(args) => {
            run_deploy(&config, &args.connect, &args.run, Some(&args), None, out)
        }
        Command::Rollback(args) => {
            run_deploy(&config, &args.connect, &args.run, None, Some(args.to), out)
        }
        Command::Releases(connect) => {
            let (env, hosts, connection) = connect_plan(&config, &connect, out)?;
            let reports = per_host(&hosts, false, |host| {
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
            let reports = per_host(&hosts, false, |host| {
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
    let hosts = hosts(env, &connect.hosts)?;
    let secret_vars = plan::secret_vars(&run.env_vars, env, |name| std::env::var_os(name))?;
    for (_, value) in &secret_vars {
        out.mask(value);
    }
    if let Some(url) = &env.ready_url {
        // Its password or `?token=` is a secret as much as a key is: masked
        // before anything can print it, and redacted wherever it is echoed.
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
            deploy::Images::Given(given_images(config, env, args, out)?),
            bundle::bundle_files(&config.root, env, args.dry_run)?,
        ),
        None => (deploy::Images::Release(rollback.flatten()), Vec::new()),
    };
    if let (Some(args), deploy::Images::Given(vars)) = (deploy, &images)
        && args.dry_run
    {
        let env_file = plan::deploy_env_file(vars)?;
        let command_env = plan::command_env(&env.name, 0, vars)
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "SLIPWAY_RELEASE" => (k, "<next release number>".to_owned()),
                _ => (k, v),
            })
            .chain(env.env_vars.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect::<Vec<_>>();
        // `--env-var` values are read from stdin by the line's first words.
        let line_env = command_env.clone();
        let command_env: Vec<(String, String)> = command_env
            .into_iter()
            .chain(
                secret_vars
                    .iter()
                    .map(|(k, _)| (k.clone(), "***".to_owned())),
            )
            .collect();
        let mut files: Vec<DryRunFile> = bundle
            .iter()
            .chain([&env_file])
            .map(|f| DryRunFile {
                name: f.name.clone(),
                mode: format!("{:04o}", f.mode),
                size: f.size,
                sha256: f.sha256.clone().unwrap_or_default(),
            })
            .collect();
        files.dedup_by(|a, b| a.name == b.name);
        return Ok(Report(Json {
            env: env.name.clone(),
            action: "deploy".to_owned(),
            dry_run: Some(DryRun {
                hosts: hosts.iter().map(ToString::to_string).collect(),
                remote_path: env.remote_path.clone(),
                files,
                deploy_env: String::from_utf8_lossy(
                    env_file.contents.as_deref().unwrap_or_default(),
                )
                .into_owned(),
                command_line: format!(
                    "{}{}",
                    plan::secret_reads(&secret_vars).0,
                    plan::remote_command_line(&env.remote_path, None, &[], &line_env, &env.command,)
                ),
                command_env,
                ready_url: env
                    .ready_url
                    .as_deref()
                    .map(slipway_core::secret::redact_url),
            }),
            hosts: Vec::new(),
        }));
    }
    let connection = connection(connect, env, out)?;
    let identity = identity(config);
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
    let reports = per_host(&hosts, run.rolling, |host| {
        deploy::deploy(host, &connection, &identity, &job, &progress)
    });
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

/// Runs `work` for every host, in parallel threads, or one after the other
/// stopping at the first host that is not deployed (`rolling`).
fn per_host(
    hosts: &[Host],
    rolling: bool,
    work: impl Fn(&Host) -> HostReport + Sync,
) -> Vec<HostReport> {
    if rolling {
        let mut reports = Vec::new();
        for host in hosts {
            let is_failed = reports
                .last()
                .is_some_and(|r: &HostReport| r.outcome != Outcome::Deployed);
            reports.push(if is_failed {
                HostReport::new(&host.to_string())
            } else {
                work(host)
            });
        }
        return reports;
    }
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

fn connect_plan<'c>(
    config: &'c Config,
    connect: &ConnectArgs,
    out: &Output,
) -> anyhow::Result<(&'c Env, Vec<Host>, deploy::Connection)> {
    let env = config.env(&connect.env)?;
    plan::check_remote_path(env)?;
    let hosts = hosts(env, &connect.hosts)?;
    Ok((env, hosts, connection(connect, env, out)?))
}

fn hosts(env: &Env, given: &[String]) -> anyhow::Result<Vec<Host>> {
    if given.is_empty() {
        return Ok(env.hosts.clone());
    }
    given
        .iter()
        .map(|h| {
            h.parse::<Host>()
                .map_err(|e| UsageError::new(format!("invalid `--host`: {e}")))
        })
        .collect()
}

fn connection(
    connect: &ConnectArgs,
    env: &Env,
    out: &Output,
) -> anyhow::Result<deploy::Connection> {
    let passphrase = || {
        passphrase(
            connect.ssh_key_passphrase_env.as_deref(),
            env.ssh_key_passphrase_env.as_deref(),
            out,
        )
    };
    let refuse_encrypted = |key: &str| {
        UsageError::new(format!(
            "{key} is encrypted with a passphrase; put the passphrase in an environment variable and name it with `--ssh-key-passphrase-env VARIABLE` (or `ssh_key_passphrase_env = \"VARIABLE\"` in [envs.{}]), or load the key into ssh-agent",
            env.name
        ))
    };
    let auth = match (&connect.ssh_key, &connect.ssh_key_env) {
        (Some(path), _) => {
            let text = check_private_key_file(path)?;
            let passphrase = passphrase()?;
            if passphrase.is_none() && plan::is_encrypted_key(text.expose_secret()) {
                return Err(refuse_encrypted(&format!("`--ssh-key {}`", path.display())));
            }
            ssh::Auth::KeyFile(path.clone(), passphrase)
        }
        (None, Some(var)) => {
            // A key pasted in place of the variable's name must not be echoed.
            if !is_variable_name(var) {
                return Err(UsageError::new(
                    "`--ssh-key-env` takes the name of an environment variable (letters, digits, `_`), e.g. `DEPLOY_KEY`, not the key itself; the value given is not shown: it may be a secret",
                ));
            }
            let key = std::env::var(var).ok().filter(|k| !k.trim().is_empty()).ok_or_else(|| {
                UsageError::new(format!(
                    "`--ssh-key-env {var}` names an environment variable that is unset or empty; it must hold the private key itself"
                ))
            })?;
            let key = SecretString::from(key);
            out.mask(&key);
            let passphrase = passphrase()?;
            if passphrase.is_none() && plan::is_encrypted_key(key.expose_secret()) {
                return Err(refuse_encrypted(&format!(
                    "the key in `--ssh-key-env {var}`"
                )));
            }
            ssh::Auth::KeyMemory(key, passphrase)
        }
        (None, None) => ssh::Auth::Agent,
    };
    let trust = match &connect.host_key_fingerprint {
        Some(value) => ssh::Trust::Fingerprint(plan::parse_fingerprint(value)?),
        None => ssh::Trust::KnownHosts {
            path: match &connect.known_hosts {
                Some(path) => path.clone(),
                None => home()?.join(".ssh/known_hosts"),
            },
            accept_new: connect.accept_new_host_key,
        },
    };
    Ok(deploy::Connection {
        auth,
        trust,
        default_user: login_name(),
        timeout: Duration::from(connect.connect_timeout),
        ssh_config: ssh_config::load(connect.ssh_config.as_deref())?.map(std::sync::Arc::new),
    })
}

/// Whether `name` can be an environment variable's name (letters, digits, `_`).
fn is_variable_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The key's passphrase, from the variable `--ssh-key-passphrase-env` (or
/// the env's `ssh_key_passphrase_env`) names; masked, never printed.
fn passphrase(
    flag: Option<&str>,
    config: Option<&str>,
    out: &Output,
) -> anyhow::Result<Option<SecretString>> {
    let Some(var) = flag.or(config) else {
        return Ok(None);
    };
    let shown = if flag.is_some() {
        "--ssh-key-passphrase-env"
    } else {
        "ssh_key_passphrase_env"
    };
    // A passphrase pasted in place of the variable's name must not be echoed.
    if !is_variable_name(var) {
        return Err(UsageError::new(format!(
            "`{shown}` takes the name of an environment variable (letters, digits, `_`), e.g. `DEPLOY_KEY_PASSPHRASE`, not the passphrase itself; the value given is not shown: it may be a secret"
        )));
    }
    let value = std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            UsageError::new(format!(
                "`{shown} {var}` names an environment variable that is unset or empty; it must hold the key's passphrase"
            ))
        })?;
    let value = SecretString::from(value);
    out.mask(&value);
    Ok(Some(value))
}

/// Checks before connecting that `--ssh-key` is a readable private key: a
/// missing file or a `.pub` given by mistake is bad input, not an SSH
/// failure. Returns the key's text.
fn check_private_key_file(path: &std::path::Path) -> anyhow::Result<SecretString> {
    // A key pasted in place of the path must not be echoed.
    let shown = path.to_string_lossy();
    if shown.contains("PRIVATE KEY") || shown.contains('\n') {
        return Err(UsageError::new(
            "`--ssh-key` (or `SLIPWAY_SSH_KEY`) holds a private key itself, not a file path; pass a key file, or the key with `--ssh-key-env VARIABLE`; the value given is not shown: it is a secret",
        ));
    }
    // Capped: `--ssh-key /dev/zero` fails naming the file and the limit.
    let text = slipway_core::input::read(path).map_err(|error| {
        UsageError::new(format!(
            "cannot read `--ssh-key {}`: {error}; give a private key file, e.g. `~/.ssh/id_ed25519`",
            path.display()
        ))
    })?;
    // OpenSSH (`BEGIN OPENSSH PRIVATE KEY`), PEM (`BEGIN RSA PRIVATE KEY`)
    // and PKCS#8 (`BEGIN [ENCRYPTED ]PRIVATE KEY`) keys all have this marker.
    if !String::from_utf8_lossy(&text).contains("PRIVATE KEY-----") {
        return Err(UsageError::new(format!(
            "`--ssh-key {}` is not a private key (no `-----BEGIN … PRIVATE KEY-----` line); give the private key, not its `.pub`",
            path.display()
        )));
    }
    Ok(SecretString::from(
        String::from_utf8_lossy(&text).into_owned(),
    ))
}

/// The `deploy.env` image variables from `--images-from` and `--image`
/// (flags win), checked against `--require-revision` when given: nothing
/// is deployed whose revision label is not the commit being released.
fn given_images(
    config: &Config,
    env: &Env,
    args: &DeployArgs,
    out: &Output,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    plan::check_duplicate_images(&args.images)?;
    let mut given = Vec::new();
    if let Some(path) = &args.images_from {
        let source = path.display().to_string();
        let text = read_images_from(path, &source)?;
        given = plan::images_from_report(&text, &source, env)?;
    }
    given.extend(args.images.iter().cloned());
    let vars = plan::image_vars(env, &given)?;
    if let Some(rev) = &args.require_revision {
        require_revision(config, rev, &vars, out)?;
    }
    Ok(vars)
}

/// The most `--images-from` reads: img-build's report for a few images is a
/// few kB; more is not a report (`/dev/zero` would fill the memory).
const IMAGES_FROM_LIMIT: u64 = 4 * 1024 * 1024;

/// Reads `--images-from` (a file or `-` for stdin), at most
/// [`IMAGES_FROM_LIMIT`] bytes.
fn read_images_from(path: &std::path::Path, source: &str) -> anyhow::Result<String> {
    use std::io::Read as _;
    let reader: Box<dyn std::io::Read> = if source == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(fs_err::File::open(path).map_err(|error| {
            UsageError::new(format!(
                "cannot read `--images-from {source}`: {error}; give img-build's JSON report (`img-build --format json > build.json`) or `-` for stdin"
            ))
        })?)
    };
    let mut bytes = Vec::new();
    reader
        .take(IMAGES_FROM_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| {
            UsageError::new(format!("cannot read `--images-from {source}`: {error}"))
        })?;
    if bytes.len() as u64 > IMAGES_FROM_LIMIT {
        return Err(UsageError::new(format!(
            "`--images-from {source}` is larger than {} MiB, the most ssh-deploy reads; give img-build's JSON report (`img-build --format json > build.json`)",
            IMAGES_FROM_LIMIT / 1024 / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        UsageError::new(format!(
            "`--images-from {source}` is not img-build's JSON report (`img-build --format json`): it is not UTF-8 text"
        ))
    })
}

/// The deploy gate: every image's `org.opencontainers.image.revision`,
/// read from its registry (manifest and config blob only), must be `rev`.
fn require_revision(
    config: &Config,
    rev: &str,
    vars: &std::collections::BTreeMap<String, String>,
    out: &Output,
) -> anyhow::Result<()> {
    use slipway_core::image_ref::ImageRef;
    use slipway_core::registry::{RegistryClient, RegistryOptions};
    use slipway_core::stale;

    let sha = slipway_core::git::Repo::discover(&config.root)
        .and_then(|repo| repo.resolve(rev))
        .map_err(|error| UsageError::new(format!("`--require-revision {rev}`: {error}")))?;
    let images: Vec<ImageRef> = vars
        .values()
        .map(|reference| reference.parse())
        .collect::<Result<_, _>>()
        .context("an image reference no longer parses")?;
    let options = RegistryOptions {
        max_attempts: 3,
        user_agent: concat!("ssh-deploy/", env!("CARGO_PKG_VERSION")).to_owned(),
        ..RegistryOptions::default()
    };
    let client =
        RegistryClient::for_registries(images.iter().map(ImageRef::registry), None, options, out)?;
    let fetch = stale::FetchOptions {
        timeout: Duration::from_secs(30),
        cache: stale::default_cache_path(&config.root),
    };
    let published = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(stale::fetch_published(&client, &images, &fetch));
    let mut refused = Vec::new();
    for (image, published) in images.iter().zip(published) {
        let published = published.map_err(own_registry_hint)?;
        if !stale::revision_matches(&published, &sha) {
            let found = match stale::revision_of(&published) {
                Ok(revision) => format!("built from `{}`", revision.short()),
                Err(reason) => reason.describe(),
            };
            refused.push(format!("`{image}` ({found})"));
        }
    }
    if refused.is_empty() {
        tracing::info!(revision = %sha.short(), "every image was built from the release commit");
        Ok(())
    } else {
        Err(UsageError::new(format!(
            "refusing to deploy images not built from `{}` (`--require-revision {rev}`): {}",
            sha.short(),
            refused.join(", ")
        )))
    }
}

/// A registry's refusal (401/403) with ssh-deploy's own way out: the
/// library's hint names `--username`/`--password-stdin`, which ssh-deploy
/// does not have.
fn own_registry_hint(error: slipway_core::stale::FetchError) -> anyhow::Error {
    use slipway_core::registry::RegistryError;
    use slipway_core::stale::FetchError;
    match &error {
        FetchError::Registry { image, source } => match source.as_ref() {
            RegistryError::Unauthorized {
            registry,
            method,
            path,
            status,
            credentials,
            message,
            } => anyhow::anyhow!(
                "`{registry}` refused {credentials} for `{method} {path}` ({status}){message}; `--require-revision` reads the registry with the credentials of `docker login {registry}` (the docker config or its credential helper), or of `REGISTRY_USER` and `REGISTRY_PASSWORD` in the environment"
            )
            .context(format!("cannot read the labels of `{image}`")),
            _ => anyhow::Error::from(error),
        },
        FetchError::Timeout { .. } => anyhow::Error::from(error),
    }
}

/// The local login name, as OpenSSH defaults the remote user to.
fn login_name() -> Option<String> {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| UsageError::new("$HOME is unset, so `~/.ssh/known_hosts` cannot be found; pass `--known-hosts FILE` or `--host-key-fingerprint SHA256:…`"))
}

fn identity(config: &Config) -> deploy::Identity {
    let machine = fs_err::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let user = login_name().unwrap_or_else(|| "unknown".to_owned());
    let holder = format!("{user}@{machine}");
    let who = std::env::var("GITHUB_ACTOR")
        .ok()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| holder.clone());
    let git_sha = slipway_core::git::Repo::discover(&config.root)
        .and_then(|repo| repo.head_sha())
        .map(|sha| sha.as_str().to_owned())
        .ok()
        .or_else(|| std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()));
    let ci = slipway_core::ci::CiContext::detect().ok();
    let ci_job = ci.and_then(|ci| {
        let run = ci.run_id?;
        Some(match (ci.provider, ci.server_url, ci.repository) {
            (slipway_core::ci::Provider::GithubActions, Some(server), Some(repository)) => {
                format!("{server}/{repository}/actions/runs/{run}")
            }
            (slipway_core::ci::Provider::GitlabCi, Some(server), Some(repository)) => {
                format!("{server}/{repository}/-/pipelines/{run}")
            }
            _ => format!("run {run}"),
        })
    });
    deploy::Identity {
        holder,
        machine,
        ci_job,
        who,
        git_sha,
    }
}
