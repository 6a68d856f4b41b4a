//! Registry credentials: where a tool finds the username and password for a
//! registry host or a repository on it (docs/auth.md).
//!
//! 1. explicit credentials (a tool's `--username` + `--password-stdin`, or a
//!    promote side's own), carrying their [`CredentialSource`];
//! 2. `REGISTRY_USER` / `REGISTRY_PASSWORD`;
//! 3. the first credentials file with an entry, of ([`auth_file_paths`]):
//!    `$REGISTRY_AUTH_FILE` (else `$XDG_RUNTIME_DIR/containers/auth.json`),
//!    `$XDG_CONFIG_HOME/containers/auth.json` (else
//!    `~/.config/containers/auth.json`), and `$DOCKER_CONFIG/config.json`
//!    (else `~/.docker/config.json`): in each, `credHelpers[host]`, then
//!    `auths` (the most specific of `host/ns/repo`, `host/ns`, then `host`;
//!    an `identitytoken`, which becomes the `<token>` user, exchanged by
//!    the OAuth2 refresh-token POST, and wins over an `auth` beside it;
//!    else base64 `auth` or `username`/`password`),
//!    then `credsStore`, through the docker-credential-helpers protocol
//!    (`docker-credential-<name> get`, the host on stdin,
//!    `{"Username", "Secret"}` on stdout);
//! 4. anonymous.
//!
//! Secrets stay in [`SecretString`]; nothing here logs or prints them.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use secrecy::SecretString;

/// A username and password (or token) for one registry.
#[derive(Clone)]
pub struct Credentials {
    /// The username; not secret.
    pub username: String,
    /// The password or token.
    pub password: SecretString,
    /// Where they came from, named in errors (never the secret).
    pub source: CredentialSource,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .field("source", &self.source)
            .finish()
    }
}

/// Where credentials came from, for `debug` logs and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The tool's own flags, as the tool names them (`--password-stdin`).
    Flags(String),
    /// `REGISTRY_USER` / `REGISTRY_PASSWORD`.
    Env,
    /// `auths` of a docker config file.
    DockerConfig(PathBuf),
    /// A docker credential helper, by name (`docker-credential-<name>`).
    Helper(String),
    /// No credentials.
    Anonymous,
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::Flags(flags) => write!(f, "{flags}"),
            CredentialSource::Env => write!(f, "`REGISTRY_USER`/`REGISTRY_PASSWORD`"),
            CredentialSource::DockerConfig(path) => write!(f, "`{}`", path.display()),
            CredentialSource::Helper(name) => write!(f, "`docker-credential-{name}`"),
            CredentialSource::Anonymous => write!(f, "nowhere (anonymous)"),
        }
    }
}

/// What went wrong while looking for credentials.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The docker config file is not valid JSON of the expected shape.
    #[error("cannot read docker config `{path}`: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, e.g. the JSON error.
        reason: String,
    },
    /// An `auths` entry's `auth` is not base64 of `user:password`.
    #[error("invalid `auths.{host}.auth` in `{path}`: expected base64 of `username:password`")]
    BadAuthField {
        /// The file.
        path: PathBuf,
        /// The `auths` key.
        host: String,
    },
    /// A credential helper could not be run or answered badly.
    #[error("credential helper `docker-credential-{helper}` failed for `{host}`: {reason}")]
    Helper {
        /// The helper's name.
        helper: String,
        /// The registry host asked for.
        host: String,
        /// What went wrong (stderr, exit status or JSON error; never the secret).
        reason: String,
    },
    /// A password of 1 to 3 bytes, from any source (exit 2).
    #[error(transparent)]
    TooShort(slipway_core::secret::TooShort),
    /// Only one of `REGISTRY_USER` and `REGISTRY_PASSWORD` is set (and not
    /// empty); exit 2.
    #[error("`{set}` is set but `{missing}` is not (or is empty): set both, or neither")]
    HalfEnv {
        /// The variable that is set.
        set: &'static str,
        /// The one that is missing.
        missing: &'static str,
    },
}

impl slipway_core::cli::ExitStatus for AuthError {
    fn exit_code(&self) -> Option<u8> {
        Some(match self {
            // Bad input, refused before anything was sent.
            AuthError::TooShort(_) | AuthError::HalfEnv { .. } => slipway_core::cli::exit::USAGE,
            _ => slipway_core::cli::exit::FAILURE,
        })
    }
}

/// The subset of docker's `config.json` that holds credentials.
#[derive(Debug, Default, serde::Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The docker config file: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`; `None` without either variable.
pub fn docker_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(Path::new(&dir).join("config.json"));
    }
    env("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| Path::new(&home).join(".docker").join("config.json"))
}

/// The files credentials are looked for in, in order: the containers
/// tools' (`$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`;
/// then `$XDG_CONFIG_HOME/containers/auth.json`, else
/// `~/.config/containers/auth.json`), then docker's
/// ([`docker_config_path`]). This is the order of containers-auth.json(5)
/// (podman, skopeo, buildah); the first file with an entry wins.
pub fn auth_file_paths(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let set = |name: &str| env(name).filter(|value| !value.is_empty());
    let mut paths = Vec::new();
    if let Some(file) = set("REGISTRY_AUTH_FILE") {
        paths.push(PathBuf::from(file));
    } else if let Some(dir) = set("XDG_RUNTIME_DIR") {
        paths.push(Path::new(&dir).join("containers").join("auth.json"));
    }
    if let Some(dir) = set("XDG_CONFIG_HOME") {
        paths.push(Path::new(&dir).join("containers").join("auth.json"));
    } else if let Some(home) = set("HOME") {
        paths.push(
            Path::new(&home)
                .join(".config")
                .join("containers")
                .join("auth.json"),
        );
    }
    paths.extend(docker_config_path(env));
    let mut unique = Vec::new();
    for path in paths {
        if !unique.contains(&path) {
            unique.push(path);
        }
    }
    unique
}

/// Finds the credentials for `target`: a registry host as written in image
/// references (`ghcr.io`, `127.0.0.1:5000`) or a repository on it
/// (`ghcr.io/team/app`, whose most specific `auths` key wins), in the order
/// described in the module docs. `explicit` wins; `env` reads environment
/// variables.
pub fn resolve(
    target: &str,
    explicit: Option<Credentials>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Option<Credentials>, CredentialSource), AuthError> {
    let host = target.split('/').next().unwrap_or(target);
    let (found, source) = find(target, explicit, env)?;
    if let Some(found) = &found {
        use secrecy::ExposeSecret as _;
        let what = match &source {
            CredentialSource::Flags(flags) => {
                format!("the password of `{}` given with {flags}", found.username)
            }
            CredentialSource::Env => "the value of `REGISTRY_PASSWORD`".to_owned(),
            CredentialSource::DockerConfig(path) => {
                format!("the password of `{host}` in `{}`", path.display())
            }
            CredentialSource::Helper(name) => {
                format!("the secret `docker-credential-{name}` answered for `{host}`")
            }
            CredentialSource::Anonymous => "the password".to_owned(),
        };
        slipway_core::secret::check_len(found.password.expose_secret(), &what)
            .map_err(AuthError::TooShort)?;
    }
    Ok((found, source))
}

/// [`resolve`] before the length check.
fn find(
    target: &str,
    explicit: Option<Credentials>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Option<Credentials>, CredentialSource), AuthError> {
    if let Some(credentials) = explicit {
        let source = credentials.source.clone();
        return Ok((Some(credentials), source));
    }
    // An empty variable counts as unset: a CI secret that is missing in
    // this run (a fork's pull request) expands to "", and sending an empty
    // password only earns a 401 that blames the credentials.
    let set = |name: &str| env(name).filter(|value| !value.is_empty());
    match (set("REGISTRY_USER"), set("REGISTRY_PASSWORD")) {
        (Some(username), Some(password)) => {
            return Ok((
                Some(Credentials {
                    username,
                    password: SecretString::from(password),
                    source: CredentialSource::Env,
                }),
                CredentialSource::Env,
            ));
        }
        (Some(_), None) => {
            return Err(AuthError::HalfEnv {
                set: "REGISTRY_USER",
                missing: "REGISTRY_PASSWORD",
            });
        }
        (None, Some(_)) => {
            return Err(AuthError::HalfEnv {
                set: "REGISTRY_PASSWORD",
                missing: "REGISTRY_USER",
            });
        }
        (None, None) => {}
    }
    let mut source = CredentialSource::Anonymous;
    for path in auth_file_paths(env) {
        let text = match slipway_core::input::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => {
                return Err(AuthError::Config {
                    path,
                    reason: error.to_string(),
                });
            }
        };
        match from_docker_config(target, &text, &path, &run_helper)? {
            (Some(found), found_source) => return Ok((Some(found), found_source)),
            // A helper that knows nothing of the registry: the next file may.
            (None, found_source) => {
                if source == CredentialSource::Anonymous {
                    source = found_source;
                }
            }
        }
    }
    Ok((None, source))
}

/// A credential helper: `(helper name, host) -> answer JSON`.
type HelperRunner = dyn Fn(&str, &str) -> Result<String, String>;

/// The credentials for `target` (a host, or `host/repository`) in
/// credentials file `text` (read from `path`: a docker config or a
/// containers auth file, which share their format).
fn from_docker_config(
    target: &str,
    text: &str,
    path: &Path,
    helper: &HelperRunner,
) -> Result<(Option<Credentials>, CredentialSource), AuthError> {
    let host = target.split('/').next().unwrap_or(target);
    let config: DockerConfig = serde_json::from_str(text).map_err(|error| AuthError::Config {
        path: path.to_owned(),
        reason: error.to_string(),
    })?;
    if let Some(name) = config_keys(host)
        .iter()
        .find_map(|k| config.cred_helpers.get(k))
    {
        return ask_helper(name, host, helper);
    }
    let keys = repository_keys(target)
        .into_iter()
        .chain(config_keys(host))
        .collect::<Vec<_>>();
    if let Some((key, entry)) = keys
        .iter()
        .find_map(|k| config.auths.get_key_value(k))
        .or_else(|| {
            config
                .auths
                .iter()
                .find(|(key, _)| normalized_key(key).as_deref() == Some(host))
        })
        && let Some(mut credentials) = entry_credentials(entry, key, path)?
    {
        credentials.source = CredentialSource::DockerConfig(path.to_owned());
        return Ok((
            Some(credentials),
            CredentialSource::DockerConfig(path.to_owned()),
        ));
    }
    if let Some(name) = &config.creds_store {
        return ask_helper(name, host, helper);
    }
    Ok((None, CredentialSource::Anonymous))
}

/// The namespaced keys of the containers tools for `host/a/b/c`, most
/// specific first: `host/a/b/c`, `host/a/b`, `host/a` (containers-auth.json(5)).
fn repository_keys(target: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut current = target.trim_end_matches('/');
    while let Some((parent, _)) = current.rsplit_once('/') {
        keys.push(current.to_owned());
        current = parent;
    }
    keys
}

/// The server address docker gives Docker Hub: its `auths` key and what
/// it asks credential helpers for.
const DOCKER_HUB_INDEX: &str = "https://index.docker.io/v1/";

/// The keys docker may have stored `host` under: itself, with a scheme, and
/// for Docker Hub its historical index URL.
fn config_keys(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_owned(),
        format!("https://{host}"),
        format!("http://{host}"),
    ];
    if host == slipway_core::image_ref::DOCKER_HUB {
        keys.insert(0, DOCKER_HUB_INDEX.to_owned());
        keys.push("index.docker.io".to_owned());
        keys.push("registry-1.docker.io".to_owned());
    }
    keys
}

/// The registry host a URL-shaped `auths` key stands for, as docker's
/// `ConvertToHostname` and containers/image's `normalizeAuthFileKey` read
/// it: the scheme and any path dropped (`https://r.io/v1/` is `r.io`), and
/// Docker Hub's other names as `docker.io`. `None` for a key without a
/// scheme, which is matched as written (a host, or a namespace on it).
fn normalized_key(key: &str) -> Option<String> {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))?;
    let host = rest.split('/').next().unwrap_or(rest);
    Some(match host {
        "index.docker.io" | "registry-1.docker.io" => {
            slipway_core::image_ref::DOCKER_HUB.to_owned()
        }
        _ => host.to_owned(),
    })
}

fn entry_credentials(
    entry: &AuthEntry,
    key: &str,
    path: &Path,
) -> Result<Option<Credentials>, AuthError> {
    let bad = || AuthError::BadAuthField {
        path: path.to_owned(),
        host: key.to_owned(),
    };
    // An identity token is a refresh token for the token endpoint; docker
    // sends it as the password of the `<token>` user. It wins over `auth`:
    // `docker login` stores both, `auth` holding `username:` with an empty
    // password, and docker (like containers/image) then uses the token.
    if let Some(token) = entry.identity_token.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials {
            username: crate::token::IDENTITY_TOKEN_USER.to_owned(),
            password: SecretString::from(token.clone()),
            source: CredentialSource::Anonymous,
        }));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (username, password) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials {
            username: username.to_owned(),
            password: SecretString::from(password.to_owned()),
            source: CredentialSource::Anonymous,
        }));
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials {
            username: username.clone(),
            password: SecretString::from(password.clone()),
            source: CredentialSource::Anonymous,
        }));
    }
    Ok(None)
}

fn ask_helper(
    name: &str,
    host: &str,
    helper: &HelperRunner,
) -> Result<(Option<Credentials>, CredentialSource), AuthError> {
    let fail = |reason: String| AuthError::Helper {
        helper: name.to_owned(),
        host: host.to_owned(),
        reason,
    };
    // Same as docker: Docker Hub's credentials are kept under its index
    // URL (what `docker login` hands the helper), so that is asked first;
    // `docker.io` after it, as the containers tools store it.
    let servers: &[&str] = if host == slipway_core::image_ref::DOCKER_HUB {
        &[DOCKER_HUB_INDEX, host]
    } else {
        &[host]
    };
    let mut answer = String::new();
    for server in servers {
        answer = helper(name, server).map_err(fail)?;
        if !answer.trim().is_empty() {
            break;
        }
    }
    if answer.trim().is_empty() {
        return Ok((None, CredentialSource::Helper(name.to_owned())));
    }
    let answer: HelperAnswer = serde_json::from_str(&answer)
        .map_err(|error| fail(format!("invalid JSON answer: {error}")))?;
    Ok((
        Some(Credentials {
            username: answer.username,
            password: SecretString::from(answer.secret),
            source: CredentialSource::Helper(name.to_owned()),
        }),
        CredentialSource::Helper(name.to_owned()),
    ))
}

/// How long a credential helper may take to answer before it is stopped:
/// one waiting for a locked keychain or a passphrase nobody types would
/// otherwise hang the tool (and a CI job) forever.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variables registry credentials are read from (step 2
/// above). A tool removes them from the environment of the programs it
/// runs that do not need them (docker, kubectl, buildah, a credential
/// helper): the tool read them for its own registry requests, and a
/// child's plugins (docker CLI plugins, kubeconfig `exec:` credential
/// plugins) have no business with them.
pub const CREDENTIAL_ENV_VARS: [&str; 2] = ["REGISTRY_USER", "REGISTRY_PASSWORD"];

/// Runs `docker-credential-<name> get` with `host` on stdin. "Credentials not
/// found" is an empty answer (anonymous), as docker treats it.
fn run_helper(name: &str, host: &str) -> Result<String, String> {
    run_helper_program(&format!("docker-credential-{name}"), host, HELPER_TIMEOUT)
}

/// Runs `program get` with `host` on stdin, reading its stdout and stderr
/// through [`slipway_core::input::read_capped`] (at most 16 MiB each) and stopping
/// it (kill) when it has not exited within `timeout` or prints more.
fn run_helper_program(program: &str, host: &str, timeout: Duration) -> Result<String, String> {
    let started = Instant::now();
    let mut child = Command::new(program)
        .arg("get")
        .env_remove(CREDENTIAL_ENV_VARS[0])
        .env_remove(CREDENTIAL_ENV_VARS[1])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot run `{program}`: {error}"))?;
    // Each stream is read on its own thread, so neither pipe fills up and
    // blocks the helper; the answers come back over channels.
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>, what: String| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let bytes = match pipe {
                Some(pipe) => slipway_core::input::read_capped(pipe, &what),
                None => Ok(Vec::new()),
            };
            let _ = sender.send(bytes);
        });
        receiver
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        format!("the output of `{program}`"),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        format!("the error output of `{program}`"),
    );
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its stdin is judged by its answer.
        let _ = stdin.write_all(host.as_bytes());
    }
    let too_much = |error: std::io::Error| match error.kind() {
        std::io::ErrorKind::InvalidData => format!(
            "`{program}` printed more than {}, the most Slipway reads from a helper; it was stopped",
            slipway_core::input::MAX_INPUT_SHOWN
        ),
        _ => format!("cannot read the answer of `{program}`: {error}"),
    };
    let stop = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    let mut answer = None;
    let status = loop {
        if answer.is_none()
            && let Ok(bytes) = stdout.try_recv()
        {
            match bytes {
                Ok(bytes) => answer = Some(bytes),
                Err(error) => {
                    stop(&mut child);
                    return Err(too_much(error));
                }
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                stop(&mut child);
                return Err(format!(
                    "`{program}` did not answer within {}; it was stopped (is it waiting for a \
                     locked keychain or a passphrase?)",
                    slipway_core::progress::format_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(error) => {
                stop(&mut child);
                return Err(format!("cannot wait for `{program}`: {error}"));
            }
        }
    };
    // The helper has exited; a process it left behind may still hold its
    // pipes open, so the rest of the wait is bounded too.
    let remaining = || timeout.saturating_sub(started.elapsed());
    let stdout = match answer {
        Some(bytes) => bytes,
        None => stdout
            .recv_timeout(remaining())
            .map_err(|_| format!("`{program}` exited but its output did not end in time"))?
            .map_err(too_much)?,
    };
    let stderr = stderr.recv_timeout(remaining()).ok().and_then(Result::ok);
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    if status.success() {
        return Ok(stdout);
    }
    // The protocol reports a missing entry on stdout with a failing status.
    if stdout.contains("credentials not found") {
        return Ok(String::new());
    }
    Err(format!(
        "exited with {status}: {}",
        helper_failure(
            &stdout,
            &String::from_utf8_lossy(stderr.as_deref().unwrap_or_default())
        )
    ))
}

/// What a failing helper said, for the error: stderr, and stdout only when
/// it is the protocol's plain one-line message. A JSON answer (which may
/// hold the secret even though the helper failed) is never shown.
fn helper_failure(stdout: &str, stderr: &str) -> String {
    let stdout = stdout.trim();
    let plain = !stdout.starts_with('{') && !stdout.contains('\n');
    let said: Vec<&str> = [plain.then_some(stdout), Some(stderr.trim())]
        .into_iter()
        .flatten()
        .filter(|text| !text.is_empty())
        .collect();
    if said.is_empty() {
        "no message".to_owned()
    } else {
        said.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    #[test]
    fn a_failing_helpers_json_answer_is_never_shown() {
        assert_eq!(
            helper_failure(r#"{"Username":"u","Secret":"s3cr3t"}"#, "locked"),
            "locked"
        );
        assert_eq!(
            helper_failure("error getting credentials - err: exit status 1\n", ""),
            "error getting credentials - err: exit status 1"
        );
        assert_eq!(helper_failure("", ""), "no message");
    }

    /// Writes an executable `docker-credential-<name>` script in `dir`.
    fn helper_script(dir: &Path, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(format!("docker-credential-{name}"));
        fs_err::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    /// A real helper process that never answers (a locked keychain) is
    /// stopped at the timeout and named; one that prints without end is
    /// stopped at the input limit; a good one still answers.
    #[test]
    fn a_helper_that_hangs_or_floods_is_stopped_and_named() {
        let dir = tempfile::tempdir().unwrap();
        for body in ["read host; sleep 60", "exec sleep 60"] {
            let program = helper_script(dir.path(), "hang", body);
            let started = Instant::now();
            let error =
                run_helper_program(&program, "ghcr.io", Duration::from_millis(500)).unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(5), "{body}");
            assert_eq!(
                error,
                format!(
                    "`{program}` did not answer within 500ms; it was stopped (is it waiting for a \
                     locked keychain or a passphrase?)"
                )
            );
        }
        let program = helper_script(dir.path(), "flood", "exec yes");
        let error = run_helper_program(&program, "ghcr.io", Duration::from_secs(20)).unwrap_err();
        assert_eq!(
            error,
            format!(
                "`{program}` printed more than 16 MiB, the most Slipway reads from a helper; it \
                 was stopped"
            )
        );
        let program = helper_script(
            dir.path(),
            "good",
            r#"read host; printf '{"Username":"bot","Secret":"s3"}'"#,
        );
        assert_eq!(
            run_helper_program(&program, "ghcr.io", Duration::from_secs(20)).unwrap(),
            r#"{"Username":"bot","Secret":"s3"}"#
        );
    }

    fn no_helper(_: &str, _: &str) -> Result<String, String> {
        Err("no helper in this test".to_owned())
    }

    fn fake_helper(name: &str, host: &str) -> Result<String, String> {
        match (name, host) {
            ("pass", "ghcr.io") => {
                Ok(r#"{"ServerURL":"ghcr.io","Username":"bot","Secret":"s3"}"#.to_owned())
            }
            ("pass", "https://index.docker.io/v1/") => {
                Ok(r#"{"Username":"hub","Secret":"hub-s3"}"#.to_owned())
            }
            ("pass", _) => Ok(String::new()),
            _ => Err("boom".to_owned()),
        }
    }

    #[track_caller]
    fn check(config: &str, host: &str, expected: Option<(&str, &str)>, source: &str) {
        let (credentials, got_source) =
            from_docker_config(host, config, Path::new("/c.json"), &fake_helper)
                .expect("config is valid");
        let got = credentials
            .as_ref()
            .map(|c| (c.username.as_str(), c.password.expose_secret()));
        assert_eq!(got, expected, "host `{host}` in {config}");
        let got_source = match got_source {
            CredentialSource::DockerConfig(_) => "config".to_owned(),
            CredentialSource::Helper(name) => format!("helper:{name}"),
            other => format!("{other:?}"),
        };
        assert_eq!(got_source, source, "source for `{host}` in {config}");
    }

    #[test]
    fn docker_config_entries() {
        // `dTpw` is base64 of `u:p`.
        check(
            r#"{"auths":{"r.io":{"auth":"dTpw"}}}"#,
            "r.io",
            Some(("u", "p")),
            "config",
        );
        check(
            r#"{"auths":{"https://r.io":{"auth":"dTpw"}}}"#,
            "r.io",
            Some(("u", "p")),
            "config",
        );
        check(
            r#"{"auths":{"r.io":{"username":"a","password":"b"}}}"#,
            "r.io",
            Some(("a", "b")),
            "config",
        );
        check(
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#,
            "docker.io",
            Some(("u", "p")),
            "config",
        );
        check(
            r#"{"auths":{"r.io":{"auth":"dTpw"}}}"#,
            "other.io",
            None,
            "Anonymous",
        );
        check(r#"{}"#, "r.io", None, "Anonymous");
        // What `docker login` stores for an identity token: `auth` is
        // base64 of `u:` (an empty password), and the token is what counts.
        check(
            r#"{"auths":{"r.io":{"auth":"dTo=","identitytoken":"refresh-1234"}}}"#,
            "r.io",
            Some(("<token>", "refresh-1234")),
            "config",
        );
        check(
            r#"{"credsStore":"pass"}"#,
            "ghcr.io",
            Some(("bot", "s3")),
            "helper:pass",
        );
        check(r#"{"credsStore":"pass"}"#, "r.io", None, "helper:pass");
        // Docker Hub's credentials are kept under its index URL, as
        // `docker login` stores them through a helper.
        check(
            r#"{"credsStore":"pass"}"#,
            "docker.io/library/busybox",
            Some(("hub", "hub-s3")),
            "helper:pass",
        );
        check(
            r#"{"credHelpers":{"docker.io":"pass"}}"#,
            "docker.io",
            Some(("hub", "hub-s3")),
            "helper:pass",
        );
        check(
            r#"{"credHelpers":{"ghcr.io":"pass"},"auths":{"ghcr.io":{"auth":"dTpw"}}}"#,
            "ghcr.io",
            Some(("bot", "s3")),
            "helper:pass",
        );
        check(
            r#"{"credsStore":"pass","auths":{"ghcr.io":{"auth":"dTpw"}}}"#,
            "ghcr.io",
            Some(("u", "p")),
            "config",
        );
    }

    /// URL-shaped keys (older `docker login`s, hand-written files) stand
    /// for their host, whatever path follows, as in docker and podman.
    #[test]
    fn url_keys_stand_for_their_host() {
        for key in ["https://r.io/", "https://r.io/v1/", "http://r.io/v2"] {
            let config = format!(r#"{{"auths":{{"{key}":{{"auth":"dTpw"}}}}}}"#);
            check(&config, "r.io", Some(("u", "p")), "config");
            check(&config, "r.io/team/app", Some(("u", "p")), "config");
            check(&config, "r.iox", None, "Anonymous");
        }
        check(
            r#"{"auths":{"http://127.0.0.1:5000/v2/":{"auth":"dTpw"}}}"#,
            "127.0.0.1:5000",
            Some(("u", "p")),
            "config",
        );
        check(
            r#"{"auths":{"https://registry-1.docker.io/v2/":{"auth":"dTpw"}}}"#,
            "docker.io",
            Some(("u", "p")),
            "config",
        );
        // A host's own key still wins over a URL-shaped one.
        check(
            r#"{"auths":{"https://r.io/v1/":{"auth":"dTpw"},"r.io":{"username":"a","password":"b"}}}"#,
            "r.io",
            Some(("a", "b")),
            "config",
        );
    }

    #[test]
    fn the_most_specific_namespaced_key_wins() {
        let config = r#"{"auths":{"r.io/team/app":{"auth":"dTpw"},"r.io/team":{"username":"t","password":"tp"},"r.io":{"username":"a","password":"b"}}}"#;
        check(config, "r.io/team/app", Some(("u", "p")), "config");
        check(config, "r.io/team/web", Some(("t", "tp")), "config");
        check(config, "r.io/other/app", Some(("a", "b")), "config");
        check(config, "r.io", Some(("a", "b")), "config");
        check(config, "r.iox/team/app", None, "Anonymous");
    }

    #[test]
    fn containers_auth_files_come_before_dockers() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            }
        };
        let paths = |vars: &'static [(&'static str, &'static str)]| -> Vec<String> {
            auth_file_paths(&env(vars))
                .iter()
                .map(|p| p.display().to_string())
                .collect()
        };
        assert_eq!(
            paths(&[("HOME", "/h"), ("XDG_RUNTIME_DIR", "/run/u")]),
            [
                "/run/u/containers/auth.json",
                "/h/.config/containers/auth.json",
                "/h/.docker/config.json"
            ]
        );
        assert_eq!(
            paths(&[
                ("HOME", "/h"),
                ("XDG_RUNTIME_DIR", "/run/u"),
                ("REGISTRY_AUTH_FILE", "/a.json"),
                ("XDG_CONFIG_HOME", "/cfg"),
                ("DOCKER_CONFIG", "/d"),
            ]),
            ["/a.json", "/cfg/containers/auth.json", "/d/config.json"]
        );
        assert!(paths(&[]).is_empty());
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let error = from_docker_config(
            "r.io",
            r#"{"auths":{"r.io":{"auth":"!!"}}}"#,
            Path::new("/c.json"),
            &no_helper,
        )
        .expect_err("bad base64");
        assert_eq!(
            error.to_string(),
            "invalid `auths.r.io.auth` in `/c.json`: expected base64 of `username:password`"
        );
        let error = from_docker_config(
            "r.io",
            r#"{"credsStore":"gone"}"#,
            Path::new("/c.json"),
            &fake_helper,
        )
        .expect_err("helper fails");
        assert_eq!(
            error.to_string(),
            "credential helper `docker-credential-gone` failed for `r.io`: boom"
        );
        let error = from_docker_config("r.io", "{", Path::new("/c.json"), &no_helper)
            .expect_err("bad json");
        assert!(
            error
                .to_string()
                .starts_with("cannot read docker config `/c.json`: "),
            "{error}"
        );
    }

    #[test]
    fn env_and_flags_come_first() {
        let env = |name: &str| match name {
            "REGISTRY_USER" => Some("ci".to_owned()),
            "REGISTRY_PASSWORD" => Some("pw-for-ci".to_owned()),
            _ => None,
        };
        let (credentials, source) = resolve("r.io", None, &env).expect("env is complete");
        assert_eq!(credentials.map(|c| c.username), Some("ci".to_owned()));
        assert_eq!(source, CredentialSource::Env);
        let half = |name: &str| (name == "REGISTRY_USER").then(|| "ci".to_owned());
        let error = resolve("r.io", None, &half).expect_err("half set");
        assert_eq!(
            error.to_string(),
            "`REGISTRY_USER` is set but `REGISTRY_PASSWORD` is not (or is empty): set both, or neither"
        );
        // A missing CI secret expands to "": not a password to send.
        let empty = |name: &str| match name {
            "REGISTRY_USER" => Some("ci".to_owned()),
            "REGISTRY_PASSWORD" => Some(String::new()),
            _ => None,
        };
        let error = resolve("r.io", None, &empty).expect_err("empty password");
        assert_eq!(
            error.to_string(),
            "`REGISTRY_USER` is set but `REGISTRY_PASSWORD` is not (or is empty): set both, or neither"
        );
        let both_empty = |name: &str| name.starts_with("REGISTRY_").then(String::new);
        let (credentials, source) = resolve("r.io", None, &both_empty).expect("both empty");
        assert!(credentials.is_none());
        assert_eq!(source, CredentialSource::Anonymous);
        let flags = Credentials {
            username: "f".to_owned(),
            password: SecretString::from("x-for-flags".to_owned()),
            source: CredentialSource::Flags("`--password-stdin`".to_owned()),
        };
        let (_, source) = resolve("r.io", Some(flags), &env).expect("flags win");
        assert_eq!(
            source,
            CredentialSource::Flags("`--password-stdin`".to_owned())
        );
        assert_eq!(
            format!("{:?}", resolve("r.io", None, &env).expect("ok").0),
            r#"Some(Credentials { username: "ci", password: "***", source: Env })"#
        );
    }
}
