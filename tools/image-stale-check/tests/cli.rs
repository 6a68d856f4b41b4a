//! The command line of `image-stale-check` answers `--help` and `--version` like every tool.

use assert_cmd::Command;

#[test]
fn help_describes_the_tool_and_the_shared_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_image-stale-check"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in ["--config", "--format", "--verbose", "--quiet", "--color"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn version_prints_the_package_version_and_the_commit() {
    let output = Command::new(env!("CARGO_BIN_EXE_image-stale-check"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        slipway_testbed::version_line("image-stale-check", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_image-stale-check"))
        .args(["--format", "yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
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
        let output = Command::new(env!("CARGO_BIN_EXE_image-stale-check"))
            .args(args)
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        assert!(output.status.success());
        insta::assert_snapshot!(name, String::from_utf8(output.stdout).unwrap());
    }
}

#[test]
fn install_hook_dry_run_prints_the_hook_and_writes_nothing() {
    let repo = slipway_testbed::git::GitRepo::new();
    let output = Command::new(env!("CARGO_BIN_EXE_image-stale-check"))
        .current_dir(repo.path())
        .args(["install-hook", "--dry-run", "--strict"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let script = String::from_utf8(output.stdout).unwrap();
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
