//! What a run reports: verdicts per image, or what `install-hook` did.

use std::fmt::Write as _;
use std::path::PathBuf;

use slipway_core::cli::exit;
use slipway_core::git::Sha;
use slipway_core::output::Style;
use slipway_core::stale::{FreshBecause, ImageVerdict, Verdict, Via};

/// The report of a run.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Report {
    /// A check.
    Check(CheckReport),
    /// `install-hook`.
    Hook(HookReport),
}

/// The verdicts of a check.
#[derive(Debug, serde::Serialize)]
pub struct CheckReport {
    /// The commit images were judged against.
    pub rev: Sha,
    /// The tag looked up for slipway.toml's images (none for explicit refs).
    pub tag: Option<String>,
    /// `registry` or `local`.
    pub source: &'static str,
    /// Whether this ran as the pre-push hook.
    pub hook: bool,
    /// Whether `--strict` was given.
    pub strict: bool,
    /// One verdict per image, in the order checked.
    pub images: Vec<ImageVerdict>,
}

/// What `install-hook` did.
#[derive(Debug, serde::Serialize)]
pub struct HookReport {
    /// The hook file.
    pub path: PathBuf,
    /// `installed`, `updated`, `unchanged`, or `would_write` (`--dry-run`).
    pub action: &'static str,
    /// Whether the file holds other hook lines, kept around Slipway's block.
    pub chained: bool,
    /// The hook's full text under `--dry-run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

impl CheckReport {
    fn count(&self, status: &[&str]) -> usize {
        self.images
            .iter()
            .filter(|i| status.contains(&i.verdict.status()))
            .count()
    }

    fn names(&self, status: &str) -> String {
        self.images
            .iter()
            .filter(|i| i.verdict.status() == status)
            .map(|i| i.image.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

const NOT_FRESH: &[&str] = &["stale", "missing", "unknown"];

impl slipway_core::output::Report for Report {
    fn render_plain(&self, style: &Style) -> String {
        match self {
            Report::Check(report) => render_check(report, style),
            Report::Hook(report) => match &report.script {
                Some(script) => script.clone(),
                None => format!(
                    "{} the pre-push hook `{}`{}\n",
                    report.action,
                    report.path.display(),
                    if report.chained {
                        " (the existing hook's lines are kept)"
                    } else {
                        ""
                    }
                ),
            },
        }
    }

    fn outputs(&self) -> Vec<(String, String)> {
        let Report::Check(report) = self else {
            return Vec::new();
        };
        let mut outputs: Vec<(String, String)> =
            ["fresh", "stale", "missing", "unknown", "unchecked"]
                .iter()
                .map(|status| ((*status).to_owned(), report.names(status)))
                .collect();
        outputs.push((
            "all_fresh".to_owned(),
            (report.count(&["fresh"]) == report.images.len()).to_string(),
        ));
        outputs
    }

    fn summary_markdown(&self) -> Option<String> {
        let Report::Check(report) = self else {
            return None;
        };
        let mut text = format!(
            "### Published images against `{}`\n\n| image | reference | status | revision |\n| --- | --- | --- | --- |\n",
            report.rev.short()
        );
        for image in &report.images {
            let revision = match &image.verdict {
                Verdict::Fresh { revision, .. } | Verdict::Stale { revision, .. } => {
                    revision.short().to_owned()
                }
                _ => String::new(),
            };
            let _ = writeln!(
                text,
                "| {} | `{}` | {} | {} |",
                image.image,
                image.reference,
                image.verdict.status(),
                revision
            );
        }
        Some(text)
    }

    fn exit_code(&self) -> u8 {
        let Report::Check(report) = self else {
            return exit::SUCCESS;
        };
        let not_fresh = report.count(NOT_FRESH) > 0;
        let unchecked = report.count(&["unchecked"]) > 0;
        match (report.hook, report.strict) {
            // A hook never blocks a push on a registry it could not reach.
            (true, false) => exit::SUCCESS,
            (true, true) if not_fresh => exit::NO,
            (true, true) => exit::SUCCESS,
            (false, _) if not_fresh => exit::NO,
            (false, _) if unchecked => exit::FAILURE,
            (false, _) => exit::SUCCESS,
        }
    }
}

fn render_check(report: &CheckReport, style: &Style) -> String {
    let width = report
        .images
        .iter()
        .map(|i| i.image.len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for image in &report.images {
        let status = image.verdict.status();
        let painted = match status {
            "fresh" => style.ok(&format!("{status:<9}")),
            "unchecked" => style.warn(&format!("{status:<9}")),
            _ => style.error(&format!("{status:<9}")),
        };
        let _ = write!(
            text,
            "{painted} {:<width$}  {}  ",
            image.image, image.reference
        );
        match &image.verdict {
            Verdict::Fresh {
                revision,
                because: FreshBecause::SameCommit,
            } => {
                let _ = writeln!(text, "built from {}, the checked commit", revision.short());
            }
            Verdict::Fresh {
                revision,
                because: FreshBecause::NoRelevantChange,
            } => {
                let _ = writeln!(
                    text,
                    "built from {}; nothing it is built from changed since",
                    revision.short()
                );
            }
            Verdict::Stale {
                revision,
                files,
                commits,
            } => {
                let _ = writeln!(
                    text,
                    "built from {}; {} file(s) it is built from changed since:",
                    revision.short(),
                    files.len()
                );
                for file in files {
                    let via = match &file.via {
                        Via::Paths | Via::AnyFile => String::new(),
                        Via::RebuildAll => " (via [rebuild_all])".to_owned(),
                        Via::DependsOn { image } => format!(" (via depends_on `{image}`)"),
                    };
                    let _ = writeln!(text, "    {} {}{via}", file.status.letter(), file.path);
                }
                for commit in commits {
                    let _ = writeln!(text, "    {} {}", commit.sha.short(), commit.summary);
                }
            }
            Verdict::Missing => {
                let _ = writeln!(text, "no such tag: build and push it");
            }
            Verdict::Unknown { reason } => {
                let _ = writeln!(text, "{}: {}", reason.describe(), reason.fix());
            }
            Verdict::Unchecked { error } => {
                let _ = writeln!(text, "could not check: {error}");
            }
        }
    }
    let total = report.images.len();
    let not_fresh = report.count(NOT_FRESH);
    let unchecked = report.count(&["unchecked"]);
    let short = report.rev.short();
    if not_fresh == 0 && unchecked == 0 {
        let _ = writeln!(text, "all {total} image(s) are fresh at {short}");
    }
    if not_fresh > 0 {
        let _ = write!(
            text,
            "{not_fresh} of {total} image(s) are stale, missing or unknown at {short}"
        );
        let _ = match (report.hook, report.strict) {
            (true, false) => {
                writeln!(
                    text,
                    "; the push goes on (`install-hook --strict` refuses it)"
                )
            }
            (true, true) => writeln!(text, "; refusing the push"),
            (false, _) => writeln!(text),
        };
    }
    if unchecked > 0 {
        let _ = write!(
            text,
            "could not check {unchecked} of {total} image(s): the registry did not answer in time or refused"
        );
        let _ = if report.hook {
            writeln!(text, "; the push goes on")
        } else {
            writeln!(text)
        };
    }
    text
}
