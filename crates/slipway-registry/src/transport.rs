//! HTTP under the registry client: URLs (plain HTTP for loopback registries
//! and those the options name), one HTTP client per registry (its own TLS
//! files), the `Basic`/`Bearer` challenge dance with a token cache, and
//! retries by the policy of [`crate::retry`] on 429, 5xx and dropped
//! connections, honouring `Retry-After` up to a cap; a TLS failure is
//! reported as one, naming the flags that fix it, and never retried.
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
use crate::options::innermost;
use crate::retry::{backoff, is_retryable, retry_after, retry_wait};
use crate::token::{Scheme, TokenRequest, fetch_token, parse_challenge};
use slipway_core::image_ref::Repository;

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
        match tls_failure(error) {
            Some(TlsFailure::NotTls) => {
                return RegistryError::NotTls {
                    registry: self.registry.clone(),
                    method: self.method.to_string(),
                    path: self.shown_path(),
                };
            }
            Some(TlsFailure::Refused(alert)) => {
                return RegistryError::TlsRefused {
                    hint: format!(
                        "if it requires a client certificate, put `client.cert` and `client.key` in `/etc/docker/certs.d/{}/` (or in a --certs-dir DIR)",
                        self.registry
                    ),
                    registry: self.registry.clone(),
                    method: self.method.to_string(),
                    path: self.shown_path(),
                    alert,
                };
            }
            Some(TlsFailure::Other(reason, problem)) => {
                return RegistryError::Tls {
                    hint: problem.hint(&self.registry),
                    registry: self.registry.clone(),
                    method: self.method.to_string(),
                    path: self.shown_path(),
                    reason,
                };
            }
            None => {}
        }
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
    /// One HTTP client per registry: each has its own TLS files (certs.d),
    /// with the client certificate file it presents, if any.
    clients: std::sync::Mutex<HashMap<String, (reqwest::Client, Option<std::path::PathBuf>)>>,
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
        // Whatever a registry or proxy echoes back (an error body quoting
        // the request's `Authorization: Basic …`) is redacted when printed.
        for found in credentials.values() {
            use secrecy::ExposeSecret as _;
            slipway_core::secret::register_basic(&found.username, found.password.expose_secret());
        }
        options.warn_misplaced_certs();
        Ok(Self {
            clients: std::sync::Mutex::new(HashMap::new()),
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
        self.options.is_plain_http(registry)
    }

    /// The HTTP client for `registry`, built on first use (its TLS files
    /// read then) and kept: one connection pool per registry.
    pub(super) fn http(&self, registry: &str) -> Result<reqwest::Client, RegistryError> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((client, _)) = clients.get(registry) {
            return Ok(client.clone());
        }
        let (client, certificate) = self.options.http_client(registry)?;
        clients.insert(registry.to_owned(), (client.clone(), certificate));
        Ok(client)
    }

    /// `request.unreachable(…)`, told whether a client certificate was
    /// presented: a handshake refused despite one is about that one.
    fn unreachable(
        &self,
        request: &Request,
        attempts: u32,
        error: &reqwest::Error,
    ) -> RegistryError {
        let failure = tls_failure(error);
        let mut error = request.unreachable(attempts, error);
        // Where the user keeps TLS files, if not docker's defaults: the
        // first --certs-dir.
        let certs_dir = (self.options.certs_dirs != crate::options::default_certs_dirs())
            .then(|| self.options.certs_dirs.first())
            .flatten();
        match &mut error {
            RegistryError::Tls { registry, hint, .. } => {
                if let Some(TlsFailure::Other(_, problem)) = failure {
                    *hint = problem.hint_in(registry, certs_dir.map(|d| d.as_path()));
                }
            }
            RegistryError::TlsRefused { registry, hint, .. } => {
                let clients = self
                    .clients
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some((_, Some(certificate))) = clients.get(registry.as_str()) {
                    *hint = format!(
                        "it refused the client certificate `{}`: use one its CA signed and within its validity period, or remove it if the registry needs none",
                        certificate.display()
                    );
                } else if let Some(dir) = certs_dir {
                    *hint = format!(
                        "if it requires a client certificate, put `client.cert` and `client.key` in `{}`",
                        dir.join(registry.as_str()).display()
                    );
                }
            }
            _ => {}
        }
        error
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
                    &self.http(&request.registry)?,
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
            let mut builder = self
                .http(&request.registry)?
                .request(request.method.clone(), url);
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
                // A TLS failure is the same on every attempt.
                Err(error)
                    if error.is_builder()
                        || tls_failure(&error).is_some()
                        || !may_retry(backoff) =>
                {
                    return Err(self.unreachable(request, attempt, &error));
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
        // A TLS port answers plain HTTP with a bare 400 ("Client sent an
        // HTTP request to an HTTPS server"): say which setting sent it.
        let message = if status == 400
            && message.is_empty()
            && self.is_plain_http(&request.registry)
        {
            if self.options.is_named_plain_http(&request.registry) {
                format!(
                    " (spoken to in plain HTTP, as --plain-http or --plain-http-registry asked: if `{}` serves HTTPS, leave it out of them)",
                    request.registry
                )
            } else {
                format!(
                    " (spoken to in plain HTTP, as every loopback registry is by default: if `{0}` serves HTTPS, give it a certs.d directory, `/etc/docker/certs.d/{0}/` or `<--certs-dir DIR>/{0}/`, holding its CA as `ca.crt`)",
                    request.registry
                )
            }
        } else {
            message
        };
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
                .http(&put.registry)?
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
                Err(error) if tls_failure(&error).is_some() || !may_retry(backoff) => {
                    return Err(self.unreachable(&put, attempt, &error));
                }
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

/// Why a TLS handshake failed.
pub(crate) enum TlsFailure {
    /// The server answered in plain HTTP.
    NotTls,
    /// The server ended the handshake with an alert (no or a refused
    /// client certificate, no common protocol).
    Refused(String),
    /// Anything else TLS said (an untrusted certificate, a wrong name).
    Other(String, CertProblem),
}

/// What is wrong with a certificate that failed verification, for the fix
/// an error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertProblem {
    /// Not issued for the name the registry was reached by.
    Name,
    /// Expired, or not valid yet.
    Validity,
    /// Anything else: an unknown issuer, mostly, which trusting a CA fixes.
    Trust,
}

impl CertProblem {
    fn of(error: &rustls::Error) -> Self {
        use rustls::CertificateError as E;
        match error {
            rustls::Error::InvalidCertificate(
                E::NotValidForName | E::NotValidForNameContext { .. },
            ) => CertProblem::Name,
            rustls::Error::InvalidCertificate(
                E::Expired
                | E::ExpiredContext { .. }
                | E::NotValidYet
                | E::NotValidYetContext { .. },
            ) => CertProblem::Validity,
            _ => CertProblem::Trust,
        }
    }

    /// What fixes it, for `registry` (`host[:port]`).
    pub(crate) fn hint(self, registry: &str) -> String {
        self.hint_in(registry, None)
    }

    /// [`Self::hint`], naming `certs_dir` (a `--certs-dir`) as where a CA
    /// goes, rather than docker's directory.
    pub(crate) fn hint_in(self, registry: &str, certs_dir: Option<&std::path::Path>) -> String {
        if let (CertProblem::Trust, Some(dir)) = (self, certs_dir) {
            return format!(
                "trust its CA with --ca-cert FILE or a certs.d directory (`{}`), or, if it serves plain HTTP, pass --plain-http-registry {registry}",
                dir.join(registry).join("ca.crt").display()
            );
        }
        match self {
            CertProblem::Name => format!(
                "its certificate is not issued for the name `{registry}` was reached by: write the registry as its certificate names it, or have the certificate reissued (trusting a CA does not help)"
            ),
            CertProblem::Validity => "its certificate is outside its validity period: have it renewed, or check this machine's clock (trusting a CA does not help)".to_owned(),
            CertProblem::Trust => format!(
                "trust its CA with --ca-cert FILE or a certs.d directory (`/etc/docker/certs.d/{registry}/ca.crt`, or --certs-dir DIR), or, if it serves plain HTTP, pass --plain-http-registry {registry}"
            ),
        }
    }
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsFailure::NotTls => f.write_str("it answers in plain HTTP, not TLS"),
            TlsFailure::Refused(alert) => write!(f, "it refused the handshake (alert `{alert}`)"),
            TlsFailure::Other(reason, _) => f.write_str(reason),
        }
    }
}

/// The TLS failure behind `error`, if it is one.
pub(crate) fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<TlsFailure> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(match tls {
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
                    TlsFailure::NotTls
                }
                rustls::Error::AlertReceived(alert) => TlsFailure::Refused(format!("{alert:?}")),
                other => TlsFailure::Other(other.to_string(), CertProblem::of(other)),
            });
        }
        // An `io::Error` hides the error it wraps from `source()` (it
        // answers that error's source): step into it instead.
        current = match error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
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

    /// Trusting a CA fixes an unknown issuer, not a certificate for another
    /// name or out of its validity period: each error names its own fix.
    #[test]
    fn each_certificate_failure_names_its_own_fix() {
        use rustls::CertificateError as E;
        let check = |error: rustls::Error, expected: &str| {
            let problem = CertProblem::of(&error);
            let hint = problem.hint("registry.lan:5000");
            assert!(hint.starts_with(expected), "{error:?}: {hint}");
        };
        check(
            rustls::Error::InvalidCertificate(E::UnknownIssuer),
            "trust its CA with --ca-cert FILE",
        );
        check(
            rustls::Error::InvalidCertificate(E::BadSignature),
            "trust its CA with --ca-cert FILE",
        );
        check(
            rustls::Error::InvalidCertificate(E::NotValidForName),
            "its certificate is not issued for the name `registry.lan:5000` was reached by",
        );
        check(
            rustls::Error::InvalidCertificate(E::Expired),
            "its certificate is outside its validity period",
        );
        check(
            rustls::Error::InvalidCertificate(E::NotValidYet),
            "its certificate is outside its validity period",
        );
    }

    #[track_caller]
    fn check_loopback(registry: &str, expected: bool) {
        assert_eq!(is_loopback(registry), expected, "{registry}");
    }
}
