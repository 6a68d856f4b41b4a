//! `cargo xtask`: Slipway's project automation — the CI gate, benchmarks and
//! tool installation — run as `cargo xtask <task>`.
//!
//! xtask talks to the tools only through their command lines. It prints to
//! the terminal directly: it is a developer's task runner, not a tool whose
//! stdout is data, so the print lints are allowed here.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod build;
mod ci;
mod demo;
mod dist;
mod fuzz;
mod image;
mod install;
mod install_check;
mod packages;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};

use clap::Parser as _;
use slipway_chain::tools::TOOLS;
use slipway_chain::{hooks, promote, release, rollback, runner};

/// Slipway's project tasks.
#[derive(Debug, clap::Parser)]
#[command(name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, clap::Subcommand)]
enum Task {
    /// Run every check CI runs: install the Debian packages the tests need, then fmt, clippy, workflow lint, fuzz, the demo, the install script, the container image, every test
    Ci(ci::Args),
    /// Measure Slipway side by side with the tools a user would pick instead; writes docs/benchmarks.md
    Bench(bench::Args),
    /// Install every tool binary with `cargo install --path tools/<name>`
    Install(install::Args),
    /// Run the release chain: changed-paths, img-build --push, the stale gate, img-tag, ssh-deploy
    Release(release::Args),
    /// Deploy to one env the exact image digests another env runs: the stale gate, img-tag, ssh-deploy; nothing is built
    Promote(promote::Args),
    /// Roll an env back with ssh-deploy (to the previous good release, or release N) and show what runs now
    Rollback(rollback::Args),
    /// Install the git hooks: pre-push (image-stale-check) and commit-msg (img-tag check-commit)
    InstallHooks(hooks::Args),
    /// Run the release chain end to end on examples/demo against the test bed
    Demo(demo::Args),
    /// Build the release archive for a target: dist/slipway-<version>-<target>.tar.gz (binaries, completions, man pages) and dist/sha256sums.txt
    Dist(dist::Args),
    /// Build the container image of packaging/Dockerfile (tools and slipway FROM scratch) with docker
    Image(image::Args),
    /// Fuzz every parser that reads user input (fuzz/, cargo-fuzz) for --time seconds per target
    Fuzz(fuzz::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = xshell::Shell::new()
        .map_err(anyhow::Error::from)
        .and_then(|sh| {
            // Nested cargo runs start at the project root: give them the
            // target directory this run was started with, made absolute, so
            // they build where target_dir() looks.
            if std::env::var_os("CARGO_TARGET_DIR").is_some() {
                sh.set_var("CARGO_TARGET_DIR", target_dir());
            }
            sh.change_dir(project_root());
            match cli.task {
                Task::Ci(args) => ci::run(&sh, &args),
                Task::Bench(args) => bench::run(&sh, &args),
                Task::Install(args) => install::run(&sh, &args),
                Task::Release(args) => release::run(&sh, &build::tools, &args),
                Task::Promote(args) => promote::run(&sh, &build::tools, &args),
                Task::Rollback(args) => rollback::run(&sh, &build::tools, &args),
                Task::InstallHooks(args) => hooks::run(&sh, &build::tools, &args),
                Task::Demo(args) => demo::run(&sh, &args),
                Task::Dist(args) => dist::run(&sh, &args),
                Task::Image(args) => image::run(&sh, &args),
                Task::Fuzz(args) => fuzz::run(&sh, &args),
            }
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::from(runner::exit_code_for(&error))
        }
    }
}

/// The workspace root: xtask's manifest lives one level below it.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory, where cargo put the binaries that xtask runs:
/// `CARGO_TARGET_DIR` (relative to the directory `cargo xtask` started in,
/// as cargo reads it), else `target/` at the project root.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::env::current_dir()
            .map(|cwd| cwd.join(&dir))
            .unwrap_or_else(|_| PathBuf::from(dir)),
        None => project_root().join("target"),
    }
}

/// The cargo that runs us, so nested builds use the same toolchain.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
