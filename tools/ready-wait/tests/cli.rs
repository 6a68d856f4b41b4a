//! `ready-wait`'s command line: `--help` and bad input (exit 2).

mod common;

use common::{ready_wait, stderr};

#[test]
fn help() {
    let output = ready_wait(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
}

#[track_caller]
fn check(args: &[&str], expected: &str) {
    let output = ready_wait(args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{args:?}: {}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains(expected),
        "{args:?}: {}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty(), "{args:?}");
}

#[test]
fn bad_input_names_the_flag_and_exits_2() {
    check(&[], "error: no target given");
    check(
        &["ftp://x"],
        "error: invalid `TARGET` value `ftp://x`: unknown scheme `ftp`",
    );
    check(
        &["--status", "2x", "http://x"],
        "error: invalid `--status` value `2x`",
    );
    check(
        &["--timeout", "soon", "http://x"],
        "error: invalid `--timeout` value `soon`",
    );
    check(
        &["--body-regex", "(", "http://x"],
        "error: invalid `--body-regex` value `(`",
    );
    check(
        &["--json-path", "status", "http://x"],
        "error: invalid `--json-path` value `status`",
    );
    check(
        &["--header", "x", "http://x"],
        "error: invalid `--header` value `***`: expected `Name: value`",
    );
    check(
        &["--stable", "0", "http://x"],
        "error: invalid `--stable` value `0`: must be at least 1",
    );
    check(
        &["--interval", "5s", "--max-interval", "1s", "http://x"],
        "is shorter than `--interval 5s`",
    );
    check(&["--equals", "ok", "http://x"], "--json-path");
    check(&["--any", "--all", "http://x"], "cannot be used with");
}

#[test]
fn version_prints_the_package_version_and_the_commit() {
    slipway_testbed::cmd::Cmd::new(env!("CARGO_BIN_EXE_ready-wait"))
        .arg("--version")
        .run()
        .assert(
            0,
            &slipway_testbed::version_line("ready-wait", env!("CARGO_PKG_VERSION")),
            "",
        );
}
