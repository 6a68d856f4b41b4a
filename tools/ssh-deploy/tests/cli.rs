//! The command line of `ssh-deploy` answers `--help` and `--version` like every tool.

use slipway_testbed::cmd::Cmd;

const BIN: &str = env!("CARGO_BIN_EXE_ssh-deploy");

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
        &slipway_testbed::version_line("ssh-deploy", env!("CARGO_PKG_VERSION")),
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
        ("deploy_help", &["deploy", "--help"][..]),
        ("rollback_help", &["rollback", "--help"][..]),
        ("lock_release_help", &["lock", "release", "--help"][..]),
        ("destroy_help", &["destroy", "--help"][..]),
        ("gc_help", &["gc", "--help"][..]),
    ] {
        let output = Cmd::new(BIN).args(args).env("COLUMNS", "100").run();
        output.success();
        insta::assert_snapshot!(name, output.stdout_str());
    }
}

#[test]
fn the_reference_deploy_script_is_shellcheck_clean() {
    let shellcheck = slipway_testbed::require("shellcheck", "shellcheck");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/deploy-compose.sh"
    );
    let output = std::process::Command::new(shellcheck)
        .arg(script)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
