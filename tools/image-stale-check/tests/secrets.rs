//! Registry passwords never leak: `image-stale-check` reads the published
//! images from a registry that needs a password, found in
//! `REGISTRY_USER`/`REGISTRY_PASSWORD` or a docker config, at `-vv` with
//! `RUST_LOG=trace` under GitHub Actions; fresh, with a wrong password and
//! with the registry unreachable. No 8-byte window of a password (nor the
//! base64 `Basic` form) appears in stdout, stderr, `$GITHUB_OUTPUT`,
//! `$GITHUB_STEP_SUMMARY` or the repository (the label cache lives there);
//! each password is masked before the first request.

mod common;

use std::path::Path;

use common::{BIN, project};
use slipway_testbed::Registry;
use slipway_testbed::cmd::Cmd;
use slipway_testbed::secrets::{GithubRun, Secret, copy_image, distinctive, write_docker_config};

const USER: &str = "stale-bot";
const FIRST_REQUEST: &str = "registry::transport: request";

/// Runs the binary in `dir` at `-vv` under GitHub Actions with only `env`
/// (and PATH, HOME) set.
fn check(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> GithubRun {
    GithubRun::run(
        Cmd::new(BIN)
            .current_dir(dir)
            .args(args)
            .arg("-vv")
            .home(dir)
            .env("DOCKER_CONFIG", dir.join(".no-docker-config"))
            .envs(env.iter().copied()),
    )
}

#[test]
fn a_password_protected_registry_is_checked_without_printing_the_password() {
    let password = distinctive("Pa55");
    let wrong = distinctive("Wr0ng");
    let secrets = [
        Secret::new("registry password", &password).with_user(USER),
        Secret::new("wrong registry password", &wrong).with_user(USER),
    ];
    let open = Registry::start();
    let locked = Registry::start_with_auth(USER, &password);
    let repo = project(&locked.host());
    let head = repo.head();
    for image in ["base", "app", "worker"] {
        slipway_testbed::images::push_image(
            &open.host(),
            &format!("demo/{image}"),
            "main",
            "amd64",
            Some(&head),
        );
        copy_image(
            &format!("{}/demo/{image}:main", open.host()),
            &format!("{}/demo/{image}:main", locked.host()),
            USER,
            &password,
        );
    }

    let env = [
        ("REGISTRY_USER", USER),
        ("REGISTRY_PASSWORD", password.as_str()),
    ];
    for format in ["github", "json", "plain"] {
        let run = check(repo.path(), &["--format", format], &env);
        assert_eq!(run.code(), Some(0), "--format {format}: {}", run.stderr());
        run.assert_no_leak(&secrets, &[repo.path()]);
        run.assert_masked(&secrets[..1], Some(FIRST_REQUEST));
    }
    let run = check(repo.path(), &["--format", "json"], &env);
    assert!(
        run.stdout().contains("\"status\": \"fresh\"")
            || run.stdout().contains("\"status\":\"fresh\""),
        "the images were read through the password: {}",
        run.stdout()
    );

    // From a docker config (the config file itself is the secret's own file).
    let docker = tempfile::tempdir().expect("temp dir");
    let config = write_docker_config(docker.path(), &locked.host(), USER, &password);
    let run = check(
        repo.path(),
        &["--format", "json", "--no-cache"],
        &[("DOCKER_CONFIG", &config)],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    run.assert_no_leak(&secrets, &[repo.path()]);
    run.assert_masked(&secrets[..1], Some(FIRST_REQUEST));

    // A wrong password: the registry refuses it.
    let run = check(
        repo.path(),
        &["--format", "json", "--no-cache"],
        &[("REGISTRY_USER", USER), ("REGISTRY_PASSWORD", &wrong)],
    );
    assert_ne!(run.code(), Some(0), "{}", run.stderr());
    assert!(
        run.stdout().contains("401") || run.stderr().contains("401"),
        "the refusal is reported: {}\n{}",
        run.stdout(),
        run.stderr()
    );
    run.assert_no_leak(&secrets, &[repo.path()]);
    run.assert_masked(&secrets[1..], Some(FIRST_REQUEST));

    // The registry is gone.
    drop(locked);
    let run = check(repo.path(), &["--format", "json", "--no-cache"], &env);
    assert_ne!(run.code(), Some(0), "{}", run.stderr());
    run.assert_no_leak(&secrets, &[repo.path()]);
}

/// A registry front whose error body quotes the request's headers
/// (`Authorization: Basic …`): the check fails (exit 3) and nothing it
/// prints holds the password in any form.
#[test]
fn a_registry_echoing_the_request_headers_leaks_nothing() {
    let password = distinctive("Pa55");
    let secret = Secret::new("registry password", &password).with_user(USER);
    let open = Registry::start();
    let locked = Registry::start_with_auth(USER, &password);
    let front = slipway_testbed::HttpFault::start(
        locked.addr(),
        vec![
            slipway_testbed::Fault::new("/manifests/", 100, 400)
                .method("GET")
                .authorized_only()
                .echoing_request(),
        ],
    );
    let repo = project(&front.host());
    let head = repo.head();
    slipway_testbed::images::push_image(&open.host(), "demo/app", "main", "amd64", Some(&head));
    copy_image(
        &format!("{}/demo/app:main", open.host()),
        &format!("{}/demo/app:main", locked.host()),
        USER,
        &password,
    );
    let env = [
        ("REGISTRY_USER", USER),
        ("REGISTRY_PASSWORD", password.as_str()),
    ];
    for format in ["github", "json", "plain"] {
        let run = check(repo.path(), &["--format", format, "--image", "app"], &env);
        assert_eq!(run.code(), Some(3), "--format {format}: {}", run.stderr());
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(
            all.contains("your request was: GET /v2/demo/app/manifests/"),
            "{all}"
        );
        assert!(all.contains("authorization: Basic ***"), "{all}");
        run.assert_no_leak(std::slice::from_ref(&secret), &[repo.path()]);
    }
}
