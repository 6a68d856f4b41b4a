//! `image-stale-check`: warn when published images are stale against the code.
use clap::Parser as _;

fn main() -> std::process::ExitCode {
    if let Some(code) = slipway_core::cli::generate::<image_stale_check::Cli>() {
        return code;
    }
    let cli = image_stale_check::Cli::parse();
    let out = slipway_core::cli::init(&cli.global);
    let result = image_stale_check::run(cli, &out);
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
