//! `cargo xtask install`: every tool binary onto the user's PATH through
//! `cargo install --path tools/<name>`.

use anyhow::Context as _;
use xshell::{Shell, cmd};

use crate::{TOOLS, cargo};

/// Flags of `cargo xtask install`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Install into this root instead of cargo's default (~/.cargo)
    #[arg(long, value_name = "DIR")]
    root: Option<std::path::PathBuf>,
}

pub(crate) fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    let cargo = cargo();
    let root: Vec<String> = match &args.root {
        Some(dir) => vec!["--root".to_owned(), dir.display().to_string()],
        None => Vec::new(),
    };
    for tool in TOOLS {
        let path = format!("tools/{tool}");
        let root = &root;
        cmd!(sh, "{cargo} install --locked --path {path} {root...}")
            .run()
            .with_context(|| format!("cannot install `{tool}`"))?;
    }
    Ok(())
}
