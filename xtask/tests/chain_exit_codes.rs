//! The chain's exit codes, from the real xtask binary: bad input exits 2
//! (as the tools do) before anything is built.

use slipway_testbed::cmd::Cmd;

#[test]
fn an_unknown_env_exits_2_before_anything_is_built() {
    let repo = slipway_testbed::git::GitRepo::new();
    repo.write(
        "slipway.toml",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[envs.prod]\nhosts = [\"root@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\n",
    );
    let output = Cmd::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["release", "--env", "prdo", "--all", "--repo"])
        .arg(repo.path())
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: unknown env `prdo`"), "{stderr}");
    // Nothing was built: the plan is checked first.
    assert!(!stderr.contains("build the tools"), "{stderr}");
}
