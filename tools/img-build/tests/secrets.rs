//! Secrets never leak from a build: a build secret from the environment
//! (`secrets = ["id=token,env=APP_TOKEN"]`) and the password of the
//! registry `--push` sends to (docker's `auths` in `DOCKER_CONFIG`; with
//! `--only-stale`, `REGISTRY_USER`/`REGISTRY_PASSWORD` for reading the
//! published labels). At `-vv` with `RUST_LOG=trace` under GitHub Actions,
//! pushed, skipped as fresh, and refused for a wrong password, no 8-byte
//! window of them (nor the base64 `Basic` form) appears in stdout, stderr,
//! `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`, the build logs or the pushed
//! image's config; each secret img-build reads is masked before use.

mod common;

use std::path::Path;
use std::process::Command;

use common::{img_build, project};
use slipway_testbed::secrets::{
    GithubRun, Secret, assert_no_leak, distinctive, write_docker_config,
};
use slipway_testbed::{Dockerd, Registry};

const USER: &str = "build-bot";

/// Runs img-build through the test bed's BuildKit at `-vv` under GitHub
/// Actions, with `docker_config` as `DOCKER_CONFIG` and `env` on top.
fn build(
    dir: &Path,
    logs: &Path,
    dockerd: &Dockerd,
    docker_config: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> GithubRun {
    GithubRun::run(
        img_build(dir)
            .args(["--backend", "buildkit", "--network", "none", "-vv"])
            .args(["--format", "github", "--log-dir"])
            .arg(logs)
            .arg("--docker")
            .arg(dockerd.client_path())
            .args(args)
            .env("DOCKER_HOST", dockerd.host())
            .env("DOCKER_CONFIG", docker_config)
            .env_remove("REGISTRY_USER")
            .env_remove("REGISTRY_PASSWORD")
            .envs(env.iter().copied()),
    )
}

/// The config blob of `reference` (as stored), read with the password.
fn pushed_config(reference: &str, password: &str) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(["inspect", "--config", "--raw", "--tls-verify=false"])
        .arg(format!("--creds={USER}:{password}"))
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn a_build_secret_and_the_push_password_never_appear() {
    let password = distinctive("Pa55");
    let wrong = distinctive("Wr0ng");
    let token = distinctive("T0k");
    let secrets = [
        Secret::new("registry password", &password).with_user(USER),
        Secret::new("wrong registry password", &wrong).with_user(USER),
        Secret::new("build secret", &token),
    ];
    let open = Registry::start();
    let locked = Registry::start_with_auth(USER, &password);
    let dockerd = Dockerd::start();
    let busybox = dockerd.base_image(&open);
    let repo = project(
        &locked.host(),
        &format!(
            "[images.app]\ndockerfile = \"base.Dockerfile\"\nbuild_args = {{ BUSYBOX = \"{busybox}\" }}\nsecrets = [\"id=token,env=APP_TOKEN\"]\n"
        ),
        // The RUN step proves the secret reached the build without showing it.
        "ARG BUSYBOX\nFROM ${BUSYBOX}\nCOPY base.txt /base.txt\nRUN --mount=type=secret,id=token test -s /run/secrets/token\n",
    );
    // Outside the repository, so the tree stays clean.
    let logs = tempfile::tempdir().expect("temp dir");
    let docker = tempfile::tempdir().expect("temp dir");
    let docker_config = write_docker_config(docker.path(), &locked.host(), USER, &password);

    let run = build(
        repo.path(),
        logs.path(),
        &dockerd,
        &docker_config,
        &["--all", "--push"],
        &[("APP_TOKEN", &token)],
    );
    assert_eq!(run.code(), Some(0), "{}\n{}", run.stderr(), dockerd.log());
    run.assert_no_leak(&secrets, &[repo.path(), logs.path()]);
    run.assert_masked(&secrets[2..], Some("docker build --file"));
    let reference = format!("{}/demo/app:sha-{}", locked.host(), &repo.head()[..7]);
    assert_no_leak(
        &secrets,
        "the pushed image's config",
        &pushed_config(&reference, &password),
    );

    // Again with --only-stale: the published labels are read with the
    // password from the environment, which is masked first.
    let run = build(
        repo.path(),
        logs.path(),
        &dockerd,
        &docker_config,
        &["--all", "--push", "--only-stale"],
        &[
            ("APP_TOKEN", &token),
            ("REGISTRY_USER", USER),
            ("REGISTRY_PASSWORD", &password),
        ],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert!(
        run.stderr().contains("skipped, published for this commit"),
        "the registry was read through the password: {}",
        run.stderr()
    );
    run.assert_no_leak(&secrets, &[repo.path(), logs.path()]);
    run.assert_masked(&secrets[..1], Some("registry::transport: request"));

    // A wrong password in the docker config: the push is refused.
    repo.write("base.txt", "changed\n");
    repo.commit("change");
    let wrong_docker = tempfile::tempdir().expect("temp dir");
    let wrong_config = write_docker_config(wrong_docker.path(), &locked.host(), USER, &wrong);
    let run = build(
        repo.path(),
        logs.path(),
        &dockerd,
        &wrong_config,
        &["--all", "--push"],
        &[("APP_TOKEN", &token)],
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    assert!(
        run.stderr().to_lowercase().contains("unauthorized"),
        "the push was refused for its credentials: {}",
        run.stderr()
    );
    run.assert_no_leak(&secrets, &[repo.path(), logs.path()]);
}
