//! The tools the chain runs from a checkout: built with the cargo that runs
//! xtask, as a plain `cargo build` builds them, then handed to
//! `slipway_chain` (which never builds anything itself).

use anyhow::Context as _;
use slipway_chain::tools::{TOOLS, Tools};
use xshell::{Shell, cmd};

use crate::{cargo, project_root, target_dir};

/// The variables `cargo run` sets for xtask itself. A nested cargo must not
/// inherit them: build scripts that watch them (ring's watches
/// `CARGO_MANIFEST_DIR`) would see `xtask/` instead of nothing, rerun, and
/// rebuild reqwest, hyper-rustls and every tool on every `cargo xtask
/// release`, while the same `cargo build` by hand does nothing.
const CARGO_RUN_VARIABLES: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// Builds every tool binary (debug) and returns them: the same package set
/// for every task, so cargo's feature unification never relinks them
/// differently between `release`, `promote` and the rest.
pub(crate) fn tools(sh: &Shell) -> anyhow::Result<Tools> {
    eprintln!("\n== xtask: build the tools");
    let cargo = cargo();
    let packages: Vec<String> = TOOLS
        .iter()
        .flat_map(|t| ["-p".to_owned(), (*t).to_owned()])
        .collect();
    let _root = sh.push_dir(project_root());
    nested(cmd!(sh, "{cargo} build --quiet --bins {packages...}"))
        .run()
        .context("step `build the tools` failed")?;
    Tools::in_dir(&bin_dir())
}

/// A cargo command run from xtask, without the variables `cargo run` set
/// for xtask itself (see [`CARGO_RUN_VARIABLES`]).
pub(crate) fn nested(mut command: xshell::Cmd<'_>) -> xshell::Cmd<'_> {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if CARGO_RUN_VARIABLES.contains(&name.as_ref()) || name.starts_with("CARGO_PKG_") {
            command = command.env_remove(name.as_ref());
        }
    }
    command
}

/// Where cargo puts the debug binaries.
pub(crate) fn bin_dir() -> std::path::PathBuf {
    target_dir().join("debug")
}
