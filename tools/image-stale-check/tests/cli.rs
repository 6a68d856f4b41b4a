//! The command line of `image-stale-check` answers `--help` and `--version` like every tool.

use slipway_testbed::cmd::Cmd;

const BIN: &str = env!("CARGO_BIN_EXE_image-stale-check");

#[test]
fn help_describes_the_tool_and_the_shared_flags() {
    let output = Cmd::new(BIN).arg("--help").run();
    output.success();
    let help = output.stdout_str();
    for flag in ["--config", "--format", "--verbose", "--quiet", "--color"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn version_prints_the_package_version_and_the_commit() {
    Cmd::new(BIN).arg("--version").run().assert(
        0,
        &slipway_testbed::version_line("image-stale-check", env!("CARGO_PKG_VERSION")),
        "",
    );
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let output = Cmd::new(BIN).args(["--format", "yaml"]).run();
    output.assert_code(2).assert_stdout("");
    let stderr = output.stderr_str();
    assert!(
        stderr.contains("invalid value 'yaml' for '--format <FORMAT>'"),
        "{stderr}"
    );
}

#[test]
fn help_is_the_manual() {
    for (name, args) in [
        ("help", &["--help"][..]),
        ("install_hook_help", &["install-hook", "--help"][..]),
    ] {
        let output = Cmd::new(BIN).args(args).env("COLUMNS", "100").run();
        output.success();
        insta::assert_snapshot!(name, output.stdout_str());
    }
}

#[test]
fn install_hook_dry_run_prints_the_hook_and_writes_nothing() {
    let repo = slipway_testbed::git::GitRepo::new();
    let output = Cmd::new(BIN)
        .current_dir(repo.path())
        .args(["install-hook", "--dry-run", "--strict"])
        .run();
    output.success();
    let script = output.stdout_str();
    assert!(
        script.starts_with("#!/bin/sh\n# >>> slipway image-stale-check >>>\n"),
        "{script}"
    );
    assert!(
        script.contains("--hook --strict --rev \"$slipway_sha\""),
        "{script}"
    );
    assert!(!repo.path().join(".git/hooks/pre-push").exists());
}
