//! The fleet's preflight: before any host is touched, every host is reached
//! and checked for what can be checked (connection, host key, the lock, free
//! space for the bundle, a `docker` client, the env's `preflight` command).
//! Nothing is written on a host.

use std::time::Duration;

use anyhow::Context as _;
use slipway_config::Host;

use crate::deploy::{self, Connection, Job};
use crate::plan::{self, PREFLIGHT_TAG};
use crate::remote::{self, Layout};
use crate::ssh;

/// What the preflight checks beyond the connection.
#[derive(Debug, Clone)]
pub(crate) struct Checks {
    /// Bytes the bundle and `deploy.env` need in the remote path.
    pub(crate) need_bytes: u64,
    /// Whether the env deploys images, so needs a `docker` client.
    pub(crate) is_docker_needed: bool,
    /// The env's `preflight` command.
    pub(crate) command: Option<String>,
}

/// Checks `host`; the error says what failed. Returns the open
/// connection, which the deploy goes on with: a connection costs far more
/// (150–300 ms) than any step on it, with the deploy's [`ssh::Warms`]:
/// the lock holder's login shell, which ran the preflight's checks and
/// waits for the lock's line.
pub(crate) fn check(
    host: &Host,
    connection: &Connection,
    job: &Job,
    checks: &Checks,
) -> anyhow::Result<(ssh2::Session, ssh::Warms)> {
    let io = connection.timeout;
    let session = deploy::open(host, connection)?;
    let mut warms = ssh::Warms::start(&session);
    if let Some(selected) = &job.instance {
        crate::instance::preflight(&session, selected)?;
    }
    let layout = Layout::new(&job.remote_path);
    let lock_file = layout.lock_file().to_string_lossy().into_owned();
    let line = plan::preflight_line(&job.remote_path, &lock_file, checks.is_docker_needed);
    // On the lock holder's shell, which then waits for the lock's line: a
    // login shell (and its rc files) fewer.
    let output = match warms.lock.take() {
        Some(warm) => {
            let (_, output, warm) = ssh::run_keeping_warm(&session, warm, &line, io)
                .context("cannot run the preflight checks")?;
            warms.lock = Some(warm);
            output
        }
        None => {
            ssh::run_captured(&session, &line, b"", io)
                .context("cannot run the preflight checks")?
                .1
        }
    };
    let said: Vec<&str> = output
        .lines()
        .filter_map(|l| l.strip_prefix(PREFLIGHT_TAG))
        .map(str::trim)
        .collect();
    let free_kib = said
        .iter()
        .find_map(|l| l.strip_prefix("free "))
        .and_then(|kib| kib.trim().parse::<u64>().ok());
    match free_kib {
        // A host without `df` (or `awk`) is not refused for it: the
        // deploy's own writes still fail cleanly on a full disk.
        None => tracing::warn!(
            host = %host,
            said = %remote::reason(&output),
            "cannot tell the free space on the host; not checked"
        ),
        Some(free_kib) => {
            let free = free_kib.saturating_mul(1024);
            anyhow::ensure!(
                free >= checks.need_bytes,
                "only {} free for `{}` on the host; the bundle and deploy.env need {}",
                bytes(free),
                job.remote_path,
                bytes(checks.need_bytes)
            );
        }
    }
    if said.contains(&"locked") && job.lock_wait.is_zero() {
        let who = session
            .sftp()
            .ok()
            .and_then(|sftp| remote::read_holder(&sftp, &layout))
            .map_or_else(
                || "held by another deploy".to_owned(),
                |holder| remote::describe(&holder),
            );
        anyhow::bail!(
            "env `{env}` on `{host}` is locked by another deploy: {who}; `--lock-wait 0s` does not wait for it; the lock frees itself when that deploy ends or its connection dies (`ssh-deploy lock status --env {env} --host {host}` shows it)",
            env = job.env,
        );
    }
    anyhow::ensure!(
        !said.contains(&"no docker"),
        "no `docker` client is on the PATH of the login on the host, and env `{}` deploys images",
        job.env
    );
    if let Some(command) = &checks.command {
        let line = plan::preflight_command_line(&job.remote_path, &job.env, command);
        let wait = io.max(Duration::from_secs(60));
        let (status, output) = ssh::run_captured(&session, &line, b"", wait)
            .with_context(|| format!("cannot run the env's preflight command `{command}`"))?;
        anyhow::ensure!(
            status == 0,
            "the env's preflight command `{command}` exited with status {status}{}",
            match output.lines().last() {
                Some(last) if !last.trim().is_empty() => format!(": {}", last.trim()),
                _ => String::new(),
            }
        );
    }
    Ok((session, warms))
}

/// A byte count for people: `12 KiB`, `3 MiB`.
fn bytes(n: u64) -> String {
    match n {
        n if n >= 10 << 20 => format!("{} MiB", n >> 20),
        n if n >= 10 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}
