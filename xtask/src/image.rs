//! `cargo xtask image`: the container image of packaging/Dockerfile — the
//! nine tools and `slipway` FROM scratch, with the glibc libraries they link
//! (found with ldd on this machine), git and its libraries, and the CA
//! certificates — and its check in `cargo xtask ci`: built on the test
//! bed's dockerd, a tool run from inside it lists a repository of the test
//! bed's registry.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};
use slipway_testbed::{Dockerd, Registry};
use xshell::{Shell, cmd};

use crate::{dist, project_root, target_dir};

/// Flags of `cargo xtask image`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The directory holding the built binaries [default: the target dir's `release/`]
    #[arg(long, value_name = "DIR")]
    pub(crate) bin_dir: Option<PathBuf>,
    /// The image reference to tag the build with
    #[arg(long, value_name = "REF", default_value = "slipway:latest")]
    pub(crate) tag: String,
}

/// `cargo xtask image`: prepares the context and builds it with `docker`.
pub(crate) fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    let bin_dir = args
        .bin_dir
        .clone()
        .unwrap_or_else(|| target_dir().join("release"));
    let context = context(sh, &bin_dir)?;
    let tag = &args.tag;
    cmd!(sh, "docker build --tag {tag} {context}")
        .run()
        .context("`docker build` of packaging/Dockerfile failed")?;
    Ok(())
}

/// Writes the build context (`rootfs/` and the Dockerfile) for the binaries
/// in `bin_dir`; returns its directory.
pub(crate) fn context(sh: &Shell, bin_dir: &Path) -> anyhow::Result<PathBuf> {
    let context = target_dir().join("image-context");
    if context.exists() {
        fs_err::remove_dir_all(&context)?;
    }
    let rootfs = context.join("rootfs");
    let bin = rootfs.join("usr/local/bin");
    fs_err::create_dir_all(&bin)?;
    fs_err::create_dir_all(rootfs.join("tmp"))?;
    fs_err::create_dir_all(rootfs.join("work"))?;
    fs_err::create_dir_all(rootfs.join("root"))?;
    let mut linked = Vec::new();
    for binary in dist::binaries() {
        let from = bin_dir.join(binary);
        if !from.is_file() {
            bail!(
                "`{}` does not exist: build the binaries first (`cargo xtask dist` builds them in release mode)",
                from.display()
            );
        }
        fs_err::copy(&from, bin.join(binary))?;
        linked.push(from);
        let generate = |args: &[&str]| cmd!(sh, "{bin}/{binary} {args...}").quiet().read();
        for (shell, path) in [
            (
                "bash",
                format!("usr/share/bash-completion/completions/{binary}"),
            ),
            ("zsh", format!("usr/share/zsh/vendor-completions/_{binary}")),
            (
                "fish",
                format!("usr/share/fish/vendor_completions.d/{binary}.fish"),
            ),
        ] {
            write(
                &rootfs.join(path),
                &generate(&["--generate-completions", shell])?,
            )?;
        }
        write(
            &rootfs.join(format!("usr/share/man/man1/{binary}.1")),
            &generate(&["--generate-man"])?,
        )?;
    }
    let git = PathBuf::from("/usr/bin/git");
    ensure!(
        git.is_file(),
        "`/usr/bin/git` is missing: install the Debian package `git`"
    );
    copy_host_file(&git, &rootfs)?;
    linked.push(git);
    for path in linked {
        let text = cmd!(sh, "ldd {path}").quiet().read()?;
        for library in text.lines().filter_map(library_path) {
            copy_host_file(Path::new(library), &rootfs)?;
        }
    }
    let certificates = Path::new("/etc/ssl/certs/ca-certificates.crt");
    ensure!(
        certificates.is_file(),
        "`{}` is missing: install the Debian package `ca-certificates`",
        certificates.display()
    );
    copy_host_file(certificates, &rootfs)?;
    fs_err::copy(
        project_root().join("packaging/Dockerfile"),
        context.join("Dockerfile"),
    )?;
    Ok(context)
}

/// The file an ldd line names: `libc.so.6 => /lib/…/libc.so.6 (0x…)` or
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`.
fn library_path(line: &str) -> Option<&str> {
    let line = line.trim();
    let path = match line.split_once("=>") {
        Some((_, right)) => right.trim(),
        None => line,
    };
    path.split_whitespace()
        .next()
        .filter(|p| p.starts_with('/'))
}

/// Copies a file of this machine to the same path under `rootfs`, following
/// symlinks (the library's real bytes under the name the loader asks for).
fn copy_host_file(path: &Path, rootfs: &Path) -> anyhow::Result<()> {
    let relative = path.strip_prefix("/").unwrap_or(path);
    let to = rootfs.join(relative);
    if let Some(parent) = to.parent() {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::copy(path, &to)?;
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::write(path, format!("{text}\n"))?;
    Ok(())
}

/// `cargo xtask ci`'s check: the image of the debug build, built on the test
/// bed's dockerd; `img-tag ls` from inside it against the test bed's
/// registry must list the tag the test bed pushed.
pub(crate) fn check(sh: &Shell) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let busybox = dockerd.base_image(&registry);
    let context = context(sh, &target_dir().join("debug"))?;
    let docker = dockerd.client_path();
    let host = dockerd.host();
    let image = format!("{}/slipway/tools:ci", registry.host());
    cmd!(
        sh,
        "{docker} --host {host} build --network=none --tag {image} {context}"
    )
    .quiet()
    .ignore_stdout()
    .run()
    .context("`docker build` of packaging/Dockerfile failed")?;
    let repository = busybox
        .rsplit_once(':')
        .map_or(busybox.as_str(), |(repository, _)| repository);
    let listed = cmd!(
        sh,
        "{docker} --host {host} run --rm --network host {image} img-tag ls {repository}"
    )
    .read()
    .context("`img-tag ls` inside the image failed")?;
    ensure!(
        listed.lines().any(|line| line.trim() == "1"),
        "`img-tag ls {repository}` inside the image printed `{listed}`, not the tag `1`"
    );
    let version = cmd!(
        sh,
        "{docker} --host {host} run --rm {image} slipway --version"
    )
    .read()
    .context("`slipway --version` inside the image failed")?;
    eprintln!(
        "image: `img-tag ls {repository}` from inside {image} listed `1`; {version}; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let _ = cmd!(sh, "{docker} --host {host} rmi {image}")
        .quiet()
        .ignore_stdout()
        .run();
    drop(dockerd);
    drop(registry);
    Ok(())
}
