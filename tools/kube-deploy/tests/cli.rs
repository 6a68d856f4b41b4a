//! The command line of `kube-deploy` answers `--help` and `--version` like every tool.

use slipway_testbed::cmd::Cmd;

#[test]
fn help_describes_the_tool_its_lock_and_its_exit_codes() {
    let output = Cmd::new(env!("CARGO_BIN_EXE_kube-deploy"))
        .arg("--help")
        .run();
    output.success();
    let help = output.stdout_str();
    for text in [
        "Deploy image digests to Kubernetes workloads with kubectl",
        "coordination.k8s.io/v1",
        "kubectl rollout undo",
        "deploy",
        "rollback",
        "releases",
        "--config",
        "--format",
    ] {
        assert!(help.contains(text), "--help lacks {text}:\n{help}");
    }
    let deploy = Cmd::new(env!("CARGO_BIN_EXE_kube-deploy"))
        .args(["deploy", "--help"])
        .run();
    deploy.success();
    let help = deploy.stdout_str();
    for flag in [
        "--env",
        "--image",
        "--images-from",
        "--context",
        "--namespace",
        "--kubectl",
        "--timeout",
        "--dry-run",
        "--no-rollback",
    ] {
        assert!(help.contains(flag), "deploy --help lacks {flag}:\n{help}");
    }
}

#[test]
fn version_prints_the_package_version_and_the_commit() {
    Cmd::new(env!("CARGO_BIN_EXE_kube-deploy"))
        .arg("--version")
        .run()
        .assert(
            0,
            &slipway_testbed::version_line("kube-deploy", env!("CARGO_PKG_VERSION")),
            "",
        );
}
