//! A CNCF distribution registry (`docker-registry serve`) on a free loopback port.
//!
//! Plain HTTP on `127.0.0.1`, which docker treats as an allowed insecure
//! registry; skopeo needs `--tls-verify=false`. Deletes are enabled, so
//! tests can delete manifests through the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How a registry checks its clients.
enum Auth<'a> {
    None,
    Htpasswd(&'a str, &'a str),
    Token(&'a crate::TokenIssuer),
}

/// A running `docker-registry`; dropping it stops the process and removes its storage.
#[derive(Debug)]
pub struct Registry {
    port: u16,
    child: Option<Child>,
    pid: u32,
    /// Whether `GET /v2/` answers 401 (auth configured) rather than 200.
    is_authenticated: bool,
    /// Whether it serves TLS (then a plain `GET /v2/` answers 400).
    is_tls: bool,
    binary: PathBuf,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free `127.0.0.1` port with storage in a new
    /// temp dir, and waits (up to 20 s) until `GET /v2/` answers 200.
    ///
    /// Panics if `docker-registry` is not installed (Debian package
    /// `docker-registry`) or the registry does not become ready.
    pub fn start() -> Registry {
        Registry::start_inner(Auth::None)
    }

    /// Starts a registry like [`Registry::start`] that accepts only `user`
    /// with `password` (HTTP Basic, distribution's `htpasswd` auth, bcrypt
    /// hash made here); anonymous and wrong credentials get 401. Ready when
    /// `GET /v2/` answers 401.
    ///
    /// distribution 2.8 accepts htpasswd auth over plain HTTP, so loopback
    /// clients need no TLS (skopeo: `--tls-verify=false --creds user:pw`).
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Registry::start_inner(Auth::Htpasswd(user, password))
    }

    /// Starts a registry like [`Registry::start`] with distribution's
    /// `auth: token`: it challenges with `Bearer realm="<issuer>/token",
    /// service="slipway-testbed-registry"` and verifies every token itself
    /// against `issuer`'s certificate (its `rootcertbundle`), issuer name,
    /// audience, expiry and granted access. Ready when `GET /v2/` answers 401.
    pub fn start_with_token(issuer: &crate::TokenIssuer) -> Registry {
        Registry::start_inner(Auth::Token(issuer))
    }

    fn start_inner(auth: Auth<'_>) -> Registry {
        let binary = crate::require("docker-registry", "docker-registry");
        let dir = crate::short_temp_dir();
        let port = crate::free_port();
        let storage = dir.path().join("storage");
        fs_err::create_dir_all(&storage).unwrap_or_else(|e| panic!("{e}"));
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        let is_authenticated = !matches!(auth, Auth::None);
        if let Auth::Token(issuer) = auth {
            let bundle = dir.path().join("rootcertbundle.pem");
            fs_err::write(&bundle, issuer.cert_pem()).unwrap_or_else(|e| panic!("{e}"));
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                 rootcertbundle: {}\n",
                issuer.realm(),
                crate::token_issuer::SERVICE,
                crate::token_issuer::ISSUER,
                bundle.display()
            ));
        }
        if let Auth::Htpasswd(user, password) = auth {
            // The minimum cost keeps each request's hash check fast; the
            // registry checks every request's password.
            let hash = bcrypt::hash(password, 4).unwrap_or_else(|e| panic!("bcrypt: {e}"));
            let htpasswd = dir.path().join("htpasswd");
            fs_err::write(&htpasswd, format!("{user}:{hash}\n")).unwrap_or_else(|e| panic!("{e}"));
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: slipway-testbed\n    path: {}\n",
                htpasswd.display()
            ));
        }
        fs_err::write(dir.path().join("registry.yml"), config).unwrap_or_else(|e| panic!("{e}"));
        let mut registry = Registry {
            port,
            child: None,
            pid: 0,
            is_authenticated,
            is_tls: false,
            binary,
            dir,
        };
        registry.spawn();
        registry
    }

    /// Starts the process and waits until it is ready.
    fn spawn(&mut self) {
        let log = self.log_path();
        let (stdout, stderr) = crate::log_stdio(&log);
        let mut child = Command::new(&self.binary)
            .arg("serve")
            .arg(self.dir.path().join("registry.yml"))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", self.binary.display()));
        self.pid = child.id();
        let addr = self.addr();
        let ready_status = if self.is_tls {
            // Go's answer to plain HTTP on a TLS port: "Client sent an
            // HTTP request to an HTTPS server".
            400
        } else if self.is_authenticated {
            401
        } else {
            200
        };
        crate::wait_ready(
            "docker-registry",
            &mut child,
            &log,
            Duration::from_secs(20),
            || crate::http_status(addr, "/v2/").is_ok_and(|status| status == ready_status),
        );
        self.child = Some(child);
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The same address written `127.1:PORT`: it resolves to 127.0.0.1
    /// everywhere (the C library's short form of an IPv4 address) without
    /// touching /etc/hosts, yet it is not a name clients take for loopback,
    /// so Slipway speaks HTTPS to it unless told otherwise: a stand-in for
    /// `registry.lan:5000`.
    pub fn non_loopback_host(&self) -> String {
        format!("127.1:{}", self.port)
    }

    /// A second registry process serving this one's storage over TLS, on
    /// its own free port, with a server certificate `ca` signs for
    /// `127.0.0.1` and `localhost`; with `require_client_cert`, only
    /// clients presenting a certificate `ca` signed are served (mutual
    /// TLS). Reach it as [`Registry::non_loopback_host`]: loopback names
    /// get plain HTTP. Ready when a plain `GET /v2/` answers 400.
    pub fn tls_front(&self, ca: &crate::TestCa, require_client_cert: bool) -> Registry {
        let binary = crate::require("docker-registry", "docker-registry");
        let dir = crate::short_temp_dir();
        let port = crate::free_port();
        let (cert, key) = ca
            .server(&["127.0.0.1", "localhost"])
            .write(dir.path(), "server", "pem");
        let ca_file = dir.path().join("ca.pem");
        fs_err::write(&ca_file, ca.cert_pem()).unwrap_or_else(|e| panic!("{e}"));
        let client_cas = if require_client_cert {
            format!("    clientcas:\n      - {}\n", ca_file.display())
        } else {
            String::new()
        };
        let config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n{client_cas}",
            self.storage_dir().display(),
            cert.display(),
            key.display()
        );
        fs_err::write(dir.path().join("registry.yml"), config).unwrap_or_else(|e| panic!("{e}"));
        let mut registry = Registry {
            port,
            child: None,
            pid: 0,
            is_authenticated: false,
            is_tls: true,
            binary,
            dir,
        };
        registry.spawn();
        registry
    }

    /// `http://127.0.0.1:PORT`, the base URL of the registry API.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The socket address the registry listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The port the registry listens on (the same after [`Registry::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PID of the registry process (of the last one, once stopped).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The directory holding the registry's blobs and manifests.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Everything the registry has logged (all starts), for debugging a failed test.
    pub fn log(&self) -> String {
        crate::read_log(&self.log_path())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// Stops the registry (SIGTERM, then SIGKILL after 5 s) and waits for it
    /// to exit; the storage stays. Does nothing if it is already stopped.
    ///
    /// Fault tests call this in the middle of an operation.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::terminate(&mut child, Duration::from_secs(5));
        }
    }

    /// Stops the registry if it runs, then starts it again on the same port
    /// with the same storage, and waits until it is ready.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
