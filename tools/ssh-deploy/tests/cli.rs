//! The command line of `ssh-deploy` answers `--help` and `--version` like every tool.

use assert_cmd::Command;

#[test]
fn help_describes_the_tool_and_the_shared_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_ssh-deploy"))
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
fn version_prints_the_package_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_ssh-deploy"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        concat!("ssh-deploy ", env!("CARGO_PKG_VERSION"), "\n")
    );
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_ssh-deploy"))
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
        ("deploy_help", &["deploy", "--help"][..]),
        ("rollback_help", &["rollback", "--help"][..]),
        ("lock_release_help", &["lock", "release", "--help"][..]),
        ("destroy_help", &["destroy", "--help"][..]),
        ("gc_help", &["gc", "--help"][..]),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_ssh-deploy"))
            .args(args)
            .env("COLUMNS", "100")
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}");
        insta::assert_snapshot!(name, String::from_utf8(output.stdout).unwrap());
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
