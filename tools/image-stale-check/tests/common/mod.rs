//! Shared fixtures: a project history with three images, tiny labelled
//! images pushed straight to the real registry with curl (a config blob
//! carrying the label and an empty layer list), and the binary's runner.

#![allow(dead_code, reason = "each test file uses a different part")]
#![allow(
    clippy::unwrap_used,
    reason = "fixture helpers outside `#[test]` functions: a failed step should panic"
)]

use std::path::Path;

use slipway_testbed::cmd::{Cmd, Outcome};
use slipway_testbed::git::GitRepo;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_image-stale-check");

/// What a run printed and returned.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// stdout as JSON (for `--format json` runs).
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", self.stdout, self.stderr))
    }

    /// `(image, status)` of every verdict.
    pub(crate) fn statuses(&self) -> Vec<(String, String)> {
        self.json()["images"]
            .as_array()
            .expect("images")
            .iter()
            .map(|i| {
                (
                    i["image"].as_str().unwrap().to_owned(),
                    i["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The verdict of `image`.
    pub(crate) fn image(&self, image: &str) -> serde_json::Value {
        self.json()["images"]
            .as_array()
            .expect("images")
            .iter()
            .find(|i| i["image"] == image)
            .cloned()
            .unwrap_or_else(|| panic!("no verdict for {image}: {}", self.stdout))
    }
}

impl From<Outcome> for Run {
    fn from(output: Outcome) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: output.stdout_str(),
            stderr: output.stderr_str(),
        }
    }
}

/// The binary in `dir` with `args` and `env`, through the test bed's
/// builder (environment cleared: no CI, `SLIPWAY_*` or `DOCKER*` of the
/// runner), no colour, errors-only logs, no docker credentials.
pub(crate) fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Cmd {
    let mut command = Cmd::new(BIN);
    command
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "error")
        .env("DOCKER_CONFIG", dir.join(".no-docker-config"))
        .envs(env.iter().copied());
    command
}

/// Runs the binary in `dir` with `args` (see [`command`]).
pub(crate) fn run_in(dir: &Path, args: &[&str]) -> Run {
    run_with_env(dir, args, &[])
}

/// [`run_in`] with `env` set on top.
pub(crate) fn run_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    command(dir, args, env).run().into()
}

/// A project with images `base`, `app` (depends on base) and `worker`, a
/// `[rebuild_all]` on `Cargo.lock`, pushed to `registry_host/demo`; one
/// commit. Returns the repository.
pub(crate) fn project(registry_host: &str) -> GitRepo {
    let repo = GitRepo::new();
    repo.write(
        "slipway.toml",
        format!(
            r#"[project]
name = "demo"
registry = "{registry_host}/demo"
default_branch = "main"

[rebuild_all]
paths = ["Cargo.lock"]

[images.base]
paths = ["base/**"]

[images.app]
paths = ["app/**", "!app/**/*.md"]
depends_on = ["base"]

[images.worker]
paths = ["worker/**"]
"#
        ),
    );
    repo.write("Cargo.lock", "v1\n");
    repo.write("base/Dockerfile", "FROM scratch\n");
    repo.write("app/main.rs", "fn main() {}\n");
    repo.write("worker/main.rs", "fn main() {}\n");
    repo.write("README.md", "demo\n");
    repo.commit("initial");
    repo
}

/// Pushes a one-platform image to `host/repository:tag` whose config has
/// `revision` as its revision label (none when `None`); returns its digest.
pub(crate) fn push_image(
    host: &str,
    repository: &str,
    tag: &str,
    revision: Option<&str>,
) -> String {
    slipway_testbed::images::push_image(host, repository, tag, "amd64", revision).0
}
