//! img-tag against registries that are not plain-HTTP loopback ones: a
//! registry served over TLS with a CA the test makes (reached with
//! `--ca-cert`, with a certs.d directory, with a client certificate, and
//! refused without), and a plain-HTTP registry under a name that does not
//! look like loopback (`--plain-http-registry`, `--plain-http`). The names
//! are `127.1:PORT` ([`Registry::non_loopback_host`]): 127.0.0.1 to the
//! resolver, an ordinary host to Slipway's plain-HTTP-for-loopback rule.

use std::path::Path;

use slipway_testbed::cmd::Cmd;
use slipway_testbed::images::push_image;
use slipway_testbed::{Registry, TestCa};

fn img_tag(args: &[&str]) -> Cmd {
    let mut command = Cmd::new(env!("CARGO_BIN_EXE_img-tag"));
    command.args(args);
    command
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

#[test]
fn a_tls_registry_is_trusted_through_ca_cert_or_certs_d_and_refused_without() {
    let plain = Registry::start();
    let (digest, _) = push_image(&plain.host(), "app", "1", "amd64", None);
    let ca = TestCa::new();
    let tls = plain.tls_front(&ca, false);
    let host = tls.non_loopback_host();
    let image = format!("{host}/app:1");
    let dir = tempfile::tempdir().unwrap();
    let no_certs = dir.path().join("no-certs.d");
    fs_err::create_dir_all(&no_certs).unwrap();

    img_tag(&["resolve", &image, "--certs-dir", path(&no_certs)])
        .run()
        .assert(
            3,
            "",
            &format!(
                "error: cannot resolve `{image}`\n  caused by: cannot verify the TLS certificate of \
                 `{host}` for `HEAD /v2/app/manifests/1`: invalid peer certificate: UnknownIssuer; \
                 trust its CA with --ca-cert FILE or a certs.d directory \
                 (`{}/{host}/ca.crt`), or, if it serves plain HTTP, pass --plain-http-registry \
                 {host}\n",
                no_certs.display()
            ),
        );

    let ca_file = dir.path().join("ca.pem");
    fs_err::write(&ca_file, ca.cert_pem()).unwrap();
    img_tag(&[
        "resolve",
        &image,
        "--ca-cert",
        path(&ca_file),
        "--certs-dir",
        path(&no_certs),
    ])
    .run()
    .assert(0, &format!("{digest}\n"), "");

    // docker's layout: certs.d/<host:port>/ca.crt, found by host and port.
    let certs_d = dir.path().join("certs.d");
    fs_err::create_dir_all(certs_d.join(&host)).unwrap();
    fs_err::write(certs_d.join(&host).join("ca.crt"), ca.cert_pem()).unwrap();
    img_tag(&["resolve", &image, "--certs-dir", path(&certs_d)])
        .run()
        .assert(0, &format!("{digest}\n"), "");
    img_tag(&["resolve", &image])
        .env("SLIPWAY_CERTS_DIR", path(&certs_d))
        .run()
        .assert(0, &format!("{digest}\n"), "");
    // The same certs.d holds nothing for another port: still refused.
    let other = plain.tls_front(&ca, false);
    img_tag(&[
        "resolve",
        &format!("{}/app:1", other.non_loopback_host()),
        "--certs-dir",
        path(&certs_d),
    ])
    .run()
    .assert_code(3);

    // Plain HTTP to the TLS port gets a bare 400: the error says which
    // setting sent plain HTTP.
    img_tag(&["resolve", &image, "--plain-http-registry", &host])
        .run()
        .assert(
            3,
            "",
            &format!(
                "error: cannot resolve `{image}`\n  caused by: `{host}` answered 400 to `HEAD \
                 /v2/app/manifests/1` (spoken to in plain HTTP, as --plain-http or \
                 --plain-http-registry asked: if `{host}` serves HTTPS, leave it out of them)\n"
            ),
        );

    // A promote from the TLS registry into a plain one streams the blobs
    // through both clients.
    let target = Registry::start();
    img_tag(&[
        "promote",
        &image,
        &format!("{}/copy:1", target.host()),
        "--ca-cert",
        path(&ca_file),
        "-q",
    ])
    .run()
    .assert_code(0);
    img_tag(&["resolve", &format!("{}/copy:1", target.host())])
        .run()
        .assert(0, &format!("{digest}\n"), "");
}

#[test]
fn a_client_certificate_from_certs_d_is_presented() {
    let plain = Registry::start();
    let (digest, _) = push_image(&plain.host(), "app", "1", "amd64", None);
    let ca = TestCa::new();
    let tls = plain.tls_front(&ca, true);
    let host = tls.non_loopback_host();
    let image = format!("{host}/app:1");
    let dir = tempfile::tempdir().unwrap();
    let certs_d = dir.path().join("certs.d");
    let host_dir = certs_d.join(&host);
    fs_err::create_dir_all(&host_dir).unwrap();
    fs_err::write(host_dir.join("ca.crt"), ca.cert_pem()).unwrap();

    img_tag(&["resolve", &image, "--certs-dir", path(&certs_d)])
        .run()
        .assert(
            3,
            "",
            &format!(
                "error: cannot resolve `{image}`\n  caused by: `{host}` refused the TLS handshake \
                 for `HEAD /v2/app/manifests/1` (alert `BadCertificate`): if it requires a client \
                 certificate, put `client.cert` and `client.key` in `{}`\n",
                host_dir.display()
            ),
        );

    // A client certificate the registry's CA did not sign is refused: the
    // error names it, rather than asking for one.
    let (stranger_cert, _) = TestCa::new().client().write(&host_dir, "client", "cert");
    let stderr = img_tag(&["resolve", &image, "--certs-dir", path(&certs_d)])
        .run()
        .assert_code(3)
        .stderr_str();
    assert!(
        stderr.starts_with(&format!("error: cannot resolve `{image}`\n  caused by: `{host}` refused the TLS handshake for `HEAD /v2/app/manifests/1` (alert `"))
            && stderr.ends_with(&format!(
                "`): it refused the client certificate `{}`: use one its CA signed and within its \
                 validity period, or remove it if the registry needs none\n",
                stranger_cert.display()
            )),
        "{stderr}"
    );

    ca.client().write(&host_dir, "client", "cert");
    img_tag(&["resolve", &image, "--certs-dir", path(&certs_d)])
        .run()
        .assert(0, &format!("{digest}\n"), "");

    // A certificate without its key is a bad file, named.
    fs_err::remove_file(host_dir.join("client.key")).unwrap();
    img_tag(&["resolve", &image, "--certs-dir", path(&certs_d)])
        .run()
        .assert(
            2,
            "",
            &format!(
                "error: cannot set up TLS for `{host}`\n  caused by: invalid certs.d file `{}`: has no \
                 private key next to it: add `{}`, or remove the certificate\n",
                host_dir.join("client.cert").display(),
                host_dir.join("client.key").display()
            ),
        );
}

/// docker's own certs.d example is `certs.d/localhost:5000/`: a loopback
/// registry that serves TLS is reached over HTTPS once certs.d has a
/// directory for it; without one it gets plain HTTP, and the 400 its TLS
/// port answers says how to change that.
#[test]
fn a_loopback_tls_registry_is_reached_through_its_certs_d_directory() {
    let plain = Registry::start();
    let (digest, _) = push_image(&plain.host(), "app", "1", "amd64", None);
    let ca = TestCa::new();
    let tls = plain.tls_front(&ca, false);
    let host = tls.host();
    let image = format!("{host}/app:1");
    let dir = tempfile::tempdir().unwrap();
    let certs_d = dir.path().join("certs.d");
    fs_err::create_dir_all(&certs_d).unwrap();

    img_tag(&["resolve", &image, "--certs-dir", path(&certs_d)])
        .run()
        .assert(
            3,
            "",
            &format!(
                "error: cannot resolve `{image}`\n  caused by: `{host}` answered 400 to `HEAD \
                 /v2/app/manifests/1` (spoken to in plain HTTP, as every loopback registry is by \
                 default: if `{host}` serves HTTPS, give it a certs.d directory, \
                 `/etc/docker/certs.d/{host}/` or `<--certs-dir DIR>/{host}/`, holding its CA as \
                 `ca.crt`)\n"
            ),
        );

    fs_err::create_dir_all(certs_d.join(&host)).unwrap();
    fs_err::write(certs_d.join(&host).join("ca.crt"), ca.cert_pem()).unwrap();
    img_tag(&["resolve", &image, "--certs-dir", path(&certs_d)])
        .run()
        .assert(0, &format!("{digest}\n"), "");
    // Naming it for plain HTTP still wins.
    img_tag(&[
        "resolve",
        &image,
        "--certs-dir",
        path(&certs_d),
        "--plain-http-registry",
        &host,
    ])
    .run()
    .assert_code(3);
}

/// skopeo's and buildah's `--cert-dir` is one registry's directory; a
/// certs.d is a directory of them. A CA put directly in a `--certs-dir`
/// is read for no registry: the warning says where it belongs.
#[test]
fn a_certificate_directly_in_a_certs_dir_is_warned_of() {
    let plain = Registry::start();
    let (digest, _) = push_image(&plain.host(), "app", "1", "amd64", None);
    let ca = TestCa::new();
    let tls = plain.tls_front(&ca, false);
    let host = tls.non_loopback_host();
    let image = format!("{host}/app:1");
    let dir = tempfile::tempdir().unwrap();
    let certs_dir = dir.path().join("certs");
    fs_err::create_dir_all(&certs_dir).unwrap();
    fs_err::write(certs_dir.join("ca.crt"), ca.cert_pem()).unwrap();

    let stderr = img_tag(&["resolve", &image, "--certs-dir", path(&certs_dir)])
        .run()
        .assert_code(3)
        .stderr_str();
    assert!(
        stderr.starts_with(&format!(
            " WARN `{0}` holds `ca.crt` directly: a certs.d file is read only from a \
             `<host[:port]>/` directory in it, e.g. `{0}/registry.example.com:5000/ca.crt`\n\
             error: cannot resolve `{image}`\n  caused by: cannot verify the TLS certificate",
            certs_dir.display()
        )),
        "{stderr}"
    );

    fs_err::create_dir_all(certs_dir.join(&host)).unwrap();
    fs_err::rename(
        certs_dir.join("ca.crt"),
        certs_dir.join(&host).join("ca.crt"),
    )
    .unwrap();
    img_tag(&["resolve", &image, "--certs-dir", path(&certs_dir)])
        .run()
        .assert(0, &format!("{digest}\n"), "");
}

/// An empty item in a comma-separated variable (an unset CI variable, a
/// trailing comma) stands for nothing: never the working directory as a
/// certs.d (a checkout's `<host>/ca.crt` trusted), never an error.
#[test]
fn empty_items_in_registry_variables_are_skipped() {
    let plain = Registry::start();
    let (digest, _) = push_image(&plain.host(), "app", "1", "amd64", None);
    let ca = TestCa::new();
    let tls = plain.tls_front(&ca, false);
    let host = tls.non_loopback_host();
    let image = format!("{host}/app:1");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.d");
    fs_err::create_dir_all(&empty).unwrap();
    // A checkout that plants a CA for the registry in the working directory.
    let checkout = dir.path().join("checkout");
    fs_err::create_dir_all(checkout.join(&host)).unwrap();
    fs_err::write(checkout.join(&host).join("ca.crt"), ca.cert_pem()).unwrap();

    let mut command = img_tag(&["resolve", &image]);
    command
        .current_dir(&checkout)
        .env("SLIPWAY_CERTS_DIR", format!("{},", path(&empty)));
    let stderr = command.run().assert_code(3).stderr_str();
    assert!(
        stderr.contains("invalid peer certificate: UnknownIssuer"),
        "{stderr}"
    );

    let ca_file = dir.path().join("ca.pem");
    fs_err::write(&ca_file, ca.cert_pem()).unwrap();
    img_tag(&["resolve", &image, "--ca-cert", path(&ca_file)])
        .env("SLIPWAY_CERTS_DIR", "")
        .env("SLIPWAY_PLAIN_HTTP_REGISTRIES", "")
        .run()
        .assert(0, &format!("{digest}\n"), "");
    img_tag(&["resolve", &image])
        .env("SLIPWAY_CA_CERTS", format!("{},", path(&ca_file)))
        .run()
        .assert(0, &format!("{digest}\n"), "");
}

#[test]
fn a_plain_http_registry_by_name_needs_plain_http_registry() {
    let registry = Registry::start();
    let (digest, _) = push_image(&registry.host(), "app", "1", "amd64", None);
    let host = registry.non_loopback_host();
    let image = format!("{host}/app:1");

    img_tag(&["resolve", &image]).run().assert(
        3,
        "",
        &format!(
            "error: cannot resolve `{image}`\n  caused by: `{host}` speaks plain HTTP, not TLS \
             (`HEAD /v2/app/manifests/1`): pass --plain-http-registry {host} (or --plain-http for \
             every registry)\n"
        ),
    );
    img_tag(&["resolve", &image, "--plain-http-registry", &host])
        .run()
        .assert(0, &format!("{digest}\n"), "");
    img_tag(&["resolve", &image])
        .env(
            "SLIPWAY_PLAIN_HTTP_REGISTRIES",
            format!("registry.lan,{host}"),
        )
        .run()
        .assert(0, &format!("{digest}\n"), "");
    img_tag(&["resolve", &image, "--plain-http"])
        .run()
        .assert(0, &format!("{digest}\n"), "");
    // Another registry in the list is not this one.
    img_tag(&[
        "resolve",
        &image,
        "--plain-http-registry",
        "registry.lan:5000",
    ])
    .run()
    .assert_code(3);
}

#[test]
fn bad_registry_flags_are_usage_errors_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    fs_err::write(&not_pem, "not a certificate").unwrap();
    let missing = dir.path().join("missing.pem");
    let image = "127.1:1/app:1";
    img_tag(&["resolve", image, "--ca-cert", path(&missing)])
        .run()
        .assert_code(2)
        .assert_stderr(&format!(
            "error: invalid value '{}' for '--ca-cert <FILE>': cannot read it: failed to open file `{}`: No such file or directory (os error 2)\n\nFor more information, try '--help'.\n",
            missing.display(),
            missing.display()
        ));
    img_tag(&["resolve", image, "--ca-cert", path(&not_pem)])
        .run()
        .assert_code(2)
        .assert_stderr(&format!(
            "error: invalid value '{}' for '--ca-cert <FILE>': holds no `-----BEGIN CERTIFICATE-----` block; give a PEM file of CA certificates\n\nFor more information, try '--help'.\n",
            not_pem.display()
        ));
    img_tag(&["resolve", image, "--plain-http-registry", "http://registry.lan"])
        .run()
        .assert_code(2)
        .assert_stderr(
            "error: invalid value 'http://registry.lan' for '--plain-http-registry <HOST[:PORT]>': has a scheme; expected a registry as written in image references, `HOST[:PORT]` (e.g. `registry.lan:5000`), without `http://`\n\nFor more information, try '--help'.\n",
        );
    // img-tag's old `--insecure` meant plain HTTP; ready-wait's skips TLS
    // verification. One name, one meaning: img-tag's is renamed.
    img_tag(&["resolve", image, "--insecure"]).run().assert(
        2,
        "",
        "error: `--insecure` was renamed `--plain-http` (plain HTTP to every registry); for one registry pass --plain-http-registry HOST[:PORT], for a private CA --ca-cert FILE\n",
    );
}
