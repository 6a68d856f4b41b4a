//! `cargo xtask bench`: Slipway measured side by side with the tool a user
//! would pick instead, in the same run, as ratios.
//!
//! Each benchmark module prepares [`Comparison`]s (commands on both sides,
//! built fixtures, started services); the harness runs the two commands of a
//! pair alternately, so both see the same machine state, takes medians, and
//! writes docs/benchmarks.md. Figures live here, never in timed tests.

mod chain;
mod changed_paths;
mod image_stale_check;
mod img_build;
mod img_tag;
mod ready_wait;
mod ssh_deploy;
mod startup;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use xshell::{Shell, cmd};

use crate::cargo;

/// Flags of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Run only the comparisons whose name contains this text
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Runs of each side per comparison (alternating); the median is reported
    #[arg(long, default_value_t = 15)]
    runs: u32,
    /// Print the table without rewriting docs/benchmarks.md
    #[arg(long)]
    no_write: bool,
}

/// One command line, ready to spawn.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    /// How the command is shown in the table.
    pub(crate) label: String,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) dir: Option<PathBuf>,
    /// Untimed work before each run (a fresh daemon, say).
    pub(crate) prepare: Option<Prepare>,
}

/// Work done before each run of a [`Cmd`], outside the timed span.
#[derive(Clone)]
pub(crate) struct Prepare(pub(crate) Arc<dyn Fn() -> anyhow::Result<()> + Send + Sync>);

impl std::fmt::Debug for Prepare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prepare(..)")
    }
}

impl Cmd {
    pub(crate) fn new(program: impl Into<PathBuf>, args: &[&str]) -> Cmd {
        let program = program.into();
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut label = name;
        for arg in args {
            label.push(' ');
            label.push_str(arg);
        }
        Cmd {
            label,
            program,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: Vec::new(),
            dir: None,
            prepare: None,
        }
    }

    /// Runs once, discarding output; fails if the command fails.
    fn time_once(&self) -> anyhow::Result<Duration> {
        if let Some(prepare) = &self.prepare {
            (prepare.0)().with_context(|| format!("cannot prepare `{}`", self.label))?;
        }
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let started = Instant::now();
        let output = command
            .output()
            .with_context(|| format!("cannot run `{}`", self.label))?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.label,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(elapsed)
    }
}

/// What a comparison must show to meet its issue's figure.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    /// ours / theirs must be at most this.
    RatioAtMost(f64),
    /// Only reported.
    Report,
}

/// A side-by-side measurement: our command and the alternative a user would
/// pick, doing the same job.
#[derive(Debug, Clone)]
pub(crate) struct Comparison {
    pub(crate) name: String,
    pub(crate) ours: Cmd,
    pub(crate) theirs: Cmd,
    pub(crate) goal: Goal,
}

/// A figure that is not a plain pair of commands (time from an event to an
/// exit, CPU time while waiting, bytes moved), measured by a benchmark module
/// itself, side by side where it has an alternative.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    pub(crate) name: String,
    /// What was measured, with its unit (`12 ms`, `0.42`).
    pub(crate) value: String,
    /// The figure, as text (`≤ 50 ms`).
    pub(crate) goal: String,
    pub(crate) is_met: bool,
}

struct Measured {
    comparison: Comparison,
    ours: Duration,
    theirs: Duration,
}

impl Measured {
    fn ratio(&self) -> f64 {
        self.ours.as_secs_f64() / self.theirs.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn verdict(&self) -> &'static str {
        match self.comparison.goal {
            Goal::RatioAtMost(limit) if self.ratio() <= limit => "met",
            Goal::RatioAtMost(_) => "NOT MET",
            Goal::Report => "-",
        }
    }
}

pub(crate) fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    let cargo = cargo();
    eprintln!("xtask bench: building the tools (release)");
    cmd!(sh, "{cargo} build --release --locked --workspace --bins")
        .run()
        .context("cannot build the tools in release mode")?;
    let bin_dir = crate::target_dir().join("release");

    let mut comparisons = startup::comparisons(&bin_dir)?;
    comparisons.extend(ready_wait::comparisons(sh, &bin_dir, args.only.as_deref())?);
    comparisons.extend(changed_paths::comparisons(sh, &bin_dir)?);
    let _img_tag_services =
        img_tag::comparisons(sh, &bin_dir, args.only.as_deref(), &mut comparisons)?;
    let _stale_services =
        image_stale_check::comparisons(sh, &bin_dir, args.only.as_deref(), &mut comparisons)?;
    let _img_build_services =
        img_build::comparisons(sh, &bin_dir, args.only.as_deref(), &mut comparisons)?;
    if let Some(only) = &args.only {
        comparisons.retain(|c| c.name.contains(only.as_str()));
    }
    let mut measured = Vec::new();
    for comparison in comparisons {
        eprintln!("xtask bench: {}", comparison.name);
        measured.push(measure(comparison, args.runs.max(1))?);
    }
    let figures: Vec<Figure> = ready_wait::figures(sh, &bin_dir, args.only.as_deref())?;
    let figures = [
        figures,
        ssh_deploy::figures(sh, &bin_dir, args.runs, args.only.as_deref())?,
        chain::figures(&bin_dir, args.runs, args.only.as_deref())?,
    ]
    .concat();
    if measured.is_empty() && figures.is_empty() {
        bail!(
            "no benchmark matches `--only {}`",
            args.only.as_deref().unwrap_or("")
        );
    }
    let table = render(&measured, &figures, args.runs);
    println!("{table}");
    if !args.no_write && args.only.is_none() {
        let path = sh.current_dir().join("docs/benchmarks.md");
        fs_err::write(&path, page(sh, &table))?;
        eprintln!("xtask bench: wrote {}", path.display());
    }
    Ok(())
}

/// Runs both sides alternately (one warm-up each), `runs` times, and keeps
/// the medians.
fn measure(comparison: Comparison, runs: u32) -> anyhow::Result<Measured> {
    comparison.ours.time_once()?;
    comparison.theirs.time_once()?;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..runs {
        ours.push(comparison.ours.time_once()?);
        theirs.push(comparison.theirs.time_once()?);
    }
    Ok(Measured {
        ours: median(&mut ours),
        theirs: median(&mut theirs),
        comparison,
    })
}

/// Runs a fixture-making command to completion; fails with its stderr.
pub(super) fn run_to_end(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// The path of `program` on PATH, or an error naming its Debian package
/// (of the same name for every program the benchmarks use).
pub(super) fn which(program: &str) -> anyhow::Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .with_context(|| {
            format!("`{program}` is not on PATH: install the Debian package `{program}`")
        })
}

pub(super) fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn format_duration(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros < 10_000 {
        format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
    } else if micros < 10_000_000 {
        format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

fn render(measured: &[Measured], figures: &[Figure], runs: u32) -> String {
    let mut table = format!(
        "Medians of {runs} alternating runs each.\n\n\
         | benchmark | Slipway | median | alternative | median | ratio | goal | |\n\
         | --- | --- | ---: | --- | ---: | ---: | --- | --- |\n"
    );
    for m in measured {
        let goal = match m.comparison.goal {
            Goal::RatioAtMost(limit) => format!("≤ {limit}"),
            Goal::Report => "report".to_owned(),
        };
        let _ = writeln!(
            table,
            "| {} | `{}` | {} | `{}` | {} | {:.2} | {} | {} |",
            m.comparison.name,
            m.comparison.ours.label,
            format_duration(m.ours),
            m.comparison.theirs.label,
            format_duration(m.theirs),
            m.ratio(),
            goal,
            m.verdict()
        );
    }
    if !figures.is_empty() {
        table.push_str("\n| figure | measured | goal | |\n| --- | ---: | --- | --- |\n");
        for figure in figures {
            let _ = writeln!(
                table,
                "| {} | {} | {} | {} |",
                figure.name,
                figure.value,
                figure.goal,
                match (figure.goal.as_str(), figure.is_met) {
                    ("report", _) => "-",
                    (_, true) => "met",
                    (_, false) => "NOT MET",
                }
            );
        }
    }
    table
}

fn page(sh: &Shell, table: &str) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let rustc = cmd!(sh, "rustc --version")
        .quiet()
        .read()
        .unwrap_or_default();
    format!(
        "# Benchmarks\n\n\
         Written by `cargo xtask bench`; do not edit by hand. Each row runs \
         Slipway and the tool a user would pick instead for the same job, \
         alternately in the same run, and reports the ratio of medians \
         (below 1.0: Slipway is faster).\n\n\
         Machine: {cores} cores; {rustc}.\n\n{table}"
    )
}
