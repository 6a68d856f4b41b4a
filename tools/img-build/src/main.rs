//! `img-build`: build the selected images from their Dockerfiles, labelled, tagged, in dependency order.
use clap::Parser as _;

fn main() -> std::process::ExitCode {
    if let Some(code) = slipway_core::cli::generate::<img_build::Cli>() {
        return code;
    }
    let cli = img_build::Cli::parse();
    let out = slipway_core::cli::init(&cli.global);
    let result = img_build::run(cli, &out);
    slipway_core::cli::finish(
        &out,
        result,
        &[
            slipway_config::ERRORS,
            slipway_git::ERRORS,
            slipway_registry::ERRORS,
            slipway_tags::ERRORS,
            slipway_stale::ERRORS,
        ],
    )
}
