//! What to wait for, parsed and validated: targets, checks and timing.
//!
//! Everything here is pure: a [`Plan`] is built from values the user typed
//! before any socket is opened, and every bad value is a [`PlanError`] that
//! names the flag, the value and what would be valid.

use std::fmt;
use std::time::Duration;

/// A bad value in the flags or the config, found before any polling.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A value that does not parse as its flag expects.
    #[error("invalid `{flag}` value `{value}`: {reason}")]
    Invalid {
        /// The flag (or config key), e.g. `--status`.
        flag: String,
        /// The value as typed.
        value: String,
        /// What is wrong and what would be valid.
        reason: String,
    },
    /// A flag combination that cannot work.
    #[error("{0}")]
    Combination(String),
}

slipway_core::cli::exit_status!(PlanError => USAGE);

impl PlanError {
    fn invalid(flag: &str, value: &str, reason: impl Into<String>) -> PlanError {
        PlanError::Invalid {
            flag: flag.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Everything [`super::wait()`] needs: what to poll, what counts as ready,
/// and how long to try.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The endpoints, in the order given.
    pub targets: Vec<Target>,
    /// Whether all targets or any one must be ready.
    pub mode: Mode,
    /// The overall deadline, from the start of [`super::wait()`].
    pub timeout: Duration,
    /// The longest one attempt may take (capped by what is left of `timeout`).
    pub attempt_timeout: Duration,
    /// The pause after the first failed attempt; it grows ×1.5 per failure.
    pub interval: Duration,
    /// The cap of the growing pause.
    pub max_interval: Duration,
    /// Consecutive successful attempts needed before a target is ready.
    pub stable: u32,
    /// A pause before the first attempt.
    pub initial_delay: Duration,
    /// What an HTTP answer must look like to count as ready.
    pub http: HttpCheck,
    /// TLS settings for `https://` targets.
    pub tls: Tls,
    /// Whether HTTP redirects are followed (else a 3xx is the answer).
    pub follow_redirects: bool,
    /// The `User-Agent` of HTTP attempts: the tool that waits, e.g.
    /// `ssh-deploy/0.1.0`, so an app's logs say who asked.
    pub user_agent: String,
}

impl Plan {
    /// A plan for `targets` with the documented defaults: all targets, 60 s
    /// overall, 5 s per attempt, 250 ms growing to 2 s between attempts,
    /// one success, status 200-299, and `User-Agent: slipway/<version>` (set
    /// [`Plan::user_agent`] to the tool's name).
    pub fn new(targets: Vec<Target>) -> Plan {
        Plan {
            targets,
            mode: Mode::All,
            timeout: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(5),
            interval: Duration::from_millis(250),
            max_interval: Duration::from_secs(2),
            stable: 1,
            initial_delay: Duration::ZERO,
            http: HttpCheck::default(),
            tls: Tls::default(),
            follow_redirects: false,
            user_agent: concat!("slipway/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// Checks the values that only make sense together.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.targets.is_empty() {
            return Err(PlanError::Combination(
                "no target given: pass one or more `http://…`, `https://…` or `tcp://host:port`, or `--env NAME` with a `ready_url` in slipway.toml".to_owned(),
            ));
        }
        if self.stable == 0 {
            return Err(PlanError::invalid("--stable", "0", "must be at least 1"));
        }
        if self.interval.is_zero() {
            return Err(PlanError::invalid(
                "--interval",
                "0s",
                "must be more than zero, e.g. `250ms`",
            ));
        }
        if self.max_interval < self.interval {
            return Err(PlanError::Combination(format!(
                "`--max-interval {}` is shorter than `--interval {}`",
                humantime::format_duration(self.max_interval),
                humantime::format_duration(self.interval)
            )));
        }
        if self.attempt_timeout.is_zero() {
            return Err(PlanError::invalid(
                "--attempt-timeout",
                "0s",
                "must be more than zero, e.g. `5s`",
            ));
        }
        if self.http.equals.is_some() && self.http.json_path.is_none() {
            return Err(PlanError::Combination(
                "`--equals` needs `--json-path`".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Whether every target or any one must be ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Ready when every target is ready (the default).
    All,
    /// Ready as soon as one target is ready.
    Any,
}

/// One endpoint to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An `http://` or `https://` URL, checked with a request.
    Http(reqwest::Url),
    /// A `tcp://host:port`, ready when a connection is accepted.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
    },
}

impl Target {
    /// Parses `http(s)://…` or `tcp://host:port`.
    pub fn parse(value: &str) -> Result<Target, PlanError> {
        // A URL may carry a password: errors show it redacted.
        let shown = slipway_core::secret::redact_url(value);
        let invalid = |reason: &str| {
            PlanError::invalid(
                "TARGET",
                &shown,
                format!(
                    "{reason}; valid targets are `http://host[:port]/path`, `https://…` or `tcp://host:port`"
                ),
            )
        };
        let url = reqwest::Url::parse(value).map_err(|error| invalid(&error.to_string()))?;
        match url.scheme() {
            "http" | "https" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("no host"));
                }
                Ok(Target::Http(url))
            }
            "tcp" => {
                let host = url
                    .host_str()
                    .filter(|h| !h.is_empty())
                    .ok_or_else(|| invalid("no host"))?;
                let port = url.port().ok_or_else(|| invalid("no port"))?;
                if !matches!(url.path(), "" | "/") || url.query().is_some() {
                    return Err(invalid("a TCP target has no path or query"));
                }
                let host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned();
                Ok(Target::Tcp { host, port })
            }
            other => Err(invalid(&format!("unknown scheme `{other}`"))),
        }
    }

    /// The host name, as a resolver sees it.
    pub fn host(&self) -> String {
        match self {
            Target::Http(url) => url
                .host_str()
                .unwrap_or_default()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            Target::Tcp { host, .. } => host.clone(),
        }
    }
}

impl fmt::Display for Target {
    /// The target as shown to people: the URL without its password, token
    /// user name or secret-looking query values ([`slipway_core::secret::redact_url`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Http(url) => write!(f, "{}", slipway_core::secret::RedactedUrl(url.as_str())),
            Target::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Target::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// What an HTTP answer must look like.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// The request method.
    pub method: reqwest::Method,
    /// Extra request headers.
    pub headers: Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    /// The accepted statuses.
    pub status: StatusSet,
    /// Text the body must contain.
    pub body_contains: Option<String>,
    /// A pattern the body must match.
    pub body_regex: Option<regex::Regex>,
    /// A JSONPath the body (as JSON) must match.
    pub json_path: Option<JsonPath>,
    /// The value the JSONPath must select (else: any value but `null`/`false`).
    pub equals: Option<String>,
}

impl Default for HttpCheck {
    fn default() -> HttpCheck {
        HttpCheck {
            method: reqwest::Method::GET,
            headers: Vec::new(),
            status: StatusSet::default(),
            body_contains: None,
            body_regex: None,
            json_path: None,
            equals: None,
        }
    }
}

/// Parses an HTTP method such as `GET` or `HEAD`.
pub fn parse_method(value: &str) -> Result<reqwest::Method, PlanError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        return Err(PlanError::invalid(
            "--method",
            value,
            "expected a method such as `GET`, `HEAD` or `POST`",
        ));
    }
    reqwest::Method::from_bytes(value.to_ascii_uppercase().as_bytes()).map_err(|_| {
        PlanError::invalid(
            "--method",
            value,
            "expected a method such as `GET`, `HEAD` or `POST`",
        )
    })
}

/// Parses a `Name: value` header. Errors show the name but never the value
/// (`Name: ***`), which may be a token.
pub fn parse_header(
    value: &str,
) -> Result<(reqwest::header::HeaderName, reqwest::header::HeaderValue), PlanError> {
    let Some((name, header_value)) = value.split_once(':') else {
        return Err(PlanError::invalid(
            "--header",
            "***",
            "expected `Name: value` (the value is not shown: it may hold a secret)",
        ));
    };
    let shown = format!("{}: ***", name.trim());
    let invalid = |reason: &str| PlanError::invalid("--header", &shown, reason);
    let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| invalid("the name must be a token such as `Authorization`"))?;
    let header_value = reqwest::header::HeaderValue::from_str(header_value.trim())
        .map_err(|_| invalid("the value must be visible ASCII"))?;
    Ok((name, header_value))
}

/// A set of accepted HTTP statuses: `200`, `200,204`, `200-299`, `2xx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
    text: String,
}

impl Default for StatusSet {
    fn default() -> StatusSet {
        StatusSet {
            ranges: vec![(200, 299)],
            text: "200-299".to_owned(),
        }
    }
}

impl StatusSet {
    /// Parses a comma-separated list of statuses, ranges (`200-299`) and
    /// classes (`2xx`).
    pub fn parse(value: &str) -> Result<StatusSet, PlanError> {
        let invalid = |reason: String| {
            PlanError::invalid(
                "--status",
                value,
                format!(
                    "{reason}; expected statuses 100-599 as `200`, `200,204`, `200-299` or `2xx`"
                ),
            )
        };
        let status = |part: &str| -> Result<u16, PlanError> {
            match part.trim().parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) => Ok(code),
                _ => Err(invalid(format!("`{}` is not a status", part.trim()))),
            }
        };
        let mut ranges = Vec::new();
        for part in value.split(',') {
            let part = part.trim();
            let range =
                if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                    match class.parse::<u16>() {
                        Ok(digit @ 1..=5) if class.len() == 1 => (digit * 100, digit * 100 + 99),
                        _ => return Err(invalid(format!("`{part}` is not a status class"))),
                    }
                } else if let Some((low, high)) = part.split_once('-') {
                    let (low, high) = (status(low)?, status(high)?);
                    if low > high {
                        return Err(invalid(format!("`{part}` is an empty range")));
                    }
                    (low, high)
                } else {
                    let code = status(part)?;
                    (code, code)
                };
            ranges.push(range);
        }
        Ok(StatusSet {
            ranges,
            text: value
                .split(',')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(","),
        })
    }

    /// Whether `status` is accepted.
    pub fn contains(&self, status: u16) -> bool {
        self.ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&status))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A parsed JSONPath (RFC 9535), e.g. `$.status` or `$.checks[0].ok`.
#[derive(Debug, Clone)]
pub struct JsonPath {
    path: serde_json_path::JsonPath,
    text: String,
}

impl JsonPath {
    /// Parses a JSONPath expression.
    pub fn parse(value: &str) -> Result<JsonPath, PlanError> {
        let path = serde_json_path::JsonPath::parse(value).map_err(|error| {
            PlanError::invalid(
                "--json-path",
                value,
                format!("{error}; expected a JSONPath such as `$.status` or `$.checks[0].ok`"),
            )
        })?;
        Ok(JsonPath {
            path,
            text: value.to_owned(),
        })
    }

    /// The values the path selects in `document`.
    pub fn select<'a>(&self, document: &'a serde_json::Value) -> Vec<&'a serde_json::Value> {
        self.path.query(document).all()
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// TLS settings for `https://` targets.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// Extra trusted roots (`--cacert`), added to the system's.
    pub extra_roots: Vec<reqwest::Certificate>,
    /// Accept any certificate (`--insecure`).
    pub is_insecure: bool,
}

/// Reads the certificates of a `--cacert` PEM file.
pub fn parse_cacert(
    path: &std::path::Path,
    pem: &[u8],
) -> Result<Vec<reqwest::Certificate>, PlanError> {
    let shown = path.display().to_string();
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|error| {
        PlanError::invalid(
            "--cacert",
            &shown,
            format!("not a PEM certificate file: {error}"),
        )
    })?;
    if certs.is_empty() {
        return Err(PlanError::invalid(
            "--cacert",
            &shown,
            "holds no `-----BEGIN CERTIFICATE-----` block",
        ));
    }
    Ok(certs)
}

/// Parses a duration as `30s`, `500ms`, `2m` or `1m30s`, from zero to a
/// week ([`slipway_core::duration::parse`]).
pub fn parse_duration(flag: &str, value: &str) -> Result<Duration, PlanError> {
    slipway_core::duration::parse(value)
        .map_err(|error| PlanError::invalid(flag, value, error.to_string()))
}

/// Parses a `Retry-After` header value: delay seconds or an HTTP date,
/// returning the delay from `now`. `None` when it is neither.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[track_caller]
    fn check_status(value: &str, accepted: &[u16], rejected: &[u16]) {
        let set = StatusSet::parse(value).unwrap_or_else(|e| panic!("`{value}`: {e}"));
        for code in accepted {
            assert!(set.contains(*code), "`{value}` should accept {code}");
        }
        for code in rejected {
            assert!(!set.contains(*code), "`{value}` should reject {code}");
        }
    }

    #[test]
    fn status_sets() {
        check_status("200", &[200], &[201, 204, 503]);
        check_status("200,204", &[200, 204], &[201, 503]);
        check_status("200-299", &[200, 204, 299], &[199, 300]);
        check_status("2xx, 301", &[200, 250, 299, 301], &[300, 302]);
        check_status(" 503 ", &[503], &[200]);
    }

    #[track_caller]
    fn check_error(result: Result<impl fmt::Debug, PlanError>, expected: &str) {
        match result {
            Ok(value) => panic!("expected an error, got {value:?}"),
            Err(error) => assert_eq!(error.to_string(), expected),
        }
    }

    #[test]
    fn bad_values_name_the_flag_and_what_is_valid() {
        let statuses = "expected statuses 100-599 as `200`, `200,204`, `200-299` or `2xx`";
        check_error(
            StatusSet::parse("20x"),
            &format!("invalid `--status` value `20x`: `20x` is not a status; {statuses}"),
        );
        check_error(
            StatusSet::parse("700"),
            &format!("invalid `--status` value `700`: `700` is not a status; {statuses}"),
        );
        check_error(
            StatusSet::parse("299-200"),
            &format!("invalid `--status` value `299-200`: `299-200` is an empty range; {statuses}"),
        );
        check_error(
            StatusSet::parse("9xx"),
            &format!("invalid `--status` value `9xx`: `9xx` is not a status class; {statuses}"),
        );
        check_error(
            parse_duration("--timeout", "soon"),
            "invalid `--timeout` value `soon`: expected number at 0; expected a duration such as `30s`, `500ms` or `2m`",
        );
        check_error(
            parse_header("Bearer s3cr3t"),
            "invalid `--header` value `***`: expected `Name: value` (the value is not shown: it may hold a secret)",
        );
        check_error(
            parse_header("Authorization: Bearer s3cr3t\u{7}"),
            "invalid `--header` value `Authorization: ***`: the value must be visible ASCII",
        );
        check_error(
            Target::parse("http://u:s3cr3t@host:99999/"),
            "invalid `TARGET` value `http://u:***@host:99999/`: invalid port number; valid targets are `http://host[:port]/path`, `https://…` or `tcp://host:port`",
        );
        check_error(
            parse_method("G ET"),
            "invalid `--method` value `G ET`: expected a method such as `GET`, `HEAD` or `POST`",
        );
        check_error(
            Target::parse("ftp://x"),
            "invalid `TARGET` value `ftp://x`: unknown scheme `ftp`; valid targets are `http://host[:port]/path`, `https://…` or `tcp://host:port`",
        );
        check_error(
            Target::parse("tcp://db"),
            "invalid `TARGET` value `tcp://db`: no port; valid targets are `http://host[:port]/path`, `https://…` or `tcp://host:port`",
        );
        check_error(
            Target::parse("localhost:8080"),
            "invalid `TARGET` value `localhost:8080`: unknown scheme `localhost`; valid targets are `http://host[:port]/path`, `https://…` or `tcp://host:port`",
        );
        assert!(
            JsonPath::parse("$.[")
                .unwrap_err()
                .to_string()
                .starts_with("invalid `--json-path` value `$.[`: ")
        );
    }

    #[track_caller]
    fn check_duration(value: &str, expected: Duration) {
        assert_eq!(
            parse_duration("--interval", value).unwrap(),
            expected,
            "`{value}`"
        );
    }

    #[test]
    fn durations() {
        check_duration("30s", Duration::from_secs(30));
        check_duration("500ms", Duration::from_millis(500));
        check_duration("1m30s", Duration::from_secs(90));
        check_duration("0s", Duration::ZERO);
    }

    #[track_caller]
    fn check_target(value: &str, shown: &str) {
        assert_eq!(
            Target::parse(value).unwrap().to_string(),
            shown,
            "`{value}`"
        );
    }

    #[test]
    fn targets_are_shown_without_passwords() {
        check_target(
            "http://127.0.0.1:8080/api/ready",
            "http://127.0.0.1:8080/api/ready",
        );
        check_target(
            "https://user:secret@example.invalid/r",
            "https://user:***@example.invalid/r",
        );
        check_target(
            "http://ghp_tok@127.0.0.1/r?token=abc&page=2",
            "http://***@127.0.0.1/r?token=***&page=2",
        );
        check_target("tcp://localhost:5432", "tcp://localhost:5432");
        check_target("tcp://[::1]:5432", "tcp://[::1]:5432");
    }

    #[track_caller]
    fn check_json(path: &str, document: &str, expected: &[&str]) {
        let document: serde_json::Value = serde_json::from_str(document).unwrap();
        let selected: Vec<String> = JsonPath::parse(path)
            .unwrap()
            .select(&document)
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(selected, expected, "`{path}` in {document}");
    }

    #[test]
    fn json_paths() {
        check_json("$.status", r#"{"status":"ok"}"#, &[r#""ok""#]);
        check_json("$.checks[0].ok", r#"{"checks":[{"ok":true}]}"#, &["true"]);
        check_json("$.missing", r#"{"status":"ok"}"#, &[]);
    }

    #[track_caller]
    fn check_retry_after(value: &str, expected: Option<u64>) {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(
            parse_retry_after(value, now),
            expected.map(Duration::from_secs),
            "`{value}`"
        );
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        check_retry_after("120", Some(120));
        check_retry_after(" 0 ", Some(0));
        check_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", Some(30));
        check_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", Some(0));
        check_retry_after("soon", None);
        check_retry_after("-5", None);
    }
}
