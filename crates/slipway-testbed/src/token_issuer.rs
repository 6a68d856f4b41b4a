//! A Docker token issuer on loopback: the other half of a registry started
//! with [`crate::Registry::start_with_token`], which verifies every token it
//! hands out (signature, certificate, issuer, audience, expiry, access).
//!
//! It speaks the two requests of the Docker token spec and its OAuth2 form:
//!
//! - `GET /token?service=S&scope=…` with HTTP Basic (or none: anonymous)
//!   answers `{"token", "access_token", "expires_in", "issued_at"}`;
//! - `POST /token`, form `grant_type=password` (`username`, `password`) or
//!   `grant_type=refresh_token` (`refresh_token`), with `service`,
//!   `scope` (space-separated) and `client_id`, answers
//!   `{"access_token", …}`, plus a `refresh_token` for a password grant with
//!   `access_type=offline` (what `docker login` stores as `identitytoken`).
//!
//! Tokens are ES256 JWTs whose header carries the issuer's self-signed
//! certificate in `x5c`; the certificate is the registry's
//! `rootcertbundle`. A token grants the requested actions the user has
//! (`users` map: repository pattern -> actions), and no more, as Docker
//! Hub's issuer does: asking for push without the right gets a token for
//! pull only, and the registry answers `401 insufficient_scope`. Wrong
//! credentials get `401`.
//!
//! [`IssuerFault`] switches make it answer a status (500, 503, 403) or hang
//! (accept the request, never answer) for error tests, and every request is
//! recorded ([`TokenIssuer::seen`]).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// The `service` the issuer and its registry agree on (the token's `aud`).
pub const SERVICE: &str = "slipway-testbed-registry";
/// The issuer's name (the token's `iss`).
pub const ISSUER: &str = "slipway-testbed-issuer";

/// What the issuer answers instead of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerFault {
    /// Answer this status (e.g. 500, 503, 403) with a registry-style error
    /// body; `echo` puts what the client sent (its `Authorization` header
    /// and form body) in the message, as careless servers do.
    Status {
        /// The status code.
        status: u16,
        /// Whether the body quotes the request's credentials.
        echo: bool,
    },
    /// Read the request and never answer (until the issuer is dropped).
    Hang,
}

/// One request the issuer received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// The path and query.
    pub target: String,
    /// The `Authorization` header's scheme (`Basic`, `Bearer`), if any.
    pub auth_scheme: Option<String>,
    /// The form's `grant_type`, for a `POST`.
    pub grant_type: Option<String>,
    /// The form's `client_id`, for a `POST`.
    pub client_id: Option<String>,
    /// The status answered (0 for a hang).
    pub status: u16,
}

/// `[(repository pattern, actions)]`.
type Grants = Vec<(String, Vec<String>)>;

#[derive(Default)]
struct State {
    /// user -> (password, grants).
    users: BTreeMap<String, (String, Grants)>,
    /// refresh token -> user.
    refresh_tokens: BTreeMap<String, String>,
    /// The fault and how many more requests it answers (`None`: all).
    fault: Option<(IssuerFault, Option<usize>)>,
    seen: Vec<SeenRequest>,
    next_id: u64,
}

struct Shared {
    state: Mutex<State>,
    stopped: AtomicBool,
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running token issuer; dropping it stops it (hung requests included).
pub struct TokenIssuer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cert_pem: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl TokenIssuer {
    /// Starts an issuer with a fresh P-256 key and self-signed certificate
    /// on a free `127.0.0.1` port, with no users (anonymous requests get
    /// tokens with no access).
    pub fn start() -> TokenIssuer {
        let certified = rcgen::generate_simple_self_signed(vec![ISSUER.to_owned()])
            .unwrap_or_else(|e| panic!("cannot make the issuer's certificate: {e}"));
        let pkcs8 = certified.signing_key.serialize_der();
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &rng,
        )
        .unwrap_or_else(|e| panic!("cannot load the issuer's key: {e}"));
        let listener = TcpListener::bind(("127.0.0.1", crate::free_port()))
            .unwrap_or_else(|e| panic!("cannot bind the token issuer: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the issuer's address: {e}"));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            stopped: AtomicBool::new(false),
            key,
            cert_der: certified.cert.der().to_vec(),
        });
        let accepting = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accepting);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        TokenIssuer {
            addr,
            shared,
            cert_pem: certified.cert.pem(),
        }
    }

    /// Adds (or replaces) `user` with `password`, who may do `actions`
    /// (`"pull"`, `"pull,push"`) on the repositories each pattern names
    /// (`team/app`, `team/*`, `*`).
    pub fn add_user(&self, user: &str, password: &str, grants: &[(&str, &str)]) {
        let grants = grants
            .iter()
            .map(|(pattern, actions)| {
                (
                    (*pattern).to_owned(),
                    actions.split(',').map(str::to_owned).collect(),
                )
            })
            .collect();
        lock(&self.shared)
            .users
            .insert(user.to_owned(), (password.to_owned(), grants));
    }

    /// A refresh token for `user`, as `docker login` gets from an OAuth2
    /// password grant with `access_type=offline` and stores in the docker
    /// config as `identitytoken`.
    pub fn refresh_token_for(&self, user: &str) -> String {
        let token = format!("refresh-{user}-{}", crate::secrets::distinctive("Rt"));
        lock(&self.shared)
            .refresh_tokens
            .insert(token.clone(), user.to_owned());
        token
    }

    /// Makes the next `times` requests (`None`: every one, until cleared)
    /// answer `fault` instead of a token; `None` clears it.
    pub fn set_fault(&self, fault: Option<IssuerFault>, times: Option<usize>) {
        lock(&self.shared).fault = fault.map(|fault| (fault, times));
    }

    /// Every request received so far, in order.
    pub fn seen(&self) -> Vec<SeenRequest> {
        lock(&self.shared).seen.clone()
    }

    /// Forgets the requests seen so far (those of a test's set-up).
    pub fn clear_seen(&self) {
        lock(&self.shared).seen.clear();
    }

    /// The token endpoint, the registry's `realm`: `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The socket address the issuer listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The issuer's certificate, PEM: the registry's `rootcertbundle`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// One parsed request.
struct Incoming {
    method: String,
    target: String,
    authorization: Option<String>,
    body: String,
}

fn read_request(stream: &TcpStream) -> Option<Incoming> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut authorization = None;
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        match name.trim().to_ascii_lowercase().as_str() {
            "authorization" => authorization = Some(value),
            "content-length" => length = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut body = vec![0u8; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some(Incoming {
        method,
        target,
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// `a=b&c=d` (a query or a form) into pairs, percent- and `+`-decoded.
fn parse_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(mut stream: &TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn error_body(code: &str, message: &str) -> String {
    serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string()
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(request) = read_request(&stream) else {
        return;
    };
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    let form = if request.method == "POST" {
        parse_pairs(&request.body)
    } else {
        parse_pairs(query)
    };
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let mut seen = SeenRequest {
        method: request.method.clone(),
        target: request.target.clone(),
        auth_scheme: request
            .authorization
            .as_deref()
            .and_then(|a| a.split_whitespace().next())
            .map(str::to_owned),
        grant_type: (request.method == "POST")
            .then(|| field("grant_type"))
            .flatten(),
        client_id: (request.method == "POST")
            .then(|| field("client_id"))
            .flatten(),
        status: 0,
    };
    let fault = {
        let mut state = lock(shared);
        match &mut state.fault {
            Some((fault, None)) => Some(fault.clone()),
            Some((fault, Some(left))) if *left > 0 => {
                *left -= 1;
                Some(fault.clone())
            }
            _ => None,
        }
    };
    let (status, body) = match fault {
        Some(IssuerFault::Hang) => {
            lock(shared).seen.push(seen);
            while !shared.stopped.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        Some(IssuerFault::Status { status, echo }) => {
            let message = if echo {
                format!(
                    "cannot serve `{}` with `{}`, form `{}`",
                    request.target,
                    request.authorization.as_deref().unwrap_or_default(),
                    request.body
                )
            } else if status == 403 {
                "access to the repository is denied".to_owned()
            } else {
                "the token service is failing".to_owned()
            };
            let code = if status == 403 {
                "DENIED"
            } else {
                "UNAVAILABLE"
            };
            (status, error_body(code, &message))
        }
        None if path != "/token" => (404, error_body("NOT_FOUND", "no such endpoint")),
        None => issue(shared, &request, &form),
    };
    seen.status = status;
    lock(shared).seen.push(seen);
    respond(&stream, status, &body);
}

/// Answers a token request that no fault intercepted.
fn issue(shared: &Shared, request: &Incoming, form: &[(String, String)]) -> (u16, String) {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let scopes: Vec<String> = if request.method == "POST" {
        field("scope")
            .map(|s| s.split(' ').map(str::to_owned).collect())
            .unwrap_or_default()
    } else {
        form.iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .collect()
    };
    let unauthorized = |what: &str| (401, error_body("UNAUTHORIZED", what));
    let user: Option<String> = {
        let state = lock(shared);
        let check = |user: &str, password: &str| match state.users.get(user) {
            Some((expected, _)) if expected == password => Ok(user.to_owned()),
            _ => Err(()),
        };
        match (request.method.as_str(), field("grant_type").as_deref()) {
            ("GET", _) => match request.authorization.as_deref() {
                None => None,
                Some(header) => {
                    let decoded = header
                        .strip_prefix("Basic ")
                        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                        .map(|b| String::from_utf8_lossy(&b).into_owned());
                    match decoded
                        .as_deref()
                        .and_then(|d| d.split_once(':'))
                        .map(|(u, p)| check(u, p))
                    {
                        Some(Ok(user)) => Some(user),
                        _ => return unauthorized("invalid username or password"),
                    }
                }
            },
            ("POST", Some("password")) => {
                match check(
                    &field("username").unwrap_or_default(),
                    &field("password").unwrap_or_default(),
                ) {
                    Ok(user) => Some(user),
                    Err(()) => return unauthorized("invalid username or password"),
                }
            }
            ("POST", Some("refresh_token")) => {
                let token = field("refresh_token").unwrap_or_default();
                match state.refresh_tokens.get(&token) {
                    Some(user) => Some(user.clone()),
                    None => return unauthorized("invalid refresh token"),
                }
            }
            ("POST", _) => {
                return (
                    400,
                    error_body(
                        "UNSUPPORTED",
                        "grant_type must be password or refresh_token",
                    ),
                );
            }
            _ => return (400, error_body("UNSUPPORTED", "GET or POST only")),
        }
    };
    if field("service").as_deref() != Some(SERVICE) {
        return (400, error_body("UNSUPPORTED", "unknown service"));
    }
    let mut state = lock(shared);
    let grants = user
        .as_ref()
        .and_then(|u| state.users.get(u))
        .map(|(_, grants)| grants.clone())
        .unwrap_or_default();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            let (kind, rest) = scope.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            let actions: Vec<&str> = actions
                .split(',')
                .filter(|action| {
                    grants.iter().any(|(pattern, granted)| {
                        matches(pattern, name) && granted.iter().any(|g| g == action || g == "*")
                    })
                })
                .collect();
            (!actions.is_empty())
                .then(|| serde_json::json!({"type": kind, "name": name, "actions": actions}))
        })
        .collect();
    state.next_id += 1;
    let id = state.next_id;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": user.clone().unwrap_or_default(),
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now.saturating_sub(10),
        "iat": now,
        "jti": format!("token-{id}"),
        "access": access,
    });
    let token = sign(shared, &claims);
    let mut answer = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": 300,
        "issued_at": rfc3339(now),
    });
    if request.method == "POST"
        && field("grant_type").as_deref() == Some("password")
        && field("access_type").as_deref() == Some("offline")
        && let Some(user) = &user
    {
        let refresh = format!("refresh-{user}-{id}-{}", crate::secrets::distinctive("Rt"));
        state.refresh_tokens.insert(refresh.clone(), user.clone());
        answer["refresh_token"] = serde_json::Value::String(refresh);
    }
    (200, answer.to_string())
}

/// Whether repository `name` matches `pattern` (`*`, `team/*`, or exact).
fn matches(pattern: &str, name: &str) -> bool {
    pattern == "*"
        || pattern == name
        || pattern
            .strip_suffix('*')
            .is_some_and(|prefix| name.starts_with(prefix))
}

/// `header.claims.signature`, ES256 with the certificate in `x5c`.
fn sign(shared: &Shared, claims: &serde_json::Value) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(&shared.cert_der)],
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = shared
        .key
        .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
        .unwrap_or_else(|e| panic!("cannot sign a token: {e}"));
    format!("{signing_input}.{}", b64(signature.as_ref()))
}

/// `secs` since the Unix epoch as RFC 3339 UTC (`2026-12-06T11:20:00Z`),
/// what a token answer's `issued_at` holds (days to civil date: Howard
/// Hinnant's `civil_from_days`).
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}
