//! The command line of `img-build`; the doc comments are its `--help`.

/// Build the selected images from their Dockerfiles, labelled, tagged, in dependency order.
#[derive(Debug, clap::Parser)]
#[command(name = "img-build", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,
}
