//! Registry passwords never leak: `img-tag` runs against a registry that
//! needs a password (distribution's htpasswd auth), with the password from
//! `--password-stdin`, from `REGISTRY_USER`/`REGISTRY_PASSWORD` and from a
//! docker config, at `-vv` and `RUST_LOG=trace`, on success and on failure
//! (wrong password, unreachable registry), under GitHub Actions. No 8-byte
//! window of a password, nor the base64 `Basic` form, may appear in stdout,
//! stderr, `$GITHUB_OUTPUT` or `$GITHUB_STEP_SUMMARY`; each password is
//! announced with `::add-mask::` before the first request.

use slipway_testbed::Registry;
use slipway_testbed::cmd::Cmd;
use slipway_testbed::secrets::{GithubRun, Secret, distinctive, write_docker_config};

const USER: &str = "slipway-bot";

/// Runs `img-tag` with only `env` (and PATH) set, at `-vv` with
/// `RUST_LOG=trace` (every target, dependencies too), under GitHub Actions
/// with `--format github`, `stdin` piped in.
fn img_tag(args: &[&str], env: &[(&str, &str)], stdin: &str) -> GithubRun {
    let dir = tempfile::tempdir().expect("temp dir");
    GithubRun::run_with_stdin(
        Cmd::new(env!("CARGO_BIN_EXE_img-tag"))
            .args(args)
            .args(["-vv", "--format", "github"])
            .current_dir(dir.path())
            .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
            .envs(env.iter().copied()),
        stdin,
    )
}

/// An open registry with `app:1` and a registry behind a password.
fn registries(password: &str) -> (Registry, Registry, String) {
    let open = Registry::start();
    let locked = Registry::start_with_auth(USER, password);
    slipway_testbed::images::push_image(&open.host(), "team/app", "1", "amd64", Some("abc"));
    let source = format!("{}/team/app:1", open.host());
    (open, locked, source)
}

#[test]
fn passwords_from_stdin_env_and_docker_config_are_masked_and_never_printed() {
    let password = distinctive("Pa55");
    let secret = Secret::new("registry password", &password).with_user(USER);
    let (_open, locked, source) = registries(&password);
    let destination = format!("{}/prod/app:1", locked.host());

    // --password-stdin: promote into the locked registry.
    let run = img_tag(
        &[
            "promote",
            &source,
            &destination,
            "--username",
            USER,
            "--password-stdin",
        ],
        &[],
        &format!("{password}\n"),
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    run.assert_masked(
        std::slice::from_ref(&secret),
        Some("registry::transport: request"),
    );
    assert!(
        locked
            .log()
            .contains("\"PUT /v2/prod/app/manifests/1 HTTP/1.1\" 201"),
        "the promotion reached the locked registry:\n{}",
        locked.log()
    );

    // REGISTRY_USER / REGISTRY_PASSWORD: tag it there.
    let run = img_tag(
        &["apply", &destination, "--tag", "stable"],
        &[("REGISTRY_USER", USER), ("REGISTRY_PASSWORD", &password)],
        "",
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    run.assert_masked(
        std::slice::from_ref(&secret),
        Some("registry::transport: request"),
    );

    // A docker config's base64 `auths` entry (the config is the secret's own file).
    let docker_config = tempfile::tempdir().expect("temp dir");
    let config_dir = write_docker_config(docker_config.path(), &locked.host(), USER, &password);
    let run = img_tag(
        &["ls", &format!("{}/prod/app", locked.host())],
        &[("DOCKER_CONFIG", &config_dir)],
        "",
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(String::from_utf8_lossy(&run.output.stdout), "1\nstable\n");
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    run.assert_masked(
        std::slice::from_ref(&secret),
        Some("registry::transport: request"),
    );

    // A docker credential helper (`credsStore`), run by the protocol.
    let helper_dir = tempfile::tempdir().expect("temp dir");
    let helper = helper_dir.path().join("docker-credential-slipwaytest");
    fs_err::write(
        &helper,
        format!(
            "#!/bin/sh\nread host\n[ \"$1\" = get ] && printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{password}\"}}' \"$host\"\n"
        ),
    )
    .expect("the helper is written");
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("the helper is executable");
    fs_err::write(
        helper_dir.path().join("config.json"),
        r#"{"credsStore":"slipwaytest"}"#,
    )
    .expect("config.json is written");
    let path = format!(
        "{}:{}",
        helper_dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = img_tag(
        &["ls", &format!("{}/prod/app", locked.host())],
        &[
            ("DOCKER_CONFIG", &helper_dir.path().display().to_string()),
            ("PATH", &path),
        ],
        "",
    );
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    assert_eq!(String::from_utf8_lossy(&run.output.stdout), "1\nstable\n");
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    run.assert_masked(
        std::slice::from_ref(&secret),
        Some("registry::transport: request"),
    );
}

#[test]
fn a_wrong_password_fails_without_printing_either_password() {
    let password = distinctive("Pa55");
    let wrong = distinctive("Wr0ng");
    let secrets = [
        Secret::new("registry password", &password).with_user(USER),
        Secret::new("wrong password", &wrong).with_user(USER),
    ];
    let (_open, locked, source) = registries(&password);
    let destination = format!("{}/prod/app:1", locked.host());

    let run = img_tag(
        &[
            "promote",
            &source,
            &destination,
            "--username",
            USER,
            "--password-stdin",
        ],
        &[],
        &wrong,
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    assert!(
        run.stderr()
            .contains(&format!("refused the credentials of `{USER}`")),
        "{}",
        run.stderr()
    );
    run.assert_no_leak(&secrets, &[]);
    run.assert_masked(&secrets[1..], Some("registry::transport: request"));

    let run = img_tag(
        &["apply", &destination, "--tag", "stable"],
        &[("REGISTRY_USER", USER), ("REGISTRY_PASSWORD", &wrong)],
        "",
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    run.assert_no_leak(&secrets, &[]);
}

#[test]
fn an_unreachable_registry_fails_without_printing_the_password() {
    let password = distinctive("Pa55");
    let secret = Secret::new("registry password", &password).with_user(USER);
    // A free port nothing listens on.
    let port = slipway_testbed::free_port();
    let run = img_tag(
        &[
            "apply",
            &format!("127.0.0.1:{port}/prod/app:1"),
            "--tag",
            "stable",
        ],
        &[("REGISTRY_USER", USER), ("REGISTRY_PASSWORD", &password)],
        "",
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    assert!(
        run.stderr().contains(&format!("127.0.0.1:{port}")),
        "the error names the registry: {}",
        run.stderr()
    );
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    run.assert_masked(
        std::slice::from_ref(&secret),
        Some("registry::transport: request"),
    );
}

/// A registry (or a proxy in front of it) whose error body quotes the
/// request's headers put `Authorization: Basic <base64 of user:password>`
/// into img-tag's error. Every form of the password is now redacted from
/// everything img-tag prints, at `-vv` and `RUST_LOG=trace`.
#[test]
fn a_registry_echoing_the_request_headers_in_its_error_leaks_nothing() {
    let password = distinctive("Pa55");
    let secret = Secret::new("registry password", &password).with_user(USER);
    let (open, locked, _source) = registries(&password);
    let image = format!("{}/prod/app:1", locked.host());
    slipway_testbed::secrets::copy_image(
        &format!("{}/team/app:1", open.host()),
        &image,
        USER,
        &password,
    );
    let front = slipway_testbed::HttpFault::start(
        locked.addr(),
        vec![
            slipway_testbed::Fault::new("/manifests/", 100, 400)
                .method("PUT")
                .authorized_only()
                .echoing_request(),
        ],
    );
    let through = format!("{}/prod/app:1", front.host());
    let run = img_tag(
        &[
            "apply",
            &through,
            "--tag",
            "stable",
            "--username",
            USER,
            "--password-stdin",
        ],
        &[],
        &format!("{password}\n"),
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    let stderr = run.stderr();
    // The echo reached the error, with its credential redacted.
    assert!(
        stderr.contains("your request was: PUT /v2/prod/app/manifests/stable HTTP/1.1"),
        "{stderr}"
    );
    assert!(stderr.contains("authorization: Basic ***"), "{stderr}");
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    assert!(
        !front.seen_matching("PUT", "/manifests/stable").is_empty(),
        "the PUT with credentials was sent"
    );
}

/// A hostile registry on loopback, for what no real registry does on its
/// own: it asks for Basic credentials, then answers `tags/list` with the
/// head and `Link` that `answer` gives for each request path. Records the
/// `Authorization` header of each request (empty if none).
struct HostileRegistry {
    host: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl HostileRegistry {
    fn start(answer: impl Fn(&str, &str) -> (String, String) + Send + 'static) -> Self {
        use std::io::{BufRead as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let host = listener.local_addr().expect("address").to_string();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let own = host.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
                let mut path = String::new();
                let mut authorization = String::new();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        break;
                    }
                    if path.is_empty() {
                        path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    } else if let Some(value) = line
                        .split_once(':')
                        .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
                        .map(|(_, value)| value.trim().to_owned())
                    {
                        authorization = value;
                    }
                    line.clear();
                }
                log.lock()
                    .expect("log")
                    .push((path.clone(), authorization.clone()));
                let (head, body) = if path == "/v2/"
                    || authorization.is_empty() && !path.contains("last=")
                {
                    (
                        "401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"hostile\"".to_owned(),
                        String::new(),
                    )
                } else {
                    answer(&own, &path)
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {head}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { host, seen }
    }

    fn seen(&self) -> Vec<(String, String)> {
        self.seen.lock().expect("log").clone()
    }
}

/// A registry's `Link` to the next page of tags may name any URL; the
/// credentials are only ever sent to the registry itself. A hostile (or
/// tampered plain-HTTP) registry pointed `Link` at another host and got
/// `Authorization: Basic base64(user:password)`.
#[test]
fn credentials_never_follow_a_link_to_another_origin() {
    let password = distinctive("L1nk");
    let secret = Secret::new("registry password", &password).with_user(USER);
    let elsewhere = HostileRegistry::start(|_, _| {
        (
            "200 OK".to_owned(),
            r#"{"name":"team/app","tags":["b"]}"#.to_owned(),
        )
    });
    let other = elsewhere.host.clone();
    let registry = HostileRegistry::start(move |_, _| {
        (
            format!("200 OK\r\nLink: <http://{other}/v2/team/app/tags/list?last=a>; rel=\"next\""),
            r#"{"name":"team/app","tags":["a"]}"#.to_owned(),
        )
    });
    let run = img_tag(
        &[
            "ls",
            &format!("{}/team/app", registry.host),
            "--username",
            USER,
            "--password-stdin",
        ],
        &[],
        &password,
    );
    run.assert_no_leak(std::slice::from_ref(&secret), &[]);
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    assert_eq!(run.output.status.code(), Some(0), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&run.output.stdout), "a\nb\n");
    assert!(
        registry
            .seen()
            .iter()
            .any(|(_, authorization)| authorization.starts_with("Basic ")),
        "the registry itself gets the credentials: {:?}",
        registry.seen()
    );
    assert_eq!(
        elsewhere.seen(),
        vec![("/v2/team/app/tags/list?last=a".to_owned(), String::new())],
        "the other origin got a request without credentials"
    );
}

/// A `Link` that leads back to a page already read ends the listing with
/// an error, instead of requesting without end (18 236 requests in 15 s).
#[test]
fn a_tag_list_whose_pages_loop_fails_instead_of_spinning() {
    let password = distinctive("L00p");
    let registry = HostileRegistry::start(|own, _| {
        (
            format!(
                "200 OK\r\nLink: <http://{own}/v2/team/app/tags/list?n=1000&last=a>; rel=\"next\""
            ),
            r#"{"name":"team/app","tags":["a"]}"#.to_owned(),
        )
    });
    let run = img_tag(
        &[
            "ls",
            &format!("{}/team/app", registry.host),
            "--username",
            USER,
            "--password-stdin",
        ],
        &[],
        &password,
    );
    let stderr = String::from_utf8_lossy(&run.output.stderr);
    assert_eq!(run.output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("a tag list whose `Link` pages end"),
        "{stderr}"
    );
    assert!(
        registry.seen().len() < 10,
        "{} requests",
        registry.seen().len()
    );
}
