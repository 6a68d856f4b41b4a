//! Several hosts: in parallel (here two sshds on one machine share the remote
//! path, so the second queues behind the first's lock with `--lock-wait`),
//! or `--rolling`, stopping at the first failure (see also `fleet.rs`).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use common::{Project, fake_ref};
use slipway_testbed::Sshd;
use slipway_testbed::cmd::Cmd;

fn run(project: &Project, a: &Sshd, b: &Sshd, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let known_hosts = project.dir.path().join("known_hosts");
    let both = fs_err::read_to_string(a.known_hosts_path()).unwrap()
        + &fs_err::read_to_string(b.known_hosts_path()).unwrap();
    fs_err::write(&known_hosts, both).unwrap();
    let image = format!("app={}", fake_ref(1));
    let output = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
        .current_dir(project.dir.path())
        .args([
            "--format", "json", "deploy", "--env", "prod", "--image", &image,
        ])
        .args(["--host", &format!("{}@127.0.0.1:{}", a.user(), a.port())])
        .args(["--host", &format!("{}@127.0.0.1:{}", b.user(), b.port())])
        .arg("--ssh-key")
        .arg(a.client_key_path())
        .arg("--known-hosts")
        .arg(&known_hosts)
        .args(extra)
        .run();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&output.stderr));
    });
    (output.status.code(), report)
}

/// The second sshd accepts the first's client key too.
fn authorize(a: &Sshd, b: &Sshd) {
    let key = std::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(a.client_key_path())
        .output()
        .unwrap();
    assert!(key.status.success());
    let authorized = b.client_key_path().with_file_name("authorized_keys");
    let mut text = fs_err::read_to_string(&authorized).unwrap();
    text.push_str(&String::from_utf8(key.stdout).unwrap());
    fs_err::write(&authorized, text).unwrap();
}

#[test]
fn parallel_hosts_queue_behind_the_lock_when_asked_to_wait() {
    let a = Sshd::start();
    let b = Sshd::start();
    authorize(&a, &b);
    let project = Project::new(
        &a,
        r#"command = "echo $SLIPWAY_RELEASE >> runs.txt""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    let (code, report) = run(&project, &a, &b, &["--lock-wait", "30s"]);
    assert_eq!(code, Some(0), "{report}");
    let mut releases: Vec<u64> = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["release"].as_u64().unwrap())
        .collect();
    releases.sort();
    assert_eq!(releases, [1, 2]);
    assert_eq!(project.remote_file("runs.txt"), "1\n2\n");
}

#[test]
fn a_rolling_deploy_stops_at_the_first_failed_host() {
    let a = Sshd::start();
    let b = Sshd::start();
    authorize(&a, &b);
    let project = Project::new(
        &a,
        r#"command = "touch ran-$SLIPWAY_RELEASE; exit 4""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    let (code, report) = run(&project, &a, &b, &["--rolling"]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["hosts"][0]["outcome"], "failed");
    assert_eq!(report["hosts"][0]["exit_status"], 4);
    assert_eq!(report["hosts"][1]["outcome"], "not_started");
    assert!(project.remote().join("ran-1").exists());
    assert!(!project.remote().join("ran-2").exists());
}
