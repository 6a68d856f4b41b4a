//! `ready-wait` on TCP targets and on endpoints that come up while it waits.

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::Stdio;

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
    let mut child = command(&[
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
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let refused = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("connection refused"));
    assert!(
        refused.is_some(),
        "ready-wait never reported the refused connection"
    );
    let _server = Server::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), |_, _| {
        Reply::status(200)
    });
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let output = child.wait_with_output().unwrap();
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
