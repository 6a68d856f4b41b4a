//! What the img-build tests share: a fixture project (a base image, a
//! two-stage Dockerfile giving app and migrator), the binary, and skopeo as
//! the independent oracle.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "each test file uses a different part; helpers panic like tests"
)]

use std::path::Path;
use std::process::{Command, Output};

use slipway_testbed::cmd::Cmd;
use slipway_testbed::git::GitRepo;

/// The two-stage Dockerfile: `app` and `migrator`, both from `$BASE_IMAGE`.
pub(crate) const TWO_STAGES: &str = "ARG BASE_IMAGE\n\
FROM ${BASE_IMAGE} AS app\n\
COPY app.txt /app.txt\n\
\n\
FROM ${BASE_IMAGE} AS migrator\n\
COPY migrate.sql /migrate.sql\n";

/// A committed project: slipway.toml (`images` appended to a `[project]`
/// pushing to `registry`), `base.Dockerfile`, the two-stage `Dockerfile`.
pub(crate) fn project(registry: &str, images: &str, base_dockerfile: &str) -> GitRepo {
    let repo = GitRepo::new();
    repo.write(
        "slipway.toml",
        format!(
            "[project]\nregistry = \"{registry}/demo\"\nsource = \"https://example.invalid/demo\"\n\n{images}\n[tags]\nrules = [\"type=sha\", \"type=ref,event=branch\"]\n"
        ),
    );
    repo.write("base.Dockerfile", base_dockerfile);
    repo.write("Dockerfile", TWO_STAGES);
    repo.write("base.txt", "base\n");
    repo.write("app.txt", "app\n");
    repo.write("migrate.sql", "create table t (id int);\n");
    repo.commit("initial");
    repo
}

/// The usual three images: base, and app and migrator depending on it.
pub(crate) const THREE_IMAGES: &str = "[images.base]\ndockerfile = \"base.Dockerfile\"\n\n\
[images.app]\ntarget = \"app\"\ndepends_on = [\"base\"]\nlabels = { \"com.example.team\" = \"web\" }\n\n\
[images.migrator]\ntarget = \"migrator\"\ndepends_on = [\"base\"]\n";

/// `img-build` run in `dir`, through the test bed's builder: the
/// environment cleared (`PATH`, a temp `HOME`, and what the test sets), so
/// the runner's CI, `SLIPWAY_*`, `DOCKER*` and registry variables never
/// reach it.
pub(crate) fn img_build(dir: &Path) -> Cmd {
    let mut command = Cmd::new(env!("CARGO_BIN_EXE_img-build"));
    command.current_dir(dir);
    command
}

/// Something [`run`] can run: the tool through [`Cmd`] (bounded), or an
/// oracle (`skopeo`, `tar`, `sha256sum`) through `std::process::Command`.
pub(crate) trait Runnable {
    /// Runs to the end and returns the output.
    fn run_to_end(&mut self) -> Output;
}

impl Runnable for Cmd {
    fn run_to_end(&mut self) -> Output {
        self.run().into()
    }
}

impl Runnable for Command {
    fn run_to_end(&mut self) -> Output {
        self.output().expect("the command starts")
    }
}

/// Runs a command and returns its output (never panics on a failed status).
pub(crate) fn run(command: &mut impl Runnable) -> Output {
    command.run_to_end()
}

/// Stdout as JSON, with stderr in the panic message when it is not.
pub(crate) fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// `skopeo inspect` of `reference` (`--raw` for the manifest as stored).
pub(crate) fn skopeo_inspect(reference: &str, raw: bool) -> serde_json::Value {
    let mut command = Command::new(slipway_testbed::require("skopeo", "skopeo"));
    command.args(["inspect", "--tls-verify=false"]);
    if raw {
        command.arg("--raw");
    }
    let output = run(command.arg(format!("docker://{reference}")));
    assert!(
        output.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("skopeo prints JSON")
}

/// The target called `name` in img-build's JSON report.
pub(crate) fn target<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["targets"]
        .as_array()
        .expect("a targets list")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no target `{name}` in {report:#}"))
}

/// Checks a pushed image with skopeo: every tag points at the reported
/// digest, and the OCI labels hold the revision, title and source.
pub(crate) fn check_pushed(
    report: &serde_json::Value,
    name: &str,
    revision: &str,
) -> serde_json::Value {
    let entry = target(report, name);
    assert_eq!(entry["status"], "built", "{entry:#}");
    let digest = entry["digest"].as_str().expect("a digest");
    assert_eq!(
        entry["reference"],
        format!("{}@{digest}", entry["repository"].as_str().unwrap())
    );
    let tags = entry["tags"].as_array().expect("tags");
    assert_eq!(tags.len(), 2, "sha and branch tags: {entry:#}");
    let mut inspected = serde_json::Value::Null;
    for tag in tags {
        inspected = skopeo_inspect(tag.as_str().unwrap(), false);
        assert_eq!(inspected["Digest"], digest, "{tag}");
    }
    let labels = &inspected["Labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], revision);
    assert_eq!(labels["org.opencontainers.image.title"], name);
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://example.invalid/demo"
    );
    assert!(
        labels["org.opencontainers.image.created"].is_string(),
        "{labels:#}"
    );
    let main_tag = tags[0].as_str().unwrap().rsplit(':').next().unwrap();
    assert_eq!(labels["org.opencontainers.image.version"], main_tag);
    inspected
}

/// Checks with `skopeo inspect --raw` that `reference` is an OCI index whose
/// bytes hash to `digest`, with one entry per platform, in order.
pub(crate) fn check_index(reference: &str, digest: &str, platforms: &[&str]) {
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{reference}")));
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let mut sha = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut sha.stdin.take().unwrap(), &raw.stdout).unwrap();
    let hex = String::from_utf8(sha.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(format!("sha256:{}", &hex[..64]), digest, "{reference}");
    let index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let found: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(found, platforms, "{index:#}");
}

/// The sha256 (hex) of a file, by `sha256sum`.
pub(crate) fn sha256_of(path: &Path) -> String {
    let output = run(Command::new("sha256sum").arg(path));
    assert!(output.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&output.stdout)[..64].to_owned()
}
