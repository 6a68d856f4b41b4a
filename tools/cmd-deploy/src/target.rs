//! The command target: the env's `run` command by `sh -c` on the runner,
//! the release records as `<history>/<id>.json`, the lock an flock(2) on
//! `<history>/.lock` that the kernel drops with this process.
//!
//! This module runs the command with its output on this process's stderr
//! (stdout is the report): it is one of the writers ARCHITECTURE.md lists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use slipway_config::{Config, Env};
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
        let ids: Vec<u64> = self.history()?.iter().map(|r| r.id).collect();
        let excess = ids
            .len()
            .saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX));
        for id in &ids[..excess] {
            fs_err::remove_file(self.record_path(*id))?;
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

/// Runs `sh -c run` in `dir` with `vars` added, its stdout and stderr on
/// this process's stderr, for at most `timeout`.
fn run_command(
    dir: &Path,
    run: &str,
    vars: &[(String, String)],
    timeout: Duration,
) -> anyhow::Result<()> {
    use std::os::fd::AsFd as _;
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .context("cannot pass stderr to the command")?;
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
        .spawn()
        .context("cannot start `sh`")?;
    let deadline = Instant::now().checked_add(timeout);
    loop {
        if let Some(status) = child.try_wait().context("cannot wait for the command")? {
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
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!(
                "the command ran past its `timeout` ({}s) and was killed",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
