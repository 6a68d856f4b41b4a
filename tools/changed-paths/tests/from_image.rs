//! `--base-from-image` against a real registry: tiny labelled images are
//! pushed straight to it with curl (a config blob carrying the label and an
//! empty layer list, as image-stale-check's tests do), then the real binary
//! compares from the commit the label names.

#![allow(
    clippy::unwrap_used,
    reason = "fixture helpers outside `#[test]` functions: a failed step should panic"
)]

use std::path::Path;

use slipway_testbed::cmd::Cmd;
use slipway_testbed::git::GitRepo;
use slipway_testbed::images::{REVISION_LABEL as LABEL, push_image, push_index};
use slipway_testbed::registry::Registry;

const BIN: &str = env!("CARGO_BIN_EXE_changed-paths");

/// What a run printed and returned.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary in `dir` with `args` through the test bed's builder (no
/// CI variables, no colour, no docker credentials), plus `env`.
fn run_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let docker_config = tempfile::tempdir().unwrap();
    let output = Cmd::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "error")
        .env("DOCKER_CONFIG", docker_config.path())
        .envs(env.iter().copied())
        .run();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn run(dir: &Path, args: &[&str]) -> Run {
    run_with_env(dir, args, &[])
}

#[track_caller]
fn check(run: Run, code: i32, stdout: &str) {
    assert_eq!(run.stdout, stdout, "stdout; stderr was:\n{}", run.stderr);
    assert_eq!(run.code, code, "exit code; stderr was:\n{}", run.stderr);
}

#[track_caller]
fn check_error(run: Run, code: i32, first_line: &str) {
    assert_eq!(run.stdout, "", "stdout; stderr was:\n{}", run.stderr);
    assert_eq!(run.code, code, "exit code; stderr was:\n{}", run.stderr);
    assert_eq!(
        run.stderr.lines().next(),
        Some(first_line),
        "{}",
        run.stderr
    );
}

/// A history of three commits: the first, one changing `app/`, one
/// changing `docs/`. Returns the repository and the three shas.
fn history() -> (GitRepo, [String; 3]) {
    let repo = GitRepo::new();
    repo.write("app/main.js", "1\n");
    repo.write("docs/guide.md", "1\n");
    let first = repo.commit("first");
    repo.write("app/main.js", "2\n");
    let second = repo.commit("app");
    repo.write("docs/guide.md", "2\n");
    let third = repo.commit("docs");
    (repo, [first, second, third])
}

#[test]
fn the_base_is_the_commit_the_image_was_built_from() {
    let registry = Registry::start();
    let host = registry.host();
    let (repo, [first, second, third]) = history();
    push_image(&host, "demo/app", "main", "amd64", Some(&first));
    let image = format!("{host}/demo/app:main");

    check(
        run(
            repo.path(),
            &["--base-from-image", &image, "--filter", "app=app/**"],
        ),
        0,
        &format!(
            "changed files: 2, {} (from image `{image}`) -> {}
app: true (1 file)
  modified app/main.js
targets: [\"app\"]
",
            &first[..7],
            &third[..7]
        ),
    );

    // `--head` still chooses the other side.
    check(
        run(
            repo.path(),
            &[
                "--base-from-image",
                &image,
                "--head",
                &second,
                "--filter",
                "app=app/**",
            ],
        ),
        0,
        &format!(
            "changed files: 1, {} (from image `{image}`) -> {}
app: true (1 file)
  modified app/main.js
targets: [\"app\"]
",
            &first[..7],
            &second[..7]
        ),
    );

    // JSON names the image next to the commits.
    let json = run(
        repo.path(),
        &["--base-from-image", &image, "--format", "json"],
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        (&json["base"], &json["head"], &json["base_image"]),
        (
            &serde_json::json!(first),
            &serde_json::json!(third),
            &serde_json::json!(image)
        )
    );

    // A multi-platform image whose platforms agree.
    push_index(
        &host,
        "demo/app",
        "multi",
        &[("amd64", &second), ("arm64", &second)],
    );
    let multi = format!("{host}/demo/app:multi");
    check(
        run(repo.path(), &["--base-from-image", &multi]),
        0,
        &format!(
            "changed files: 1, {} (from image `{multi}`) -> {}
targets: []
",
            &second[..7],
            &third[..7]
        ),
    );
}

#[test]
fn a_dirty_build_counts_as_its_commit_with_a_warning() {
    let registry = Registry::start();
    let host = registry.host();
    let (repo, [first, _, third]) = history();
    push_image(
        &host,
        "demo/app",
        "dirty",
        "amd64",
        Some(&format!("{first}-dirty")),
    );
    let image = format!("{host}/demo/app:dirty");
    let out = run_with_env(
        repo.path(),
        &["--base-from-image", &image],
        &[("RUST_LOG", "warn")],
    );
    assert!(
        out.stderr.contains(&format!(
            "image `{image}` was built from uncommitted changes on top of `{}` (`{first}-dirty`); comparing from that commit",
            &first[..7]
        )),
        "{}",
        out.stderr
    );
    check(
        out,
        0,
        &format!(
            "changed files: 2, {} (from image `{image}`) -> {}
targets: []
",
            &first[..7],
            &third[..7]
        ),
    );
}

#[test]
fn images_that_name_no_usable_commit_exit_3() {
    let registry = Registry::start();
    let host = registry.host();
    let (repo, [first, second, _]) = history();

    push_image(&host, "demo/app", "unlabelled", "amd64", None);
    let image = format!("{host}/demo/app:unlabelled");
    check_error(
        run(repo.path(), &["--base-from-image", &image]),
        3,
        &format!(
            "error: image `{image}` has no `{LABEL}` label; build it with img-build (which sets it) or pass --base"
        ),
    );

    let image = format!("{host}/demo/app:nope");
    check_error(
        run(repo.path(), &["--base-from-image", &image]),
        3,
        &format!(
            "error: image `{image}` not found in its registry; check the reference (`--base-from-image`), or pass --base"
        ),
    );

    push_index(
        &host,
        "demo/app",
        "mixed",
        &[("amd64", &first), ("arm64", &second)],
    );
    let image = format!("{host}/demo/app:mixed");
    check_error(
        run(repo.path(), &["--base-from-image", &image]),
        3,
        &format!(
            "error: the platforms of image `{image}` were built from different commits: `linux/amd64` at `{first}`, `linux/arm64` at `{second}`; rebuild every platform from one commit, or pass --base"
        ),
    );

    // The label's commit is not in a shallow clone: how to fetch it.
    push_image(&host, "demo/app", "old", "amd64", Some(&first));
    let image = format!("{host}/demo/app:old");
    let clone = repo.clone_shallow(1);
    check_error(
        run(clone.path(), &["--base-from-image", &image]),
        3,
        &format!(
            "error: base `{}` is not in this shallow clone; fetch more history (actions/checkout `fetch-depth: 0`, or `git fetch --deepen=<n>`)",
            &first[..7]
        ),
    );
}

#[test]
fn base_from_image_conflicts_with_other_bases() {
    let (repo, [first, _, _]) = history();
    for other in [
        &["--base", first.as_str()][..],
        &["--working-tree"][..],
        &["--files-from", "-"][..],
    ] {
        let mut args = vec!["--base-from-image", "127.0.0.1:1/demo/app:main"];
        args.extend_from_slice(other);
        let out = run(repo.path(), &args);
        assert_eq!(out.code, 2, "{other:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("cannot be used with"),
            "{other:?}: {}",
            out.stderr
        );
    }
    // Not a reference at all: bad input, before any request.
    let out = run(repo.path(), &["--base-from-image", "Not A Ref"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr.lines().next(),
        Some("error: `--base-from-image Not A Ref` is not an image reference"),
        "{}",
        out.stderr
    );
}

/// A registry behind TLS with a CA the test makes, under a name Slipway
/// does not take for loopback (`127.1:PORT`): refused without its CA,
/// saying which flag fixes it; read with `--ca-cert` or a certs.d directory.
#[test]
fn a_tls_registry_is_read_with_ca_cert_or_certs_d() {
    let plain = Registry::start();
    let ca = slipway_testbed::TestCa::new();
    let tls = plain.tls_front(&ca, false);
    let host = tls.non_loopback_host();
    let (repo, [first, _, third]) = history();
    push_image(&plain.host(), "demo/app", "main", "amd64", Some(&first));
    let image = format!("{host}/demo/app:main");
    let dir = tempfile::tempdir().unwrap();
    let certs_d = dir.path().join("certs.d");
    fs_err::create_dir_all(&certs_d).unwrap();
    let certs_d_arg = certs_d.to_str().unwrap().to_owned();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["--base-from-image", &image, "--filter", "app=app/**"]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    };
    let run_args = |extra: &[&str]| {
        let args = args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(repo.path(), &args)
    };

    let refused = run_args(&["--certs-dir", &certs_d_arg]);
    assert_eq!(
        (refused.code, refused.stdout.as_str()),
        (3, ""),
        "{refused:?}"
    );
    assert!(
        refused.stderr.contains(&format!(
            "cannot verify the TLS certificate of `{host}` for `GET /v2/demo/app/manifests/main`: \
             invalid peer certificate: UnknownIssuer; trust its CA with --ca-cert FILE"
        )),
        "{}",
        refused.stderr
    );

    let expected = format!(
        "changed files: 2, {} (from image `{image}`) -> {}
app: true (1 file)
  modified app/main.js
targets: [\"app\"]
",
        &first[..7],
        &third[..7]
    );
    let ca_file = dir.path().join("ca.pem");
    fs_err::write(&ca_file, ca.cert_pem()).unwrap();
    check(
        run_args(&[
            "--ca-cert",
            ca_file.to_str().unwrap(),
            "--certs-dir",
            &certs_d_arg,
        ]),
        0,
        &expected,
    );
    fs_err::create_dir_all(certs_d.join(&host)).unwrap();
    fs_err::write(certs_d.join(&host).join("ca.crt"), ca.cert_pem()).unwrap();
    check(run_args(&["--certs-dir", &certs_d_arg]), 0, &expected);
}
