//! The test bed's services do what Slipway's tests rely on, checked with
//! independent clients (skopeo, ssh, raw TCP).

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use slipway_testbed::{Dockerd, Mode, Registry, Sshd, TcpProxy, http_status, process_exists};

/// Runs `command`, asserting it succeeds, and returns its output.
#[track_caller]
fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("cannot run the command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `skopeo inspect` of `image`, the independent oracle for what a registry holds.
#[track_caller]
fn skopeo_inspect(image: &str) -> String {
    let skopeo = slipway_testbed::require("skopeo", "skopeo");
    stdout(&run_ok(
        Command::new(skopeo)
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{image}")),
    ))
}

#[test]
fn registry_answers_v2_and_stop_really_stops_it() {
    let mut registry = Registry::start();
    assert_eq!(http_status(registry.addr(), "/v2/").unwrap(), 200);
    assert_eq!(registry.url(), format!("http://{}", registry.host()));
    let pid = registry.pid();
    assert!(process_exists(pid));

    registry.stop();
    assert!(!process_exists(pid), "registry PID {pid} still runs");
    assert!(
        TcpStream::connect(registry.addr()).is_err(),
        "port still accepts"
    );
    registry.stop(); // idempotent

    registry.restart();
    assert_eq!(registry.host(), format!("127.0.0.1:{}", registry.port()));
    assert_eq!(http_status(registry.addr(), "/v2/").unwrap(), 200);
    assert_ne!(registry.pid(), pid);

    let (pid, storage) = (registry.pid(), registry.storage_dir());
    drop(registry);
    assert!(
        !process_exists(pid),
        "registry PID {pid} still runs after drop"
    );
    assert!(!storage.exists(), "`{}` still exists", storage.display());
}

#[test]
fn registry_keeps_its_storage_across_restart() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let image = dockerd.base_image(&registry);
    let mut registry = registry;
    registry.restart();
    let inspected = skopeo_inspect(&image);
    assert!(inspected.contains("\"Digest\""), "{inspected}");
}

#[test]
fn base_image_is_pushed_and_runs_busybox() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let image = dockerd.base_image(&registry);
    assert_eq!(image, format!("{}/base/busybox:1", registry.host()));
    assert_eq!(
        dockerd.base_image(&registry),
        image,
        "second call is cached"
    );

    let inspected = skopeo_inspect(&image);
    assert!(inspected.contains("\"Architecture\""), "{inspected}");

    let output = run_ok(dockerd.docker().args([
        "run",
        "--rm",
        "--network",
        "host",
        &image,
        "echo",
        "hello",
    ]));
    assert_eq!(stdout(&output), "hello\n");
    let output = run_ok(dockerd.docker().args([
        "run",
        "--rm",
        "--network",
        "host",
        &image,
        "sh",
        "-c",
        "ls /bin",
    ]));
    for command in ["busybox", "cat", "httpd", "sleep", "touch", "wget"] {
        assert!(
            stdout(&output).lines().any(|l| l == command),
            "no `{command}` in {output:?}"
        );
    }
}

#[test]
fn buildkit_build_from_the_base_image_is_pushed() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let base = dockerd.base_image(&registry);
    let context = tempfile::tempdir().unwrap();
    fs_err::write(context.path().join("hello.txt"), "hello from the build\n").unwrap();
    fs_err::write(
        context.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n"),
    )
    .unwrap();
    let image = format!("{}/app/hello:1", registry.host());
    let build = run_ok(
        dockerd
            .docker()
            .args(["build", "--network=none", "--progress=plain", "-t", &image])
            .arg(context.path()),
    );
    // The plain progress output only exists with BuildKit.
    let progress = String::from_utf8_lossy(&build.stderr);
    assert!(
        progress.contains("#1 "),
        "not built with BuildKit:\n{progress}"
    );
    run_ok(dockerd.docker().args(["push", &image]));

    let inspected = skopeo_inspect(&image);
    assert!(inspected.contains("\"Layers\""), "{inspected}");
    let output = run_ok(dockerd.docker().args([
        "run",
        "--rm",
        "--network",
        "host",
        &image,
        "cat",
        "/hello.txt",
    ]));
    assert_eq!(stdout(&output), "hello from the build\n");
}

#[test]
fn dropping_dockerd_ends_its_processes_and_removes_its_dir() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let image = dockerd.base_image(&registry);
    // A running container, so drop has to stop containerd, a shim and it.
    run_ok(
        dockerd
            .docker()
            .args(["run", "-d", "--network", "host", &image, "sleep", "600"]),
    );
    let pid = dockerd.pid();
    let dir = dockerd.temp_dir();
    assert!(process_exists(pid));
    assert!(dockerd.log().contains("API listen on"), "{}", dockerd.log());

    drop(dockerd);
    assert!(!process_exists(pid), "dockerd PID {pid} still runs");
    assert!(!dir.exists(), "`{}` still exists", dir.display());
    let mounts = fs_err::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(&*dir.to_string_lossy()),
        "mounts left:\n{mounts}"
    );
    assert!(
        leftover_processes(&dir).is_empty(),
        "{:?}",
        leftover_processes(&dir)
    );
}

/// Live processes whose command line names `dir`.
fn leftover_processes(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    fs_err::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| process_exists(pid))
        .filter_map(|pid| fs_err::read(format!("/proc/{pid}/cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&needle))
        .collect()
}

#[test]
fn ssh_runs_a_command_and_refuses_an_unknown_host_key() {
    let sshd = Sshd::start();
    let output = run_ok(sshd.ssh().arg("echo hi"));
    assert_eq!(stdout(&output), "hi\n");
    assert_eq!(sshd.user(), "root");
    assert!(sshd.host_public_key().starts_with("ssh-ed25519 AAAA"));
    assert!(sshd.host_key_fingerprint().starts_with("SHA256:"));
    assert!(sshd.client_key_pem().contains("BEGIN OPENSSH PRIVATE KEY"));
    let known_hosts = fs_err::read_to_string(sshd.known_hosts_path()).unwrap();
    assert_eq!(
        known_hosts,
        format!("[127.0.0.1]:{} {}\n", sshd.port(), sshd.host_public_key())
    );

    // The same host with another key in known_hosts: ssh must refuse.
    let other = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(other.path().join("key")),
    );
    let other_key = fs_err::read_to_string(other.path().join("key.pub")).unwrap();
    let wrong = other.path().join("known_hosts");
    fs_err::write(&wrong, format!("[127.0.0.1]:{} {other_key}", sshd.port())).unwrap();
    let output = sshd
        .ssh_with_known_hosts(&wrong)
        .arg("echo hi")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(stdout(&output), "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Host key verification failed"), "{stderr}");
}

#[test]
fn sshd_stop_and_restart_keep_port_and_keys() {
    let mut sshd = Sshd::start();
    let pid = sshd.pid();
    sshd.stop();
    assert!(!process_exists(pid));
    assert!(!sshd.ssh().arg("true").output().unwrap().status.success());
    sshd.restart();
    assert_eq!(stdout(&run_ok(sshd.ssh().arg("echo back"))), "back\n");
    assert!(
        sshd.log().contains("Server listening on 127.0.0.1"),
        "{}",
        sshd.log()
    );
}

/// An echo server on a free port; serves until the test process ends.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind an echo server");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let Ok(mut write) = stream.try_clone() else {
                    return;
                };
                let _ = std::io::copy(&mut &stream, &mut write);
            });
        }
    });
    addr
}

/// Writes `sent` on `stream` and reads the same number of bytes back.
#[track_caller]
fn round_trip(stream: &mut TcpStream, sent: &[u8]) -> Vec<u8> {
    stream.write_all(sent).expect("cannot write to the proxy");
    let mut received = vec![0; sent.len()];
    stream
        .read_exact(&mut received)
        .expect("cannot read the echo back");
    received
}

#[test]
fn proxy_passes_refuses_and_cuts() {
    let proxy = TcpProxy::start(echo_server());
    let mut open = TcpStream::connect(proxy.addr()).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(round_trip(&mut open, b"ping"), b"ping");

    proxy.set_mode(Mode::Refuse);
    let mut refused = TcpStream::connect(proxy.addr()).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert!(
        matches!(refused.read(&mut buf), Ok(0) | Err(_)),
        "refused connection answered"
    );
    // A connection opened before the switch keeps passing.
    assert_eq!(round_trip(&mut open, b"still"), b"still");

    proxy.set_mode(Mode::Pass);
    proxy.cut_all();
    assert!(
        matches!(open.read(&mut buf), Ok(0) | Err(_)),
        "cut connection still open"
    );
    let mut again = TcpStream::connect(proxy.addr()).unwrap();
    again
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(round_trip(&mut again, b"new"), b"new");
    let _ = again.shutdown(Shutdown::Both);
}

#[test]
fn proxy_in_front_of_a_registry_fails_requests_when_refusing() {
    let registry = Registry::start();
    let proxy = TcpProxy::start(registry.addr());
    assert_eq!(http_status(proxy.addr(), "/v2/").unwrap(), 200);
    proxy.set_mode(Mode::Refuse);
    assert!(http_status(proxy.addr(), "/v2/").is_err());
}

/// skopeo (the independent client) runs docker's token flow against a
/// registry with `auth: token`: the registry verifies the issuer's JWTs,
/// grants exactly what the issuer granted, and refuses a token signed by
/// another key.
#[test]
fn token_registry_verifies_the_issuers_tokens() {
    let issuer = slipway_testbed::TokenIssuer::start();
    issuer.add_user("writer", "writer-pw", &[("team/*", "pull,push")]);
    issuer.add_user("reader", "reader-pw", &[("team/*", "pull")]);
    let registry = Registry::start_with_token(&issuer);
    let plain = Registry::start();
    slipway_testbed::images::push_image(&plain.host(), "src/app", "1", "amd64", Some("r1"));
    let skopeo = slipway_testbed::require("skopeo", "skopeo");
    let copy = |creds: &str, to: &str| {
        Command::new(&skopeo)
            .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
            .arg(format!("--dest-creds={creds}"))
            .arg(format!("docker://{}/src/app:1", plain.host()))
            .arg(format!("docker://{}/{to}", registry.host()))
            .output()
            .expect("skopeo runs")
    };
    let pushed = copy("writer:writer-pw", "team/app:1");
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let refused = copy("reader:reader-pw", "team/app:2");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("unauthorized"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let inspect = |creds: &str| {
        Command::new(&skopeo)
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("--creds={creds}"))
            .arg(format!("docker://{}/team/app:1", registry.host()))
            .output()
            .expect("skopeo runs")
    };
    assert!(inspect("reader:reader-pw").status.success());
    assert!(!inspect("reader:wrong-pw").status.success());
    let seen = issuer.seen();
    assert!(seen.iter().any(|r| r.status == 401), "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.auth_scheme.as_deref() != Some("Bearer"))
    );

    // A token from another issuer (another key, same names) is refused.
    let other = slipway_testbed::TokenIssuer::start();
    other.add_user("writer", "writer-pw", &[("*", "pull,push")]);
    let token = Command::new("curl")
        .args(["-fsS", "-u", "writer:writer-pw"])
        .arg(format!(
            "{}?service=slipway-testbed-registry&scope=repository:team/app:pull",
            other.realm()
        ))
        .output()
        .expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&token.stdout).expect("JSON token");
    let token = answer["token"].as_str().expect("a token");
    let status = |token: &str| {
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Accept: {}", slipway_testbed::images::OCI_MANIFEST))
            .arg("-H")
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("{}/v2/team/app/manifests/1", registry.url()))
            .output()
            .expect("curl runs");
        stdout(&out)
    };
    assert_eq!(status(token), "401");
    let token = Command::new("curl")
        .args(["-fsS", "-u", "writer:writer-pw"])
        .arg(format!(
            "{}?service=slipway-testbed-registry&scope=repository:team/app:pull",
            issuer.realm()
        ))
        .output()
        .expect("curl runs");
    let answer: serde_json::Value = serde_json::from_slice(&token.stdout).expect("JSON token");
    assert_eq!(status(answer["token"].as_str().expect("a token")), "200");
    // `issued_at` is when the token was issued (GNU date reads it), so a
    // client that ages tokens by it as docker does sees a fresh one.
    let issued = Command::new("date")
        .args(["-u", "+%s", "-d"])
        .arg(answer["issued_at"].as_str().expect("an issued_at"))
        .output()
        .expect("date runs");
    let issued: u64 = stdout(&issued).trim().parse().expect("seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    assert!(now.abs_diff(issued) < 120, "issued at {issued}, now {now}");
}
