//! `image-stale-check`: warn when published images are stale against the code.
//!
//! Only the command-line front exists so far; the work itself arrives with
//! issue #8.

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

/// Runs `image-stale-check`.
pub fn run(_cli: Cli, _out: &slipway_core::output::Output) -> anyhow::Result<Report> {
    anyhow::bail!("`image-stale-check` is not available in this version yet (issue #8)")
}
