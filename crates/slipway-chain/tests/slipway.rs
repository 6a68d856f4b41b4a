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
            "error: cannot find the tools `img-build`, `img-tag`, `image-stale-check`, `ssh-deploy`: neither next to slipway in `{}` nor on PATH; install every tool beside slipway (a release archive's `bin/` holds them) or on PATH",
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

#[test]
fn version_prints_the_package_version_and_the_commit() {
    slipway_testbed::cmd::Cmd::new(env!("CARGO_BIN_EXE_slipway"))
        .arg("--version")
        .run()
        .assert(
            0,
            &slipway_testbed::version_line("slipway", env!("CARGO_PKG_VERSION")),
            "",
        );
}

#[test]
fn completions_and_the_man_page_are_generated_for_each_shell() {
    let run = |args: &[&str]| {
        slipway_testbed::cmd::Cmd::new(env!("CARGO_BIN_EXE_slipway"))
            .args(args)
            .run()
    };
    let bash = run(&["--generate-completions", "bash"]);
    assert!(bash.status.success());
    let script = String::from_utf8_lossy(&bash.stdout);
    assert!(script.contains("complete -F _slipway"), "{script}");
    for subcommand in ["release", "promote", "rollback", "install-hooks"] {
        assert!(script.contains(subcommand), "{subcommand}: {script}");
    }
    // bash itself reads the script without a syntax error.
    let checked = Command::new("bash")
        .args(["-n", "-c"])
        .arg(script.as_ref())
        .output()
        .expect("bash runs");
    assert!(checked.status.success(), "{checked:?}");
    let zsh = run(&["--generate-completions", "zsh"]);
    assert!(String::from_utf8_lossy(&zsh.stdout).starts_with("#compdef slipway\n"));
    let fish = run(&["--generate-completions", "fish"]);
    assert!(String::from_utf8_lossy(&fish.stdout).contains("complete -c slipway "));
    let man = run(&["--generate-man"]);
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.starts_with(".ie \\n(.g .ds Aq \\(aq"), "{page}");
    assert!(page.contains(".TH slipway 1"), "{page}");
    let bad = run(&["--generate-completions", "powershell"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        "error: invalid value `powershell` for `--generate-completions`: valid shells are `bash`, `zsh`, `fish`\n"
    );
    assert!(bad.stdout.is_empty());
}
