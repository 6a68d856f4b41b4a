//! End to end against the test bed's real sshd, dockerd and registry: the
//! deploy script pulls and runs the image by digest, readiness is awaited
//! through the SSH connection, and a release that never gets ready is rolled
//! back to the previous one automatically.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use std::process::Command;

use common::Project;
use slipway_testbed::{Dockerd, Registry, Sshd};

const SCRIPT: &str = r#"#!/bin/sh
set -eu
. ./deploy.env
echo "pulling $APP_IMAGE"
"$DOCKER" pull --quiet "$APP_IMAGE"
"$DOCKER" rm -f app >/dev/null 2>&1 || true
"$DOCKER" run -d --name app --network host "$APP_IMAGE" httpd -f -p "127.0.0.1:$PORT" -h /srv/www
"#;

/// Builds `FROM base` + `www/` (with `api/ready` when `is_ready`) and pushes
/// it as `app:<tag>`; returns `repo@sha256:…`.
fn push_app(
    dockerd: &Dockerd,
    registry: &Registry,
    base: &str,
    tag: &str,
    is_ready: bool,
) -> String {
    let context = tempfile::tempdir().unwrap();
    let www = context.path().join("www/api");
    fs_err::create_dir_all(&www).unwrap();
    fs_err::write(www.join(if is_ready { "ready" } else { "not-ready" }), tag).unwrap();
    fs_err::write(
        context.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY www /srv/www\n"),
    )
    .unwrap();
    let image = format!("{}/app:{tag}", registry.host());
    run(dockerd
        .docker()
        .args(["build", "--network=none", "-q", "-t", &image])
        .arg(context.path()));
    run(dockerd.docker().args(["push", &image]));
    let digest =
        run(dockerd
            .docker()
            .args(["inspect", "--format", "{{index .RepoDigests 0}}", &image]));
    digest.trim().to_owned()
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn running_image(dockerd: &Dockerd) -> String {
    run(dockerd
        .docker()
        .args(["inspect", "--format", "{{.Config.Image}}", "app"]))
    .trim()
    .to_owned()
}

#[test]
fn deploys_by_digest_and_rolls_back_a_release_that_never_gets_ready() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let sshd = Sshd::start();
    let base = dockerd.base_image(&registry);
    let v1 = push_app(&dockerd, &registry, &base, "v1", true);
    let v2 = push_app(&dockerd, &registry, &base, "v2", true);
    let broken = push_app(&dockerd, &registry, &base, "v3", false);
    let port = slipway_testbed::free_port();
    let docker_config = tempfile::tempdir().unwrap();
    let command = format!(
        "DOCKER_HOST={} DOCKER={} DOCKER_CONFIG={} PORT={port} ./deploy.sh",
        dockerd.host(),
        dockerd.client_path().display(),
        docker_config.path().display()
    );
    let extra = format!(
        "command = \"{command}\"\nready_url = \"http://127.0.0.1:{port}/api/ready\"\nready_timeout = \"3s\"\n"
    );
    let project = Project::new(&sshd, &extra, &[("deploy.sh", SCRIPT, 0o755)]);
    let deploy = |reference: &str| {
        project.run_json(
            &sshd,
            &[
                "deploy",
                "--env",
                "prod",
                "--image",
                &format!("app={reference}"),
            ],
        )
    };
    let _cleanup = Cleanup(&dockerd);

    let (code, report, stderr) = deploy(&v1);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["ready"], true);
    // How long readiness took: a number of milliseconds within `ready_timeout`.
    let ready_ms = report["hosts"][0]["ready_ms"].as_u64();
    assert!(
        ready_ms.is_some_and(|ms| ms <= 3000),
        "ready_ms {ready_ms:?} in {report}"
    );
    assert_eq!(running_image(&dockerd), v1);
    assert!(stderr.contains(&format!("| pulling {v1}")), "{stderr}");

    let (code, report, stderr) = deploy(&broken);
    assert_eq!(code, Some(1), "{report}\n{stderr}");
    let host = &report["hosts"][0];
    assert_eq!(host["outcome"], "rolled_back");
    assert_eq!(host["ready"], false);
    assert_eq!(host["ready_ms"], serde_json::Value::Null, "never ready");
    assert_eq!(host["rolled_back_to"], 1);
    assert_eq!(running_image(&dockerd), v1);
    assert_eq!(project.release(2)["result"], "failed");
    assert_eq!(project.release(3)["result"], "deployed");
    assert_eq!(project.release(3)["rollback_of"], 2);

    let (code, report, stderr) = deploy(&v2);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(running_image(&dockerd), v2);
    assert_eq!(project.release(4)["images"]["APP_IMAGE"], v2);
}

/// Removes the app container before dockerd stops.
struct Cleanup<'a>(&'a Dockerd);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.docker().args(["rm", "-f", "app"]).output();
    }
}
