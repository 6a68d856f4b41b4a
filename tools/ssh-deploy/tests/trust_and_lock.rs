//! Host keys are checked before anything is sent, and one deploy per env
//! runs at a time; against the test bed's real sshd.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use std::process::Stdio;

use common::{Project, fake_ref, wait_for};
use slipway_testbed::Sshd;
use slipway_testbed::cmd::Cmd;

fn deploy_args(image: &str, known_hosts: &std::path::Path) -> Vec<String> {
    vec![
        "--format".into(),
        "json".into(),
        "deploy".into(),
        "--env".into(),
        "prod".into(),
        "--image".into(),
        image.into(),
        "--known-hosts".into(),
        known_hosts.display().to_string(),
    ]
}

#[test]
fn an_unknown_host_key_is_refused_with_its_fingerprint_and_trusted_only_on_request() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "touch ran""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    let image = format!("app={}", fake_ref(1));
    let empty = project.dir.path().join("known_hosts");
    fs_err::write(&empty, "").unwrap();
    let run = |extra: &[&str]| {
        let mut command = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"));
        command
            .current_dir(project.dir.path())
            .args(deploy_args(&image, &empty))
            .arg("--ssh-key")
            .arg(sshd.client_key_path())
            .args(extra);
        command.run()
    };

    let output = run(&[]);
    assert_eq!(output.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(error.contains("is unknown: its fingerprint is"), "{error}");
    assert!(error.contains(&sshd.host_key_fingerprint()), "{error}");
    assert!(!project.remote().exists(), "nothing was sent");

    let wrong = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    let output = run(&["--host-key-fingerprint", wrong]);
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stdout).contains("not the pinned"));
    assert!(!project.remote().exists());

    let output = run(&["--host-key-fingerprint", &sshd.host_key_fingerprint()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    let output = run(&["--accept-new-host-key"]);
    assert_eq!(output.status.code(), Some(0));
    let known = fs_err::read_to_string(&empty).unwrap();
    assert!(
        known.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", sshd.port())),
        "{known}"
    );
    // Now known, the key is accepted without the flag.
    assert_eq!(run(&[]).status.code(), Some(0));
}

#[test]
fn a_changed_host_key_is_refused() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "true""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    let other = Sshd::start();
    // `other`'s key listed under `sshd`'s address.
    let key = other.host_public_key();
    let mut words = key.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{} {} {}\n",
        sshd.port(),
        words.next().unwrap(),
        words.next().unwrap()
    );
    let known = project.dir.path().join("known_hosts");
    fs_err::write(&known, line).unwrap();
    let output = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
        .current_dir(project.dir.path())
        .args(deploy_args(&format!("app={}", fake_ref(1)), &known))
        .args(["--accept-new-host-key", "--ssh-key"])
        .arg(sshd.client_key_path())
        .run();
    assert_eq!(output.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("has CHANGED"), "{stdout}");
    assert!(stdout.contains(&sshd.host_key_fingerprint()), "{stdout}");
    // The way out is named, exactly: remove the old key, or pin the new one.
    let remove = format!(
        "ssh-keygen -R '[127.0.0.1]:{}' -f '{}'",
        sshd.port(),
        known.display()
    );
    assert!(stdout.contains(&remove), "{stdout}");
    let pin = format!("--host-key-fingerprint {}", sshd.host_key_fingerprint());
    assert!(stdout.contains(&pin), "{stdout}");
    // Following it works: `ssh-keygen -R`, then trust on first use.
    let removed = std::process::Command::new("ssh-keygen")
        .args(["-R", &format!("[127.0.0.1]:{}", sshd.port()), "-f"])
        .arg(&known)
        .output()
        .unwrap();
    assert!(removed.status.success(), "{removed:?}");
    let output = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
        .current_dir(project.dir.path())
        .args(deploy_args(&format!("app={}", fake_ref(1)), &known))
        .args(["--accept-new-host-key", "--ssh-key"])
        .arg(sshd.client_key_path())
        .run();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn an_encrypted_key_is_used_with_its_passphrase_from_the_environment_and_refused_without() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "true""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    // The test bed's client key, encrypted with a passphrase (same key pair).
    let key = project.dir.path().join("id_encrypted");
    fs_err::copy(sshd.client_key_path(), &key).unwrap();
    let passphrase = "pass-PHRASE-4f1c0e8a9b";
    let encrypted = std::process::Command::new("ssh-keygen")
        .args(["-p", "-q", "-N", passphrase, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(encrypted.status.success(), "{encrypted:?}");
    let image = format!("app={}", fake_ref(1));
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let output = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
            .current_dir(project.dir.path())
            .envs(env.iter().copied())
            .args([
                "deploy",
                "--env",
                "prod",
                "--image",
                &image,
                "--known-hosts",
            ])
            .arg(sshd.known_hosts_path())
            .arg("--ssh-key")
            .arg(&key)
            .args(extra)
            .run();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !all.contains(passphrase),
            "the passphrase was printed:\n{all}"
        );
        (output.status.code(), all)
    };
    // Without a passphrase: refused before connecting, saying how to give one.
    let (code, all) = run(&[], &[]);
    assert_eq!(code, Some(2), "{all}");
    assert!(
        all.contains("is encrypted with a passphrase; put the passphrase in an environment variable and name it with `--ssh-key-passphrase-env VARIABLE`"),
        "{all}"
    );
    assert!(!project.remote().exists(), "nothing reached the host");
    // A variable that is not set.
    let (code, all) = run(&["--ssh-key-passphrase-env", "DEPLOY_KEY_PASSPHRASE"], &[]);
    assert_eq!(code, Some(2), "{all}");
    assert!(all.contains("`--ssh-key-passphrase-env DEPLOY_KEY_PASSPHRASE` names an environment variable that is unset or empty"), "{all}");
    // The passphrase pasted in place of the name is refused, not echoed.
    let (code, all) = run(&["--ssh-key-passphrase-env", passphrase], &[]);
    assert_eq!(code, Some(2), "{all}");
    // With it, from the flag or from slipway.toml: deployed.
    let (code, all) = run(
        &["--ssh-key-passphrase-env", "DEPLOY_KEY_PASSPHRASE"],
        &[("DEPLOY_KEY_PASSPHRASE", passphrase)],
    );
    assert_eq!(code, Some(0), "{all}");
    let toml = project.dir.path().join("slipway.toml");
    let text = fs_err::read_to_string(&toml).unwrap();
    fs_err::write(
        &toml,
        text.replace(
            "[envs.prod]\n",
            "[envs.prod]\nssh_key_passphrase_env = \"DEPLOY_KEY_PASSPHRASE\"\n",
        ),
    )
    .unwrap();
    let (code, all) = run(&[], &[("DEPLOY_KEY_PASSPHRASE", passphrase)]);
    assert_eq!(code, Some(0), "{all}");
}

#[test]
fn a_concurrent_deploy_is_refused_by_the_lock() {
    let sshd = Sshd::start();
    // The first deploy holds the lock until the test creates `go`.
    let project = Project::new(
        &sshd,
        r#"command = "touch started; while [ ! -e go ]; do sleep 0.05; done""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    let image = format!("app={}", fake_ref(1));
    let first = project
        .command(&sshd, &["deploy", "--env", "prod", "--image", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = scopeguard(first);
    wait_for("the first deploy to start", || {
        project.remote().join("started").exists()
    });

    let (code, report, _) = project.run_json(
        &sshd,
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            &image,
            "--lock-wait",
            "0s",
        ],
    );
    assert_eq!(code, Some(3));
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(error.contains("env `prod` on"), "{error}");
    assert!(
        error.contains("is locked by another deploy: held by"),
        "{error}"
    );
    assert!(error.contains("for release 1"), "{error}");
    assert!(
        error.contains("the lock frees itself when that deploy ends or its connection dies"),
        "{error}"
    );

    // `lock status`: who holds it, and that it is alive.
    let (code, report, _) = project.run_json(&sshd, &["lock", "status", "--env", "prod"]);
    assert_eq!(code, Some(0));
    let host = &report["hosts"][0];
    assert_eq!(host["outcome"], "locked");
    assert_eq!(host["lock"]["release"], 1);
    assert_eq!(host["lock"]["is_alive"], true);
    assert_eq!(host["lock"]["pid"], first.0.id());
    let holder_pid = host["lock"]["host_pid"].as_u64().unwrap();
    let output = project.run(&sshd, &["lock", "status", "--env", "prod"]);
    let plain = String::from_utf8_lossy(&output.stdout);
    assert!(plain.starts_with("locked "), "{plain}");
    assert!(
        plain.contains(&format!("pid {} on `", first.0.id()))
            && plain.contains(&format!("lock holder pid {holder_pid} on the host, alive")),
        "{plain}"
    );

    // `lock release` refuses a live holder, and says how to force it.
    let (code, report, _) = project.run_json(&sshd, &["lock", "release", "--env", "prod"]);
    assert_eq!(code, Some(3));
    let error = report["hosts"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("is held by a live deploy: held by"),
        "{error}"
    );
    assert!(
        error.contains(
            "to stop that deploy now, run `ssh-deploy lock release --force --env prod --host"
        ),
        "{error}"
    );
    assert!(!project.is_lock_free(), "the refusal left the lock alone");

    fs_err::write(project.remote().join("go"), "").unwrap();
    assert!(first.0.wait().unwrap().success());
    let (_, report, _) = project.run_json(&sshd, &["lock", "status", "--env", "prod"]);
    assert_eq!(report["hosts"][0]["outcome"], "unlocked");
}

#[test]
fn lock_release_force_stops_a_live_deploy_and_frees_its_lock() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "echo $$ > cmd.pid; touch started; while [ ! -e go ]; do sleep 0.05; done; touch finished""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    let image = format!("app={}", fake_ref(1));
    let first = project
        .command(&sshd, &["deploy", "--env", "prod", "--image", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = scopeguard(first);
    wait_for("the first deploy to start", || {
        project.remote().join("started").exists()
    });
    let pid: u32 = fs_err::read_to_string(project.remote().join("cmd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (code, report, stderr) =
        project.run_json(&sshd, &["lock", "release", "--force", "--env", "prod"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "released");
    assert!(project.is_lock_free());
    // Its command is stopped by the host's watchdog once the lock is gone.
    wait_for("the forced deploy's command to be stopped", || {
        !slipway_testbed::process_exists(pid)
    });
    assert!(!project.remote().join("finished").exists());
    fs_err::write(project.remote().join("go"), "").unwrap();
    let (code, _, stderr) =
        project.run_json(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0), "{stderr}");
    let _ = first.0.wait();
}

#[test]
fn a_lock_left_by_an_older_version_or_a_killed_deploy_never_blocks() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "true""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    // What older versions left (a lock directory), and the holder record of
    // a deploy whose session is gone.
    let state = project.remote().join(".slipway");
    fs_err::create_dir_all(state.join("lock")).unwrap();
    let holder = serde_json::json!({
        "holder": "ci@runner", "machine": "elsewhere", "pid": 4242,
        "since": 0, "deadline": 0, "release": 7, "host_pid": 4242
    });
    fs_err::write(state.join("holder.json"), holder.to_string()).unwrap();
    let (code, report, _) = project.run_json(&sshd, &["lock", "status", "--env", "prod"]);
    assert_eq!(code, Some(0));
    assert_eq!(report["hosts"][0]["outcome"], "unlocked");
    assert_eq!(report["hosts"][0]["lock"]["holder"], "ci@runner");
    assert_eq!(report["hosts"][0]["lock"]["is_alive"], false);
    let image = format!("app={}", fake_ref(1));
    let (code, _, stderr) =
        project.run_json(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(project.is_lock_free());
    // `lock release` of a free lock only clears a leftover holder record.
    fs_err::write(state.join("holder.json"), holder.to_string()).unwrap();
    let (code, report, _) = project.run_json(&sshd, &["lock", "release", "--env", "prod"]);
    assert_eq!(code, Some(0));
    assert_eq!(report["hosts"][0]["outcome"], "released");
    assert!(!state.join("holder.json").exists());
}

/// Kills the child if the test fails before waiting for it.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scopeguard(child: std::process::Child) -> Guard {
    Guard(child)
}

#[test]
fn the_key_can_come_from_ssh_agent() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "touch ran""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    let socket = project.dir.path().join("agent.sock");
    // `-D`: the agent stays our child, so the guard can stop it by pid.
    let agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _agent = scopeguard(agent);
    wait_for("ssh-agent's socket", || socket.exists());
    let added = std::process::Command::new("ssh-add")
        .arg(sshd.client_key_path())
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let output = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
        .current_dir(project.dir.path())
        .env("SSH_AUTH_SOCK", &socket)
        .args(deploy_args(
            &format!("app={}", fake_ref(1)),
            &sshd.known_hosts_path(),
        ))
        .run();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(project.remote().join("ran").exists());
}
