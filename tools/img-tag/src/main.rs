//! `img-tag`: compute image tags (metadata-action compatible) and next versions.
use clap::Parser as _;

fn main() -> std::process::ExitCode {
    if let Some(code) = slipway_core::cli::generate::<img_tag::Cli>() {
        return code;
    }
    let cli = img_tag::Cli::parse();
    let out = slipway_core::cli::init(&cli.global);
    let result = img_tag::run(cli, &out);
    slipway_core::cli::finish(
        &out,
        result,
        &[
            slipway_config::ERRORS,
            slipway_git::ERRORS,
            slipway_registry::ERRORS,
            slipway_tags::ERRORS,
        ],
    )
}
