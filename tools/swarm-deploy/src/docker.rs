//! The docker client, run as a process against the swarm manager: every
//! command bounded by a deadline, its stderr kept for the error.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How long one docker command may take (a `stack deploy` of many services
/// over SSH included); convergence is watched by polling, not by one call.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// A docker client aimed at one manager.
#[derive(Debug, Clone)]
pub(crate) struct Docker {
    pub(crate) client: PathBuf,
    /// `DOCKER_HOST` for every command; `None` leaves the runner's.
    pub(crate) host: Option<String>,
}

/// What a docker command printed and how it ended.
pub(crate) struct Ran {
    pub(crate) success: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Docker {
    /// The command line as the dry run shows it.
    pub(crate) fn display(&self, args: &[&str]) -> String {
        let mut words = vec![self.client.display().to_string()];
        if let Some(host) = &self.host {
            words.push("--host".to_owned());
            words.push(host.clone());
        }
        words.extend(args.iter().map(|a| (*a).to_owned()));
        words
            .iter()
            .map(|w| slipway_core::output::shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs `docker ARGS` with `env` added and `stdin`; a docker that
    /// cannot be started or runs past its deadline is an error, a non-zero
    /// exit is not (see [`Ran::success`]).
    pub(crate) fn try_run(
        &self,
        args: &[&str],
        env: &[(String, String)],
        stdin: Option<&[u8]>,
    ) -> anyhow::Result<Ran> {
        let mut command = Command::new(&self.client);
        if let Some(host) = &self.host {
            command.arg("--host").arg(host);
        }
        // Docker uses its own login; the credentials swarm-deploy read
        // for itself are not passed on (nor to docker's CLI plugins).
        for name in slipway_registry::auth::CREDENTIAL_ENV_VARS {
            command.env_remove(name);
        }
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let what = || format!("`docker {}`", args.first().copied().unwrap_or_default());
        let mut child = command.spawn().with_context(|| {
            format!(
                "cannot run the docker client `{}`; install docker or pass `--docker PATH`",
                self.client.display()
            )
        })?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(bytes)
                .with_context(|| format!("cannot write to {}", what()))?;
        }
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let read = |pipe: Option<std::process::ChildStdout>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                if let Some(mut pipe) = pipe {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
                }
                text
            })
        };
        let out_thread = read(stdout);
        let err_thread = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = stderr {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            }
            text
        });
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child
                .try_wait()
                .with_context(|| format!("cannot wait for {}", what()))?
            {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!(
                    "{} ran past {}s and was stopped: is the manager reachable?",
                    self.display(args),
                    COMMAND_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ok(Ran {
            success: status.success(),
            stdout: out_thread.join().unwrap_or_default(),
            stderr: err_thread.join().unwrap_or_default(),
        })
    }

    /// Runs `docker ARGS`; a non-zero exit is an error quoting docker's stderr.
    pub(crate) fn run(
        &self,
        args: &[&str],
        env: &[(String, String)],
        stdin: Option<&[u8]>,
    ) -> anyhow::Result<String> {
        let ran = self.try_run(args, env, stdin)?;
        if ran.success {
            Ok(ran.stdout)
        } else {
            anyhow::bail!("{} failed: {}", self.display(args), ran.stderr.trim())
        }
    }
}
