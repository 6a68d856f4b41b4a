//! The steps of a deploy, a rollback and a history query, as kubectl argvs
//! run through a [`Runner`]: the lease, then `kubectl apply -f -` (or
//! `annotate` + `set image` per workload), `rollout status` per workload,
//! readiness, and `rollout undo` of what changed when something failed.

use std::time::Duration;

use crate::kubectl::{Kubectl, REQUEST_TIMEOUT, Runner};
use crate::release::{Pinned, ReleaseFacts};

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
    if let Some(unused) = images.iter().find(|p| !used.contains(p.name.as_str())) {
        return Err(slipway_core::cli::UsageError::new(format!(
            "image `{}` is deployed by the env, but no container of its `workloads` runs it: name the container that does (`\"deployment/NAME\" = {{ CONTAINER = \"{}\" }}`), or leave it out of the env's `images`",
            unused.name, unused.name
        )));
    }
    Ok(Change::SetImage(list))
}

/// The commands that make the change, in order, with their stdin.
pub(crate) fn change_commands(
    kubectl: &Kubectl,
    change: &Change,
    release: &ReleaseFacts,
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

/// `get WORKLOAD -o jsonpath=… --ignore-not-found`: the workload's
/// revision, what moves only when a change makes a new one (a new pod
/// template), never for `replicas` or `strategy` alone, as `generation`
/// does. A Deployment's is its `deployment.kubernetes.io/revision` (a
/// number); a StatefulSet's or DaemonSet's its `status.updateRevision`
/// (the name of a ControllerRevision, whose number `revision_number_argv`
/// reads).
pub(crate) fn revision_argv(kubectl: &Kubectl, workload: &str) -> Vec<String> {
    let path = if workload.starts_with("deployment/") {
        "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
    } else {
        "jsonpath={.status.updateRevision}"
    };
    kubectl.cluster(&[
        "get",
        workload,
        "-o",
        path,
        "--ignore-not-found",
        REQUEST_TIMEOUT,
    ])
}

/// `get controllerrevision/NAME -o jsonpath={.revision}`: the number
/// `rollout undo --to-revision` takes for a StatefulSet's or DaemonSet's
/// revision `name`.
fn revision_number_argv(kubectl: &Kubectl, name: &str) -> Vec<String> {
    kubectl.cluster(&[
        "get",
        &format!("controllerrevision/{name}"),
        "-o",
        "jsonpath={.revision}",
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

/// The revision of each workload (`None`: it does not exist yet, or has
/// no revision).
fn revisions(
    steps: &mut Steps<'_>,
    kubectl: &Kubectl,
    workloads: &[String],
) -> anyhow::Result<Vec<Option<String>>> {
    workloads
        .iter()
        .map(|w| {
            let text = steps.must(revision_argv(kubectl, w), b"", &format!("read `{w}`"))?;
            let text = text.trim();
            Ok((!text.is_empty()).then(|| text.to_owned()))
        })
        .collect()
}

/// What an apply did: each workload with its revision before the change
/// (a restore undoes those whose revision moved), and the first rollout
/// that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) before: Vec<(String, Option<String>)>,
    pub(crate) failure: Option<String>,
}

/// Makes the change and waits for each workload's rollout. An error is a
/// command that failed to run or was refused; a rollout that did not
/// finish is `failure`.
pub(crate) fn apply(
    steps: &mut Steps<'_>,
    kubectl: &Kubectl,
    change: &Change,
    release: &ReleaseFacts,
    timeout: Duration,
) -> anyhow::Result<Applied> {
    let workloads = change.workloads();
    let before = revisions(steps, kubectl, &workloads)?;
    for (argv, stdin) in change_commands(kubectl, change, release) {
        steps.must(argv, &stdin, "change the env's workloads")?;
    }
    let mut failure = None;
    for workload in &workloads {
        (steps.say)(&format!("rollout status {workload}"));
        let ran = steps.run(kubectl.rollout_status(workload, timeout), b"")?;
        if !ran.is_success() {
            failure = Some(format!("`{workload}` did not roll out ({})", ran.reason()));
            break;
        }
    }
    Ok(Applied {
        before: workloads.into_iter().zip(before).collect(),
        failure,
    })
}

/// Rolls back each workload whose revision moved since `before` to its
/// revision then (`rollout undo --to-revision=N`), and waits for it. The
/// revisions are read now, after the rollouts were waited for (the
/// controller sets them once it has seen the change). An unchanged
/// workload is left alone (`undo` would take it to an older release), so
/// is a new one (it has nothing to go back to). Returns how many were
/// rolled back.
pub(crate) fn undo(
    steps: &mut Steps<'_>,
    kubectl: &Kubectl,
    before: &[(String, Option<String>)],
    timeout: Duration,
) -> anyhow::Result<usize> {
    let workloads: Vec<String> = before.iter().map(|(w, _)| w.clone()).collect();
    let after = revisions(steps, kubectl, &workloads)?;
    let mut undone = 0;
    for ((workload, before), after) in before.iter().zip(&after) {
        let Some(before) = before else { continue };
        if after.as_ref() == Some(before) {
            continue;
        }
        let number = if workload.starts_with("deployment/") {
            before.clone()
        } else {
            steps.must(
                revision_number_argv(kubectl, before),
                b"",
                &format!("read `{workload}`'s revision `{before}`"),
            )?
        };
        let number: u64 = number.trim().parse().map_err(|_| {
            anyhow::anyhow!(
                "cannot roll back `{workload}`: its revision before the deploy, `{}`, is not a number",
                number.trim()
            )
        })?;
        (steps.say)(&format!("rollout undo {workload} --to-revision={number}"));
        steps.must(
            kubectl.rollout_undo(workload, Some(number)),
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
    Ok(undone)
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

    fn release() -> ReleaseFacts {
        ReleaseFacts {
            id: "4".to_owned(),
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

    fn steps(script: &Script) -> Steps<'_> {
        Steps {
            runner: script,
            commands: Vec::new(),
            say: &|_| {},
        }
    }

    fn revision() -> String {
        format!(
            "{K} get deployment/web -o jsonpath={{.metadata.annotations.deployment\\.kubernetes\\.io/revision}} --ignore-not-found --request-timeout=30s"
        )
    }

    fn annotate() -> String {
        format!(
            "{K} annotate deployment/web --overwrite kubernetes.io/change-cause=slipway release 4: app=r/app@sha256:aa; by alice slipway.dev/release=4 slipway.dev/images={{\"app\":\"r/app@sha256:aa\"}} slipway.dev/deployer=alice --request-timeout=30s"
        )
    }

    #[track_caller]
    fn check(script: &Script, expected: Applied) {
        let applied = apply(
            &mut steps(script),
            &kubectl(),
            &set_image(),
            &release(),
            Duration::from_secs(300),
        )
        .expect("the commands run");
        assert_eq!(applied, expected);
        assert!(script.is_done(), "every expected command ran");
    }

    #[test]
    fn an_apply_annotates_sets_the_images_and_waits_for_the_rollout() {
        let script = Script::new(&[
            (&revision(), 0, "4"),
            (&annotate(), 0, ""),
            (
                &format!("{K} set image deployment/web web=r/app@sha256:aa --request-timeout=30s"),
                0,
                "",
            ),
            (
                &format!("{K} rollout status deployment/web --timeout=300s"),
                0,
                "",
            ),
        ]);
        check(
            &script,
            Applied {
                before: vec![("deployment/web".to_owned(), Some("4".to_owned()))],
                failure: None,
            },
        );
    }

    #[test]
    fn a_failed_rollout_is_the_apply_s_failure() {
        let script = Script::new(&[
            (&revision(), 0, "4"),
            (&annotate(), 0, ""),
            (
                &format!("{K} set image deployment/web web=r/app@sha256:aa --request-timeout=30s"),
                0,
                "",
            ),
            (
                &format!("{K} rollout status deployment/web --timeout=300s"),
                1,
                "",
            ),
        ]);
        check(
            &script,
            Applied {
                before: vec![("deployment/web".to_owned(), Some("4".to_owned()))],
                failure: Some("`deployment/web` did not roll out (exit 1: error: timed out waiting for the condition)".to_owned()),
            },
        );
    }

    #[test]
    fn undo_rolls_back_only_what_has_a_new_revision_to_the_revision_before() {
        let get = |workload: &str, path: &str| {
            format!(
                "{K} get {workload} -o jsonpath={{{path}}} --ignore-not-found --request-timeout=30s"
            )
        };
        let deployment = ".metadata.annotations.deployment\\.kubernetes\\.io/revision";
        let sts = ".status.updateRevision";
        let script = Script::new(&[
            (&get("deployment/web", deployment), 0, "5"),
            // `replicas` moved its generation, not its revision: left alone.
            (&get("deployment/worker", deployment), 0, "7"),
            (&get("statefulset/db", sts), 0, "db-9abc"),
            // New with this deploy: nothing to go back to.
            (&get("deployment/new", deployment), 0, "1"),
            (
                &format!("{K} rollout undo deployment/web --to-revision=4 --request-timeout=30s"),
                0,
                "",
            ),
            (
                &format!("{K} rollout status deployment/web --timeout=300s"),
                0,
                "",
            ),
            (
                &format!(
                    "{K} get controllerrevision/db-6d4f -o jsonpath={{.revision}} --request-timeout=30s"
                ),
                0,
                "3",
            ),
            (
                &format!("{K} rollout undo statefulset/db --to-revision=3 --request-timeout=30s"),
                0,
                "",
            ),
            (
                &format!("{K} rollout status statefulset/db --timeout=300s"),
                0,
                "",
            ),
        ]);
        let before = [
            ("deployment/web", Some("4")),
            ("deployment/worker", Some("7")),
            ("statefulset/db", Some("db-6d4f")),
            ("deployment/new", None),
        ]
        .map(|(w, r)| (w.to_owned(), r.map(str::to_owned)));
        let undone = undo(
            &mut steps(&script),
            &kubectl(),
            &before,
            Duration::from_secs(300),
        )
        .expect("undone");
        assert_eq!(undone, 2);
        assert!(script.is_done());
    }

    #[test]
    fn undo_of_nothing_new_runs_no_undo() {
        let script = Script::new(&[(&revision(), 0, "4")]);
        let before = [("deployment/web".to_owned(), Some("4".to_owned()))];
        let undone = undo(
            &mut steps(&script),
            &kubectl(),
            &before,
            Duration::from_secs(300),
        )
        .expect("nothing to undo");
        assert_eq!(undone, 0);
        assert!(script.is_done());
    }
}
