//! Secrets never leak from `changed-paths`: the registry password
//! `--base-from-image` reads a label with (a registry that needs it), and a
//! CI token in the environment (`GITHUB_TOKEN`), which changed-paths never
//! reads. At `-vv` with `RUST_LOG=trace` under GitHub Actions, with the
//! right password, a wrong one and the registry gone, no 8-byte window of
//! them (nor the base64 `Basic` form) appears in stdout, stderr,
//! `$GITHUB_OUTPUT` or `$GITHUB_STEP_SUMMARY`; the password is masked
//! before the first request.

use std::path::Path;

use slipway_testbed::Registry;
use slipway_testbed::cmd::Cmd;
use slipway_testbed::git::GitRepo;
use slipway_testbed::secrets::{GithubRun, Secret, copy_image, distinctive};

const BIN: &str = env!("CARGO_BIN_EXE_changed-paths");
const USER: &str = "paths-bot";
const FIRST_REQUEST: &str = "registry::transport: request";

/// Runs the binary in `dir` at `-vv` under GitHub Actions with only `env`
/// (and PATH, HOME) set.
fn changed_paths(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> GithubRun {
    GithubRun::run(
        Cmd::new(BIN)
            .current_dir(dir)
            .args(args)
            .args(["-vv", "--format", "github"])
            .home(dir)
            .env("DOCKER_CONFIG", dir.join(".no-docker-config"))
            .envs(env.iter().copied()),
    )
}

#[test]
fn the_registry_password_and_a_ci_token_never_appear() {
    let password = distinctive("Pa55");
    let wrong = distinctive("Wr0ng");
    let token = distinctive("T0k");
    let secrets = [
        Secret::new("registry password", &password).with_user(USER),
        Secret::new("wrong registry password", &wrong).with_user(USER),
        Secret::new("CI token", &token),
    ];
    let repo = GitRepo::new();
    repo.write("app/main.js", "1\n");
    let first = repo.commit("first");
    repo.write("app/main.js", "2\n");
    repo.commit("app");

    let open = Registry::start();
    let locked = Registry::start_with_auth(USER, &password);
    slipway_testbed::images::push_image(&open.host(), "demo/app", "main", "amd64", Some(&first));
    let image = format!("{}/demo/app:main", locked.host());
    copy_image(
        &format!("{}/demo/app:main", open.host()),
        &image,
        USER,
        &password,
    );
    let args = [
        "--base-from-image",
        image.as_str(),
        "--filter",
        "app=app/**",
    ];

    let run = changed_paths(
        repo.path(),
        &args,
        &[
            ("REGISTRY_USER", USER),
            ("REGISTRY_PASSWORD", &password),
            ("GITHUB_TOKEN", &token),
        ],
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let outputs = fs_err::read_to_string(run.files.path().join("github_output"))
        .expect("changed-paths writes $GITHUB_OUTPUT");
    assert!(
        outputs.lines().any(|line| line == "app=true"),
        "the label was read through the password: {outputs}"
    );
    run.assert_no_leak(&secrets, &[]);
    run.assert_masked(&secrets[..1], Some(FIRST_REQUEST));
    assert!(
        !run.stderr().contains(&format!("::add-mask::{token}")),
        "the token is not read, so not masked either"
    );

    // A wrong password: the registry refuses it.
    let run = changed_paths(
        repo.path(),
        &args,
        &[
            ("REGISTRY_USER", USER),
            ("REGISTRY_PASSWORD", &wrong),
            ("GITHUB_TOKEN", &token),
        ],
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    assert!(
        run.stderr()
            .contains(&format!("refused the credentials of `{USER}`")),
        "{}",
        run.stderr()
    );
    run.assert_no_leak(&secrets, &[]);
    run.assert_masked(&secrets[1..2], Some(FIRST_REQUEST));

    // The registry is gone.
    drop(locked);
    let run = changed_paths(
        repo.path(),
        &args,
        &[
            ("REGISTRY_USER", USER),
            ("REGISTRY_PASSWORD", &password),
            ("GITHUB_TOKEN", &token),
        ],
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    run.assert_no_leak(&secrets, &[]);
}
