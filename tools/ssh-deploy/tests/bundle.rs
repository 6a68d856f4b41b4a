//! What a bundle may carry to a host: regular files inside the project, and
//! directories of them. A symlink to `/proc/self/environ` (the deploying
//! machine's environment: registry password, `GITHUB_TOKEN`, the SSH key of
//! `--ssh-key-env`), an absolute path, `../` out of the project, a fifo, a
//! device or a dangling symlink is refused before anything is sent (exit 2,
//! naming the entry and what it points at), against the test bed's real
//! sshd: the remote path is never created.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use std::os::unix::fs::symlink;

use common::{Project, fake_ref};
use slipway_testbed::Sshd;

/// Sets the env's `bundle` to `entries` and deploys; returns exit code and stderr.
fn deploy_with_bundle(project: &Project, sshd: &Sshd, entries: &[&str]) -> (Option<i32>, String) {
    let path = project.dir.path().join("slipway.toml");
    let toml = fs_err::read_to_string(&path).unwrap();
    let start = toml.find("bundle = [").unwrap();
    let end = start + toml[start..].find(']').unwrap() + 1;
    let list: Vec<String> = entries.iter().map(|e| format!("{e:?}")).collect();
    let toml = format!(
        "{}bundle = [{}]{}",
        &toml[..start],
        list.join(", "),
        &toml[end..]
    );
    fs_err::write(&path, toml).unwrap();
    let image = format!("app={}", fake_ref(1));
    let output = project.run(sshd, &["deploy", "--env", "prod", "--image", &image]);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bundle_entries_outside_the_project_or_not_regular_files_are_refused() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "touch ran""#,
        &[("compose.yml", "services: {}\n", 0o644)],
    );
    let dir = project.dir.path();
    let outside = tempfile::tempdir().unwrap();
    fs_err::write(outside.path().join("secret.txt"), "not yours\n").unwrap();
    symlink("/proc/self/environ", dir.join("deploy/environ")).unwrap();
    symlink(
        outside.path().join("secret.txt"),
        dir.join("deploy/link.txt"),
    )
    .unwrap();
    symlink("/dev/null", dir.join("deploy/null")).unwrap();
    symlink(dir.join("deploy/nowhere"), dir.join("deploy/dangling")).unwrap();
    // A device inside the project (the tests run as root, as the test bed does).
    let device = std::process::Command::new("mknod")
        .arg(dir.join("deploy/zero"))
        .args(["c", "1", "5"])
        .status()
        .unwrap();
    assert!(device.success());
    let fifo = std::process::Command::new("mkfifo")
        .arg(dir.join("deploy/pipe"))
        .status()
        .unwrap();
    assert!(fifo.success());
    // A directory whose every file is checked: one points out.
    fs_err::create_dir_all(dir.join("conf/nested")).unwrap();
    fs_err::write(dir.join("conf/app.yml"), "a: 1\n").unwrap();
    symlink("/proc/self/environ", dir.join("conf/nested/env")).unwrap();
    // A directory that points out as a whole.
    symlink(outside.path(), dir.join("elsewhere")).unwrap();
    let outside_file = outside.path().join("secret.txt");
    let outside_file = outside_file.to_str().unwrap();
    let up = format!(
        "../{}/secret.txt",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    let cases: &[(&str, &str)] = &[
        (
            "deploy/environ",
            "bundle entry `deploy/environ` of env `prod` points at `/proc/",
        ),
        (outside_file, "outside the project"),
        (
            "/etc/hostname",
            "bundle entry `/etc/hostname` of env `prod` points at `/etc/hostname`, outside the project",
        ),
        ("deploy/link.txt", "secret.txt`, outside the project"),
        (
            "deploy/null",
            "bundle entry `deploy/null` of env `prod` points at `/dev/null`, outside the project",
        ),
        (
            "deploy/zero",
            "bundle entry `deploy/zero` of env `prod` points at `",
        ),
        (
            "deploy/pipe",
            "bundle entry `deploy/pipe` of env `prod` points at `",
        ),
        (
            "deploy/dangling",
            "bundle entry `deploy/dangling` of env `prod` is a symlink to `",
        ),
        (
            "conf",
            "bundle entry `conf` of env `prod` holds `conf/nested/env`, which points at `/proc/",
        ),
        (
            "elsewhere",
            "bundle entry `elsewhere` of env `prod` points at `",
        ),
    ];
    for (entry, expected) in cases {
        let (code, stderr) = deploy_with_bundle(&project, &sshd, &["deploy/compose.yml", entry]);
        assert_eq!(code, Some(2), "`{entry}`: {stderr}");
        assert!(
            stderr.contains(expected),
            "`{entry}`: expected `{expected}` in:\n{stderr}"
        );
        assert!(
            stderr.contains(
                "bundle entries must be regular files (or directories of them) inside the project"
            ),
            "`{entry}`: {stderr}"
        );
        assert!(!stderr.contains("not yours"), "`{entry}`: {stderr}");
    }
    let (code, stderr) = deploy_with_bundle(&project, &sshd, &["deploy/pipe"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("which is a fifo"), "{stderr}");
    let (code, stderr) = deploy_with_bundle(&project, &sshd, &["deploy/zero"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("which is a device"), "{stderr}");
    let (code, stderr) = deploy_with_bundle(&project, &sshd, &[&up]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("outside the project"), "{stderr}");
    assert!(
        !project.remote().exists(),
        "nothing reached the host: no bundle, lock or record"
    );

    // Inside the project, a directory of files and a symlink to a file of
    // the project are fine: each file keeps its path in the project, less
    // the one leading directory `strip_components = 1` drops.
    fs_err::remove_file(dir.join("conf/nested/env")).unwrap();
    symlink(
        dir.join("deploy/compose.yml"),
        dir.join("conf/nested/compose-link.yml"),
    )
    .unwrap();
    let (code, stderr) = deploy_with_bundle(&project, &sshd, &["conf"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(project.remote_file("app.yml"), "a: 1\n");
    assert_eq!(
        project.remote_file("nested/compose-link.yml"),
        "services: {}\n"
    );
    assert!(project.remote().join("ran").exists());
}

#[test]
fn a_hard_link_to_a_file_outside_the_project_is_refused() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "touch ran""#,
        &[("compose.yml", "services: {}\n", 0o644)],
    );
    let outside = tempfile::tempdir().unwrap();
    fs_err::write(outside.path().join("secret.txt"), "not yours\n").unwrap();
    fs_err::hard_link(
        outside.path().join("secret.txt"),
        project.dir.path().join("deploy/linked.txt"),
    )
    .unwrap();
    let (code, stderr) = deploy_with_bundle(&project, &sshd, &["deploy/linked.txt"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("bundle entry `deploy/linked.txt` of env `prod` points at `")
            && stderr.contains("linked.txt`, which has 2 hard links: its other names may be outside the project, which cannot be checked; upload a copy instead"),
        "{stderr}"
    );
    // Also inside a directory entry.
    let (code, stderr) = deploy_with_bundle(&project, &sshd, &["deploy"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "bundle entry `deploy` of env `prod` holds `deploy/linked.txt`, which points at `"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("not yours"), "{stderr}");
    assert!(!project.remote().exists(), "nothing reached the host");
}

/// Sets the env's `strip_components` (the common project has 1).
fn set_strip(project: &Project, strip: u32) {
    let path = project.dir.path().join("slipway.toml");
    let toml: String = fs_err::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| match line.starts_with("strip_components = ") {
            true => format!("strip_components = {strip}\n"),
            false => format!("{line}\n"),
        })
        .collect();
    fs_err::write(&path, toml).unwrap();
}

#[test]
fn bundle_files_keep_their_paths_in_the_project_less_stripped_directories() {
    let sshd = Sshd::start();
    // A team's script that finds the project root from its own path.
    let project = Project::new(
        &sshd,
        r#"command = "tooling/deploy/deploy-compose.sh""#,
        &[("compose.yml", "services: {}\n", 0o644)],
    );
    let dir = project.dir.path();
    fs_err::create_dir_all(dir.join("tooling/deploy")).unwrap();
    let script = dir.join("tooling/deploy/deploy-compose.sh");
    fs_err::write(
        &script,
        "#!/bin/sh\nset -e\ncd \"$(dirname \"$0\")/../..\"\ncat compose.yml > ran-with\ncat deploy.env >> ran-with\npwd > ran-in\n",
    )
    .unwrap();
    fs_err::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fs_err::write(dir.join("compose.yml"), "services: {app: {}}\n").unwrap();
    set_strip(&project, 0);
    let (code, stderr) = deploy_with_bundle(
        &project,
        &sshd,
        &[
            "./compose.yml",
            "tooling/deploy/deploy-compose.sh",
            "deploy",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let remote = project.remote();
    assert_eq!(
        fs_err::read_to_string(remote.join("ran-in"))
            .unwrap()
            .trim(),
        fs_err::canonicalize(&remote).unwrap().to_str().unwrap()
    );
    assert!(
        fs_err::read_to_string(remote.join("ran-with"))
            .unwrap()
            .starts_with("services: {app: {}}\n# Written by ssh-deploy"),
    );
    assert_eq!(project.remote_file("deploy/compose.yml"), "services: {}\n");
    assert_eq!(
        project.remote_mode("tooling/deploy/deploy-compose.sh"),
        0o755
    );
    // No temporary file or staging directory is left anywhere.
    let leftovers = std::process::Command::new("find")
        .arg(&remote)
        .args(["(", "-name", "*.slipway-tmp", "-o", "-name", "staging", ")"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&leftovers.stdout), "");

    // `strip_components = 2` drops `tooling/deploy/`; a file with no path
    // left after stripping is refused, naming it.
    set_strip(&project, 2);
    let toml = fs_err::read_to_string(dir.join("slipway.toml")).unwrap();
    fs_err::write(
        dir.join("slipway.toml"),
        toml.replace(
            r#"command = "tooling/deploy/deploy-compose.sh""#,
            r#"command = "test -x ./deploy-compose.sh""#,
        ),
    )
    .unwrap();
    let (code, stderr) = deploy_with_bundle(&project, &sshd, &["tooling/deploy/deploy-compose.sh"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(project.remote_mode("deploy-compose.sh"), 0o755);
    let (code, stderr) = deploy_with_bundle(&project, &sshd, &["compose.yml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("bundle entry `compose.yml` of env `prod` holds `compose.yml`, which has no path left after `strip_components = 2` drops its leading directories; lower `strip_components`"),
        "{stderr}"
    );
}

/// Every file under `dir`, with its contents and mode, by relative path.
fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut files = std::collections::BTreeMap::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(next) = dirs.pop() {
        for entry in fs_err::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let mode = fs_err::metadata(&path).unwrap().permissions().mode() & 0o7777;
                let name = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                files.insert(name, (fs_err::read(&path).unwrap(), mode));
            }
        }
    }
    files
}

#[test]
fn many_small_files_in_nested_directories_arrive_exactly_with_their_modes() {
    let sshd = Sshd::start();
    let project = Project::new(&sshd, r#"command = "true""#, &[]);
    let site = project.dir.path().join("deploy/site");
    // 200 files in nested directories, four modes (setuid included), odd
    // names, and paths past tar's 100-byte name field and its 255-byte
    // ustar limit.
    let modes = [0o644, 0o600, 0o755, 0o4750];
    let long = format!(
        "{}/{}/{}",
        "d".repeat(100),
        "e".repeat(100),
        "f".repeat(100)
    );
    let mut names: Vec<String> = (0..196)
        .map(|n| format!("level{}/sub{}/file-{n:03}.txt", n % 3, n % 5))
        .collect();
    names.extend([
        "top level 'quoted' \"name\".txt".to_owned(),
        format!("{}/{}", "p".repeat(90), "q".repeat(60)),
        long.clone(),
        "level0/-dash".to_owned(),
    ]);
    for (n, name) in names.iter().enumerate() {
        let path = site.join(name);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, format!("{n}\n").repeat(n % 7 * 300)).unwrap();
        fs_err::set_permissions(
            &path,
            std::os::unix::fs::PermissionsExt::from_mode(modes[n % 4]),
        )
        .unwrap();
    }
    let (code, stderr) = deploy_with_bundle(&project, &sshd, &["deploy/site"]);
    assert_eq!(code, Some(0), "{stderr}");
    let remote = project.remote().join("site");
    assert_eq!(tree(&remote), tree(&site));
    assert!(!project.remote().join(".slipway/staging").exists());

    // Three changed files travel again; the other files of their
    // directories stay as they are.
    for name in [&names[0], &names[15], &long] {
        fs_err::write(site.join(name), "changed\n").unwrap();
    }
    let image = format!("app={}", fake_ref(1));
    let (code, report, stderr) =
        project.run_json(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        report["hosts"][0]["uploaded"],
        // In the bundle's (sorted) order.
        serde_json::json!([
            format!("site/{long}"),
            format!("site/{}", names[0]),
            format!("site/{}", names[15])
        ])
    );
    assert_eq!(tree(&remote), tree(&site));
    assert!(!project.remote().join(".slipway/staging").exists());
}
