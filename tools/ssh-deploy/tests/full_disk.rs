//! A full disk on the host, at each step of a deploy: taking the lock
//! (writing `holder.json`), uploading a bundle file, uploading
//! `deploy.env`, and recording the release. The remote path is a 64 KiB
//! tmpfs (the test bed's sshd runs as root on this machine, so it is local),
//! filled to the page before each deploy. Each run must fail saying `no
//! space left on device` and where, leave the host's files as they were (no
//! empty record, no temporary file, the lock free), and the next deploy,
//! with space again, must simply work. A damaged record is skipped with a
//! warning, never a blocker.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Project, fake_ref};
use slipway_testbed::Sshd;

/// A tmpfs of 64 KiB mounted on a directory; unmounted when dropped, panics included.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        fs_err::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot mount a tmpfs on `{}`",
            dir.display()
        );
        Tmpfs(dir.to_owned())
    }

    /// Fills the tmpfs with `filler` until exactly `pages` pages of 4 KiB are free.
    fn fill_leaving(&self, pages: u64) {
        let filler = self.0.join("filler");
        let _ = fs_err::remove_file(&filler);
        // `dd` stops at ENOSPC, which is the point.
        let _ = Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", filler.display()))
            .args(["bs=4096", "status=none"])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        let size = fs_err::metadata(&filler).unwrap().len();
        assert!(size >= pages * 4096, "the tmpfs has less room than needed");
        let file = fs_err::OpenOptions::new()
            .write(true)
            .open(&filler)
            .unwrap();
        file.set_len(size - pages * 4096).unwrap();
    }

    /// Removes the filler: room again.
    fn empty(&self) {
        let _ = fs_err::remove_file(self.0.join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let status = Command::new("umount").arg(&self.0).status();
        if !status.is_ok_and(|s| s.success()) {
            // Something still has a file open there: detach it now, it goes when closed.
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// Every file under `dir` but the filler, with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(next) = dirs.pop() {
        for entry in fs_err::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n != "filler") {
                let contents = fs_err::read(&path).unwrap();
                files.insert(path.strip_prefix(dir).unwrap().to_owned(), contents);
            }
        }
    }
    files
}

/// Files whose names say they are temporary.
fn temp_files(files: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<&PathBuf> {
    files
        .keys()
        .filter(|p| {
            let path = p.to_string_lossy();
            path.contains("slipway-tmp") || path.starts_with(".slipway/staging")
        })
        .collect()
}

/// Deploys `fake_ref(n)`; returns the exit code, the host's error and stderr.
fn deploy(project: &Project, sshd: &Sshd, n: u8) -> (Option<i32>, String, String) {
    let image = format!("app={}", fake_ref(n));
    let (code, report, stderr) =
        project.run_json(sshd, &["deploy", "--env", "prod", "--image", &image]);
    let error = report["hosts"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (code, error, stderr)
}

/// The ids and results `ssh-deploy releases` lists; its stderr.
fn releases(project: &Project, sshd: &Sshd) -> (Vec<(u64, String)>, String) {
    let (code, report, stderr) = project.run_json(sshd, &["releases", "--env", "prod"]);
    assert_eq!(code, Some(0), "{stderr}");
    let list = report["hosts"][0]["releases"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|r| {
            (
                r["id"].as_u64().unwrap(),
                r["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (list, stderr)
}

const SCRIPT: &str = r#"#!/bin/sh
set -eu
printf '%s\n' "$APP_IMAGE" > current.txt
# For the record step: the command itself fills the disk.
if [ -e fill-on-run ]; then dd if=/dev/zero of=ballast bs=4096 2>/dev/null || true; fi
"#;

#[test]
fn a_full_disk_at_any_step_leaves_the_host_as_it_was_and_says_so() {
    let sshd = Sshd::start();
    // The disk fills between the preflight's check of the free space and
    // the step: the env's preflight command fills it, leaving the number
    // of pages the test writes to `fill-pages` (outside the host's files).
    let control = tempfile::tempdir().unwrap();
    let pages_file = control.path().join("fill-pages");
    let preflight = format!(
        "preflight = \"if [ -e {pages} ]; then rm -f filler; dd if=/dev/zero of=filler bs=4096 status=none 2>/dev/null; truncate -s $(( $(wc -c < filler) - $(cat {pages}) * 4096 )) filler; rm -f {pages}; fi\"",
        pages = pages_file.display()
    );
    let project = Project::new(
        &sshd,
        &format!("command = \"./deploy.sh\"\n{preflight}"),
        &[
            ("compose.yml", "services: {}\n", 0o644),
            ("deploy.sh", SCRIPT, 0o755),
        ],
    );
    let tmpfs = Tmpfs::mount(&project.remote());
    let (code, error, stderr) = deploy(&project, &sshd, 1);
    assert_eq!(code, Some(0), "{error}\n{stderr}");
    let before = snapshot(&project.remote());
    let remote = project.remote().display().to_string();

    // Each step, its full disk, and the message naming it.
    let compose = project.dir.path().join("deploy/compose.yml");
    let cases: [(&str, u64, &str, String); 3] = [
        (
            "lock",
            0,
            "services: {}\n",
            format!(
                "cannot record who holds the lock: cannot write `{remote}/.slipway/holder.json` on the host: no space left on device"
            ),
        ),
        (
            "upload",
            1,
            // A changed bundle file, uploaded first.
            "services: {}\n# grown\n",
            format!(
                "cannot upload `compose.yml` to `{remote}/.slipway/staging`: no space left on device"
            ),
        ),
        (
            "deploy.env",
            1,
            "services: {}\n",
            format!(
                "cannot upload `deploy.env` to `{remote}/.slipway/staging`: no space left on device"
            ),
        ),
    ];
    for (step, pages, bundle, expected) in &cases {
        fs_err::write(&compose, bundle).unwrap();
        fs_err::write(&pages_file, pages.to_string()).unwrap();
        let (code, error, stderr) = deploy(&project, &sshd, 2);
        assert_eq!(code, Some(3), "{step}: {error}\n{stderr}");
        assert!(
            error.contains(expected.as_str()),
            "{step}: expected `{expected}` in:\n{error}\n{stderr}"
        );
        let after = snapshot(&project.remote());
        assert_eq!(temp_files(&after), Vec::<&PathBuf>::new(), "{step}");
        assert_eq!(after, before, "{step}: the host's files changed");
        assert!(project.is_lock_free(), "{step}: the lock is held");
        tmpfs.empty();
        let (list, stderr) = releases(&project, &sshd);
        assert_eq!(list, [(1, "deployed".to_owned())], "{step}: {stderr}");
    }

    // A large file, which rides on the command's own stdin (`cat`), on a
    // disk too small for it: the preflight refuses before anything is
    // written.
    fs_err::write(&compose, "services: {}\n").unwrap();
    fs_err::write(
        project.dir.path().join("deploy/big.bin"),
        vec![b'x'; (16 << 20) + 1],
    )
    .unwrap();
    let toml = project.dir.path().join("slipway.toml");
    let plain = fs_err::read_to_string(&toml).unwrap();
    fs_err::write(
        &toml,
        plain.replace(
            "\"deploy/deploy.sh\"]",
            "\"deploy/deploy.sh\", \"deploy/big.bin\"]",
        ),
    )
    .unwrap();
    tmpfs.fill_leaving(4);
    let (code, error, stderr) = deploy(&project, &sshd, 2);
    assert_eq!(code, Some(3), "{error}\n{stderr}");
    assert!(
        error.starts_with(&format!(
            "preflight: only 16 KiB free for `{remote}` on the host; the bundle and deploy.env need 16 MiB"
        )),
        "{error}"
    );
    let after = snapshot(&project.remote());
    assert_eq!(after, before, "the host's files changed");
    assert!(project.is_lock_free());
    tmpfs.empty();
    fs_err::write(&toml, plain).unwrap();
    let (list, stderr) = releases(&project, &sshd);
    assert_eq!(list, [(1, "deployed".to_owned())], "{stderr}");

    // The record: the command itself fills the disk after it ran.
    fs_err::write(project.remote().join("fill-on-run"), "").unwrap();
    let (code, error, stderr) = deploy(&project, &sshd, 2);
    assert_eq!(code, Some(3), "{error}\n{stderr}");
    assert!(
        error.contains(&format!("release 2 ran but cannot be recorded: cannot write `{remote}/.slipway/releases/2.json` on the host: no space left on device")),
        "{error}"
    );
    let after = snapshot(&project.remote());
    assert_eq!(temp_files(&after), Vec::<&PathBuf>::new());
    assert!(
        !after.contains_key(Path::new(".slipway/releases/2.json")),
        "an empty record was left"
    );
    assert!(project.is_lock_free());
    fs_err::remove_file(project.remote().join("fill-on-run")).unwrap();
    fs_err::remove_file(project.remote().join("ballast")).unwrap();
    let (list, stderr) = releases(&project, &sshd);
    assert_eq!(list, [(1, "deployed".to_owned())], "{stderr}");

    // With room again, the next deploy and a rollback need nothing by hand.
    let (code, error, stderr) = deploy(&project, &sshd, 3);
    assert_eq!(code, Some(0), "{error}\n{stderr}");
    let (code, report, stderr) = project.run_json(&sshd, &["rollback", "--env", "prod"]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", fake_ref(1))
    );
}

#[test]
fn a_damaged_release_record_is_skipped_with_a_warning() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    );
    for n in [1, 2] {
        let (code, error, stderr) = deploy(&project, &sshd, n);
        assert_eq!(code, Some(0), "{error}\n{stderr}");
    }
    // What a full disk made of a record before this round: an empty file;
    // and one cut short.
    let records = project.remote().join(".slipway/releases");
    fs_err::write(records.join("2.json"), "").unwrap();
    fs_err::write(records.join("9.json"), "{\"id\": 9, \"env\"").unwrap();
    let (list, stderr) = releases(&project, &sshd);
    assert_eq!(list, [(1, "deployed".to_owned())]);
    assert!(
        stderr.contains("skipping a damaged release record"),
        "{stderr}"
    );
    assert!(stderr.contains("2.json"), "{stderr}");
    // Deploys and rollbacks go on.
    let (code, error, stderr) = deploy(&project, &sshd, 3);
    assert_eq!(code, Some(0), "{error}\n{stderr}");
    let (code, report, stderr) = project.run_json(&sshd, &["rollback", "--env", "prod"]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", fake_ref(1))
    );
}
