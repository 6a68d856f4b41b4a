//! Where the chain finds the tool binaries. The chain never builds
//! them: `slipway` takes the ones next to its own executable (a release
//! archive's `bin/`, the container image's `/usr/local/bin`), else the ones
//! on `PATH`; `cargo xtask` builds them with cargo first and hands over its
//! target directory.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::bail;
use xshell::Shell;

/// The tool binaries, in the order a release chains them.
pub const TOOLS: &[&str] = &[
    "changed-paths",
    "img-build",
    "img-tag",
    "image-stale-check",
    "ssh-deploy",
    "ready-wait",
    "swarm-deploy",
    "kube-deploy",
    "cmd-deploy",
];

/// How a chain task gets the tools once its plan is checked (so a typo in
/// `--env` costs nothing): `slipway` locates installed ones, xtask builds
/// them first.
pub type Provide<'a> = &'a dyn Fn(&Shell) -> anyhow::Result<Tools>;

/// The path of every tool the chain runs.
#[derive(Debug, Clone)]
pub struct Tools {
    paths: BTreeMap<&'static str, PathBuf>,
    /// Where the tools not found were looked for, for [`Tools::require`].
    looked: String,
}

impl Tools {
    /// Every tool in `dir` (cargo's target directory, for xtask); an error
    /// names the tools that are missing there.
    pub fn in_dir(dir: &Path) -> anyhow::Result<Tools> {
        let mut paths = BTreeMap::new();
        let mut missing = Vec::new();
        for tool in TOOLS {
            let path = dir.join(tool);
            if is_executable(&path) {
                paths.insert(*tool, path);
            } else {
                missing.push(format!("`{tool}`"));
            }
        }
        if !missing.is_empty() {
            bail!(
                "the tools {} are not in `{}`",
                missing.join(", "),
                dir.display()
            );
        }
        Ok(Tools {
            paths,
            looked: format!("in `{}`", dir.display()),
        })
    }

    /// Each tool next to `exe` (the running `slipway`), else on `path` (the
    /// value of `PATH`). A tool found in neither place is not an error
    /// here: a task asks for the tools it runs with [`Tools::require`]
    /// (an SSH env's release needs no kube-deploy).
    pub fn beside_or_on_path(exe: Option<&Path>, path: Option<&OsStr>) -> Tools {
        let beside = exe.and_then(Path::parent);
        let search: Vec<PathBuf> = path
            .map(|p| std::env::split_paths(p).collect())
            .unwrap_or_default();
        let mut paths = BTreeMap::new();
        for tool in TOOLS {
            let found = beside
                .map(|dir| dir.join(tool))
                .filter(|candidate| is_executable(candidate))
                .or_else(|| {
                    search
                        .iter()
                        .map(|dir| dir.join(tool))
                        .find(|candidate| is_executable(candidate))
                });
            if let Some(found) = found {
                paths.insert(*tool, found);
            }
        }
        let beside = beside.map_or(
            "(the running program's directory is unknown)".to_owned(),
            |dir| format!("`{}`", dir.display()),
        );
        Tools {
            paths,
            looked: format!("neither next to slipway in {beside} nor on PATH"),
        }
    }

    /// Checks that every tool of `needed` was found; an error names each
    /// one that was not, and where it was looked for.
    pub fn require(&self, needed: &[&str]) -> anyhow::Result<()> {
        let missing: Vec<String> = TOOLS
            .iter()
            .filter(|tool| needed.contains(tool) && !self.paths.contains_key(*tool))
            .map(|tool| format!("`{tool}`"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        bail!(
            "cannot find the tools {}: {}; install every tool beside slipway (a release archive's `bin/` holds them) or on PATH",
            missing.join(", "),
            self.looked
        );
    }

    /// The running program's own tools: [`Tools::beside_or_on_path`] for
    /// the current executable and `PATH`.
    pub fn locate() -> Tools {
        let exe = std::env::current_exe().ok();
        let path = std::env::var_os("PATH");
        Tools::beside_or_on_path(exe.as_deref(), path.as_deref())
    }

    /// The path of `tool` (one of [`TOOLS`]; any other name is returned as
    /// is, to be looked up on PATH by the OS).
    pub fn path(&self, tool: &str) -> PathBuf {
        self.paths
            .get(tool)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(tool))
    }

    /// Each tool and its path, in chain order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        TOOLS
            .iter()
            .filter_map(|tool| self.paths.get(tool).map(|path| (*tool, path.as_path())))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs_err::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool_dir(name: &str, tools: &[&str]) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("slipway-tools-{}-{name}", std::process::id()));
        let _ = fs_err::remove_dir_all(&dir);
        fs_err::create_dir_all(&dir).unwrap();
        for tool in tools {
            let path = dir.join(tool);
            fs_err::write(&path, "#!/bin/sh\n").unwrap();
            fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    #[test]
    fn tools_beside_slipway_win_over_path_and_missing_ones_are_named() {
        let beside = tool_dir("beside", &TOOLS[..TOOLS.len() - 1]);
        let on_path = tool_dir("path", TOOLS);
        let exe = beside.join("slipway");
        let tools = Tools::beside_or_on_path(Some(&exe), Some(on_path.as_os_str()));
        tools.require(TOOLS).expect("all found");
        assert_eq!(tools.path("img-build"), beside.join("img-build"));
        assert_eq!(tools.path("cmd-deploy"), on_path.join("cmd-deploy"));
        let tools = Tools::beside_or_on_path(Some(&exe), Some(OsStr::new("/nonexistent")));
        // A task that does not run cmd-deploy does not need it.
        tools
            .require(&["img-build", "ssh-deploy"])
            .expect("the tools this task runs are found");
        let error = tools
            .require(&["img-build", "cmd-deploy"])
            .expect_err("cmd-deploy is missing");
        assert_eq!(
            error.to_string(),
            format!(
                "cannot find the tools `cmd-deploy`: neither next to slipway in `{}` nor on PATH; install every tool beside slipway (a release archive's `bin/` holds them) or on PATH",
                beside.display()
            )
        );
        let _ = fs_err::remove_dir_all(&beside);
        let _ = fs_err::remove_dir_all(&on_path);
    }
}
