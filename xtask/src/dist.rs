//! `cargo xtask dist`: the release archives a user without Rust installs
//! (docs/install.md): `dist/slipway-<version>-<target>.tar.gz` holding
//! `bin/` (the nine tools and `slipway`), `completions/{bash,zsh,fish}/`,
//! `man/man1/`, README.md and the licence files, and `dist/sha256sums.txt`
//! over every archive in `dist/`.
//!
//! The binaries are built in release mode with vendored libgit2 and
//! OpenSSL (libssh2's) and a static zlib, so what stays dynamic is glibc
//! (libc, libm, libgcc_s, the loader): the step prints `ldd` of each binary.
//! Completions and man pages come from the binaries themselves
//! (`--generate-completions`, `--generate-man`), so `--target` must run on
//! this machine (release.yml builds aarch64 on an arm runner).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use slipway_chain::tools::TOOLS;
use xshell::{Shell, cmd};

use crate::build::nested;
use crate::{cargo, project_root, target_dir};

/// Flags of `cargo xtask dist`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Rust target triple to build for [default: this machine's]
    #[arg(long, value_name = "TRIPLE")]
    pub(crate) target: Option<String>,
}

/// The features that make the binaries carry their C libraries.
const VENDORED: &str = "ssh2/vendored-openssl,git2/vendored-libgit2";

/// Every binary an archive ships.
pub(crate) fn binaries() -> Vec<&'static str> {
    let mut all = TOOLS.to_vec();
    all.push("slipway");
    all
}

pub(crate) fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    let cargo = cargo();
    let host = host_triple(sh)?;
    let target = args.target.clone().unwrap_or_else(|| host.clone());
    if target != host {
        bail!(
            "`--target {target}` is not this machine's (`{host}`): the archive's completions and man pages come from running its binaries; build it on a `{target}` machine (release.yml does, on an arm runner)"
        );
    }
    let mut packages: Vec<String> = TOOLS
        .iter()
        .flat_map(|t| ["-p".to_owned(), (*t).to_owned()])
        .collect();
    packages.extend(["-p".to_owned(), "slipway-chain".to_owned()]);
    eprintln!(
        "xtask dist: building {} for {target} (release, vendored C libraries)",
        binaries().join(", ")
    );
    let started = std::time::Instant::now();
    nested(cmd!(
        sh,
        "{cargo} build --release --locked --bins --target {target} --features {VENDORED} {packages...}"
    ))
    .run()
    .context("cannot build the release binaries")?;
    eprintln!(
        "xtask dist: built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let built = target_dir().join(&target).join("release");
    let archive = package(sh, &built, &target, &project_root().join("dist"))?;
    eprintln!(
        "xtask dist: wrote {} and its line in sha256sums.txt",
        archive.display()
    );
    Ok(())
}

/// Packs the binaries in `built` (built for `target`) as
/// `<dist>/slipway-<version>-<target>.tar.gz` and rewrites
/// `<dist>/sha256sums.txt`; returns the archive's path. `cargo xtask ci`
/// packs its debug build the same way to test packaging/install.sh.
pub(crate) fn package(
    sh: &Shell,
    built: &Path,
    target: &str,
    dist: &Path,
) -> anyhow::Result<PathBuf> {
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("slipway-{version}-{target}");
    let stage = target_dir().join("dist-stage").join(&name);
    if stage.exists() {
        fs_err::remove_dir_all(&stage)?;
    }
    for dir in [
        "bin",
        "completions/bash",
        "completions/zsh",
        "completions/fish",
        "man/man1",
    ] {
        fs_err::create_dir_all(stage.join(dir))?;
    }
    for binary in binaries() {
        let from = built.join(binary);
        let to = stage.join("bin").join(binary);
        fs_err::copy(&from, &to)?;
        let generated = |args: &[&str]| -> anyhow::Result<String> {
            cmd!(sh, "{to} {args...}")
                .quiet()
                .read()
                .with_context(|| format!("`{binary} {}` failed", args.join(" ")))
        };
        fs_err::write(
            stage.join("completions/bash").join(binary),
            generated(&["--generate-completions", "bash"])? + "\n",
        )?;
        fs_err::write(
            stage.join("completions/zsh").join(format!("_{binary}")),
            generated(&["--generate-completions", "zsh"])? + "\n",
        )?;
        fs_err::write(
            stage
                .join("completions/fish")
                .join(format!("{binary}.fish")),
            generated(&["--generate-completions", "fish"])? + "\n",
        )?;
        fs_err::write(
            stage.join("man/man1").join(format!("{binary}.1")),
            generated(&["--generate-man"])? + "\n",
        )?;
        let linked = cmd!(sh, "ldd {to}").quiet().read().unwrap_or_default();
        let libraries: Vec<&str> = linked
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|lib| !lib.starts_with("linux-vdso"))
            .collect();
        eprintln!("xtask dist: {binary} links {}", libraries.join(" "));
    }
    copy_docs(&project_root(), &stage)?;

    fs_err::create_dir_all(dist)?;
    let archive = dist.join(format!("{name}.tar.gz"));
    let parent = stage.parent().unwrap_or(Path::new("."));
    // Reproducible: sorted names, a fixed owner, the commit's time.
    let mtime = cmd!(sh, "git log -1 --format=%ct")
        .quiet()
        .read()
        .unwrap_or_else(|_| "0".to_owned());
    let mtime = format!("--mtime=@{}", mtime.trim());
    cmd!(
        sh,
        "tar --create --gzip --file {archive} --directory {parent} --sort=name --owner=0 --group=0 --numeric-owner {mtime} {name}"
    )
    .run()
    .context("cannot write the archive")?;
    write_checksums(sh, dist)?;
    Ok(archive)
}

/// README.md and every LICENSE* file of the project root.
fn copy_docs(root: &Path, stage: &Path) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = vec![root.join("README.md")];
    for entry in fs_err::read_dir(root)? {
        let path = entry?.path();
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("LICENSE"))
        {
            files.push(path);
        }
    }
    for file in files {
        if let Some(name) = file.file_name() {
            fs_err::copy(&file, stage.join(name))?;
        }
    }
    Ok(())
}

/// `sha256sums.txt` over every archive in `dist` (the format `sha256sum
/// --check` reads), so archives of several targets share one file.
fn write_checksums(sh: &Shell, dist: &Path) -> anyhow::Result<()> {
    let mut archives: Vec<String> = fs_err::read_dir(dist)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tar.gz"))
        .collect();
    archives.sort();
    let _dir = sh.push_dir(dist);
    let sums = cmd!(sh, "sha256sum -- {archives...}")
        .quiet()
        .read()
        .context("`sha256sum` failed")?;
    fs_err::write(dist.join("sha256sums.txt"), sums + "\n")?;
    Ok(())
}

pub(crate) fn host_triple(sh: &Shell) -> anyhow::Result<String> {
    let info = cmd!(sh, "rustc -vV")
        .quiet()
        .read()
        .context("`rustc -vV` failed")?;
    info.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` printed no `host:` line")
}
