//! `changed-paths`: tell which files changed between two refs and which named targets they touch.
use clap::Parser as _;

fn main() -> std::process::ExitCode {
    if let Some(code) = slipway_core::cli::generate::<changed_paths::Cli>() {
        return code;
    }
    let cli = changed_paths::Cli::parse();
    let out = slipway_core::cli::init(&cli.global);
    let result = changed_paths::run(cli, &out);
    slipway_core::cli::finish(
        &out,
        result,
        &[
            slipway_config::ERRORS,
            slipway_git::ERRORS,
            slipway_registry::ERRORS,
            slipway_stale::ERRORS,
        ],
    )
}
