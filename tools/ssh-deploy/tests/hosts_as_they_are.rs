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
use slipway_testbed::Sshd;

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
