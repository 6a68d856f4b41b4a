//! `img-build --push` to a registry it cannot reach: one refusing
//! connections, and one whose name does not resolve. The build itself
//! works (a private dockerd's BuildKit); the push must fail in bounded time
//! (exit 3) with a report and an error that name the registry's host and
//! port. One dockerd for both cases: starting it is the slow part.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{img_build, json, project, target};
use slipway_testbed::Dockerd;
use slipway_testbed::UNRESOLVABLE_REGISTRY as UNRESOLVABLE;
use slipway_testbed::cmd::Cmd;

/// No fault may make img-build hang: each run must end within this.
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn a_push_to_an_unreachable_registry_fails_naming_the_host_and_port() {
    let dockerd = Dockerd::start();
    let refused = format!("127.0.0.1:{}", slipway_testbed::free_port());
    // The cause as docker reports it, streamed to stderr and the image's log.
    for (host, cause) in [
        (refused.as_str(), "connection refused"),
        (UNRESOLVABLE, "no such host"),
    ] {
        let repo = project(
            host,
            "[images.app]\ndockerfile = \"base.Dockerfile\"\n",
            "FROM scratch\nCOPY app.txt /app.txt\n",
        );
        let mut command = img_build(repo.path());
        command
            .args([
                "--backend",
                "buildkit",
                "--network",
                "none",
                "--format",
                "json",
                "--all",
                "--push",
                // Past the tag check, to the push (see below for the check).
                "--force-tags",
            ])
            .arg("--docker")
            .arg(dockerd.client_path())
            .env("DOCKER_HOST", dockerd.host())
            .env("DOCKER_CONFIG", dockerd.temp_dir().join("client"));
        let output = run_bounded(&mut command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{host}: {stderr}");
        let report = json(&output);
        let app = target(&report, "app");
        assert_eq!(app["status"], "failed", "{host}: {report:#}");
        let error = app["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with(&format!("`push {host}/demo/app:")),
            "{host}: the report names the registry's host:port: {error}"
        );
        assert!(
            stderr.contains("app | ") && stderr.contains(cause),
            "{host}: the cause is shown: {stderr}"
        );

        // Without `--force-tags`, the mutable tag `main` is looked up before
        // anything is built: the run stops there, naming the registry.
        let mut command = img_build(repo.path());
        command
            .args([
                "--backend",
                "buildkit",
                "--network",
                "none",
                "--all",
                "--push",
            ])
            .arg("--docker")
            .arg(dockerd.client_path())
            .env("DOCKER_HOST", dockerd.host())
            .env("DOCKER_CONFIG", dockerd.temp_dir().join("client"));
        let output = run_bounded(&mut command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{host}: {stderr}");
        assert!(output.stdout.is_empty(), "{host}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "error: cannot read `{host}/demo/app:main` to tell whether its tag may move to this build"
            )) && stderr.contains(&format!("cannot reach `{host}`")),
            "{host}: {stderr}"
        );
        assert!(!stderr.contains("app | "), "nothing is built: {stderr}");
    }
}

/// Runs `command`, failing the test if it takes longer than [`DEADLINE`]
/// (the builder kills it and fails with what it printed so far).
fn run_bounded(command: &mut Cmd) -> Output {
    command.timeout(DEADLINE).run().into()
}
