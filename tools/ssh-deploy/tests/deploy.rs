//! Deploys against the test bed's real sshd (no containers): uploads,
//! deploy.env, the remote command, releases, rollback and dry runs.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use common::{Project, fake_ref};
use slipway_testbed::Sshd;
use slipway_testbed::cmd::Cmd;

const SCRIPT: &str = "#!/bin/sh\nset -eu\necho \"deploying $APP_IMAGE as release $SLIPWAY_RELEASE\"\necho \"to stderr\" >&2\nprintf '%s\\n' \"$APP_IMAGE\" > current.txt\n";

#[test]
fn a_deploy_uploads_the_bundle_writes_deploy_env_runs_the_command_and_records_the_release() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[
            ("deploy.sh", SCRIPT, 0o750),
            ("compose.yml", "services: {}\n", 0o640),
        ],
    );
    let image = format!("app={}", fake_ref(1));
    let (code, report, stderr) =
        project.run_json(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    let host = &report["hosts"][0];
    assert_eq!(host["outcome"], "deployed");
    assert_eq!(host["release"], 1);
    // No ready URL: no readiness check ran, so `ready` and `ready_ms` are null.
    assert_eq!(host.get("ready"), Some(&serde_json::Value::Null));
    assert_eq!(host.get("ready_ms"), Some(&serde_json::Value::Null));
    assert_eq!(
        host["uploaded"],
        serde_json::json!(["deploy.sh", "compose.yml", "deploy.env"])
    );
    assert!(
        stderr.contains(&format!("| deploying {} as release 1", fake_ref(1))),
        "{stderr}"
    );
    assert!(stderr.contains("| to stderr"), "{stderr}");
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", fake_ref(1))
    );
    assert_eq!(project.remote_mode("deploy.sh"), 0o750);
    assert_eq!(project.remote_mode("compose.yml"), 0o640);
    assert_eq!(project.remote_mode("deploy.env"), 0o600);
    assert!(
        project
            .remote_file("deploy.env")
            .ends_with(&format!("\nAPP_IMAGE='{}'\n", fake_ref(1)))
    );
    let record = project.release(1);
    assert_eq!(record["result"], "deployed");
    assert_eq!(record["images"]["APP_IMAGE"], fake_ref(1));
    assert!(project.is_lock_free(), "the lock is released");

    // The same deploy again sends nothing; a new image sends only deploy.env.
    let (code, report, stderr) =
        project.run_json(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["hosts"][0]["uploaded"], serde_json::json!([]));
    assert_eq!(
        report["hosts"][0]["unchanged"],
        serde_json::json!(["deploy.sh", "compose.yml", "deploy.env"])
    );
    let image = format!("app={}", fake_ref(2));
    let (code, report, _) =
        project.run_json(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0));
    assert_eq!(
        report["hosts"][0]["uploaded"],
        serde_json::json!(["deploy.env"])
    );
    assert_eq!(report["hosts"][0]["release"], 3);

    // `releases` lists them; `rollback` redeploys the previous good images.
    let (code, report, _) = project.run_json(&sshd, &["releases", "--env", "prod"]);
    assert_eq!(code, Some(0));
    let ids: Vec<u64> = report["hosts"][0]["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    let (code, report, stderr) = project.run_json(&sshd, &["rollback", "--env", "prod"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["hosts"][0]["release"], 4);
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", fake_ref(1))
    );
    assert_eq!(project.release(4)["rollback_of"], 3);
    let (code, _, _) = project.run_json(&sshd, &["rollback", "--env", "prod", "--to", "3"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        project.remote_file("current.txt"),
        format!("{}\n", fake_ref(2))
    );
}

#[test]
fn a_failing_remote_command_fails_the_deploy_with_exit_1() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "echo migrating; exit 7""#,
        &[("compose.yml", "services: {}\n", 0o644)],
    );
    let image = format!("app={}", fake_ref(1));
    let (code, report, stderr) =
        project.run_json(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "failed");
    assert_eq!(report["hosts"][0]["exit_status"], 7);
    assert!(stderr.contains("| migrating"), "{stderr}");
    assert_eq!(project.release(1)["result"], "failed");
    assert!(project.is_lock_free());
}

/// The upload's and the lock holder's failures are told by their exit
/// status and a last line carrying a per-deploy nonce: a command that
/// prints the bare old markers and exits with those statuses is the
/// command failing, with its output shown and the release recorded.
#[test]
fn a_command_printing_the_upload_or_holder_marker_fails_as_itself() {
    for (marker, status) in [
        ("slipway-upload: failed", 85),
        ("slipway-holder: failed", 87),
    ] {
        let sshd = Sshd::start();
        let project = Project::new(
            &sshd,
            &format!(r#"command = "echo '{marker}' >&2; exit {status}""#),
            &[("compose.yml", "services: {}\n", 0o644)],
        );
        let image = format!("app={}", fake_ref(1));
        let (code, report, stderr) =
            project.run_json(&sshd, &["deploy", "--env", "prod", "--image", &image]);
        assert_eq!(code, Some(1), "{stderr}");
        let host = &report["hosts"][0];
        assert_eq!(host["outcome"], "failed", "{report}");
        assert_eq!(host["exit_status"], status, "{report}");
        assert!(stderr.contains(&format!("| {marker}")), "{stderr}");
        assert!(!stderr.contains("cannot upload"), "{stderr}");
        assert!(!stderr.contains("cannot record who holds"), "{stderr}");
        assert_eq!(project.release(1)["result"], "failed");
        assert_eq!(project.remote_file("compose.yml"), "services: {}\n");
        assert!(project.is_lock_free());
    }
}

/// A command of several lines cannot go as the one line a warm channel
/// reads (see `ssh::Warm`): it runs on a channel of its own, whole.
#[test]
fn a_command_of_several_lines_runs_whole() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        "command = \"\"\"\necho first\necho second > lines.txt\n\"\"\"",
        &[("compose.yml", "services: {}\n", 0o644)],
    );
    let image = format!("app={}", fake_ref(1));
    let (code, report, stderr) =
        project.run_json(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert!(stderr.contains("| first"), "{stderr}");
    assert_eq!(project.remote_file("lines.txt"), "second\n");
    assert_eq!(project.release(1)["result"], "deployed");
}

#[test]
fn a_command_that_runs_too_long_fails_at_the_timeout() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "sleep 30""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    let image = format!("app={}", fake_ref(1));
    let (code, report, _) = project.run_json(
        &sshd,
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            &image,
            "--timeout",
            "1s",
        ],
    );
    assert_eq!(code, Some(1), "{report}");
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("ran longer than 1s (`--timeout`)"),
        "{error}"
    );
    // Stopped on the host (tests/faults.rs proves it), so the lock goes.
    assert!(error.contains("and was stopped"), "{error}");
    assert!(project.is_lock_free());
    assert_eq!(project.release(1)["result"], "failed");
}

#[test]
fn an_injection_attempt_in_an_image_value_is_refused_before_anything_runs() {
    let sshd = Sshd::start();
    let marker = tempfile::tempdir().unwrap();
    let pwned = marker.path().join("pwned");
    let project = Project::new(
        &sshd,
        r#"command = "true""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    for value in [
        format!("app=127.0.0.1:5000/app:$(touch {})", pwned.display()),
        format!(
            "app=127.0.0.1:5000/app@sha256:{}'; touch {}; '",
            "a".repeat(64),
            pwned.display()
        ),
        format!("app=127.0.0.1:5000/app:`touch {}`", pwned.display()),
    ] {
        let output = project.run(&sshd, &["deploy", "--env", "prod", "--image", &value]);
        assert_eq!(output.status.code(), Some(2), "{value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("error: invalid `--image {value}`\n  caused by: ")),
            "{stderr}"
        );
    }
    assert!(!pwned.exists());
    assert!(!project.remote().exists(), "nothing reached the host");
}

#[test]
fn a_dry_run_shows_files_env_and_command_without_connecting() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh --fast""#,
        &[("deploy.sh", SCRIPT, 0o755)],
    );
    let image = format!("app={}", fake_ref(1));
    let output = project.run(
        &sshd,
        &["deploy", "--env", "prod", "--image", &image, "--dry-run"],
    );
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("upload deploy.sh mode=0755 size="),
        "{stdout}"
    );
    assert!(stdout.contains("upload deploy.env mode=0600"), "{stdout}");
    assert!(
        stdout.contains(&format!("  APP_IMAGE='{}'", fake_ref(1))),
        "{stdout}"
    );
    assert!(stdout.contains("  SLIPWAY_ENV=prod\n"), "{stdout}");
    assert!(
        stdout.contains("exec env SLIPWAY_ENV=prod 'SLIPWAY_RELEASE=<next release number>'"),
        "{stdout}"
    );
    assert!(stdout.contains("sh -c './deploy.sh --fast'"), "{stdout}");
    assert!(!project.remote().exists());
}

#[test]
fn missing_and_mutable_images_are_usage_errors() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "true""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    for (args, expected) in [
        (vec![], "env `prod` needs `--image app=…` (for `APP_IMAGE`)"),
        (
            vec!["--image", "app=127.0.0.1:5000/app:latest"],
            "is not immutable",
        ),
        (
            vec!["--image", "web=127.0.0.1:5000/app:v1"],
            "names image `web`, which env `prod` does not deploy; its images are `app`",
        ),
    ] {
        let mut all = vec!["deploy", "--env", "prod"];
        all.extend(args);
        let output = project.run(&sshd, &all);
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn the_key_can_come_from_an_environment_variable_and_is_never_printed() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "true""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    let image = format!("app={}", fake_ref(1));
    let key = sshd.client_key_pem();
    let output = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
        .current_dir(project.dir.path())
        .env("DEPLOY_KEY", &key)
        .env("GITHUB_ACTIONS", "true")
        .args([
            "deploy",
            "--env",
            "prod",
            "--image",
            &image,
            "--ssh-key-env",
            "DEPLOY_KEY",
            "--known-hosts",
        ])
        .arg(sshd.known_hosts_path())
        .run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let secret_line = key.lines().nth(1).unwrap();
    assert!(!stdout.contains(secret_line));
    let unmasked: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(secret_line) && !l.starts_with("::add-mask::"))
        .collect();
    assert!(unmasked.is_empty(), "{unmasked:?}");
    assert!(stderr.contains("::add-mask::"), "{stderr}");
}

#[test]
fn a_large_file_is_sent_on_the_command_s_stdin_and_skipped_when_unchanged() {
    let sshd = Sshd::start();
    // Larger than the stream's 4 MiB chunks, not a multiple of any buffer size.
    let large: String = (0..17 * 1024 * 1024 + 7)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let project = Project::new(
        &sshd,
        r#"command = "wc -c < large.bin""#,
        &[("large.bin", &large, 0o640), ("deploy.sh", SCRIPT, 0o755)],
    );
    let image = format!("app={}", fake_ref(1));
    let (code, report, stderr) =
        project.run_json(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(
        report["hosts"][0]["uploaded"],
        serde_json::json!(["large.bin", "deploy.sh", "deploy.env"])
    );
    assert!(stderr.contains(&format!("| {}", large.len())), "{stderr}");
    assert!(project.remote_file("large.bin") == large);
    assert_eq!(project.remote_mode("large.bin"), 0o640);
    assert!(!project.remote().join(".slipway/staging").exists());

    let (code, report, _) =
        project.run_json(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0));
    assert_eq!(report["hosts"][0]["uploaded"], serde_json::json!([]));
}

/// Each remote command costs a login shell (and the user's rc files, 100–500
/// ms where they are heavy): a deploy runs one, on one connection, as the
/// tar pipe a user would type does. That shell, the lock holder's, first
/// runs the preflight, then holds the lock, starts the command line (which
/// records who holds the lock, removes an interrupted deploy's leftovers,
/// unpacks the files sent on the holder's stdin and runs the env's command)
/// and writes the release record with the bundle manifest. Everything else
/// goes through SFTP.
#[test]
fn a_deploy_that_goes_through_runs_one_remote_command_on_one_connection() {
    let sshd = Sshd::start();
    let connections = || sshd.log().matches("Accepted publickey").count();
    let connected = connections();
    // The lock holder's: preflight, lock, command line, record.
    deploy_twice_with_remote_commands(&sshd, 1);
    assert_eq!(connections() - connected, 2, "{}", sshd.log());
}

/// A host whose `dd` cannot stop at a byte count (an old BusyBox, a BSD)
/// gets the command line in a login shell of its own, and the release
/// record read a byte at a time: the deploy is the same, one shell dearer.
#[test]
fn a_host_whose_dd_cannot_count_bytes_gets_the_command_line_in_a_shell_of_its_own() {
    let shims = tempfile::tempdir().unwrap();
    let dd = shims.path().join("dd");
    fs_err::write(
        &dd,
        "#!/bin/sh\ncase \"$*\" in *count_bytes*) echo \"dd: invalid input flag: 'count_bytes'\" >&2; exit 1;; esac\nexec /bin/dd \"$@\"\n",
    )
    .unwrap();
    fs_err::set_permissions(&dd, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let sshd = Sshd::start_with(&format!(
        "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin\n",
        shims.path().display()
    ));
    // The lock holder's, and the command line's own.
    deploy_twice_with_remote_commands(&sshd, 2);
}

/// Deploys a project twice through `sshd`: the first deploy runs `commands`
/// remote commands and is recorded; the second, the manifest having gone
/// with the first record, sends nothing again.
#[track_caller]
fn deploy_twice_with_remote_commands(sshd: &Sshd, commands: usize) {
    let project = Project::new(
        sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", SCRIPT, 0o750)],
    );
    let count = || sshd.log().matches("Starting session: command").count();
    let before = count();
    let image = format!("app={}", fake_ref(1));
    let (code, report, stderr) =
        project.run_json(sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "deployed");
    assert_eq!(count() - before, commands, "{}", sshd.log());
    assert_eq!(project.release(1)["result"], "deployed");
    assert_eq!(project.remote_file("deploy.sh"), SCRIPT);
    let (code, report, stderr) =
        project.run_json(sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(
        report["hosts"][0]["unchanged"],
        serde_json::json!(["deploy.sh", "deploy.env"])
    );
    assert_eq!(project.release(2)["result"], "deployed");
}
