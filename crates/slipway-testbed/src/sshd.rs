//! An OpenSSH server on a free loopback port, with fresh keys, for deploy tests.
//!
//! sshd runs in the foreground (`-D`) as our child with its own config, a
//! new ed25519 host key and an `authorized_keys` holding a new ed25519 client
//! key; only key authentication is allowed. The remote user is the current
//! user (root here), so a script run over SSH can use a test bed dockerd
//! through its `DOCKER_HOST`.
//!
//! Every command runs through the user's login shell. On this machine root's
//! `~/.bashrc` runs `pyenv init`, which adds about 200 ms to every command
//! over SSH; the test bed leaves it alone, so keep the number of SSH
//! round trips in a test small.

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running sshd; dropping it stops the server and removes its keys and config.
#[derive(Debug)]
pub struct Sshd {
    port: u16,
    child: Option<Child>,
    pid: u32,
    binary: PathBuf,
    ssh: PathBuf,
    user: String,
    dir: tempfile::TempDir,
    /// `(private, at)`: sshd runs in its own mount namespace where `private` is bind-mounted on `at`.
    private_mount: Option<(PathBuf, PathBuf)>,
}

impl Sshd {
    /// Generates keys, starts sshd on a free `127.0.0.1` port and waits (up
    /// to 20 s) until it sends its `SSH-2.0-` banner.
    ///
    /// Panics if `sshd` (Debian package `openssh-server`) or `ssh` and
    /// `ssh-keygen` (`openssh-client`) are missing, or sshd does not start.
    pub fn start() -> Sshd {
        Sshd::launch("", None)
    }

    /// [`Sshd::start`] with `extra` appended to its `sshd_config`, e.g.
    /// `"AllowTcpForwarding no\n"` for a hardened host.
    pub fn start_with(extra: &str) -> Sshd {
        Sshd::launch(extra, None)
    }

    /// Like [`Sshd::start`], but sshd (and every session) runs in a mount
    /// namespace of its own where the existing directory `at` shows a
    /// private directory, [`Sshd::private_dir`]: several sshds on one
    /// machine then act as hosts with a file system each under `at`.
    /// The mount lives as long as sshd and its sessions (`unshare`, package
    /// `util-linux`).
    pub fn start_with_private_dir(at: &Path) -> Sshd {
        Sshd::launch("", Some(at.to_path_buf()))
    }

    /// The directory this sshd's sessions see at the `at` of
    /// [`Sshd::start_with_private_dir`].
    pub fn private_dir(&self) -> PathBuf {
        self.dir.path().join("private")
    }

    fn launch(extra: &str, private_at: Option<PathBuf>) -> Sshd {
        let binary = crate::require("/usr/sbin/sshd", "openssh-server");
        let ssh = crate::require("ssh", "openssh-client");
        let keygen = crate::require("ssh-keygen", "openssh-client");
        // sshd refuses to start without its privilege separation directory.
        fs_err::create_dir_all("/run/sshd").unwrap_or_else(|e| panic!("{e}"));
        let dir = crate::short_temp_dir();
        let root = dir.path();
        for (key, comment) in [
            ("host_key", "testbed-host"),
            ("client_key", "testbed-client"),
        ] {
            crate::run(
                Command::new(&keygen)
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                    .arg(root.join(key)),
                &String::new,
            );
        }
        fs_err::copy(root.join("client_key.pub"), root.join("authorized_keys"))
            .unwrap_or_else(|e| panic!("{e}"));
        let port = crate::free_port();
        // No AcceptEnv line: the client's environment is never accepted.
        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {root}/host_key\n\
             AuthorizedKeysFile {root}/authorized_keys\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             PermitUserEnvironment no\n\
             StrictModes no\n\
             UsePAM no\n\
             PidFile {root}/sshd.pid\n\
             LogLevel VERBOSE\n\
             Subsystem sftp internal-sftp\n\
             {extra}",
            root = root.display()
        );
        fs_err::write(root.join("sshd_config"), config).unwrap_or_else(|e| panic!("{e}"));
        let public_key =
            fs_err::read_to_string(root.join("host_key.pub")).unwrap_or_else(|e| panic!("{e}"));
        let public_key = key_without_comment(&public_key);
        fs_err::write(
            root.join("known_hosts"),
            format!("[127.0.0.1]:{port} {public_key}\n"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let fingerprint = crate::run(
            Command::new(&keygen)
                .arg("-lf")
                .arg(root.join("host_key.pub")),
            &String::new,
        );
        let fingerprint = String::from_utf8_lossy(&fingerprint.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("`ssh-keygen -lf` printed no fingerprint"))
            .to_owned();
        fs_err::write(root.join("host_key.fingerprint"), fingerprint)
            .unwrap_or_else(|e| panic!("{e}"));
        let user = crate::run(Command::new("id").arg("-un"), &String::new);
        let user = String::from_utf8_lossy(&user.stdout).trim().to_owned();
        let mut sshd = Sshd {
            port,
            child: None,
            pid: 0,
            binary,
            ssh,
            user,
            dir,
            private_mount: None,
        };
        if let Some(at) = private_at {
            let private = sshd.private_dir();
            fs_err::create_dir_all(&private).unwrap_or_else(|e| panic!("{e}"));
            sshd.private_mount = Some((private, at));
        }
        sshd.spawn();
        sshd
    }

    /// Starts the process and waits until it sends its banner.
    fn spawn(&mut self) {
        let root = self.dir.path();
        let log = self.log_path();
        let (stdout, stderr) = crate::log_stdio(&log);
        let mut command = match &self.private_mount {
            None => Command::new(&self.binary),
            Some((private, at)) => {
                let unshare = crate::require("unshare", "util-linux");
                let mut command = Command::new(unshare);
                // unshare and sh exec, so the PID is sshd's.
                command
                    .args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg(r#"mount --bind "$1" "$2" && shift 2 && exec "$@""#)
                    .arg("sh")
                    .arg(private)
                    .arg(at)
                    .arg(&self.binary);
                command
            }
        };
        let mut child = command
            .arg("-f")
            .arg(root.join("sshd_config"))
            .arg("-E")
            .arg(&log)
            .arg("-D")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", self.binary.display()));
        self.pid = child.id();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        crate::wait_ready("sshd", &mut child, &log, Duration::from_secs(20), || {
            reads_banner(addr)
        });
        self.child = Some(child);
    }

    /// The port sshd listens on (the same after [`Sshd::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host to connect to: `127.0.0.1`.
    pub fn host(&self) -> String {
        "127.0.0.1".to_owned()
    }

    /// The user to log in as: the current user (`root` on the test machines).
    pub fn user(&self) -> String {
        self.user.clone()
    }

    /// The PID of the sshd listener process (of the last one, once stopped).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The client's private key file (OpenSSH format, no passphrase).
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// The client's private key text, for tests that pass a key in an env var.
    pub fn client_key_pem(&self) -> String {
        fs_err::read_to_string(self.client_key_path()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The host's public key as `ssh-ed25519 AAAA…` (no comment).
    pub fn host_public_key(&self) -> String {
        let key = fs_err::read_to_string(self.dir.path().join("host_key.pub"))
            .unwrap_or_else(|e| panic!("{e}"));
        key_without_comment(&key)
    }

    /// The host key's fingerprint as `ssh-keygen -lf` prints it: `SHA256:…`.
    pub fn host_key_fingerprint(&self) -> String {
        fs_err::read_to_string(self.dir.path().join("host_key.fingerprint"))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A known_hosts file with the single line `[127.0.0.1]:PORT ssh-ed25519 …`.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// Everything sshd has logged (all starts), for debugging a failed test.
    pub fn log(&self) -> String {
        crate::read_log(&self.log_path())
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    /// An `ssh` client command for this server, ready for `.arg("echo hi")`.
    ///
    /// It ignores the user's `~/.ssh/config` (`-F /dev/null`), logs in as
    /// [`Sshd::user`] with the client key only, trusts exactly the host key
    /// in [`Sshd::known_hosts_path`] (`StrictHostKeyChecking=yes`) and never
    /// prompts (`BatchMode=yes`).
    pub fn ssh(&self) -> Command {
        self.ssh_with_known_hosts(&self.known_hosts_path())
    }

    /// Like [`Sshd::ssh`], but trusting the host keys in `known_hosts`, for
    /// tests of host key checking.
    pub fn ssh_with_known_hosts(&self, known_hosts: &Path) -> Command {
        let mut command = Command::new(&self.ssh);
        command
            .args(["-F", "/dev/null", "-p", &self.port.to_string(), "-i"])
            .arg(self.client_key_path())
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=10",
            ])
            .arg(format!("{}@127.0.0.1", self.user))
            .stdin(Stdio::null());
        command
    }

    /// Stops sshd (SIGTERM, then SIGKILL after 5 s) and waits for it to exit.
    /// Sessions already open keep running until their client leaves. Does
    /// nothing if it is already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::terminate(&mut child, Duration::from_secs(5));
        }
    }

    /// Stops sshd if it runs, then starts it again on the same port with the
    /// same keys, and waits until it is ready.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `type base64` of an OpenSSH public key line, without its comment.
fn key_without_comment(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `addr` accepts a connection and sends an `SSH-2.0-` banner.
fn reads_banner(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .is_err()
    {
        return false;
    }
    let mut banner = [0u8; 8];
    stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-2.0-"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(line: &str, expected: &str) {
        assert_eq!(key_without_comment(line), expected, "`{line}`");
    }

    #[test]
    fn key_without_comment_keeps_type_and_key() {
        check("ssh-ed25519 AAAAC3 root@host\n", "ssh-ed25519 AAAAC3");
        check("ssh-ed25519 AAAAC3", "ssh-ed25519 AAAAC3");
        check(
            "ssh-ed25519 AAAAC3 a comment with spaces",
            "ssh-ed25519 AAAAC3",
        );
    }
}
