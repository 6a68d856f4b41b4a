//! Faults injected on purpose against the test bed's real sshd: the
//! connection cut or gone silent during an upload and during the remote
//! command, the deploying process killed (SIGKILL) or cancelled (SIGINT,
//! SIGTERM) while it holds the lock, a command past `--timeout`, an app
//! that never gets ready, unreachable hosts, and two deploys at the same
//! moment. Each asserts what a user relies on: no half-written file on the
//! host, no release recorded as good that is not, a lock that the host
//! frees by itself when the deploy's session ends, nothing the deploy
//! started left running, and a retry that completes without manual steps.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Project, fake_ref, wait_for};
use slipway_testbed::{Mode, Sshd, TcpProxy};

/// Records which image it deployed; with `slow` in the remote path it first
/// writes its PID and `started`, and sleeps.
const SCRIPT: &str = r#"#!/bin/sh
set -eu
if [ -e slow ]; then
  echo $$ > script.pid
  touch started
  sleep 25
  touch finished
fi
printf '%s\n' "$APP_IMAGE" > current.txt
"#;

/// `user@127.0.0.1:<port of proxy>`: the env's host, reached through `proxy`.
fn through(sshd: &Sshd, proxy: &TcpProxy) -> String {
    format!("{}@127.0.0.1:{}", sshd.user(), proxy.addr().port())
}

/// `deploy --env prod --image app=<fake_ref(n)>` with `extra` flags, its
/// host key pinned (so it may go through a proxy's port).
fn deploy_args(sshd: &Sshd, n: u8, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--format",
        "json",
        "deploy",
        "--env",
        "prod",
        "--image",
        &format!("app={}", fake_ref(n)),
        "--host-key-fingerprint",
        &sshd.host_key_fingerprint(),
    ]
    .map(str::to_owned)
    .into();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// Runs ssh-deploy with `args`; returns the exit code, the report and stderr.
fn run(
    project: &Project,
    sshd: &Sshd,
    args: &[String],
) -> (Option<i32>, serde_json::Value, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = project.run(sshd, &args);
    parse(&output)
}

fn parse(output: &Output) -> (Option<i32>, serde_json::Value, String) {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\n{}\nstderr:\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (output.status.code(), report, stderr)
}

/// Starts ssh-deploy with `args`, its stdout and stderr piped.
fn spawn(project: &Project, sshd: &Sshd, args: &[String]) -> Guard {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = project
        .command(sshd, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Guard(Some(child))
}

/// Kills the child if the test fails before waiting for it.
struct Guard(Option<Child>);

impl Guard {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    /// Waits (up to 30 s) for the child to exit; returns its output.
    fn finish(mut self) -> Output {
        wait_for("ssh-deploy to exit", || {
            self.child().try_wait().unwrap().is_some()
        });
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The ids and results of the release records `ssh-deploy releases` lists.
fn releases(project: &Project, sshd: &Sshd) -> Vec<(u64, String)> {
    let (code, report, stderr) = project.run_json(sshd, &["releases", "--env", "prod"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "listed");
    // An empty list is left out of the report.
    report["hosts"][0]["releases"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|r| {
            (
                r["id"].as_u64().unwrap(),
                r["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The files in the remote path whose names end with `.slipway-tmp`, and
/// the upload's staging directory: what an interrupted deploy leaves.
fn temp_files(remote: &Path) -> Vec<String> {
    let mut found: Vec<String> = fs_err::read_dir(remote)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".slipway-tmp"))
        .collect();
    if remote.join(".slipway/staging").exists() {
        found.push(".slipway/staging".to_owned());
    }
    found
}

/// Whether the env's lock on the host is free (no live holder; a killed
/// deploy's `holder.json` may stay, so only `flock` is asked).
fn is_lock_free(project: &Project) -> bool {
    let lock = project.remote().join(".slipway/deploy.lock");
    !lock.exists()
        || std::process::Command::new("flock")
            .arg("-n")
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap()
            .success()
}

/// The message a deploy whose connection died gives.
const LOST: &str = "was lost or stopped answering; the host frees the lock by itself when this deploy's session ends";

/// The PID a slow deploy script wrote.
fn script_pid(project: &Project) -> u32 {
    project.remote_file("script.pid").trim().parse().unwrap()
}

fn deploy_env(n: u8) -> String {
    format!("APP_IMAGE='{}'\n", fake_ref(n))
}

/// Deploys release 1 (`fake_ref(1)`, `big.bin` of `size` bytes of `a`),
/// then cuts the connection of a deploy of `fake_ref(2)` with a changed
/// `big.bin` after `cut` bytes: nothing half-written is left, the lock is
/// released by the deploy itself (it reconnects), nothing is recorded, and
/// a retry deploys.
fn cut_during_upload(size: usize, cut: u64) {
    let sshd = Sshd::start();
    let old = "a".repeat(size);
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("big.bin", &old, 0o644), ("deploy.sh", SCRIPT, 0o755)],
    );
    let (code, _, stderr) = run(&project, &sshd, &deploy_args(&sshd, 1, &[]));
    assert_eq!(code, Some(0), "{stderr}");

    let new = "b".repeat(size);
    fs_err::write(project.dir.path().join("deploy/big.bin"), &new).unwrap();
    let proxy = TcpProxy::start(([127, 0, 0, 1], sshd.port()).into());
    proxy.set_mode(Mode::CutAfter(cut));
    let host = through(&sshd, &proxy);
    let (code, report, stderr) = run(&project, &sshd, &deploy_args(&sshd, 2, &["--host", &host]));
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(error.contains("big.bin"), "{error}");
    assert!(error.contains(LOST), "{error}");
    // The old release is intact on the host, whole.
    assert!(project.remote_file("big.bin") == old, "big.bin changed");
    assert!(project.remote_file("deploy.env").ends_with(&deploy_env(1)));
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", fake_ref(1))
    );
    // sshd saw the connection close: the lock is free without anyone's help.
    wait_for("the host to free the lock", || is_lock_free(&project));
    assert_eq!(releases(&project, &sshd), [(1, "deployed".to_owned())]);

    // The network is back: the same deploy completes, and removes what the
    // cut one left.
    proxy.set_mode(Mode::Pass);
    let (code, report, stderr) = run(&project, &sshd, &deploy_args(&sshd, 2, &["--host", &host]));
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(temp_files(&project.remote()), Vec::<String>::new());
    assert!(project.remote_file("big.bin") == new, "big.bin not updated");
    assert!(project.remote_file("deploy.env").ends_with(&deploy_env(2)));
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", fake_ref(2))
    );
    assert_eq!(
        releases(&project, &sshd),
        [(1, "deployed".to_owned()), (2, "deployed".to_owned())]
    );
}

#[test]
fn a_connection_cut_mid_stream_leaves_the_old_files_whole_and_a_retry_completes() {
    // The 8 MiB file travels in the tar stream on the command's stdin; the
    // cut lands after 3 MiB of it.
    cut_during_upload(8 << 20, 3 << 20);
}

#[test]
fn a_connection_cut_while_a_large_file_streams_on_stdin_leaves_the_old_file_whole() {
    // 17 MiB rides on the command's stdin; the cut lands halfway.
    cut_during_upload((17 << 20) + 7, 8 << 20);
}

#[test]
fn a_connection_cut_while_the_command_runs_stops_it_on_the_host_and_releases_the_lock() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    );
    fs_err::create_dir_all(project.remote()).unwrap();
    fs_err::write(project.remote().join("slow"), "").unwrap();
    let proxy = TcpProxy::start(([127, 0, 0, 1], sshd.port()).into());
    let host = through(&sshd, &proxy);
    let deploy = spawn(&project, &sshd, &deploy_args(&sshd, 1, &["--host", &host]));
    wait_for("the deploy script to start", || {
        project.remote().join("started").exists()
    });
    let pid = script_pid(&project);
    assert!(slipway_testbed::process_exists(pid));
    proxy.cut_all();

    let (code, report, stderr) = parse(&deploy.finish());
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(error.contains("cannot run the remote command"), "{error}");
    assert!(error.contains(LOST), "{error}");
    // sshd saw the connection close; the lock holder ended with it, and the
    // watchdog stops the script.
    wait_for("the deploy script to be stopped on the host", || {
        !slipway_testbed::process_exists(pid)
    });
    assert!(!project.remote().join("finished").exists());
    wait_for("the host to free the lock", || is_lock_free(&project));
    // deploy.env was moved into place whole before the command started; the
    // release is not recorded as good.
    assert_eq!(
        project.remote_file("deploy.env").lines().last(),
        deploy_env(1).lines().next()
    );
    assert_eq!(releases(&project, &sshd), []);

    fs_err::remove_file(project.remote().join("slow")).unwrap();
    let (code, _, stderr) = run(&project, &sshd, &deploy_args(&sshd, 1, &["--host", &host]));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(releases(&project, &sshd), [(1, "deployed".to_owned())]);
}

#[test]
fn a_cut_with_no_way_back_frees_the_lock_on_the_host_and_stops_the_command() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    );
    fs_err::create_dir_all(project.remote()).unwrap();
    fs_err::write(project.remote().join("slow"), "").unwrap();
    let proxy = TcpProxy::start(([127, 0, 0, 1], sshd.port()).into());
    let host = through(&sshd, &proxy);
    let deploy = spawn(&project, &sshd, &deploy_args(&sshd, 1, &["--host", &host]));
    wait_for("the deploy script to start", || {
        project.remote().join("started").exists()
    });
    let pid = script_pid(&project);
    // The cut, and no way back for a while.
    proxy.set_mode(Mode::Refuse);
    proxy.cut_all();

    let (code, report, stderr) = parse(&deploy.finish());
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(error.contains(LOST), "{error}");
    // The host alone frees the lock and stops the script.
    wait_for("the deploy script to be stopped on the host", || {
        !slipway_testbed::process_exists(pid)
    });
    assert!(!project.remote().join("finished").exists());
    wait_for("the host to free the lock", || is_lock_free(&project));

    // No `lock release`: the next deploy just works.
    proxy.set_mode(Mode::Pass);
    fs_err::remove_file(project.remote().join("slow")).unwrap();
    let (code, _, stderr) = run(&project, &sshd, &deploy_args(&sshd, 1, &["--host", &host]));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(releases(&project, &sshd), [(1, "deployed".to_owned())]);
}

#[test]
fn a_deploy_killed_while_holding_the_lock_frees_it_by_itself_and_its_command_is_stopped() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    );
    fs_err::create_dir_all(project.remote()).unwrap();
    fs_err::write(project.remote().join("slow"), "").unwrap();
    let mut deploy = spawn(&project, &sshd, &deploy_args(&sshd, 1, &[]));
    wait_for("the deploy script to start", || {
        project.remote().join("started").exists()
    });
    let pid = script_pid(&project);
    assert!(!is_lock_free(&project), "the deploy holds the lock");
    // As a killed CI runner: no chance to clean up.
    deploy.child().kill().unwrap();
    drop(deploy);
    // sshd sees the connection close; the lock holder ends with the
    // session, and the watchdog stops the script.
    wait_for("the deploy script to be stopped on the host", || {
        !slipway_testbed::process_exists(pid)
    });
    assert!(!project.remote().join("finished").exists());
    wait_for("the host to free the lock", || is_lock_free(&project));
    assert_eq!(releases(&project, &sshd), []);
    // `lock status` tells the last holder is gone.
    let (code, report, stderr) = project.run_json(&sshd, &["lock", "status", "--env", "prod"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "unlocked");
    assert_eq!(report["hosts"][0]["lock"]["is_alive"], false);

    // The next deploy succeeds, with no manual `lock release`.
    fs_err::remove_file(project.remote().join("slow")).unwrap();
    let (code, _, stderr) = run(&project, &sshd, &deploy_args(&sshd, 2, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", fake_ref(2))
    );
    assert_eq!(releases(&project, &sshd), [(1, "deployed".to_owned())]);
}

/// Sends `signal` (`INT`, `TERM`) to a running deploy; it stops its
/// command, records the release `cancelled`, frees the lock and exits
/// with `code`.
fn cancel_with(signal: &str, code: i32) {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    );
    let (status, _, stderr) = run(&project, &sshd, &deploy_args(&sshd, 1, &[]));
    assert_eq!(status, Some(0), "{stderr}");
    fs_err::write(project.remote().join("slow"), "").unwrap();
    let mut deploy = spawn(&project, &sshd, &deploy_args(&sshd, 2, &[]));
    wait_for("the deploy script to start", || {
        project.remote().join("started").exists()
    });
    let pid = script_pid(&project);
    // The signal's default action applies to ssh-deploy unless it handles it.
    let sent = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(deploy.child().id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
    let (status, report, stderr) = parse(&deploy.finish());
    assert_eq!(status, Some(code), "{report}\n{stderr}");
    let host = &report["hosts"][0];
    assert_eq!(host["outcome"], "cancelled", "{report}");
    let error = host["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("was cancelled by SIG{signal} and was stopped")),
        "{error}"
    );
    // Stopped before ssh-deploy exited, and the lock already free.
    assert!(
        !slipway_testbed::process_exists(pid),
        "the script still runs"
    );
    assert!(!project.remote().join("finished").exists());
    assert!(is_lock_free(&project), "the lock is still held");
    assert!(!project.remote().join(".slipway/holder.json").exists());
    assert_eq!(temp_files(&project.remote()), Vec::<String>::new());
    assert_eq!(
        releases(&project, &sshd),
        [(1, "deployed".to_owned()), (2, "cancelled".to_owned())]
    );
    // The next deploy needs nothing done by hand.
    fs_err::remove_file(project.remote().join("slow")).unwrap();
    let (status, _, stderr) = run(&project, &sshd, &deploy_args(&sshd, 3, &[]));
    assert_eq!(status, Some(0), "{stderr}");
}

#[test]
fn sigint_cancels_a_deploy_cleanly_and_exits_130() {
    cancel_with("INT", 130);
}

#[test]
fn sigterm_cancels_a_deploy_cleanly_and_exits_143() {
    cancel_with("TERM", 143);
}

/// How long the tool may take past its own bounds before the test calls it
/// a hang: generous, since the machine is shared.
const HANG: Duration = Duration::from_secs(40);

/// Waits for a deploy that should end within `bound` (plus [`HANG`]);
/// returns its output.
fn finish_within(mut deploy: Guard, bound: Duration) -> Output {
    let deadline = Instant::now() + bound + HANG;
    while deploy.child().try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "ssh-deploy still runs {:?} after its bound: it hangs",
            bound + HANG
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    deploy.finish()
}

#[test]
fn a_network_gone_silent_mid_command_fails_within_the_timeout_and_the_host_frees_the_lock() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    );
    fs_err::create_dir_all(project.remote()).unwrap();
    fs_err::write(project.remote().join("slow"), "").unwrap();
    let proxy = TcpProxy::start(([127, 0, 0, 1], sshd.port()).into());
    let host = through(&sshd, &proxy);
    let deploy = spawn(
        &project,
        &sshd,
        &deploy_args(
            &sshd,
            1,
            &[
                "--host",
                &host,
                "--timeout",
                "4s",
                "--connect-timeout",
                "3s",
            ],
        ),
    );
    wait_for("the deploy script to start", || {
        project.remote().join("started").exists()
    });
    let pid = script_pid(&project);
    // Nothing is closed or reset: the bytes just stop arriving.
    proxy.silence_all();
    let (code, report, stderr) = parse(&finish_within(deploy, Duration::from_secs(4 + 3)));
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("ran longer than 4s (`--timeout`)"),
        "{error}\n{stderr}"
    );
    assert!(error.contains(LOST), "{error}");
    // sshd on the host never heard of it: the heartbeat's absence frees the
    // lock (2 × 3 s + 10 s), and then the watchdog stops the script.
    wait_for("the host to free the lock", || is_lock_free(&project));
    wait_for("the deploy script to be stopped on the host", || {
        !slipway_testbed::process_exists(pid)
    });
    assert!(!project.remote().join("finished").exists());
    assert_eq!(releases(&project, &sshd), []);
}

#[test]
fn a_network_gone_silent_mid_upload_fails_within_the_connect_timeout() {
    let sshd = Sshd::start();
    let old = "a".repeat(8 << 20);
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("big.bin", &old, 0o644), ("deploy.sh", SCRIPT, 0o755)],
    );
    let (code, _, stderr) = run(&project, &sshd, &deploy_args(&sshd, 1, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    fs_err::write(
        project.dir.path().join("deploy/big.bin"),
        "b".repeat(8 << 20),
    )
    .unwrap();
    let proxy = TcpProxy::start(([127, 0, 0, 1], sshd.port()).into());
    // Slow enough for the upload to be under way when the network goes quiet.
    proxy.set_mode(Mode::Throttle(2 << 20));
    let host = through(&sshd, &proxy);
    let deploy = spawn(
        &project,
        &sshd,
        &deploy_args(&sshd, 2, &["--host", &host, "--connect-timeout", "3s"]),
    );
    wait_for("the upload to be under way", || proxy.forwarded() > 2 << 20);
    proxy.silence_all();
    let (code, report, stderr) = parse(&finish_within(deploy, Duration::from_secs(3)));
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(error.contains("cannot upload `big.bin`"), "{error}");
    assert!(error.contains(LOST), "{error}");
    assert!(project.remote_file("big.bin") == old, "big.bin changed");
    wait_for("the host to free the lock", || is_lock_free(&project));
    assert_eq!(releases(&project, &sshd), [(1, "deployed".to_owned())]);
}

#[test]
fn a_command_past_the_timeout_is_stopped_on_the_host_and_the_lock_released() {
    let sshd = Sshd::start();
    // It ignores SIGTERM, so only the SIGKILL that follows stops it.
    let project = Project::new(
        &sshd,
        r#"command = "trap '' TERM; ./deploy.sh""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    );
    fs_err::create_dir_all(project.remote()).unwrap();
    fs_err::write(project.remote().join("slow"), "").unwrap();
    let (code, report, stderr) = run(
        &project,
        &sshd,
        &deploy_args(&sshd, 1, &["--timeout", "2s"]),
    );
    assert_eq!(code, Some(1), "{report}\n{stderr}");
    let host = &report["hosts"][0];
    assert_eq!(host["outcome"], "failed");
    let error = host["error"].as_str().unwrap();
    assert!(
        error.contains("ran longer than 2s (`--timeout`) and was stopped"),
        "{error}"
    );
    assert!(
        !slipway_testbed::process_exists(script_pid(&project)),
        "the deploy script still runs on the host"
    );
    assert!(!project.remote().join("finished").exists());
    assert!(is_lock_free(&project));
    assert_eq!(releases(&project, &sshd), [(1, "failed".to_owned())]);
}

#[test]
fn a_command_stopped_at_the_timeout_gets_its_grace_to_clean_up() {
    let sshd = Sshd::start();
    // On SIGTERM it cleans up for a second, then exits: the stop waits for
    // it (up to 10 s), not only for the shell that leads its group.
    let project = Project::new(
        &sshd,
        r#"command = "trap 'sleep 1; echo done > cleaned; exit 0' TERM; sleep 30 & wait""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    );
    let (code, report, stderr) = run(
        &project,
        &sshd,
        &deploy_args(&sshd, 1, &["--timeout", "2s"]),
    );
    assert_eq!(code, Some(1), "{report}\n{stderr}");
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("ran longer than 2s (`--timeout`) and was stopped"),
        "{error}"
    );
    assert_eq!(project.remote_file("cleaned"), "done\n");
    assert!(is_lock_free(&project));
}

/// Serves HTTP on `listener`: `GET /ready` answers 200 while `current.txt`
/// in `remote` does not name `fake_ref(bad)`, else 503; until the test ends.
fn serve_ready_unless(listener: TcpListener, remote: &Path, bad: u8) {
    let current = remote.join("current.txt");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let is_bad = fs_err::read_to_string(&current).is_ok_and(|c| c.contains(&fake_ref(bad)));
            let status = if is_bad {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = (&stream).write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .as_bytes(),
            );
        }
    });
}

#[test]
fn a_release_never_ready_is_rolled_back_and_the_error_names_host_url_and_timeout() {
    // tests/containers.rs proves the same rollback with real containers;
    // this one pins what the user reads, without docker.
    let sshd = Sshd::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let extra = format!(
        "command = \"./deploy.sh\"\nready_url = \"http://127.0.0.1:{port}/ready\"\nready_timeout = \"2s\""
    );
    let project = Project::new(&sshd, &extra, &[("deploy.sh", SCRIPT, 0o755)]);
    serve_ready_unless(listener, &project.remote(), 2);
    let (code, _, stderr) = run(&project, &sshd, &deploy_args(&sshd, 1, &[]));
    assert_eq!(code, Some(0), "{stderr}");

    // Plain output: what a person reads.
    let args = deploy_args(&sshd, 2, &[]);
    let args: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
    let output = project.run(&sshd, &args);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let host = format!("{}@127.0.0.1:{}", sshd.user(), sshd.port());
    assert!(
        stdout.starts_with(&format!("rolled_back {host} release=2")),
        "{stdout}"
    );
    for expected in [
        format!("`http://127.0.0.1:{port}/ready` was not ready within 2s"),
        "status 503".to_owned(),
        "rolled back to release 1 (recorded as release 3)".to_owned(),
    ] {
        assert!(stdout.contains(&expected), "{expected}\n{stdout}");
    }
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", fake_ref(1))
    );
    assert_eq!(
        releases(&project, &sshd),
        [
            (1, "deployed".to_owned()),
            (2, "failed".to_owned()),
            (3, "deployed".to_owned())
        ]
    );
}

/// Runs `deploy` against `host` with `--connect-timeout 5s`; returns the
/// exit code and the host's error, checking it took less than 20 s.
fn unreachable(sshd: &Sshd, host: &str) -> (Option<i32>, String) {
    let project = Project::new(sshd, r#"command = "true""#, &[]);
    let started = Instant::now();
    let (code, report, _) = run(
        &project,
        sshd,
        &deploy_args(sshd, 1, &["--host", host, "--connect-timeout", "5s"]),
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not bounded: {host}"
    );
    assert_eq!(report["hosts"][0]["outcome"], "error");
    assert!(!project.remote().exists(), "nothing reached the host");
    (
        code,
        report["hosts"][0]["error"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn unreachable_hosts_fail_with_exit_3_naming_host_and_port() {
    let sshd = Sshd::start();
    let closed = slipway_testbed::free_port();
    let (code, error) = unreachable(&sshd, &format!("root@127.0.0.1:{closed}"));
    assert_eq!(code, Some(3));
    assert_eq!(
        error,
        format!(
            "preflight: cannot connect to `root@127.0.0.1:{closed}` at `127.0.0.1:{closed}`: Connection refused (os error 111)"
        )
    );

    // No port given means 22.
    let host = slipway_testbed::UNRESOLVABLE_HOST;
    let (code, error) = unreachable(&sshd, &format!("deploy@{host}"));
    assert_eq!(code, Some(3));
    assert!(
        error.starts_with(&format!(
            "preflight: cannot resolve `{host}` (host `deploy@{host}`, port 22): "
        )),
        "{error}"
    );

    // Accepted, then closed at once, as by a crashing server.
    let proxy = TcpProxy::start(([127, 0, 0, 1], sshd.port()).into());
    proxy.set_mode(Mode::Refuse);
    let host = through(&sshd, &proxy);
    let (code, error) = unreachable(&sshd, &host);
    assert_eq!(code, Some(3));
    assert!(
        error.starts_with(&format!("preflight: ssh handshake with `{host}` failed: ")),
        "{error}"
    );

    // Accepted, and then silence for longer than `--connect-timeout`.
    proxy.set_mode(Mode::Delay(Duration::from_secs(25)));
    let (code, error) = unreachable(&sshd, &host);
    assert_eq!(code, Some(3));
    assert!(
        error.starts_with(&format!("preflight: ssh handshake with `{host}` failed: ")),
        "{error}"
    );
}

/// A deploy script that fails loudly if another one runs at the same time
/// (`mkdir` is atomic), logs its start and end, and waits for `go`.
const EXCLUSIVE: &str = r#"#!/bin/sh
set -eu
mkdir running 2>/dev/null || echo "release $SLIPWAY_RELEASE overlapped" >> overlaps
echo "start $SLIPWAY_RELEASE" >> log
while [ ! -e go ]; do sleep 0.05; done
printf '%s\n' "$APP_IMAGE" > current.txt
echo "end $SLIPWAY_RELEASE" >> log
rmdir running
"#;

/// Reads a child's stderr into a shared string, on a thread.
fn collect_stderr(guard: &mut Guard) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let mut stderr = guard.child().stderr.take().unwrap();
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buffer) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    text
}

#[test]
fn of_two_deploys_at_the_same_moment_exactly_one_deploys_and_the_other_fails_fast() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", EXCLUSIVE, 0o755)],
    );
    let mut deploys = [1, 2].map(|n| {
        spawn(
            &project,
            &sshd,
            &deploy_args(&sshd, n, &["--lock-wait", "0s"]),
        )
    });
    // The winner waits for `go`, so the loser must have met its lock.
    let mut loser = None;
    wait_for("one deploy to give up", || {
        loser = deploys
            .iter_mut()
            .position(|d| d.child().try_wait().unwrap().is_some());
        loser.is_some()
    });
    fs_err::write(project.remote().join("go"), "").unwrap();
    let [first, second] = deploys;
    let (loser, winner) = match loser {
        Some(0) => (first, second),
        _ => (second, first),
    };
    let (code, report, stderr) = parse(&loser.finish());
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(error.contains("is locked by another deploy"), "{error}");
    let (code, report, stderr) = parse(&winner.finish());
    assert_eq!(code, Some(0), "{report}\n{stderr}");

    assert!(!project.remote().join("overlaps").exists());
    assert_eq!(project.remote_file("log"), "start 1\nend 1\n");
    assert_eq!(releases(&project, &sshd), [(1, "deployed".to_owned())]);
    let deployed = project.release(1)["images"]["APP_IMAGE"].clone();
    assert_eq!(
        format!("{}\n", deployed.as_str().unwrap()),
        project.remote_file("current.txt")
    );
    assert!(is_lock_free(&project));
}

#[test]
fn with_lock_wait_the_second_of_two_deploys_waits_and_then_deploys() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", EXCLUSIVE, 0o755)],
    );
    let mut deploys = [1, 2].map(|n| {
        spawn(
            &project,
            &sshd,
            &deploy_args(&sshd, n, &["--lock-wait", "30s"]),
        )
    });
    let stderrs = deploys.each_mut().map(collect_stderr);
    wait_for("one deploy to wait for the other's lock", || {
        stderrs
            .iter()
            .any(|s| s.lock().unwrap().contains("waiting for the lock, held by"))
    });
    fs_err::write(project.remote().join("go"), "").unwrap();
    for deploy in deploys {
        let output = deploy.finish();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }

    assert!(!project.remote().join("overlaps").exists());
    assert_eq!(
        project.remote_file("log"),
        "start 1\nend 1\nstart 2\nend 2\n"
    );
    assert_eq!(
        releases(&project, &sshd),
        [(1, "deployed".to_owned()), (2, "deployed".to_owned())]
    );
    // Each release records the image it deployed, the last one is live.
    let mut images: Vec<String> = [1, 2]
        .map(|id| {
            project.release(id)["images"]["APP_IMAGE"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .into();
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", images[1])
    );
    images.sort();
    assert_eq!(images, [fake_ref(1), fake_ref(2)]);
    assert!(is_lock_free(&project));
}

/// The sshd processes serving connections (descendants of the listener
/// `listener`, not the listener itself), as `(pid, comm)`.
fn sshd_sessions(listener: u32) -> Vec<u32> {
    let parent_of = |pid: u32| -> Option<(u32, String)> {
        let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let close = stat.rfind(')')?;
        let comm = stat[stat.find('(')? + 1..close].to_owned();
        let ppid = stat[close + 2..].split_whitespace().nth(1)?.parse().ok()?;
        Some((ppid, comm))
    };
    let mut found = Vec::new();
    for entry in fs_err::read_dir("/proc").unwrap() {
        let Ok(pid) = entry.unwrap().file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // An sshd whose chain of parents reaches the listener.
        let Some((_, comm)) = parent_of(pid) else {
            continue;
        };
        if comm != "sshd" || pid == listener {
            continue;
        }
        let mut at = pid;
        while let Some((ppid, _)) = parent_of(at) {
            if ppid == listener {
                found.push(pid);
                break;
            }
            if ppid <= 1 {
                break;
            }
            at = ppid;
        }
    }
    found
}

/// Sends `signal` to each PID.
fn signal_all(pids: &[u32], signal: &str) {
    for pid in pids {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
    }
}

/// Lets stopped sshd processes go on when the test ends, panics included.
struct Continue(Vec<u32>);

impl Drop for Continue {
    fn drop(&mut self) {
        signal_all(&self.0, "CONT");
    }
}

#[test]
fn a_stopped_sshd_mid_command_fails_within_the_timeout_and_the_host_frees_the_lock() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    );
    fs_err::create_dir_all(project.remote()).unwrap();
    fs_err::write(project.remote().join("slow"), "").unwrap();
    let deploy = spawn(
        &project,
        &sshd,
        &deploy_args(&sshd, 1, &["--timeout", "4s", "--connect-timeout", "3s"]),
    );
    wait_for("the deploy script to start", || {
        project.remote().join("started").exists()
    });
    let pid = script_pid(&project);
    // SIGSTOP the sshd processes of the deploy's connection: the socket
    // stays open, nothing answers.
    let stopped = Continue(sshd_sessions(sshd.pid()));
    assert!(!stopped.0.is_empty(), "no sshd session found");
    signal_all(&stopped.0, "STOP");
    let (code, report, stderr) = parse(&finish_within(deploy, Duration::from_secs(4 + 3)));
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("ran longer than 4s (`--timeout`)"),
        "{error}"
    );
    assert!(error.contains(LOST), "{error}");
    // With sshd still stopped, the lock holder misses its heartbeat and
    // exits, and the watchdog stops the script.
    wait_for("the host to free the lock", || is_lock_free(&project));
    wait_for("the deploy script to be stopped on the host", || {
        !slipway_testbed::process_exists(pid)
    });
    assert!(!project.remote().join("finished").exists());
    drop(stopped);
    assert_eq!(releases(&project, &sshd), []);
}

#[test]
fn sigint_mid_upload_removes_the_partial_file_and_records_the_release_cancelled() {
    let sshd = Sshd::start();
    let old = "a".repeat(8 << 20);
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("big.bin", &old, 0o644), ("deploy.sh", SCRIPT, 0o755)],
    );
    let (code, _, stderr) = run(&project, &sshd, &deploy_args(&sshd, 1, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    fs_err::write(
        project.dir.path().join("deploy/big.bin"),
        "b".repeat(8 << 20),
    )
    .unwrap();
    let proxy = TcpProxy::start(([127, 0, 0, 1], sshd.port()).into());
    proxy.set_mode(Mode::Throttle(2 << 20));
    let host = through(&sshd, &proxy);
    let mut deploy = spawn(&project, &sshd, &deploy_args(&sshd, 2, &["--host", &host]));
    wait_for("the upload to be under way", || proxy.forwarded() > 2 << 20);
    let sent = std::process::Command::new("kill")
        .arg("-INT")
        .arg(deploy.child().id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
    let (code, report, stderr) = parse(&deploy.finish());
    assert_eq!(code, Some(130), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "cancelled", "{report}");
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("cancelled by SIGINT while uploading; nothing was run"),
        "{error}"
    );
    assert!(project.remote_file("big.bin") == old, "big.bin changed");
    assert_eq!(temp_files(&project.remote()), Vec::<String>::new());
    assert!(is_lock_free(&project));
    assert_eq!(
        releases(&project, &sshd),
        [(1, "deployed".to_owned()), (2, "cancelled".to_owned())]
    );
}

#[test]
fn a_network_that_trickles_fails_the_upload_at_the_timeout() {
    let sshd = Sshd::start();
    let old = "a".repeat(8 << 20);
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("big.bin", &old, 0o644), ("deploy.sh", SCRIPT, 0o755)],
    );
    let (code, _, stderr) = run(&project, &sshd, &deploy_args(&sshd, 1, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    fs_err::write(
        project.dir.path().join("deploy/big.bin"),
        "b".repeat(8 << 20),
    )
    .unwrap();
    let proxy = TcpProxy::start(([127, 0, 0, 1], sshd.port()).into());
    // Never silent long enough for `--connect-timeout`: 8 MiB would take
    // two minutes.
    proxy.set_mode(Mode::Throttle(64 << 10));
    let host = through(&sshd, &proxy);
    let deploy = spawn(
        &project,
        &sshd,
        &deploy_args(
            &sshd,
            2,
            &[
                "--host",
                &host,
                "--timeout",
                "3s",
                "--connect-timeout",
                "5s",
            ],
        ),
    );
    let (code, report, stderr) = parse(&finish_within(deploy, Duration::from_secs(3 + 5)));
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(error.contains("cannot upload `big.bin`"), "{error}");
    assert!(
        error.contains("the upload ran longer than `--timeout`"),
        "{error}"
    );
    assert!(project.remote_file("big.bin") == old, "big.bin changed");
    wait_for("the host to free the lock", || is_lock_free(&project));
    assert_eq!(releases(&project, &sshd), [(1, "deployed".to_owned())]);
}
