//! The bad-input catalogue of `img-build` (docs/errors.md): each test is one
//! mistake users make, run through the real binary with `--dry-run` and the
//! buildah backend named (so nothing is probed or built), and asserts exit 2,
//! nothing on stdout, and a message naming the flag, key, file:line:col or
//! value and what would be valid. More cases live in `plan.rs`
//! (`bad_input_exits_2_naming_the_problem`) and `only_stale.rs`.

mod common;

use common::{THREE_IMAGES, img_build, project, run};

const REGISTRY: &str = "127.0.0.1:5999";

/// Runs `img-build --dry-run --backend buildah ARGS` in `dir`, asserts exit
/// 2, an empty stdout and `expected` in stderr; returns stderr.
#[track_caller]
fn check(dir: &std::path::Path, args: &[&str], expected: &str) -> String {
    let output = run(img_build(dir)
        .args(["--dry-run", "--backend", "buildah", "--log-dir", "logs"])
        .args(args));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?}: stdout is for data");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected `{expected}` in:\n{stderr}"
    );
    stderr
}

/// A committed project whose slipway.toml has `[images.app]` with `lines`.
fn app_with(lines: &str) -> slipway_testbed::git::GitRepo {
    let repo = project(
        REGISTRY,
        &format!("[images.app]\ntarget = \"app\"\n{lines}"),
        "FROM scratch\n",
    );
    // No dependency here: the base image has a default.
    repo.write(
        "Dockerfile",
        common::TWO_STAGES.replace("ARG BASE_IMAGE\n", "ARG BASE_IMAGE=scratch\n"),
    );
    repo.commit("a default base");
    repo
}

fn three_images() -> slipway_testbed::git::GitRepo {
    project(REGISTRY, THREE_IMAGES, "FROM scratch\nCOPY base.txt /\n")
}

#[test]
fn an_unknown_backend_lists_the_valid_ones() {
    let repo = three_images();
    let output = run(img_build(repo.path()).args(["--all", "--dry-run", "--backend", "podman"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "error: invalid value 'podman' for '--backend <BACKEND>'\n  [possible values: auto, buildx, buildkit, buildah]"
        ),
        "{stderr}"
    );
}

#[test]
fn push_and_load_conflict() {
    let repo = three_images();
    check(
        repo.path(),
        &["--all", "--push", "--load"],
        "error: the argument '--push' cannot be used with '--load'",
    );
}

#[test]
fn an_empty_name_in_only_is_refused() {
    let repo = three_images();
    check(
        repo.path(),
        &["--only", "app,,base"],
        "error: invalid `--only app,,base`: an image name is empty",
    );
}

#[test]
fn a_missing_targets_from_file_is_named() {
    let repo = three_images();
    let stderr = check(
        repo.path(),
        &["--targets-from", "changes.json"],
        "error: invalid `--targets-from`: failed to open file `",
    );
    assert!(
        stderr.contains("changes.json`: No such file or directory"),
        "{stderr}"
    );
}

#[test]
fn targets_from_naming_an_unknown_image_lists_the_images() {
    let repo = three_images();
    repo.write("changes.json", r#"{"targets": ["web"]}"#);
    let stderr = check(
        repo.path(),
        &["--targets-from", "changes.json"],
        "error: unknown image `web` in `",
    );
    assert!(
        stderr.contains("slipway.toml` (images, nearest first: "),
        "{stderr}"
    );
}

#[test]
fn a_bad_flavor_value_lists_the_valid_ones() {
    let repo = three_images();
    check(
        repo.path(),
        &["--all", "--flavor", "latest=maybe"],
        "error: invalid `--flavor`: invalid `latest` value `maybe` in `latest=maybe`; expected `auto`, `true`, `false` or `default-branch`",
    );
}

#[test]
fn a_bad_tag_rule_attribute_value_lists_the_valid_ones() {
    let repo = three_images();
    check(
        repo.path(),
        &["--all", "--tag", "type=sha,format=huge"],
        "error: invalid `--tag`: invalid `format` value `huge` in `type=sha,format=huge`; expected `short` or `long`",
    );
}

#[test]
fn an_unknown_template_expression_lists_the_valid_names() {
    let repo = three_images();
    check(
        repo.path(),
        &["--all", "--tag", "type=raw,value={{branchname}}"],
        "unknown expression `{{branchname}}`; valid names: branch, tag, sha, base_ref, is_default_branch, is_not_default_branch, date, commit_date",
    );
}

#[test]
fn rules_giving_no_tag_say_which_rule_would() {
    let repo = three_images();
    check(
        repo.path(),
        &[
            "--all",
            "--tag",
            "type=ref,event=tag",
            "--ref",
            "refs/heads/main",
        ],
        "error: the tag rules give image `base` no tag for ref `refs/heads/main`: add a rule that always applies, e.g. `--tag type=sha`",
    );
}

#[test]
fn a_missing_dockerfile_names_the_file_and_the_key() {
    let repo = project(
        REGISTRY,
        "[images.app]\ndockerfile = \"app.Dockerfile\"\n",
        "FROM scratch\n",
    );
    let stderr = check(
        repo.path(),
        &["--all"],
        "error: the Dockerfile of image `app` does not exist: `",
    );
    assert!(
        stderr.contains("app.Dockerfile` (set `dockerfile` in [images.app] at "),
        "{stderr}"
    );
}

#[test]
fn a_platform_without_os_shows_the_form() {
    let repo = app_with("platforms = [\"amd64\"]\n");
    check(
        repo.path(),
        &["--all"],
        "invalid platform `amd64`: expected `os/arch` or `os/arch/variant` in lowercase letters, digits and `_`, e.g. `linux/amd64` or `linux/arm64/v8`",
    );
}

#[test]
fn build_args_as_an_array_shows_the_table_form() {
    let repo = app_with("build_args = [\"RUST_VERSION=1.95\"]\n");
    check(
        repo.path(),
        &["--all"],
        "expected a table of strings like { RUST_VERSION = \"1.95\" }, found an array",
    );
}

#[test]
fn a_secret_without_key_value_shows_both_forms() {
    let repo = app_with("secrets = [\"npm\"]\n");
    check(
        repo.path(),
        &["--all"],
        "invalid build secret `npm`: `npm` is not `key=value`; expected `id=<id>,env=<VARIABLE>` or `id=<id>,src=<file>`, e.g. `id=npm,env=NPM_TOKEN`",
    );
}

#[test]
fn a_base_image_arg_left_empty_names_the_dependency_and_the_fixes() {
    let repo = three_images();
    check(
        repo.path(),
        &["--only", "app"],
        "error: image `app` cannot be built without `base`: `FROM ${BASE_IMAGE} AS app` at `Dockerfile:2` uses `ARG BASE_IMAGE`, which has no default and is set to `base`'s reference only when `base` is built in the same run; build it too (`--only base,app`), or give it a default (`ARG BASE_IMAGE=…` in `Dockerfile`) or a value (`build_args = { BASE_IMAGE = \"…\" }` in [images.app])",
    );
    // A value in slipway.toml is enough.
    let repo = project(
        REGISTRY,
        &THREE_IMAGES.replace(
            "[images.app]\n",
            "[images.app]\nbuild_args = { BASE_IMAGE = \"127.0.0.1:5999/base/busybox:1\" }\n",
        ),
        "FROM scratch\n",
    );
    let output =
        run(img_build(repo.path()).args(["--dry-run", "--backend", "buildah", "--only", "app"]));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_arg_in_from_without_any_value_says_how_to_give_one() {
    let repo = project(
        REGISTRY,
        "[images.tool]\ndockerfile = \"base.Dockerfile\"\n",
        "ARG RUNTIME\nFROM $RUNTIME\n",
    );
    check(
        repo.path(),
        &["--all"],
        "error: image `tool` has no base image: `FROM $RUNTIME` at `base.Dockerfile:2` uses `ARG RUNTIME`, which has no default and no value: give it a default (`ARG RUNTIME=…` in `base.Dockerfile`) or a value (`build_args = { RUNTIME = \"…\" }` in [images.tool])",
    );
}

#[test]
fn a_misspelt_tag_rule_type_in_config_gets_the_nearest_type() {
    let repo = project(REGISTRY, "[images.app]\n", "FROM scratch\n");
    repo.write(
        "slipway.toml",
        format!(
            "[project]\nregistry = \"{REGISTRY}/demo\"\n\n[images.app]\n\n[tags]\nrules = [\"type=semvr\"]\n"
        ),
    );
    check(
        repo.path(),
        &["--all"],
        "slipway.toml:7:10: unknown tag rule type `semvr` in `type=semvr` — did you mean `semver`?; valid types: ",
    );
}

#[test]
fn an_uppercase_repository_in_config_is_refused() {
    let repo = app_with("repository = \"127.0.0.1:5999/Demo/App\"\n");
    check(
        repo.path(),
        &["--all"],
        "error: invalid repository `127.0.0.1:5999/Demo/App` for [images.app] at ",
    );
}

#[test]
fn a_label_that_is_not_a_string_names_the_label() {
    let repo = app_with("labels = { \"com.example.tier\" = 1 }\n");
    check(
        repo.path(),
        &["--all"],
        "expected a table of strings like { \"com.example.team\" = \"web\" }, found an integer for `com.example.tier`",
    );
}

#[test]
fn an_endless_input_file_is_refused_naming_it_and_the_limit() {
    let repo = three_images();
    check(
        repo.path(),
        &["--targets-from", "/dev/zero"],
        "error: invalid `--targets-from`: `/dev/zero` is larger than 16 MiB, the most Slipway reads from one input; is it the right file?",
    );
    check(
        repo.path(),
        &["--config", "/dev/zero", "--all"],
        "`/dev/zero` is larger than 16 MiB, the most Slipway reads from one input; is it the right file?",
    );
}

/// A Dockerfile, its `.dockerignore` or a secret's `src=` file past 16 MiB
/// is refused before anything runs (exit 2), naming the file and the
/// limit; before, each was read whole into memory, whatever its size.
#[test]
fn a_huge_dockerfile_ignore_file_or_secret_file_is_refused_naming_it_and_the_limit() {
    let repo = app_with("secrets = [\"id=npm,src=npmrc\"]\n");
    let huge = |name: &str| {
        fs_err::File::create(repo.path().join(name))
            .unwrap()
            .set_len(16 * 1024 * 1024 + 1)
            .unwrap();
    };
    let limit =
        "is larger than 16 MiB, the most Slipway reads from one input; is it the right file?";
    huge("npmrc");
    let stderr = check(
        repo.path(),
        &["--all"],
        "error: cannot read secret `npm` of image `app`: `",
    );
    assert!(stderr.contains(&format!("npmrc` {limit}")), "{stderr}");

    fs_err::write(repo.path().join("npmrc"), "token").unwrap();
    huge("Dockerfile.dockerignore");
    let stderr = check(
        repo.path(),
        &["--all"],
        "error: cannot read the Dockerfile of image `app`: cannot read the Dockerfile's .dockerignore: `",
    );
    assert!(
        stderr.contains(&format!("Dockerfile.dockerignore` {limit}")),
        "{stderr}"
    );

    fs_err::remove_file(repo.path().join("Dockerfile.dockerignore")).unwrap();
    huge("Dockerfile");
    let stderr = check(repo.path(), &["--all"], "error: cannot read the Dockerfile");
    assert!(
        stderr.contains(&format!("/Dockerfile` {limit}")),
        "{stderr}"
    );
}

/// A build secret of 1 to 3 bytes (`env=` or `src=`) is refused at plan
/// time (exit 2), naming the secret and never echoing it: it could not be
/// redacted from build logs and errors without garbling them
/// (docs/errors.md, "Short secrets").
#[test]
fn a_build_secret_shorter_than_4_bytes_is_refused() {
    let why = "byte(s) long: a secret shorter than 4 bytes cannot be redacted from output without garbling it (and is guessed at once); use a longer one";
    let repo = app_with("secrets = [\"id=npm,env=SLIPWAY_TEST_NPM\"]\n");
    let output = run(img_build(repo.path())
        .args([
            "--dry-run",
            "--backend",
            "buildah",
            "--log-dir",
            "logs",
            "--all",
        ])
        .env("SLIPWAY_TEST_NPM", "Zq"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: secret `npm` of image `app` ($SLIPWAY_TEST_NPM) is 2 {why}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("Zq"), "{stderr}");

    let repo = app_with("secrets = [\"id=npm,src=npmrc\"]\n");
    // With a `-`: the temp dir's random name (letters and digits) printed
    // in the message can hold `Zq` by chance, never `Z-7`.
    fs_err::write(repo.path().join("npmrc"), "Z-7\n").unwrap();
    let stderr = check(
        repo.path(),
        &["--all"],
        "error: secret `npm` of image `app` (`",
    );
    assert!(stderr.contains(&format!("npmrc`) is 3 {why}")), "{stderr}");
    assert!(!stderr.contains("Z-7"), "{stderr}");
}
