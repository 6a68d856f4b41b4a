//! The command target: the env's `run` command by `sh -c` on the runner,
//! the release records as `<history>/<id>.json`, the lock an flock(2) on
//! `<history>/.lock` that the kernel drops with this process.
//!
//! This module runs the command with its output on this process's stderr
//! (stdout is the report): it is one of the writers ARCHITECTURE.md lists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use slipway_config::{Config, Env};
use slipway_core::cli::UsageError;
use slipway_deploy::{Identity, LockGuard, Release, Target};

/// One env's command target.
pub(crate) struct CommandTarget {
    env: Env,
    root: PathBuf,
    run: String,
    history: PathBuf,
    timeout: Duration,
}

/// The flock held while a deploy runs; the kernel releases it when the file
/// is closed, on drop or when the process dies.
struct Flock(#[allow(dead_code, reason = "held for its lock")] fs_err::File);

impl LockGuard for Flock {}

impl CommandTarget {
    pub(crate) fn new(config: &Config, env: &Env) -> anyhow::Result<CommandTarget> {
        let command = env
            .command_target
            .as_ref()
            .context("a command env without its [command] table")?;
        // Two image names that differ only in `-`, `_`, `.` or case would
        // share one `SLIPWAY_IMAGE_<NAME>`, and the command would get one
        // image's digest under the other's name.
        let mut by_variable: BTreeMap<String, &str> = BTreeMap::new();
        for image in env.images.values() {
            let variable = slipway_deploy::image_variable(image);
            match by_variable.get(&variable) {
                Some(other) if *other != image.as_str() => {
                    return Err(UsageError::new(format!(
                        "the images `{other}` and `{image}` of env `{}` would both be given to the command as `{variable}`: rename one in `[images]` so their names differ in more than `-`, `_`, `.` or case",
                        env.name
                    )));
                }
                _ => {
                    by_variable.insert(variable, image);
                }
            }
        }
        Ok(CommandTarget {
            env: env.clone(),
            root: config.root.clone(),
            run: command.run.clone(),
            history: config.root.join(&command.history),
            timeout: command.timeout,
        })
    }

    fn record_path(&self, id: u64) -> PathBuf {
        self.history.join(format!("{id}.json"))
    }

    /// The command's environment besides the runner's.
    fn variables(&self, release: &Release) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .env
            .env_vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.push(("SLIPWAY_ENV".to_owned(), self.env.name.clone()));
        vars.push(("SLIPWAY_RELEASE".to_owned(), release.id.to_string()));
        if let Some(revision) = &release.git_sha {
            vars.push(("SLIPWAY_REVISION".to_owned(), revision.clone()));
        }
        let mut by_image = BTreeMap::new();
        for (var, reference) in &release.images {
            vars.push((var.clone(), reference.clone()));
            if let Some(image) = self.env.images.get(var) {
                by_image.insert(slipway_deploy::image_variable(image), reference.clone());
            }
        }
        vars.extend(by_image);
        vars
    }
}

impl Target for CommandTarget {
    fn name(&self) -> String {
        format!("command:{}", self.env.name)
    }

    fn lock(&mut self, who: &Identity, wait: Duration) -> anyhow::Result<Box<dyn LockGuard>> {
        fs_err::create_dir_all(&self.history)
            .context("cannot create the env's history directory")?;
        let path = self.history.join(".lock");
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .context("cannot open the env's lock file")?;
        let deadline = Instant::now().checked_add(wait);
        let mut warned = false;
        loop {
            match file.file().try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(error)) => {
                    return Err(error).with_context(|| format!("cannot lock `{}`", path.display()));
                }
            }
            if deadline.is_none_or(|d| Instant::now() >= d) {
                let holder = fs_err::read_to_string(&path).unwrap_or_default();
                anyhow::bail!(
                    "env `{}` is locked by another deploy ({}) and stayed locked for `lock_timeout` ({}s); the lock is an flock on `{}`, freed when that deploy's process ends",
                    self.env.name,
                    if holder.trim().is_empty() {
                        "holder unknown"
                    } else {
                        holder.trim()
                    },
                    wait.as_secs(),
                    path.display()
                );
            }
            if !warned {
                tracing::warn!(env = %self.env.name, "waiting for another deploy's lock");
                warned = true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // Who holds it, for the message another deploy shows; the lock is
        // the flock, not this text.
        let note = format!("{} pid {}", who.holder, std::process::id());
        let _ = fs_err::write(&path, note);
        Ok(Box::new(Flock(file)))
    }

    fn history(&self) -> anyhow::Result<Vec<Release>> {
        let mut releases = Vec::new();
        let entries = match fs_err::read_dir(&self.history) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(releases),
            Err(error) => return Err(error).context("cannot list the env's history"),
        };
        for entry in entries {
            let entry = entry.context("cannot list the env's history")?;
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let text = fs_err::read_to_string(self.record_path(id))?;
            let release: Release = serde_json::from_str(&text).with_context(|| {
                format!(
                    "the release record `{}` is not one cmd-deploy wrote",
                    self.record_path(id).display()
                )
            })?;
            releases.push(release);
        }
        releases.sort_by_key(|r| r.id);
        Ok(releases)
    }

    fn record(&mut self, release: &Release, keep: u32) -> anyhow::Result<()> {
        fs_err::create_dir_all(&self.history)
            .context("cannot create the env's history directory")?;
        let path = self.record_path(release.id);
        let temp = self.history.join(format!(".{}.json.tmp", release.id));
        let text = serde_json::to_string_pretty(release).context("cannot encode the record")?;
        fs_err::write(&temp, format!("{text}\n"))?;
        fs_err::rename(&temp, &path)?;
        for id in slipway_deploy::prunable(&self.history()?, keep) {
            fs_err::remove_file(self.record_path(id))?;
        }
        Ok(())
    }

    fn apply(&mut self, release: &Release) -> anyhow::Result<()> {
        run_command(
            &self.root,
            &self.run,
            &self.variables(release),
            self.timeout,
        )
    }

    fn commands(&self, _release: &Release) -> Vec<String> {
        vec![format!(
            "cd {} && sh -c {}",
            slipway_core::output::shell_quote(&self.root.display().to_string()),
            slipway_core::output::shell_quote(&self.run)
        )]
    }

    fn command_env(&self, release: &Release) -> Vec<(String, String)> {
        self.variables(release)
    }
}

/// The process group of the command that runs now (0: none), which the
/// signal watcher stops before cmd-deploy exits.
static RUNNING: AtomicU32 = AtomicU32::new(0);
/// Set once SIGINT or SIGTERM arrived: no command starts after it, and the
/// one that ended because of it is not judged (the process exits).
static CANCELLED: AtomicBool = AtomicBool::new(false);
/// How long a stopped command gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// Runs `sh -c run` in `dir` with `vars` added, its stdout and stderr on
/// this process's stderr, for at most `timeout`.
///
/// The command runs in a process group of its own, and everything in that
/// group is stopped (SIGTERM, then SIGKILL after [`GRACE`]) when it runs
/// past `timeout` or cmd-deploy gets SIGINT or SIGTERM: a `pulumi` or
/// `helm` the script started never outlives the deploy that holds the
/// lock, nor runs beside the previous release's command that a rollback
/// starts.
fn run_command(
    dir: &Path,
    run: &str,
    vars: &[(String, String)],
    timeout: Duration,
) -> anyhow::Result<()> {
    use std::os::fd::AsFd as _;
    use std::os::unix::process::CommandExt as _;
    watch_signals();
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot pass stderr to the command")?;
    if CANCELLED.load(Ordering::SeqCst) {
        wait_for_exit();
    }
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(run)
        .current_dir(dir)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            stderr
                .try_clone()
                .context("cannot pass stderr to the command")?,
        ))
        .stderr(Stdio::from(stderr))
        .process_group(0)
        .spawn()
        .context("cannot start `sh`")?;
    let group = child.id();
    RUNNING.store(group, Ordering::SeqCst);
    let deadline = Instant::now().checked_add(timeout);
    let ended = loop {
        if let Some(status) = child.try_wait().context("cannot wait for the command")? {
            break Ok(status);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            stop_group(group, || matches!(child.try_wait(), Ok(None)));
            let _ = child.wait();
            break Err(anyhow::anyhow!(
                "the command ran past its `timeout` ({}s) and was stopped, with every process it started",
                timeout.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever the command left running in its group goes with it.
    signal_group(group, "KILL");
    RUNNING.store(0, Ordering::SeqCst);
    if CANCELLED.load(Ordering::SeqCst) {
        wait_for_exit();
    }
    let status = ended?;
    if status.success() {
        return Ok(());
    }
    anyhow::bail!(
        "the command failed ({})",
        match status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_owned(),
        }
    );
}

/// Blocks while the signal watcher ends the process.
fn wait_for_exit() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Sends `signal` (`TERM`, `KILL`, `0`) to process group `group`; whether
/// it reached a process. Through `kill(1)`: the workspace has no unsafe
/// code for `killpg(2)`.
fn signal_group(group: u32, signal: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", "kill -s \"$1\" -- \"-$2\" 2>/dev/null", "sh"])
        .args([signal, &group.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// SIGTERM to the group, then SIGKILL once `is_running` stops saying yes
/// or after [`GRACE`].
fn stop_group(group: u32, mut is_running: impl FnMut() -> bool) {
    signal_group(group, "TERM");
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && is_running() {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group(group, "KILL");
}

/// From the first command on: on SIGINT or SIGTERM, stops the command's
/// group and exits 128 + the signal's number. The lock goes with the
/// process; the release stays recorded as a deploy that did not finish.
fn watch_signals() {
    static WATCH: std::sync::Once = std::sync::Once::new();
    WATCH.call_once(|| {
        slipway_deploy::signals::on_first_signal(
            "a cancelled deploy's command is not stopped",
            |received| {
                CANCELLED.store(true, Ordering::SeqCst);
                let group = RUNNING.load(Ordering::SeqCst);
                if group != 0 {
                    tracing::warn!("cancelled: stopping the command");
                    stop_group(group, || signal_group(group, "0"));
                }
                std::process::exit(128 + received);
            },
        );
    });
}
