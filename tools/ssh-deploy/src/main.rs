//! `ssh-deploy`: deploy immutable image references to hosts over SSH, with a lock, releases and rollback.
use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = ssh_deploy::Cli::parse();
    let out = slipway_core::cli::init(&cli.global);
    let result = ssh_deploy::run(cli, &out);
    slipway_core::cli::finish(&out, result)
}
