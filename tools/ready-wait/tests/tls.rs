//! `ready-wait` against an HTTPS server with a self-signed certificate.

mod common;

use common::{Reply, Server, json, ready_wait, self_signed, stderr};

#[test]
fn a_self_signed_certificate_needs_cacert_or_insecure() {
    let (config, pem) = self_signed();
    let server = Server::start_tls(config, |_, _| Reply::status(200).body("ok"));
    let url = format!("https://localhost:{}/api/ready", server.addr.port());
    let dir = tempfile::tempdir().unwrap();
    let cacert = dir.path().join("ca.pem");
    fs_err::write(&cacert, pem).unwrap();

    let output = ready_wait(&["--format", "json", "--timeout", "500ms", &url]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error = json(&output)["targets"][0]["last_error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("certificate") || error.contains("UnknownIssuer"),
        "{error}"
    );

    let output = ready_wait(&[
        "--timeout",
        "30s",
        "--cacert",
        cacert.to_str().unwrap(),
        &url,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    // The registry tools' spelling names the same flag.
    let output = ready_wait(&[
        "--timeout",
        "30s",
        "--ca-cert",
        cacert.to_str().unwrap(),
        &url,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let output = ready_wait(&["--timeout", "30s", "--insecure", &url]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn a_cacert_that_is_not_pem_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let cacert = dir.path().join("ca.pem");
    fs_err::write(&cacert, "not a certificate").unwrap();
    let output = ready_wait(&["--cacert", cacert.to_str().unwrap(), "https://localhost:1/"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("invalid `--cacert` value"),
        "{}",
        stderr(&output)
    );
}
