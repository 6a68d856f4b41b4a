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
use slipway_chain::runner;
use slipway_chain::tools::TOOLS;

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
    /// The release chain (`release`, `promote`, `rollback`, `install-hooks`),
    /// declared once in slipway-chain: the `slipway` program's subcommands.
    #[command(flatten)]
    Chain(slipway_chain::Command),
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
                Task::Chain(command) => command.run(&sh, &build::tools),
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// The chain's subcommands are `slipway`'s, flattened: each is a task of
    /// xtask with the same help and flags.
    #[test]
    fn the_chain_tasks_are_the_slipway_subcommands() {
        let xtask = super::Cli::command();
        xtask.clone().debug_assert();
        let slipway = <slipway_chain::Command as clap::Subcommand>::augment_subcommands(
            clap::Command::new("slipway"),
        );
        let names: Vec<&str> = slipway.get_subcommands().map(|c| c.get_name()).collect();
        assert_eq!(names, ["release", "promote", "rollback", "install-hooks"]);
        for chain in slipway.get_subcommands() {
            let task = xtask
                .find_subcommand(chain.get_name())
                .unwrap_or_else(|| panic!("xtask has no `{}` task", chain.get_name()));
            let flags = |c: &clap::Command| -> Vec<String> {
                c.get_arguments().map(|a| a.get_id().to_string()).collect()
            };
            assert_eq!(task.get_about(), chain.get_about());
            assert_eq!(flags(task), flags(chain));
        }
    }
}
