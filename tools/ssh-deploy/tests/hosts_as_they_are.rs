//! Hosts as they really are: hardened (`AllowTcpForwarding no`), reached
//! through a bastion (`ProxyJump`), named by `~/.ssh/config`; each a real
//! sshd of the test bed.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::{Project, fake_ref};
use slipway_testbed::cmd::Cmd;
use slipway_testbed::{Sshd, TcpProxy};

/// An app on loopback answering every request `200`, keeping each request's
/// head. Returns its port and the heads seen.
fn app() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let heads = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut buffer = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buffer[..n]),
                }
            }
            heads
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    (port, seen)
}

#[test]
fn a_host_without_tcp_forwarding_is_probed_from_the_host_itself() {
    let sshd = Sshd::start_with("AllowTcpForwarding no\n");
    let (port, seen) = app();
    let project = Project::new(
        &sshd,
        &format!(
            "command = \"true\"\nready_url = \"http://127.0.0.1:{port}/api/ready\"\nready_timeout = \"10s\""
        ),
        &[("compose.yml", "services: {}\n", 0o644)],
    );
    let image = format!("app={}", fake_ref(1));
    let output = project.run(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let notice = "the host refuses TCP forwarding (`AllowTcpForwarding no`): probing readiness from the host itself with curl or wget";
    assert_eq!(stderr.matches(notice).count(), 1, "{stderr}");
    // The request came from curl on the host, not through a tunnel.
    let heads = seen.lock().unwrap().clone();
    assert!(
        heads.iter().any(
            |h| h.starts_with("GET /api/ready HTTP/1.1\r\n") && h.contains("User-Agent: curl/")
        ),
        "{heads:?}"
    );
    assert_eq!(project.release(1)["result"], "deployed");

    // Nothing listening: not ready, rolled back, the reason from the host.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let toml = fs_err::read_to_string(project.dir.path().join("slipway.toml")).unwrap();
    fs_err::write(
        project.dir.path().join("slipway.toml"),
        toml.replace(&format!(":{port}/"), &format!(":{closed_port}/"))
            .replace("ready_timeout = \"10s\"", "ready_timeout = \"1s\""),
    )
    .unwrap();
    let image = format!("app={}", fake_ref(2));
    let output = project.run(&sshd, &["deploy", "--env", "prod", "--image", &image]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "`http://127.0.0.1:{closed_port}/api/ready` was not ready within 1s"
        )) && stderr.contains("last: from the host: "),
        "{stderr}"
    );
}

/// An ssh config naming `app` (the target sshd) behind `bastion`, each with
/// its own key; returns its path. `bastion` is `jump`, reached on
/// `127.0.0.1:jump_port` (its own port, or a proxy's in front of it).
fn ssh_config(
    dir: &std::path::Path,
    jump: &Sshd,
    jump_port: u16,
    target: &Sshd,
) -> std::path::PathBuf {
    let path = dir.join("ssh_config");
    fs_err::write(
        &path,
        format!(
            "# as a team writes it\n\
             Host bastion\n    HostName 127.0.0.1\n    Port {}\n    User {}\n    IdentityFile {}\n\n\
             Host app app-*\n    HostName 127.0.0.1\n    Port {}\n    IdentityFile {}\n    ProxyJump bastion\n\n\
             Host *\n    User {}\n    Port 1\n",
            jump_port,
            jump.user(),
            jump.client_key_path().display(),
            target.port(),
            target.client_key_path().display(),
            target.user(),
        ),
    )
    .unwrap();
    path
}

/// Deploys to the env's hosts with `--ssh-config` and no `--ssh-key` (the
/// config's `IdentityFile`s authenticate); returns status and stderr.
fn deploy_via_config(
    project: &Project,
    config: &std::path::Path,
    known_hosts: &std::path::Path,
    n: u8,
) -> (Option<i32>, String) {
    let image = format!("app={}", fake_ref(n));
    let output = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
        .current_dir(project.dir.path())
        .env("NO_COLOR", "1")
        .args(["deploy", "--env", "prod", "--image", &image, "--ssh-config"])
        .arg(config)
        .arg("--known-hosts")
        .arg(known_hosts)
        .run();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_host_behind_a_bastion_is_reached_through_proxyjump_of_the_ssh_config() {
    let bastion = Sshd::start();
    let target = Sshd::start();
    let project = Project::new(
        &target,
        r#"command = "true""#,
        &[
            ("compose.yml", "services: {}\n", 0o644),
            ("payload.txt", &"x".repeat(300_000), 0o644),
        ],
    );
    // The env names the host by its alias only: address, port, user, key
    // and the bastion come from the ssh config.
    let toml_path = project.dir.path().join("slipway.toml");
    let toml = fs_err::read_to_string(&toml_path).unwrap();
    let written = format!("\"{}@127.0.0.1:{}\"", target.user(), target.port());
    fs_err::write(&toml_path, toml.replace(&written, "\"app\"")).unwrap();
    // The bastion is reached through a counting proxy: the bytes it
    // forwards are the bastion's whole connection.
    let counter = TcpProxy::start(
        format!("127.0.0.1:{}", bastion.port())
            .parse::<std::net::SocketAddr>()
            .unwrap(),
    );
    let counted = ssh_config(project.dir.path(), &bastion, counter.addr().port(), &target);
    let known_hosts = project.dir.path().join("known_hosts");
    fs_err::write(
        &known_hosts,
        fs_err::read_to_string(bastion.known_hosts_path())
            .unwrap()
            .replace(
                &format!("]:{} ", bastion.port()),
                &format!("]:{} ", counter.addr().port()),
            )
            + &fs_err::read_to_string(bastion.known_hosts_path()).unwrap()
            + &fs_err::read_to_string(target.known_hosts_path()).unwrap(),
    )
    .unwrap();
    let (code, stderr) = deploy_via_config(&project, &counted, &known_hosts, 1);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(project.remote_file("compose.yml"), "services: {}\n");
    assert_eq!(project.remote_file("payload.txt").len(), 300_000);
    // The 300 kB upload went over the bastion's connection (the proxy's
    // count also holds the handshakes, a few kB).
    common::wait_for("the bastion to carry the upload", || {
        counter.forwarded() > 300_000
    });
    drop(counter);

    // With the bastion gone, the host cannot be reached, and the error says
    // which jump failed.
    let mut bastion = bastion;
    bastion.stop();
    let config = ssh_config(project.dir.path(), &bastion, bastion.port(), &target);
    let (code, stderr) = deploy_via_config(&project, &config, &known_hosts, 2);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot connect to `bastion` at `127.0.0.1:{}`",
            bastion.port()
        )),
        "{stderr}"
    );

    // A bastion that refuses forwarding: the error names the jump and why.
    let hardened = Sshd::start_with("AllowTcpForwarding no\n");
    let config = ssh_config(project.dir.path(), &hardened, hardened.port(), &target);
    fs_err::write(
        &known_hosts,
        fs_err::read_to_string(hardened.known_hosts_path()).unwrap()
            + &fs_err::read_to_string(target.known_hosts_path()).unwrap(),
    )
    .unwrap();
    let (code, stderr) = deploy_via_config(&project, &config, &known_hosts, 3);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot reach `app` through the jump host `bastion` (`ProxyJump`): the jump host cannot open a channel to `127.0.0.1:{}`", target.port()))
            && stderr.contains("administratively prohibited"),
        "{stderr}"
    );
}

#[test]
fn extra_variables_reach_the_command_and_secret_ones_never_a_file_or_output() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        "command = \"printf '%s|%s' \\\"$LOG_LEVEL\\\" \\\"$DB_PASSWORD\\\" > seen\"\nenv = { LOG_LEVEL = \"debug info\" }",
        &[("compose.yml", "services: {}\n", 0o644)],
    );
    let secret = "s3cr'et\"$(touch pwned)\nline two\n";
    let image = format!("app={}", fake_ref(1));
    let output = project
        .command(
            &sshd,
            &[
                "deploy",
                "--env",
                "prod",
                "--image",
                &image,
                "--env-var",
                "DB_PASSWORD",
            ],
        )
        .env("DB_PASSWORD", secret)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(project.remote_file("seen"), format!("debug info|{secret}"));
    assert!(!project.remote().join("pwned").exists());
    // No file on the host holds it (records, manifest, deploy.env…), and
    // nothing printed does.
    let grep = std::process::Command::new("grep")
        .args(["-rl", "s3cr'et", "--exclude=seen"])
        .arg(project.remote())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&grep.stdout), "");
    assert!(!stderr.contains("s3cr") && !String::from_utf8_lossy(&output.stdout).contains("s3cr"));

    // The dry run shows the names, the secret as `***`.
    let output = project
        .command(
            &sshd,
            &[
                "deploy",
                "--env",
                "prod",
                "--image",
                &image,
                "--env-var",
                "DB_PASSWORD",
                "--dry-run",
            ],
        )
        .env("DB_PASSWORD", secret)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("  'DB_PASSWORD=***'\n")
            && stdout.contains("  'LOG_LEVEL=debug info'\n")
            && stdout.contains("run: IFS= read -r slipway_v && DB_PASSWORD=$(printf"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cr"), "{stdout}");

    // Unset: refused before any host is touched, naming the flag (by its
    // position) but not the value, which may be a token that looks like a
    // name (a GitHub PAT).
    let token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
    let output = project
        .command(
            &sshd,
            &[
                "deploy",
                "--env",
                "prod",
                "--image",
                &image,
                "--env-var",
                "DB_PASSWORD",
                "--env-var",
                token,
            ],
        )
        .env("DB_PASSWORD", secret)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "error: the variable named by `--env-var` number 2 of 2 is not set in this environment (its name is not shown: it may be a secret itself); set it (a CI secret) or drop the flag\n"
    );
    assert!(!stderr.contains("ghp_"), "{stderr}");
}

#[test]
fn an_unreadable_or_invalid_ssh_config_is_refused_naming_the_file_and_line() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "touch ran""#,
        &[("compose.yml", "services: {}\n", 0o644)],
    );
    let image = format!("app={}", fake_ref(1));
    let missing = project.dir.path().join("no-such-config");
    let bad = project.dir.path().join("ssh_config");
    fs_err::write(&bad, "Host web\n  Port http\n").unwrap();
    for (config, expected) in [
        (
            &missing,
            format!(
                "error: cannot read `--ssh-config` `{}`; give an OpenSSH client config file\n  caused by: failed to open file `{}`: ",
                missing.display(),
                missing.display()
            ),
        ),
        (
            &bad,
            format!(
                "error: `--ssh-config` `{}:2`: `Port http` is not a port (1-65535)\n",
                bad.display()
            ),
        ),
    ] {
        let output = project
            .command(&sshd, &["deploy", "--env", "prod", "--image", &image])
            .arg("--ssh-config")
            .arg(config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.starts_with(&expected), "{stderr}");
    }
    assert!(!project.remote().exists(), "no host was touched");
}
