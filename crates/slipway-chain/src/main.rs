//! `slipway`: the release chain as a program, for machines without a Rust
//! toolchain or a Slipway checkout. It runs the tools installed beside it
//! (or on PATH) and never builds them; `cargo xtask release` runs the same
//! code from a checkout.
#![allow(clippy::print_stderr)]

use clap::Parser as _;
use slipway_chain::tools::Tools;
use slipway_chain::{Command, runner};

/// Slipway's release chain: changed-paths → img-build → image-stale-check → img-tag → ssh-deploy,
/// run from the tool binaries beside this program or on PATH.
#[derive(Debug, clap::Parser)]
#[command(name = "slipway", version = slipway_build_info::VERSION, about)]
struct Cli {
    /// Say which tool binaries the chain runs and where they were found
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

fn main() -> std::process::ExitCode {
    if let Some(code) = slipway_core::cli::generate::<Cli>() {
        return code;
    }
    let cli = Cli::parse();
    let verbose = cli.verbose > 0;
    let provide = move |_: &xshell::Shell| -> anyhow::Result<Tools> {
        let tools = Tools::locate();
        if verbose {
            for (tool, path) in tools.iter() {
                eprintln!("slipway: {tool}: {}", path.display());
            }
        }
        Ok(tools)
    };
    let result = xshell::Shell::new()
        .map_err(anyhow::Error::from)
        .and_then(|sh| cli.command.run(&sh, &provide));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::from(runner::exit_code_for(&error))
        }
    }
}
