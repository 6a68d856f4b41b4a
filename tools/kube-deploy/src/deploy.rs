//! The steps of a deploy, a rollback and a history query, as kubectl argvs
//! run through a [`Runner`]: the lease, then `kubectl apply -f -` (or
//! `annotate` + `set image` per workload), `rollout status` per workload,
//! readiness, and `rollout undo` of what changed when something failed.

use std::time::Duration;

use anyhow::Context as _;

use crate::kubectl::{Kubectl, REQUEST_TIMEOUT, Runner};
use crate::release::{Pinned, Release};
use crate::report::{Outcome, Report, Revision, WorkloadReport};

/// What a deploy changes.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// `kubectl apply -f -` of this List, then these workloads roll out.
    Apply {
        list: String,
        workloads: Vec<String>,
    },
    /// `kubectl set image` on each workload: `(workload, [(container, reference)])`.
    SetImage(Vec<(String, Vec<(String, String)>)>),
}

impl Change {
    /// The workloads that roll out.
    pub(crate) fn workloads(&self) -> Vec<String> {
        match self {
            Change::Apply { workloads, .. } => workloads.clone(),
            Change::SetImage(list) => list.iter().map(|(w, _)| w.clone()).collect(),
        }
    }
}

/// The `set image` containers of a `workloads` env: each container's image pinned.
pub(crate) fn set_image_change(
    workloads: &[slipway_config::Workload],
    images: &[Pinned],
) -> anyhow::Result<Change> {
    let mut list = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    for workload in workloads {
        let mut containers = Vec::new();
        for (container, image) in &workload.containers {
            let Some(pinned) = images.iter().find(|p| p.name == *image) else {
                return Err(slipway_core::cli::UsageError::new(format!(
                    "container `{container}` of `{}/{}` runs image `{image}`, which is not given: add `--image {image}=<registry/repo>@sha256:…` (or build it into `--images-from`)",
                    workload.kind, workload.name
                )));
            };
            used.insert(image.as_str());
            containers.push((container.clone(), pinned.reference()));
        }
        list.push((format!("{}/{}", workload.kind, workload.name), containers));
    }
    if let Some(unused) = images
        .iter()
        .find(|p| p.is_explicit && !used.contains(p.name.as_str()))
    {
        return Err(slipway_core::cli::UsageError::new(format!(
            "`--image {}=…` is given, but no container of the env's `workloads` runs image `{}`",
            unused.name, unused.name
        )));
    }
    Ok(Change::SetImage(list))
}

/// The commands that make the change, in order, with their stdin.
pub(crate) fn change_commands(
    kubectl: &Kubectl,
    change: &Change,
    release: &Release,
) -> Vec<(Vec<String>, Vec<u8>)> {
    match change {
        Change::Apply { list, .. } => vec![(
            kubectl.cluster(&["apply", "-f", "-", REQUEST_TIMEOUT]),
            list.clone().into_bytes(),
        )],
        Change::SetImage(workloads) => {
            let annotations: Vec<String> = release
                .annotations()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let mut commands = Vec::new();
            for (workload, containers) in workloads {
                // Annotated first: the ReplicaSet that `set image` makes
                // copies the workload's annotations, so `rollout history`
                // shows this release's change-cause on its revision.
                let mut annotate = vec!["annotate", workload.as_str(), "--overwrite"];
                annotate.extend(annotations.iter().map(String::as_str));
                annotate.push(REQUEST_TIMEOUT);
                commands.push((kubectl.cluster(&annotate), Vec::new()));
                let pairs: Vec<String> = containers
                    .iter()
                    .map(|(container, reference)| format!("{container}={reference}"))
                    .collect();
                let mut set = vec!["set", "image", workload.as_str()];
                set.extend(pairs.iter().map(String::as_str));
                set.push(REQUEST_TIMEOUT);
                commands.push((kubectl.cluster(&set), Vec::new()));
            }
            commands
        }
    }
}

/// `get WORKLOAD -o jsonpath={.metadata.generation} --ignore-not-found`:
/// which workloads a change touched (their spec's generation moved).
pub(crate) fn generation_argv(kubectl: &Kubectl, workload: &str) -> Vec<String> {
    kubectl.cluster(&[
        "get",
        workload,
        "-o",
        "jsonpath={.metadata.generation}",
        "--ignore-not-found",
        REQUEST_TIMEOUT,
    ])
}

/// Runs commands and keeps each argv in the report.
pub(crate) struct Steps<'a> {
    pub(crate) runner: &'a dyn Runner,
    pub(crate) commands: Vec<Vec<String>>,
    pub(crate) say: &'a dyn Fn(&str),
}

impl Steps<'_> {
    /// Runs one command; a failure to start is an error, an exit status is the caller's to judge.
    pub(crate) fn run(
        &mut self,
        argv: Vec<String>,
        stdin: &[u8],
    ) -> anyhow::Result<crate::kubectl::Ran> {
        let ran = self.runner.run(&argv, stdin)?;
        self.commands.push(argv);
        Ok(ran)
    }

    /// Runs one command that must succeed (exit 3 otherwise, with kubectl's reason).
    fn must(&mut self, argv: Vec<String>, stdin: &[u8], what: &str) -> anyhow::Result<String> {
        let ran = self.run(argv, stdin)?;
        if !ran.is_success() {
            anyhow::bail!("cannot {what} ({})", ran.reason());
        }
        Ok(ran.stdout_str())
    }
}

/// The generation of each workload (`None`: it does not exist yet).
fn generations(
    steps: &mut Steps<'_>,
    kubectl: &Kubectl,
    workloads: &[String],
) -> anyhow::Result<Vec<Option<String>>> {
    workloads
        .iter()
        .map(|w| {
            let text = steps.must(generation_argv(kubectl, w), b"", &format!("read `{w}`"))?;
            let text = text.trim();
            Ok((!text.is_empty()).then(|| text.to_owned()))
        })
        .collect()
}

/// Readiness of the env's `ready_url`, as ready-wait waits: `Ok(ms)` or the last failure.
pub(crate) type Ready<'a> = &'a dyn Fn() -> Result<Option<u64>, String>;

/// A deploy: change, roll out, check readiness, undo on failure. The lease is the caller's.
#[allow(
    clippy::too_many_arguments,
    reason = "a deploy needs the cluster, its change, its checks and its options"
)]
pub(crate) fn deploy(
    steps: &mut Steps<'_>,
    kubectl: &Kubectl,
    change: &Change,
    release: &Release,
    timeout: Duration,
    ready: Ready<'_>,
    no_rollback: bool,
    report: &mut Report,
) -> anyhow::Result<()> {
    let workloads = change.workloads();
    let before = generations(steps, kubectl, &workloads)?;
    for (argv, stdin) in change_commands(kubectl, change, release) {
        steps.must(argv, &stdin, "change the env's workloads")?;
    }
    let after = generations(steps, kubectl, &workloads)?;
    let mut failure = None;
    for workload in &workloads {
        (steps.say)(&format!("rollout status {workload}"));
        let ran = steps.run(kubectl.rollout_status(workload, timeout), b"")?;
        let outcome = if ran.is_success() {
            "rolled out".to_owned()
        } else {
            let reason = ran.reason();
            failure.get_or_insert(format!("`{workload}` did not roll out ({reason})"));
            format!("failed: {reason}")
        };
        report.workloads.push(WorkloadReport {
            workload: workload.clone(),
            outcome: Some(outcome),
            revisions: Vec::new(),
        });
        if failure.is_some() {
            break;
        }
    }
    if failure.is_none() {
        match ready() {
            Ok(ms) => report.ready_ms = ms,
            Err(reason) => failure = Some(format!("the env is not ready: {reason}")),
        }
    }
    let Some(failure) = failure else {
        report.outcome = Outcome::Deployed;
        return Ok(());
    };
    (steps.say)(&failure);
    report.failure = Some(failure);
    if no_rollback {
        report.outcome = Outcome::Failed;
        return Ok(());
    }
    // Only what this deploy changed goes back: an unchanged workload's
    // previous revision is an older release, and a new one has none.
    let mut undone = 0;
    for ((workload, before), after) in workloads.iter().zip(&before).zip(&after) {
        if before.is_none() || before == after {
            continue;
        }
        (steps.say)(&format!("rollout undo {workload}"));
        steps.must(
            kubectl.rollout_undo(workload, None),
            b"",
            &format!("roll back `{workload}`"),
        )?;
        steps.must(
            kubectl.rollout_status(workload, timeout),
            b"",
            &format!("roll back `{workload}`: it did not roll out"),
        )?;
        undone += 1;
    }
    report.outcome = if undone > 0 {
        Outcome::RolledBack
    } else {
        Outcome::Failed
    };
    Ok(())
}

/// Each workload's revisions, from `kubectl rollout history`.
pub(crate) fn history(
    steps: &mut Steps<'_>,
    kubectl: &Kubectl,
    workloads: &[String],
) -> anyhow::Result<Vec<WorkloadReport>> {
    workloads
        .iter()
        .map(|workload| {
            let text = steps.must(
                kubectl.rollout_history(workload),
                b"",
                &format!("read the rollout history of `{workload}`"),
            )?;
            Ok(WorkloadReport {
                workload: workload.clone(),
                outcome: None,
                revisions: parse_history(&text),
            })
        })
        .collect()
}

/// The revisions of `kubectl rollout history`'s table, oldest first:
///
/// ```text
/// deployment.apps/web
/// REVISION  CHANGE-CAUSE
/// 1         <none>
/// 2         slipway 20261206-104500: app=…; by alice
/// ```
pub(crate) fn parse_history(text: &str) -> Vec<Revision> {
    text.lines()
        .skip_while(|line| !line.trim_start().starts_with("REVISION"))
        .skip(1)
        .filter_map(|line| {
            let line = line.trim();
            let (number, cause) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let revision = number.parse().ok()?;
            let cause = cause.trim();
            let change_cause = (!cause.is_empty() && cause != "<none>").then(|| cause.to_owned());
            let release = change_cause
                .as_deref()
                .and_then(crate::release::release_of_cause)
                .map(str::to_owned);
            Some(Revision {
                revision,
                release,
                change_cause,
            })
        })
        .collect()
}

/// Which revision each workload goes back to for `rollback --to N`: N for the
/// first, and for the others their revision of the same Slipway release.
pub(crate) fn rollback_targets(
    histories: &[WorkloadReport],
    to: u64,
) -> anyhow::Result<Vec<(String, u64)>> {
    let first = histories.first().context("the env has no workload")?;
    let Some(chosen) = first.revisions.iter().find(|r| r.revision == to) else {
        return Err(slipway_core::cli::UsageError::new(format!(
            "`--to {to}`: `{}` has no revision {to}; its revisions are {}",
            first.workload,
            first
                .revisions
                .iter()
                .map(|r| r.revision.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let mut targets = vec![(first.workload.clone(), to)];
    for other in &histories[1..] {
        let revision = chosen.release.as_ref().and_then(|release| {
            other
                .revisions
                .iter()
                .rev()
                .find(|r| r.release.as_ref() == Some(release))
                .map(|r| r.revision)
        });
        let Some(revision) = revision else {
            return Err(slipway_core::cli::UsageError::new(format!(
                "`--to {to}`: revision {to} of `{}` is {}, which `{}` has no revision of; roll back without `--to`, or with kubectl per workload",
                first.workload,
                chosen
                    .release
                    .as_ref()
                    .map_or("not a Slipway release".to_owned(), |r| format!(
                        "Slipway release `{r}`"
                    )),
                other.workload
            )));
        };
        targets.push((other.workload.clone(), revision));
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Mutex;

    use super::*;
    use crate::kubectl::Ran;

    /// A runner that expects exactly these argvs, in order, and answers each.
    struct Script(Mutex<Vec<(String, Ran)>>);

    impl Script {
        fn new(steps: &[(&str, i32, &str)]) -> Script {
            Script(Mutex::new(
                steps
                    .iter()
                    .rev()
                    .map(|(argv, code, stdout)| {
                        (
                            (*argv).to_owned(),
                            Ran {
                                code: Some(*code),
                                stdout: stdout.as_bytes().to_vec(),
                                stderr: if *code == 0 {
                                    String::new()
                                } else {
                                    "error: timed out waiting for the condition".to_owned()
                                },
                            },
                        )
                    })
                    .collect(),
            ))
        }

        fn is_done(&self) -> bool {
            self.0.lock().unwrap().is_empty()
        }
    }

    impl Runner for Script {
        fn run(&self, argv: &[String], _stdin: &[u8]) -> anyhow::Result<Ran> {
            let (expected, ran) = self
                .0
                .lock()
                .unwrap()
                .pop()
                .unwrap_or_else(|| panic!("unexpected command: {}", argv.join(" ")));
            assert_eq!(argv.join(" "), expected);
            Ok(ran)
        }
    }

    fn kubectl() -> Kubectl {
        Kubectl {
            program: PathBuf::from("kubectl"),
            context: Some("prod".to_owned()),
            namespace: "shop".to_owned(),
        }
    }

    fn release() -> Release {
        Release {
            id: "20261206-104500".to_owned(),
            images: BTreeMap::from([("app".to_owned(), "r/app@sha256:aa".to_owned())]),
            revision: None,
            deployer: "alice".to_owned(),
        }
    }

    fn set_image() -> Change {
        Change::SetImage(vec![(
            "deployment/web".to_owned(),
            vec![("web".to_owned(), "r/app@sha256:aa".to_owned())],
        )])
    }

    const K: &str = "kubectl --context prod --namespace shop";

    fn run(script: &Script, ready: Ready<'_>, no_rollback: bool) -> (Report, Vec<Vec<String>>) {
        let mut steps = Steps {
            runner: script,
            commands: Vec::new(),
            say: &|_| {},
        };
        let mut report = Report::new("deploy", "prod", &kubectl(), false);
        deploy(
            &mut steps,
            &kubectl(),
            &set_image(),
            &release(),
            Duration::from_secs(300),
            ready,
            no_rollback,
            &mut report,
        )
        .expect("the deploy runs");
        assert!(script.is_done(), "every expected command ran");
        (report, steps.commands)
    }

    fn annotate() -> String {
        format!(
            "{K} annotate deployment/web --overwrite kubernetes.io/change-cause=slipway 20261206-104500: app=r/app@sha256:aa; by alice slipway.dev/release=20261206-104500 slipway.dev/images={{\"app\":\"r/app@sha256:aa\"}} slipway.dev/deployer=alice --request-timeout=30s"
        )
    }

    #[test]
    fn a_deploy_sets_the_images_and_waits_for_the_rollout() {
        let script = Script::new(&[
            (
                &format!(
                    "{K} get deployment/web -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
                ),
                0,
                "4",
            ),
            (&annotate(), 0, ""),
            (
                &format!("{K} set image deployment/web web=r/app@sha256:aa --request-timeout=30s"),
                0,
                "",
            ),
            (
                &format!(
                    "{K} get deployment/web -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
                ),
                0,
                "5",
            ),
            (
                &format!("{K} rollout status deployment/web --timeout=300s"),
                0,
                "",
            ),
        ]);
        let (report, commands) = run(&script, &|| Ok(Some(12)), false);
        assert_eq!(report.outcome, Outcome::Deployed);
        assert_eq!(report.ready_ms, Some(12));
        assert_eq!(commands.len(), 5);
    }

    #[test]
    fn a_failed_rollout_is_undone() {
        let script = Script::new(&[
            (
                &format!(
                    "{K} get deployment/web -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
                ),
                0,
                "4",
            ),
            (&annotate(), 0, ""),
            (
                &format!("{K} set image deployment/web web=r/app@sha256:aa --request-timeout=30s"),
                0,
                "",
            ),
            (
                &format!(
                    "{K} get deployment/web -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
                ),
                0,
                "5",
            ),
            (
                &format!("{K} rollout status deployment/web --timeout=300s"),
                1,
                "",
            ),
            (
                &format!("{K} rollout undo deployment/web --request-timeout=30s"),
                0,
                "",
            ),
            (
                &format!("{K} rollout status deployment/web --timeout=300s"),
                0,
                "",
            ),
        ]);
        let (report, _) = run(
            &script,
            &|| panic!("no readiness after a failed rollout"),
            false,
        );
        assert_eq!(report.outcome, Outcome::RolledBack);
        assert_eq!(
            report.failure.as_deref(),
            Some(
                "`deployment/web` did not roll out (exit 1: error: timed out waiting for the condition)"
            )
        );
    }

    #[test]
    fn a_failed_readiness_is_undone_unless_told_not_to() {
        let steps = [
            (
                format!(
                    "{K} get deployment/web -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
                ),
                0,
                "4",
            ),
            (annotate(), 0, ""),
            (
                format!("{K} set image deployment/web web=r/app@sha256:aa --request-timeout=30s"),
                0,
                "",
            ),
            (
                format!(
                    "{K} get deployment/web -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
                ),
                0,
                "5",
            ),
            (
                format!("{K} rollout status deployment/web --timeout=300s"),
                0,
                "",
            ),
        ];
        let borrowed: Vec<(&str, i32, &str)> =
            steps.iter().map(|(a, c, o)| (a.as_str(), *c, *o)).collect();
        let (report, _) = run(
            &Script::new(&borrowed),
            &|| Err("HTTP 503".to_owned()),
            true,
        );
        assert_eq!(report.outcome, Outcome::Failed);
        assert_eq!(
            report.failure.as_deref(),
            Some("the env is not ready: HTTP 503")
        );

        let mut with_undo = borrowed.clone();
        let undo = format!("{K} rollout undo deployment/web --request-timeout=30s");
        let status = format!("{K} rollout status deployment/web --timeout=300s");
        with_undo.push((&undo, 0, ""));
        with_undo.push((&status, 0, ""));
        let (report, _) = run(
            &Script::new(&with_undo),
            &|| Err("HTTP 503".to_owned()),
            false,
        );
        assert_eq!(report.outcome, Outcome::RolledBack);
    }

    #[test]
    fn an_unchanged_workload_is_not_undone() {
        // The same digests again: the generation did not move, so `undo`
        // would go back to an older release; nothing is undone.
        let script = Script::new(&[
            (
                &format!(
                    "{K} get deployment/web -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
                ),
                0,
                "4",
            ),
            (&annotate(), 0, ""),
            (
                &format!("{K} set image deployment/web web=r/app@sha256:aa --request-timeout=30s"),
                0,
                "",
            ),
            (
                &format!(
                    "{K} get deployment/web -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
                ),
                0,
                "4",
            ),
            (
                &format!("{K} rollout status deployment/web --timeout=300s"),
                0,
                "",
            ),
        ]);
        let (report, _) = run(&script, &|| Err("refused".to_owned()), false);
        assert_eq!(report.outcome, Outcome::Failed);
    }

    #[test]
    fn rollout_history_is_read_with_slipway_releases() {
        let text = "deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n2         slipway 20261206-104500: app=r/app@sha256:aa; by alice\n\n";
        assert_eq!(
            parse_history(text),
            vec![
                Revision {
                    revision: 1,
                    release: None,
                    change_cause: None
                },
                Revision {
                    revision: 2,
                    release: Some("20261206-104500".to_owned()),
                    change_cause: Some(
                        "slipway 20261206-104500: app=r/app@sha256:aa; by alice".to_owned()
                    )
                },
            ]
        );
    }

    #[test]
    fn rollback_to_a_revision_follows_its_release_across_workloads() {
        let history = |workload: &str, revisions: &[(u64, Option<&str>)]| WorkloadReport {
            workload: workload.to_owned(),
            outcome: None,
            revisions: revisions
                .iter()
                .map(|(n, r)| Revision {
                    revision: *n,
                    release: r.map(str::to_owned),
                    change_cause: None,
                })
                .collect(),
        };
        let histories = [
            history("deployment/web", &[(3, Some("r1")), (4, Some("r2"))]),
            history("deployment/worker", &[(7, Some("r1")), (9, Some("r2"))]),
        ];
        assert_eq!(
            rollback_targets(&histories, 3).unwrap(),
            [
                ("deployment/web".to_owned(), 3),
                ("deployment/worker".to_owned(), 7)
            ]
        );
        assert_eq!(
            rollback_targets(&histories, 5).unwrap_err().to_string(),
            "`--to 5`: `deployment/web` has no revision 5; its revisions are 3, 4"
        );
    }
}
