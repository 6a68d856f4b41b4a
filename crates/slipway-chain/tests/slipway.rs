//! The `slipway` program itself: where it finds the tools it chains.

use std::process::Command;

/// `slipway` copied alone into a temp dir, so no tool sits beside it.
fn lonely_slipway(dir: &std::path::Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    fs_err::create_dir_all(&bin).expect("a temp dir for slipway");
    let exe = bin.join("slipway");
    fs_err::copy(env!("CARGO_BIN_EXE_slipway"), &exe).expect("slipway copied");
    exe
}

#[test]
fn a_missing_tool_is_named_with_where_slipway_looked() {
    let repo = slipway_testbed::git::GitRepo::new();
    repo.write(
        "slipway.toml",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[envs.prod]\nhosts = [\"root@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\n",
    );
    let exe = lonely_slipway(&repo.path().join("install"));
    let output = Command::new(&exe)
        .args(["release", "--env", "prod", "--dry-run", "--all", "--repo"])
        .arg(repo.path())
        .env_clear()
        .env("PATH", "/nonexistent")
        .output()
        .expect("slipway runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert_eq!(
        stderr.lines().last().unwrap_or_default(),
        format!(
            "error: cannot find the tools `changed-paths`, `img-build`, `img-tag`, `image-stale-check`, `ssh-deploy`, `ready-wait`: neither next to slipway in `{}` nor on PATH; install all six tools beside slipway (a release archive's `bin/` holds them) or on PATH",
            exe.parent().unwrap().display()
        ),
        "{stderr}"
    );
    // An unknown env is still refused first, with the tools' code for bad input.
    let output = Command::new(&exe)
        .args(["release", "--env", "prdo", "--repo"])
        .arg(repo.path())
        .env_clear()
        .env("PATH", "/nonexistent")
        .output()
        .expect("slipway runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: unknown env `prdo`"), "{stderr}");
}

#[test]
fn verbose_says_which_tool_binaries_run() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let exe = lonely_slipway(dir.path());
    // Stand-ins for the tools that fail as soon as the chain runs one.
    for tool in slipway_chain::tools::TOOLS {
        let path = exe.with_file_name(tool);
        fs_err::write(&path, "#!/bin/sh\necho \"stand-in $0 $*\" >&2\nexit 3\n").unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let repo = slipway_testbed::git::GitRepo::new();
    repo.write(
        "slipway.toml",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[envs.prod]\nhosts = [\"root@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\n",
    );
    let output = Command::new(&exe)
        .args(["-v", "release", "--env", "prod", "--dry-run", "--repo"])
        .arg(repo.path())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("slipway runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let bin = exe.parent().unwrap().display().to_string();
    assert!(
        stderr.contains(&format!("slipway: img-build: {bin}/img-build\n")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("stand-in {bin}/changed-paths --format json\n")),
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(3), "{stderr}");
}
