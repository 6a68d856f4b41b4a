//! The Docker token flow: a registry's `WWW-Authenticate` challenge, and
//! the request for a Bearer token to the token server it names.
//!
//! - A username and password go as HTTP `Basic` on
//!   `GET <realm>?scope=…&service=…&account=<username>` (Docker's token
//!   spec, and what docker sends).
//! - A docker *identity token* (`identitytoken` in a docker config, or a
//!   credential helper answering the user `<token>`) is an OAuth2 refresh
//!   token: it goes, as docker sends it, in a form `POST <realm>` with
//!   `grant_type=refresh_token`, `refresh_token`, `service`, `scope`
//!   (space-separated) and `client_id`, never as `Basic`.
//!
//! Token requests follow the client's retry policy (429, 5xx and dropped
//! connections, backoff with jitter, bounded in attempts and time, each
//! attempt bounded by the request timeout). What comes back is judged for
//! the user: a 5xx is the token server failing (not the credentials), a 403
//! is a user who may not pull or push that repository, a 401 is refused
//! credentials, named with where they came from. Tokens (and any refresh
//! token an answer carries) are registered as secrets before anything else
//! is done with them, so an error echoing them is redacted.

use std::time::{Duration, Instant};

use reqwest::Method;

use crate::auth::Credentials;
use crate::options::innermost;
use crate::retry::{backoff, is_retryable, retry_after};
use crate::transport::{self, basic_header, error_message, with_query};
use crate::{RegistryError, RegistryOptions};

/// The username docker gives an identity token (a refresh token).
pub(crate) const IDENTITY_TOKEN_USER: &str = "<token>";

/// The OAuth2 `client_id` Slipway's refresh-token requests name.
pub(crate) const CLIENT_ID: &str = "slipway";

/// How a registry wants to be authenticated, learnt from its first challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scheme {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses `Basic realm="…"` or `Bearer realm="…",service="…",scope="…"`.
pub(crate) fn parse_challenge(header: &str) -> Option<Scheme> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Scheme::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = challenge_params(params)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    Some(Scheme::Bearer {
        realm: get("realm")?,
        service: get("service"),
    })
}

/// Whether a registry's challenge says the token lacked the access asked
/// for (`error="insufficient_scope"`): the credentials were fine, the
/// rights were not.
pub(crate) fn is_insufficient_scope(header: &str) -> bool {
    let params = header
        .trim()
        .split_once(' ')
        .and_then(|(_, params)| challenge_params(params))
        .unwrap_or_default();
    params
        .iter()
        .any(|(key, value)| key == "error" && value == "insufficient_scope")
}

/// `key="value", key=value` pairs (keys lowercased); values are quoted and
/// may hold commas (a scope list), so they are split by hand.
fn challenge_params(params: &str) -> Option<Vec<(String, String)>> {
    let mut found = Vec::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        found.push((key.trim().to_ascii_lowercase(), value.to_owned()));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(found)
}

/// What the denial of `scopes` is about: the first repository and whether
/// push was asked for (`push`) or only pull (`pull`).
pub(crate) fn denied_access(scopes: &[String], method: &str) -> (String, &'static str) {
    let repository = scopes
        .first()
        .and_then(|scope| scope.strip_prefix("repository:"))
        .and_then(|rest| rest.rsplit_once(':'))
        .map_or_else(String::new, |(name, _)| name.to_owned());
    let action = if matches!(method, "GET" | "HEAD") {
        "pull"
    } else {
        "push"
    };
    (repository, action)
}

/// How the credentials are named in errors: "`bot` (from `REGISTRY_PASSWORD`)",
/// or "the identity token (from `…/config.json`)" for docker's `<token>` user,
/// which is no user anyone would recognise.
pub(crate) fn who(credentials: &Credentials) -> String {
    if credentials.username == IDENTITY_TOKEN_USER {
        return format!("the identity token (from {})", credentials.source);
    }
    format!("`{}` (from {})", credentials.username, credentials.source)
}

/// What a token is asked for: a Bearer challenge's `realm` and `service`,
/// and the registry request that met it.
pub(crate) struct TokenRequest<'a> {
    /// The registry host (`host[:port]`).
    pub(crate) registry: &'a str,
    /// The token endpoint, from the challenge.
    pub(crate) realm: &'a str,
    /// The challenge's `service`, if any.
    pub(crate) service: Option<&'a str>,
    /// The scopes the registry request needs (`repository:team/app:pull,push`).
    pub(crate) scopes: &'a [String],
    /// The registry request's method: what a 403 denies (pull for
    /// `GET`/`HEAD`, else push).
    pub(crate) method: &'a str,
}

/// Asks the token server for a token for `request`, with `credentials` or
/// anonymously; see the module docs for the two request forms, the retries
/// and the errors.
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    options: &RegistryOptions,
    request: &TokenRequest<'_>,
    credentials: Option<&Credentials>,
) -> Result<String, RegistryError> {
    let TokenRequest {
        registry,
        realm,
        service,
        scopes,
        method,
    } = *request;
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        refresh_token: Option<String>,
    }
    let shown_realm = slipway_core::secret::redact_url(realm.split('?').next().unwrap_or(realm));
    // Credentials never travel in clear text when the registry itself is
    // spoken to over TLS: a challenge (from a compromised or misconfigured
    // registry) naming an `http://` realm would otherwise downgrade them.
    if credentials.is_some() && is_downgrade(options, registry, realm) {
        return Err(RegistryError::PlainHttpRealm {
            registry: registry.to_owned(),
            realm: shown_realm,
        });
    }
    let identity_token = credentials.filter(|c| c.username == IDENTITY_TOKEN_USER);
    let token_method = if identity_token.is_some() {
        Method::POST
    } else {
        Method::GET
    };
    let incomplete = |what: &str| RegistryError::Incomplete {
        registry: registry.to_owned(),
        method: token_method.to_string(),
        path: shown_realm.clone(),
        what: what.to_owned(),
    };
    let started = Instant::now();
    let mut attempt = 0;
    let response = loop {
        attempt += 1;
        let builder = match identity_token {
            Some(identity) => {
                use secrecy::ExposeSecret as _;
                let scope = scopes.join(" ");
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", identity.password.expose_secret()),
                    ("client_id", CLIENT_ID),
                    ("scope", scope.as_str()),
                ];
                if let Some(service) = service {
                    form.push(("service", service));
                }
                let url =
                    with_query(realm, &[]).map_err(|()| incomplete("a valid token realm URL"))?;
                // `application/x-www-form-urlencoded`, encoded as a query is.
                let body = with_query("http://form.invalid/", &form)
                    .map_err(|()| incomplete("a form"))?
                    .query()
                    .unwrap_or_default()
                    .to_owned();
                http.post(url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            }
            None => {
                let mut query: Vec<(&str, &str)> =
                    scopes.iter().map(|s| ("scope", s.as_str())).collect();
                if let Some(service) = service {
                    query.push(("service", service));
                }
                // Same as docker: the user is named as `account` too, which
                // some token servers read instead of the Basic header's.
                if let Some(credentials) = credentials {
                    query.push(("account", credentials.username.as_str()));
                }
                let url = with_query(realm, &query)
                    .map_err(|()| incomplete("a valid token realm URL"))?;
                let builder = http.get(url);
                match credentials {
                    Some(credentials) => {
                        builder.header(reqwest::header::AUTHORIZATION, basic_header(credentials))
                    }
                    None => builder,
                }
            }
        };
        let builder = builder.timeout(options.request_timeout.max(Duration::from_millis(1)));
        let wait = backoff(options.first_backoff, attempt, fastrand::f64());
        let may_retry = |wait: Duration| {
            attempt < options.max_attempts
                && started.elapsed().saturating_add(wait) <= options.retry_budget
        };
        match builder.send().await {
            // A TLS failure is the same on every attempt: said at once.
            Err(error) if transport::tls_failure(&error).is_some() => {
                return Err(RegistryError::TokenServerTls {
                    registry: registry.to_owned(),
                    realm: shown_realm,
                    reason: transport::tls_failure(&error)
                        .map(|failure| failure.to_string())
                        .unwrap_or_default(),
                });
            }
            Err(error) if error.is_builder() || !may_retry(wait) => {
                return Err(RegistryError::Unreachable {
                    registry: registry.to_owned(),
                    method: token_method.to_string(),
                    path: shown_realm,
                    attempts: attempt,
                    reason: innermost(&error),
                });
            }
            Err(error) => {
                tracing::debug!(reason = %innermost(&error), attempt, "token server unreachable; retrying");
                tokio::time::sleep(wait).await;
            }
            Ok(response) if is_retryable(response.status()) => {
                let wait = retry_after(&response).unwrap_or(wait);
                if !may_retry(wait) {
                    break response;
                }
                tracing::debug!(
                    status = response.status().as_u16(),
                    attempt,
                    "token server failed; retrying"
                );
                tokio::time::sleep(wait).await;
            }
            Ok(response) => break response,
        }
    };
    let status = response.status().as_u16();
    if !response.status().is_success() {
        let message = error_message(response).await;
        return Err(match status {
            403 => {
                let (repository, action) = denied_access(scopes, method);
                RegistryError::Denied {
                    who: credentials.map_or_else(|| "anonymous access".to_owned(), who),
                    action,
                    repository,
                    registry: registry.to_owned(),
                    answer: format!(
                        "its token server `{shown_realm}` answered {status} to `{token_method} {shown_realm}`{message}"
                    ),
                }
            }
            _ if is_retryable(response_status(status)) => RegistryError::TokenServer {
                registry: registry.to_owned(),
                realm: shown_realm,
                status,
                attempts: attempt,
                message,
            },
            _ => transport::unauthorized_by(
                registry,
                token_method.as_str(),
                &shown_realm,
                status,
                credentials,
                message,
            ),
        });
    }
    let answer: TokenAnswer = response
        .json()
        .await
        .map_err(|_| incomplete("a JSON `token`"))?;
    if let Some(refresh) = &answer.refresh_token {
        slipway_core::secret::register(refresh);
    }
    let token = answer
        .token
        .or(answer.access_token)
        .filter(|token| !token.is_empty())
        .ok_or_else(|| incomplete("a JSON `token`"))?;
    // A token from the token service is a secret too: redacted wherever
    // it would be printed (an error body echoing `Bearer …`).
    slipway_core::secret::register(&token);
    Ok(token)
}

/// Whether sending credentials to `realm` would put them in clear text
/// where the user never asked for plain HTTP: an `http://` realm, unless
/// `--plain-http` is given, `--plain-http-registry` names the registry or
/// the realm's `host[:port]`, or both the realm and the registry are on
/// loopback with the registry itself spoken to in plain HTTP (a loopback
/// registry without certs.d). A loopback realm of a registry reached over
/// HTTPS is a downgrade too: on a shared runner another user's process may
/// listen on that port. A plain-HTTP loopback registry's realm off the
/// machine is one as well (often a tunnel to a real registry).
fn is_downgrade(options: &RegistryOptions, registry: &str, realm: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(realm) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    if url.scheme() != "http" {
        return false;
    }
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    if options.is_named_plain_http(registry) || options.is_named_plain_http(&authority) {
        return false;
    }
    !(transport::is_loopback(host) && options.is_plain_http(registry))
}

fn response_status(status: u16) -> reqwest::StatusCode {
    reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(header: &str, expected: &str) {
        let got = match parse_challenge(header) {
            Some(Scheme::Basic) => "basic".to_owned(),
            Some(Scheme::Bearer { realm, service }) => format!("bearer {realm} {service:?}"),
            None => "none".to_owned(),
        };
        assert_eq!(got, expected, "{header}");
    }

    #[test]
    fn challenges() {
        check(r#"Basic realm="Registry""#, "basic");
        check(
            r#"Bearer realm="https://auth.io/token",service="r.io",scope="repository:a:pull,push""#,
            r#"bearer https://auth.io/token Some("r.io")"#,
        );
        check(r#"bearer realm="https://a/t""#, "bearer https://a/t None");
        check(r#"Bearer service="x""#, "none");
        check("Negotiate abc", "none");
        assert!(is_insufficient_scope(
            r#"Bearer realm="http://a/t",service="r",scope="repository:a:push",error="insufficient_scope""#
        ));
        assert!(!is_insufficient_scope(
            r#"Bearer realm="http://a/t",error="invalid_token""#
        ));
        assert!(!is_insufficient_scope("Basic realm=x"));
    }

    #[test]
    fn denials_name_the_repository_and_the_action() {
        let scopes = vec!["repository:team/app:pull,push".to_owned()];
        assert_eq!(
            denied_access(&scopes, "PUT"),
            ("team/app".to_owned(), "push")
        );
        assert_eq!(
            denied_access(&scopes, "HEAD"),
            ("team/app".to_owned(), "pull")
        );
        assert_eq!(denied_access(&[], "GET"), (String::new(), "pull"));
    }

    /// An HTTPS registry whose challenge names an `http://` realm, even on
    /// loopback, does not get its credentials sent there in clear text; an
    /// anonymous token request, a loopback realm of a plain-HTTP loopback
    /// registry, or a registry or realm named for plain HTTP (`--plain-http`,
    /// `--plain-http-registry`) may.
    #[test]
    fn credentials_never_go_to_a_plain_http_realm_of_an_https_registry() {
        use crate::auth::{CredentialSource, Credentials};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let options = RegistryOptions::default();
        let credentials = Credentials {
            username: "bot".to_owned(),
            password: secrecy::SecretString::from("bot-pw-1234".to_owned()),
            source: CredentialSource::Env,
        };
        let scopes = ["repository:team/app:pull".to_owned()];
        let request = TokenRequest {
            registry: "registry.example.com",
            realm: "http://auth.example.com/token?x=1",
            service: Some("registry"),
            scopes: &scopes,
            method: "GET",
        };
        let error = runtime
            .block_on(fetch_token(&http, &options, &request, Some(&credentials)))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "`registry.example.com` names a plain-HTTP token server `http://auth.example.com/token`: \
             its credentials are not sent there in clear text (the registry is reached over HTTPS, \
             or the token server is off this machine); the registry's token realm should be \
             `https://` (or, if clear text is meant, pass --plain-http-registry with the token \
             server's HOST[:PORT])"
        );
        // Nor to a loopback port, where another user's process may listen.
        let loopback = TokenRequest {
            realm: "http://127.0.0.1:5001/token",
            ..request
        };
        let error = runtime
            .block_on(fetch_token(&http, &options, &loopback, Some(&credentials)))
            .unwrap_err();
        assert!(
            error.to_string().starts_with(
                "`registry.example.com` names a plain-HTTP token server `http://127.0.0.1:5001/token`: \
                 its credentials are not sent there in clear text"
            ),
            "{error}"
        );
        assert!(is_downgrade(&options, "r.io", "http://auth.r.io/token"));
        assert!(!is_downgrade(&options, "r.io", "https://auth.r.io/token"));
        // An HTTPS registry naming a loopback realm: whatever listens on
        // that port (another user's process on a shared runner) would get
        // the credentials in clear text.
        assert!(is_downgrade(
            &options,
            "r.io",
            "http://127.0.0.1:5001/token"
        ));
        assert!(is_downgrade(&options, "r.io", "http://127.1:5001/token"));
        assert!(is_downgrade(&options, "r.io", "http://[::1]:5001/token"));
        // A loopback registry, plain HTTP by default, with a loopback realm
        // (the test bed's token server): nothing leaves plain HTTP it did
        // not already use.
        assert!(!is_downgrade(
            &options,
            "127.0.0.1:5000",
            "http://127.0.0.1:5001/token"
        ));
        assert!(!is_downgrade(
            &options,
            "[::1]:5000",
            "http://[::1]:5001/token"
        ));
        // `--plain-http-registry` naming the loopback realm allows it.
        let loopback_realm_named = RegistryOptions {
            plain_http_registries: vec!["127.0.0.1:5001".to_owned()],
            ..RegistryOptions::default()
        };
        assert!(!is_downgrade(
            &loopback_realm_named,
            "r.io",
            "http://127.0.0.1:5001/token"
        ));
        assert!(is_downgrade(
            &options,
            "r.io",
            "http://localhost.r.io/token"
        ));
        // A loopback registry is plain HTTP by default, but its realm off
        // the machine is not: a tunnel to a registry must not put the
        // credentials on the network in clear text.
        assert!(is_downgrade(
            &options,
            "127.0.0.1:5000",
            "http://auth.r.io/token"
        ));
        let realm_named = RegistryOptions {
            plain_http_registries: vec!["auth.r.io:8080".to_owned()],
            ..RegistryOptions::default()
        };
        assert!(!is_downgrade(
            &realm_named,
            "127.0.0.1:5000",
            "http://auth.r.io:8080/token"
        ));
        let plain = RegistryOptions {
            plain_http: true,
            ..RegistryOptions::default()
        };
        assert!(!is_downgrade(&plain, "r.io", "http://auth.r.io/token"));
        let plain_one = RegistryOptions {
            plain_http_registries: vec!["r.io".to_owned()],
            ..RegistryOptions::default()
        };
        assert!(!is_downgrade(&plain_one, "r.io", "http://auth.r.io/token"));
        assert!(is_downgrade(&plain_one, "s.io", "http://auth.s.io/token"));
    }

    /// A token server whose TLS certificate cannot be verified is named as
    /// such at once (no retries, which would fail the same way), with the
    /// flags that trust its CA; with `--ca-cert`, the client of a registry
    /// spoken to in plain HTTP trusts it (a plain registry may have an
    /// HTTPS token server).
    #[test]
    fn a_token_server_tls_failure_is_named_and_not_retried() {
        use slipway_testbed::{Registry, TestCa};
        let _ = rustls::crypto::ring::default_provider().install_default();
        let plain = Registry::start();
        let ca = TestCa::new();
        // Any TLS server will do as a realm: the TLS front of a registry.
        let tls = plain.tls_front(&ca, false);
        let realm = format!("https://{}/v2/", tls.host());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let scopes = ["repository:team/app:pull".to_owned()];
        let request = TokenRequest {
            registry: "127.0.0.1:5000",
            realm: &realm,
            service: None,
            scopes: &scopes,
            method: "GET",
        };
        let options = RegistryOptions {
            first_backoff: Duration::from_secs(1),
            ..RegistryOptions::default()
        };
        let (http, _) = options.http_client("127.0.0.1:5000").unwrap();
        let error = runtime
            .block_on(fetch_token(&http, &options, &request, None))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "cannot speak TLS with the token server `{realm}` of `127.0.0.1:5000`: invalid \
                 peer certificate: UnknownIssuer; it is reached with the registry's TLS \
                 settings: trust its CA with --ca-cert FILE or in the registry's certs.d \
                 directory (`/etc/docker/certs.d/127.0.0.1:5000/ca.crt`, or --certs-dir DIR)"
            )
        );

        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        fs_err::write(&ca_file, ca.cert_pem()).unwrap();
        let trusting = RegistryOptions {
            ca_certs: vec![crate::CaCert::read(&ca_file).unwrap()],
            ..RegistryOptions::default()
        };
        let (http, _) = trusting.http_client("127.0.0.1:5000").unwrap();
        // The handshake succeeds; the registry's `/v2/` is no token server.
        let error = runtime
            .block_on(fetch_token(&http, &trusting, &request, None))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("`127.0.0.1:5000` answered `GET {realm}` without a JSON `token`")
        );
    }

    /// A token server that accepts the connection and never answers is
    /// given up on: each attempt is bounded by the request timeout, the
    /// attempts by the retry policy, and the error names the token server.
    #[test]
    fn a_token_server_that_hangs_is_given_up_on_in_time() {
        use crate::auth::{CredentialSource, Credentials};
        use slipway_testbed::{IssuerFault, Registry, TokenIssuer};
        let issuer = TokenIssuer::start();
        issuer.add_user("bot", "bot-pw-1234", &[("*", "pull")]);
        let registry = Registry::start_with_token(&issuer);
        issuer.set_fault(Some(IssuerFault::Hang), None);
        let host = registry.host();
        let options = RegistryOptions {
            request_timeout: Duration::from_millis(400),
            max_attempts: 2,
            first_backoff: Duration::from_millis(10),
            ..RegistryOptions::default()
        };
        let credentials = [(
            host.clone(),
            Credentials {
                username: "bot".to_owned(),
                password: secrecy::SecretString::from("bot-pw-1234".to_owned()),
                source: CredentialSource::Env,
            },
        )]
        .into_iter()
        .collect();
        let client = crate::RegistryClient::new(options, credentials).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let image: slipway_core::image_ref::ImageRef =
            format!("{host}/team/app:1").parse().unwrap();
        let started = Instant::now();
        let error = runtime.block_on(client.resolve(&image)).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            error.to_string(),
            format!(
                "cannot reach `{host}` for `GET {}` after 2 attempt(s): operation timed out",
                issuer.realm()
            )
        );
        assert_eq!(issuer.seen().len(), 2);
    }
}
