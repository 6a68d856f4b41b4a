//! Credentials in readiness checks never leak: a password in the target URL
//! and tokens in `--header` values are sent to the endpoint (a loopback
//! server here checks them), but no 8-byte window of them, nor the base64
//! `Basic` form, appears in stdout, stderr, `$GITHUB_OUTPUT` or
//! `$GITHUB_STEP_SUMMARY` — at `-vv` with `RUST_LOG=trace`, when ready,
//! when refused (401 until the deadline), when unreachable, and when the
//! flag holding the secret is malformed. Under GitHub Actions each secret is
//! announced with `::add-mask::` before the first request.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use slipway_testbed::cmd::Cmd;
use slipway_testbed::secrets::{GithubRun, Secret, basic_auth, distinctive};

const USER: &str = "probe";

/// A loopback HTTP server that answers 200 when every line of `required`
/// is among a request's header lines, else 401; it records each request's
/// head and stops with the test process.
struct Endpoint {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Endpoint {
    fn start(required: Vec<String>) -> Endpoint {
        Endpoint::serve(Some(required), false)
    }

    /// A server that answers every request 503 with a body quoting the
    /// request's head, credentials included, as a careless error page does.
    fn echoing() -> Endpoint {
        Endpoint::serve(None, false)
    }

    /// A server that answers every request 200 with a JSON body whose
    /// `headers` object holds the request's header lines, values included.
    fn echoing_json() -> Endpoint {
        Endpoint::serve(None, true)
    }

    fn serve(required: Option<Vec<String>>, is_json: bool) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("bound").port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&heads);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("socket clones"));
                let mut head = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push(line.trim_end().to_owned());
                }
                seen.lock().expect("not poisoned").push(head.join("\n"));
                if is_json {
                    let fields: Vec<String> = head[1..]
                        .iter()
                        .filter_map(|line| line.split_once(": "))
                        .map(|(name, value)| format!("\"{name}\":\"{}\"", json_escape(value)))
                        .collect();
                    let body = format!("{{\"headers\":{{{}}}}}", fields.join(","));
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    continue;
                }
                let Some(required) = &required else {
                    let body = format!("not ready; your request was:\n{}\n", head.join("\n"));
                    let _ = write!(
                        stream,
                        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    continue;
                };
                let is_allowed = required
                    .iter()
                    .all(|r| head.iter().any(|h| h.eq_ignore_ascii_case(r)));
                let status = if is_allowed {
                    "200 OK"
                } else {
                    "401 Unauthorized"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Endpoint { port, heads }
    }

    fn url(&self, userinfo: &str) -> String {
        format!("http://{userinfo}127.0.0.1:{}/ready", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.heads.lock().expect("not poisoned").clone()
    }
}

/// `text` as inside a JSON string (no control characters in header values).
fn json_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Runs `ready-wait` at `-vv` with `RUST_LOG=trace` under GitHub Actions,
/// with only PATH in its environment.
fn ready_wait(args: &[&str]) -> GithubRun {
    let dir = tempfile::tempdir().expect("temp dir");
    GithubRun::run(
        Cmd::new(env!("CARGO_BIN_EXE_ready-wait"))
            .args(args)
            .args(["-vv", "--interval", "50ms", "--max-interval", "100ms"])
            .current_dir(dir.path()),
    )
}

/// A line the binary prints once it polls (the first attempt's log).
const FIRST_USE: &str = "hyper_util";

#[test]
fn a_url_password_and_token_headers_are_sent_masked_and_never_printed() {
    let password = distinctive("Pa55");
    let token = distinctive("T0k");
    let secrets = [
        Secret::new("URL password", &password).with_user(USER),
        Secret::new("API token", &token),
    ];
    let basic = basic_auth(USER, &password);
    let endpoint = Endpoint::start(vec![
        format!("authorization: Basic {basic}"),
        format!("x-api-token: {token}"),
    ]);
    let url = endpoint.url(&format!("{USER}:{password}@"));
    let header = format!("X-Api-Token: {token}");

    for format in ["json", "github", "plain"] {
        let run = ready_wait(&[&url, "-H", &header, "--timeout", "10s", "--format", format]);
        assert_eq!(run.code(), Some(0), "--format {format}: {}", run.stderr());
        run.assert_no_leak(&secrets, &[]);
        run.assert_masked(&secrets, Some(FIRST_USE));
    }
    let run = ready_wait(&[&url, "-H", &header, "--format", "json"]);
    let stdout = String::from_utf8_lossy(&run.output.stdout);
    assert!(
        stdout.contains(&format!(
            "http://{USER}:***@127.0.0.1:{}/ready",
            endpoint.port
        )),
        "the report shows the target with its password hidden: {stdout}"
    );
    assert!(
        endpoint
            .requests()
            .iter()
            .any(|head| head.contains(&token) && head.contains(&basic)),
        "the endpoint received both credentials"
    );

    // A bearer token: the whole value and the token alone are masked.
    let bearer = format!("Authorization: Bearer {token}");
    let endpoint = Endpoint::start(vec![format!("authorization: Bearer {token}")]);
    let run = ready_wait(&[&endpoint.url(""), "-H", &bearer, "--timeout", "10s"]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    run.assert_no_leak(&secrets[1..], &[]);
    run.assert_masked(&secrets[1..], Some(FIRST_USE));
    assert!(
        run.stderr()
            .contains(&format!("::add-mask::Bearer {token}"))
    );
}

#[test]
fn refused_and_unreachable_endpoints_fail_without_printing_credentials() {
    let password = distinctive("Pa55");
    let token = distinctive("T0k");
    let secrets = [
        Secret::new("URL password", &password).with_user(USER),
        Secret::new("API token", &token),
    ];
    let header = format!("Authorization: Bearer {token}");

    // The endpoint wants other credentials: 401 until the deadline.
    let endpoint = Endpoint::start(vec!["authorization: Bearer another".to_owned()]);
    let url = endpoint.url(&format!("{USER}:{password}@"));
    for format in ["json", "github"] {
        let run = ready_wait(&[&url, "-H", &header, "--timeout", "1s", "--format", format]);
        assert_eq!(run.code(), Some(1), "{}", run.stderr());
        assert!(run.stderr().contains("401"), "{}", run.stderr());
        run.assert_no_leak(&secrets, &[]);
        run.assert_masked(&secrets, Some(FIRST_USE));
    }
    assert!(!endpoint.requests().is_empty(), "the endpoint was polled");

    // Nothing listens on the port.
    let port = slipway_testbed::free_port();
    let url = format!("http://{USER}:{password}@127.0.0.1:{port}/ready");
    let run = ready_wait(&[&url, "-H", &header, "--timeout", "1s", "--format", "json"]);
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    assert!(run.stderr().contains(&port.to_string()), "{}", run.stderr());
    run.assert_no_leak(&secrets, &[]);
    run.assert_masked(&secrets, None);
}

#[test]
fn malformed_secret_bearing_flags_are_refused_without_echoing_them() {
    let password = distinctive("Pa55");
    let token = distinctive("T0k");
    let secrets = [
        Secret::new("URL password", &password).with_user(USER),
        Secret::new("API token", &token),
    ];
    let cases: [(Vec<String>, String); 4] = [
        // A header without its colon.
        (
            vec![
                "http://127.0.0.1:9/".to_owned(),
                "-H".to_owned(),
                format!("Bearer {token}"),
            ],
            "invalid `--header` value `***`: expected `Name: value`".to_owned(),
        ),
        // A header value that is not visible ASCII.
        (
            vec![
                "http://127.0.0.1:9/".to_owned(),
                "-H".to_owned(),
                format!("Authorization: Bearer {token}\u{7}"),
            ],
            "invalid `--header` value `Authorization: ***`".to_owned(),
        ),
        // A URL whose port is out of range.
        (
            vec![format!("http://{USER}:{password}@127.0.0.1:99999/ready")],
            format!("invalid `TARGET` value `http://{USER}:***@127.0.0.1:99999/ready`"),
        ),
        // A password in an unknown scheme.
        (
            vec![format!("ftp://{USER}:{password}@127.0.0.1/ready")],
            "unknown scheme `ftp`".to_owned(),
        ),
    ];
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = ready_wait(&args);
        assert_eq!(run.code(), Some(2), "{args:?}: {}", run.stderr());
        assert!(
            run.stderr().contains(expected.as_str()),
            "{args:?}: expected `{expected}` in {}",
            run.stderr()
        );
        run.assert_no_leak(&secrets, &[]);
    }
}

/// An endpoint whose not-ready page quotes the request's headers put the
/// API key and `Authorization: Basic …` (the URL's password) into
/// `body_excerpt` and the not-ready lines. Every form of every secret is now
/// redacted from everything ready-wait prints, in every format.
#[test]
fn an_endpoint_echoing_the_request_headers_leaks_nothing() {
    let password = distinctive("Pa55");
    let key = distinctive("K3y");
    let token = distinctive("T0k");
    let secrets = [
        Secret::new("URL password", &password).with_user(USER),
        Secret::new("API key", &key),
        Secret::new("bearer token", &token),
    ];
    let endpoint = Endpoint::echoing();
    let url = endpoint.url(&format!("{USER}:{password}@"));
    let plain_url = endpoint.url("");
    let api_key = format!("X-Api-Key: {key}");
    let bearer = format!("Authorization: Bearer {token}");
    for format in ["json", "github", "plain"] {
        let run = ready_wait(&[
            &url,
            "-H",
            &api_key,
            "--timeout",
            "300ms",
            "--format",
            format,
        ]);
        assert_eq!(run.code(), Some(1), "--format {format}: {}", run.stderr());
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(
            all.contains("your request was:"),
            "--format {format}: {all}"
        );
        assert!(all.contains("x-api-key: ***"), "--format {format}: {all}");
        assert!(
            all.contains("authorization: Basic ***"),
            "--format {format}: {all}"
        );
        run.assert_no_leak(&secrets[..2], &[]);

        let run = ready_wait(&[
            &plain_url,
            "-H",
            &bearer,
            "--timeout",
            "300ms",
            "--format",
            format,
        ]);
        assert_eq!(run.code(), Some(1), "--format {format}: {}", run.stderr());
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(
            all.contains("authorization: ***"),
            "--format {format}: {all}"
        );
        run.assert_no_leak(&secrets[2..], &[]);
    }
    assert!(
        endpoint.requests().iter().any(|head| head.contains(&key)),
        "the endpoint received the key"
    );
}

/// A token in the query of the target URL, and a token written as the URL's
/// user name (no password; the client sends it as `Basic base64(token:)`),
/// were printed in progress lines, the report's `target` and, echoed by the
/// endpoint, `body_excerpt`. Now each is masked and redacted, in every form.
#[test]
fn a_token_in_the_url_query_or_as_its_user_name_is_masked_and_never_printed() {
    let query_token = distinctive("QueryT0k");
    let user_token = distinctive("UserT0k");
    let secrets = [
        Secret::new("query token", &query_token),
        Secret::new("user-name token", &user_token),
    ];
    let lone_user_basic = basic_auth(&user_token, "");
    let endpoint = Endpoint::echoing();
    let query_url = format!(
        "http://127.0.0.1:{}/api/ready?token={query_token}&page=2",
        endpoint.port
    );
    let user_url = endpoint.url(&format!("{user_token}@"));
    for format in ["json", "github", "plain"] {
        for (url, shown) in [
            (
                &query_url,
                format!("127.0.0.1:{}/api/ready?token=***&page=2", endpoint.port),
            ),
            (
                &user_url,
                format!("http://***@127.0.0.1:{}/ready", endpoint.port),
            ),
        ] {
            let run = ready_wait(&[url, "--timeout", "300ms", "--format", format]);
            assert_eq!(run.code(), Some(1), "--format {format}: {}", run.stderr());
            let all = format!("{}{}", run.stdout(), run.stderr());
            assert!(
                all.contains("your request was:"),
                "--format {format}: {all}"
            );
            assert!(
                all.contains(&shown),
                "--format {format}: `{shown}` in {all}"
            );
            run.assert_no_leak(&secrets, &[]);
            assert!(
                !all.contains(&lone_user_basic),
                "--format {format}: the Basic form of the user-name token leaked: {all}"
            );
        }
    }
    let run = ready_wait(&[&query_url, &user_url, "--timeout", "300ms"]);
    run.assert_masked(&secrets, Some(FIRST_USE));
    assert!(
        endpoint
            .requests()
            .iter()
            .any(|head| head.contains(&query_token)),
        "the endpoint received the query token"
    );
    assert!(
        endpoint
            .requests()
            .iter()
            .any(|head| head.contains(&lone_user_basic)),
        "the endpoint received the user-name token as Basic credentials"
    );
}

/// A secret with a `"` or `\\` in it appeared JSON-escaped (in
/// `body_excerpt`, and in the not-ready reason "`$.headers` is `{…}`"),
/// where its raw bytes were not found; a credential header value that is
/// not ASCII was not masked at all. Now both are redacted in every form.
#[test]
fn secrets_with_quotes_backslashes_or_non_ascii_are_redacted_when_echoed() {
    let key = format!(r#"ab\cd"ef-{}"#, distinctive("K3y"));
    let token = format!("t\u{f6}k-{}", distinctive("T0k"));
    let secrets = [
        Secret::new("API key with a quote and a backslash", &key),
        Secret::new("non-ASCII token", &token),
    ];
    let api_key = format!("X-Api-Key: {key}");
    let auth_token = format!("X-Auth-Token: {token}");

    let endpoint = Endpoint::echoing();
    for format in ["json", "github", "plain"] {
        let run = ready_wait(&[
            &endpoint.url(""),
            "-H",
            &api_key,
            "-H",
            &auth_token,
            "--timeout",
            "300ms",
            "--format",
            format,
        ]);
        assert_eq!(run.code(), Some(1), "--format {format}: {}", run.stderr());
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(all.contains("x-api-key: ***"), "--format {format}: {all}");
        assert!(
            all.contains("x-auth-token: ***"),
            "--format {format}: {all}"
        );
        run.assert_no_leak(&secrets, &[]);
        run.assert_masked(&secrets, Some(FIRST_USE));
    }

    let endpoint = Endpoint::echoing_json();
    for format in ["json", "github", "plain"] {
        let run = ready_wait(&[
            &endpoint.url(""),
            "-H",
            &api_key,
            "-H",
            &auth_token,
            "--json-path",
            "$.headers",
            "--equals",
            "none",
            "--timeout",
            "300ms",
            "--format",
            format,
        ]);
        assert_eq!(run.code(), Some(1), "--format {format}: {}", run.stderr());
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(all.contains("$.headers` is `{"), "--format {format}: {all}");
        run.assert_no_leak(&secrets, &[]);
    }
    assert!(
        endpoint.requests().iter().any(|head| head.contains(&key)),
        "the endpoint received the key"
    );
}

/// A malformed `ready_url` in slipway.toml was quoted with its password in
/// the config error. Now the password is shown as `***`.
#[test]
fn a_malformed_ready_url_in_the_config_is_refused_without_its_password() {
    let password = distinctive("Pa55");
    let secrets = [Secret::new("ready URL password", &password).with_user("bob")];
    let dir = tempfile::tempdir().expect("temp dir");
    fs_err::write(
        dir.path().join("slipway.toml"),
        format!(
            "[envs.staging]\nhosts = [\"root@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nready_url = \"htp://bob:{password}@127.0.0.1:18080/api/ready\"\n"
        ),
    )
    .expect("slipway.toml written");
    let run = GithubRun::run(
        Cmd::new(env!("CARGO_BIN_EXE_ready-wait"))
            .args(["--env", "staging", "-vv"])
            .current_dir(dir.path()),
    );
    assert_eq!(run.code(), Some(2), "{}", run.stderr());
    let shown = "`htp://bob:***@127.0.0.1:18080/api/ready` is not an `http://`";
    assert!(
        run.stderr().contains(shown),
        "`{shown}` in {}",
        run.stderr()
    );
    run.assert_no_leak(&secrets, &[]);
}
