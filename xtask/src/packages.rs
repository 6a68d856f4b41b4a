//! The Debian packages Slipway's tests and demo need, and their installation
//! when missing (as root, through apt-get), so a fresh machine needs nothing
//! installed by hand.

use std::path::Path;

use anyhow::{Context as _, bail};
use xshell::{Shell, cmd};

/// A Debian package and a file that proves it is installed.
struct Package {
    name: &'static str,
    provides: &'static str,
}

const PACKAGES: &[Package] = &[
    Package {
        name: "docker.io",
        provides: "/usr/sbin/dockerd",
    },
    Package {
        name: "docker.io",
        provides: "/usr/bin/docker",
    },
    Package {
        name: "docker-registry",
        provides: "/usr/bin/docker-registry",
    },
    Package {
        name: "openssh-server",
        provides: "/usr/sbin/sshd",
    },
    Package {
        name: "openssh-client",
        provides: "/usr/bin/ssh",
    },
    Package {
        name: "skopeo",
        provides: "/usr/bin/skopeo",
    },
    Package {
        name: "buildah",
        provides: "/usr/bin/buildah",
    },
    Package {
        name: "umoci",
        provides: "/usr/bin/umoci",
    },
    Package {
        name: "busybox-static",
        provides: "/bin/busybox",
    },
    Package {
        name: "docker-compose",
        provides: "/usr/bin/docker-compose",
    },
    Package {
        name: "shellcheck",
        provides: "/usr/bin/shellcheck",
    },
    // ssh-deploy's lines run in the user's login shell where the lock
    // holder cannot run them: its tests run them in bash, dash, BusyBox
    // ash and zsh.
    Package {
        name: "zsh",
        provides: "/usr/bin/zsh",
    },
    Package {
        name: "git",
        provides: "/usr/bin/git",
    },
    // kube-deploy's tests run the real kubectl offline (`kubectl
    // kustomize`, `set image --local`). Installed only when no kubectl is
    // at this path: a newer one already there (another package's, a
    // download) is kept. Debian 12's kubernetes-client is kubectl 1.20.2
    // (kustomize v2.0.3), so where it is the one installed, kube-deploy
    // (and its tests) refuse it as too old: it needs 1.21 or newer.
    Package {
        name: "kubernetes-client",
        provides: "/usr/bin/kubectl",
    },
    // libFuzzer, which `cargo xtask fuzz` links, is C++.
    Package {
        name: "g++",
        provides: "/usr/bin/g++",
    },
];

/// Installs whichever of the packages are missing. Needs root (or fails
/// naming the packages and the command to run).
pub(crate) fn ensure(sh: &Shell) -> anyhow::Result<()> {
    let mut missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|package| !Path::new(package.provides).exists())
        .map(|package| package.name)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root(sh) {
        bail!(
            "missing Debian packages: {list}; install them with `sudo apt-get install -y {list}` and run again"
        );
    }
    eprintln!("xtask: installing Debian packages: {list}");
    cmd!(sh, "apt-get update -qq")
        .run()
        .context("`apt-get update` failed")?;
    let _frontend = sh.push_env("DEBIAN_FRONTEND", "noninteractive");
    cmd!(sh, "apt-get install -y -qq {missing...}")
        .run()
        .with_context(|| format!("`apt-get install {list}` failed"))?;
    let still_missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|package| !Path::new(package.provides).exists())
        .map(|package| package.provides)
        .collect();
    if !still_missing.is_empty() {
        bail!(
            "apt-get finished but these are still missing: {}",
            still_missing.join(", ")
        );
    }
    Ok(())
}

fn is_root(sh: &Shell) -> bool {
    cmd!(sh, "id -u")
        .quiet()
        .read()
        .map(|uid| uid.trim() == "0")
        .unwrap_or(false)
}
