//! One attempt against one target: an HTTP request or a TCP connect, and
//! whether its answer counts as ready.
//!
//! No retries and no deadlines here: the caller wraps each attempt in the
//! per-attempt timeout and decides when to try again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

use super::plan::{HttpCheck, Plan, Target, parse_retry_after};

/// How much of a body is read to check it; the rest is ignored.
const MAX_BODY: usize = 64 * 1024;
/// How many characters of the body a report shows.
const EXCERPT_CHARS: usize = 200;

/// What one attempt found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attempt {
    pub(crate) is_ready: bool,
    pub(crate) status: Option<u16>,
    /// Why the answer is not ready (`None` when ready).
    pub(crate) problem: Option<String>,
    pub(crate) body_excerpt: Option<String>,
    /// The server's `Retry-After`, as a delay from now.
    pub(crate) retry_after: Option<Duration>,
}

impl Attempt {
    fn failed(problem: String) -> Attempt {
        Attempt {
            problem: Some(problem),
            ..Attempt::default()
        }
    }
}

/// The addresses `localhost` stands for. Both are tried, IPv6 first, so a
/// server listening on only one of them is found either way (resolvers that
/// answer `::1` alone make other tools hang here).
pub(crate) fn localhost_addrs(port: u16) -> [SocketAddr; 2] {
    [
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
    ]
}

/// Builds the one HTTP client a run uses. Pooling is off so every attempt
/// opens a fresh connection: a kept-alive connection to an old process must
/// never answer for the new one.
pub(crate) fn build_client(plan: &Plan) -> Result<reqwest::Client, String> {
    // The workspace's reqwest has no built-in provider; ring is ours. A second
    // install (another caller in the same process) is fine to ignore.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let redirect = if plan.follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    let mut builder = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(redirect)
        .resolve_to_addrs("localhost", &localhost_addrs(0))
        .user_agent(plan.user_agent.as_str());
    let needs_tls = plan.follow_redirects
        || plan
            .targets
            .iter()
            .any(|t| matches!(t, Target::Http(url) if url.scheme() == "https"));
    builder = if plan.tls.is_insecure {
        builder.tls_danger_accept_invalid_certs(true)
    } else if needs_tls {
        builder.tls_certs_merge(plan.tls.extra_roots.iter().cloned())
    } else {
        // Plain HTTP only: skip loading the system's roots, which costs
        // milliseconds of start-up for nothing.
        builder.tls_certs_only([])
    };
    builder
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {}", innermost(&error)))
}

/// One HTTP attempt.
pub(crate) async fn http(
    client: &reqwest::Client,
    url: &reqwest::Url,
    check: &HttpCheck,
) -> Attempt {
    let mut request = client.request(check.method.clone(), url.clone());
    for (name, value) in &check.headers {
        request = request.header(name, value);
    }
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(error) => return Attempt::failed(describe(&error)),
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    let mut body = Vec::new();
    let mut read_error = None;
    while body.len() < MAX_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(error) => {
                read_error = Some(describe(&error));
                break;
            }
        }
    }
    body.truncate(MAX_BODY);
    let text = String::from_utf8_lossy(&body);
    let problem = match read_error {
        Some(error) => Some(error),
        None => judge(check, status, &text),
    };
    Attempt {
        is_ready: problem.is_none(),
        status: Some(status),
        problem,
        // Redacted before it is cut: a secret the server echoes (a request
        // header quoted in an error page) must not survive in part.
        body_excerpt: Some(excerpt(&slipway_core::secret::redact(&text))),
        retry_after,
    }
}

/// Why an answer is not ready, or `None` when it is.
fn judge(check: &HttpCheck, status: u16, body: &str) -> Option<String> {
    if !check.status.contains(status) {
        return Some(format!("status {status}, expected {}", check.status));
    }
    if let Some(needle) = &check.body_contains
        && !body.contains(needle.as_str())
    {
        return Some(format!("body does not contain `{needle}`"));
    }
    if let Some(regex) = &check.body_regex
        && !regex.is_match(body)
    {
        return Some(format!("body does not match `{regex}`"));
    }
    if let Some(path) = &check.json_path {
        let document: serde_json::Value = match serde_json::from_str(body) {
            Ok(document) => document,
            Err(error) => return Some(format!("body is not JSON: {error}")),
        };
        let selected = path.select(&document);
        let Some(first) = selected.first() else {
            return Some(format!("`{path}` selects nothing"));
        };
        match &check.equals {
            Some(expected) => {
                let as_json = serde_json::from_str::<serde_json::Value>(expected).ok();
                let matches = |value: &&serde_json::Value| {
                    value.as_str() == Some(expected.as_str()) || as_json.as_ref() == Some(*value)
                };
                if !selected.iter().any(matches) {
                    let first = redacted_json(first);
                    return Some(format!("`{path}` is `{first}`, expected `{expected}`"));
                }
            }
            None => {
                let truthy = |value: &&serde_json::Value| {
                    !matches!(
                        value,
                        serde_json::Value::Null | serde_json::Value::Bool(false)
                    )
                };
                if !selected.iter().any(truthy) {
                    let first = redacted_json(first);
                    return Some(format!("`{path}` is `{first}`"));
                }
            }
        }
    }
    None
}

/// `value` as JSON text, each string redacted before it is escaped: a
/// secret with a `"` or `\\` in it (an echoed request header) is no longer
/// found by its raw bytes once escaped.
fn redacted_json(value: &serde_json::Value) -> String {
    fn redact(value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(text) => Value::String(slipway_core::secret::redact(text).into_owned()),
            Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
            Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(key, value)| {
                        (
                            slipway_core::secret::redact(key).into_owned(),
                            redact(value),
                        )
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    redact(value).to_string()
}

/// One TCP attempt: ready when any address of the host accepts a connection.
pub(crate) async fn tcp(host: &str, port: u16) -> Attempt {
    let addrs: Vec<SocketAddr> = if host.eq_ignore_ascii_case("localhost") {
        localhost_addrs(port).to_vec()
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, port)]
    } else {
        match tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => addrs.collect(),
            Err(error) => return Attempt::failed(format!("cannot resolve `{host}`: {error}")),
        }
    };
    let mut problems = Vec::new();
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_stream) => {
                return Attempt {
                    is_ready: true,
                    ..Attempt::default()
                };
            }
            Err(error) => problems.push(format!("{addr}: {}", io_message(&error))),
        }
    }
    if problems.is_empty() {
        problems.push(format!("`{host}` resolves to no address"));
    }
    Attempt::failed(format!("cannot connect: {}", problems.join("; ")))
}

/// A reqwest error as one line without the URL (the target is shown
/// beside it anyway): what failed and the innermost reason.
fn describe(error: &reqwest::Error) -> String {
    let cause = innermost(error);
    if error.is_connect() {
        format!("cannot connect: {cause}")
    } else if error.is_redirect() {
        format!("redirect failed: {cause}")
    } else if error.is_body() || error.is_decode() {
        format!("cannot read the body: {cause}")
    } else {
        cause
    }
}

fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    match cause.downcast_ref::<std::io::Error>() {
        Some(io) => io_message(io),
        None => cause.to_string(),
    }
}

/// An IO error in lowercase, e.g. `connection refused`.
fn io_message(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_owned(),
    }
}

/// The start of a body for people: one line, at most 200 characters.
fn excerpt(body: &str) -> String {
    let mut text = String::new();
    let mut last_was_space = false;
    for c in body.chars() {
        let c = if c.is_whitespace() || c.is_control() {
            ' '
        } else {
            c
        };
        if c == ' ' && (last_was_space || text.is_empty()) {
            continue;
        }
        last_was_space = c == ' ';
        if text.chars().count() == EXCERPT_CHARS {
            text.push('…');
            break;
        }
        text.push(c);
    }
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{JsonPath, StatusSet};

    fn check_with(configure: impl FnOnce(&mut HttpCheck)) -> HttpCheck {
        let mut check = HttpCheck::default();
        configure(&mut check);
        check
    }

    #[track_caller]
    fn check(http: &HttpCheck, status: u16, body: &str, expected: Option<&str>) {
        assert_eq!(
            judge(http, status, body).as_deref(),
            expected,
            "status {status}, body `{body}`"
        );
    }

    #[test]
    fn answers_are_judged_by_status_then_body() {
        let plain = HttpCheck::default();
        check(&plain, 200, "", None);
        check(&plain, 503, "", Some("status 503, expected 200-299"));
        let only_204 = check_with(|c| c.status = StatusSet::parse("204").unwrap());
        check(&only_204, 200, "", Some("status 200, expected 204"));
        let contains = check_with(|c| c.body_contains = Some("ok".to_owned()));
        check(&contains, 200, "all ok", None);
        check(
            &contains,
            200,
            "starting",
            Some("body does not contain `ok`"),
        );
        let regex = check_with(|c| c.body_regex = Some(regex::Regex::new("^up ").unwrap()));
        check(&regex, 200, "up 3s", None);
        check(&regex, 200, "down", Some("body does not match `^up `"));
        let json = check_with(|c| {
            c.json_path = Some(JsonPath::parse("$.status").unwrap());
            c.equals = Some("ok".to_owned());
        });
        check(&json, 200, r#"{"status":"ok"}"#, None);
        check(
            &json,
            200,
            r#"{"status":"starting"}"#,
            Some(r#"`$.status` is `"starting"`, expected `ok`"#),
        );
        check(
            &json,
            200,
            r#"{"other":1}"#,
            Some("`$.status` selects nothing"),
        );
        check(
            &json,
            200,
            "<html>",
            Some("body is not JSON: expected value at line 1 column 1"),
        );
        let truthy = check_with(|c| c.json_path = Some(JsonPath::parse("$.ready").unwrap()));
        check(&truthy, 200, r#"{"ready":true}"#, None);
        check(
            &truthy,
            200,
            r#"{"ready":false}"#,
            Some("`$.ready` is `false`"),
        );
        let number = check_with(|c| {
            c.json_path = Some(JsonPath::parse("$.replicas").unwrap());
            c.equals = Some("3".to_owned());
        });
        check(&number, 200, r#"{"replicas":3}"#, None);
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("  a\n\n  b\t c  "), "a b c");
        let long = "x".repeat(300);
        assert_eq!(excerpt(&long), format!("{}…", "x".repeat(200)));
    }
}
