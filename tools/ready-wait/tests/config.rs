//! `--env NAME`: `ready_url` and `ready_timeout` from slipway.toml, flags win.

mod common;

use common::{Reply, Server, json, ready_wait, slipway_toml as config, stderr};

#[test]
fn the_env_gives_the_url_and_the_timeout() {
    let server = Server::start(|_, _| Reply::status(503));
    let dir = config(&server.url("/api/ready"), "300ms");
    let path = dir.path().join("slipway.toml");
    let output = ready_wait(&[
        "--format",
        "json",
        "--config",
        path.to_str().unwrap(),
        "--env",
        "staging",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["targets"][0]["target"], server.url("/api/ready"));
    assert!(report["elapsed_ms"].as_u64().unwrap() < 20_000, "{report}");
}

#[test]
fn flags_win_over_the_env() {
    let ready = Server::start(|_, _| Reply::status(200));
    let dir = config("http://127.0.0.1:1/never", "300ms");
    let path = dir.path().join("slipway.toml");
    let output = ready_wait(&[
        "--config",
        path.to_str().unwrap(),
        "--env",
        "staging",
        "--timeout",
        "30s",
        &ready.url("/"),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn an_unknown_env_is_a_usage_error() {
    let dir = config("http://127.0.0.1:1/", "1s");
    let path = dir.path().join("slipway.toml");
    let output = ready_wait(&["--config", path.to_str().unwrap(), "--env", "prod"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no env `prod` in "),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("the envs are: `staging`"),
        "{}",
        stderr(&output)
    );
}
