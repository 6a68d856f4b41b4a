//! `ssh-deploy`: deploy immutable image references to hosts over SSH, with a lock, releases and rollback.
//!
//! Only the command-line front exists so far; the work itself arrives with
//! issue #7.

mod cli;

pub use cli::Cli;

/// The (so far empty) report of a run.
#[derive(Debug, serde::Serialize)]
pub struct Report {}

impl slipway_core::output::Report for Report {
    fn render_plain(&self, _style: &slipway_core::output::Style) -> String {
        String::new()
    }
}

/// Runs `ssh-deploy`.
pub fn run(_cli: Cli, _out: &slipway_core::output::Output) -> anyhow::Result<Report> {
    anyhow::bail!("`ssh-deploy` is not available in this version yet (issue #7)")
}
