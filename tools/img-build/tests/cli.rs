//! The command line of `img-build` answers `--help` and `--version` like every tool.

use slipway_testbed::cmd::Cmd;

#[test]
fn help_describes_the_tool_and_the_shared_flags() {
    let output = Cmd::new(env!("CARGO_BIN_EXE_img-build"))
        .arg("--help")
        .run();
    output.success();
    let help = output.stdout_str();
    for flag in ["--config", "--format", "--verbose", "--quiet", "--color"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn version_prints_the_package_version_and_the_commit() {
    Cmd::new(env!("CARGO_BIN_EXE_img-build"))
        .arg("--version")
        .run()
        .assert(
            0,
            &slipway_testbed::version_line("img-build", env!("CARGO_PKG_VERSION")),
            "",
        );
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let output = Cmd::new(env!("CARGO_BIN_EXE_img-build"))
        .args(["--format", "yaml"])
        .run();
    output.assert_code(2).assert_stdout("");
    let stderr = output.stderr_str();
    assert!(
        stderr.contains("invalid value 'yaml' for '--format <FORMAT>'"),
        "{stderr}"
    );
}
