//! `ready-wait` on TCP targets and on endpoints that come up while it waits.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::{Reply, Server, command, json, ready_wait, stderr};

#[test]
fn connection_refused_then_up() {
    // Reserve a free port, then free it so connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/api/ready");
    let child = command(&[
        "--format",
        "json",
        "--interval",
        "50ms",
        "--max-interval",
        "100ms",
        "--timeout",
        "30s",
        &url,
    ])
    .spawn();
    // The end of the first line reporting the refused connection.
    let started = Instant::now();
    let refused_end = loop {
        let so_far = child.stderr_so_far();
        if let Some(at) = so_far.find("connection refused")
            && let Some(end) = so_far[at..].find('\n')
        {
            break at + end + 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ready-wait never reported the refused connection: {so_far}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let _server = Server::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), |_, _| {
        Reply::status(200)
    });
    let output = child.wait();
    let stderr_text = output.stderr_str();
    let rest: Vec<&str> = stderr_text[refused_end..].lines().collect();
    assert_eq!(output.status.code(), Some(0), "{rest:?}");
    let report = json(&output);
    assert!(
        report["targets"][0]["attempts"].as_u64().unwrap() >= 2,
        "{report}"
    );
    assert!(
        rest.iter().any(|line| line.contains("ready after")),
        "{rest:?}"
    );
}

#[test]
fn tcp_targets_are_ready_when_a_connection_is_accepted() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let output = ready_wait(&[
        "--timeout",
        "30s",
        &format!("tcp://127.0.0.1:{port}"),
        &format!("tcp://localhost:{port}"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn any_needs_one_target_all_needs_every_one() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = format!("tcp://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let down_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("tcp://127.0.0.1:{down_port}");
    let output = ready_wait(&["--any", "--timeout", "30s", &down, &up]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = ready_wait(&["--format", "json", "--timeout", "500ms", &down, &up]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["targets"][1]["ready"], true);
    assert_eq!(report["targets"][0]["ready"], false);
    assert_eq!(
        report["targets"][0]["last_error"],
        format!("cannot connect: 127.0.0.1:{down_port}: connection refused")
    );
}
