//! `ssh-deploy`: deploy immutable image references to hosts over SSH, with a lock, releases and rollback.
use clap::Parser as _;

fn main() -> std::process::ExitCode {
    if let Some(code) = slipway_core::cli::generate::<ssh_deploy::Cli>() {
        return code;
    }
    let cli = ssh_deploy::Cli::parse();
    let out = slipway_core::cli::init(&cli.global);
    let result = ssh_deploy::run(cli, &out);
    let code = slipway_core::cli::finish(
        &out,
        result,
        &[
            slipway_config::ERRORS,
            slipway_deploy::ERRORS,
            slipway_git::ERRORS,
            slipway_registry::ERRORS,
            slipway_stale::ERRORS,
            slipway_ready::ERRORS,
        ],
    );
    // A deploy stopped by SIGINT or SIGTERM exits as the signal would: 130, 143.
    ssh_deploy::cancelled_exit_status().map_or(code, std::process::ExitCode::from)
}
