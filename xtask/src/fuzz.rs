//! `cargo xtask fuzz`: run the cargo-fuzz targets in fuzz/ (every parser
//! that reads user input), each for a fixed time, and report runs, new
//! coverage and crashes.
//!
//! fuzz/ is its own workspace, so the main build never compiles libFuzzer.
//! cargo-fuzz needs nightly compiler flags; `RUSTC_BOOTSTRAP=1` lets the
//! stable toolchain accept them. New corpus entries go to
//! target/fuzz/corpus/<target>; the committed seeds in fuzz/corpus/<target>
//! are only read.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use xshell::{Shell, cmd};

use crate::cargo;

/// Flags of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Seconds to fuzz each target
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub(crate) time: u64,
    /// Fuzz only this target (a file name in fuzz/fuzz_targets without `.rs`) [default: every target]
    #[arg(long, value_name = "NAME")]
    pub(crate) target: Option<String>,
    /// Run the target once on this input (a crash's reproducer) instead of fuzzing; needs --target
    #[arg(long, value_name = "FILE", requires = "target")]
    pub(crate) reproduce: Option<PathBuf>,
}

/// What one target's run found.
struct Outcome {
    target: String,
    runs: Option<u64>,
    new_units: Option<u64>,
    coverage: Option<u64>,
    crash: Option<String>,
}

pub(crate) fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    ensure_cargo_fuzz(sh)?;
    let all = targets(sh)?;
    let selected: Vec<String> = match &args.target {
        Some(name) if all.contains(name) => vec![name.clone()],
        Some(name) => bail!(
            "unknown fuzz target `{name}` for --target; valid targets: {}",
            all.join(", ")
        ),
        None => all,
    };
    let cargo = cargo();
    // Same flags for build, fuzzing and reproducing, so nothing rebuilds.
    let _bootstrap = sh.push_env("RUSTC_BOOTSTRAP", "1");
    let flags = ["--sanitizer", "address", "--target-dir", "target/fuzz"];
    if let (Some(input), Some(target)) = (&args.reproduce, &args.target) {
        return cmd!(sh, "{cargo} fuzz run {flags...} {target} {input}")
            .run()
            .with_context(|| {
                format!(
                    "fuzz target `{target}` fails on `{}`; add it as a regression test and fix the parser",
                    input.display()
                )
            });
    }
    eprintln!("xtask fuzz: building {} target(s)", selected.len());
    cmd!(sh, "{cargo} fuzz build {flags...}")
        .run()
        .context("cannot build the fuzz targets")?;
    let time = args.time.to_string();
    let mut outcomes = Vec::new();
    for target in &selected {
        eprintln!("xtask fuzz: `{target}` for {time} s");
        let work = Path::new("target/fuzz/corpus").join(target);
        sh.create_dir(&work)?;
        let seeds = Path::new("fuzz/corpus").join(target);
        let output = cmd!(
            sh,
            "{cargo} fuzz run {flags...} {target} {work} {seeds} -- -max_total_time={time} -print_final_stats=1"
        )
        .ignore_status()
        .output()
        .with_context(|| format!("cannot run fuzz target `{target}`"))?;
        let log = String::from_utf8_lossy(&output.stderr);
        let mut outcome = outcome(target, &log);
        if !output.status.success() && outcome.crash.is_none() {
            // A failure without a reproducer (a build or start-up error):
            // show the log, it says why.
            eprintln!("{log}");
            outcome.crash = Some(String::from("(no reproducer written; see the log above)"));
        }
        if outcome.crash.is_some() {
            for line in crash_summary(&log) {
                eprintln!("  | {line}");
            }
        }
        print_outcome(&outcome);
        outcomes.push(outcome);
    }
    let crashed: Vec<&Outcome> = outcomes.iter().filter(|o| o.crash.is_some()).collect();
    if crashed.is_empty() {
        println!("xtask fuzz: no crash in {} target(s)", outcomes.len());
        return Ok(());
    }
    for outcome in &crashed {
        let reproducer = outcome.crash.as_deref().unwrap_or_default();
        println!(
            "xtask fuzz: `{}` crashed on {reproducer}\n  replay: cargo xtask fuzz --target {} --reproduce {reproducer}",
            outcome.target, outcome.target
        );
    }
    bail!(
        "{} fuzz target(s) crashed: {}",
        crashed.len(),
        crashed
            .iter()
            .map(|o| o.target.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Installs cargo-fuzz when `cargo fuzz` is not available.
fn ensure_cargo_fuzz(sh: &Shell) -> anyhow::Result<()> {
    let cargo = cargo();
    let present = cmd!(sh, "{cargo} fuzz --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok();
    if !present {
        eprintln!("xtask fuzz: installing cargo-fuzz");
        cmd!(sh, "{cargo} install cargo-fuzz --locked")
            .run()
            .context("cannot install cargo-fuzz with `cargo install cargo-fuzz --locked`")?;
    }
    Ok(())
}

/// The target names: the files of fuzz/fuzz_targets, sorted.
fn targets(sh: &Shell) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = sh
        .read_dir("fuzz/fuzz_targets")
        .context("cannot list fuzz/fuzz_targets")?
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .filter_map(|path| Some(path.file_stem()?.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    Ok(names)
}

/// Reads libFuzzer's final stats and any reproducer path from its log.
fn outcome(target: &str, log: &str) -> Outcome {
    let stat = |name: &str| {
        log.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
    };
    // The last status line, e.g. `#123456 DONE cov: 812 ft: 2301 corp: 97/3Kb …`.
    let coverage = log
        .lines()
        .filter(|line| line.starts_with('#'))
        .filter_map(|line| {
            let after = line.split_once(" cov: ")?.1;
            after.split_whitespace().next()?.parse().ok()
        })
        .next_back();
    let crash = log.lines().find_map(|line| {
        let path = line.split_once("Test unit written to ")?.1.trim();
        Some(path.to_owned())
    });
    Outcome {
        target: target.to_owned(),
        runs: stat("stat::number_of_executed_units:"),
        new_units: stat("stat::new_units_added:"),
        coverage,
        crash,
    }
}

/// The lines of a crash log that say what failed: the panic and its
/// message, and the sanitizer's or libFuzzer's error and summary.
fn crash_summary(log: &str) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().collect();
    let mut summary = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if line.contains("panicked at") {
            summary.extend(lines.iter().skip(index).take(2).copied());
        } else if line.contains("ERROR: ") || line.starts_with("SUMMARY: ") {
            summary.push(*line);
        }
    }
    summary
}

fn print_outcome(outcome: &Outcome) {
    let number = |value: Option<u64>| value.map_or_else(|| "?".to_owned(), |n| n.to_string());
    println!(
        "{:<20} runs {:>10}  new corpus entries {:>5}  coverage {:>6}  {}",
        outcome.target,
        number(outcome.runs),
        number(outcome.new_units),
        number(outcome.coverage),
        if outcome.crash.is_some() {
            "CRASH"
        } else {
            "ok"
        }
    );
}
