//! `cargo xtask ci`'s check of packaging/install.sh, the steps of the
//! GitHub Action (action.yml): the debug build is packed as a release
//! archive (`dist::package`), served over loopback HTTP in the layout of a
//! GitHub release, and installed; then a checksum that does not match
//! must install nothing.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use slipway_chain::tools::TOOLS;
use xshell::{Shell, cmd};

use crate::build::nested;
use crate::{cargo, dist, project_root, target_dir};

/// A static HTTP server (python3's) on loopback, stopped by PID when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(root: &Path) -> anyhow::Result<Server> {
        let port = slipway_testbed::free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start `python3 -m http.server`")?;
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        while slipway_testbed::http_status(addr, "/").is_err() {
            if Instant::now() > deadline {
                bail!("python3's http.server did not answer on {addr} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn install(base: &str, tools: &str, dir: &Path, github_path: &Path) -> anyhow::Result<Output> {
    Command::new(project_root().join("packaging/install.sh"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("SLIPWAY_VERSION", format!("v{}", env!("CARGO_PKG_VERSION")))
        .env("SLIPWAY_TOOLS", tools)
        .env("SLIPWAY_BASE_URL", base)
        .env("SLIPWAY_INSTALL_DIR", dir)
        .env("GITHUB_PATH", github_path)
        .output()
        .context("cannot run packaging/install.sh")
}

/// Builds the debug binaries (a no-op after the demo), packs, serves and
/// installs them; fails naming what the script got wrong.
pub(crate) fn run(sh: &Shell) -> anyhow::Result<()> {
    let cargo = cargo();
    let mut packages: Vec<String> = TOOLS
        .iter()
        .flat_map(|t| ["-p".to_owned(), (*t).to_owned()])
        .collect();
    packages.extend(["-p".to_owned(), "slipway-chain".to_owned()]);
    nested(cmd!(sh, "{cargo} build --quiet --bins {packages...}"))
        .run()
        .context("cannot build the binaries to pack")?;
    let target = dist::host_triple(sh)?;
    let version = env!("CARGO_PKG_VERSION");
    let root = target_dir().join("ci-install");
    if root.exists() {
        fs_err::remove_dir_all(&root)?;
    }
    let release = root.join(format!("www/download/v{version}"));
    let built = target_dir().join("debug");
    dist::package(sh, &built, &target, &release)?;
    let server = Server::start(&root.join("www"))?;
    let base = server.url.clone();

    // Two of the binaries, as `tools: img-tag, slipway`.
    let dir = root.join("installed");
    let github_path = root.join("github-path");
    fs_err::write(&github_path, "")?;
    let output = install(&base, "img-tag, slipway", &dir, &github_path)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "install.sh failed: {stderr}");
    let bin = dir.join(format!("v{version}/{target}/bin"));
    let path_line = fs_err::read_to_string(&github_path)?;
    ensure!(
        path_line == format!("{}\n", bin.display()),
        "install.sh wrote `{path_line}` to GITHUB_PATH, not `{}`",
        bin.display()
    );
    let mut installed: Vec<String> = fs_err::read_dir(&bin)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    installed.sort();
    ensure!(
        installed == ["img-tag", "slipway"],
        "install.sh installed {installed:?}, not img-tag and slipway"
    );
    for binary in ["img-tag", "slipway"] {
        let ours = cmd!(sh, "{bin}/{binary} --version").quiet().read()?;
        let built_one = built.join(binary);
        let expected = cmd!(sh, "{built_one} --version").quiet().read()?;
        ensure!(
            ours == expected,
            "installed `{binary} --version` says `{ours}`, not `{expected}`"
        );
    }
    eprintln!(
        "install.sh installed img-tag and slipway from {base} and added {} to GITHUB_PATH",
        bin.display()
    );

    // A checksum that does not match: nothing is installed.
    let sums = release.join("sha256sums.txt");
    let text = fs_err::read_to_string(&sums)?;
    let tampered: String = text
        .lines()
        .map(|line| {
            let flipped = if line.starts_with('0') { "1" } else { "0" };
            format!("{flipped}{}\n", &line[1..])
        })
        .collect();
    fs_err::write(&sums, tampered)?;
    let dir = root.join("tampered");
    fs_err::write(&github_path, "")?;
    let output = install(&base, "all", &dir, &github_path)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.code() == Some(1) && stderr.contains("checksum mismatch for `slipway-"),
        "install.sh with a wrong checksum exited {} (not 1): {stderr}",
        output.status
    );
    ensure!(
        !dir.exists(),
        "install.sh with a wrong checksum created `{}`",
        dir.display()
    );
    ensure!(
        fs_err::read_to_string(&github_path)?.is_empty(),
        "install.sh with a wrong checksum wrote GITHUB_PATH"
    );
    // An unknown tool is bad input.
    let output = install(&base, "img-tga", &dir, &github_path)?;
    ensure!(
        output.status.code() == Some(2)
            && String::from_utf8_lossy(&output.stderr).contains("unknown tool `img-tga`"),
        "install.sh with an unknown tool: {output:?}"
    );
    // A version that is not a plain tag cannot reach outside the install dir.
    let output = Command::new(project_root().join("packaging/install.sh"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &dir)
        .env("SLIPWAY_VERSION", "v1/../../escaped")
        .env("SLIPWAY_BASE_URL", &base)
        .env("SLIPWAY_INSTALL_DIR", &dir)
        .env("GITHUB_PATH", &github_path)
        .output()
        .context("cannot run packaging/install.sh")?;
    ensure!(
        output.status.code() == Some(2)
            && String::from_utf8_lossy(&output.stderr).contains("invalid version:")
            && !dir.exists(),
        "install.sh with a version holding `/..`: {output:?}"
    );
    eprintln!(
        "install.sh refused a checksum mismatch, an unknown tool and a version with a path in it, installing nothing"
    );
    drop(server);
    Ok(())
}
