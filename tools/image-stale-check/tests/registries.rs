//! image-stale-check against registries that are not plain-HTTP loopback
//! ones, through the registry flags every tool shares: a plain-HTTP
//! registry under a name that does not look like loopback (the issue's
//! "TLS error that blames the registry") and a TLS registry with a CA the
//! test makes. `127.1:PORT` is 127.0.0.1 to the resolver and an ordinary
//! host to Slipway's plain-HTTP-for-loopback rule.

mod common;

use common::{project, push_image, run_in, run_with_env};
use slipway_testbed::{Registry, TestCa};

#[test]
fn a_plain_http_registry_by_name_is_checked_with_plain_http_registry() {
    let registry = Registry::start();
    let host = registry.non_loopback_host();
    let repo = project(&host);
    let built = repo.head();
    for image in ["base", "app", "worker"] {
        push_image(
            &registry.host(),
            &format!("demo/{image}"),
            "main",
            Some(&built),
        );
    }

    let run = run_in(repo.path(), &["--format", "json", "--image", "app"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        run.image("app")["error"],
        format!(
            "cannot read the labels of `{host}/demo/app:main`: `{host}` speaks plain HTTP, not \
             TLS (`HEAD /v2/demo/app/manifests/main`): pass --plain-http-registry {host} (or \
             --plain-http for every registry)"
        ),
        "{run:?}"
    );

    let run = run_in(
        repo.path(),
        &["--format", "json", "--plain-http-registry", &host],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.image("app")["status"], "fresh", "{run:?}");
    let run = run_with_env(
        repo.path(),
        &["--format", "json", "--image", "app"],
        &[("SLIPWAY_PLAIN_HTTP_REGISTRIES", &host)],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let run = run_in(
        repo.path(),
        &["--format", "json", "--image", "app", "--plain-http"],
    );
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn a_tls_registry_with_a_private_ca_is_checked_with_ca_cert() {
    let plain = Registry::start();
    let ca = TestCa::new();
    let tls = plain.tls_front(&ca, false);
    let host = tls.non_loopback_host();
    let repo = project(&host);
    let built = repo.head();
    for image in ["base", "app", "worker"] {
        push_image(
            &plain.host(),
            &format!("demo/{image}"),
            "main",
            Some(&built),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let no_certs = dir.path().join("no-certs.d");
    fs_err::create_dir_all(&no_certs).unwrap();
    let no_certs = no_certs.to_str().unwrap();

    let run = run_in(
        repo.path(),
        &[
            "--format",
            "json",
            "--image",
            "app",
            "--certs-dir",
            no_certs,
        ],
    );
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(
        run.image("app")["error"],
        format!(
            "cannot read the labels of `{host}/demo/app:main`: cannot verify the TLS certificate \
             of `{host}` for `HEAD /v2/demo/app/manifests/main`: invalid peer certificate: \
             UnknownIssuer; trust its CA with --ca-cert FILE or a certs.d directory \
             (`{no_certs}/{host}/ca.crt`), or, if it serves plain HTTP, pass \
             --plain-http-registry {host}"
        ),
        "{run:?}"
    );

    let ca_file = dir.path().join("ca.pem");
    fs_err::write(&ca_file, ca.cert_pem()).unwrap();
    let run = run_in(
        repo.path(),
        &[
            "--format",
            "json",
            "--ca-cert",
            ca_file.to_str().unwrap(),
            "--certs-dir",
            no_certs,
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.image("worker")["status"], "fresh", "{run:?}");
}
