//! The registry client: the OCI distribution API calls Slipway's tools make,
//! never a layer pull for what a manifest or config blob can answer.
//!
//! One [`RegistryClient`] talks to any number of registries, each with the
//! credentials it was given (see [`crate::auth`]): it answers `Basic` and
//! `Bearer` challenges (token per host and scope, cached), retries 429, 5xx
//! and dropped connections with exponential backoff and jitter, honouring
//! `Retry-After` (bounded in count and in total time), gives up on a
//! request that gets no answer within [`RegistryOptions::request_timeout`],
//! and speaks plain HTTP to loopback registries (as docker does) and to
//! those [`RegistryOptions`] names (`--plain-http`, `--plain-http-registry`),
//! TLS with the CA certificates of `--ca-cert` and docker's certs.d
//! directories to the others.
//!
//! Manifests are moved as raw bytes with their media type and never
//! re-serialised, so a digest never changes and an index stays an index.

pub mod auth;
mod manifest;
mod options;
pub mod referrers;
mod retry;
pub(crate) mod token;
mod transport;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};

pub use manifest::{
    Content, DOCKER_LIST, DOCKER_MANIFEST, Descriptor, MANIFEST_MEDIA_TYPES, Manifest,
    ManifestError, OCI_INDEX, OCI_MANIFEST, Platform, config_labels, media_type_of,
};
pub use options::{CaCert, RegistryArgs, RegistryOptions, default_certs_dirs};
pub use referrers::{Referrer, ReferrersSource};

use crate::auth::Credentials;
use slipway_core::image_ref::{Digest, ImageRef, Repository};
use transport::{Request, Transport};

/// Why a client for a set of registries could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    /// The credentials of a registry could not be read.
    #[error("cannot find credentials for `{registry}`")]
    Credentials {
        /// The registry host whose credentials were looked up.
        registry: String,
        /// Why the lookup failed.
        #[source]
        source: crate::auth::AuthError,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the registry client")]
    Client(#[source] Box<RegistryError>),
    /// A registry's TLS files (certs.d) cannot be used.
    #[error("cannot set up TLS for `{registry}`")]
    Tls {
        /// The registry host.
        registry: String,
        /// What is wrong.
        #[source]
        source: Box<RegistryError>,
    },
}

impl slipway_core::cli::ExitStatus for ClientSetupError {
    fn exit_code(&self) -> Option<u8> {
        match self {
            // The credentials' own error decides: a refused short password
            // is bad input (2), an unreadable docker config a failure (3).
            ClientSetupError::Credentials { .. } => None,
            // A bad certs.d file is bad input (2).
            ClientSetupError::Tls { source, .. } => {
                slipway_core::cli::ExitStatus::exit_code(source.as_ref())
            }
            ClientSetupError::Client(_) => Some(slipway_core::cli::exit::FAILURE),
        }
    }
}

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// No answer (connection refused, reset, timed out), after retries.
    #[error(
        "cannot reach `{registry}` for `{method} {path}` after {attempts} attempt(s): {reason}"
    )]
    Unreachable {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: String,
        /// The URL path.
        path: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        reason: String,
    },
    /// The registry refused the credentials, or there were none.
    #[error(
        "`{registry}` refused {credentials} for `{method} {path}` ({status}){message}; log in with `docker login {registry}`, or pass --username and --password-stdin"
    )]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: String,
        /// The URL path.
        path: String,
        /// 401 or 403.
        status: u16,
        /// "anonymous access" or "the credentials of `user`".
        credentials: String,
        /// The registry's own message, `: …`, or empty.
        message: String,
    },
    /// The registry's TLS certificate cannot be verified.
    #[error(
        "cannot verify the TLS certificate of `{registry}` for `{method} {path}`: {reason}; {hint}"
    )]
    Tls {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: String,
        /// The URL path.
        path: String,
        /// What TLS said, e.g. "invalid peer certificate: UnknownIssuer".
        reason: String,
        /// What fixes it: trusting a CA helps an unknown issuer, not a
        /// certificate for another name or out of its validity period.
        hint: String,
    },
    /// The registry ended the TLS handshake with an alert.
    #[error(
        "`{registry}` refused the TLS handshake for `{method} {path}` (alert `{alert}`): {hint}"
    )]
    TlsRefused {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: String,
        /// The URL path.
        path: String,
        /// The TLS alert, e.g. `BadCertificate`.
        alert: String,
        /// What to do: add a client certificate, or, when one was
        /// presented, use one the registry accepts.
        hint: String,
    },
    /// The registry answered a TLS handshake in plain HTTP.
    #[error(
        "`{registry}` speaks plain HTTP, not TLS (`{method} {path}`): pass --plain-http-registry {registry} (or --plain-http for every registry)"
    )]
    NotTls {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: String,
        /// The URL path.
        path: String,
    },
    /// A file of a registry's certs.d directory that cannot be used.
    #[error("invalid certs.d file `{path}`: {reason}")]
    CertsFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A registry names a plain-HTTP token realm that the user did not name
    /// for plain HTTP, off loopback or of a registry reached over HTTPS: its
    /// credentials would go in clear text to the network or to whatever
    /// listens on that loopback port.
    #[error(
        "`{registry}` names a plain-HTTP token server `{realm}`: its credentials are not sent there in clear text (the registry is reached over HTTPS, or the token server is off this machine); the registry's token realm should be `https://` (or, if clear text is meant, pass --plain-http-registry with the token server's HOST[:PORT])"
    )]
    PlainHttpRealm {
        /// The registry host.
        registry: String,
        /// The token endpoint, without its query.
        realm: String,
    },
    /// The TLS handshake with a registry's token server failed (never
    /// retried: it fails the same way every time).
    #[error(
        "cannot speak TLS with the token server `{realm}` of `{registry}`: {reason}; it is reached with the registry's TLS settings: trust its CA with --ca-cert FILE or in the registry's certs.d directory (`/etc/docker/certs.d/{registry}/ca.crt`, or --certs-dir DIR)"
    )]
    TokenServerTls {
        /// The registry host.
        registry: String,
        /// The token endpoint (the challenge's realm), without its query.
        realm: String,
        /// What TLS said.
        reason: String,
    },
    /// A token server failed (5xx, 429) and kept failing through the retries:
    /// the auth service is down, not the credentials wrong.
    #[error(
        "the token server of `{registry}` (`{realm}`) answered {status} after {attempts} attempt(s){message}; the registry's auth service is failing, not the credentials: try again later"
    )]
    TokenServer {
        /// The registry host.
        registry: String,
        /// The token endpoint (the challenge's realm), without its query.
        realm: String,
        /// The last status.
        status: u16,
        /// How many attempts were made.
        attempts: u32,
        /// The server's own message, `: …`, or empty.
        message: String,
    },
    /// The credentials were accepted but do not allow the access asked for
    /// (a 403, or a token without the scope: `401 insufficient_scope`).
    #[error(
        "{who} may not {action} `{repository}` on `{registry}`: {answer}; ask for {action} access to `{repository}`, or use credentials that have it"
    )]
    Denied {
        /// "`user` (from `source`)".
        who: String,
        /// `pull` or `push`.
        action: &'static str,
        /// The repository path.
        repository: String,
        /// The registry host.
        registry: String,
        /// Who answered what to which request, with the server's own
        /// message: "the registry answered 401 to `PUT /v2/…`: …".
        answer: String,
    },
    /// An unexpected answer.
    #[error("`{registry}` answered {status} to `{method} {path}`{message}")]
    Status {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: String,
        /// The URL path.
        path: String,
        /// The status code.
        status: u16,
        /// The registry's own message, `: …`, or empty.
        message: String,
    },
    /// A 429 or 5xx whose `Retry-After` asks for longer than the retry
    /// budget has left: no retry is made, at once.
    #[error(
        "`{registry}` answered {status} to `{method} {path}` and asked to retry after {wait}: not retrying; run again later"
    )]
    RetryAfterBeyondBudget {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: String,
        /// The URL path.
        path: String,
        /// 429 or 5xx.
        status: u16,
        /// The wait asked for and the budget it overruns (`2m, beyond the
        /// 60.0s left of the 1m retry budget`).
        wait: String,
    },
    /// The manifest or tag does not exist.
    #[error("`{image}` not found")]
    NotFound {
        /// The reference looked up.
        image: String,
    },
    /// An answer lacks what the API promises.
    #[error("`{registry}` answered `{method} {path}` without {what}")]
    Incomplete {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: String,
        /// The URL path.
        path: String,
        /// What was missing, e.g. "a `Docker-Content-Digest` header".
        what: String,
    },
    /// A referrers fallback tag that does not hold a referrers index.
    #[error("`{tag}` is not an image index of referrers: {reason}")]
    Referrers {
        /// The fallback tag, `registry/repo:sha256-<hex>`.
        tag: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A manifest that cannot be read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// An image config blob that is not JSON.
    #[error("config blob `{digest}` of `{image}` is not valid JSON: {reason}")]
    Config {
        /// The image.
        image: String,
        /// The blob.
        digest: Digest,
        /// The JSON error.
        reason: String,
    },
}

impl slipway_core::cli::ExitStatus for RegistryError {
    fn exit_code(&self) -> Option<u8> {
        match self {
            // A file the user put in place (or pointed at) is bad input.
            RegistryError::CertsFile { .. } => Some(slipway_core::cli::exit::USAGE),
            _ => Some(slipway_core::cli::exit::FAILURE),
        }
    }
}

impl RegistryError {
    /// Whether the error is a 404 for a manifest or tag.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
    }
}

/// What happened to a blob copied into another repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobTransfer {
    /// The destination had it already (HEAD answered 200).
    Skipped,
    /// Mounted from the source repository: no bytes moved.
    Mounted,
    /// Streamed from source to destination, this many bytes.
    Copied(u64),
}

/// Told the bytes of a blob streamed so far, after each chunk (from 0
/// again when a failed copy is retried whole); shared with the upload body,
/// which may outlive the call.
pub type BlobProgress = Arc<dyn Fn(u64) + Send + Sync>;

/// The labels of one image of a (possibly multi-platform) reference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlatformLabels {
    /// The platform, from the index entry; `None` for a single image.
    pub platform: Option<Platform>,
    /// The image manifest's digest.
    pub digest: Digest,
    /// `config.Labels` of its config blob.
    pub labels: BTreeMap<String, String>,
}

/// A registry client for any number of registries; cheap to clone (shared
/// connection pool and token cache).
#[derive(Clone)]
pub struct RegistryClient {
    transport: Arc<Transport>,
}

impl RegistryClient {
    /// A client holding the credentials [`crate::auth::resolve`] finds for
    /// each of `registries` (hosts as written in image references; `explicit`
    /// ones, from flags, win), each password masked under GitHub Actions
    /// before its first use. This is how every tool builds its client.
    pub fn for_registries<'a>(
        registries: impl IntoIterator<Item = &'a str>,
        explicit: Option<&'a Credentials>,
        options: RegistryOptions,
        output: &slipway_core::output::Output,
    ) -> Result<Self, ClientSetupError> {
        Self::for_targets(
            registries.into_iter().map(|registry| (registry, explicit)),
            options,
            output,
        )
    }

    /// A client for `targets`, each a registry host or a repository on it
    /// (`host/team/app`, whose most specific namespaced entry of a
    /// containers auth file wins) with its own explicit credentials, if
    /// any: a promote between two registries (or two repositories) that
    /// need different users. A request uses the credentials of the most
    /// specific target that covers its repository. The first entry for a
    /// target wins.
    pub fn for_targets<'a>(
        targets: impl IntoIterator<Item = (&'a str, Option<&'a Credentials>)>,
        options: RegistryOptions,
        output: &slipway_core::output::Output,
    ) -> Result<Self, ClientSetupError> {
        use secrecy::ExposeSecret as _;
        let env = |name: &str| std::env::var(name).ok();
        let mut credentials = HashMap::new();
        let mut registries_seen: Vec<String> = Vec::new();
        let mut targets_seen: Vec<&str> = Vec::new();
        for (target, explicit) in targets {
            if targets_seen.contains(&target) {
                continue;
            }
            targets_seen.push(target);
            let registry = target.split('/').next().unwrap_or(target);
            if !registries_seen.iter().any(|seen| seen == registry) {
                registries_seen.push(registry.to_owned());
            }
            let (found, source) =
                crate::auth::resolve(target, explicit.cloned(), &env).map_err(|source| {
                    ClientSetupError::Credentials {
                        registry: registry.to_owned(),
                        source,
                    }
                })?;
            tracing::debug!(%target, ?source, "credentials");
            if let Some(found) = found {
                if !found.password.expose_secret().is_empty() {
                    output.mask(&found.password);
                }
                credentials.insert(target.to_owned(), found);
            }
        }
        let client = Self::new(options, credentials)
            .map_err(|error| ClientSetupError::Client(Box::new(error)))?;
        // Each registry's TLS files are read now, before any request, so a
        // bad one stops the tool before it has done anything.
        for registry in registries_seen {
            client
                .transport
                .http(&registry)
                .map_err(|source| ClientSetupError::Tls {
                    registry,
                    source: Box::new(source),
                })?;
        }
        Ok(client)
    }

    /// A client using `credentials` (by registry host, as written in image
    /// references, or by repository, `host/team/app`) and anonymous access
    /// elsewhere.
    pub fn new(
        options: RegistryOptions,
        credentials: HashMap<String, Credentials>,
    ) -> Result<Self, RegistryError> {
        Ok(Self {
            transport: Arc::new(Transport::new(options, credentials)?),
        })
    }

    /// Whether `registry` is spoken to over plain HTTP: loopback hosts
    /// (`localhost`, 127.0.0.0/8, `::1`) always, as docker does; others
    /// as [`RegistryOptions::is_plain_http`] says.
    pub fn is_plain_http(&self, registry: &str) -> bool {
        self.transport.is_plain_http(registry)
    }

    /// The manifest `image` names (by digest when it has one, else by tag,
    /// else `latest`), exactly as stored.
    #[tracing::instrument(skip_all, fields(image = %image))]
    pub async fn fetch_manifest(&self, image: &ImageRef) -> Result<Manifest, RegistryError> {
        let reference = reference_of(image);
        self.fetch_manifest_at(image.repository(), &reference, &image.to_string())
            .await
    }

    /// The manifest of `repository` at `reference` (a tag or digest).
    async fn fetch_manifest_at(
        &self,
        repository: &Repository,
        reference: &str,
        shown: &str,
    ) -> Result<Manifest, RegistryError> {
        let request = Request::new(Method::GET, repository, &format!("manifests/{reference}"))
            .header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "));
        let response = self.transport.send(&request).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                image: shown.to_owned(),
            });
        }
        let response = self.transport.expect_success(&request, response).await?;
        let digest = header_digest(&response)
            .or_else(|| reference.parse::<Digest>().ok())
            .ok_or_else(|| request.incomplete("a `Docker-Content-Digest` header"))?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|error| request.unreachable(1, &error))?
            .to_vec();
        let media_type = media_type_of(content_type.as_deref(), &bytes)
            .ok_or_else(|| request.incomplete("a manifest media type"))?;
        Ok(Manifest {
            media_type,
            bytes,
            digest,
        })
    }

    /// The digest `image` points at (HEAD; no manifest body moves), or
    /// `None` when the tag does not exist.
    #[tracing::instrument(skip_all, fields(image = %image))]
    pub async fn resolve(&self, image: &ImageRef) -> Result<Option<Digest>, RegistryError> {
        let reference = reference_of(image);
        let request = Request::new(
            Method::HEAD,
            image.repository(),
            &format!("manifests/{reference}"),
        )
        .header(ACCEPT, MANIFEST_MEDIA_TYPES.join(", "));
        let response = self.transport.send(&request).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.transport.expect_success(&request, response).await?;
        match header_digest(&response) {
            Some(digest) => Ok(Some(digest)),
            // Some registries omit the header on HEAD; the body tells.
            None => Ok(Some(self.fetch_manifest(image).await?.digest)),
        }
    }

    /// Puts `manifest`'s bytes, unchanged and with its media type, into
    /// `repository` at `reference` (a tag, or its digest). Returns the
    /// digest the registry computed.
    #[tracing::instrument(skip_all, fields(repository = %repository, reference = reference))]
    pub async fn put_manifest(
        &self,
        repository: &Repository,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<Digest, RegistryError> {
        Ok(self.put_referrer(repository, reference, manifest).await?.0)
    }

    /// [`Self::put_manifest`], also saying whether the registry indexed the
    /// manifest's `subject` itself (it answered an `OCI-Subject` header:
    /// it has the referrers API, so no fallback tag is needed).
    #[tracing::instrument(skip_all, fields(repository = %repository, reference = reference))]
    pub async fn put_referrer(
        &self,
        repository: &Repository,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<(Digest, bool), RegistryError> {
        let request = Request::new(Method::PUT, repository, &format!("manifests/{reference}"))
            .push()
            .header(CONTENT_TYPE, manifest.media_type.clone())
            .body(manifest.bytes.clone());
        let response = self.transport.send(&request).await?;
        let response = self.transport.expect_success(&request, response).await?;
        let indexed = response.headers().contains_key("oci-subject");
        Ok((
            header_digest(&response).unwrap_or_else(|| manifest.digest.clone()),
            indexed,
        ))
    }

    /// The referrers of `digest` in `repository`: from the referrers API,
    /// else (404, 405 or 501: no API) from the `sha256-<hex>` fallback tag,
    /// else none.
    #[tracing::instrument(skip_all, fields(repository = %repository, digest = %digest))]
    pub async fn list_referrers(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<(Vec<Referrer>, ReferrersSource), RegistryError> {
        // The API may answer in pages (`Link: <…>; rel="next"`): all are
        // read, a loop or an endless chain is an error, and each page is
        // read to at most 4 MiB, the largest manifest registries accept.
        const MAX_PAGES: usize = 100;
        const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;
        let mut request = Request::new(Method::GET, repository, &format!("referrers/{digest}"))
            .header(ACCEPT, OCI_INDEX.to_owned());
        let response = self.transport.send(&request).await?;
        if !matches!(response.status().as_u16(), 404 | 405 | 501) {
            let mut referrers = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut response = Some(response);
            loop {
                if !seen.insert(request.path.clone()) || seen.len() > MAX_PAGES {
                    return Err(request.incomplete(
                        "a referrers list whose `Link` pages end (the next page was read already, or there were over 100)",
                    ));
                }
                let answer = match response.take() {
                    Some(answer) => answer,
                    None => self.transport.send(&request).await?,
                };
                let mut answer = self.transport.expect_success(&request, answer).await?;
                let next = answer
                    .headers()
                    .get(reqwest::header::LINK)
                    .and_then(|v| v.to_str().ok())
                    .and_then(next_link);
                let mut bytes = Vec::new();
                while let Some(chunk) = answer
                    .chunk()
                    .await
                    .map_err(|error| request.unreachable(1, &error))?
                {
                    if bytes.len() + chunk.len() > MAX_PAGE_BYTES {
                        return Err(
                            request.incomplete("a referrers list of at most 4 MiB per page")
                        );
                    }
                    bytes.extend_from_slice(&chunk);
                }
                referrers.extend(referrers::parse_index(&bytes).map_err(|reason| {
                    request.incomplete(&format!("an image index of referrers ({reason})"))
                })?);
                match next {
                    Some(link) => {
                        request = Request::at(Method::GET, repository, link)
                            .header(ACCEPT, OCI_INDEX.to_owned());
                    }
                    None => return Ok((referrers, ReferrersSource::Api)),
                }
            }
        }
        let tag = referrers::fallback_tag(digest);
        let shown = format!("{repository}:{tag}");
        match self.fetch_manifest_at(repository, &tag, &shown).await {
            Ok(index) => {
                let referrers = referrers::parse_index(&index.bytes)
                    .map_err(|reason| RegistryError::Referrers { tag: shown, reason })?;
                Ok((referrers, ReferrersSource::FallbackTag))
            }
            Err(error) if error.is_not_found() => Ok((Vec::new(), ReferrersSource::Nothing)),
            Err(error) => Err(error),
        }
    }

    /// The fallback index at `repository:sha256-<hex of subject>` with
    /// `added` in it, each digest once (read, merged, written only when
    /// something was missing). Returns how many were added.
    #[tracing::instrument(skip_all, fields(repository = %repository, subject = %subject))]
    pub async fn add_to_fallback_index(
        &self,
        repository: &Repository,
        subject: &Digest,
        added: &[Referrer],
    ) -> Result<bool, RegistryError> {
        let tag = referrers::fallback_tag(subject);
        let shown = format!("{repository}:{tag}");
        let existing = match self.fetch_manifest_at(repository, &tag, &shown).await {
            Ok(index) => Some(index.bytes),
            Err(error) if error.is_not_found() => None,
            Err(error) => return Err(error),
        };
        let Some(bytes) = referrers::merge_index(existing.as_deref(), added) else {
            return Ok(false);
        };
        let request = Request::new(Method::PUT, repository, &format!("manifests/{tag}"))
            .push()
            .header(CONTENT_TYPE, OCI_INDEX.to_owned())
            .body(bytes);
        let response = self.transport.send(&request).await?;
        self.transport.expect_success(&request, response).await?;
        Ok(true)
    }

    /// Deletes tag `tag` of `repository` (OCI distribution 1.1 tag deletion),
    /// never the manifest it points at. `Ok(false)` when the registry does
    /// not support deleting tags (400, 405, 501 or `UNSUPPORTED`).
    pub async fn delete_tag(
        &self,
        repository: &Repository,
        tag: &str,
    ) -> Result<bool, RegistryError> {
        let request = Request::new(Method::DELETE, repository, &format!("manifests/{tag}")).push();
        let response = self.transport.send(&request).await?;
        match response.status().as_u16() {
            200..=299 => Ok(true),
            400 | 405 | 501 => Ok(false),
            _ => self
                .transport
                .expect_success(&request, response)
                .await
                .map(|_| true),
        }
    }

    /// The size of blob `digest` in `repository`, or `None` when it is not
    /// there (HEAD).
    pub async fn blob_size(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let request = Request::new(Method::HEAD, repository, &format!("blobs/{digest}"));
        let response = self.transport.send(&request).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = self.transport.expect_success(&request, response).await?;
        Ok(Some(
            response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        ))
    }

    /// The bytes of a small blob (a config), whole.
    pub async fn fetch_blob(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<Vec<u8>, RegistryError> {
        let request = Request::new(Method::GET, repository, &format!("blobs/{digest}"));
        let response = self.transport.send(&request).await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                image: format!("{repository}@{digest}"),
            });
        }
        let response = self.transport.expect_success(&request, response).await?;
        Ok(response
            .bytes()
            .await
            .map_err(|error| request.unreachable(1, &error))?
            .to_vec())
    }

    /// Makes blob `descriptor` present in `to`: nothing when it is there
    /// already, a cross-repository mount when `from` is on the same registry
    /// (no bytes move), else a streamed copy (never held whole in memory),
    /// whose bytes so far `progress` is told after each chunk.
    #[tracing::instrument(skip_all, fields(from = %from, to = %to, digest = %descriptor.digest))]
    pub async fn transfer_blob(
        &self,
        from: &Repository,
        to: &Repository,
        descriptor: &Descriptor,
        progress: BlobProgress,
    ) -> Result<BlobTransfer, RegistryError> {
        if self.blob_size(to, &descriptor.digest).await?.is_some() {
            tracing::debug!("blob present; skipping");
            return Ok(BlobTransfer::Skipped);
        }
        if from.registry() == to.registry() {
            let request = Request::new(Method::POST, to, "blobs/uploads/")
                .push()
                .also_pull(from)
                .query("mount", descriptor.digest.to_string())
                .query("from", from.path().to_owned())
                .header(CONTENT_LENGTH, "0".to_owned());
            let response = self.transport.send(&request).await?;
            if response.status() == reqwest::StatusCode::CREATED {
                return Ok(BlobTransfer::Mounted);
            }
            if matches!(response.status().as_u16(), 401 | 403) {
                // The destination's credentials may not read the source (a
                // promote with a user per side): copy, each side with its own.
                tracing::debug!(
                    status = response.status().as_u16(),
                    "mount refused; copying"
                );
            } else {
                // 202: the registry opened an upload instead (e.g. the source
                // blob is not readable to us); close it and copy.
                let response = self.transport.expect_success(&request, response).await?;
                if let Some(location) = location_of(&response) {
                    let cancel = Request::at(Method::DELETE, to, location).push();
                    let _ = self.transport.send(&cancel).await;
                }
            }
        }
        self.transport
            .stream_blob(from, to, descriptor, progress)
            .await?;
        Ok(BlobTransfer::Copied(descriptor.size))
    }

    /// Every tag of `repository`, following `Link` pagination.
    #[tracing::instrument(skip_all, fields(repository = %repository))]
    pub async fn list_tags(&self, repository: &Repository) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        // A registry whose `Link` leads back to a page already read, or on
        // without end, is answered with an error, not an endless loop.
        const MAX_PAGES: usize = 10_000;
        let mut seen = std::collections::HashSet::new();
        let mut tags = Vec::new();
        let mut request = Some(Request::new(Method::GET, repository, "tags/list?n=1000"));
        while let Some(current) = request.take() {
            if !seen.insert(current.path.clone()) || seen.len() > MAX_PAGES {
                return Err(current.incomplete(
                    "a tag list whose `Link` pages end (the next page was read already, or there were over 10000)",
                ));
            }
            let response = self.transport.send(&current).await?;
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Err(RegistryError::NotFound {
                    image: repository.to_string(),
                });
            }
            let response = self.transport.expect_success(&current, response).await?;
            let next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .map(|link| Request::at(Method::GET, repository, link));
            let page: TagList = response
                .json()
                .await
                .map_err(|_| current.incomplete("a JSON tag list"))?;
            tags.extend(page.tags.unwrap_or_default());
            request = next;
        }
        Ok(tags)
    }

    /// The labels of every image `image` names: one entry for a single
    /// image, one per platform for an index (attestation entries, platform
    /// `unknown/unknown`, left out). Reads manifests and config blobs only.
    #[tracing::instrument(skip_all, fields(image = %image))]
    pub async fn fetch_config_labels(
        &self,
        image: &ImageRef,
    ) -> Result<Vec<PlatformLabels>, RegistryError> {
        let top = self.fetch_manifest(image).await?;
        let repository = image.repository();
        let mut images = Vec::new();
        match top.content()? {
            Content::Index(children) => {
                for child in children {
                    if child
                        .platform
                        .as_ref()
                        .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
                    {
                        continue;
                    }
                    let shown = format!("{repository}@{}", child.digest);
                    let manifest = self
                        .fetch_manifest_at(repository, &child.digest.to_string(), &shown)
                        .await?;
                    images.push((child.platform, manifest));
                }
            }
            Content::Image { .. } => images.push((None, top)),
        }
        let mut labels = Vec::new();
        for (platform, manifest) in images {
            let Content::Image { config, .. } = manifest.content()? else {
                continue;
            };
            let bytes = self.fetch_blob(repository, &config.digest).await?;
            let parsed = config_labels(&bytes).map_err(|error| RegistryError::Config {
                image: image.to_string(),
                digest: config.digest.clone(),
                reason: error.to_string(),
            })?;
            labels.push(PlatformLabels {
                platform,
                digest: manifest.digest,
                labels: parsed,
            });
        }
        Ok(labels)
    }

    /// The manifest of `repository` at `digest` (a child of an index).
    pub async fn fetch_manifest_by_digest(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<Manifest, RegistryError> {
        let shown = format!("{repository}@{digest}");
        self.fetch_manifest_at(repository, &digest.to_string(), &shown)
            .await
    }
}

/// The manifest reference of `image`: digest, else tag, else `latest`.
fn reference_of(image: &ImageRef) -> String {
    match (image.digest(), image.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_string(),
        (None, None) => "latest".to_owned(),
    }
}

fn header_digest(response: &reqwest::Response) -> Option<Digest> {
    response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn location_of(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(str::to_owned)
}

/// The `rel="next"` target of a `Link` header: `</v2/x/tags/list?n=1&last=a>; rel="next"`.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// What slipway-registry's errors say: their exit codes ([`classify`]); none
/// names a place in a file. A tool that uses this crate passes it to
/// [`slipway_core::cli::finish`].
pub const ERRORS: slipway_core::cli::ErrorKinds =
    slipway_core::cli::ErrorKinds::codes_only(classify);

/// The exit code `cause` says if it is one of slipway-registry's errors: a tool that
/// uses this crate passes it to [`slipway_core::cli::finish`].
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    [
        slipway_core::cli::code::<auth::AuthError>,
        slipway_core::cli::code::<ClientSetupError>,
        slipway_core::cli::code::<RegistryError>,
        slipway_core::cli::code::<ManifestError>,
    ]
    .iter()
    .find_map(|code| code(cause))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[track_caller]
    fn check(header: &str, expected: Option<&str>) {
        assert_eq!(next_link(header).as_deref(), expected, "{header}");
    }

    #[test]
    fn link_headers() {
        check(
            r#"</v2/a/tags/list?n=2&last=b>; rel="next""#,
            Some("/v2/a/tags/list?n=2&last=b"),
        );
        check(
            r#"<https://r.io/v2/a/tags/list?last=b>; rel="next", <x>; rel="prev""#,
            Some("https://r.io/v2/a/tags/list?last=b"),
        );
        check(r#"<x>; rel="prev""#, None);
        check("", None);
    }

    /// Against a real registry: an index of two images pushed by the test bed,
    /// read back through manifests and config blobs only.
    #[test]
    fn config_labels_of_every_platform() {
        let registry = slipway_testbed::Registry::start();
        let host = registry.host();
        slipway_testbed::images::push_index(
            &host,
            "app",
            "multi",
            &[("amd64", "rev-amd64"), ("arm64", "rev-arm64")],
        );
        let client = RegistryClient::new(RegistryOptions::default(), HashMap::new()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let image: ImageRef = format!("{host}/app:multi").parse().unwrap();
        let labels = runtime
            .block_on(client.fetch_config_labels(&image))
            .unwrap();
        let got: Vec<(String, String)> = labels
            .iter()
            .map(|l| {
                let platform = l
                    .platform
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                (
                    platform,
                    l.labels["org.opencontainers.image.revision"].clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("linux/amd64".to_owned(), "rev-amd64".to_owned()),
                ("linux/arm64".to_owned(), "rev-arm64".to_owned())
            ]
        );
        let single: ImageRef = format!("{host}/app:multi-arm64").parse().unwrap();
        let labels = runtime
            .block_on(client.fetch_config_labels(&single))
            .unwrap();
        assert_eq!((labels.len(), labels[0].platform.is_none()), (1, true));
        let missing: ImageRef = format!("{host}/app:nope").parse().unwrap();
        let error = runtime
            .block_on(client.fetch_config_labels(&missing))
            .unwrap_err();
        assert_eq!(error.to_string(), format!("`{host}/app:nope` not found"));
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A client that retries quickly, for tests.
    fn quick_client(max_attempts: u32, retry_budget: Duration) -> RegistryClient {
        let options = RegistryOptions {
            max_attempts,
            retry_budget,
            first_backoff: Duration::from_millis(20),
            ..RegistryOptions::default()
        };
        RegistryClient::new(options, HashMap::new()).unwrap()
    }

    /// The time between consecutive requests in `seen`.
    fn gaps(seen: &[slipway_testbed::http_fault::Seen]) -> Vec<Duration> {
        seen.windows(2).map(|w| w[1].at - w[0].at).collect()
    }

    /// A registry that answers 429 (with `Retry-After: 1`) twice, then 503
    /// (without), before it serves: the client waits as asked, retries, and
    /// gets the digest; each retry is a real request.
    #[test]
    fn retries_429_and_503_honouring_retry_after() {
        use slipway_testbed::{Fault, HttpFault};
        let registry = slipway_testbed::Registry::start();
        let (digest, _) =
            slipway_testbed::images::push_image(&registry.host(), "app", "1", "amd64", None);
        let front = HttpFault::start(
            registry.addr(),
            vec![
                Fault::new("/v2/app/manifests/1", 2, 429)
                    .method("HEAD")
                    .header("Retry-After", "1"),
                Fault::new("/v2/app/manifests/1", 1, 503).method("HEAD"),
            ],
        );
        let client = quick_client(5, Duration::from_secs(20));
        let image: ImageRef = format!("{}/app:1", front.host()).parse().unwrap();
        let got = runtime().block_on(client.resolve(&image)).unwrap();
        assert_eq!(got.map(|d| d.to_string()), Some(digest));
        let heads = front.seen_matching("HEAD", "/v2/app/manifests/1");
        let statuses: Vec<Option<u16>> = heads.iter().map(|s| s.faulted).collect();
        assert_eq!(statuses, [Some(429), Some(429), Some(503), None]);
        let gaps = gaps(&heads);
        // Retry-After: 1 is honoured (a lower bound: never sooner)...
        assert!(gaps[0] >= Duration::from_secs(1), "{gaps:?}");
        assert!(gaps[1] >= Duration::from_secs(1), "{gaps:?}");
        // ...and without it the backoff applies: at least half of 3 · 20 ms.
        assert!(gaps[2] >= Duration::from_millis(40), "{gaps:?}");
    }

    /// A registry that keeps answering 429 gets exactly `max_attempts`
    /// requests, and the error names the registry, request and status; one
    /// whose `Retry-After` is beyond the retry budget gets one request.
    #[test]
    fn retries_are_bounded_in_count_and_by_the_budget() {
        use slipway_testbed::{Fault, HttpFault};
        let registry = slipway_testbed::Registry::start();
        slipway_testbed::images::push_image(&registry.host(), "app", "1", "amd64", None);
        let front = HttpFault::start(
            registry.addr(),
            vec![Fault::new("/v2/app/manifests/1", 100, 429).method("HEAD")],
        );
        let host = front.host();
        let image: ImageRef = format!("{host}/app:1").parse().unwrap();
        let error = runtime()
            .block_on(quick_client(3, Duration::from_secs(20)).resolve(&image))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            // A HEAD answer has no body, so no registry message.
            format!("`{host}` answered 429 to `HEAD /v2/app/manifests/1`")
        );
        assert_eq!(front.seen_matching("HEAD", "/manifests/1").len(), 3);

        // Past the budget, whatever the budget: with 60 s, a `Retry-After:
        // 120` was cut to 30 s, waited for and retried.
        for budget in [10, 60] {
            let front = HttpFault::start(
                registry.addr(),
                vec![
                    Fault::new("/v2/app/manifests/1", 100, 429)
                        .method("HEAD")
                        .header("Retry-After", "120"),
                ],
            );
            let host = front.host();
            let image: ImageRef = format!("{host}/app:1").parse().unwrap();
            let error = runtime()
                .block_on(quick_client(5, Duration::from_secs(budget)).resolve(&image))
                .unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with(&format!(
                    "`{host}` answered 429 to `HEAD /v2/app/manifests/1` and asked to retry \
                     after 2m, beyond the "
                )) && message.ends_with(&format!(
                    " left of the {} retry budget: not retrying; run again later",
                    slipway_core::duration::format(Duration::from_secs(budget))
                )),
                "{message}"
            );
            assert_eq!(front.seen_matching("HEAD", "/manifests/1").len(), 1);
        }
    }

    /// Pushes are retried too: a manifest PUT answered 503, and a streamed
    /// blob upload answered 429, both complete on the next attempt.
    #[test]
    fn manifest_and_blob_pushes_are_retried() {
        use slipway_testbed::{Fault, HttpFault};
        let source = slipway_testbed::Registry::start();
        let target = slipway_testbed::Registry::start();
        slipway_testbed::images::push_image(&source.host(), "app", "1", "amd64", Some("abc"));
        let front = HttpFault::start(
            target.addr(),
            vec![
                // The monolithic upload's PUT to the upload location.
                Fault::new("/v2/copy/blobs/uploads/", 1, 429)
                    .method("PUT")
                    .header("Retry-After", "0"),
                Fault::new("/v2/copy/manifests/1", 1, 503).method("PUT"),
            ],
        );
        let client = quick_client(5, Duration::from_secs(20));
        let runtime = runtime();
        let image: ImageRef = format!("{}/app:1", source.host()).parse().unwrap();
        let manifest = runtime.block_on(client.fetch_manifest(&image)).unwrap();
        let Content::Image { config, .. } = manifest.content().unwrap() else {
            panic!("a single image")
        };
        let to: Repository = format!("{}/copy", front.host()).parse().unwrap();
        // The progress callback hears the bytes so far, up to the whole blob.
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let progress: BlobProgress = {
            let heard = heard.clone();
            Arc::new(move |bytes| heard.lock().unwrap().push(bytes))
        };
        let transfer = runtime
            .block_on(client.transfer_blob(image.repository(), &to, &config, progress))
            .unwrap();
        assert_eq!(transfer, BlobTransfer::Copied(config.size));
        assert_eq!(heard.lock().unwrap().last(), Some(&config.size));
        let digest = runtime
            .block_on(client.put_manifest(&to, "1", &manifest))
            .unwrap();
        assert_eq!(digest, manifest.digest);
        assert_eq!(front.fault_counts(), [1, 1]);
        let copied: ImageRef = format!("{}/copy:1", target.host()).parse().unwrap();
        let labels = runtime
            .block_on(client.fetch_config_labels(&copied))
            .unwrap();
        assert_eq!(labels[0].labels["org.opencontainers.image.revision"], "abc");
    }
}
