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
    // the project are fine: each file goes up under its own name.
    fs_err::remove_file(dir.join("conf/nested/env")).unwrap();
    symlink(
        dir.join("deploy/compose.yml"),
        dir.join("conf/nested/compose-link.yml"),
    )
    .unwrap();
    let (code, stderr) = deploy_with_bundle(&project, &sshd, &["conf"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(project.remote_file("app.yml"), "a: 1\n");
    assert_eq!(project.remote_file("compose-link.yml"), "services: {}\n");
    assert!(project.remote().join("ran").exists());
}
