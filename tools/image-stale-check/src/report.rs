//! What a run reports: verdicts per image, or what `install-hook` did.

use std::fmt::Write as _;

use slipway_core::cli::exit;
use slipway_core::output::{Style, escape_control};
use slipway_stale::{FreshBecause, Verdict, Via};

use slipway_contract::image_stale_check::Report as Json;
pub use slipway_contract::image_stale_check::{CheckReport, HookReport};

/// The report of a run: [`slipway_contract::image_stale_check::Report`],
/// as `--format json` prints it.
#[derive(Debug, serde::Serialize)]
#[serde(transparent)]
pub struct Report(pub Json);

/// How many images have one of these statuses.
fn count(report: &CheckReport, status: &[&str]) -> usize {
    report
        .images
        .iter()
        .filter(|i| status.contains(&i.verdict.status()))
        .count()
}

/// The images with this status, space-separated.
fn names(report: &CheckReport, status: &str) -> String {
    report
        .images
        .iter()
        .filter(|i| i.verdict.status() == status)
        .map(|i| i.image.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

const NOT_FRESH: &[&str] = &["stale", "missing", "unknown"];

impl slipway_core::output::Report for Report {
    fn render_plain(&self, style: &Style) -> String {
        match &self.0 {
            Json::Check(report) => render_check(report, style),
            Json::Hook(report) => match &report.script {
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
        let Json::Check(report) = &self.0 else {
            return Vec::new();
        };
        let mut outputs: Vec<(String, String)> =
            ["fresh", "stale", "missing", "unknown", "unchecked"]
                .iter()
                .map(|status| ((*status).to_owned(), names(report, status)))
                .collect();
        outputs.push((
            "all_fresh".to_owned(),
            (count(report, &["fresh"]) == report.images.len()).to_string(),
        ));
        outputs
    }

    fn summary_markdown(&self) -> Option<String> {
        let Json::Check(report) = &self.0 else {
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
        let Json::Check(report) = &self.0 else {
            return exit::SUCCESS;
        };
        let not_fresh = count(report, NOT_FRESH) > 0;
        let unchecked = count(report, &["unchecked"]) > 0;
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
            escape_control(&image.image),
            escape_control(&image.reference)
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
                    let _ = writeln!(
                        text,
                        "    {} {}{via}",
                        file.status.letter(),
                        slipway_core::output::quote_path(file.bytes())
                    );
                }
                for commit in commits {
                    let _ = writeln!(
                        text,
                        "    {} {}",
                        commit.sha.short(),
                        escape_control(&commit.summary)
                    );
                }
            }
            Verdict::Missing => {
                let _ = writeln!(text, "no such tag: build and push it");
            }
            Verdict::Unknown { reason } => {
                // The reason quotes a label read from the image.
                let _ = writeln!(
                    text,
                    "{}: {}",
                    escape_control(&reason.describe()),
                    reason.fix()
                );
            }
            Verdict::Unchecked { error } => {
                let _ = writeln!(text, "could not check: {}", escape_control(error));
            }
        }
    }
    let total = report.images.len();
    let not_fresh = count(report, NOT_FRESH);
    let unchecked = count(report, &["unchecked"]);
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
