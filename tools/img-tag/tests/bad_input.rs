//! The bad-input catalogue of `img-tag` (docs/errors.md): each test is one
//! mistake users make, run through the real binary, and asserts exit 2,
//! nothing on stdout, and a message naming the flag, key, file:line:col or
//! value and what would be valid. Only the last test starts a registry, to
//! show that bad input moves no tag. More cases: `compute.rs`
//! (`bad_input_exits_2_naming_the_flag`) and `next_version.rs`.

mod common;

use common::{img_tag, stderr, stdout};

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const IMAGE: &str = "127.0.0.1:1/team/app:sha-0123456";

/// Runs `img-tag ARGS` in `dir`, asserts exit 2, an empty stdout and
/// `expected` in stderr; returns stderr.
#[track_caller]
fn check_in(dir: &std::path::Path, args: &[&str], expected: &str) -> String {
    let output = img_tag(dir, args, &[], None);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stdout(&output), "", "{args:?}: stdout is for data");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected `{expected}` in:\n{stderr}"
    );
    stderr
}

#[track_caller]
fn check(args: &[&str], expected: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    check_in(dir.path(), args, expected)
}

/// Runs `compute` with slipway.toml holding `[tags]` lines `tags`.
#[track_caller]
fn check_tags_config(tags: &str, expected: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    fs_err::write(
        dir.path().join("slipway.toml"),
        format!("[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[tags]\n{tags}\n"),
    )
    .expect("slipway.toml");
    check_in(
        dir.path(),
        &["compute", "--config", "slipway.toml", "--sha", SHA],
        expected,
    );
}

#[test]
fn an_image_line_that_is_no_repository_is_refused() {
    check(
        &["compute", "--sha", SHA, "--image", "my app"],
        "error: invalid `--image` `my app`: invalid path component `my app`",
    );
    check(
        &[
            "compute",
            "--sha",
            SHA,
            "--image",
            "name=ghcr.io/acme/app:v1",
        ],
        "error: invalid `--image` `ghcr.io/acme/app:v1`: ",
    );
}

#[test]
fn an_unknown_semver_expression_lists_the_valid_names() {
    check(
        &[
            "compute",
            "--sha",
            SHA,
            "--ref",
            "refs/tags/v1.2.3",
            "--tag",
            "type=semver,pattern={{majr}}.{{minor}}",
        ],
        "error: invalid expression in `{{majr}}.{{minor}}`: unknown expression `{{majr}}`; valid names: version, major, minor, patch, raw",
    );
}

#[test]
fn a_priority_that_is_not_a_number_says_so() {
    check(
        &["compute", "--sha", SHA, "--tag", "type=sha,priority=high"],
        "error: invalid `--tag`: invalid `priority` value `high` in `type=sha,priority=high`; expected an integer such as `600`",
    );
}

#[test]
fn an_enable_that_is_not_a_boolean_says_so() {
    check(
        &["compute", "--sha", SHA, "--tag", "type=sha,enable=yes"],
        "invalid `enable` value `yes` in `type=sha,enable=yes`; expected an expression that gives `true` or `false`",
    );
}

#[test]
fn a_pr_number_that_is_not_a_number_names_the_flag() {
    check(
        &["compute", "--sha", SHA, "--pr-number", "#42"],
        "error: invalid value '#42' for '--pr-number <N>'",
    );
}

#[test]
fn a_bad_flavor_in_config_gives_file_line_and_column() {
    check_tags_config(
        "flavor = [\"latest=maybe\"]",
        "slipway.toml:5:11: invalid `latest` value `maybe` in `latest=maybe`; expected `auto`, `true`, `false` or `default-branch`",
    );
}

#[test]
fn a_misspelt_rule_attribute_in_config_gets_the_nearest_attribute() {
    check_tags_config(
        "rules = [\"type=sha,prefx=sha-\"]",
        "slipway.toml:5:10: unknown tag rule attribute `prefx` in `type=sha,prefx=sha-` — did you mean `prefix`?",
    );
}

#[test]
fn a_tag_with_a_colon_states_the_tag_grammar() {
    check(
        &["apply", IMAGE, "--tag", "app:v1"],
        "error: invalid value 'app:v1' for '--tag <TAG>': invalid tag `app:v1`: a tag starts with a letter, digit or `_` and has at most 128 of `A-Z a-z 0-9 _ . -`",
    );
}

#[test]
fn a_tag_longer_than_128_characters_is_refused() {
    let long = "v".repeat(129);
    check(
        &["apply", IMAGE, "--tag", &long],
        &format!(
            "invalid tag `{long}`: a tag starts with a letter, digit or `_` and has at most 128"
        ),
    );
}

#[test]
fn an_image_given_as_a_url_names_the_bad_registry() {
    check(
        &["apply", "http://127.0.0.1:5000/team/app:v1", "--tag", "v2"],
        "invalid registry `http:` in `http://127.0.0.1:5000/team/app:v1`: expected a host name, an IPv4 address or an IPv6 address in brackets, optionally followed by `:port`",
    );
}

#[test]
fn a_registry_port_out_of_range_is_refused_at_parse() {
    // It reached the network and failed with "answered without a valid URL", exit 3.
    for args in [
        &["resolve", "127.0.0.1:99999/a:b"][..],
        &["apply", "127.0.0.1:99999/a:b", "--tag", "v2"],
        &["promote", "127.0.0.1:5000/a:b", "127.0.0.1:0/a"],
    ] {
        check(args, "a port is a number from 1 to 65535");
    }
    check(
        &["resolve", "127.0.0.1:99999/a:b"],
        "invalid port `99999` of registry `127.0.0.1:99999` in `127.0.0.1:99999/a:b`: a port is a number from 1 to 65535, e.g. `registry.example.com:5000`",
    );
}

#[test]
fn a_short_digest_states_the_digest_form() {
    check(
        &[
            "apply",
            "127.0.0.1:5000/team/app@sha256:abc123",
            "--tag",
            "v2",
        ],
        "invalid digest `sha256:abc123` in `127.0.0.1:5000/team/app@sha256:abc123`: expected `sha256:` followed by 64 lowercase hex digits",
    );
}

#[test]
fn apply_without_a_tag_computes_them_and_says_when_none_comes_out() {
    // No CI, no git: no ref, so metadata-action's default rules yield nothing.
    check(
        &["apply", IMAGE],
        "error: no rule yields a tag for ref `` (event `push`): nothing to apply; give --tag, or rules that match (--rule, slipway.toml [tags] rules)",
    );
    check(
        &["apply", IMAGE, "--tag", "v1", "--computed"],
        "error: the argument '--tag <TAG>' cannot be used with '--computed'",
    );
}

#[test]
fn a_username_without_password_stdin_is_refused() {
    check(
        &["apply", IMAGE, "--tag", "v2", "--username", "ci"],
        "error: the following required arguments were not provided:\n  --password-stdin",
    );
}

#[test]
fn an_uppercase_promote_destination_is_refused() {
    check(
        &["promote", IMAGE, "127.0.0.1:1/Team/App"],
        "error: invalid value '127.0.0.1:1/Team/App' for '<DESTINATION>': repository `127.0.0.1:1/Team/App` must be lowercase",
    );
}

#[test]
fn an_unknown_bump_lists_the_valid_ones() {
    check(
        &["next-version", "--bump", "huge"],
        "error: invalid value 'huge' for '--bump <BUMP>'\n  [possible values: none, patch, minor, major]",
    );
}

#[test]
fn ls_of_a_tagged_reference_says_to_drop_the_tag() {
    check(
        &["ls", "127.0.0.1:5000/team/app:v1"],
        "`127.0.0.1:5000/team/app:v1` is not a repository: it has a `:tag` or `@digest` part; write `[registry/]path`, e.g. `127.0.0.1:5000/demo` or `ghcr.io/acme/app`",
    );
}

#[test]
fn a_bad_tag_among_good_ones_moves_no_tag() {
    let registry = slipway_testbed::Registry::start();
    let host = registry.host();
    slipway_testbed::images::push_image(&host, "team/app", "sha-0123456", "amd64", None);
    let image = format!("{host}/team/app:sha-0123456");
    check(
        &[
            "apply", &image, "--tag", "v1.2.3", "--tag", "v1.2", "--tag", "latest!",
        ],
        "invalid tag `latest!`",
    );
    let tags = std::process::Command::new(slipway_testbed::require("skopeo", "skopeo"))
        .args([
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{host}/team/app"),
        ])
        .output()
        .expect("skopeo runs");
    assert!(tags.status.success(), "{tags:?}");
    let tags: serde_json::Value = serde_json::from_slice(&tags.stdout).expect("skopeo JSON");
    assert_eq!(tags["Tags"], serde_json::json!(["sha-0123456"]));
}

/// A registry password of 1 to 3 bytes, from any source (`--password-stdin`,
/// `REGISTRY_PASSWORD`, a docker config `auths` entry, a credential helper),
/// is refused before any request (exit 2), naming the source and never
/// echoing it: it could not be redacted from the output without garbling
/// it (docs/errors.md, "Short secrets").
#[test]
fn a_registry_password_shorter_than_4_bytes_is_refused_naming_its_source() {
    use std::os::unix::fs::PermissionsExt as _;
    let why = "byte(s) long: a secret shorter than 4 bytes cannot be redacted from output without garbling it (and is guessed at once); use a longer one";
    let dir = tempfile::tempdir().expect("temp dir");
    let expect = |output: slipway_testbed::cmd::Outcome, expected: &str| {
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{text}");
        assert_eq!(stdout(&output), "");
        assert!(text.contains(expected), "expected `{expected}` in:\n{text}");
        assert!(!text.contains("Zq"), "{text}");
    };
    let resolve = ["resolve", IMAGE];
    expect(
        img_tag(
            dir.path(),
            &["resolve", IMAGE, "--username", "bot", "--password-stdin"],
            &[],
            Some("Zq\n"),
        ),
        &format!("the password of `bot` given with `--password-stdin` is 2 {why}"),
    );
    expect(
        img_tag(
            dir.path(),
            &resolve,
            &[("REGISTRY_USER", "bot"), ("REGISTRY_PASSWORD", "Zq7")],
            None,
        ),
        &format!("the value of `REGISTRY_PASSWORD` is 3 {why}"),
    );
    // `Ym90Olpx` is base64 of `bot:Zq`.
    let config = dir.path().join("config.json");
    fs_err::write(&config, r#"{"auths":{"127.0.0.1:1":{"auth":"Ym90Olpx"}}}"#).unwrap();
    let config_dir = dir.path().display().to_string();
    expect(
        img_tag(
            dir.path(),
            &resolve,
            &[("DOCKER_CONFIG", &config_dir)],
            None,
        ),
        &format!(
            "the password of `127.0.0.1:1` in `{}` is 2 {why}",
            config.display()
        ),
    );
    let helper = dir.path().join("docker-credential-short");
    fs_err::write(
        &helper,
        "#!/bin/sh\nread host\nprintf '{\"Username\":\"bot\",\"Secret\":\"Z\"}'\n",
    )
    .unwrap();
    fs_err::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    fs_err::write(&config, r#"{"credsStore":"short"}"#).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    expect(
        img_tag(
            dir.path(),
            &resolve,
            &[("DOCKER_CONFIG", &config_dir), ("PATH", &path)],
            None,
        ),
        &format!("the secret `docker-credential-short` answered for `127.0.0.1:1` is 1 {why}"),
    );
}

#[test]
fn a_ci_variable_of_the_wrong_form_names_the_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        (
            [("BUILDKITE", "true"), ("BUILDKITE_PULL_REQUEST", "yes")],
            "error: BUILDKITE_PULL_REQUEST `yes` is not a number or `false`",
        ),
        (
            [
                ("JENKINS_URL", "https://ci.example.com/"),
                ("CHANGE_ID", "PR-7"),
            ],
            "error: CHANGE_ID `PR-7` is not a number",
        ),
        (
            [
                ("CIRCLECI", "true"),
                ("CIRCLE_PULL_REQUEST", "https://github.com/o/r/pulls"),
            ],
            "error: CIRCLE_PULL_REQUEST `https://github.com/o/r/pulls` is not a pull request URL ending in its number",
        ),
    ];
    for (env, expected) in cases {
        let output = img_tag(dir.path(), &["compute", "--sha", SHA], &env, None);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{env:?}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "", "{env:?}");
        assert_eq!(stderr(&output), format!("{expected}\n"), "{env:?}");
    }
}

#[test]
fn a_referrers_artifact_type_that_is_no_media_type_states_the_form() {
    check(
        &["referrers", IMAGE, "--artifact-type", "spdx json"],
        "error: invalid value 'spdx json' for '--artifact-type <TYPE>': `spdx json` is not a media type: expected `type/subtype` (letters, digits and `!#$&^_.+-`), e.g. `application/spdx+json`",
    );
}

#[test]
fn referrers_of_a_short_digest_states_the_digest_form() {
    check(
        &["referrers", "127.0.0.1:5000/team/app@sha256:abc123"],
        "invalid digest `sha256:abc123` in `127.0.0.1:5000/team/app@sha256:abc123`: expected `sha256:` followed by 64 lowercase hex digits",
    );
}

/// A promote side's password file or variable holds the password alone: a
/// file of several lines (a private key, a config given by mistake) or an
/// empty variable is refused naming the flag and the source, and its
/// content is never shown.
#[test]
fn a_promote_sides_password_is_one_line_and_not_empty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("dest-pw");
    fs_err::write(
        &file,
        "-----BEGIN KEY-----\nQmFkS2V5Qnl0ZXM\n-----END KEY-----\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let promote = ["promote", IMAGE, "127.0.0.1:1/team/prod:1"];
    let stderr = check_in(
        dir.path(),
        &[
            &promote[..],
            &["--dest-username", "bob", "--dest-password-file", &file],
        ]
        .concat(),
        &format!(
            "error: the password of `--dest-username bob` from `{file}` (`--dest-password-file`) has 3 lines: it must hold the password (or token) alone, on one line\n"
        ),
    );
    assert!(!stderr.contains("QmFkS2V5"), "{stderr}");
    let output = img_tag(
        dir.path(),
        &[
            &promote[..],
            &["--src-username", "alice", "--src-password-env", "SRC_PW"],
        ]
        .concat(),
        &[("SRC_PW", "")],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        common::stderr(&output),
        "error: the password of `--src-username alice` from `$SRC_PW` (`--src-password-env`) is empty\n"
    );
}

/// `REGISTRY_PASSWORD` that expands to "" (a CI secret missing in this
/// run) is bad input named as such, exit 2, not an empty password sent to
/// the registry and a 401 that blames the credentials.
#[test]
fn an_empty_registry_password_variable_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = img_tag(
        dir.path(),
        &["resolve", IMAGE],
        &[("REGISTRY_USER", "ci"), ("REGISTRY_PASSWORD", "")],
        None,
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "error: cannot find credentials for `127.0.0.1:1`\n  caused by: `REGISTRY_USER` is set but `REGISTRY_PASSWORD` is not (or is empty): set both, or neither\n"
    );
}

/// A password typed where `--src-password-env` wants a variable's name, or
/// `--dest-password-file` a path, is refused (exit 2) without being echoed.
#[test]
fn a_password_given_in_place_of_a_name_or_path_is_not_echoed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let promote = ["promote", IMAGE, "127.0.0.1:1/team/prod:1"];
    let secret = "s3cret-Pw!9";
    let stderr = check_in(
        dir.path(),
        &[
            &promote[..],
            &["--src-username", "alice", "--src-password-env", secret],
        ]
        .concat(),
        "error: `--src-password-env` takes the name of an environment variable (letters, digits and `_`, not starting with a digit), e.g. `SRC_REGISTRY_PASSWORD`, not the password itself; the value given is not shown: it may be a secret\n",
    );
    assert!(!stderr.contains(secret), "{stderr}");
    let stderr = check_in(
        dir.path(),
        &[
            &promote[..],
            &["--dest-username", "bob", "--dest-password-file", secret],
        ]
        .concat(),
        "error: `--dest-password-file`: there is no file at the path given (not shown: it may be the password itself); give the path of a file holding the password of `bob`\n",
    );
    assert!(!stderr.contains(secret), "{stderr}");
}

/// A token that looks like a variable's name (a GitHub PAT, `Hunter2pass`)
/// given to `--dest-password-env`, or a long token (a JWT) or `file/…`
/// given to `--dest-password-file`, fails its lookup without being echoed:
/// the error names the flag, not the value.
#[test]
fn a_secret_that_fails_as_a_name_or_path_is_not_echoed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let promote = ["promote", IMAGE, "127.0.0.1:1/team/prod:1"];
    for token in ["ghp_16C7e42F292c6912E7710c838347Ae178B4a", "Hunter2pass"] {
        let stderr = check_in(
            dir.path(),
            &[
                &promote[..],
                &["--dest-username", "bob", "--dest-password-env", token],
            ]
            .concat(),
            "error: the environment variable named by `--dest-password-env` is not set (its name is not shown: it may be the password itself); set it to the password of `bob`\n",
        );
        assert!(!stderr.contains(token), "{stderr}");
    }
    // A 1.5 KB JWT-like token with no `/`: the path is too long for the system.
    let jwt = format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", "QUJD".repeat(370));
    let stderr = check_in(
        dir.path(),
        &[
            &promote[..],
            &["--dest-username", "bob", "--dest-password-file", &jwt],
        ]
        .concat(),
        "error: `--dest-password-file`: no file can be opened at the path given (invalid filename; the path is not shown: it may be the password itself); give the path of a file holding the password of `bob`\n",
    );
    assert!(!stderr.contains("eyJhbGci"), "{stderr}");
    // Under an existing file: ENOTDIR.
    let file = dir.path().join("plain");
    fs_err::write(&file, "x").expect("write file");
    let under_file = format!("{}/Hunter2pass", file.display());
    let stderr = check_in(
        dir.path(),
        &[
            &promote[..],
            &[
                "--dest-username",
                "bob",
                "--dest-password-file",
                &under_file,
            ],
        ]
        .concat(),
        "error: `--dest-password-file`: no file can be opened at the path given (not a directory; the path is not shown: it may be the password itself); give the path of a file holding the password of `bob`\n",
    );
    assert!(!stderr.contains("Hunter2pass"), "{stderr}");
}
