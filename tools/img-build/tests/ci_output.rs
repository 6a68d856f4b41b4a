//! Each CI's own log syntax from the real `img-build` building through a
//! private dockerd: under GitLab CI a target's build log is printed inside
//! a collapsed section. The environment is cleared: only the variables
//! the test names reach the binary.

mod common;

use slipway_testbed::cmd::Cmd;

use common::{project, run};
use slipway_testbed::{Dockerd, Registry};

/// The GitLab section markers around `name` in `stderr`: the start's and
/// end's timestamps and the text between them.
fn section<'a>(stderr: &'a str, name: &str, header: &str) -> (u64, u64, &'a str) {
    let start_marker = "\x1b[0Ksection_start:";
    let start = stderr
        .find(start_marker)
        .unwrap_or_else(|| panic!("no section start in:\n{stderr}"));
    let rest = &stderr[start + start_marker.len()..];
    let (started, rest) = rest.split_once(':').expect("section_start:<unix>:");
    let opening = format!("{name}[collapsed=true]\r\x1b[0K{header}\n");
    let body = rest
        .strip_prefix(opening.as_str())
        .unwrap_or_else(|| panic!("expected `{opening:?}` after the start in:\n{stderr:?}"));
    let end_marker = "\x1b[0Ksection_end:";
    let end = body
        .find(end_marker)
        .unwrap_or_else(|| panic!("no section end in:\n{stderr}"));
    let (inside, after) = body.split_at(end);
    let (ended, after) = after[end_marker.len()..]
        .split_once(':')
        .expect("section_end:<unix>:");
    assert!(
        after.starts_with(&format!("{name}\r\x1b[0K\n")),
        "the end names the section: {after:?}"
    );
    (
        started.parse().expect("a unix time"),
        ended.parse().expect("a unix time"),
        inside,
    )
}

/// Builds the project's images in `repo` through `dockerd` with nothing
/// but `ci` (and what the build needs) in the environment.
fn build_in_ci(
    repo: &slipway_testbed::git::GitRepo,
    dockerd: &Dockerd,
    ci: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    run(Cmd::new(env!("CARGO_BIN_EXE_img-build"))
        .current_dir(repo.path())
        .env("NO_COLOR", "1")
        .env("DOCKER_HOST", dockerd.host())
        .env("DOCKER_CONFIG", dockerd.temp_dir().join("client"))
        .envs(ci.iter().copied())
        .args(["--backend", "buildkit", "--network", "none", "--all"])
        .arg("--docker")
        .arg(dockerd.client_path())
        .args(args))
}

#[test]
fn each_build_log_is_a_gitlab_section_or_a_buildkite_group() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let repo = project(
        &registry.host(),
        "[images.base]\ndockerfile = \"base.Dockerfile\"\n",
        "FROM scratch\nCOPY base.txt /base.txt\n",
    );
    let output = build_in_ci(
        &repo,
        &dockerd,
        &[("GITLAB_CI", "true"), ("CI", "true")],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let (started, ended, inside) = section(&stderr, "img-build_base", "img-build base");
    assert!(started <= ended, "{started} > {ended}");
    assert!(
        inside.contains("COPY base.txt /base.txt"),
        "the build log is inside the section:\n{inside}"
    );
    assert_eq!(
        stderr.matches("section_start:").count(),
        1,
        "one section per target:\n{stderr}"
    );
    assert!(!stderr.contains("::group::"), "{stderr}");

    // Buildkite folds a `--- ` group; it has no end marker.
    let output = build_in_ci(
        &repo,
        &dockerd,
        &[("BUILDKITE", "true"), ("CI", "true")],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let (_, inside) = stderr
        .split_once("\n--- img-build base\n")
        .unwrap_or_else(|| panic!("no Buildkite group in:\n{stderr}"));
    assert!(inside.contains("COPY base.txt /base.txt"), "{stderr}");
    assert!(!stderr.contains("section_start"), "{stderr}");
}

#[test]
fn under_github_actions_only_stale_warns_of_each_stale_image() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let repo = project(
        &registry.host(),
        "[images.base]\ndockerfile = \"base.Dockerfile\"\n",
        "FROM scratch\nCOPY base.txt /base.txt\n",
    );
    // The branch tag is the one looked up, so a later commit finds the
    // image built from an earlier one: stale, not missing.
    let config = fs_err::read_to_string(repo.path().join("slipway.toml")).unwrap();
    repo.write(
        "slipway.toml",
        config.replace(
            "rules = [\"type=sha\", \"type=ref,event=branch\"]",
            "rules = [\"type=ref,event=branch\"]",
        ),
    );
    let built = repo.commit("tag by branch only");
    let output = build_in_ci(&repo, &dockerd, &[], &["--push"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    repo.write("base.txt", "changed\n");
    let head = repo.commit("change base");

    let github = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_SHA", head.as_str()),
    ];
    let output = build_in_ci(
        &repo,
        &dockerd,
        &github,
        &["--only-stale", "--push", "--dry-run"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("::warning"))
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "::warning title=img-build::`base` is stale: built from `{}`; 1 file(s) it is built from changed since: base.txt; it is rebuilt",
            &built[..7]
        )],
        "{stderr}"
    );

    // Outside GitHub Actions, the same run has no annotation.
    let output = build_in_ci(
        &repo,
        &dockerd,
        &[],
        &["--only-stale", "--push", "--dry-run"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("::warning"), "{stderr}");
}
