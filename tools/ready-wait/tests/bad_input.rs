//! The bad-input catalogue of `ready-wait` (docs/errors.md): each test is
//! one mistake users make, run through the real binary, and asserts exit 2,
//! nothing on stdout, and a message naming the flag, key, file:line:col or
//! value and what would be valid. None starts a server: bad input is refused
//! before the first attempt. More cases: `cli.rs`
//! (`bad_input_names_the_flag_and_exits_2`), `config.rs`, `tls.rs`.

mod common;

use common::{ready_wait, stderr};

/// Runs `ready-wait ARGS`, asserts exit 2, an empty stdout, no attempt made
/// and `expected` in stderr.
#[track_caller]
fn check(args: &[&str], expected: &str) {
    let output = ready_wait(args);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?}: stdout is for data");
    assert!(
        !stderr.contains("waiting"),
        "{args:?}: no attempt: {stderr}"
    );
    assert!(
        stderr.contains(expected),
        "{args:?}: expected `{expected}` in:\n{stderr}"
    );
}

/// Runs `ready-wait --config slipway.toml --env staging ARGS` where
/// `[envs.staging]` has the extra lines `env`.
#[track_caller]
fn check_env(env: &str, args: &[&str], expected: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("slipway.toml");
    fs_err::write(
        &path,
        format!(
            "[envs.staging]\nhosts = [\"root@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\n{env}"
        ),
    )
    .expect("slipway.toml");
    let path = path.to_str().expect("utf-8 path");
    let mut all = vec!["--config", path, "--env", "staging"];
    all.extend_from_slice(args);
    check(&all, expected);
}

#[test]
fn a_timeout_without_a_unit_shows_the_form() {
    check(
        &["--timeout", "90", "http://127.0.0.1:1/"],
        "error: invalid `--timeout` value `90`: time unit needed, for example 90sec or 90ms; expected a duration such as `30s`, `500ms` or `2m`",
    );
}

#[test]
fn a_zero_interval_is_refused() {
    check(
        &["--interval", "0s", "http://127.0.0.1:1/"],
        "error: invalid `--interval` value `0s`: must be more than zero, e.g. `250ms`",
    );
}

#[test]
fn a_zero_attempt_timeout_is_refused() {
    check(
        &["--attempt-timeout", "0s", "http://127.0.0.1:1/"],
        "error: invalid `--attempt-timeout` value `0s`: must be more than zero, e.g. `5s`",
    );
}

#[test]
fn a_tcp_target_without_a_port_lists_the_target_forms() {
    check(
        &["tcp://127.0.0.1"],
        "error: invalid `TARGET` value `tcp://127.0.0.1`: no port; valid targets are `http://host[:port]/path`, `https://…` or `tcp://host:port`",
    );
}

#[test]
fn a_port_out_of_range_is_refused() {
    check(
        &["tcp://127.0.0.1:99999"],
        "error: invalid `TARGET` value `tcp://127.0.0.1:99999`: invalid port number",
    );
}

#[test]
fn an_unclosed_ipv6_bracket_is_refused() {
    check(
        &["http://[::1/ready"],
        "error: invalid `TARGET` value `http://[::1/ready`: invalid IPv6 address",
    );
}

#[test]
fn a_status_outside_100_to_599_shows_the_forms() {
    check(
        &["--status", "700", "http://127.0.0.1:1/"],
        "error: invalid `--status` value `700`: `700` is not a status; expected statuses 100-599 as `200`, `200,204`, `200-299` or `2xx`",
    );
}

#[test]
fn a_reversed_status_range_is_refused() {
    check(
        &["--status", "299-200", "http://127.0.0.1:1/"],
        "error: invalid `--status` value `299-200`: `299-200` is an empty range",
    );
}

#[test]
fn a_method_with_a_space_is_refused() {
    check(
        &["-X", "GE T", "http://127.0.0.1:1/"],
        "error: invalid `--method` value `GE T`: expected a method such as `GET`, `HEAD` or `POST`",
    );
}

#[test]
fn a_missing_cacert_file_is_named() {
    check(
        &["--cacert", "/nonexistent/ca.pem", "https://127.0.0.1:1/"],
        "error: invalid `--cacert` value `/nonexistent/ca.pem`: cannot read it: ",
    );
}

#[test]
fn http_checks_on_tcp_targets_only_are_refused() {
    check(
        &["--json-path", "$.status", "tcp://127.0.0.1:1"],
        "error: `--json-path` checks HTTP responses, but every target is TCP (`tcp://127.0.0.1:1`): use an `http://` or `https://` target",
    );
    check(
        &["--body-contains", "ok", "tcp://127.0.0.1:1"],
        "error: `--body-contains` checks HTTP responses, but every target is TCP",
    );
    check(
        &["-H", "Authorization: Bearer x", "tcp://127.0.0.1:1"],
        "error: `--header` checks HTTP responses, but every target is TCP",
    );
}

#[test]
fn an_env_without_ready_url_and_no_target_says_what_to_add() {
    check_env(
        "",
        &[],
        "slipway.toml has no `ready_url`; add one or pass a TARGET",
    );
}

#[test]
fn a_ready_url_without_a_scheme_gives_file_line_and_column() {
    check_env(
        "ready_url = \"localhost:8080/health\"\n",
        &[],
        "slipway.toml:5:13: `localhost:8080/health` is not an `http://`, `https://` or `tcp://` URL, e.g. `http://127.0.0.1:8080/ready`",
    );
}

#[test]
fn a_ready_timeout_that_is_not_a_duration_gives_file_line_and_column() {
    check_env(
        "ready_timeout = \"soon\"\n",
        &["http://127.0.0.1:1/"],
        "slipway.toml:5:17: `soon` is not a duration; use e.g. `30s`, `2m`, `1h30m`",
    );
}

#[test]
fn a_duration_beyond_a_week_is_refused_not_a_panic() {
    // `584542046090y` fits a `Duration` but not a deadline: it panicked (exit 101).
    for flag in [
        "--timeout",
        "--attempt-timeout",
        "--interval",
        "--max-interval",
        "--initial-delay",
    ] {
        check(
            &[flag, "584542046090y", "http://127.0.0.1:1/"],
            &format!(
                "error: invalid `{flag}` value `584542046090y`: `584542046090y` is out of range: \
                 give a duration from `0s` to `1week` (7 days)"
            ),
        );
    }
    check(
        &[
            "--timeout",
            "99999999999999999999999s",
            "http://127.0.0.1:1/",
        ],
        "is out of range: give a duration from `0s` to `1week` (7 days)",
    );
    check_env(
        "ready_timeout = \"584542046090y\"\n",
        &["http://127.0.0.1:1/"],
        "slipway.toml:5:17: `ready_timeout` `584542046090y` is out of range: give a duration \
         from `0s` to `1week` (7 days)",
    );
}

#[test]
fn an_endless_input_file_is_refused_naming_it_and_the_limit() {
    check(
        &["--cacert", "/dev/zero", "https://127.0.0.1:1/"],
        "error: invalid `--cacert` value `/dev/zero`: cannot read it: `/dev/zero` is larger than 16 MiB, the most Slipway reads from one input; is it the right file?",
    );
    check(
        &["--config", "/dev/zero", "--env", "staging"],
        "`/dev/zero` is larger than 16 MiB, the most Slipway reads from one input; is it the right file?",
    );
}

/// A secret of 1 to 3 bytes (a URL password, a credential header's value
/// or its token) is refused before the first attempt, exit 2, saying where
/// it came from and never echoing it: it could not be redacted from the
/// output without garbling it (docs/errors.md, "Short secrets").
#[test]
fn a_secret_shorter_than_4_bytes_is_refused_without_echoing_it() {
    let why = "byte(s) long: a secret shorter than 4 bytes cannot be redacted from output without garbling it (and is guessed at once); use a longer one";
    check(
        &["http://probe:Zq@127.0.0.1:9/ready", "--timeout", "1s"],
        &format!("error: a secret in the URL `http://probe:***@127.0.0.1:9/ready` is 2 {why}"),
    );
    check(
        &["http://127.0.0.1:9/ready", "-H", "X-Api-Key: Zq7"],
        &format!("error: the value of header `x-api-key` is 3 {why}"),
    );
    check(
        &["http://127.0.0.1:9/ready", "-H", "Authorization: Bearer Zq"],
        &format!("error: the value of header `authorization` is 2 {why}"),
    );
    for args in [
        &["http://probe:Zq@127.0.0.1:9/ready"][..],
        &["http://127.0.0.1:9/ready", "-H", "X-Api-Key: Zq7"],
    ] {
        let output = ready_wait(args);
        assert!(!stderr(&output).contains("Zq"), "{}", stderr(&output));
    }
}
