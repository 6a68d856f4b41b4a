//! `ready-wait` against real HTTP servers started by each test: statuses,
//! bodies, stability, Retry-After, hangs and redirects.

mod common;

use std::time::{Duration, Instant};

use common::{Reply, Server, json, ready_wait, stderr};

#[test]
fn ready_after_the_server_turns_ready() {
    let started = Instant::now();
    let server = Server::start(move |_, _| {
        if started.elapsed() < Duration::from_secs(1) {
            Reply::status(503)
        } else {
            Reply::status(200).body("ok")
        }
    });
    let output = ready_wait(&[
        "--format",
        "json",
        "--timeout",
        "30s",
        "--interval",
        "100ms",
        &server.url("/api/ready"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["ready"], true);
    assert_eq!(report["targets"][0]["last_status"], 200);
    assert!(
        report["targets"][0]["attempts"].as_u64().unwrap() > 1,
        "{report}"
    );
    assert!(
        report["targets"][0]["ready_after_ms"].as_u64().unwrap() >= 1000,
        "{report}"
    );
}

#[test]
fn flapping_must_pass_stable_times_in_a_row() {
    // 200 503 200 200 503 200 200 200: only the last three are three in a row.
    let statuses = [200, 503, 200, 200, 503, 200, 200, 200];
    let server =
        Server::start(move |n, _| Reply::status(statuses.get(n as usize).copied().unwrap_or(200)));
    let output = ready_wait(&[
        "--format",
        "json",
        "--stable",
        "3",
        "--interval",
        "20ms",
        "--timeout",
        "30s",
        &server.url("/"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json(&output)["targets"][0]["attempts"], 8);
    assert_eq!(server.requests(), 8);
}

#[test]
fn a_wrong_body_times_out_with_the_excerpt_and_the_reason() {
    let server = Server::start(|_, _| Reply::status(200).body("{\"status\":\"starting\"}"));
    let output = ready_wait(&[
        "--format",
        "json",
        "--timeout",
        "1s",
        "--body-contains",
        "\"ok\"",
        &server.url("/"),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let target = &json(&output)["targets"][0];
    assert_eq!(target["ready"], false);
    assert_eq!(target["last_status"], 200);
    assert_eq!(target["last_error"], "body does not contain `\"ok\"`");
    assert_eq!(target["body_excerpt"], "{\"status\":\"starting\"}");
    assert_eq!(target["ready_after_ms"], serde_json::Value::Null);
    assert!(
        stderr(&output).contains("not ready after"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn json_path_equals_and_body_regex() {
    let server = Server::start(|n, _| match n {
        0 => Reply::status(200).body("{\"status\":\"starting\"}"),
        _ => Reply::status(200).body("{\"status\":\"ok\",\"version\":\"1.2.3\"}"),
    });
    let url = server.url("/");
    let args = [
        "--format",
        "json",
        "--timeout",
        "30s",
        "--interval",
        "20ms",
        "--json-path",
        "$.status",
        "--equals",
        "ok",
        "--body-regex",
        r#""version":"\d+\.\d+"#,
        url.as_str(),
    ];
    let output = ready_wait(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json(&output)["targets"][0]["attempts"], 2);
}

#[test]
fn status_503_then_200() {
    let server = Server::start(|n, _| {
        if n < 2 {
            Reply::status(503).body("warming up")
        } else {
            Reply::status(200)
        }
    });
    let output = ready_wait(&[
        "--format",
        "json",
        "--interval",
        "20ms",
        "--timeout",
        "30s",
        &server.url("/"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json(&output)["targets"][0]["attempts"], 3);
    // One line per state change, not one per poll.
    let err = stderr(&output);
    assert_eq!(err.matches("status 503").count(), 1, "{err}");
}

#[test]
fn accepted_statuses_can_be_listed() {
    let server = Server::start(|_, _| Reply::status(204));
    let output = ready_wait(&["--status", "200,204", "--timeout", "30s", &server.url("/")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = ready_wait(&[
        "--format",
        "json",
        "--status",
        "200",
        "--timeout",
        "500ms",
        &server.url("/"),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        json(&output)["targets"][0]["last_error"],
        "status 204, expected 200"
    );
}

#[test]
fn retry_after_shortens_the_pause() {
    // A 10 s interval would outlast the 5 s deadline; `Retry-After: 0`
    // brings the second attempt forward.
    let server = Server::start(|n, _| {
        if n == 0 {
            Reply::status(503).header("Retry-After", "0")
        } else {
            Reply::status(200)
        }
    });
    let output = ready_wait(&[
        "--interval",
        "10s",
        "--max-interval",
        "10s",
        "--timeout",
        "5s",
        &server.url("/"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn retry_after_lengthens_the_pause_up_to_the_deadline() {
    let server = Server::start(|_, _| Reply::status(503).header("Retry-After", "3600"));
    let started = Instant::now();
    let output = ready_wait(&[
        "--format",
        "json",
        "--interval",
        "20ms",
        "--timeout",
        "1s",
        &server.url("/"),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(json(&output)["targets"][0]["attempts"], 1);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_hanging_server_trips_the_attempt_timeout() {
    let server = Server::start(|_, _| Reply::hang());
    let started = Instant::now();
    let output = ready_wait(&[
        "--format",
        "json",
        "--attempt-timeout",
        "200ms",
        "--interval",
        "50ms",
        "--timeout",
        "2s",
        &server.url("/"),
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let target = &json(&output)["targets"][0];
    assert!(target["attempts"].as_u64().unwrap() >= 2, "{target}");
    assert_eq!(target["last_error"], "no answer within 200ms");
}

#[test]
fn redirects_are_followed_only_when_asked() {
    let server = Server::start(|_, path| match path {
        "/old" => Reply::status(302).header("Location", "/new"),
        _ => Reply::status(200),
    });
    let output = ready_wait(&[
        "--format",
        "json",
        "--timeout",
        "500ms",
        &server.url("/old"),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(json(&output)["targets"][0]["last_status"], 302);
    let output = ready_wait(&["--follow", "--timeout", "30s", &server.url("/old")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn method_and_headers_are_sent() {
    let server = Server::start(|_, _| Reply::status(200));
    let output = ready_wait(&[
        "-X",
        "HEAD",
        "-H",
        "Authorization: Bearer tok1",
        "--timeout",
        "30s",
        &server.url("/"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let heads = server.heads();
    let head = heads.first().expect("one request reached the server");
    assert!(head.starts_with("HEAD / HTTP/1.1\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("\r\nauthorization: bearer tok1\r\n"),
        "{head}"
    );
    // The app's logs say who asked.
    assert!(
        lower.contains(&format!(
            "\r\nuser-agent: ready-wait/{}\r\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{head}"
    );
}

#[test]
fn localhost_finds_a_server_on_ipv4_only() {
    let server = Server::start(|_, _| Reply::status(200));
    let url = format!("http://localhost:{}/api/ready", server.addr.port());
    let output = ready_wait(&["--timeout", "30s", &url]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn plain_output_is_one_line_per_target() {
    let up = Server::start(|_, _| Reply::status(200));
    let down = Server::start(|_, _| Reply::status(503).body("nope"));
    let output = ready_wait(&["--timeout", "500ms", &up.url("/"), &down.url("/")]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(&format!(
            "ready {} attempts=1 status=200 ready_after_ms=",
            up.url("/")
        )),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("not-ready {} attempts=", down.url("/"))),
        "{stdout}"
    );
    assert!(
        lines[1].ends_with(" status=503 error=\"status 503, expected 200-299\" body=\"nope\""),
        "{stdout}"
    );
}
