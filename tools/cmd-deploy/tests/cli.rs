//! The command line of `cmd-deploy`: `--version` and the first line of `--help`.

use slipway_testbed::cmd::Cmd;

#[test]
fn version_names_the_tool_its_version_and_the_commit() {
    Cmd::new(env!("CARGO_BIN_EXE_cmd-deploy"))
        .arg("--version")
        .run()
        .assert(
            0,
            &slipway_testbed::version_line("cmd-deploy", env!("CARGO_PKG_VERSION")),
            "",
        );
}

#[test]
fn help_starts_with_what_the_tool_does() {
    let help = Cmd::new(env!("CARGO_BIN_EXE_cmd-deploy"))
        .arg("--help")
        .run();
    help.assert_code(0);
    assert!(
        help.stdout_str().starts_with(
            "Deploy by running a command on the runner with the images pinned by digest.\n"
        ),
        "{}",
        help.stdout_str()
    );
}
