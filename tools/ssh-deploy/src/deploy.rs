//! One host's deploy, rollback, release list or lock action, every step on
//! one SSH connection: connect, lock, upload, run, wait for readiness,
//! record, unlock; a failed readiness redeploys the previous good release.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use slipway_core::config::Host;
use slipway_core::progress::{Progress, Task};

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
}

/// Who deploys, for the lock and the records.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) holder: String,
    pub(crate) machine: String,
    pub(crate) who: String,
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
}

/// Which image references a run deploys.
#[derive(Debug, Clone)]
pub(crate) enum Images {
    /// These, from `--image`.
    Given(BTreeMap<String, String>),
    /// Those of a recorded release: `Some(N)`, or the previous good one.
    Release(Option<u64>),
}

/// Deploys `job` to `host`; every failure ends up in the report.
pub(crate) fn deploy(
    host: &Host,
    connection: &Connection,
    identity: &Identity,
    job: &Job,
    progress: &Progress,
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
    ) {
        Ok(()) => match report.outcome {
            Outcome::Deployed => task.finish(&format!(
                "release {} deployed",
                report.release.unwrap_or_default()
            )),
            _ => task.fail(report.error.as_deref().unwrap_or("failed")),
        },
        Err(error) => {
            let message = chain(&error);
            task.fail(&message);
            report.outcome = Outcome::Error;
            report.error = Some(message);
        }
    }
    report
}

fn deploy_locked(
    host: &Host,
    connection: &Connection,
    identity: &Identity,
    job: &Job,
    progress: &Progress,
    task: &Task,
    report: &mut HostReport,
) -> anyhow::Result<()> {
    let session = open(host, connection)?;
    let sftp = session.sftp().context("cannot start SFTP")?;
    let layout = Layout::new(&job.remote_path);
    remote::prepare(&sftp, &layout)?;
    let records = remote::releases(&sftp, &layout)?;
    let id = records.last().map_or(1, |r| r.id + 1);
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
    };
    acquire(&sftp, &layout, &me, job, &report.host, task)?;
    let mut is_timed_out = false;
    let result = (|| -> anyhow::Result<()> {
        // Read again under the lock: a deploy we waited for has added one.
        let records = remote::releases(&sftp, &layout)?;
        let id = records.last().map_or(1, |r| r.id + 1);
        let (images, files) = match &job.images {
            Images::Given(images) => {
                let mut files = job.bundle.clone();
                files.push(plan::deploy_env_file(images)?);
                (images.clone(), files)
            }
            Images::Release(to) => {
                let target = rollback_target(&records, *to)?;
                (
                    target.images.clone(),
                    vec![plan::deploy_env_file(&target.images)?],
                )
            }
        };
        let rollback_of = match job.images {
            Images::Given(_) => None,
            Images::Release(_) => records.last().map(|r| r.id),
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
        };
        let first = step.run(id, &images, &files, rollback_of)?;
        report.release = Some(id);
        report.uploaded = first.uploaded.clone();
        report.unchanged = first.unchanged.clone();
        report.exit_status = first.exit_status;
        report.ready = first.ready;
        report.ready_ms = first.ready_ms;
        is_timed_out = first.is_timed_out;
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
            let files = vec![plan::deploy_env_file(&previous.images)?];
            let back = step.run(id + 1, &previous.images, &files, Some(id))?;
            report.rolled_back_to = Some(previous.id);
            is_timed_out |= back.is_timed_out;
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
                    id + 1
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
    if is_timed_out {
        // The command may still run on the host: keep the lock so no other
        // deploy overlaps it, and say how to release it.
        let release = format!(
            "ssh-deploy lock release --env {} --host {}",
            job.env, report.host
        );
        report.error = Some(format!(
            "{}; it may still run on the host, so the lock stays: once it has ended, release it with `{release}`",
            report.error.take().unwrap_or_default()
        ));
        return result;
    }
    let unlocked = remote::unlock(&sftp, &layout);
    match result {
        // Most likely the connection died: the lock could not go either.
        Err(error) if unlocked.is_err() => Err(anyhow::anyhow!(
            "{}; {}",
            chain(&error),
            recover(host, connection, &layout, job, &me, &report.host)
        )),
        Err(error) => Err(error),
        Ok(()) => unlocked,
    }
}

/// How long stopping a remote command may take: its 10 s grace and more.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// After a deploy lost its connection while holding the lock: reconnects,
/// stops what the command line may have left running (the host's watchdog
/// does too, once it notices), removes half-uploaded temporary files and
/// releases the lock, if it is still `me`'s. Returns what happened, for
/// the error message.
fn recover(
    host: &Host,
    connection: &Connection,
    layout: &Layout,
    job: &Job,
    me: &LockHolder,
    shown: &str,
) -> String {
    let attempt = || -> anyhow::Result<()> {
        let session = open(host, connection)?;
        let sftp = session.sftp().context("cannot start SFTP")?;
        if remote::read_holder(&sftp, layout)?.as_ref() != Some(me) {
            anyhow::bail!("the lock is no longer this deploy's");
        }
        let stop = plan::stop_command_line(&layout.command_pid().to_string_lossy());
        match ssh::exec_streamed(&session, &stop, None, STOP_TIMEOUT, |_| {})? {
            (Exit::Status(0), _) => {}
            (exit, _) => anyhow::bail!("stopping the remote command failed ({exit:?})"),
        }
        let names = job.bundle.iter().map(|f| f.name.as_str());
        remote::remove_temps(&sftp, layout, names.chain([plan::DEPLOY_ENV]));
        remote::unlock(&sftp, layout)
    };
    match attempt() {
        Ok(()) => "the connection was lost; ssh-deploy reconnected, stopped what the deploy had started on the host and released the lock".to_owned(),
        Err(error) => format!(
            "the connection was lost, and reconnecting to release the lock failed ({}); the next deploy will find the lock stale: once nothing deploys there, release it with `ssh-deploy lock release --env {} --host {shown}`",
            chain(&error),
            job.env
        ),
    }
}

/// Connects with the progress of the job's host.
fn open(host: &Host, connection: &Connection) -> anyhow::Result<ssh2::Session> {
    Ok(ssh::connect(
        host,
        connection.default_user.as_deref(),
        &connection.auth,
        &connection.trust,
        connection.timeout,
    )?)
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

fn acquire(
    sftp: &ssh2::Sftp,
    layout: &Layout,
    me: &LockHolder,
    job: &Job,
    host: &str,
    task: &Task,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let holder = match remote::try_lock(sftp, layout, me)? {
            None => return Ok(()),
            Some(holder) => holder,
        };
        let release = format!("ssh-deploy lock release --env {} --host {host}", job.env);
        if let Some(holder) = &holder
            && remote::is_stale(holder, remote::now(), &me.machine)
        {
            anyhow::bail!(
                "the lock of env `{}` on `{host}` is stale: {}, and that deploy is gone (its process no longer runs, or it is past its deadline {}); after checking nothing deploys there, release it with `{release}`",
                job.env,
                remote::describe(holder),
                remote::timestamp(holder.deadline)
            );
        }
        let who = holder.as_ref().map_or_else(
            || "held by a deploy that is starting".to_owned(),
            remote::describe,
        );
        if started.elapsed() >= job.lock_wait {
            anyhow::bail!(
                "env `{}` on `{host}` is locked by another deploy: {who}; waited {} (`--lock-wait`); if that deploy is gone, release the lock with `{release}`",
                job.env,
                humantime::format_duration(Duration::from_secs(job.lock_wait.as_secs()))
            );
        }
        task.message(&format!("waiting for the lock, {who}"));
        // A poll interval against the host, not test synchronisation.
        std::thread::sleep(Duration::from_secs(1).min(job.lock_wait));
    }
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
}

struct StepResult {
    uploaded: Vec<String>,
    unchanged: Vec<String>,
    exit_status: Option<i32>,
    ready: Option<bool>,
    /// Milliseconds from the start of the readiness wait until ready.
    ready_ms: Option<u64>,
    is_good: bool,
    is_timed_out: bool,
    error: Option<String>,
}

impl Step<'_> {
    fn run(
        &self,
        id: u64,
        images: &BTreeMap<String, String>,
        files: &[BundleFile],
        rollback_of: Option<u64>,
    ) -> anyhow::Result<StepResult> {
        self.task.message(&format!("release {id}: uploading"));
        let mut upload = remote::upload(self.session, self.sftp, self.layout, files)?;
        let vars = plan::command_env(&self.job.env, id, images);
        let from_stdin = upload.streamed.as_ref().and_then(|file| {
            let size = files.iter().find(|f| f.name == file.name)?.size;
            Some(plan::FromStdin {
                temp: file.temp.clone(),
                size,
                mode: file.mode,
            })
        });
        let line = plan::remote_command_line(
            &self.job.remote_path,
            from_stdin.as_ref(),
            &upload.staged,
            &vars,
            &self.job.command,
        );
        let pid_file = self.layout.command_pid();
        let line = plan::supervised_command_line(&pid_file.to_string_lossy(), &line);
        tracing::debug!(host = self.host, line, "running the remote command");
        self.task
            .message(&format!("release {id}: running `{}`", self.job.command));
        let stdin = upload.streamed.as_ref().map(|file| file.local.clone());
        let (exit, sent) = ssh::exec_streamed(
            self.session,
            &line,
            stdin.as_deref(),
            self.job.timeout,
            |text| {
                self.progress.println(&format!("{} | {text}", self.host));
            },
        )
        .context("cannot run the remote command")?;
        remote::save_manifest(self.sftp, self.layout, &mut upload, sent)?;
        let mut result = StepResult {
            uploaded: upload.staged.iter().map(|s| s.name.clone()).collect(),
            unchanged: upload.unchanged.clone(),
            exit_status: None,
            ready: None,
            ready_ms: None,
            is_good: false,
            is_timed_out: false,
            error: None,
        };
        match exit {
            Exit::Status(0) => result.exit_status = Some(0),
            Exit::Status(status) => {
                result.exit_status = Some(status);
                result.error = Some(format!(
                    "the remote command `{}` exited with status {status}",
                    self.job.command
                ));
            }
            Exit::TimedOut => {
                // Stop it from a second channel, so the lock can go.
                let stop = plan::stop_command_line(&pid_file.to_string_lossy());
                let stopped = ssh::exec_streamed(self.session, &stop, None, STOP_TIMEOUT, |_| {})
                    .is_ok_and(|(exit, _)| exit == Exit::Status(0));
                result.is_timed_out = !stopped;
                result.error = Some(format!(
                    "the remote command `{}` ran longer than {} (`--timeout`){}",
                    self.job.command,
                    humantime::format_duration(self.job.timeout),
                    if stopped {
                        " and was stopped (SIGTERM to its process group, then SIGKILL)"
                    } else {
                        ", and stopping it failed"
                    }
                ));
            }
        }
        if result.error.is_none()
            && let Some(target) = &self.job.ready
        {
            self.task
                .message(&format!("release {id}: waiting for {}", target.url));
            let readiness = crate::ready::wait(self.session, target, self.job.ready_timeout);
            result.ready = Some(readiness.is_ready);
            result.ready_ms = readiness
                .ready_after
                .map(|after| u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
            if !readiness.is_ready {
                result.error = Some(format!(
                    "`{}` was not ready within {} ({} attempts; last: {})",
                    target.url,
                    humantime::format_duration(self.job.ready_timeout),
                    readiness.attempts,
                    readiness.last_error.unwrap_or_default()
                ));
            }
        }
        result.is_good = result.error.is_none();
        let record = Release {
            id,
            env: self.job.env.clone(),
            time: remote::timestamp(remote::now()),
            git_sha: self.identity.git_sha.clone(),
            images: images.clone(),
            who: self.identity.who.clone(),
            result: if result.is_good {
                ReleaseResult::Deployed
            } else {
                ReleaseResult::Failed
            },
            rollback_of,
            detail: result.error.clone(),
        };
        remote::record(self.sftp, self.layout, &record, self.job.keep_releases)?;
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

/// Shows (`release == false`) or removes the lock on `host`.
pub(crate) fn lock_action(
    host: &Host,
    connection: &Connection,
    remote_path: &str,
    release: bool,
) -> HostReport {
    let mut report = HostReport::new(&host.to_string());
    let result = (|| {
        let session = open(host, connection)?;
        let sftp = session.sftp().context("cannot start SFTP")?;
        let layout = Layout::new(remote_path);
        let is_locked = remote::is_locked(&sftp, &layout);
        let holder = if is_locked {
            remote::read_holder(&sftp, &layout)?
        } else {
            None
        };
        if release && is_locked {
            remote::unlock(&sftp, &layout)?;
        }
        anyhow::Ok((is_locked, holder))
    })();
    match result {
        Ok((is_locked, holder)) => {
            report.outcome = match (is_locked, release) {
                (false, _) => Outcome::Unlocked,
                (true, false) => Outcome::Locked,
                (true, true) => Outcome::Released,
            };
            report.lock = holder;
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
