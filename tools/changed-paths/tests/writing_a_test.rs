//! The example of docs/ARCHITECTURE.md's "Writing a test", run as written,
//! so the page cannot drift from what the builder and the tool do.

use slipway_testbed::cmd::Cmd;

#[test]
fn the_architecture_docs_example_holds() {
    let repo = slipway_testbed::git::GitRepo::new();
    Cmd::new(env!("CARGO_BIN_EXE_changed-paths"))
        .current_dir(repo.path())
        .args(["--files-from", "-", "--filter", "web=src/**"])
        .stdin("src/main.rs\n")
        .run()
        .assert(
            0,
            "changed files: 1, files from stdin\nweb: true (1 file)\n  modified src/main.rs\ntargets: [\"web\"]\n",
            "",
        );
}
