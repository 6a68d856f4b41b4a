//! One host's deploy, rollback, release list or lock action, every step on
//! one SSH connection: connect, lock, upload, run, wait for readiness,
//! record, unlock; a failed readiness redeploys the previous good release.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use slipway_config::Host;
use slipway_core::image_ref::ImageRef;
use slipway_core::progress::{Progress, Task};

use crate::cancel::{self, Cancelled};
use crate::images::Given;
use crate::lock::{self, Acquired};
use crate::plan::{self, BundleFile, ReadyTarget};
use crate::remote::{self, Layout, LockHolder, Release, ReleaseResult};
use crate::ssh::{self, Auth, Exit, Trust};
use crate::{HostReport, Outcome};

/// How to reach hosts.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) auth: Auth,
    pub(crate) trust: Trust,
    pub(crate) default_user: Option<String>,
    pub(crate) timeout: Duration,
    /// The ssh config read for the hosts (`--ssh-config`, `~/.ssh/config`).
    pub(crate) ssh_config: Option<std::sync::Arc<crate::ssh_config::SshConfig>>,
}

/// Who deploys, for the lock and the records.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) holder: String,
    pub(crate) machine: String,
    /// The CI job that deploys, if any (its URL where known).
    pub(crate) ci_job: Option<String>,
    pub(crate) who: String,
    /// The commit ssh-deploy runs from, recorded as `deployer_sha`.
    pub(crate) git_sha: Option<String>,
}

/// What to deploy where: the same for every host.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) env: String,
    pub(crate) remote_path: String,
    pub(crate) command: String,
    pub(crate) bundle: Vec<BundleFile>,
    pub(crate) images: Images,
    pub(crate) ready: Option<ReadyTarget>,
    pub(crate) ready_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) lock_wait: Duration,
    pub(crate) keep_releases: u32,
    pub(crate) is_rollback_allowed: bool,
    /// The `deploy.env` variables the env's `images` table defines: the
    /// only names a recorded release may bring back.
    pub(crate) image_vars: BTreeSet<String>,
    /// The env's `env` table, added to the command's environment.
    pub(crate) env_vars: Vec<(String, String)>,
    /// `--env-var` names and their values, sent on the command's stdin.
    pub(crate) secret_vars: Vec<(String, slipway_core::secret::SecretString)>,
    /// The instance of a template env this run deploys.
    pub(crate) instance: Option<crate::instance::Selected>,
}

/// Which image references a run deploys.
#[derive(Debug, Clone)]
pub(crate) enum Images {
    /// These, from `--image` and `--images-from`.
    Given(Given),
    /// Those of a recorded release: `Some(N)`, or the previous good one.
    Release(Option<u64>),
    /// Those of the newest good release before release N: the fleet's
    /// rollback of a host this run deployed as release N.
    Before(u64),
}

/// Deploys `job` to `host`, on `session` (the preflight's) if it still
/// answers, else on a new connection; every failure ends up in the report.
pub(crate) fn deploy(
    host: &Host,
    connection: &Connection,
    identity: &Identity,
    job: &Job,
    progress: &Progress,
    session: Option<(ssh2::Session, ssh::Warms)>,
) -> HostReport {
    let name = host.to_string();
    let task = progress.task(&name, "connecting");
    let mut report = HostReport::new(&name);
    match deploy_locked(
        host,
        connection,
        identity,
        job,
        progress,
        &task,
        &mut report,
        session,
    ) {
        Ok(()) => match report.outcome {
            Outcome::Deployed => task.finish(&format!(
                "release {} deployed",
                report.release.unwrap_or_default()
            )),
            _ => task.fail(report.error.as_deref().unwrap_or("failed")),
        },
        Err(error) if cancelled_in(&error).is_some() => {
            let message = chain(&error);
            task.fail(&message);
            report.outcome = Outcome::Cancelled;
            report.error = Some(message);
        }
        Err(error) => {
            let message = chain(&error);
            task.fail(&message);
            report.outcome = Outcome::Error;
            report.error = Some(message);
        }
    }
    report
}

#[allow(clippy::too_many_arguments, reason = "one host's whole context")]
fn deploy_locked(
    host: &Host,
    connection: &Connection,
    identity: &Identity,
    job: &Job,
    progress: &Progress,
    task: &Task,
    report: &mut HostReport,
    session: Option<(ssh2::Session, ssh::Warms)>,
) -> anyhow::Result<()> {
    let io = connection.timeout;
    // A preflight connection idle through earlier batches may have died.
    let (session, warms) = match session.filter(|(session, _)| ssh::answers(session)) {
        Some(session) => session,
        None => {
            let session = open(host, connection)?;
            let warms = ssh::Warms::start(&session);
            (session, warms)
        }
    };
    let sftp = timed(&host.to_string(), "sftp", || session.sftp()).context("cannot start SFTP")?;
    // An instance is made active (and given its port) on the host first.
    let instance_job;
    let job = match &job.instance {
        Some(selected) => {
            let is_new_allowed = matches!(job.images, Images::Given(_));
            let port = crate::instance::claim(
                &session,
                &sftp,
                selected,
                is_new_allowed,
                io,
                job.lock_wait,
            )?;
            let mut env_vars = job.env_vars.clone();
            env_vars.extend(crate::instance::port_vars(port));
            instance_job = Job {
                env_vars,
                ready: crate::instance::ready_target(selected, port)?,
                ..job.clone()
            };
            &instance_job
        }
        None => job,
    };
    let mut layout = Layout::new(&job.remote_path);
    timed(&report.host, "prepare", || remote::prepare(&sftp, &layout))?;
    cancel::check()?;
    let lock_file = layout.lock_file().to_string_lossy().into_owned();
    let who = || {
        remote::read_holder(&sftp, &layout).map_or_else(
            || "held by another deploy".to_owned(),
            |holder| remote::describe(&holder),
        )
    };
    // The lock holder's login shell, started with the connection (see
    // `ssh::Warm`), which ran the preflight.
    let ssh::Warms { lock: warm_lock } = warms;
    let lock = match timed(&report.host, "lock", || {
        lock::acquire(&session, warm_lock, &lock_file, job.lock_wait, io, || {
            task.message(&format!("waiting for the lock, {}", who()));
        })
    })? {
        Acquired::Held(lock) => lock,
        Acquired::Busy => anyhow::bail!(
            "env `{}` on `{}` is locked by another deploy: {}; waited {} (`--lock-wait`); the lock frees itself when that deploy ends or its connection dies (`ssh-deploy lock status --env {} --host {}` shows it)",
            job.env,
            report.host,
            who(),
            humantime::format_duration(Duration::from_secs(job.lock_wait.as_secs())),
            job.env,
            report.host
        ),
    };
    layout.holder_pid = Some(lock.pid);
    let layout = layout;
    let result = (|| -> anyhow::Result<()> {
        let records = timed(&report.host, "records", || remote::releases(&sftp, &layout))?;
        let id = match records.last() {
            Some(last) => remote::next_release(last.id)?,
            None => 1,
        };
        let since = remote::now();
        let me = LockHolder {
            holder: identity.holder.clone(),
            machine: identity.machine.clone(),
            pid: std::process::id(),
            since,
            deadline: remote::after(
                since,
                job.timeout + job.ready_timeout * 2 + Duration::from_secs(600),
            ),
            release: id,
            ci_job: identity.ci_job.clone(),
            host_pid: Some(lock.pid),
            is_alive: None,
        };
        // Written, and a killed deploy's leftovers removed, by the first
        // command line (before anything else it does); one line of JSON,
        // a word of that line.
        let me = serde_json::to_string(&me)?;
        let target = match job.images {
            Images::Given(_) => None,
            Images::Release(to) => Some(rollback_target(&records, to)?),
            Images::Before(release) => Some(
                records
                    .iter()
                    .rev()
                    .find(|r| r.id < release && r.result == ReleaseResult::Deployed)
                    .with_context(|| {
                        format!("no good release before release {release} is recorded on the host")
                    })?,
            ),
        };
        if let (Images::Release(to), Some(target)) = (&job.images, target) {
            progress.println(&format!(
                "{}: rolling back to {}",
                report.host,
                rollback_reason(&records, target, *to)
            ));
        }
        let (images, files) = match (&job.images, target) {
            (_, Some(target)) => {
                check_recorded_images(target, &job.image_vars)?;
                report.rolled_back_to = Some(target.id);
                (
                    target.images.clone(),
                    vec![plan::deploy_env_file(&target.images)?],
                )
            }
            (Images::Given(given), None) => {
                let mut files = job.bundle.clone();
                files.push(plan::deploy_env_file(&given.vars)?);
                (given.vars.clone(), files)
            }
            (_, None) => anyhow::bail!("a rollback without a release to redeploy (a bug)"),
        };
        let rollback_of = match job.images {
            Images::Given(_) => None,
            Images::Release(_) | Images::Before(_) => records.last().map(|r| r.id),
        };
        let step = Step {
            session: &session,
            sftp: &sftp,
            layout: &layout,
            identity,
            job,
            progress,
            task,
            host: &report.host,
            io,
            lock: &lock,
        };
        let note = match (&job.images, target) {
            (_, Some(target)) => Note::of_rollback(target, rollback_of),
            (Images::Given(given), None) => Note {
                tags: given.tags.clone(),
                revision: given.revision.clone(),
                rollback_of: None,
                rolled_back_to: None,
            },
            (_, None) => Note::default(),
        };
        let first = step.run(id, &images, &files, &note, Some(&me))?;
        report.release = Some(id);
        report.uploaded = first.uploaded.clone();
        report.unchanged = first.unchanged.clone();
        report.exit_status = first.exit_status;
        report.ready = first.ready;
        report.ready_ms = first.ready_ms;
        if let Some(signal) = first.cancelled {
            report.outcome = Outcome::Cancelled;
            report.error = first.error;
            return Err(anyhow::Error::from(Cancelled(signal))
                .context(report.error.clone().unwrap_or_default()));
        }
        if first.is_good {
            report.outcome = Outcome::Deployed;
            return Ok(());
        }
        report.outcome = Outcome::Failed;
        report.error = first.error.clone();
        // Only a failed readiness rolls back: a failed command may have
        // stopped before switching anything, and the script knows best.
        let previous = records
            .iter()
            .rev()
            .find(|r| r.result == ReleaseResult::Deployed);
        if first.ready == Some(false)
            && job.is_rollback_allowed
            && let Some(previous) = previous
        {
            task.message(&format!(
                "not ready; rolling back to release {}",
                previous.id
            ));
            check_recorded_images(previous, &job.image_vars)?;
            let files = vec![plan::deploy_env_file(&previous.images)?];
            let back_id = remote::next_release(id)?;
            let back = step.run(
                back_id,
                &previous.images,
                &files,
                &Note::of_rollback(previous, Some(id)),
                None,
            )?;
            report.rolled_back_to = Some(previous.id);
            report.outcome = if back.is_good {
                Outcome::RolledBack
            } else {
                Outcome::Failed
            };
            report.error = Some(match back.is_good {
                true => format!(
                    "{}; rolled back to release {} (recorded as release {})",
                    first.error.unwrap_or_default(),
                    previous.id,
                    back_id
                ),
                false => format!(
                    "{}; the rollback to release {} failed too: {}",
                    first.error.unwrap_or_default(),
                    previous.id,
                    back.error.unwrap_or_default()
                ),
            });
        }
        Ok(())
    })();
    let is_connected = !lock.is_lost()
        && result.as_ref().err().is_none_or(|error| {
            // libssh2 reports a connection that died under an SFTP step in
            // many ways (`channel read` with whichever code the transport
            // gave); a step that failed for any reason is followed by one
            // more round trip, which only a live connection answers.
            !ssh::is_connection_lost(error) && ssh::answers(&session)
        });
    if !is_connected {
        // Nothing more is tried on a dead connection; the host frees the
        // lock when the session ends, and its watchdog stops the command.
        drop(lock);
        let lost = format!(
            "the connection to `{}` was lost or stopped answering; the host frees the lock by itself when this deploy's session ends (at the latest {} after the last heartbeat) and stops what the deploy started there; the next deploy removes its temporary files",
            report.host,
            humantime::format_duration(lock::heartbeat_timeout(io))
        );
        return Err(match result {
            Err(error) => error.context(lost),
            Ok(()) => anyhow::anyhow!(lost),
        });
    }
    // A failed step may have left a file it was writing (a full disk); a
    // deploy that went through left nothing (each step cleans up after
    // itself) and saves the remote command.
    if result.is_err() || report.outcome != Outcome::Deployed {
        remote::remove_leftovers(&session, &layout, io);
    }
    timed(&report.host, "clear holder", || {
        remote::clear_holder(&sftp, &layout)
    });
    let released = timed(&report.host, "unlock", || lock.release(&session));
    match result {
        Err(error) => Err(error),
        Ok(()) => released,
    }
}

/// Runs one step of a host's deploy and logs how long it took (with
/// `RUST_LOG=ssh_deploy=debug`; `cargo xtask bench` reads it).
fn timed<T>(host: &str, step: &str, run: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = run();
    tracing::debug!(host, step, ms = millis(started.elapsed()), "step");
    result
}

/// Milliseconds, with a fraction.
fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// How long stopping a remote command may take: its 10 s grace and more.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// The signal that cancelled what `error` is about, if any.
pub(crate) fn cancelled_in(error: &anyhow::Error) -> Option<i32> {
    error.chain().find_map(|cause| {
        cause.downcast_ref::<Cancelled>().map(|c| c.0).or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|e| e.get_ref())
                .and_then(|inner| inner.downcast_ref::<Cancelled>())
                .map(|c| c.0)
        })
    })
}

/// Connects to `host`.
pub(crate) fn open(host: &Host, connection: &Connection) -> anyhow::Result<ssh2::Session> {
    Ok(ssh::connect(
        host,
        connection.default_user.as_deref(),
        &connection.auth,
        &connection.trust,
        connection.timeout,
        connection.ssh_config.as_deref(),
    )?)
}

/// Refuses a recorded release whose images could not have been written by a
/// deploy of this env: a record is host data, and its `images` become
/// `deploy.env` and the remote command's environment. Only the env's own
/// variables, each pinned by digest, may come back (a `PATH` or a
/// `:latest` reference may not).
pub(crate) fn check_recorded_images(
    release: &Release,
    image_vars: &BTreeSet<String>,
) -> anyhow::Result<()> {
    for (var, reference) in &release.images {
        let shown = slipway_core::output::shell_quote(&format!("{var}={reference}"));
        anyhow::ensure!(
            image_vars.contains(var),
            "release {} cannot be redeployed: its record sets {shown}, but `{var}` is not a variable of the env's `images` ({})",
            release.id,
            image_vars
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let is_pinned = reference
            .parse::<ImageRef>()
            .is_ok_and(|parsed| parsed.digest().is_some());
        anyhow::ensure!(
            is_pinned,
            "release {} cannot be redeployed: its record sets {shown}, which is not pinned by digest (`repo@sha256:…`)",
            release.id
        );
    }
    Ok(())
}

/// Why [`rollback_target`] chose the release it chose, in words.
pub(crate) fn rollback_reason(records: &[Release], target: &Release, to: Option<u64>) -> String {
    let revision = target
        .git_sha
        .as_deref()
        .map(|sha| format!(", revision {}", sha.get(..12).unwrap_or(sha)))
        .unwrap_or_default();
    match to {
        Some(_) => format!(
            "release {} ({}{revision}): `--to {}` names it",
            target.id, target.time, target.id
        ),
        None => {
            let current = records
                .iter()
                .rev()
                .find(|r| r.result == ReleaseResult::Deployed)
                .map_or(0, |r| r.id);
            format!(
                "release {} ({}{revision}): the newest good release before the current release {current} whose images differ from it",
                target.id, target.time
            )
        }
    }
}

/// The release a rollback redeploys: `to`, or the newest good release whose
/// images differ from the current (newest good) one.
pub(crate) fn rollback_target(records: &[Release], to: Option<u64>) -> anyhow::Result<&Release> {
    if let Some(to) = to {
        let known: Vec<String> = records.iter().map(|r| r.id.to_string()).collect();
        return records.iter().find(|r| r.id == to).ok_or_else(|| {
            anyhow::anyhow!(
                "release {to} is not recorded on the host; recorded: {}",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )
        });
    }
    let mut good = records
        .iter()
        .rev()
        .filter(|r| r.result == ReleaseResult::Deployed);
    let current = good
        .next()
        .context("no good release is recorded on the host, so there is nothing to roll back to")?;
    good.find(|r| r.images != current.images).with_context(|| {
        format!(
            "no good release before release {} with other images is recorded on the host; name one with `--to N` (see `ssh-deploy releases`)",
            current.id
        )
    })
}

/// The steps of one release on one host.
struct Step<'a> {
    session: &'a ssh2::Session,
    sftp: &'a ssh2::Sftp,
    layout: &'a Layout,
    identity: &'a Identity,
    job: &'a Job,
    progress: &'a Progress,
    task: &'a Task,
    host: &'a str,
    /// How long one SSH call may wait for the host.
    io: Duration,
    /// The lock holder on the host, which the command's watchdog follows
    /// and which writes the records.
    lock: &'a lock::HeldLock,
}

/// What a release's record says besides its images.
#[derive(Debug, Clone, Default)]
struct Note {
    /// The tags the images were given as.
    tags: BTreeMap<String, String>,
    /// The images' revision.
    revision: Option<String>,
    /// The release this one rolls back from.
    rollback_of: Option<u64>,
    /// The release whose images this one redeploys.
    rolled_back_to: Option<u64>,
}

impl Note {
    /// The note of a release that redeploys `target`, rolling back from `from`.
    fn of_rollback(target: &Release, from: Option<u64>) -> Note {
        Note {
            tags: target.tags.clone(),
            revision: target.git_sha.clone(),
            rollback_of: from,
            rolled_back_to: Some(target.id),
        }
    }
}

struct StepResult {
    uploaded: Vec<String>,
    unchanged: Vec<String>,
    exit_status: Option<i32>,
    ready: Option<bool>,
    /// Milliseconds from the start of the readiness wait until ready.
    ready_ms: Option<u64>,
    is_good: bool,
    /// The signal that cancelled it.
    cancelled: Option<i32>,
    error: Option<String>,
}

impl Step<'_> {
    /// Runs release `id`; `holder` (who holds the lock, for `holder.json`)
    /// is written first, on the deploy's first release.
    fn run(
        &self,
        id: u64,
        images: &BTreeMap<String, String>,
        files: &[BundleFile],
        note: &Note,
        holder: Option<&str>,
    ) -> anyhow::Result<StepResult> {
        self.task.message(&format!("release {id}: uploading"));
        let record = |result: ReleaseResult, error: Option<String>, manifest: Option<&[u8]>| {
            let release = Release {
                id,
                env: self.job.env.clone(),
                time: remote::timestamp(remote::now()),
                git_sha: note.revision.clone(),
                images: images.clone(),
                tags: note.tags.clone(),
                deployer_sha: self.identity.git_sha.clone(),
                rolled_back_to: note.rolled_back_to,
                who: self.identity.who.clone(),
                result,
                rollback_of: note.rollback_of,
                detail: error,
            };
            remote::record(
                self.session,
                self.lock,
                self.sftp,
                self.layout,
                &release,
                self.job.keep_releases,
                manifest,
            )
            .with_context(|| format!("release {id} ran but cannot be recorded"))
        };
        let mut upload = timed(self.host, "changes", || {
            remote::changes(self.sftp, self.layout, files)
        })?;
        let mut vars = plan::command_env(&self.job.env, id, images);
        vars.extend(self.job.env_vars.iter().cloned());
        let line = plan::remote_command_line(
            &self.job.remote_path,
            &upload.names(),
            &vars,
            &self.job.command,
        );
        let pid_file = self.layout.command_pid();
        let (reads, secrets) = plan::secret_reads(&self.job.secret_vars);
        let nonce = plan::nonce();
        let (upload_tag, holder_tag) = (plan::upload_tag(&nonce), remote::holder_tag(&nonce));
        // The secrets are read first, then the stream is unpacked, before
        // the supervision writes anything: a full disk fails the upload.
        let full_line = |parent: &str| {
            format!(
                "{}{reads}{}{}",
                holder.map_or_else(String::new, |h| remote::holder_line(self.layout, h, &nonce)),
                plan::unpack_line(
                    &self.job.remote_path,
                    &upload.names(),
                    upload.changed.iter().map(|f| f.size).sum(),
                    &nonce
                ),
                plan::supervised_command_line(
                    &pid_file.to_string_lossy(),
                    &self.layout.run_lock().to_string_lossy(),
                    STOP_TIMEOUT.as_secs(),
                    self.lock.pid,
                    parent,
                    &line,
                )
            )
        };
        // From the lock holder (no login shell of its own) where the host
        // has what that needs and the line is one line (the holder reads
        // lines), else in a login shell of its own.
        let (is_on_holder, line) = match full_line("$1") {
            line if self.lock.runs_lines() && !line.contains('\n') => (true, line),
            _ => (false, full_line("$PPID")),
        };
        tracing::debug!(host = self.host, line, "running the remote command");
        self.task
            .message(&format!("release {id}: running `{}`", self.job.command));
        let members = upload.members();
        // The last lines, for a reason the failure can name (a full disk).
        let mut last_lines: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let stdin = ssh::Stdin {
            prefix: slipway_core::secret::ExposeSecret::expose_secret(&secrets).as_bytes(),
            files: &members,
            mtime: upload.mtime,
        };
        let on_line = |text: &str| {
            // The line's own failures are reported as such, not as output.
            if text != upload_tag && text != holder_tag {
                self.progress.println(&format!("{} | {text}", self.host));
            }
            if last_lines.len() == 5 {
                last_lines.pop_front();
            }
            last_lines.push_back(text.to_owned());
        };
        let started = Instant::now();
        let streamed = match is_on_holder {
            true => self.lock.run_line(
                self.session,
                &self.layout.state().to_string_lossy(),
                &line,
                stdin,
                self.job.timeout,
                true,
                on_line,
            ),
            false => ssh::exec_streamed(
                self.session,
                None,
                &line,
                stdin,
                self.job.timeout,
                self.io,
                true,
                on_line,
            ),
        };
        tracing::debug!(
            host = self.host,
            step = "command line",
            ms = millis(started.elapsed()),
            "step"
        );
        let (exit, sent) = match streamed {
            Ok(done) => done,
            Err(error) => {
                if let Some(signal) = cancelled_in(&error) {
                    let why = format!(
                        "cancelled by {} while uploading; nothing was run",
                        cancel::name(signal)
                    );
                    // The rest of the stream could not be sent in time: the
                    // holder was given up, and the host frees the lock.
                    let why = match self.lock.is_lost() {
                        true => format!(
                            "{why}; the rest of the upload could not be sent in time, so the lock was given up and the release is not recorded"
                        ),
                        false => {
                            record(ReleaseResult::Cancelled, Some(why.clone()), None)?;
                            why
                        }
                    };
                    return Ok(StepResult {
                        uploaded: Vec::new(),
                        unchanged: Vec::new(),
                        exit_status: None,
                        ready: None,
                        ready_ms: None,
                        is_good: false,
                        cancelled: Some(signal),
                        error: Some(why),
                    });
                }
                return Err(error.context("cannot run the remote command"));
            }
        };
        if exit == Exit::Status(remote::HOLDER_FAILED)
            && last_lines.back().is_some_and(|l| *l == holder_tag)
        {
            let output: Vec<&str> = last_lines
                .iter()
                .map(String::as_str)
                .filter(|l| *l != holder_tag)
                .collect();
            anyhow::bail!(
                "cannot record who holds the lock: cannot write `{}` on the host: {}",
                self.layout.holder().display(),
                remote::reason(&output.join("\n"))
            );
        }
        // The stream did not arrive whole (a full disk, cut short): nothing
        // was moved into place and nothing ran, so nothing is recorded.
        if exit == Exit::Status(plan::UPLOAD_FAILED)
            && last_lines.back().is_some_and(|l| *l == upload_tag)
        {
            let output: Vec<&str> = last_lines
                .iter()
                .map(String::as_str)
                .filter(|l| *l != upload_tag)
                .collect();
            let output = output.join("\n");
            // `tar` names the file it could not write.
            let name = upload
                .changed
                .iter()
                .map(|f| f.name.as_str())
                .find(|name| output.contains(&format!("{name}:")))
                .map_or_else(
                    || format!("{} files", upload.changed.len()),
                    |name| format!("`{name}`"),
                );
            anyhow::bail!(
                "cannot upload {name} to `{}/{}`: {}; the files in place were left as they were",
                self.job.remote_path.trim_end_matches('/'),
                plan::STAGING,
                remote::reason(&output)
            );
        }
        // What the line did not move into place (it stopped early, e.g. on
        // a full disk) goes now, before the record needs the room.
        if exit != Exit::Status(0) {
            remote::remove_leftovers(self.session, self.layout, self.io);
        }
        let mut result = StepResult {
            uploaded: upload.names(),
            unchanged: upload.unchanged.clone(),
            exit_status: None,
            ready: None,
            ready_ms: None,
            is_good: false,
            cancelled: None,
            error: None,
        };
        match exit {
            Exit::Status(0) => result.exit_status = Some(0),
            Exit::Status(status) => {
                result.exit_status = Some(status);
                let output = Vec::from(last_lines).join("\n");
                let said = remote::reason(&output);
                // Only a reason the host's own tools gave, not any output.
                let said = if said.starts_with("the host") {
                    String::new()
                } else {
                    format!(": {said}")
                };
                result.error = Some(format!(
                    "the remote command `{}` exited with status {status}{said}",
                    self.job.command
                ));
            }
            Exit::TimedOut | Exit::Cancelled(_) => {
                let what = match exit {
                    Exit::Cancelled(signal) => {
                        result.cancelled = Some(signal);
                        format!(
                            "the remote command `{}` was cancelled by {}",
                            self.job.command,
                            cancel::name(signal)
                        )
                    }
                    _ => format!(
                        "the remote command `{}` ran longer than {} (`--timeout`)",
                        self.job.command,
                        humantime::format_duration(self.job.timeout)
                    ),
                };
                // Stop it from a second channel, before the lock goes.
                let stop = plan::stop_command_line(&pid_file.to_string_lossy());
                match ssh::exec_streamed(
                    self.session,
                    None,
                    &stop,
                    ssh::Stdin::default(),
                    STOP_TIMEOUT,
                    self.io,
                    false,
                    |_| {},
                ) {
                    Ok((Exit::Status(0), _)) => {
                        result.error = Some(format!(
                            "{what} and was stopped (SIGTERM to its process group, then SIGKILL)"
                        ));
                    }
                    Err(error) => {
                        return Err(error.context(format!("{what}, and stopping it failed")));
                    }
                    Ok(_) => {
                        result.error = Some(format!(
                            "{what}, and stopping it failed; the host stops it when this deploy's session ends"
                        ));
                    }
                }
            }
        }
        // The manifest only saves uploads next time: losing it is no failure.
        // After a failed command line the files may not have been moved:
        // then it is left as it was (changed files are seen by their mtime).
        // It is written with the record, in the same remote command.
        let manifest = match exit {
            Exit::Status(0) => remote::manifest(&mut upload, &sent)
                .or_else(|error| {
                    if ssh::is_connection_lost(&error) {
                        return Err(error);
                    }
                    tracing::warn!(host = self.host, error = %chain(&error), "cannot save the bundle manifest; unchanged files will be sent again next time");
                    Ok(None)
                })?,
            _ => None,
        };
        if result.error.is_none()
            && cancel::check().is_ok()
            && let Some(target) = &self.job.ready
        {
            self.task
                .message(&format!("release {id}: waiting for {}", target.shown()));
            let readiness =
                crate::ready::wait(self.session, target, self.job.ready_timeout, self.io);
            result.ready = Some(readiness.is_ready);
            result.ready_ms = readiness
                .ready_after
                .map(|after| u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
            if !readiness.is_ready {
                result.error = Some(format!(
                    "`{}` was not ready within {} ({} attempts; last: {})",
                    target.shown(),
                    humantime::format_duration(self.job.ready_timeout),
                    readiness.attempts,
                    readiness.last_error.unwrap_or_default()
                ));
            }
        }
        if result.error.is_none()
            && let Err(Cancelled(signal)) = cancel::check()
        {
            result.cancelled = Some(signal);
            result.error = Some(format!(
                "cancelled by {} after the remote command ended",
                cancel::name(signal)
            ));
        }
        result.is_good = result.error.is_none();
        let outcome = match (result.is_good, result.cancelled) {
            (_, Some(_)) => ReleaseResult::Cancelled,
            (true, None) => ReleaseResult::Deployed,
            (false, None) => ReleaseResult::Failed,
        };
        timed(self.host, "record", || {
            record(outcome, result.error.clone(), manifest.as_deref())
        })?;
        Ok(result)
    }
}

/// Lists the releases recorded on `host`.
pub(crate) fn list_releases(host: &Host, connection: &Connection, remote_path: &str) -> HostReport {
    let mut report = HostReport::new(&host.to_string());
    let result = (|| {
        let session = open(host, connection)?;
        let sftp = session.sftp().context("cannot start SFTP")?;
        let layout = Layout::new(remote_path);
        if sftp.stat(&layout.root.join(".slipway/releases")).is_err() {
            return Ok(Vec::new());
        }
        remote::releases(&sftp, &layout)
    })();
    match result {
        Ok(records) => {
            report.outcome = Outcome::Listed;
            report.releases = records;
        }
        Err(error) => {
            report.outcome = Outcome::Error;
            report.error = Some(chain(&error));
        }
    }
    report
}

/// What `lock` does on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockCommand {
    /// `lock status`.
    Status,
    /// `lock release`, with `--force` or not.
    Release { is_forced: bool },
}

/// Shows or releases the lock on `host`: who holds it and whether that
/// deploy's session still lives. A live holder is not released unless
/// forced (then its lock holder on the host is stopped, which frees the
/// lock and, through the watchdog, stops its command).
pub(crate) fn lock_action(
    host: &Host,
    connection: &Connection,
    env: &str,
    remote_path: &str,
    command: LockCommand,
) -> HostReport {
    let mut report = HostReport::new(&host.to_string());
    let io = connection.timeout;
    let result = (|| {
        let session = open(host, connection)?;
        let sftp = session.sftp().context("cannot start SFTP")?;
        let layout = Layout::new(remote_path);
        let lock_file = layout.lock_file().to_string_lossy().into_owned();
        let is_held = |line: &str| -> anyhow::Result<bool> {
            let (_, output) = ssh::run_captured(&session, line, b"", io)?;
            match output
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix(plan::LOCK_TAG))
            {
                Some(" held") => Ok(true),
                Some(" free") => Ok(false),
                _ => anyhow::bail!(
                    "cannot tell whether `{lock_file}` is held: {}",
                    remote::reason(&output)
                ),
            }
        };
        let mut is_locked = is_held(&plan::lock_probe_line(&lock_file))?;
        let mut holder = remote::read_holder(&sftp, &layout);
        if let Some(holder) = &mut holder {
            holder.is_alive = Some(is_locked);
        }
        let mut outcome = if is_locked {
            Outcome::Locked
        } else {
            Outcome::Unlocked
        };
        if let LockCommand::Release { is_forced } = command {
            if is_locked && !is_forced {
                anyhow::bail!(
                    "the lock of env `{env}` on `{}` is held by a live deploy: {}; it frees itself when that deploy ends or its connection dies; to stop that deploy now, run `ssh-deploy lock release --force --env {env} --host {}`",
                    report.host,
                    holder
                        .as_ref()
                        .map_or_else(|| "its holder is not recorded".to_owned(), remote::describe),
                    report.host
                );
            }
            if is_locked {
                let pid = holder.as_ref().and_then(|h| h.host_pid).with_context(|| {
                    format!("the lock of env `{env}` on `{}` is held, but who holds it is not recorded, so `--force` has no process to stop", report.host)
                })?;
                is_locked = is_held(&plan::force_release_line(&lock_file, pid))?;
                if is_locked {
                    anyhow::bail!(
                        "the lock of env `{env}` on `{}` is still held after stopping its holder (pid {pid} on the host)",
                        report.host
                    );
                }
            }
            if holder.is_some() {
                remote::clear_holder(&sftp, &layout);
                outcome = Outcome::Released;
            }
        }
        anyhow::Ok((outcome, holder))
    })();
    match result {
        Ok((outcome, holder)) => {
            report.outcome = outcome;
            report.lock = holder;
        }
        Err(error) => {
            report.outcome = Outcome::Error;
            report.error = Some(chain(&error));
        }
    }
    report
}

/// `rollback --dry-run` on `host`: the release a rollback would redeploy,
/// and why, without changing anything.
pub(crate) fn plan_rollback(
    host: &Host,
    connection: &Connection,
    remote_path: &str,
    to: Option<u64>,
    image_vars: &BTreeSet<String>,
    progress: &Progress,
) -> HostReport {
    let mut report = HostReport::new(&host.to_string());
    let result = (|| {
        let session = open(host, connection)?;
        let sftp = session.sftp().context("cannot start SFTP")?;
        let layout = Layout::new(remote_path);
        let records = if sftp.stat(&layout.root.join(".slipway/releases")).is_err() {
            Vec::new()
        } else {
            remote::releases(&sftp, &layout)?
        };
        let target = rollback_target(&records, to)?;
        check_recorded_images(target, image_vars)?;
        anyhow::Ok((target.clone(), rollback_reason(&records, target, to)))
    })();
    match result {
        Ok((target, why)) => {
            progress.println(&format!("{}: would roll back to {why}", report.host));
            report.outcome = Outcome::Listed;
            report.rolled_back_to = Some(target.id);
            report.releases = vec![target];
        }
        Err(error) => {
            report.outcome = Outcome::Error;
            report.error = Some(chain(&error));
        }
    }
    report
}

/// An error and its causes on one line.
pub(crate) fn chain(error: &anyhow::Error) -> String {
    error
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(id: u64, image: &str, result: ReleaseResult) -> Release {
        Release {
            id,
            env: "prod".to_owned(),
            time: String::new(),
            git_sha: None,
            images: BTreeMap::from([("APP_IMAGE".to_owned(), image.to_owned())]),
            tags: BTreeMap::new(),
            deployer_sha: None,
            rolled_back_to: None,
            who: String::new(),
            result,
            rollback_of: None,
            detail: None,
        }
    }

    #[track_caller]
    fn check(records: &[Release], to: Option<u64>, expected: Result<u64, &str>) {
        let actual = rollback_target(records, to)
            .map(|r| r.id)
            .map_err(|e| e.to_string());
        assert_eq!(actual, expected.map_err(str::to_owned));
    }

    #[test]
    fn rollback_targets() {
        use ReleaseResult::{Deployed, Failed};
        let history = [
            release(1, "a", Deployed),
            release(2, "b", Deployed),
            release(3, "c", Failed),
            release(4, "b", Deployed),
        ];
        check(&history, None, Ok(1));
        check(&history, Some(3), Ok(3));
        check(
            &history,
            Some(9),
            Err("release 9 is not recorded on the host; recorded: 1, 2, 3, 4"),
        );
        check(
            &history[..1],
            None,
            Err(
                "no good release before release 1 with other images is recorded on the host; name one with `--to N` (see `ssh-deploy releases`)",
            ),
        );
        check(
            &[],
            None,
            Err("no good release is recorded on the host, so there is nothing to roll back to"),
        );
    }
}
