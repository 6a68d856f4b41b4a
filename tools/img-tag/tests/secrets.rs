//! Registry passwords never leak: `img-tag` runs against a registry that
//! needs a password (distribution's htpasswd auth), with the password from
//! `--password-stdin`, from `REGISTRY_USER`/`REGISTRY_PASSWORD` and from a
//! docker config, at `-vv` and `RUST_LOG=trace`, on success and on failure
//! (wrong password, unreachable registry), under GitHub Actions. No 8-byte
//! window of a password, nor the base64 `Basic` form, may appear in stdout,
//! stderr, `$GITHUB_OUTPUT` or `$GITHUB_STEP_SUMMARY`; each password is
//! announced with `::add-mask::` before the first request.

use std::process::Command;

use slipway_testbed::Registry;
use slipway_testbed::secrets::{GithubRun, Secret, distinctive, write_docker_config};

const USER: &str = "slipway-bot";

/// Runs `img-tag` with only `env` (and PATH) set, at `-vv` with
/// `RUST_LOG=trace` (every target, dependencies too), under GitHub Actions
/// with `--format github`, `stdin` piped in.
fn img_tag(args: &[&str], env: &[(&str, &str)], stdin: &str) -> GithubRun {
    let dir = tempfile::tempdir().expect("temp dir");
    GithubRun::run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_img-tag"))
            .args(args)
            .args(["-vv", "--format", "github"])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
            .envs(env.iter().copied()),
        stdin,
    )
}

/// An open registry with `app:1` and a registry behind a password.
fn registries(password: &str) -> (Registry, Registry, String) {
    let open = Registry::start();
    let locked = Registry::start_with_auth(USER, password);
    slipway_testbed::images::push_image(&open.host(), "team/app", "1", "amd64", Some("abc"));
    let source = format!("{}/team/app:1", open.host());
    (open, locked, source)
}

#[test]
fn passwords_from_stdin_env_and_docker_config_are_masked_and_never_printed() {
    let password = distinctive("Pa55");
    let secret = Secret::new("registry password", &password).with_user(USER);
    let (_open, locked, source) = registries(&password);
    let destination = format!("{}/prod/app:1", locked.host());

    // --password-stdin: promote into the locked registry.
    let run = img_tag(
        &[
            "promote",
            &source,
            &destination,
            "--username",
            USER,
            "--password-stdin",
        ],
        &[],
        &format!("{password}\n"),
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    run.assert_masked(
        std::slice::from_ref(&secret),
        Some("registry::transport: request"),
    );
    assert!(
        locked
            .log()
            .contains("\"PUT /v2/prod/app/manifests/1 HTTP/1.1\" 201"),
        "the promotion reached the locked registry:\n{}",
        locked.log()
    );

    // REGISTRY_USER / REGISTRY_PASSWORD: tag it there.
    let run = img_tag(
        &["apply", &destination, "--tag", "stable"],
        &[("REGISTRY_USER", USER), ("REGISTRY_PASSWORD", &password)],
        "",
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    run.assert_masked(
        std::slice::from_ref(&secret),
        Some("registry::transport: request"),
    );

    // A docker config's base64 `auths` entry (the config is the secret's own file).
    let docker_config = tempfile::tempdir().expect("temp dir");
    let config_dir = write_docker_config(docker_config.path(), &locked.host(), USER, &password);
    let run = img_tag(
        &["ls", &format!("{}/prod/app", locked.host())],
        &[("DOCKER_CONFIG", &config_dir)],
        "",
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(String::from_utf8_lossy(&run.output.stdout), "1\nstable\n");
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    run.assert_masked(
        std::slice::from_ref(&secret),
        Some("registry::transport: request"),
    );

    // A docker credential helper (`credsStore`), run by the protocol.
    let helper_dir = tempfile::tempdir().expect("temp dir");
    let helper = helper_dir.path().join("docker-credential-slipwaytest");
    fs_err::write(
        &helper,
        format!(
            "#!/bin/sh\nread host\n[ \"$1\" = get ] && printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{password}\"}}' \"$host\"\n"
        ),
    )
    .expect("the helper is written");
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("the helper is executable");
    fs_err::write(
        helper_dir.path().join("config.json"),
        r#"{"credsStore":"slipwaytest"}"#,
    )
    .expect("config.json is written");
    let path = format!(
        "{}:{}",
        helper_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = img_tag(
        &["ls", &format!("{}/prod/app", locked.host())],
        &[
            ("DOCKER_CONFIG", &helper_dir.path().display().to_string()),
            ("PATH", &path),
        ],
        "",
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(String::from_utf8_lossy(&run.output.stdout), "1\nstable\n");
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    run.assert_masked(
        std::slice::from_ref(&secret),
        Some("registry::transport: request"),
    );
}

#[test]
fn a_wrong_password_fails_without_printing_either_password() {
    let password = distinctive("Pa55");
    let wrong = distinctive("Wr0ng");
    let secrets = [
        Secret::new("registry password", &password).with_user(USER),
        Secret::new("wrong password", &wrong).with_user(USER),
    ];
    let (_open, locked, source) = registries(&password);
    let destination = format!("{}/prod/app:1", locked.host());

    let run = img_tag(
        &[
            "promote",
            &source,
            &destination,
            "--username",
            USER,
            "--password-stdin",
        ],
        &[],
        &wrong,
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    assert!(
        run.stderr()
            .contains(&format!("refused the credentials of `{USER}`")),
        "{}",
        run.stderr()
    );
    run.assert_no_leak(&secrets, &[]);
    run.assert_masked(&secrets[1..], Some("registry::transport: request"));

    let run = img_tag(
        &["apply", &destination, "--tag", "stable"],
        &[("REGISTRY_USER", USER), ("REGISTRY_PASSWORD", &wrong)],
        "",
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    run.assert_no_leak(&secrets, &[]);
}

#[test]
fn an_unreachable_registry_fails_without_printing_the_password() {
    let password = distinctive("Pa55");
    let secret = Secret::new("registry password", &password).with_user(USER);
    // A free port nothing listens on.
    let port = slipway_testbed::free_port();
    let run = img_tag(
        &[
            "apply",
            &format!("127.0.0.1:{port}/prod/app:1"),
            "--tag",
            "stable",
        ],
        &[("REGISTRY_USER", USER), ("REGISTRY_PASSWORD", &password)],
        "",
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    assert!(
        run.stderr().contains(&format!("127.0.0.1:{port}")),
        "the error names the registry: {}",
        run.stderr()
    );
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    run.assert_masked(
        std::slice::from_ref(&secret),
        Some("registry::transport: request"),
    );
}

/// A registry (or a proxy in front of it) whose error body quotes the
/// request's headers put `Authorization: Basic <base64 of user:password>`
/// into img-tag's error. Every form of the password is now redacted from
/// everything img-tag prints, at `-vv` and `RUST_LOG=trace`.
#[test]
fn a_registry_echoing_the_request_headers_in_its_error_leaks_nothing() {
    let password = distinctive("Pa55");
    let secret = Secret::new("registry password", &password).with_user(USER);
    let (open, locked, _source) = registries(&password);
    let image = format!("{}/prod/app:1", locked.host());
    slipway_testbed::secrets::copy_image(
        &format!("{}/team/app:1", open.host()),
        &image,
        USER,
        &password,
    );
    let front = slipway_testbed::HttpFault::start(
        locked.addr(),
        vec![
            slipway_testbed::Fault::new("/manifests/", 100, 400)
                .method("PUT")
                .authorized_only()
                .echoing_request(),
        ],
    );
    let through = format!("{}/prod/app:1", front.host());
    let run = img_tag(
        &[
            "apply",
            &through,
            "--tag",
            "stable",
            "--username",
            USER,
            "--password-stdin",
        ],
        &[],
        &format!("{password}\n"),
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    let stderr = run.stderr();
    // The echo reached the error, with its credential redacted.
    assert!(
        stderr.contains("your request was: PUT /v2/prod/app/manifests/stable HTTP/1.1"),
        "{stderr}"
    );
    assert!(stderr.contains("authorization: Basic ***"), "{stderr}");
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    assert!(
        !front.seen_matching("PUT", "/manifests/stable").is_empty(),
        "the PUT with credentials was sent"
    );
}
