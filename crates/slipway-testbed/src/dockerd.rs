//! A private Docker engine (`dockerd`) with everything in one short temp dir.
//!
//! The daemon has no networking of its own (`--bridge=none`, no iptables):
//! `RUN` steps need `docker build --network=none`, and containers run with
//! `--network host`. Storage is vfs, which needs no kernel overlay support.
//! Its socket, data root, exec root, pidfile and log all live in
//! `/tmp/tbXXXXXX`, kept short because unix socket paths are limited to 108
//! bytes.
//!
//! The client is Debian's 20.10 `/usr/bin/docker`, not whatever `docker` is
//! first on `PATH`: this machine also has a Docker 28 client without the
//! buildx plugin, which refuses `DOCKER_BUILDKIT=1`, while the 20.10 client
//! uses the daemon's built-in BuildKit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Debian's docker client, which speaks to the daemon's built-in BuildKit.
const DOCKER_CLIENT: &str = "/usr/bin/docker";

/// The commands the base image links to `/bin/busybox`.
const BUSYBOX_COMMANDS: &[&str] = &["sh", "echo", "cat", "ls", "httpd", "sleep", "touch", "wget"];

/// A running private `dockerd`; dropping it stops the daemon, its containerd
/// and containers, unmounts what it mounted and removes its temp dir.
#[derive(Debug)]
pub struct Dockerd {
    child: Option<Child>,
    pid: u32,
    client: PathBuf,
    dir: Option<tempfile::TempDir>,
    /// The base image pushed to each registry, by registry host.
    base_images: Mutex<HashMap<String, String>>,
    /// Whether [`Dockerd::swarm_init`] made this daemon a swarm manager.
    is_swarm: Mutex<bool>,
}

impl Dockerd {
    /// Starts a private dockerd and waits (up to 60 s) until `docker version`
    /// through its socket answers.
    ///
    /// Panics if `dockerd` or `/usr/bin/docker` is missing (Debian package
    /// `docker.io`), or the daemon does not become ready; the panic message
    /// ends with the daemon's last log lines.
    pub fn start() -> Dockerd {
        let binary = crate::require("dockerd", "docker.io");
        let client = crate::require(DOCKER_CLIENT, "docker.io");
        crate::require("containerd", "docker.io");
        let dir = crate::short_temp_dir();
        let root = dir.path();
        fs_err::write(root.join("daemon.json"), "{}\n").unwrap_or_else(|e| panic!("{e}"));
        fs_err::create_dir_all(root.join("client")).unwrap_or_else(|e| panic!("{e}"));
        let log = root.join("dockerd.log");
        let (stdout, stderr) = crate::log_stdio(&log);
        let mut child = Command::new(&binary)
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .args(["--storage-driver=vfs", "--shutdown-timeout=2"])
            // Our own (empty) daemon.json, so the machine's
            // /etc/docker/daemon.json cannot change this daemon.
            .arg("--config-file")
            .arg(root.join("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", root.join("d.sock").display()))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("d.pid"))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", binary.display()));
        let mut dockerd = Dockerd {
            pid: child.id(),
            child: None,
            client,
            dir: Some(dir),
            base_images: Mutex::new(HashMap::new()),
            is_swarm: Mutex::new(false),
        };
        let socket = dockerd.dir().join("d.sock");
        let mut version = dockerd.docker();
        version
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        crate::wait_ready("dockerd", &mut child, &log, Duration::from_secs(60), || {
            socket.exists() && version.status().is_ok_and(|s| s.success())
        });
        dockerd.child = Some(child);
        dockerd
    }

    fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the temp dir is only taken by drop")
            .path()
    }

    /// The `DOCKER_HOST` value for this daemon: `unix:///tmp/tbXXXXXX/d.sock`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir().join("d.sock").display())
    }

    /// The PID of the dockerd process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The daemon's temp dir (socket, data root, exec root, log); removed on drop.
    pub fn temp_dir(&self) -> PathBuf {
        self.dir().to_path_buf()
    }

    /// Everything dockerd has logged, for debugging a failed test.
    pub fn log(&self) -> String {
        crate::read_log(&self.dir().join("dockerd.log"))
    }

    /// A `docker` command for this daemon, ready for `.args([...])`.
    ///
    /// It is Debian's 20.10 client (`/usr/bin/docker`) with `DOCKER_HOST` set
    /// to this daemon, `DOCKER_BUILDKIT=1`, and `DOCKER_CONFIG` pointing to
    /// an empty directory of this test bed, so the user's `~/.docker` plays
    /// no part.
    pub fn docker(&self) -> Command {
        let mut command = Command::new(&self.client);
        command
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_BUILDKIT", "1")
            .env("DOCKER_CONFIG", self.dir().join("client"));
        command
    }

    /// Makes this daemon a one-node swarm manager (`docker swarm init
    /// --advertise-addr 127.0.0.1` on a free loopback port), once; later
    /// calls do nothing. Services on it need the `host` network (the
    /// daemon has no bridge and no overlay ingress): in a compose file,
    /// `networks: [hostnet]` with `hostnet: {external: true, name: host}`.
    /// Dropping the daemon leaves the swarm and unmounts the `nsfs` mount
    /// that leaving leaves under the exec root.
    ///
    /// Panics if `swarm init` fails, with its output and dockerd's log.
    pub fn swarm_init(&self) {
        let mut is_swarm = self
            .is_swarm
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *is_swarm {
            return;
        }
        let port = crate::free_port();
        let log_tail = || format!("last lines of dockerd's log:\n{}", self.log_tail());
        crate::run(
            self.docker()
                .args(["swarm", "init", "--advertise-addr", "127.0.0.1"])
                .arg("--listen-addr")
                .arg(format!("127.0.0.1:{port}")),
            &log_tail,
        );
        *is_swarm = true;
    }

    /// The path of the docker client [`Dockerd::docker`] runs (`/usr/bin/docker`).
    pub fn client_path(&self) -> PathBuf {
        self.client.clone()
    }

    /// A busybox-static image pushed to `registry` as
    /// `<registry host>/base/busybox:1`; returns that reference.
    ///
    /// The image holds `/bin/busybox` with `sh`, `echo`, `cat`, `ls`,
    /// `httpd`, `sleep`, `touch` and `wget` linked to it, an empty `/tmp`,
    /// and `CMD ["sh"]`. It is built with `docker import`, so no public
    /// registry is needed. The first call per registry builds and pushes it;
    /// later calls return the cached reference.
    ///
    /// Panics if `/bin/busybox` is missing or not statically linked (Debian
    /// package `busybox-static`), or import or push fail.
    pub fn base_image(&self, registry: &crate::Registry) -> String {
        let mut cache = self
            .base_images
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(image) = cache.get(&registry.host()) {
            return image.clone();
        }
        let image = format!("{}/base/busybox:1", registry.host());
        let tar = self.busybox_rootfs_tar();
        let log_tail = || format!("last lines of dockerd's log:\n{}", self.log_tail());
        crate::run(
            self.docker()
                .args(["import", "--change", "CMD [\"sh\"]"])
                .arg(&tar)
                .arg(&image),
            &log_tail,
        );
        crate::run(self.docker().args(["push", &image]), &log_tail);
        cache.insert(registry.host(), image.clone());
        image
    }

    /// Builds the busybox rootfs in the temp dir and returns the path of its tar.
    fn busybox_rootfs_tar(&self) -> PathBuf {
        let rootfs = self.dir().join("busybox-rootfs");
        let tar = self.dir().join("busybox-rootfs.tar");
        if tar.exists() {
            return tar;
        }
        let busybox = crate::require("/bin/busybox", "busybox-static");
        let contents = fs_err::read(&busybox).unwrap_or_else(|e| panic!("{e}"));
        if !is_static_elf(&contents) {
            panic!(
                "`{}` is dynamically linked and cannot run in an empty image: \
                 install the Debian package `busybox-static`",
                busybox.display()
            );
        }
        fs_err::create_dir_all(rootfs.join("bin")).unwrap_or_else(|e| panic!("{e}"));
        fs_err::create_dir_all(rootfs.join("tmp")).unwrap_or_else(|e| panic!("{e}"));
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs_err::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))
                .unwrap_or_else(|e| panic!("{e}"));
            fs_err::write(rootfs.join("bin/busybox"), &contents).unwrap_or_else(|e| panic!("{e}"));
            fs_err::set_permissions(
                rootfs.join("bin/busybox"),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        for command in BUSYBOX_COMMANDS {
            let link = rootfs.join("bin").join(command);
            std::os::unix::fs::symlink("busybox", &link)
                .unwrap_or_else(|e| panic!("cannot create symlink `{}`: {e}", link.display()));
        }
        // Fixed owners and times, so the layer is the same bytes every time.
        crate::run(
            Command::new("tar")
                .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0"])
                .args(["--numeric-owner", "-C"])
                .arg(&rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
            &String::new,
        );
        tar
    }

    fn log_tail(&self) -> String {
        crate::tail(&self.dir().join("dockerd.log"), 30)
    }

    /// Stops dockerd and everything it started, unmounts what it mounted
    /// under the temp dir, and removes the temp dir.
    fn shut_down(&mut self) {
        let is_swarm = *self
            .is_swarm
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if is_swarm && self.child.is_some() && self.dir.is_some() {
            // Leaving removes the stacks' services and tasks with the node;
            // bounded, since a wedged daemon must not stall the drop.
            let mut leave = self.docker();
            leave
                .args(["swarm", "leave", "--force"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(mut leaving) = leave.spawn() {
                let deadline = Instant::now() + Duration::from_secs(20);
                while leaving.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = leaving.kill();
                let _ = leaving.wait();
            }
        }
        let Some(dir) = self.dir.take() else {
            return;
        };
        if let Some(mut child) = self.child.take() {
            // On SIGTERM dockerd stops each container with its own stop
            // timeout (10 s unless set) before it exits; killing the
            // containers' processes first makes that immediate. They are the
            // processes under containerd's shims that do not name the temp
            // dir themselves.
            for (pid, _) in processes_under(dir.path())
                .into_iter()
                .filter(|&(_, names_dir)| !names_dir)
            {
                crate::signal(pid, "KILL");
            }
            // dockerd stops its containerd before exiting.
            crate::terminate(&mut child, Duration::from_secs(10));
        }
        // After a SIGKILL, containerd, its shims and their containers may
        // outlive dockerd; all of them name the temp dir on their command
        // line or descend from a process that does.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let leftovers = processes_under(dir.path());
            if leftovers.is_empty() || Instant::now() > deadline {
                break;
            }
            for (pid, _) in leftovers {
                crate::signal(pid, "KILL");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for mount in mounts_under(dir.path()) {
            let unmounted = Command::new("umount")
                .arg(&mount)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !unmounted {
                // Busy: detach it now, the kernel finishes when it is free.
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(&mount)
                    .stderr(Stdio::null())
                    .status();
            }
        }
        // Drop must not panic; a leftover dir shows in the drop test.
        let _ = dir.close();
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Whether an ELF file has no `PT_INTERP` program header (no dynamic loader).
///
/// Only 64-bit little-endian ELF is recognised; anything else counts as not
/// static, so the caller asks for busybox-static.
fn is_static_elf(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    // e_ident: magic, class 2 (64-bit), data 1 (little-endian).
    if bytes.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum))
        .all(|i| u32_at(phoff + i * usize::from(phentsize)).is_some_and(|kind| kind != PT_INTERP))
}

/// Processes whose command line names `dir`, and all their descendants, as
/// `(pid, names_dir)`.
fn processes_under(dir: &Path) -> Vec<(u32, bool)> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let mut parents: Vec<(u32, u32)> = Vec::new();
    let mut found: Vec<(u32, bool)> = Vec::new();
    let Ok(entries) = fs_err::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || !crate::process_exists(pid) {
            continue;
        }
        let cmdline = fs_err::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            found.push((pid, true));
        }
        let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut i = 0;
    while i < found.len() {
        let parent = found[i].0;
        for &(pid, ppid) in &parents {
            if ppid == parent && !found.iter().any(|&(seen, _)| seen == pid) {
                found.push((pid, false));
            }
        }
        i += 1;
    }
    found
}

/// Mount points under `dir` from `/proc/mounts`, deepest first; a path with
/// stacked mounts appears once per mount.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mounts = fs_err::read_to_string("/proc/mounts").unwrap_or_default();
    let mut found: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        // /proc/mounts escapes spaces and such as octal; our temp dirs have none.
        .map(PathBuf::from)
        .filter(|path| path.starts_with(dir))
        .collect();
    found.sort_by_key(|path| std::cmp::Reverse(path.components().count()));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(path: &str, expected: bool) {
        let bytes = fs_err::read(path).unwrap();
        assert_eq!(is_static_elf(&bytes), expected, "`{path}`");
    }

    #[test]
    fn is_static_elf_tells_busybox_static_from_dynamic_binaries() {
        check("/bin/busybox", true);
        check("/bin/sh", false);
        check("/etc/passwd", false);
    }
}
