//! `cmd-deploy`: deploy by running a command on the runner with the images pinned by digest.
use clap::Parser as _;

fn main() -> std::process::ExitCode {
    if let Some(code) = slipway_core::cli::generate::<cmd_deploy::Cli>() {
        return code;
    }
    let cli = cmd_deploy::Cli::parse();
    let out = slipway_core::cli::init(&cli.global);
    let result = cmd_deploy::run(cli, &out);
    slipway_core::cli::finish(
        &out,
        result,
        &[
            slipway_config::ERRORS,
            slipway_registry::ERRORS,
            slipway_ready::ERRORS,
            slipway_deploy::ERRORS,
        ],
    )
}
