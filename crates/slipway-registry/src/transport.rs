//! HTTP under the registry client: URLs (plain HTTP for loopback), the
//! `Basic`/`Bearer` challenge dance with a token cache, and retries with
//! exponential backoff and jitter on 429, 5xx and dropped connections,
//! honouring `Retry-After` up to a cap.
//!
//! Every request the client makes is safe to send twice: GET, HEAD, PUT and
//! DELETE are idempotent, and a repeated `POST …/blobs/uploads/` only opens
//! (or mounts into) a second upload session, which the registry expires. A
//! streamed blob copy is retried whole, from a fresh GET and a fresh upload.
//!
//! Secrets go only into `Authorization` headers; errors and logs name the
//! registry, method and path, never a header.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, WWW_AUTHENTICATE};
use secrecy::ExposeSecret as _;
use tokio::sync::Mutex;

use super::{Descriptor, RegistryError, RegistryOptions};
use crate::auth::Credentials;
use crate::token::{Scheme, TokenRequest, fetch_token, parse_challenge};
use slipway_core::image_ref::Repository;

/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One API call, rebuilt for every attempt.
pub(super) struct Request {
    method: Method,
    registry: String,
    /// `/v2/...`, or an absolute URL from a `Location` or `Link` header.
    pub(super) path: String,
    /// Token scopes, e.g. `repository:demo/app:pull,push`.
    scopes: Vec<String>,
    query: Vec<(String, String)>,
    headers: Vec<(HeaderName, String)>,
    body: Option<Vec<u8>>,
    /// Whether the answer is a blob streamed on elsewhere, which may take
    /// longer than [`RegistryOptions::request_timeout`].
    streaming: bool,
}

impl Request {
    /// `METHOD /v2/<repository path>/<suffix>`, with pull scope.
    pub(super) fn new(method: Method, repository: &Repository, suffix: &str) -> Self {
        Self::at(
            method,
            repository,
            format!("/v2/{}/{suffix}", repository.path()),
        )
    }

    /// `METHOD <location>` (absolute, or a path on the registry), with pull scope on `repository`.
    pub(super) fn at(method: Method, repository: &Repository, location: String) -> Self {
        Self {
            method,
            registry: repository.registry().to_owned(),
            path: location,
            scopes: vec![format!("repository:{}:pull", repository.path())],
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            streaming: false,
        }
    }

    /// Lifts the per-request timeout: the answer is a blob of any size.
    pub(super) fn streaming(mut self) -> Self {
        self.streaming = true;
        self
    }

    /// Asks for push as well as pull on the request's repository.
    pub(super) fn push(mut self) -> Self {
        if let Some(first) = self.scopes.first_mut() {
            *first = format!("{first},push");
        }
        self
    }

    /// Asks for pull on another repository too (a mount's source).
    pub(super) fn also_pull(mut self, repository: &Repository) -> Self {
        self.scopes
            .push(format!("repository:{}:pull", repository.path()));
        self
    }

    pub(super) fn query(mut self, key: &str, value: String) -> Self {
        self.query.push((key.to_owned(), value));
        self
    }

    pub(super) fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(super) fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    fn shown_path(&self) -> String {
        // Upload locations carry opaque state in their query; the path is enough.
        let path = self.path.split('?').next().unwrap_or(&self.path);
        slipway_core::secret::redact_url(path)
    }

    pub(super) fn incomplete(&self, what: &str) -> RegistryError {
        RegistryError::Incomplete {
            registry: self.registry.clone(),
            method: self.method.to_string(),
            path: self.shown_path(),
            what: what.to_owned(),
        }
    }

    pub(super) fn unreachable(&self, attempts: u32, error: &reqwest::Error) -> RegistryError {
        RegistryError::Unreachable {
            registry: self.registry.clone(),
            method: self.method.to_string(),
            path: self.shown_path(),
            attempts,
            reason: innermost(error),
        }
    }
}

/// The HTTP side of [`super::RegistryClient`].
pub(super) struct Transport {
    http: reqwest::Client,
    options: RegistryOptions,
    credentials: HashMap<String, Credentials>,
    schemes: Mutex<HashMap<String, Scheme>>,
    /// Bearer tokens by `registry scope scope…`.
    tokens: Mutex<HashMap<String, String>>,
}

impl Transport {
    pub(super) fn new(
        options: RegistryOptions,
        credentials: HashMap<String, Credentials>,
    ) -> Result<Self, RegistryError> {
        // The workspace's reqwest has no built-in crypto provider; ring is
        // ours. A second install in the same process is fine to ignore.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(options.user_agent.clone())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|error| RegistryError::Client(innermost(&error)))?;
        // Whatever a registry or proxy echoes back (an error body quoting
        // the request's `Authorization: Basic …`) is redacted when printed.
        for found in credentials.values() {
            use secrecy::ExposeSecret as _;
            slipway_core::secret::register_basic(&found.username, found.password.expose_secret());
        }
        Ok(Self {
            http,
            options,
            credentials,
            schemes: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The credentials for `request`: those given for its repository
    /// (`host/team/app`) or a parent of it (`host/team`), most specific
    /// first, else those of its registry host.
    fn credentials_for(&self, request: &Request) -> Option<&Credentials> {
        let repository = request
            .scopes
            .first()
            .and_then(|scope| scope.strip_prefix("repository:"))
            .and_then(|rest| rest.rsplit_once(':'))
            .map(|(name, _)| name);
        let mut key = match repository {
            Some(path) => format!("{}/{path}", request.registry),
            None => request.registry.clone(),
        };
        loop {
            if let Some(found) = self.credentials.get(&key) {
                return Some(found);
            }
            match key.rsplit_once('/') {
                Some((parent, _)) => key = parent.to_owned(),
                None => return None,
            }
        }
    }

    pub(super) fn is_plain_http(&self, registry: &str) -> bool {
        self.options.insecure || is_loopback(registry)
    }

    fn base_url(&self, registry: &str) -> String {
        let scheme = if self.is_plain_http(registry) {
            "http"
        } else {
            "https"
        };
        // Same as docker: Docker Hub's API lives on another host.
        let host = if registry == slipway_core::image_ref::DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            registry
        };
        format!("{scheme}://{host}")
    }

    fn url(&self, request: &Request) -> String {
        if request.path.starts_with("http://") || request.path.starts_with("https://") {
            request.path.clone()
        } else {
            format!("{}{}", self.base_url(&request.registry), request.path)
        }
    }

    /// Whether `request` goes to the registry it is for: a relative path
    /// does; an absolute URL a registry handed out (a `Link` to the next
    /// page, an upload `Location`) only if its scheme, host and port are the
    /// registry's own.
    fn is_same_origin(&self, request: &Request) -> bool {
        if !(request.path.starts_with("http://") || request.path.starts_with("https://")) {
            return true;
        }
        let origin = |url: &str| {
            reqwest::Url::parse(url).ok().map(|url| {
                (
                    url.scheme().to_owned(),
                    url.host_str().map(str::to_owned),
                    url.port_or_known_default(),
                )
            })
        };
        match (
            origin(&request.path),
            origin(&self.base_url(&request.registry)),
        ) {
            (Some(target), Some(registry)) => target == registry,
            _ => false,
        }
    }

    /// The `Authorization` header value for `request`, if any is known.
    /// Credentials only ever go to the registry they are for: a `Link` or
    /// `Location` that points at another origin gets none (as docker and
    /// reqwest's redirects drop them), whatever that origin answers.
    async fn authorization(&self, request: &Request) -> Result<Option<String>, RegistryError> {
        if !self.is_same_origin(request) {
            tracing::debug!(path = %request.shown_path(), "another origin than the registry's; no credentials");
            return Ok(None);
        }
        let scheme = self.schemes.lock().await.get(&request.registry).cloned();
        let credentials = self.credentials_for(request);
        match scheme {
            None => Ok(None),
            Some(Scheme::Basic) => Ok(credentials.map(basic_header)),
            Some(Scheme::Bearer { realm, service }) => {
                let key = format!("{} {}", request.registry, request.scopes.join(" "));
                if let Some(token) = self.tokens.lock().await.get(&key) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = fetch_token(
                    &self.http,
                    &self.options,
                    &TokenRequest {
                        registry: &request.registry,
                        realm: &realm,
                        service: service.as_deref(),
                        scopes: &request.scopes,
                        method: request.method.as_str(),
                    },
                    credentials,
                )
                .await?;
                self.tokens.lock().await.insert(key, token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Sends `request`, answering one auth challenge and retrying 429, 5xx
    /// and transport errors. The answer's status is the caller's to judge.
    pub(super) async fn send(&self, request: &Request) -> Result<reqwest::Response, RegistryError> {
        let started = Instant::now();
        let mut attempt = 0;
        let mut challenged = false;
        loop {
            attempt += 1;
            let pairs: Vec<(&str, &str)> = request
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let url = with_query(&self.url(request), &pairs)
                .map_err(|_| request.incomplete("a valid URL"))?;
            let mut builder = self.http.request(request.method.clone(), url);
            for (name, value) in &request.headers {
                builder = builder.header(name.clone(), value.clone());
            }
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            if let Some(value) = self.authorization(request).await? {
                builder = builder.header(reqwest::header::AUTHORIZATION, value);
            }
            if !request.streaming {
                builder = builder.timeout(self.request_timeout());
            }
            tracing::trace!(method = %request.method, path = %request.shown_path(), attempt, "request");
            let backoff = self.backoff(attempt);
            let may_retry = |wait: Duration| {
                attempt < self.options.max_attempts
                    && started.elapsed().saturating_add(wait) <= self.options.retry_budget
            };
            match builder.send().await {
                Err(error) if error.is_builder() || !may_retry(backoff) => {
                    return Err(request.unreachable(attempt, &error));
                }
                Err(error) => {
                    tracing::debug!(reason = %innermost(&error), attempt, ?backoff, "transport error; retrying");
                    tokio::time::sleep(backoff).await;
                }
                Ok(response)
                    if response.status() == reqwest::StatusCode::UNAUTHORIZED && !challenged =>
                {
                    challenged = true;
                    if !self.learn_challenge(request, &response).await {
                        return Ok(response);
                    }
                    // The answer to a challenge is not a retry.
                    attempt -= 1;
                }
                Ok(response) if is_retryable(response.status()) => {
                    let wait = retry_wait(&response, backoff);
                    if !may_retry(wait) {
                        if let Some(error) =
                            self.retry_after_beyond_budget(request, &response, started)
                        {
                            return Err(error);
                        }
                        return Ok(response);
                    }
                    tracing::debug!(
                        status = response.status().as_u16(),
                        attempt,
                        ?wait,
                        "retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Ok(response) => return Ok(response),
            }
        }
    }

    /// Records the scheme a 401 asks for; `false` when there is nothing to
    /// try (no challenge, or `Basic` without credentials).
    async fn learn_challenge(&self, request: &Request, response: &reqwest::Response) -> bool {
        let Some(challenge) = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(scheme) = parse_challenge(challenge) else {
            return false;
        };
        if matches!(scheme, Scheme::Basic) && self.credentials_for(request).is_none() {
            return false;
        }
        tracing::debug!(registry = %request.registry, ?scheme, "auth challenge");
        self.schemes
            .lock()
            .await
            .insert(request.registry.clone(), scheme);
        // A 401 despite a cached token means the token expired: fetch anew.
        let prefix = format!("{} ", request.registry);
        self.tokens
            .lock()
            .await
            .retain(|key, _| !key.starts_with(&prefix));
        true
    }

    /// Checks that `response` is a success, else turns it into an error
    /// carrying the registry's own message.
    pub(super) async fn expect_success(
        &self,
        request: &Request,
        response: reqwest::Response,
    ) -> Result<reqwest::Response, RegistryError> {
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let insufficient_scope = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(crate::token::is_insufficient_scope);
        let message = error_message(response).await;
        let credentials = self.credentials_for(request);
        if let Some(credentials) = credentials
            && (status == 403 || (status == 401 && insufficient_scope))
        {
            // The credentials were accepted; the rights were not.
            let (repository, action) =
                crate::token::denied_access(&request.scopes, request.method.as_str());
            return Err(RegistryError::Denied {
                who: crate::token::who(credentials),
                action,
                repository,
                registry: request.registry.clone(),
                answer: format!(
                    "the registry answered {status} to `{} {}`{message}",
                    request.method,
                    request.shown_path()
                ),
            });
        }
        if status == 401 || status == 403 {
            return Err(unauthorized_by(
                &request.registry,
                request.method.as_str(),
                &request.shown_path(),
                status,
                credentials,
                message,
            ));
        }
        Err(RegistryError::Status {
            registry: request.registry.clone(),
            method: request.method.to_string(),
            path: request.shown_path(),
            status,
            message,
        })
    }

    /// Streams blob `descriptor` from `from` into `to` (GET piped into a
    /// monolithic upload); retried whole on transport errors and 5xx.
    pub(super) async fn stream_blob(
        &self,
        from: &Repository,
        to: &Repository,
        descriptor: &Descriptor,
        progress: super::BlobProgress,
    ) -> Result<(), RegistryError> {
        use futures_util::StreamExt as _;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let get = Request::new(Method::GET, from, &format!("blobs/{}", descriptor.digest))
                .streaming();
            let source = self.send(&get).await?;
            let source = self.expect_success(&get, source).await?;
            let open = Request::new(Method::POST, to, "blobs/uploads/")
                .push()
                .header(CONTENT_LENGTH, "0");
            let opened = self.send(&open).await?;
            let opened = self.expect_success(&open, opened).await?;
            let location = super::location_of(&opened)
                .ok_or_else(|| open.incomplete("a `Location` header"))?;
            let put = Request::at(Method::PUT, to, location).push();
            let digest = descriptor.digest.to_string();
            let url = with_query(&self.url(&put), &[("digest", &digest)])
                .map_err(|_| put.incomplete("a valid upload `Location`"))?;
            let mut builder = self
                .http
                .put(url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, descriptor.size.to_string())
                .body(reqwest::Body::wrap_stream({
                    // Each chunk is counted as it is handed to the upload.
                    let progress = progress.clone();
                    let mut sent = 0u64;
                    source.bytes_stream().inspect(move |chunk| {
                        if let Ok(chunk) = chunk {
                            sent = sent.saturating_add(chunk.len() as u64);
                            progress(sent);
                        }
                    })
                }));
            if let Some(value) = self.authorization(&put).await? {
                builder = builder.header(reqwest::header::AUTHORIZATION, value);
            }
            let backoff = self.backoff(attempt);
            let may_retry = |wait: Duration| {
                attempt < self.options.max_attempts
                    && started.elapsed().saturating_add(wait) <= self.options.retry_budget
            };
            let wait = match builder.send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response)
                    if is_retryable(response.status())
                        && may_retry(retry_wait(&response, backoff)) =>
                {
                    tracing::debug!(
                        status = response.status().as_u16(),
                        attempt,
                        "blob upload failed; retrying"
                    );
                    retry_wait(&response, backoff)
                }
                Ok(response) => {
                    if is_retryable(response.status())
                        && let Some(error) =
                            self.retry_after_beyond_budget(&put, &response, started)
                    {
                        return Err(error);
                    }
                    return self.expect_success(&put, response).await.map(|_| ());
                }
                Err(error) if !may_retry(backoff) => return Err(put.unreachable(attempt, &error)),
                Err(error) => {
                    tracing::debug!(reason = %innermost(&error), attempt, "blob upload failed; retrying");
                    backoff
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The error saying so when a registry's `Retry-After` is why retrying
    /// stops: it asked for more time than the retry budget has left.
    fn retry_after_beyond_budget(
        &self,
        request: &Request,
        response: &reqwest::Response,
        started: Instant,
    ) -> Option<RegistryError> {
        let asked = retry_after(response)?;
        let left = self.options.retry_budget.saturating_sub(started.elapsed());
        (asked > left).then(|| RegistryError::RetryAfterBeyondBudget {
            registry: request.registry.clone(),
            method: request.method.to_string(),
            path: request.shown_path(),
            status: response.status().as_u16(),
            wait: format!(
                "{}, beyond the {} left of the {} retry budget",
                slipway_core::duration::format(asked),
                slipway_core::progress::format_duration(left),
                slipway_core::duration::format(self.options.retry_budget)
            ),
        })
    }

    /// The wait before attempt `attempt + 1`: exponential, with jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        backoff(self.options.first_backoff, attempt, fastrand::f64())
    }

    /// The most one request may take, answer included (not a streamed blob).
    fn request_timeout(&self) -> Duration {
        // Not clamped to the retry budget: a caller with a tighter deadline
        // of its own (image-stale-check's `--timeout`) reports it itself.
        self.options.request_timeout.max(Duration::from_millis(1))
    }
}

/// Whether an answer with `status` is worth another attempt: 429 (too many
/// requests) and 5xx (the registry or a proxy in front of it failed).
pub(crate) fn is_retryable(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// How long to wait after a retryable `response`: its `Retry-After`, in
/// full, when it has one (the caller retries only when that fits the retry
/// budget, else stops at once and says so), else `backoff`.
fn retry_wait(response: &reqwest::Response, backoff: Duration) -> Duration {
    retry_after(response).unwrap_or(backoff)
}

/// The response's `Retry-After`, if it has a valid one.
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
}

/// The wait a `Retry-After` value asks for, at `now`: delta-seconds or an
/// HTTP date (RFC 9110 §10.2.3); a date in the past means no wait.
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `first · 2^(attempt-1)`, capped at [`MAX_BACKOFF`], then scaled into its
/// upper half by `jitter` (0 to 1): clients that failed together do not
/// retry together, and no wait is shorter than half the nominal one.
pub(crate) fn backoff(first: Duration, attempt: u32, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    let nominal = first.saturating_mul(factor).min(MAX_BACKOFF);
    nominal.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// `url` with `pairs` appended to its query (kept, if it has one).
pub(crate) fn with_query(url: &str, pairs: &[(&str, &str)]) -> Result<reqwest::Url, ()> {
    let mut url = reqwest::Url::parse(url).map_err(|_| ())?;
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    Ok(url)
}

pub(crate) fn basic_header(credentials: &Credentials) -> String {
    use base64::Engine as _;
    let raw = format!(
        "{}:{}",
        credentials.username,
        credentials.password.expose_secret()
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The error for a 401 (or a 403 without credentials) to `method path`
/// of `registry`: names the user and where the credentials came from.
pub(crate) fn unauthorized_by(
    registry: &str,
    method: &str,
    path: &str,
    status: u16,
    credentials: Option<&Credentials>,
    message: String,
) -> RegistryError {
    RegistryError::Unauthorized {
        registry: registry.to_owned(),
        method: method.to_owned(),
        path: path.to_owned(),
        status,
        credentials: match credentials {
            Some(c) if c.username == crate::token::IDENTITY_TOKEN_USER => {
                format!("the identity token from {}", c.source)
            }
            Some(c) => format!("the credentials of `{}` from {}", c.username, c.source),
            None => "anonymous access".to_owned(),
        },
        message,
    }
}

/// `: CODE message` from the registry's `{"errors":[{"code","message"}]}`, or empty.
pub(crate) async fn error_message(response: reqwest::Response) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(bytes) = response.bytes().await else {
        return String::new();
    };
    match serde_json::from_slice::<Errors>(&bytes) {
        Ok(errors) if !errors.errors.is_empty() => {
            let parts: Vec<String> = errors
                .errors
                .iter()
                .map(|e| format!("{} {}", e.code, e.message).trim().to_owned())
                .collect();
            format!(": {}", parts.join("; "))
        }
        _ => String::new(),
    }
}

/// Whether `registry` (`host[:port]`) is a loopback host.
pub(super) fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.rsplit_once(':').map_or(registry, |(host, _)| host)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The innermost cause of a reqwest error: "connection refused", not "error sending request".
pub(crate) fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        check_loopback("127.0.0.1:5000", true);
        check_loopback("127.3.4.5", true);
        check_loopback("localhost:5000", true);
        check_loopback("[::1]:5000", true);
        check_loopback("ghcr.io", false);
        check_loopback("10.0.0.1:5000", false);
        check_loopback("localhost.example.com", false);
    }

    #[track_caller]
    fn check_backoff(attempt: u32, jitter: f64, expected_ms: u64) {
        let got = backoff(Duration::from_millis(200), attempt, jitter);
        assert_eq!(
            got,
            Duration::from_millis(expected_ms),
            "attempt {attempt}, jitter {jitter}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_five_seconds_with_jitter_in_the_upper_half() {
        check_backoff(1, 1.0, 200);
        check_backoff(1, 0.0, 100);
        check_backoff(1, 0.5, 150);
        check_backoff(2, 1.0, 400);
        check_backoff(3, 1.0, 800);
        check_backoff(5, 1.0, 3200);
        check_backoff(6, 1.0, 5000);
        check_backoff(6, 0.0, 2500);
        check_backoff(40, 1.0, 5000);
        // Out-of-range jitter is clamped, never a longer or negative wait.
        check_backoff(1, 7.0, 200);
        check_backoff(1, -1.0, 100);
    }

    #[track_caller]
    fn check_retry_after(value: &str, expected: Option<u64>) {
        // Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after(value, now),
            expected.map(Duration::from_secs),
            "`{value}`"
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        check_retry_after("3", Some(3));
        check_retry_after(" 0 ", Some(0));
        check_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", Some(10));
        check_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", Some(0));
        // A date already past: retry at once.
        check_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", Some(0));
        check_retry_after("-1", None);
        check_retry_after("soon", None);
        check_retry_after("", None);
    }

    #[track_caller]
    fn check_loopback(registry: &str, expected: bool) {
        assert_eq!(is_loopback(registry), expected, "{registry}");
    }
}
