//! The command line of `ssh-deploy`; the doc comments are its `--help`.

/// Deploy immutable image references to hosts over SSH, with a lock, releases and rollback.
#[derive(Debug, clap::Parser)]
#[command(name = "ssh-deploy", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,
}
