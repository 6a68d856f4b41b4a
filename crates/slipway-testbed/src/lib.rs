//! Real services on loopback for Slipway's integration tests.
//!
//! This crate is a dev-dependency only and uses nothing of ours. Each service
//! runs as a child process on a free `127.0.0.1` port with its files in its
//! own temp dir, and is stopped by PID when its guard drops (panics included):
//!
//! - [`Registry`]: CNCF distribution (`docker-registry`, Debian package
//!   `docker-registry`), plain HTTP, deletes enabled.
//! - [`Dockerd`]: a private Docker engine (`docker.io`) with the vfs storage
//!   driver and no networking of its own; [`Dockerd::docker`] is Debian's
//!   20.10 client with BuildKit, and [`Dockerd::base_image`] imports a
//!   busybox-static image into a [`Registry`] (no public registry needed).
//! - [`Sshd`]: an OpenSSH server (`openssh-server`) with fresh host and client
//!   keys; [`Sshd::ssh`] is a client command that trusts exactly that host key.
//! - [`TcpProxy`]: a loopback TCP proxy that can refuse, delay, throttle or
//!   cut connections, for fault tests.
//! - [`HttpFault`]: a loopback HTTP front that answers chosen requests with a
//!   chosen status (429 with `Retry-After`, 503…) a given number of times,
//!   forwards the rest, and records every request.
//! - [`TokenIssuer`]: a Docker token issuer (ES256 JWTs, OAuth2 password and
//!   refresh-token grants, fault switches) for a registry started with
//!   [`Registry::start_with_token`], which verifies every token.
//! - [`git`]: git history fixtures.
//! - [`cmd`]: the one way tests run a tool binary, [`cmd::Cmd`]: environment
//!   cleared (only `PATH`, a temp `HOME` and what the test sets), stdin
//!   bytes, a bounded wait, and exact assertions on status, stdout and stderr.
//! - [`secrets`]: distinctive secrets and the check that none of their bytes
//!   reached a tool's output or files (with [`Registry::start_with_auth`]).
//!
//! ```no_run
//! let registry = slipway_testbed::Registry::start();
//! let dockerd = slipway_testbed::Dockerd::start();
//! let image = dockerd.base_image(&registry); // "127.0.0.1:PORT/base/busybox:1"
//! let out = dockerd.docker().args(["run", "--rm", "--network", "host", &image, "echo", "hi"])
//!     .output().unwrap();
//! assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
//! ```
//!
//! A missing service binary panics naming the Debian package that provides
//! it (`cargo xtask ci` installs them all); tests never skip. When a service
//! fails to start, the panic message ends with the last lines of its log, and
//! every service has `log()` for debugging a failing test.
//!
//! Tests may run in parallel threads: ports come from [`free_port`], which
//! never hands out the same port twice in one process, and each service has
//! its own temp dir. If the test process itself is killed (not a panic), its
//! services keep running; they are found by their temp dir (`/tmp/tb*`).

pub mod cmd;
pub mod dockerd;
pub mod git;
pub mod http_fault;
pub mod images;
pub mod proxy;
pub mod registry;
pub mod secrets;
pub mod sshd;
pub mod tls;
pub mod token_issuer;

pub use dockerd::Dockerd;
pub use http_fault::{Fault, HttpFault};
pub use proxy::{Mode, TcpProxy};
pub use registry::Registry;
pub use sshd::Sshd;
pub use tls::TestCa;
pub use token_issuer::{IssuerFault, TokenIssuer};

/// The one spelling of [`UNRESOLVABLE_HOST`], so that
/// [`UNRESOLVABLE_REGISTRY`] can be built from it at compile time.
macro_rules! unresolvable {
    () => {
        "no-such-host-with-a-label-longer-than-sixty-three-bytes-xxxxxxxxxxx.invalid"
    };
}

/// A host name that never resolves and whose lookup sends no packet: its
/// first label is longer than DNS allows (63 bytes), so the resolver
/// refuses it before building a query. (`nonexistent.invalid` alone would
/// still be asked of the configured nameserver, off loopback.) Tests of
/// "cannot resolve" errors use it.
pub const UNRESOLVABLE_HOST: &str = unresolvable!();

/// [`UNRESOLVABLE_HOST`] with a registry's port: `host:5000`.
pub const UNRESOLVABLE_REGISTRY: &str = concat!(unresolvable!(), ":5000");

use std::collections::HashSet;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Ports already handed out by [`free_port`] in this process.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A free TCP port on `127.0.0.1`, never the same one twice in this process.
///
/// The port is found by binding `127.0.0.1:0` and reading the port the kernel
/// chose; the listener is closed before returning, so the caller's service
/// can bind it.
pub fn free_port() -> u16 {
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("cannot bind a free port on `127.0.0.1`: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the address of a bound listener: {e}"))
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// The path of `binary`, or a panic naming the Debian `package` that provides it.
///
/// An absolute or relative path with a `/` is checked as is; a bare name is
/// searched in `PATH`, then in `/usr/sbin` and `/sbin` (which are often not
/// in a non-root `PATH`).
pub fn require(binary: &str, package: &str) -> PathBuf {
    let is_executable = |path: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if binary.contains('/') {
        Some(PathBuf::from(binary)).filter(|p| is_executable(p))
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .map(|dir| dir.join(binary))
            .find(|p| is_executable(p))
    };
    found.unwrap_or_else(|| {
        panic!(
            "`{binary}` not found: install the Debian package `{package}` \
             (cargo xtask ci installs it)"
        )
    })
}

/// The line `<binary> --version` must print for a build of this checkout:
/// `<binary> <version> (<short commit> <commit date>)`, from git (as the
/// build does), or `unknown` where git has no answer; `SLIPWAY_BUILD_COMMIT`
/// and `SLIPWAY_BUILD_DATE` win as they do at build time.
pub fn version_line(binary: &str, version: &str) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .filter(|text| !text.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let commit = option_env!("SLIPWAY_BUILD_COMMIT")
        .filter(|c| !c.is_empty())
        .map_or_else(|| git(&["rev-parse", "--short", "HEAD"]), str::to_owned);
    let date = option_env!("SLIPWAY_BUILD_DATE")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || git(&["log", "-1", "--format=%cs", "HEAD"]),
            str::to_owned,
        );
    format!("{binary} {version} ({commit} {date})\n")
}

/// Whether a process with this PID exists and is not a zombie.
///
/// Reads `/proc/PID/stat`; a zombie (state `Z`) counts as gone, because it
/// has ended and only waits to be reaped.
pub fn process_exists(pid: u32) -> bool {
    let Ok(stat) = fs_err::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may
    // itself contain spaces or parentheses.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    state != Some("Z")
}

/// The status code of `GET path` over plain HTTP/1.1 to `addr`.
///
/// A raw request on a `TcpStream` with `Connection: close`; errors are those
/// of connecting, writing or reading (each with a 5 s timeout), or a reply
/// that does not start with an HTTP status line.
pub fn http_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: slipway-testbed\r\n\
         Connection: close\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    line.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("`{addr}` answered `{line}`, not an HTTP status line"),
            )
        })
}

/// The last `lines` lines of the file at `path`, or a note that it cannot be read.
fn tail(path: &Path, lines: usize) -> String {
    match fs_err::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(no log: {e})"),
    }
}

/// The whole file at `path`, or a note that it cannot be read.
fn read_log(path: &Path) -> String {
    fs_err::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"))
}

/// A log file for a child's stdout and stderr, as two `Stdio`s.
fn log_stdio(path: &Path) -> (std::process::Stdio, std::process::Stdio) {
    let file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open log file: {e}"))
        .into_file();
    let copy = file
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot clone log file `{}`: {e}", path.display()));
    (file.into(), copy.into())
}

/// Polls `ready` until it returns true, or panics after `timeout`.
///
/// Between polls it checks that `child` is still running; if it has exited,
/// or the deadline passes (then it kills `child`), the panic names `what`
/// and ends with the last lines of `log`.
fn wait_ready(
    what: &str,
    child: &mut Child,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited during start-up ({status}); last lines of `{}`:\n{}",
                log.display(),
                tail(log, 30)
            );
        }
        if Instant::now() > deadline {
            // Don't leave it running: the caller's guard does not own it yet.
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} not ready after {timeout:?}; last lines of `{}`:\n{}",
                log.display(),
                tail(log, 30)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` (e.g. `TERM`, `KILL`) to `pid` with the `kill` command.
fn signal(pid: u32, signal: &str) {
    // A failure means the process has already gone, which is what we want.
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// Stops `child`: SIGTERM, up to `grace` to exit, then SIGKILL; always reaped.
fn terminate(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    signal(child.id(), "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `command` to completion and returns its output, or panics with its
/// stdout and stderr (and `context`, e.g. a daemon's log tail) if it fails.
fn run(command: &mut Command, context: &dyn Fn() -> String) -> Output {
    let shown = format!("{command:?}");
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    if !output.status.success() {
        panic!(
            "{shown} failed ({})\nstdout:\n{}\nstderr:\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            context()
        );
    }
    output
}

/// A temp dir with a short path under `/tmp` (`/tmp/tbXXXXXX`), so unix
/// socket paths inside it stay far below their 108-byte limit.
fn short_temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tb")
        .tempdir_in("/tmp")
        .unwrap_or_else(|e| panic!("cannot create a temp dir in `/tmp`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(binary: &str, expected: Option<&str>) {
        let found = std::panic::catch_unwind(|| require(binary, "some-package"));
        match (found, expected) {
            (Ok(path), Some(expected)) => assert_eq!(path, Path::new(expected), "`{binary}`"),
            (Err(panic), None) => {
                let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(
                    message.contains("install the Debian package `some-package`"),
                    "`{binary}`: {message}"
                );
            }
            (found, expected) => panic!("`{binary}`: got {found:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn require_finds_absolute_paths_and_names_the_package_when_missing() {
        check("/bin/sh", Some("/bin/sh"));
        check("/nonexistent/sh", None);
        check("slipway-no-such-binary", None);
        check("/etc/passwd", None);
    }

    #[test]
    fn free_port_never_repeats() {
        let ports: HashSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
    }

    #[test]
    fn process_exists_sees_itself_and_not_a_reaped_child() {
        assert!(process_exists(std::process::id()));
        let mut child = Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        assert!(!process_exists(child.id()));
    }
}
