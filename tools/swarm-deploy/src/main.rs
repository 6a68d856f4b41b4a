//! `swarm-deploy`: deploy a compose file as a Docker swarm stack, images pinned by digest.
use clap::Parser as _;

fn main() -> std::process::ExitCode {
    if let Some(code) = slipway_core::cli::generate::<swarm_deploy::Cli>() {
        return code;
    }
    let cli = swarm_deploy::Cli::parse();
    let out = slipway_core::cli::init(&cli.global);
    let result = swarm_deploy::run(cli, &out);
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
