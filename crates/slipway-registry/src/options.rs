//! How the client reaches registries: the one set of registry flags every
//! tool that talks to a registry flattens into its CLI ([`RegistryArgs`]),
//! the options they map into ([`RegistryOptions`], built in one place,
//! [`RegistryOptions::for_tool`]), and the TLS settings of each registry:
//! extra CA certificates (`--ca-cert`) and docker's
//! `certs.d/<host[:port]>/` directories, read as docker and podman read
//! them (`*.crt` CA certificates; a `<name>.cert` + `<name>.key` client
//! certificate).
//!
//! Files are read when a client for a registry is first needed; nothing
//! here prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::RegistryError;

/// The registry flags of every tool that talks to a registry; map them with
/// [`RegistryOptions::for_tool`].
#[derive(Debug, Clone, Default, clap::Args)]
// Its own group id: img-tag's credential flags are a `RegistryArgs` too.
#[group(id = "registry_connection")]
#[command(next_help_heading = "Registry connection")]
pub struct RegistryArgs {
    /// Speak plain HTTP to every registry [default: plain HTTP only to loopback registries (localhost, 127.0.0.0/8, ::1) and those of --plain-http-registry; HTTPS elsewhere, and to a loopback registry with a certs.d directory]
    #[arg(long, env = "SLIPWAY_PLAIN_HTTP")]
    pub plain_http: bool,

    /// Speak plain HTTP to this registry, `HOST[:PORT]` as written in image references (repeatable; the variable takes a comma-separated list, empty items skipped)
    #[arg(
        long = "plain-http-registry",
        value_name = "HOST[:PORT]",
        env = "SLIPWAY_PLAIN_HTTP_REGISTRIES",
        value_delimiter = ',',
        value_parser = parse_registry_host
    )]
    pub plain_http_registries: Vec<String>,

    /// Trust the CA certificates of this PEM file for every registry, besides the system's (repeatable; the variable takes a comma-separated list, empty items skipped)
    #[arg(
        long = "ca-cert",
        value_name = "FILE",
        env = "SLIPWAY_CA_CERTS",
        value_delimiter = ',',
        value_parser = parse_ca_cert
    )]
    pub ca_certs: Vec<CaCert>,

    /// Read each registry's TLS files from `DIR/<host[:port]>/`, as docker's certs.d: `*.crt` CA certificates, a `client.cert` + `client.key` client certificate (repeatable; the variable takes a comma-separated list, empty items skipped; replaces the defaults) [default: /etc/docker/certs.d, ~/.docker/certs.d, /etc/containers/certs.d, ~/.config/containers/certs.d]
    #[arg(
        long = "certs-dir",
        value_name = "DIR",
        env = "SLIPWAY_CERTS_DIR",
        value_delimiter = ',',
        value_parser = parse_certs_dir
    )]
    pub certs_dirs: Vec<PathBuf>,
}

/// The certificates of one `--ca-cert` PEM file.
#[derive(Clone)]
pub struct CaCert {
    /// The file, as given.
    pub path: PathBuf,
    certs: Vec<reqwest::Certificate>,
}

impl std::fmt::Debug for CaCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaCert")
            .field("path", &self.path)
            .field("certs", &self.certs.len())
            .finish()
    }
}

impl CaCert {
    /// Reads the certificates of the PEM file at `path`; the error says
    /// what is wrong with it (clap names the flag and the file).
    pub fn read(path: &Path) -> Result<Self, String> {
        let pem = slipway_core::input::read(path).map_err(|error| {
            format!(
                "cannot read it: {}",
                std::error::Error::source(&error).map_or(error.to_string(), |s| s.to_string())
            )
        })?;
        let certs = parse_pem_certificates(&pem)?;
        Ok(Self {
            path: path.to_owned(),
            certs,
        })
    }
}

/// The certificates of a PEM bundle; at least one.
fn parse_pem_certificates(pem: &[u8]) -> Result<Vec<reqwest::Certificate>, String> {
    let certs = reqwest::Certificate::from_pem_bundle(pem)
        .map_err(|error| format!("not a PEM certificate file: {}", innermost(&error)))?;
    if certs.is_empty() {
        // A DER certificate is an ASN.1 SEQUENCE: `0x30`, then a length.
        let hint = if pem.first() == Some(&0x30) {
            " (it looks like a DER certificate: convert it with `openssl x509 -inform der -in FILE -out FILE.pem`)"
        } else if pem.windows(16).any(|w| w == b"PRIVATE KEY-----") {
            " (it holds a private key: a client certificate's key goes in a certs.d directory as `<name>.key`)"
        } else {
            ""
        };
        return Err(format!(
            "holds no `-----BEGIN CERTIFICATE-----` block; give a PEM file of CA certificates{hint}"
        ));
    }
    Ok(certs)
}

/// Reads a `--ca-cert` file. An empty value (an unset CI variable
/// `SLIPWAY_CA_CERTS=`, a trailing comma) stands for nothing: a `CaCert`
/// without a path or certificates, which [`RegistryOptions::for_tool`]
/// drops.
fn parse_ca_cert(value: &str) -> Result<CaCert, String> {
    if value.trim().is_empty() {
        return Ok(CaCert {
            path: PathBuf::new(),
            certs: Vec::new(),
        });
    }
    CaCert::read(Path::new(value))
}

/// Checks a `--certs-dir` value. An empty one (`SLIPWAY_CERTS_DIR=`, or
/// `/a,`) stands for nothing and is dropped by
/// [`RegistryOptions::for_tool`]: as a path it would be the working
/// directory, and a checkout's `<host>/` directories would become trusted
/// CAs.
fn parse_certs_dir(value: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(value.trim()))
}

/// Checks a `--plain-http-registry` value: `HOST[:PORT]`, no scheme or path.
fn parse_registry_host(value: &str) -> Result<String, String> {
    let value = value.trim();
    let expected = "expected a registry as written in image references, `HOST[:PORT]` (e.g. `registry.lan:5000`)";
    // An empty item (an unset CI variable, a trailing comma) is dropped by
    // `RegistryOptions::for_tool`.
    if value.is_empty() {
        return Ok(String::new());
    }
    if value.contains("://") {
        return Err(format!("has a scheme; {expected}, without `http://`"));
    }
    if value.contains('/') || value.contains(char::is_whitespace) || value.contains('@') {
        return Err(format!("is not a host; {expected}"));
    }
    // The registry part of an image reference, by the same parser.
    let repository = format!("{value}/x")
        .parse::<slipway_core::image_ref::Repository>()
        .map_err(|error| {
            // The parser names the reference it was given, `<value>/x`,
            // which the user never typed.
            let error = error.to_string().replace(&format!(" in `{value}/x`"), "");
            format!("{error}; {expected}")
        })?;
    if !repository.registry().eq_ignore_ascii_case(value) {
        return Err(format!(
            "is not a registry host (one has a `.` or a `:port`, or is `localhost`); {expected}"
        ));
    }
    Ok(value.to_ascii_lowercase())
}

/// docker's and podman's certs.d directories, in the order they are read
/// (podman's rootless one is `~/.config/containers/certs.d`, per
/// containers-certs.d(5)).
pub fn default_certs_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/etc/docker/certs.d")];
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    if let Some(home) = &home {
        dirs.push(Path::new(home).join(".docker/certs.d"));
    }
    dirs.push(PathBuf::from("/etc/containers/certs.d"));
    if let Some(home) = &home {
        dirs.push(Path::new(home).join(".config/containers/certs.d"));
    }
    dirs
}

/// How the client connects and retries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Plain HTTP to every registry, not only loopback ones (`--plain-http`).
    pub plain_http: bool,
    /// Registries (`host[:port]`, lowercase) spoken to over plain HTTP
    /// (`--plain-http-registry`).
    pub plain_http_registries: Vec<String>,
    /// CA certificates trusted for every registry, besides the system's
    /// (`--ca-cert`).
    pub ca_certs: Vec<CaCert>,
    /// Where each registry's `<host[:port]>/` TLS files are looked for
    /// (`--certs-dir`, else [`default_certs_dirs`]).
    pub certs_dirs: Vec<PathBuf>,
    /// Attempts per request (the first included) on 429, 5xx and dropped
    /// connections.
    pub max_attempts: u32,
    /// The most time one request may spend retrying.
    pub retry_budget: Duration,
    /// The first backoff; it doubles per attempt, up to 5 s, and each wait
    /// is drawn between half and all of that (jitter). A `Retry-After`
    /// answer replaces it, up to 30 s.
    pub first_backoff: Duration,
    /// The most one attempt of a request may take, answer included; then it
    /// counts as dropped (and is retried). Streamed blob copies are exempt:
    /// their size has no bound.
    pub request_timeout: Duration,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            plain_http: false,
            plain_http_registries: Vec::new(),
            ca_certs: Vec::new(),
            certs_dirs: default_certs_dirs(),
            max_attempts: 5,
            retry_budget: Duration::from_secs(60),
            first_backoff: Duration::from_millis(200),
            request_timeout: Duration::from_secs(30),
            user_agent: concat!("slipway/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl RegistryOptions {
    /// The one place a tool's registry options are built: the defaults,
    /// the registry flags the user gave (`args`), and `User-Agent:
    /// <tool>/<version>` (the workspace's version, which every tool
    /// shares). A tool may then tighten the retry bounds.
    pub fn for_tool(tool: &str, args: &RegistryArgs) -> Self {
        let defaults = Self::default();
        // Empty list items (`SLIPWAY_CERTS_DIR=`, `a.pem,`) stand for nothing,
        // as an empty variable does for docker and the containers tools.
        let certs_dirs: Vec<PathBuf> = args
            .certs_dirs
            .iter()
            .filter(|dir| !dir.as_os_str().is_empty())
            .cloned()
            .collect();
        Self {
            plain_http: args.plain_http,
            plain_http_registries: args
                .plain_http_registries
                .iter()
                .filter(|registry| !registry.is_empty())
                .cloned()
                .collect(),
            ca_certs: args
                .ca_certs
                .iter()
                .filter(|ca| !ca.path.as_os_str().is_empty())
                .cloned()
                .collect(),
            certs_dirs: if certs_dirs.is_empty() {
                defaults.certs_dirs.clone()
            } else {
                certs_dirs
            },
            user_agent: format!("{tool}/{}", env!("CARGO_PKG_VERSION")),
            ..defaults
        }
    }

    /// Whether `registry` (`host[:port]` as written in image references) is
    /// spoken to over plain HTTP: with `--plain-http` or
    /// `--plain-http-registry`, and loopback hosts (docker allows them plain
    /// HTTP) unless a certs.d directory has a `<host[:port]>/` directory
    /// for them, which says they serve TLS (docker's own example is
    /// `certs.d/localhost:5000/`).
    pub fn is_plain_http(&self, registry: &str) -> bool {
        self.is_named_plain_http(registry)
            || (crate::transport::is_loopback(registry) && !self.has_certs_d(registry))
    }

    /// Whether the user asked for plain HTTP to `registry` (`host[:port]`):
    /// `--plain-http`, or `--plain-http-registry` naming it.
    pub fn is_named_plain_http(&self, registry: &str) -> bool {
        self.plain_http
            || self
                .plain_http_registries
                .iter()
                .any(|r| r.eq_ignore_ascii_case(registry))
    }

    /// Whether a certs.d directory has a directory for `registry`.
    fn has_certs_d(&self, registry: &str) -> bool {
        self.certs_dirs
            .iter()
            .any(|dir| dir.join(registry).is_dir())
    }

    /// The HTTP client for `registry`, which also asks its token server
    /// for tokens (as docker's does): the system's roots, `--ca-cert`'s
    /// (even for a plain-HTTP registry, whose token server may serve
    /// HTTPS), and for a registry spoken to over TLS those of its certs.d
    /// directories, with its client certificate if one is there.
    /// Also returns the client certificate file it presents, if any (named
    /// when a registry refuses it).
    pub(crate) fn http_client(
        &self,
        registry: &str,
    ) -> Result<(reqwest::Client, Option<PathBuf>), RegistryError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .connect_timeout(Duration::from_secs(10));
        let files = if self.is_plain_http(registry) {
            CertsD::default()
        } else {
            self.certs_d(registry)?
        };
        let roots = self
            .ca_certs
            .iter()
            .flat_map(|ca| ca.certs.iter().cloned())
            .chain(files.roots);
        builder = builder.tls_certs_merge(roots);
        if let Some(identity) = files.identity {
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|error| RegistryError::Client(innermost(&error)))?;
        Ok((client, files.identity_file))
    }

    /// Warns of certificate files directly in a certs.d directory, which
    /// are read for no registry: docker's layout is one `<host[:port]>/`
    /// directory per registry, while skopeo's and buildah's `--cert-dir`
    /// is such a host directory itself (an easy mix-up).
    pub(crate) fn warn_misplaced_certs(&self) {
        for dir in &self.certs_dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut misplaced: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.is_file()
                        && path
                            .extension()
                            .and_then(|e| e.to_str())
                            .is_some_and(|e| matches!(e, "crt" | "cert" | "key"))
                })
                .filter_map(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            if misplaced.is_empty() {
                continue;
            }
            misplaced.sort();
            tracing::warn!(
                "`{}` holds {} directly: a certs.d file is read only from a `<host[:port]>/` directory in it, e.g. `{}`",
                dir.display(),
                misplaced
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                dir.join("registry.example.com:5000")
                    .join(&misplaced[0])
                    .display()
            );
        }
    }

    /// What the certs.d directories hold for `registry`.
    fn certs_d(&self, registry: &str) -> Result<CertsD, RegistryError> {
        let mut found = CertsD::default();
        for dir in &self.certs_dirs {
            let host_dir = dir.join(registry);
            // Same as docker: a directory that is not there is no TLS
            // files; one that cannot be read (permissions, a file in its
            // place) is an error, not silently a registry without its CA.
            let entries = match std::fs::read_dir(&host_dir) {
                Ok(entries) => entries,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => {
                    return Err(RegistryError::CertsFile {
                        path: host_dir.display().to_string(),
                        reason: format!("cannot read the directory: {error}"),
                    });
                }
            };
            let mut names: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .collect();
            names.sort();
            for path in &names {
                let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                let bad = |reason: String| RegistryError::CertsFile {
                    path: path.display().to_string(),
                    reason,
                };
                match extension {
                    "crt" => {
                        let pem = slipway_core::input::read(path)
                            .map_err(|error| bad(format!("cannot read it: {error}")))?;
                        found
                            .roots
                            .extend(parse_pem_certificates(&pem).map_err(bad)?);
                        tracing::debug!(%registry, path = %path.display(), "CA certificates from certs.d");
                    }
                    "cert" => {
                        let key = path.with_extension("key");
                        if !key.is_file() {
                            return Err(bad(format!(
                                "has no private key next to it: add `{}`, or remove the certificate",
                                key.display()
                            )));
                        }
                        if found.identity.is_some() {
                            continue;
                        }
                        let mut pem = slipway_core::input::read(path)
                            .map_err(|error| bad(format!("cannot read it: {error}")))?;
                        pem.push(b'\n');
                        pem.extend(slipway_core::input::read(&key).map_err(|error| {
                            bad(format!("cannot read its key `{}`: {error}", key.display()))
                        })?);
                        let identity = reqwest::Identity::from_pem(&pem).map_err(|error| {
                            bad(format!(
                                "is not a PEM client certificate with its key `{}`: {}",
                                key.display(),
                                innermost(&error)
                            ))
                        })?;
                        tracing::debug!(%registry, path = %path.display(), "client certificate from certs.d");
                        found.identity = Some(identity);
                        found.identity_file = Some(path.clone());
                    }
                    "key" if !path.with_extension("cert").is_file() => {
                        return Err(bad(format!(
                            "is a key without its certificate: add `{}`, or remove the key",
                            path.with_extension("cert").display()
                        )));
                    }
                    _ => {}
                }
            }
        }
        Ok(found)
    }
}

/// The TLS files of one registry's certs.d directories.
#[derive(Default)]
struct CertsD {
    roots: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
    /// The `*.cert` file of `identity`.
    identity_file: Option<PathBuf>,
}

/// The innermost cause of an error: "connection refused", not "error sending request".
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

    #[track_caller]
    fn check_host(value: &str, expected: Result<&str, &str>) {
        let got = parse_registry_host(value);
        match expected {
            Ok(host) => assert_eq!(got.as_deref(), Ok(host), "`{value}`"),
            Err(start) => assert!(
                got.as_ref().is_err_and(|e| e.starts_with(start)),
                "`{value}`: {got:?}"
            ),
        }
    }

    #[test]
    fn plain_http_registry_values() {
        check_host("registry.lan:5000", Ok("registry.lan:5000"));
        check_host("Registry.LAN", Ok("registry.lan"));
        check_host("[fd00::1]:5000", Ok("[fd00::1]:5000"));
        check_host("http://registry.lan", Err("has a scheme"));
        check_host("registry.lan/app", Err("is not a host"));
        check_host("", Ok(""));
        check_host("registry.lan:99999", Err("invalid port `99999`"));
        check_host("myregistry", Err("is not a registry host"));
        check_host("localhost:5000", Ok("localhost:5000"));
        check_host("[::1]:5000", Ok("[::1]:5000"));
        check_host("[FD00::1]", Ok("[fd00::1]"));
        check_host("127.1:5000", Ok("127.1:5000"));
        // IPv6 needs its brackets, as in image references.
        check_host(
            "::1",
            Err(
                "invalid registry `::1`: expected a host name, an IPv4 address or an IPv6 address in brackets",
            ),
        );
    }

    #[track_caller]
    fn check_plain(options: &RegistryOptions, registry: &str, expected: bool) {
        assert_eq!(options.is_plain_http(registry), expected, "{registry}");
    }

    #[test]
    fn plain_http_is_chosen_per_registry() {
        let options = RegistryOptions {
            plain_http_registries: vec!["registry.lan:5000".to_owned()],
            ..RegistryOptions::default()
        };
        check_plain(&options, "registry.lan:5000", true);
        check_plain(&options, "REGISTRY.lan:5000", true);
        // Another port of the same host is another registry.
        check_plain(&options, "registry.lan:5001", false);
        check_plain(&options, "registry.lan", false);
        check_plain(&options, "ghcr.io", false);
        check_plain(&options, "127.0.0.1:5000", true);
        let everywhere = RegistryOptions {
            plain_http: true,
            ..RegistryOptions::default()
        };
        check_plain(&everywhere, "ghcr.io", true);
    }

    /// A loopback registry with a certs.d directory serves TLS (docker's
    /// own example is `certs.d/localhost:5000/`): spoken to over HTTPS,
    /// unless the user names it for plain HTTP.
    #[test]
    fn a_loopback_registry_with_a_certs_d_directory_is_spoken_to_over_https() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("localhost:5000")).unwrap();
        fs_err::create_dir_all(dir.path().join("[::1]:5000")).unwrap();
        let options = RegistryOptions {
            certs_dirs: vec![dir.path().join("absent"), dir.path().to_owned()],
            ..RegistryOptions::default()
        };
        check_plain(&options, "localhost:5000", false);
        check_plain(&options, "[::1]:5000", false);
        check_plain(&options, "localhost:5001", true);
        check_plain(&options, "127.0.0.1:5000", true);
        let named = RegistryOptions {
            plain_http_registries: vec!["localhost:5000".to_owned()],
            ..options
        };
        check_plain(&named, "localhost:5000", true);
    }

    /// A certs.d entry that cannot be read as a directory is an error
    /// naming it (as docker's), not a registry silently left without its CA.
    #[test]
    fn an_unreadable_certs_d_entry_is_an_error() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("registry.lan:5000"), "not a directory").unwrap();
        let options = RegistryOptions {
            certs_dirs: vec![dir.path().to_owned()],
            ..RegistryOptions::default()
        };
        let error = options.http_client("registry.lan:5000").err().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "invalid certs.d file `{}/registry.lan:5000`: cannot read the directory: Not a \
                 directory (os error 20)",
                dir.path().display()
            )
        );
        // Absent is fine: no TLS files for that registry.
        assert!(options.http_client("other.lan:5000").is_ok());
    }

    /// The usual wrong files given as a CA: a DER certificate, a key.
    #[test]
    fn a_ca_file_that_is_not_pem_says_what_it_looks_like() {
        use base64::Engine as _;
        let pem = slipway_testbed::TestCa::new().cert_pem();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let error = |bytes: &[u8]| parse_pem_certificates(bytes).err().unwrap_or_default();
        assert_eq!(
            error(&der),
            "holds no `-----BEGIN CERTIFICATE-----` block; give a PEM file of CA certificates \
             (it looks like a DER certificate: convert it with `openssl x509 -inform der -in FILE \
             -out FILE.pem`)"
        );
        assert_eq!(
            error(b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"),
            "holds no `-----BEGIN CERTIFICATE-----` block; give a PEM file of CA certificates \
             (it holds a private key: a client certificate's key goes in a certs.d directory as \
             `<name>.key`)"
        );
        assert_eq!(
            error(b"not a certificate"),
            "holds no `-----BEGIN CERTIFICATE-----` block; give a PEM file of CA certificates"
        );
        assert_eq!(
            error(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
            "not a PEM certificate file: invalid certificate encoding"
        );
    }

    /// An empty item (an unset CI variable, a trailing comma) stands for
    /// nothing: never the working directory as a certs.d, never an error.
    #[test]
    fn empty_list_items_are_skipped() {
        let args = RegistryArgs {
            plain_http: false,
            plain_http_registries: vec![
                parse_registry_host("").unwrap(),
                parse_registry_host("registry.lan:5000").unwrap(),
            ],
            ca_certs: vec![parse_ca_cert("").unwrap()],
            certs_dirs: vec![parse_certs_dir("").unwrap(), parse_certs_dir(" ").unwrap()],
        };
        let options = RegistryOptions::for_tool("test", &args);
        assert_eq!(options.plain_http_registries, ["registry.lan:5000"]);
        assert!(options.ca_certs.is_empty());
        assert_eq!(options.certs_dirs, default_certs_dirs());
        let args = RegistryArgs {
            certs_dirs: vec![parse_certs_dir("").unwrap(), PathBuf::from("/certs.d")],
            ..RegistryArgs::default()
        };
        assert_eq!(
            RegistryOptions::for_tool("test", &args).certs_dirs,
            [PathBuf::from("/certs.d")]
        );
    }
}
