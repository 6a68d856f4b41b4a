//! The command line of `image-stale-check`; the doc comments are its `--help`.

/// Warn when published images are stale against the code.
#[derive(Debug, clap::Parser)]
#[command(name = "image-stale-check", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,
}
