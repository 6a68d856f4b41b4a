//! `--builder` and slipway.toml's `builder`: a buildx builder (a remote
//! BuildKit, a Kubernetes builder) does the build. No buildx plugin exists
//! here, so the exact command lines are checked: by `--dry-run`, and by a
//! real run whose `--docker` is a shim that records its argv and answers as
//! buildx and `docker image inspect` would.

mod common;

use common::{THREE_IMAGES, img_build, json, project, run};

const REGISTRY: &str = "127.0.0.1:5999";

fn dry_run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    run(img_build(dir)
        .args(["--dry-run", "--format", "json", "--log-dir", "logs"])
        .args(args))
}

fn argv(report: &serde_json::Value, name: &str) -> Vec<String> {
    common::target(report, name)["commands"][0]["argv"]
        .as_array()
        .expect("an argv")
        .iter()
        .map(|a| a.as_str().expect("a string").to_owned())
        .collect()
}

#[track_caller]
fn check_refused(dir: &std::path::Path, args: &[&str], message: &str) {
    let output = dry_run(dir, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr, format!("error: {message}\n"), "{args:?}");
    assert!(output.stdout.is_empty(), "{args:?}");
}

#[test]
fn a_builder_flag_builds_with_buildx_on_that_builder() {
    let repo = project(REGISTRY, THREE_IMAGES, "FROM scratch\nCOPY base.txt /\n");
    // `auto` takes buildx without probing: the shim-free machine has none.
    let output = dry_run(
        repo.path(),
        &["--only", "base", "--builder", "remote", "--push"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    assert_eq!(report["backend"], "buildx");
    let base = argv(&report, "base");
    assert_eq!(
        base[..5],
        ["docker", "buildx", "build", "--builder", "remote"]
    );
    let dir = repo.path().display().to_string();
    let tail = [
        "--metadata-file".to_owned(),
        format!("{dir}/logs/base.metadata.json"),
        "--push".to_owned(),
        dir,
    ];
    assert_eq!(base[base.len() - tail.len()..], tail[..], "{base:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("img-build: backend buildx (`--builder remote` is a buildx builder)"),
        "{stderr}"
    );
}

#[test]
fn slipway_toml_names_a_builder_per_project_and_per_image() {
    let repo = project(
        REGISTRY,
        &THREE_IMAGES.replace(
            "[images.migrator]\n",
            "[images.migrator]\nbuilder = \"k8s-arm\"\n",
        ),
        "FROM scratch\nCOPY base.txt /\n",
    );
    let toml = repo.path().join("slipway.toml");
    let text = fs_err::read_to_string(&toml).unwrap();
    repo.write(
        "slipway.toml",
        text.replacen("[project]\n", "[project]\nbuilder = \"remote\"\n", 1),
    );
    repo.commit("builders");
    let report = json(&dry_run(repo.path(), &["--all", "--push"]));
    assert_eq!(report["backend"], "buildx");
    assert_eq!(argv(&report, "base")[3..5], ["--builder", "remote"]);
    assert_eq!(argv(&report, "app")[3..5], ["--builder", "remote"]);
    assert_eq!(argv(&report, "migrator")[3..5], ["--builder", "k8s-arm"]);
    // The flag wins over slipway.toml for every image.
    let report = json(&dry_run(
        repo.path(),
        &["--all", "--push", "--builder", "ci"],
    ));
    for name in ["base", "app", "migrator"] {
        assert_eq!(argv(&report, name)[3..5], ["--builder", "ci"], "{name}");
    }
    // Without a builder, buildx builds on the client's current builder.
    let report = json(&dry_run(
        repo.path(),
        &["--only", "base", "--push", "--backend", "buildx"],
    ));
    assert_eq!(argv(&report, "base")[3..5], ["--builder", "remote"]);
}

#[test]
fn a_builder_is_refused_where_it_cannot_work() {
    let repo = project(REGISTRY, THREE_IMAGES, "FROM scratch\nCOPY base.txt /\n");
    let dir = repo.path();
    check_refused(
        dir,
        &[
            "--only",
            "base",
            "--builder",
            "remote",
            "--push",
            "--backend",
            "buildah",
        ],
        "`--builder remote` names a buildx builder, but buildah builds on this machine, without BuildKit, and cannot hand a build to a builder: choose `--backend buildx` or `auto`, or leave the builder out",
    );
    check_refused(
        dir,
        &[
            "--only",
            "base",
            "--builder",
            "remote",
            "--push",
            "--backend",
            "buildkit",
        ],
        "`--builder remote` names a buildx builder, which the buildkit backend (`docker build` with DOCKER_BUILDKIT=1, on the daemon at $DOCKER_HOST) cannot use: choose `--backend buildx` or `auto`, or leave the builder out",
    );
    check_refused(
        dir,
        &["--only", "base", "--builder", "remote"],
        "image `base` is built on buildx builder `remote`, which keeps what it builds in its own cache, not in an image store on this machine: add `--push` to push it to its registry, or `--load` to load it into the local docker",
    );
    let output = dry_run(dir, &["--only", "base", "--builder", "1st", "--push"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: invalid value '1st' for '--builder <NAME>': `1st` is not a buildx builder name: it starts with a letter and holds only letters, digits, `.`, `-` and `_` (as `docker buildx create --name` takes)\n"),
        "{stderr}"
    );
    let text = fs_err::read_to_string(dir.join("slipway.toml")).unwrap();
    repo.write(
        "slipway.toml",
        text.replacen("[images.base]\n", "[images.base]\nbuilder = \"a b\"\n", 1),
    );
    check_refused(
        dir,
        &["--only", "base", "--push"],
        &format!(
            "`builder` in [images.base] at {}/slipway.toml:6:11: `a b` is not a buildx builder name: it starts with a letter and holds only letters, digits, `.`, `-` and `_` (as `docker buildx create --name` takes)",
            dir.display()
        ),
    );
}

/// A `docker` that records every argv (one argument a line, `--` after each
/// command) and answers as buildx does: `buildx build` writes its
/// `--metadata-file`, and `image inspect` gives the labels the build set.
const SHIM: &str = r##"#!/bin/sh
printf '%s\n' "$@" >> "$SHIM_DIR/argv"
echo -- >> "$SHIM_DIR/argv"
case "$1 $2" in
"buildx build")
    prev= metadata= dockerfile_sha=
    for arg in "$@"; do
        case "$prev" in
        --metadata-file) metadata=$arg ;;
        --label) case "$arg" in dev.slipway.dockerfile.sha256=*) dockerfile_sha=${arg#*=} ;; esac ;;
        esac
        prev=$arg
    done
    printf '{"dev.slipway.dockerfile.sha256":"%s"}\n' "$dockerfile_sha" > "$SHIM_DIR/labels"
    printf '{"buildx.build.ref":"remote/remote0/x1","containerimage.config.digest":"sha256:%064d"}\n' 1 > "$metadata"
    echo "#1 [internal] load build definition from Dockerfile" >&2
    ;;
"image inspect") cat "$SHIM_DIR/labels" ;;
*) echo "shim: unexpected docker $*" >&2; exit 1 ;;
esac
"##;

#[test]
fn a_real_run_on_a_builder_runs_exactly_the_planned_command() {
    use std::os::unix::fs::PermissionsExt as _;
    let repo = project(REGISTRY, THREE_IMAGES, "FROM scratch\nCOPY base.txt /\n");
    let shim_dir = tempfile::tempdir().unwrap();
    let shim = shim_dir.path().join("docker");
    fs_err::write(&shim, SHIM).unwrap();
    fs_err::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let shim_shown = shim.display().to_string();
    let args = [
        "--only",
        "base",
        "--builder",
        "remote",
        "--load",
        "--docker",
        shim_shown.as_str(),
        "--format",
        "json",
        "--log-dir",
        "logs",
    ];
    let planned = json(&run(img_build(repo.path())
        .args(args)
        .arg("--dry-run")
        .env("SHIM_DIR", shim_dir.path())));
    let output = run(img_build(repo.path())
        .args(args)
        .env("SHIM_DIR", shim_dir.path()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report = json(&output);
    let base = common::target(&report, "base");
    assert_eq!(base["status"], "built", "{base:#}");
    // Without a push, the reference is the main tag (the branch's, first).
    assert_eq!(base["reference"], format!("{REGISTRY}/demo/base:main"));

    let recorded = fs_err::read_to_string(shim_dir.path().join("argv")).unwrap();
    let commands: Vec<Vec<&str>> = recorded
        .split_terminator("--\n")
        .map(|c| c.lines().collect())
        .collect();
    let mut expected = argv(&planned, "base");
    expected.remove(0);
    assert_eq!(commands.len(), 2, "a build and a label check: {recorded}");
    assert_eq!(commands[0], expected);
    assert_eq!(commands[0][..4], ["buildx", "build", "--builder", "remote"]);
    assert_eq!(commands[0][commands[0].len() - 2], "--load");
    assert_eq!(
        commands[1],
        [
            "image",
            "inspect",
            "--format",
            "{{json .Config.Labels}}",
            &format!("{REGISTRY}/demo/base:main"),
        ]
    );
}
