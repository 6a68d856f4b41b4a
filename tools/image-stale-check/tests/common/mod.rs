//! Shared fixtures: a project history with three images, tiny labelled
//! images pushed straight to the real registry with curl (a config blob
//! carrying the label and an empty layer list), and the binary's runner.

#![allow(dead_code, reason = "each test file uses a different part")]
#![allow(
    clippy::unwrap_used,
    reason = "fixture helpers outside `#[test]` functions: a failed step should panic"
)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use slipway_testbed::git::GitRepo;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_image-stale-check");
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

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

/// Runs the binary in `dir` with `args`, no colour, no inherited Slipway
/// or CI variables.
pub(crate) fn run_in(dir: &Path, args: &[&str]) -> Run {
    run_with_env(dir, args, &[])
}

/// [`run_in`] with `env` set on top.
pub(crate) fn run_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "error")
        .env("DOCKER_CONFIG", dir.join(".no-docker-config"));
    for (name, _) in std::env::vars() {
        if name.starts_with("GITHUB_") || name.starts_with("SLIPWAY_") || name == "DOCKER" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
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
    push_manifest(host, repository, tag, "amd64", revision).0
}

/// Pushes an index of one image per `(architecture, revision)` to
/// `host/repository:tag`; returns its digest.
pub(crate) fn push_index(
    host: &str,
    repository: &str,
    tag: &str,
    images: &[(&str, &str)],
) -> String {
    let children: Vec<String> = images
        .iter()
        .map(|(arch, revision)| {
            let (digest, size) =
                push_manifest(host, repository, &format!("{tag}-{arch}"), arch, Some(revision));
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":{size},"platform":{{"os":"linux","architecture":"{arch}"}}}}"#
            )
        })
        .collect();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        children.join(",")
    );
    put(
        host,
        &format!("/v2/{repository}/manifests/{tag}"),
        OCI_INDEX,
        &index,
    )
}

fn push_manifest(
    host: &str,
    repository: &str,
    tag: &str,
    arch: &str,
    revision: Option<&str>,
) -> (String, usize) {
    let labels = revision
        .map(|r| format!(r#""Labels":{{"org.opencontainers.image.revision":"{r}"}}"#))
        .unwrap_or_default();
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{{labels}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    let (config_digest, config_size) = push_blob(host, repository, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[]}}"#
    );
    let digest = put(
        host,
        &format!("/v2/{repository}/manifests/{tag}"),
        OCI_MANIFEST,
        &manifest,
    );
    (digest, manifest.len())
}

/// Uploads `bytes` as a blob (monolithic upload); returns `(digest, size)`.
fn push_blob(host: &str, repository: &str, bytes: &[u8]) -> (String, usize) {
    let digest = sha256(bytes);
    let headers = curl(
        &[
            "-X",
            "POST",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &format!("http://{host}/v2/{repository}/blobs/uploads/"),
        ],
        None,
    );
    let location = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .expect("the upload has a location")
        .trim()
        .to_owned();
    curl(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            "@-",
            &format!("{location}&digest={digest}"),
        ],
        Some(bytes),
    );
    (digest, bytes.len())
}

/// PUTs a manifest; returns its digest.
fn put(host: &str, path: &str, media_type: &str, body: &str) -> String {
    curl(
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {media_type}"),
            "--data-binary",
            "@-",
            &format!("http://{host}{path}"),
        ],
        Some(body.as_bytes()),
    );
    sha256(body.as_bytes())
}

fn curl(args: &[&str], stdin: Option<&[u8]>) -> String {
    let curl = slipway_testbed::require("curl", "curl");
    let (ok, stdout) = pipe(
        Command::new(curl)
            .args(["-sS", "--fail-with-body"])
            .args(args),
        stdin.unwrap_or_default(),
    );
    assert!(ok, "curl {args:?}: {stdout}");
    stdout
}

fn sha256(bytes: &[u8]) -> String {
    let (_, stdout) = pipe(&mut Command::new("sha256sum"), bytes);
    format!(
        "sha256:{}",
        stdout.split_whitespace().next().unwrap_or_default()
    )
}

fn pipe(command: &mut Command, stdin: &[u8]) -> (bool, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}
