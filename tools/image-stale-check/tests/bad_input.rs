//! The bad-input catalogue of `image-stale-check` (docs/errors.md): each
//! test is one mistake users make, run through the real binary, and asserts
//! exit 2, nothing on stdout, and a message naming the flag, key,
//! file:line:col or value and what would be valid. The project's registry is
//! `127.0.0.1:1`, where nothing listens: a run that looked anything up would
//! report it unchecked and exit 3, so exit 2 also shows the mistake was
//! caught first. More cases: `cli.rs` (`an_unknown_format_is_a_usage_error`).

mod common;

use std::path::Path;

use common::{project, run_in};

const REGISTRY: &str = "127.0.0.1:1";

/// Runs the binary in `dir` with `args`, asserts exit 2, an empty stdout
/// and `expected` in stderr; returns stderr.
#[track_caller]
fn check_in(dir: &Path, args: &[&str], expected: &str) -> String {
    let run = run_in(dir, args);
    assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    assert!(run.stdout.is_empty(), "{args:?}: stdout is for data");
    assert!(
        run.stderr.contains(expected),
        "{args:?}: expected `{expected}` in:\n{}",
        run.stderr
    );
    run.stderr
}

/// [`check_in`] in a fresh project with images base, app and worker.
#[track_caller]
fn check(args: &[&str], expected: &str) -> String {
    let repo = project(REGISTRY);
    check_in(repo.path(), args, expected)
}

/// [`check_in`] in a fresh project whose slipway.toml is `toml`.
#[track_caller]
fn check_config(toml: &str, expected: &str) -> String {
    let repo = project(REGISTRY);
    repo.write("slipway.toml", toml);
    check_in(repo.path(), &[], expected)
}

#[test]
fn a_misspelt_image_gets_the_nearest_image() {
    let stderr = check(&["--image", "ap"], "error: unknown image `ap` in `");
    assert!(
        stderr.contains("slipway.toml` — did you mean `app`? (images, nearest first: app, "),
        "{stderr}"
    );
}

#[test]
fn an_unknown_revision_names_the_flag() {
    check(
        &["--rev", "HEAD~5"],
        "error: `--rev HEAD~5`: cannot resolve `HEAD~5` in repository `",
    );
}

#[test]
fn a_tag_with_a_space_states_the_tag_grammar() {
    check(
        &["--tag", "release 1"],
        "error: `--tag release 1`: invalid tag `release 1`: a tag starts with a letter, digit or `_` and has at most 128 of `A-Z a-z 0-9 _ . -`",
    );
}

#[test]
fn a_timeout_without_a_unit_is_refused() {
    check(
        &["--timeout", "5"],
        "error: invalid value '5' for '--timeout <DURATION>': time unit needed, for example 5sec or 5ms",
    );
}

#[test]
fn a_timeout_beyond_a_week_is_refused() {
    check(
        &["--timeout", "584542046090y"],
        "error: invalid value '584542046090y' for '--timeout <DURATION>': `584542046090y` is out \
         of range: give a duration from `0s` to `1week` (7 days)",
    );
}

#[test]
fn a_zero_timeout_is_refused() {
    check(
        &["--timeout", "0s"],
        "error: `--timeout 0s` leaves no time for a lookup: give a duration above zero, e.g. `2s`",
    );
}

#[test]
fn strict_without_hook_says_what_it_changes() {
    check(
        &["--strict"],
        "error: `--strict` only changes `--hook` mode (without `--hook` a stale image always exits 1)",
    );
}

#[test]
fn an_uppercase_ref_is_not_an_image_reference() {
    let stderr = check(
        &["127.0.0.1:1/Demo/App:main"],
        "error: `127.0.0.1:1/Demo/App:main` is not an image reference",
    );
    assert!(
        stderr.contains("caused by: repository `127.0.0.1:1/Demo/App` must be lowercase"),
        "{stderr}"
    );
}

#[test]
fn a_short_digest_states_the_digest_form() {
    check(
        &["127.0.0.1:1/demo/app@sha256:abc"],
        "caused by: invalid digest `sha256:abc` in `127.0.0.1:1/demo/app@sha256:abc`: expected `sha256:` followed by 64 lowercase hex digits",
    );
}

#[test]
fn image_names_and_refs_together_are_refused() {
    check(
        &["--image", "app", "127.0.0.1:1/demo/app:main"],
        "error: `--image` and `--tag` choose among slipway.toml's images; give them or REFs, not both",
    );
}

#[test]
fn no_config_and_no_ref_says_what_to_give() {
    let dir = slipway_testbed::git::GitRepo::new();
    dir.write("README.md", "no slipway.toml here\n");
    dir.commit("initial");
    check_in(
        dir.path(),
        &[],
        "error: no slipway.toml found and no REF given: run in a project, pass --config, or name images like `registry.example.com/app:main`",
    );
}

#[test]
fn a_misspelt_image_key_lists_the_valid_keys() {
    check_config(
        &format!(
            "[project]\nregistry = \"{REGISTRY}/demo\"\n\n[images.app]\npath = [\"app/**\"]\n"
        ),
        "slipway.toml:5:1 — did you mean `paths`?",
    );
}

#[test]
fn a_default_branch_that_is_not_a_string_gives_file_line_and_column() {
    check_config(
        &format!("[project]\nregistry = \"{REGISTRY}/demo\"\ndefault_branch = 1\n"),
        "slipway.toml:3:18: expected a string, found an integer",
    );
}

#[test]
fn install_hook_outside_a_git_repository_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    check_in(
        dir.path(),
        &["install-hook"],
        "is not inside a git repository",
    );
}

#[test]
fn an_endless_config_file_is_refused_naming_it_and_the_limit() {
    check(
        &["--config", "/dev/zero"],
        "`/dev/zero` is larger than 16 MiB, the most Slipway reads from one input; is it the right file?",
    );
}

#[test]
fn a_slipway_toml_symlink_loop_is_not_taken_for_no_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::symlink("slipway.toml", dir.path().join("slipway.toml")).unwrap();
    let stderr = check_in(dir.path(), &[], "error: cannot read config `");
    assert!(
        stderr.contains("Too many levels of symbolic links"),
        "{stderr}"
    );
    assert!(!stderr.contains("no slipway.toml found"), "{stderr}");
}
