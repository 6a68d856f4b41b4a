//! Targets that cannot be reached: a refused connection, a name that does
//! not resolve, a server that accepts and closes at once (the test bed's
//! fault proxy). ready-wait keeps trying until `--timeout`, then exits 1
//! (documented in docs/ready-wait.md) with a report naming each target (its
//! host and port) and why its last attempt failed; never longer than the
//! deadline allows.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::{Reply, Server, json, ready_wait, stderr};
use slipway_testbed::{Mode, TcpProxy};

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `ready-wait --format json --timeout 1s TARGET…`, checks it exits 1
/// within 15 s and prints one not-ready line per target naming it; returns
/// each target's `last_error`.
#[track_caller]
fn not_ready(targets: &[&str]) -> Vec<String> {
    let mut args = vec!["--format", "json", "--timeout", "1s", "--interval", "100ms"];
    args.extend_from_slice(targets);
    let started = Instant::now();
    let output = ready_wait(&args);
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    let report = json(&output);
    let text = stderr(&output);
    targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let entry = &report["targets"][i];
            assert_eq!(entry["target"], *target, "{report}");
            assert_eq!(entry["ready"], false, "{report}");
            assert!(entry["attempts"].as_u64().unwrap() >= 1, "{report}");
            assert!(
                text.contains(&format!("{target}: not ready after ")),
                "{text}"
            );
            entry["last_error"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn refused_connections_exit_1_at_the_deadline_naming_host_and_port() {
    let port = closed_port();
    let http = format!("http://127.0.0.1:{port}/api/ready");
    let tcp = format!("tcp://127.0.0.1:{port}");
    let errors = not_ready(&[&http, &tcp]);
    assert_eq!(errors[0], "cannot connect: connection refused");
    assert_eq!(
        errors[1],
        format!("cannot connect: 127.0.0.1:{port}: connection refused")
    );
}

#[test]
fn a_name_that_does_not_resolve_exits_1_at_the_deadline_saying_so() {
    let host = slipway_testbed::UNRESOLVABLE_HOST;
    let errors = not_ready(&[
        &format!("http://{host}:8080/api/ready"),
        &format!("tcp://{host}:5432"),
    ]);
    assert!(
        errors[0].starts_with("cannot connect: failed to lookup address information"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with(&format!("cannot resolve `{host}`: ")),
        "{}",
        errors[1]
    );
}

#[test]
fn a_server_that_accepts_and_closes_at_once_is_not_ready() {
    // The proxy's target is never reached: it closes each connection first.
    let proxy = TcpProxy::start(SocketAddr::from(([127, 0, 0, 1], closed_port())));
    proxy.set_mode(Mode::Refuse);
    let url = format!("http://{}/api/ready", proxy.addr());
    let errors = not_ready(&[&url]);
    assert_eq!(errors, ["connection closed before message completed"]);
}

/// A `--timeout` shorter than one attempt (`0s`, or below
/// `--attempt-timeout`) still gives every target one attempt, so the
/// report says why it is not ready instead of "after 0 attempts".
#[test]
fn a_timeout_shorter_than_an_attempt_still_makes_one_and_says_why() {
    let port = closed_port();
    let server = Server::start(|_, _| Reply::hang());
    let refused = format!("tcp://127.0.0.1:{port}");
    let hanging = server.url("/api/ready");
    for args in [
        vec!["--timeout", "0s"],
        vec!["--timeout", "100ms", "--attempt-timeout", "1s"],
    ] {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(&args);
        all.extend([refused.as_str(), hanging.as_str()]);
        let started = Instant::now();
        let output = ready_wait(&all);
        assert!(started.elapsed() < Duration::from_secs(15), "{args:?}");
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            stderr(&output)
        );
        let report = json(&output);
        let text = stderr(&output);
        assert_eq!(report["targets"][0]["attempts"], 1, "{args:?}: {report}");
        assert_eq!(
            report["targets"][0]["last_error"],
            format!("cannot connect: 127.0.0.1:{port}: connection refused"),
            "{args:?}"
        );
        assert_eq!(report["targets"][1]["attempts"], 1, "{args:?}: {report}");
        assert!(
            report["targets"][1]["last_error"]
                .as_str()
                .unwrap()
                .starts_with("no answer within"),
            "{args:?}: {report}"
        );
        assert!(!text.contains("after 0 attempts"), "{args:?}: {text}");
    }
}
