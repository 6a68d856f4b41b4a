//! A host's files are input: release records, `holder.json` and
//! `bundle.json` may be hand-edited or written by someone hostile. Whatever
//! they say, ssh-deploy must not panic, must not read them without bound,
//! and must not let them choose what runs.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use common::{Project, fake_ref};
use slipway_testbed::Sshd;
use slipway_testbed::cmd::Cmd;

const SCRIPT: &str = "#!/bin/sh\nset -eu\nprintf '%s\\n' \"$APP_IMAGE\" > current.txt\n";

fn project(sshd: &Sshd) -> Project {
    Project::new(
        sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    )
}

fn deploy(project: &Project, sshd: &Sshd, n: u8) {
    let image = format!("app={}", fake_ref(n));
    let (code, report, stderr) =
        project.run_json(sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
}

/// Writes release record `name` on the host: record 1 with `change` applied.
fn write_record(project: &Project, name: &str, change: impl FnOnce(&mut serde_json::Value)) {
    let mut record = project.release(1);
    change(&mut record);
    let path = project.remote().join(".slipway/releases").join(name);
    fs_err::write(path, serde_json::to_vec(&record).unwrap()).unwrap();
}

#[test]
fn hostile_release_records_are_skipped_as_damaged() {
    let sshd = Sshd::start();
    let project = project(&sshd);
    deploy(&project, &sshd, 1);
    // An id with no successor: `id + 1` used to panic in `deploy`.
    write_record(&project, "18446744073709551615.json", |r| {
        r["id"] = serde_json::json!(u64::MAX);
    });
    // A git_sha that is not hex, with a multi-byte character where
    // `releases` cut it at 12 bytes: it used to panic.
    write_record(&project, "5.json", |r| {
        r["id"] = serde_json::json!(5);
        r["git_sha"] = serde_json::json!("aaaaaaaaaaa\u{e9}bbbb");
    });
    // An id that differs from the file name.
    write_record(&project, "6.json", |r| r["id"] = serde_json::json!(1));
    // Larger than ssh-deploy ever reads from a host file.
    let big = project.remote().join(".slipway/releases/7.json");
    fs_err::write(&big, vec![b' '; 17 * 1024 * 1024]).unwrap();

    let output = project.run(&sshd, &["releases", "--env", "prod"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    for name in ["18446744073709551615.json", "5.json", "6.json", "7.json"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("skipping a damaged release record") && l.contains(name)),
            "no warning about {name}:\n{stderr}"
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.matches("\n  ").count(), 1, "{stdout}");

    // Deploys go on, numbered after the last sound record.
    deploy(&project, &sshd, 2);
    assert_eq!(project.release(2)["id"], 2);
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", fake_ref(2))
    );
}

#[test]
fn a_rollback_refuses_a_record_whose_images_the_env_does_not_define() {
    let sshd = Sshd::start();
    let project = project(&sshd);
    deploy(&project, &sshd, 1);
    deploy(&project, &sshd, 2);
    let env_before = project.remote_file("deploy.env");
    // An extra variable that would reach the command's environment, and a
    // mutable reference.
    write_record(&project, "3.json", |r| {
        r["id"] = serde_json::json!(3);
        r["images"] = serde_json::json!({"APP_IMAGE": fake_ref(1), "PATH": "/tmp/evilbin"});
    });
    write_record(&project, "4.json", |r| {
        r["id"] = serde_json::json!(4);
        r["images"] = serde_json::json!({"APP_IMAGE": "evil.example/app:latest"});
    });
    for (to, bad) in [
        ("3", "PATH=/tmp/evilbin"),
        ("4", "APP_IMAGE=evil.example/app:latest"),
    ] {
        let (code, report, stderr) =
            project.run_json(&sshd, &["rollback", "--env", "prod", "--to", to]);
        assert_eq!(code, Some(3), "{report}\n{stderr}");
        let error = report["hosts"][0]["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("release {to} cannot be redeployed")) && error.contains(bad),
            "{error}"
        );
        // Nothing ran and nothing was written.
        assert_eq!(project.remote_file("deploy.env"), env_before);
        assert_eq!(
            project.remote_file("current.txt"),
            format!("{}\n", fake_ref(2))
        );
        assert!(project.is_lock_free());
    }
    // A sound record still rolls back.
    let (code, report, stderr) =
        project.run_json(&sshd, &["rollback", "--env", "prod", "--to", "1"]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", fake_ref(1))
    );
}

#[test]
fn text_from_the_host_cannot_forge_lines_in_plain_output() {
    let sshd = Sshd::start();
    let project = project(&sshd);
    deploy(&project, &sshd, 1);
    let forged = "eve\n::error title=Forged::deploy failed\u{1b}[2J";
    let holder = serde_json::json!({
        "holder": forged,
        "machine": "m",
        "pid": 1,
        "since": 0,
        "deadline": 0,
        "release": 1,
        "ci_job": null,
        "host_pid": null,
    });
    fs_err::write(
        project.remote().join(".slipway/holder.json"),
        serde_json::to_vec(&holder).unwrap(),
    )
    .unwrap();
    write_record(&project, "1.json", |r| r["who"] = serde_json::json!(forged));
    for args in [
        &["lock", "status", "--env", "prod"][..],
        &["releases", "--env", "prod"][..],
    ] {
        let output = project.run(&sshd, args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stdout}");
        assert!(stdout.contains(r"eve\n::error"), "{args:?}: {stdout}");
        assert!(
            !stdout.lines().any(|l| l.starts_with("::")) && !stdout.contains('\u{1b}'),
            "{args:?}: {stdout}"
        );
    }
}

/// `releases` says why a release failed (its record's `detail`), as every
/// deploy tool's listing does, and that text from the host is escaped too.
#[test]
fn releases_list_why_a_release_failed_and_its_detail_cannot_forge_lines() {
    let sshd = Sshd::start();
    let project = project(&sshd);
    deploy(&project, &sshd, 1);
    write_record(&project, "1.json", |r| {
        r["result"] = serde_json::json!("failed");
        r["detail"] = serde_json::json!("the deploy did not finish");
    });
    let output = project.run(&sshd, &["releases", "--env", "prod"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let release = stdout.lines().nth(1).unwrap_or_default();
    assert!(release.starts_with("  1 "), "{stdout}");
    assert!(
        release.ends_with(&format!(
            " failed git=- who={} APP_IMAGE={} detail='the deploy did not finish'",
            project.release(1)["who"].as_str().unwrap(),
            fake_ref(1)
        )),
        "{stdout}"
    );

    write_record(&project, "1.json", |r| {
        r["detail"] = serde_json::json!("eve\n::error title=Forged::deploy failed\u{1b}[2J");
    });
    let output = project.run(&sshd, &["releases", "--env", "prod"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(r"eve\n::error"), "{stdout}");
    assert!(
        !stdout.lines().any(|l| l.starts_with("::")) && !stdout.contains('\u{1b}'),
        "{stdout}"
    );
}

#[test]
fn output_without_newlines_is_passed_on_in_lines_of_at_most_64_kib() {
    let sshd = Sshd::start();
    // 20 MB with no newline: it used to be buffered whole and searched for
    // a newline again on every read.
    let project = Project::new(
        &sshd,
        r#"command = "head -c 20000000 /dev/zero | tr '\\0' x; echo""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    );
    let image = format!("app={}", fake_ref(1));
    let output = project.run(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    let parts: Vec<usize> = stderr
        .lines()
        .filter(|l| l.contains("xxxx"))
        .map(|l| l.matches('x').count())
        .collect();
    assert_eq!(parts.iter().sum::<usize>(), 20_000_000);
    assert!(parts.iter().all(|n| *n <= 64 * 1024), "{parts:?}");
}

/// `ssh-deploy deploy` against `sshd` with `--ssh-key KEY --known-hosts KNOWN`.
fn deploy_with(project: &Project, key: &str, known: &str) -> (Option<i32>, String) {
    let image = format!("app={}", fake_ref(1));
    let output = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
        .current_dir(project.dir.path())
        .env("NO_COLOR", "1")
        .args(["deploy", "--env", "prod", "--image", &image])
        .args(["--ssh-key", key, "--known-hosts", known])
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

#[test]
fn endless_key_and_known_hosts_files_are_refused_naming_the_file_and_limit() {
    let sshd = Sshd::start();
    let project = project(&sshd);
    let key = sshd.client_key_path();
    let known = sshd.known_hosts_path();
    let (key, known) = (key.to_str().unwrap(), known.to_str().unwrap());

    let (code, stderr) = deploy_with(&project, "/dev/zero", known);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot read `--ssh-key /dev/zero`")
            && stderr.contains("`/dev/zero` is larger than 16 MiB"),
        "{stderr}"
    );

    let (code, stderr) = deploy_with(&project, key, "/dev/zero");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot read known_hosts `/dev/zero`")
            && stderr.contains("`/dev/zero` is larger than 16 MiB"),
        "{stderr}"
    );
    // Nothing ran on the host.
    assert!(!project.remote().join("current.txt").exists());
}
