//! kubectl, the one way kube-deploy talks to a cluster: [`Kubectl`] spells
//! every command as an argv (arguments as arguments, never a shell line),
//! and a [`Runner`] runs it. The deploy's logic only ever sees argvs and
//! their outputs, so what it asks of a cluster is tested as argvs (unit
//! tests with a scripted runner) and the offline commands (`kubectl
//! kustomize`, `annotate --local`) with the real kubectl.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;

/// How long one API request may take (`--request-timeout`); `rollout
/// status` has its own `--timeout` instead, since it watches.
pub(crate) const REQUEST_TIMEOUT: &str = "--request-timeout=30s";

/// What a command printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Ran {
    /// The exit code; `None` when a signal ended it.
    pub(crate) code: Option<i32>,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: String,
}

impl Ran {
    /// Whether it exited 0.
    pub(crate) fn is_success(&self) -> bool {
        self.code == Some(0)
    }

    /// Stdout as text.
    pub(crate) fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Its last stderr line that says something, for an error message.
    pub(crate) fn reason(&self) -> String {
        let line = self
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .trim();
        match self.code {
            Some(code) => format!("exit {code}: {line}"),
            None => format!("killed by a signal: {line}"),
        }
    }
}

/// Runs an argv with bytes on its stdin.
pub(crate) trait Runner: Sync {
    /// Runs `argv` to its end; `Err` only when it cannot start.
    fn run(&self, argv: &[String], stdin: &[u8]) -> anyhow::Result<Ran>;
}

/// The real runner: a child process, output captured.
pub(crate) struct Process;

impl Runner for Process {
    fn run(&self, argv: &[String], stdin: &[u8]) -> anyhow::Result<Ran> {
        let (program, args) = argv.split_first().context("an empty command line")?;
        tracing::debug!(?argv, "running");
        // kubectl (and a kubeconfig's `exec:` credential plugin) gets no
        // registry credentials kube-deploy read for itself.
        let mut child = std::process::Command::new(program)
            .args(args)
            .env_remove(slipway_registry::auth::CREDENTIAL_ENV_VARS[0])
            .env_remove(slipway_registry::auth::CREDENTIAL_ENV_VARS[1])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run `{program}` (is kubectl installed? `--kubectl PATH` or $KUBECTL names it)"))?;
        // Written from a thread while the output is read: kubectl prints
        // each object as it reads the next (`annotate -f -`), so writing
        // all of a large stdin first would wait on a full stdout pipe
        // forever.
        let writer = child.stdin.take().map(|mut input| {
            let stdin = stdin.to_vec();
            std::thread::spawn(move || {
                // A command that exits before reading its stdin is judged by its status.
                let _ = input.write_all(&stdin);
            })
        });
        let output = child
            .wait_with_output()
            .with_context(|| format!("cannot wait for `{program}`"))?;
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        Ok(Ran {
            code: output.status.code(),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// The oldest kubectl whose `kustomize` (v4+) reads a directory resource;
/// Debian 12's kubectl 1.20 (kustomize v2.0.3) fails on one with
/// "rawResources failed to read Resources: … must be a file".
pub(crate) const OLDEST_KUBECTL: (u64, u64) = (1, 21);

/// How long a quoted answer of kubectl may be in an error message.
const SHOWN_ANSWER: usize = 120;

/// Asks `kubectl version --client -o json` and refuses a kubectl older
/// than [`OLDEST_KUBECTL`] (exit 2) or one whose answer has no version;
/// returns the argv run, for the report's commands.
pub(crate) fn check_version(kubectl: &Kubectl, runner: &dyn Runner) -> anyhow::Result<Vec<String>> {
    let argv = kubectl.local(&["version", "--client", "-o", "json"]);
    let ran = runner.run(&argv, b"")?;
    let program = kubectl.program.display();
    if !ran.is_success() {
        return Err(slipway_core::cli::UsageError::new(format!(
            "`{program} version --client -o json` failed ({}): kube-deploy needs kubectl {}.{} or newer",
            ran.reason(),
            OLDEST_KUBECTL.0,
            OLDEST_KUBECTL.1
        )));
    }
    let Some((version, major, minor)) = client_version(&ran.stdout) else {
        let first = ran.stdout_str();
        let first = first
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("nothing")
            .trim();
        let shown: String = first.chars().take(SHOWN_ANSWER).collect();
        let more = if shown.len() < first.len() { "…" } else { "" };
        return Err(slipway_core::cli::UsageError::new(format!(
            "cannot read the version of `{program}`: `version --client -o json` printed `{shown}{more}`, not a JSON `clientVersion` with a `gitVersion` such as `v1.32.4`"
        )));
    };
    if (major, minor) < OLDEST_KUBECTL {
        return Err(slipway_core::cli::UsageError::new(format!(
            "kube-deploy needs kubectl {}.{} or newer (kustomize v4): `{program}` is {version}; install a current one (https://kubernetes.io/docs/tasks/tools/, or the apt repository pkgs.k8s.io) and name it with `--kubectl PATH` or $KUBECTL",
            OLDEST_KUBECTL.0, OLDEST_KUBECTL.1
        )));
    }
    tracing::debug!(%version, "kubectl is new enough");
    Ok(argv)
}

/// `clientVersion.gitVersion` of `kubectl version --client -o json`
/// (`v1.32.4-dispatcher`) as shown (`1.32.4-dispatcher`), major and minor.
fn client_version(json: &[u8]) -> Option<(String, u64, u64)> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let git = value["clientVersion"]["gitVersion"].as_str()?;
    let shown = git.strip_prefix('v').unwrap_or(git);
    let mut parts = shown.split('.');
    let number = |part: Option<&str>| -> Option<u64> {
        let part = part?;
        let end = part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(part.len());
        part[..end].parse().ok()
    };
    let major = number(parts.next())?;
    let minor = number(parts.next())?;
    Some((shown.to_owned(), major, minor))
}

/// How the env's cluster is reached: the argv prefix of every command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kubectl {
    pub(crate) program: PathBuf,
    pub(crate) context: Option<String>,
    pub(crate) namespace: String,
}

impl Kubectl {
    /// A command against the cluster: `kubectl [--context C] --namespace N ARGS…`.
    pub(crate) fn cluster(&self, args: &[&str]) -> Vec<String> {
        let mut argv = vec![self.program.display().to_string()];
        if let Some(context) = &self.context {
            argv.extend(["--context".to_owned(), context.clone()]);
        }
        argv.extend(["--namespace".to_owned(), self.namespace.clone()]);
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv
    }

    /// A command that needs no cluster: `kubectl ARGS…`.
    pub(crate) fn local(&self, args: &[&str]) -> Vec<String> {
        let mut argv = vec![self.program.display().to_string()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv
    }

    /// `rollout status WORKLOAD --timeout=Ns`.
    pub(crate) fn rollout_status(&self, workload: &str, timeout: Duration) -> Vec<String> {
        self.cluster(&[
            "rollout",
            "status",
            workload,
            &format!("--timeout={}s", timeout.as_secs().max(1)),
        ])
    }

    /// `rollout undo WORKLOAD [--to-revision=N]`.
    pub(crate) fn rollout_undo(&self, workload: &str, to: Option<u64>) -> Vec<String> {
        let to = to.map(|n| format!("--to-revision={n}"));
        let mut args = vec!["rollout", "undo", workload];
        if let Some(to) = &to {
            args.push(to);
        }
        args.push(REQUEST_TIMEOUT);
        self.cluster(&args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubectl(context: Option<&str>) -> Kubectl {
        Kubectl {
            program: PathBuf::from("kubectl"),
            context: context.map(str::to_owned),
            namespace: "shop".to_owned(),
        }
    }

    #[track_caller]
    fn check(argv: Vec<String>, expected: &str) {
        assert_eq!(argv.join(" "), expected);
    }

    #[test]
    fn cluster_commands_name_the_context_and_namespace() {
        check(
            kubectl(Some("prod")).rollout_status("deployment/web", Duration::from_secs(300)),
            "kubectl --context prod --namespace shop rollout status deployment/web --timeout=300s",
        );
        check(
            kubectl(None).rollout_undo("deployment/web", None),
            "kubectl --namespace shop rollout undo deployment/web --request-timeout=30s",
        );
        check(
            kubectl(None).rollout_undo("statefulset/db", Some(3)),
            "kubectl --namespace shop rollout undo statefulset/db --to-revision=3 --request-timeout=30s",
        );
    }

    #[test]
    fn local_commands_name_no_cluster() {
        check(
            kubectl(Some("prod")).local(&["kustomize", "/tmp/k"]),
            "kubectl kustomize /tmp/k",
        );
    }

    #[test]
    fn a_timeout_under_a_second_still_waits_a_second() {
        check(
            kubectl(None).rollout_status("deployment/web", Duration::from_millis(10)),
            "kubectl --namespace shop rollout status deployment/web --timeout=1s",
        );
    }

    #[track_caller]
    fn check_version(answer: &str, expected: Option<(&str, u64, u64)>) {
        let got = client_version(answer.as_bytes());
        let got = got
            .as_ref()
            .map(|(v, major, minor)| (v.as_str(), *major, *minor));
        assert_eq!(got, expected, "{answer}");
    }

    #[test]
    fn the_client_version_is_read_from_git_version() {
        // Debian 12's kubernetes-client.
        check_version(
            r#"{"clientVersion":{"major":"1","minor":"20","gitVersion":"v1.20.2"}}"#,
            Some(("1.20.2", 1, 20)),
        );
        // A vendor's build: `minor` is `32+`, the git version has a suffix.
        check_version(
            r#"{"clientVersion":{"major":"1","minor":"32+","gitVersion":"v1.32.4-dispatcher"},"kustomizeVersion":"v5.5.0"}"#,
            Some(("1.32.4-dispatcher", 1, 32)),
        );
        check_version(r#"{"clientVersion":{"gitVersion":"v1"}}"#, None);
        check_version(r#"{"clientVersion":{}}"#, None);
        check_version("Client Version: v1.20.2", None);
        check_version("", None);
    }
}
