//! The chain's subcommands, declared once: the `slipway` program parses
//! them as its own, and `cargo xtask` flattens them into its tasks, so the
//! two cannot drift apart in names, flags or `--help`.

use xshell::Shell;

use crate::tools::Provide;
use crate::{hooks, promote, release, rollback};

/// A task of the release chain, with its flags.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the release chain: changed-paths, img-build --push, the stale gate, img-tag, ssh-deploy
    Release(release::Args),
    /// Deploy to one env the exact image digests another env runs: the stale gate, img-tag, ssh-deploy; nothing is built
    Promote(promote::Args),
    /// Roll an env back with ssh-deploy (to the previous good release, or release N) and show what runs now
    Rollback(rollback::Args),
    /// Install the git hooks: pre-push (image-stale-check) and commit-msg (img-tag check-commit)
    InstallHooks(hooks::Args),
}

impl Command {
    /// Runs the task; `provide` gives the tool binaries once its plan is
    /// checked (`slipway`: beside it or on PATH; xtask: built by cargo).
    pub fn run(&self, sh: &Shell, provide: Provide<'_>) -> anyhow::Result<()> {
        match self {
            Command::Release(args) => release::run(sh, provide, args),
            Command::Promote(args) => promote::run(sh, provide, args),
            Command::Rollback(args) => rollback::run(sh, provide, args),
            Command::InstallHooks(args) => hooks::run(sh, provide, args),
        }
    }
}
