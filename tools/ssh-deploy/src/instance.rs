//! Preview environments: an env with `instances = true` is a template, and
//! `--instance pr-123` makes one instance of it, with a directory, a lock,
//! release records and a port of its own.
//!
//! On each host, the directory that holds the instances (`remote_path`
//! without its last component, `/{instance}`) also holds the env's own
//! state: `.slipway/instances/<name>.json`, one [`Instance`] record per
//! instance (its port, when it was created or destroyed), and
//! `.slipway/instances.lock`, the session-held lock (see `lock`) under which
//! a port is chosen and `max_instances` counted. What an instance deployed
//! is in its own release records, as for any env.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use slipway_config::{Env, Host, INSTANCE_PLACEHOLDER, PORT_PLACEHOLDER, PortRange};
use slipway_contract::ssh_deploy::{Instance, InstanceState};
use slipway_core::cli::UsageError;
use slipway_core::output::shell_quote;
use slipway_core::progress::Progress;

use crate::deploy::{self, Connection, Identity};
use crate::lock::{self, Acquired};
use crate::plan;
use crate::remote::{self, Layout};
use crate::ssh;
use crate::{HostReport, Outcome};

/// The longest instance name: a DNS label's 63 characters.
const MAX_NAME: usize = 63;

/// Checks an instance name (`--instance`): a DNS label, so that it can name
/// a directory, a compose project, a container and a host name alike.
pub(crate) fn parse_name(text: &str) -> Result<String, String> {
    let is_label = !text.is_empty()
        && text.len() <= MAX_NAME
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if is_label {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{}` is not an instance name: use a DNS label, 1 to {MAX_NAME} lowercase letters, digits and `-`, not starting or ending with `-`, e.g. `pr-123`",
            slipway_core::output::escape_control(text)
        ))
    }
}

/// One instance of a template env, as a run deploys, destroys or lists it.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    /// The instance name.
    pub(crate) name: String,
    /// The directory holding the env's instances on each host.
    pub(crate) base: PathBuf,
    /// The env's `port_range`.
    pub(crate) port_range: Option<PortRange>,
    /// The env's `max_instances`.
    pub(crate) max_instances: Option<u32>,
    /// The env's `ready_url`, with `{port}` still in it.
    pub(crate) ready_url: Option<String>,
}

impl Selected {
    /// The instance's directory.
    pub(crate) fn remote_path(&self) -> String {
        self.base.join(&self.name).to_string_lossy().into_owned()
    }
}

/// The env a run works on: `env` itself, or for a template env the
/// instance `instance` names, its `{instance}` placeholders filled in and
/// `SLIPWAY_INSTANCE` and `COMPOSE_PROJECT_NAME` added to the command's
/// environment. An instance env without `--instance`, or `--instance` on a
/// plain env, is bad input.
pub(crate) fn select(env: &Env, instance: Option<&str>) -> anyhow::Result<(Env, Option<Selected>)> {
    match (env.is_template, instance) {
        (false, None) => Ok((env.clone(), None)),
        (false, Some(name)) => Err(UsageError::new(format!(
            "`--instance {name}` needs a template env, and env `{}` has no `instances = true`; leave `--instance` out, or set `instances = true` and `remote_path = \"/srv/previews/{INSTANCE_PLACEHOLDER}\"` in [envs.{}]",
            env.name, env.name
        ))),
        (true, None) => Err(UsageError::new(format!(
            "env `{}` is a template of instances (`instances = true`): name the instance with `--instance NAME`, e.g. `--instance pr-123`",
            env.name
        ))),
        (true, Some(name)) => {
            let name = parse_name(name)
                .map_err(|why| UsageError::new(format!("invalid value for `--instance`: {why}")))?;
            let (base, _) = env.remote_path.rsplit_once('/').context(
                "a template's `remote_path` ends in `/{instance}` (checked when loading)",
            )?;
            let mut resolved = env.clone();
            resolved.remote_path = env.remote_path.replace(INSTANCE_PLACEHOLDER, &name);
            for value in resolved.env_vars.values_mut() {
                *value = value.replace(INSTANCE_PLACEHOLDER, &name);
            }
            resolved
                .env_vars
                .insert("SLIPWAY_INSTANCE".to_owned(), name.clone());
            resolved
                .env_vars
                .entry("COMPOSE_PROJECT_NAME".to_owned())
                .or_insert_with(|| compose_project(&env.name, &name));
            // Checked here with the range's first port; each host fills in
            // the instance's own port before the deploy.
            resolved.ready_url = env.ready_url.as_ref().map(|url| {
                let first = env.port_range.map_or(0, |range| range.first);
                url.replace(PORT_PLACEHOLDER, &first.to_string())
            });
            Ok((
                resolved,
                Some(Selected {
                    name,
                    base: PathBuf::from(if base.is_empty() { "/" } else { base }),
                    port_range: env.port_range,
                    max_instances: env.max_instances,
                    ready_url: env.ready_url.clone(),
                }),
            ))
        }
    }
}

/// `COMPOSE_PROJECT_NAME` of an instance: `<env>-<instance>`, in the
/// characters compose accepts (lowercase letters, digits, `-`, `_`).
fn compose_project(env: &str, instance: &str) -> String {
    let env: String = env
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '-',
        })
        .collect();
    format!("{}-{instance}", env.trim_start_matches(['-', '_']))
}

/// Refuses `--instance` on a subcommand that works on all the instances.
pub(crate) fn refuse_instance(subcommand: &str, instance: Option<&str>) -> anyhow::Result<()> {
    match instance {
        Some(name) => Err(UsageError::new(format!(
            "`ssh-deploy {subcommand}` works on every instance of the env; leave out `--instance {name}`"
        ))),
        None => Ok(()),
    }
}

/// The template env's `select` for the subcommands that take no instance.
pub(crate) fn template(env: &Env, subcommand: &str) -> anyhow::Result<PathBuf> {
    if !env.is_template {
        return Err(UsageError::new(format!(
            "`ssh-deploy {subcommand}` needs a template env, and env `{}` has no `instances = true`",
            env.name
        )));
    }
    let (base, _) = env
        .remote_path
        .rsplit_once('/')
        .context("a template's `remote_path` ends in `/{instance}` (checked when loading)")?;
    Ok(PathBuf::from(if base.is_empty() { "/" } else { base }))
}

fn records_dir(base: &Path) -> PathBuf {
    base.join(".slipway/instances")
}

fn env_lock(base: &Path) -> String {
    base.join(".slipway/instances.lock")
        .to_string_lossy()
        .into_owned()
}

/// The instance records on a host, by name; unreadable ones are skipped
/// with a warning (a record is host data).
fn read_records(sftp: &ssh2::Sftp, base: &Path) -> anyhow::Result<BTreeMap<String, Instance>> {
    let dir = records_dir(base);
    let mut records = BTreeMap::new();
    let entries = match sftp.readdir(&dir) {
        Ok(entries) => entries,
        Err(_) if sftp.stat(&dir).is_err() => return Ok(records),
        Err(error) => {
            return Err(anyhow::Error::from(error)
                .context(format!("cannot list `{}` on the host", dir.display())));
        }
    };
    for (path, _) in entries {
        let Some(stem) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let read = (|| -> anyhow::Result<Instance> {
            let file = sftp.open(&path)?;
            let mut text = Vec::new();
            file.take(1 << 20).read_to_end(&mut text)?;
            let record: Instance = serde_json::from_slice(&text)?;
            anyhow::ensure!(
                record.name == stem && parse_name(&record.name).is_ok(),
                "its name `{}` is not its file's",
                record.name
            );
            Ok(record)
        })();
        match read {
            Ok(mut record) => {
                // Where its releases are is ours to say, not the record's.
                record.remote_path = base.join(&record.name).to_string_lossy().into_owned();
                records.insert(record.name.clone(), record);
            }
            Err(error) => tracing::warn!(
                file = %path.display(),
                error = %deploy::chain(&error),
                "skipping an instance record that cannot be read"
            ),
        }
    }
    Ok(records)
}

/// Writes `record` atomically (a temporary name, synced, renamed).
fn write_record(
    session: &ssh2::Session,
    base: &Path,
    record: &Instance,
    io: Duration,
) -> anyhow::Result<()> {
    let path = records_dir(base).join(format!("{}.json", record.name));
    let mut json = serde_json::to_vec_pretty(record).context("cannot encode a record")?;
    json.push(b'\n');
    let line = plan::write_file_line(&path.to_string_lossy(), 0o644);
    let (status, output) = ssh::run_captured(session, &line, &json, io)?;
    anyhow::ensure!(
        status == 0,
        "cannot write `{}` on the host: {}",
        path.display(),
        remote::reason(&output)
    );
    Ok(())
}

/// Why a deploy that would create an instance is refused, or `None`.
fn over_limit(selected: &Selected, records: &BTreeMap<String, Instance>) -> Option<String> {
    let max = selected.max_instances?;
    let is_active = |r: &Instance| r.state == InstanceState::Active;
    if records.get(&selected.name).is_some_and(is_active) {
        return None;
    }
    let active: Vec<&str> = records
        .values()
        .filter(|r| is_active(r))
        .map(|r| r.name.as_str())
        .collect();
    (active.len() >= usize::try_from(max).unwrap_or(usize::MAX)).then(|| {
        format!(
            "instance `{}` would be instance {} of at most {max} (`max_instances`); the host has {}: {}; destroy one first (`ssh-deploy destroy --instance NAME`, or `ssh-deploy gc --idle 7d`)",
            selected.name,
            active.len() + 1,
            active.len(),
            active
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The preflight's check of an instance: refuses (touching nothing) a
/// deploy that would create an instance past `max_instances`.
pub(crate) fn preflight(session: &ssh2::Session, selected: &Selected) -> anyhow::Result<()> {
    if selected.max_instances.is_none() {
        return Ok(());
    }
    let sftp = session.sftp().context("cannot start SFTP")?;
    let records = read_records(&sftp, &selected.base)?;
    match over_limit(selected, &records) {
        Some(why) => anyhow::bail!(why),
        None => Ok(()),
    }
}

/// Makes the instance active on the host before its deploy, under the
/// env's instance lock: counts it against `max_instances` and chooses its
/// port (kept from its record when it has one). Returns the port. Without
/// `is_new_allowed` (a rollback), an instance that is not active is refused.
pub(crate) fn claim(
    session: &ssh2::Session,
    sftp: &ssh2::Sftp,
    selected: &Selected,
    is_new_allowed: bool,
    io: Duration,
    wait: Duration,
) -> anyhow::Result<Option<u16>> {
    if !is_new_allowed {
        // A rollback redeploys what an instance ran: it never creates one.
        let records = read_records(sftp, &selected.base)?;
        anyhow::ensure!(
            records
                .get(&selected.name)
                .is_some_and(|r| r.state == InstanceState::Active),
            "instance `{}` does not exist on the host (never deployed, or destroyed), so there is nothing to roll back",
            selected.name
        );
    }
    for dir in [
        selected.base.clone(),
        selected.base.join(".slipway"),
        records_dir(&selected.base),
    ] {
        if sftp.stat(&dir).is_err()
            && let Err(error) = sftp.mkdir(&dir, 0o755)
        {
            sftp.stat(&dir).map_err(|_| {
                anyhow::Error::from(error).context(format!(
                    "cannot create `{}` on the host (does its parent exist, belong to the deploy user, and have room?)",
                    dir.display()
                ))
            })?;
        }
    }
    let lock = match lock::acquire(session, None, &env_lock(&selected.base), wait, io, || {})? {
        Acquired::Held(lock) => lock,
        Acquired::Busy => anyhow::bail!(
            "the instances of this env are locked by another deploy or destroy (`{}`) past the lock wait",
            env_lock(&selected.base)
        ),
    };
    let result = (|| {
        let records = read_records(sftp, &selected.base)?;
        if let Some(why) = over_limit(selected, &records) {
            anyhow::bail!(why);
        }
        let own = records
            .get(&selected.name)
            .filter(|r| r.state == InstanceState::Active);
        let kept = own.and_then(|r| r.port).filter(|port| {
            selected
                .port_range
                .is_some_and(|range| range.contains(*port))
        });
        let port = match (kept, selected.port_range) {
            (Some(port), _) => Some(port),
            (None, None) => None,
            (None, Some(range)) => Some(choose_port(&selected.name, range, &records)?),
        };
        if own.is_none_or(|r| r.port != port) {
            let record = Instance {
                name: selected.name.clone(),
                state: InstanceState::Active,
                remote_path: selected.remote_path(),
                port,
                created: own
                    .map_or_else(|| remote::timestamp(remote::now()), |r| r.created.clone()),
                last_deploy: None,
                release: None,
                result: None,
                images: BTreeMap::new(),
                destroyed: None,
                destroyed_by: None,
            };
            write_record(session, &selected.base, &record, io)?;
        }
        Ok(port)
    })();
    let released = lock.release(session);
    let port = result?;
    released?;
    Ok(port)
}

/// A port of `range` no other active instance holds: the one the name
/// hashes to, else the next free one, so an instance usually gets the
/// same port on every host.
fn choose_port(
    name: &str,
    range: PortRange,
    records: &BTreeMap<String, Instance>,
) -> anyhow::Result<u16> {
    let taken: std::collections::BTreeSet<u16> = records
        .values()
        .filter(|r| r.state == InstanceState::Active && r.name != name)
        .filter_map(|r| r.port)
        .collect();
    // FNV-1a: stable across versions and machines, unlike std's hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let len = range.len();
    let start = u32::try_from(hash % u64::from(len)).unwrap_or(0);
    (0..len)
        .map(|i| (start + i) % len)
        .filter_map(|offset| u16::try_from(u32::from(range.first) + offset).ok())
        .find(|port| !taken.contains(port))
        .with_context(|| {
            format!(
                "no port of `port_range` {range} is free for instance `{name}`: {} instances hold them all; destroy one first",
                taken.len()
            )
        })
}

/// What the command of an instance gets besides the env's: its port.
pub(crate) fn port_vars(port: Option<u16>) -> Vec<(String, String)> {
    port.map(|port| ("SLIPWAY_PORT".to_owned(), port.to_string()))
        .into_iter()
        .collect()
}

/// The ready target of an instance on a host, `{port}` filled in.
pub(crate) fn ready_target(
    selected: &Selected,
    port: Option<u16>,
) -> anyhow::Result<Option<plan::ReadyTarget>> {
    selected
        .ready_url
        .as_ref()
        .map(|url| {
            let port = port.map(|p| p.to_string()).unwrap_or_default();
            plan::ready_target(&url.replace(PORT_PLACEHOLDER, &port))
        })
        .transpose()
}

/// What `destroy` and `gc` need besides the instance.
#[derive(Debug, Clone)]
pub(crate) struct Teardown {
    /// The env.
    pub(crate) env: String,
    /// The env's `teardown` command.
    pub(crate) command: Option<String>,
    /// The env's `env` table, `{instance}` not yet filled in.
    pub(crate) env_vars: BTreeMap<String, String>,
    /// How long the teardown command may run.
    pub(crate) timeout: Duration,
    /// How long to wait for the instance's lock.
    pub(crate) lock_wait: Duration,
    /// Show what would be done, and do nothing.
    pub(crate) is_dry_run: bool,
    /// How long one SSH step may wait for the host (`--connect-timeout`).
    pub(crate) io: Duration,
}

/// `destroy` on one host.
pub(crate) fn destroy(
    host: &Host,
    connection: &Connection,
    identity: &Identity,
    selected: &Selected,
    teardown: &Teardown,
    progress: &Progress,
) -> HostReport {
    let mut report = HostReport::new(&host.to_string());
    let result = (|| {
        let session = deploy::open(host, connection)?;
        let sftp = session.sftp().context("cannot start SFTP")?;
        destroy_on(
            &session,
            &sftp,
            &report.host,
            identity,
            selected,
            teardown,
            "destroy",
            progress,
        )
    })();
    fill(&mut report, result);
    report
}

fn fill(report: &mut HostReport, result: anyhow::Result<(Outcome, Vec<Instance>)>) {
    match result {
        Ok((outcome, instances)) => {
            report.outcome = outcome;
            report.instances = instances;
        }
        Err(error) => {
            report.outcome = if error.downcast_ref::<Failed>().is_some() {
                Outcome::Failed
            } else {
                Outcome::Error
            };
            report.error = Some(deploy::chain(&error));
        }
    }
}

/// Destroys `selected` on a connected host: under its lock, runs the env's
/// teardown command in its directory, removes the directory, and records
/// the destruction. A missing instance is `absent`; a failed teardown keeps
/// the directory (`failed`).
#[allow(
    clippy::too_many_arguments,
    reason = "one host's destroy: the connection, who, what and how"
)]
fn destroy_on(
    session: &ssh2::Session,
    sftp: &ssh2::Sftp,
    host: &str,
    identity: &Identity,
    selected: &Selected,
    teardown: &Teardown,
    why: &str,
    progress: &Progress,
) -> anyhow::Result<(Outcome, Vec<Instance>)> {
    let io = teardown.io;
    let dir = selected.remote_path();
    let records = read_records(sftp, &selected.base)?;
    let own = records.get(&selected.name).cloned();
    let is_there = sftp.stat(Path::new(&dir)).is_ok();
    if !is_there
        && own
            .as_ref()
            .is_none_or(|r| r.state == InstanceState::Destroyed)
    {
        progress.println(&format!(
            "{host}: instance `{}` does not exist (no `{dir}`); nothing to destroy",
            selected.name
        ));
        return Ok((Outcome::Absent, own.into_iter().collect()));
    }
    // No record, but a directory where the instance would be: only one
    // Slipway deployed to (its releases are there) is an instance whose
    // record was lost; anything else (`/srv/www` for `--instance www`, a
    // mistyped number) is not ours to tear down or remove.
    if own.is_none() {
        let releases = Layout::new(&dir).releases_dir();
        if sftp.stat(&releases).is_err() {
            progress.println(&format!(
                "{host}: `{dir}` is not an instance Slipway deployed (no record, no `{}`): left alone, nothing destroyed",
                releases.display()
            ));
            return Ok((Outcome::Absent, Vec::new()));
        }
    }
    let mut record = own.unwrap_or_else(|| Instance {
        name: selected.name.clone(),
        state: InstanceState::Active,
        remote_path: dir.clone(),
        port: None,
        created: String::new(),
        last_deploy: None,
        release: None,
        result: None,
        images: BTreeMap::new(),
        destroyed: None,
        destroyed_by: None,
    });
    if teardown.is_dry_run {
        progress.println(&format!(
            "{host}: would {}remove `{dir}` and record instance `{}` as destroyed",
            match &teardown.command {
                Some(command) if is_there => format!("run `{command}` in `{dir}`, then "),
                _ => String::new(),
            },
            selected.name
        ));
        return Ok((Outcome::Listed, vec![with_newest(sftp, record)]));
    }
    let mut held = None;
    if is_there {
        let layout = Layout::new(&dir);
        remote::prepare(sftp, &layout)?;
        let lock_file = layout.lock_file().to_string_lossy().into_owned();
        held = Some(
            match lock::acquire(session, None, &lock_file, teardown.lock_wait, io, || {})? {
                Acquired::Held(lock) => lock,
                Acquired::Busy => anyhow::bail!(
                    "instance `{}` of env `{}` on `{host}` is locked by a deploy; waited {} (`--lock-wait`)",
                    selected.name,
                    teardown.env,
                    humantime::format_duration(teardown.lock_wait)
                ),
            },
        );
        if let Some(command) = &teardown.command {
            let mut vars = vec![
                ("SLIPWAY_ENV".to_owned(), teardown.env.clone()),
                ("SLIPWAY_INSTANCE".to_owned(), selected.name.clone()),
                (
                    "COMPOSE_PROJECT_NAME".to_owned(),
                    compose_project(&teardown.env, &selected.name),
                ),
            ];
            vars.extend(port_vars(record.port));
            for (name, value) in &teardown.env_vars {
                vars.retain(|(n, _)| n != name);
                vars.push((
                    name.clone(),
                    value.replace(INSTANCE_PLACEHOLDER, &selected.name),
                ));
            }
            let assignments: String = vars
                .iter()
                .map(|(n, v)| format!("{} ", shell_quote(&format!("{n}={v}"))))
                .collect();
            // Bounded on the host too: a teardown that keeps printing would
            // never trip the read timeout, and one left running after we
            // gave up would outlive the instance's lock.
            let secs = teardown.timeout.as_secs().max(1);
            let line = format!(
                "cd {} && exec env {assignments}timeout -k 10 {secs} sh -c {}",
                shell_quote(&dir),
                shell_quote(command)
            );
            progress.println(&format!("{host}: running `{command}` in `{dir}`"));
            let (status, output) = ssh::run_captured(
                session,
                &line,
                b"",
                teardown.timeout + Duration::from_secs(15),
            )
            .with_context(|| format!("cannot run the teardown command `{command}`"))?;
            for text in output.lines() {
                progress.println(&format!("{host} | {text}"));
            }
            if status != 0 {
                if let Some(lock) = held.take() {
                    lock.release(session)?;
                }
                let what = if status == 124 || status == 137 {
                    format!("did not finish within {secs} s (`--timeout`)")
                } else {
                    format!("exited with status {status}")
                };
                anyhow::bail!(Failed(format!(
                    "the teardown command `{command}` {what}; `{dir}` is kept: fix it and run `ssh-deploy destroy` again"
                )));
            }
        }
        record = with_newest(sftp, record);
        let (status, output) = ssh::run_captured(
            session,
            &format!("rm -rf -- {}", shell_quote(&dir)),
            b"",
            io.max(Duration::from_secs(60)),
        )?;
        anyhow::ensure!(
            status == 0,
            "cannot remove `{dir}` on the host: {}",
            remote::reason(&output)
        );
    }
    record.state = InstanceState::Destroyed;
    record.destroyed = Some(remote::timestamp(remote::now()));
    record.destroyed_by = Some(format!("{} ({why})", identity.who));
    // The record is the env's: written under the env's instance lock.
    let env_lock = match lock::acquire(
        session,
        None,
        &env_lock(&selected.base),
        teardown.lock_wait,
        io,
        || {},
    )? {
        Acquired::Held(lock) => lock,
        Acquired::Busy => anyhow::bail!(
            "`{dir}` is removed, but the instances of this env stayed locked past the lock wait, so its destruction is not recorded; run `ssh-deploy destroy` again"
        ),
    };
    let written = write_record(session, &selected.base, &record, io);
    env_lock.release(session)?;
    written?;
    if let Some(lock) = held {
        // Its file went with the directory; the holder just ends.
        let _ = lock.release(session);
    }
    progress.println(&format!(
        "{host}: instance `{}` destroyed ({why})",
        selected.name
    ));
    Ok((Outcome::Destroyed, vec![record]))
}

/// A teardown command that failed: the host's outcome is `failed`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Failed(String);

/// `record` with what its newest release says.
fn with_newest(sftp: &ssh2::Sftp, mut record: Instance) -> Instance {
    let layout = Layout::new(&record.remote_path);
    let newest = remote::releases(sftp, &layout)
        .ok()
        .and_then(|mut releases| releases.pop());
    if let Some(newest) = newest {
        record.last_deploy = Some(newest.time);
        record.release = Some(newest.id);
        record.result = Some(newest.result);
        record.images = newest.images;
    }
    record
}

/// `instances` on one host: every instance record, with its newest release.
pub(crate) fn list(host: &Host, connection: &Connection, base: &Path) -> HostReport {
    let mut report = HostReport::new(&host.to_string());
    let result = (|| {
        let session = deploy::open(host, connection)?;
        let sftp = session.sftp().context("cannot start SFTP")?;
        let records = read_records(&sftp, base)?;
        anyhow::Ok((
            Outcome::Listed,
            records
                .into_values()
                .map(|record| match record.state {
                    InstanceState::Active => with_newest(&sftp, record),
                    InstanceState::Destroyed => record,
                })
                .collect(),
        ))
    })();
    fill(&mut report, result);
    report
}

/// `gc` on one host: destroys every active instance whose newest release
/// (or, with none, its creation) is older than `idle`.
pub(crate) fn gc(
    host: &Host,
    connection: &Connection,
    identity: &Identity,
    template: &Selected,
    idle: Duration,
    teardown: &Teardown,
    progress: &Progress,
) -> HostReport {
    let mut report = HostReport::new(&host.to_string());
    let result = (|| {
        let session = deploy::open(host, connection)?;
        let sftp = session.sftp().context("cannot start SFTP")?;
        let now = remote::now();
        let idle_secs = i64::try_from(idle.as_secs()).unwrap_or(i64::MAX);
        let mut done = Vec::new();
        let mut failures = Vec::new();
        for record in read_records(&sftp, &template.base)?.into_values() {
            if record.state != InstanceState::Active {
                continue;
            }
            let record = with_newest(&sftp, record);
            let since = record.last_deploy.as_deref().unwrap_or(&record.created);
            let Some(since_secs) = seconds(since) else {
                tracing::warn!(
                    instance = record.name,
                    time = since,
                    "skipping an instance whose last deploy time cannot be read"
                );
                continue;
            };
            if now.saturating_sub(since_secs) < idle_secs {
                continue;
            }
            let selected = Selected {
                name: record.name.clone(),
                ..template.clone()
            };
            let why = format!(
                "gc: idle since {since}, longer than {}",
                humantime::format_duration(idle)
            );
            match destroy_on(
                &session,
                &sftp,
                &report.host,
                identity,
                &selected,
                teardown,
                &why,
                progress,
            ) {
                Ok((_, instances)) => done.extend(instances),
                Err(error) => failures.push((
                    format!("`{}`: {}", record.name, deploy::chain(&error)),
                    error.downcast_ref::<Failed>().is_some(),
                )),
            }
        }
        if !failures.is_empty() {
            // Teardowns that said no are the command's answer (exit 1, as
            // `destroy`'s); anything else is an operation that failed.
            let all_refused = failures.iter().all(|(_, refused)| *refused);
            let failures: Vec<String> = failures.into_iter().map(|(text, _)| text).collect();
            let text = format!(
                "cannot destroy {}; destroyed: {}",
                failures.join("; "),
                if done.is_empty() {
                    "none".to_owned()
                } else {
                    done.iter()
                        .map(|i| format!("`{}`", i.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            if all_refused {
                anyhow::bail!(Failed(text));
            }
            anyhow::bail!(text);
        }
        let outcome = if teardown.is_dry_run || done.is_empty() {
            Outcome::Listed
        } else {
            Outcome::Destroyed
        };
        anyhow::Ok((outcome, done))
    })();
    fill(&mut report, result);
    report
}

/// Seconds since the epoch of an RFC 3339 time.
fn seconds(time: &str) -> Option<i64> {
    let at = humantime::parse_rfc3339_weak(time).ok()?;
    let since = at.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_secs()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_name(text: &str, is_valid: bool) {
        assert_eq!(parse_name(text).is_ok(), is_valid, "`{text}`");
    }

    #[test]
    fn instance_names_are_dns_labels() {
        check_name("pr-123", true);
        check_name("a", true);
        check_name(&"a".repeat(63), true);
        check_name(&"a".repeat(64), false);
        check_name("", false);
        check_name("PR-123", false);
        check_name("pr_123", false);
        check_name("-pr", false);
        check_name("pr-", false);
        check_name("pr.1", false);
        check_name("../x", false);
    }

    #[test]
    fn a_port_is_the_names_hash_or_the_next_free_one() {
        let range = PortRange {
            first: 20000,
            last: 20002,
        };
        let none = BTreeMap::new();
        let first = choose_port("pr-1", range, &none).unwrap();
        assert!(range.contains(first));
        let holder = |name: &str, port: u16| Instance {
            name: name.to_owned(),
            state: InstanceState::Active,
            remote_path: String::new(),
            port: Some(port),
            created: String::new(),
            last_deploy: None,
            release: None,
            result: None,
            images: BTreeMap::new(),
            destroyed: None,
            destroyed_by: None,
        };
        let taken = BTreeMap::from([("x".to_owned(), holder("x", first))]);
        let second = choose_port("pr-1", range, &taken).unwrap();
        assert_ne!(second, first);
        let full: BTreeMap<_, _> = (0..3)
            .map(|i| (format!("x{i}"), holder(&format!("x{i}"), 20000 + i)))
            .collect();
        assert_eq!(
            choose_port("pr-1", range, &full).unwrap_err().to_string(),
            "no port of `port_range` 20000-20002 is free for instance `pr-1`: 3 instances hold them all; destroy one first"
        );
    }

    #[test]
    fn compose_projects_are_lowercase_env_and_instance() {
        assert_eq!(compose_project("preview", "pr-1"), "preview-pr-1");
        assert_eq!(compose_project("Pre.view", "pr-1"), "pre-view-pr-1");
    }
}
