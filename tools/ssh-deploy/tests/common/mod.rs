//! What the integration tests share: a project directory with slipway.toml
//! and bundle files, a remote path on the test bed's sshd, and the binary.

#![allow(dead_code, reason = "each test file uses a different part")]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use slipway_testbed::Sshd;
use slipway_testbed::cmd::Cmd;

/// A project (slipway.toml and bundle) and the remote path it deploys to.
pub(crate) struct Project {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) remote_dir: tempfile::TempDir,
    /// The deploying user's empty `HOME` (no `~/.ssh` of the machine), which
    /// outlives every command started in the project.
    pub(crate) home: tempfile::TempDir,
}

impl Project {
    /// Writes slipway.toml with env `prod` on `sshd`, the `[envs.prod]` lines
    /// `extra`, and the bundle files `(name, contents, mode)`.
    pub(crate) fn new(sshd: &Sshd, extra: &str, files: &[(&str, &str, u32)]) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let remote_dir = tempfile::tempdir().unwrap();
        let bundle: Vec<String> = files
            .iter()
            .map(|(name, contents, mode)| {
                let path = dir.path().join("deploy").join(name);
                fs_err::create_dir_all(path.parent().unwrap()).unwrap();
                fs_err::write(&path, contents).unwrap();
                fs_err::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
                format!("\"deploy/{name}\"")
            })
            .collect();
        let toml = format!(
            r#"[images.app]
repository = "127.0.0.1:5000/app"

[envs.prod]
hosts = ["{user}@127.0.0.1:{port}"]
remote_path = "{remote}/srv"
bundle = [{bundle}]
strip_components = 1
images = {{ APP_IMAGE = "app" }}
{extra}
"#,
            user = sshd.user(),
            port = sshd.port(),
            remote = remote_dir.path().display(),
            bundle = bundle.join(", "),
        );
        fs_err::write(dir.path().join("slipway.toml"), toml).unwrap();
        let home = tempfile::tempdir().unwrap();
        Project {
            dir,
            remote_dir,
            home,
        }
    }

    /// The env's remote path.
    pub(crate) fn remote(&self) -> PathBuf {
        self.remote_dir.path().join("srv")
    }

    /// `ssh-deploy` run in the project, with the test bed's key and
    /// known_hosts, through the test bed's builder: the environment cleared
    /// (no CI variable, no `SSH_AUTH_SOCK` of the runner), `HOME` the
    /// project's own, `NO_COLOR` set.
    pub(crate) fn cmd(&self, sshd: &Sshd, args: &[&str]) -> Cmd {
        let mut command = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"));
        command
            .current_dir(self.dir.path())
            .home(self.home.path())
            .env("NO_COLOR", "1")
            .args(args)
            .arg("--ssh-key")
            .arg(sshd.client_key_path())
            .arg("--known-hosts")
            .arg(sshd.known_hosts_path());
        command
    }

    /// [`Project::cmd`] as a `std::process::Command` (same environment),
    /// for a test that drives the child itself (signals, stdio of its own)
    /// and bounds its wait.
    pub(crate) fn command(&self, sshd: &Sshd, args: &[&str]) -> Command {
        self.cmd(sshd, args).command()
    }

    /// Runs `ssh-deploy ARGS` within the builder's deadline, returning the
    /// output ([`Project::cmd`]`.run()` gives the builder's exact assertions).
    pub(crate) fn run(&self, sshd: &Sshd, args: &[&str]) -> Output {
        self.cmd(sshd, args).run().into()
    }

    /// Runs `ssh-deploy --format json ARGS` and parses the report.
    pub(crate) fn run_json(
        &self,
        sshd: &Sshd,
        args: &[&str],
    ) -> (Option<i32>, serde_json::Value, String) {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let output = self.run(sshd, &all);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}):\n{}\nstderr:\n{stderr}",
                String::from_utf8_lossy(&output.stdout)
            )
        });
        (output.status.code(), report, stderr)
    }

    /// A file in the remote path.
    pub(crate) fn remote_file(&self, name: &str) -> String {
        fs_err::read_to_string(self.remote().join(name)).unwrap()
    }

    /// The mode of a file in the remote path.
    pub(crate) fn remote_mode(&self, name: &str) -> u32 {
        fs_err::metadata(self.remote().join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    /// Whether the env's lock on the host is free: `flock -n` on it
    /// succeeds (a deploy's session holds it while it deploys), and no
    /// holder is recorded.
    pub(crate) fn is_lock_free(&self) -> bool {
        let lock = self.remote().join(".slipway/deploy.lock");
        let is_free = !lock.exists()
            || Command::new("flock")
                .arg("-n")
                .arg(&lock)
                .arg("true")
                .status()
                .unwrap()
                .success();
        is_free && !self.remote().join(".slipway/holder.json").exists()
    }

    /// The release record `id` on the host.
    pub(crate) fn release(&self, id: u64) -> serde_json::Value {
        let path = self.remote().join(format!(".slipway/releases/{id}.json"));
        serde_json::from_str(&fs_err::read_to_string(path).unwrap()).unwrap()
    }
}

/// A digest-pinned reference that needs no registry (these tests never pull).
pub(crate) fn fake_ref(n: u8) -> String {
    format!(
        "127.0.0.1:5000/app@sha256:{}",
        format!("{n:x}").repeat(64).get(..64).unwrap()
    )
}

/// Polls `condition` every 20 ms until it holds, panicking after 30 s.
pub(crate) fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `path` exists.
pub(crate) fn exists(path: &Path) -> bool {
    path.exists()
}
