//! `kube-deploy`: deploy image digests to Kubernetes workloads with kubectl.
use clap::Parser as _;

fn main() -> std::process::ExitCode {
    if let Some(code) = slipway_core::cli::generate::<kube_deploy::Cli>() {
        return code;
    }
    let cli = kube_deploy::Cli::parse();
    let out = slipway_core::cli::init(&cli.global);
    let result = kube_deploy::run(cli, &out);
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
