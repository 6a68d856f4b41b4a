//! `ready-wait`: wait until HTTP(S) or TCP endpoints are really ready.
use clap::Parser as _;

fn main() -> std::process::ExitCode {
    if let Some(code) = slipway_core::cli::generate::<ready_wait::Cli>() {
        return code;
    }
    let cli = ready_wait::Cli::parse();
    let out = slipway_core::cli::init(&cli.global);
    let result = ready_wait::run(cli, &out);
    slipway_core::cli::finish(
        &out,
        result,
        &[slipway_config::ERRORS, slipway_ready::ERRORS],
    )
}
