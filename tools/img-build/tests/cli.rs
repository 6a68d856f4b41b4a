//! The command line of `img-build` answers `--help` and `--version` like every tool.

use assert_cmd::Command;

#[test]
fn help_describes_the_tool_and_the_shared_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_img-build"))
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
    let output = Command::new(env!("CARGO_BIN_EXE_img-build"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        slipway_testbed::version_line("img-build", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_img-build"))
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
