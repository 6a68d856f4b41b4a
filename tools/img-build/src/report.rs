//! What a run prints: the plan (`--dry-run`) or, per image, its repository,
//! tags, digest, platforms, duration and, when it failed, why and where its
//! log is.

use std::collections::BTreeMap;

use slipway_contract::img_build::{
    BuildReport, BuiltTarget, Command, HeldTag, PlanReport, PlannedTarget, Report as Inner,
};
use slipway_core::cli::exit;
use slipway_core::output::Style;

use crate::freshness::Freshness;
use crate::plan::{Plan, Target};
use crate::run::{Outcome, SkipReason, Status};
use crate::work::Work;

/// The report of a run: [`slipway_contract::img_build::Report`], the
/// plan of a dry run or what each image became.
#[derive(Debug, serde::Serialize)]
#[serde(transparent)]
pub struct Report {
    inner: Inner,
}

/// A target of the plan: what it is, its commands and, under
/// `--only-stale`, the stale check's answer.
fn planned(target: &Target, work: Work, stale_check: Option<Freshness>) -> PlannedTarget {
    PlannedTarget {
        name: target.name.clone(),
        repository: target.repository.clone(),
        tags: target.tags.clone(),
        labels: target.labels.clone(),
        build_args: target.build_args.clone(),
        platforms: target.platforms.clone(),
        depends_on: target.depends_on.clone(),
        dependency_arg: target.dependency_arg.clone(),
        context: target.context.clone(),
        dockerfile: target.dockerfile.clone(),
        stage: target.stage.clone(),
        cache_from: target.cache_from.clone(),
        cache_to: target.cache_to.clone(),
        secrets: target.secrets.clone(),
        commands: work
            .commands
            .into_iter()
            .map(|invocation| Command {
                step: invocation.step,
                argv: invocation.argv,
                env: invocation.env,
            })
            .collect(),
        index_tags: work.index_tags,
        stale_check,
    }
}

impl Report {
    /// The dry run's report: the plan, every command, and under
    /// `--only-stale` the stale check's answers.
    pub(crate) fn plan(
        plan: &Plan,
        works: Vec<Work>,
        mut freshness: BTreeMap<String, Freshness>,
    ) -> Report {
        Report {
            inner: Inner::Plan(PlanReport {
                dry_run: true,
                backend: plan.backend,
                backend_reason: plan.backend_reason.clone(),
                revision: plan.revision.clone(),
                push: plan.push,
                load: plan.load,
                jobs: plan.jobs,
                order: plan.targets.iter().map(|t| t.name.clone()).collect(),
                targets: plan
                    .targets
                    .iter()
                    .zip(works)
                    .map(|(target, work)| planned(target, work, freshness.remove(&target.name)))
                    .collect(),
            }),
        }
    }

    /// A real run's report, targets in build order.
    pub(crate) fn built(
        plan: &Plan,
        mut outcomes: BTreeMap<String, Outcome>,
        mut held: BTreeMap<String, Vec<HeldTag>>,
    ) -> Report {
        let targets: Vec<BuiltTarget> = plan
            .targets
            .iter()
            .filter_map(|target| {
                let outcome = outcomes.remove(&target.name)?;
                Some(BuiltTarget {
                    name: target.name.clone(),
                    status: outcome.status,
                    reason: outcome.reason,
                    repository: target.repository.clone(),
                    tags: target.tags.clone(),
                    reference: outcome.reference,
                    digest: outcome.digest.map(|d| d.to_string()),
                    image_id: outcome.image_id,
                    platforms: target.platforms.clone(),
                    duration_seconds: (outcome.duration.as_secs_f64() * 1000.0).round() / 1000.0,
                    log: outcome.log,
                    error: outcome.error,
                    held_tags: held.remove(&target.name).unwrap_or_default(),
                })
            })
            .collect();
        let failed = targets
            .iter()
            .filter(|t| t.status != Status::Built && t.reason != Some(SkipReason::Fresh))
            .map(|t| t.name.clone())
            .collect();
        Report {
            inner: Inner::Built(BuildReport {
                backend: plan.backend,
                revision: plan.revision.clone(),
                pushed: plan.push,
                log_dir: plan.log_dir.clone(),
                targets,
                failed,
            }),
        }
    }
}

impl Report {
    /// Whether every target was built or skipped as fresh.
    pub(crate) fn is_success(&self) -> bool {
        match &self.inner {
            Inner::Built(report) => report.failed.is_empty(),
            Inner::Plan(_) => true,
        }
    }
}

impl slipway_core::output::Report for Report {
    fn render_plain(&self, style: &Style) -> String {
        let mut text = String::new();
        match &self.inner {
            Inner::Plan(plan) => {
                text.push_str(&format!(
                    "backend: {} ({})\nrevision: {}\norder: {}\n",
                    plan.backend,
                    plan.backend_reason,
                    plan.revision,
                    plan.order.join(", ")
                ));
                for target in &plan.targets {
                    text.push_str(&format!(
                        "\n{} {}\n",
                        style.bold(&target.name),
                        target.repository
                    ));
                    for tag in &target.tags {
                        text.push_str(&format!("  tag {tag}\n"));
                    }
                    if let Some(check) = &target.stale_check {
                        text.push_str(&format!(
                            "  stale check: {} at {}: {}\n",
                            check.verdict.status(),
                            check.reference,
                            check.decision
                        ));
                    }
                    for command in &target.commands {
                        let env: String = command
                            .env
                            .iter()
                            .map(|(k, v)| format!("{k}={v} "))
                            .collect();
                        text.push_str(&format!("  $ {env}{}\n", shell_line(&command.argv)));
                    }
                    if let Some(tags) = &target.index_tags {
                        text.push_str(&format!(
                            "  index of {} at {}\n",
                            target.platforms.join(", "),
                            tags.join(", ")
                        ));
                    }
                }
            }
            Inner::Built(report) => {
                for target in &report.targets {
                    match target.status {
                        Status::Built => {
                            text.push_str(&format!(
                                "{} {} {}\n",
                                target.name,
                                style.ok("built"),
                                target.reference.as_deref().unwrap_or_default()
                            ));
                            for held in &target.held_tags {
                                text.push_str(&format!("  held {}: {}\n", held.tag, held.reason));
                            }
                        }
                        Status::Skipped if target.reason == Some(SkipReason::Fresh) => {
                            text.push_str(&format!(
                                "{} {} {} (fresh: published for this commit)\n",
                                target.name,
                                style.ok("skipped"),
                                target.reference.as_deref().unwrap_or_default()
                            ));
                        }
                        status => text.push_str(&format!(
                            "{} {} {} (log: {})\n",
                            target.name,
                            style.error(if status == Status::Failed {
                                "failed"
                            } else {
                                "skipped"
                            }),
                            target.error.as_deref().unwrap_or_default(),
                            target.log.display()
                        )),
                    }
                }
            }
        }
        text
    }

    fn outputs(&self) -> Vec<(String, String)> {
        match &self.inner {
            Inner::Plan(_) => Vec::new(),
            Inner::Built(report) => {
                let refs: BTreeMap<&str, &str> = report
                    .targets
                    .iter()
                    .filter_map(|t| Some((t.name.as_str(), t.reference.as_deref()?)))
                    .collect();
                vec![(
                    "images".to_owned(),
                    serde_json::to_string(&refs).unwrap_or_default(),
                )]
            }
        }
    }

    fn summary_markdown(&self) -> Option<String> {
        let Inner::Built(report) = &self.inner else {
            return None;
        };
        let mut text = String::from(
            "### img-build\n\n| image | status | reference | platforms | duration |\n| --- | --- | --- | --- | --- |\n",
        );
        for target in &report.targets {
            let status = match target.status {
                Status::Built => "built".to_owned(),
                Status::Failed => format!("failed (log: `{}`)", target.log.display()),
                Status::Skipped if target.reason == Some(SkipReason::Fresh) => {
                    "skipped (fresh)".to_owned()
                }
                Status::Skipped => "skipped".to_owned(),
            };
            text.push_str(&format!(
                "| {} | {status} | `{}` | {} | {:.1}s |\n",
                target.name,
                target.reference.as_deref().unwrap_or("-"),
                if target.platforms.is_empty() {
                    "-".to_owned()
                } else {
                    target.platforms.join(", ")
                },
                target.duration_seconds
            ));
        }
        Some(text)
    }

    fn exit_code(&self) -> u8 {
        match &self.inner {
            Inner::Built(report) if !report.failed.is_empty() => exit::FAILURE,
            _ => exit::SUCCESS,
        }
    }
}

/// An argv as one shell-quoted line, for logs and the dry run.
pub(crate) fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| slipway_core::output::shell_quote(arg))
        .collect::<Vec<_>>()
        .join(" ")
}
