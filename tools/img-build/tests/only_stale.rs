//! `--only-stale`: images already published for the commit being built are
//! skipped (their published digest handed to dependents), anything else is
//! built; a registry that cannot be read fails the run, and the flag needs
//! `--push`. Real builds through a private dockerd, a real registry, skopeo
//! as the oracle.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{img_build, json, project, run, skopeo_inspect, target};
use slipway_testbed::{Dockerd, Registry};

const BASE_AND_APP: &str = "[images.base]\ndockerfile = \"base.Dockerfile\"\n\n\
[images.app]\ntarget = \"app\"\ndepends_on = [\"base\"]\n";

fn img_build_docker(dir: &Path, dockerd: &Dockerd, args: &[&str]) -> Output {
    let output = run(img_build(dir)
        .args([
            "--backend",
            "buildkit",
            "--network",
            "none",
            "--format",
            "json",
        ])
        .arg("--docker")
        .arg(dockerd.client_path())
        .args(args)
        .env("DOCKER_HOST", dockerd.host())
        .env("DOCKER_CONFIG", dockerd.temp_dir().join("client")));
    assert!(
        output.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        dockerd.log()
    );
    output
}

/// Each tag of each target of `report`, with the digest skopeo finds there.
fn published(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in report["targets"].as_array().expect("a targets list") {
        for tag in entry["tags"].as_array().expect("a tags list") {
            let tag = tag.as_str().expect("a tag");
            let digest = skopeo_inspect(tag, false)["Digest"]
                .as_str()
                .expect("skopeo names the digest")
                .to_owned();
            found.push((tag.to_owned(), digest));
        }
    }
    found
}

fn list_tags(reference: &str) -> serde_json::Value {
    let output = run(Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{reference}")));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&output.stdout).expect("skopeo prints JSON")["Tags"]
        .clone()
}

#[track_caller]
fn check_fresh(report: &serde_json::Value, name: &str, digest: &str) {
    let entry = target(report, name);
    assert_eq!(entry["status"], "skipped", "{entry:#}");
    assert_eq!(entry["reason"], "fresh", "{entry:#}");
    assert_eq!(entry["digest"], digest, "{entry:#}");
    assert_eq!(
        entry["reference"],
        format!(
            "{}@{digest}",
            entry["repository"].as_str().expect("a repository")
        )
    );
}

#[test]
fn images_published_for_this_commit_are_skipped_and_handed_to_dependents() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let repo = project(
        &registry.host(),
        BASE_AND_APP,
        "FROM scratch\nCOPY base.txt /base.txt\n",
    );
    let head = repo.head();
    let dir = repo.path();
    // Logs outside the repository: untracked files would make the tree dirty.
    let logs = tempfile::tempdir().unwrap();
    let log_dir = |name: &str| logs.path().join(name).display().to_string();

    // Only base is published for this commit: base is skipped, app is
    // built from base's published digest.
    let first = json(&img_build_docker(
        dir,
        &dockerd,
        &["--only", "base", "--push"],
    ));
    let base_digest = target(&first, "base")["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = json(&img_build_docker(
        dir,
        &dockerd,
        &[
            "--all",
            "--only-stale",
            "--push",
            "--log-dir",
            &log_dir("logs2"),
        ],
    ));
    assert_eq!(second["failed"], serde_json::json!([]));
    check_fresh(&second, "base", &base_digest);
    common::check_pushed(&second, "app", &head);
    let base_ref = target(&second, "base")["reference"].as_str().unwrap();
    let app_log = fs_err::read_to_string(logs.path().join("logs2/app.log")).unwrap();
    assert!(
        app_log.contains(&format!("BASE_IMAGE={base_ref}")),
        "{app_log}"
    );
    assert!(!logs.path().join("logs2/base.log").exists());

    // A rerun at the same commit builds and pushes nothing.
    let before = published(&second);
    let tags_before = [
        list_tags(&format!("{}/demo/base", registry.host())),
        list_tags(&format!("{}/demo/app", registry.host())),
    ];
    let dry = json(&img_build_docker(
        dir,
        &dockerd,
        &["--all", "--only-stale", "--push", "--dry-run"],
    ));
    for name in ["base", "app"] {
        let check = &target(&dry, name)["stale_check"];
        assert_eq!(check["verdict"]["status"], "fresh", "{check:#}");
        assert_eq!(check["verdict"]["because"], "same_commit", "{check:#}");
        assert_eq!(check["skip"], true, "{check:#}");
        assert_eq!(target(&dry, name)["commands"], serde_json::json!([]));
    }
    let third = json(&img_build_docker(
        dir,
        &dockerd,
        &[
            "--all",
            "--only-stale",
            "--push",
            "--log-dir",
            &log_dir("logs3"),
        ],
    ));
    assert_eq!(third["failed"], serde_json::json!([]));
    check_fresh(&third, "base", &base_digest);
    check_fresh(
        &third,
        "app",
        target(&second, "app")["digest"].as_str().unwrap(),
    );
    assert!(!logs.path().join("logs3/app.log").exists());
    assert_eq!(published(&third), before);
    assert_eq!(
        [
            list_tags(&format!("{}/demo/base", registry.host())),
            list_tags(&format!("{}/demo/app", registry.host())),
        ],
        tags_before
    );

    // A change to app's files only: neither image is published for the new
    // commit (no `sha-<short>` tag yet), so both are built, base first.
    repo.write("app.txt", "app v2\n");
    let next = repo.commit("change the app only");
    let short = &next[..7];
    let dry = json(&img_build_docker(
        dir,
        &dockerd,
        &["--all", "--only-stale", "--push", "--dry-run"],
    ));
    for name in ["base", "app"] {
        let check = &target(&dry, name)["stale_check"];
        assert_eq!(
            check["reference"],
            format!("{}/demo/{name}:sha-{short}", registry.host())
        );
        assert_eq!(check["verdict"]["status"], "missing", "{check:#}");
        assert_eq!(check["skip"], false, "{check:#}");
    }
    let fourth = json(&img_build_docker(
        dir,
        &dockerd,
        &[
            "--all",
            "--only-stale",
            "--push",
            "--log-dir",
            &log_dir("logs4"),
        ],
    ));
    let base = common::check_pushed(&fourth, "base", &next);
    common::check_pushed(&fourth, "app", &next);
    assert_ne!(base["Digest"], base_digest);
    let base_ref = target(&fourth, "base")["reference"].as_str().unwrap();
    let app_log = fs_err::read_to_string(logs.path().join("logs4/app.log")).unwrap();
    assert!(
        app_log.contains(&format!("BASE_IMAGE={base_ref}")),
        "{app_log}"
    );
}

#[test]
fn an_unreachable_registry_fails_the_check_instead_of_guessing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let repo = project(
        &format!("127.0.0.1:{port}"),
        BASE_AND_APP,
        "FROM scratch\nCOPY base.txt /\n",
    );
    let output = run(img_build(repo.path()).args([
        "--all",
        "--only-stale",
        "--push",
        "--dry-run",
        "--backend",
        "buildx",
        "--docker",
        "/opt/docker",
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot tell whether `127.0.0.1:"),
        "{stderr}"
    );
}

#[test]
fn only_stale_without_push_is_a_usage_error() {
    let repo = project("127.0.0.1:5999", BASE_AND_APP, "FROM scratch\n");
    let output = run(img_build(repo.path()).args(["--all", "--only-stale", "--dry-run"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`--only-stale` requires `--push`"),
        "{stderr}"
    );
}
