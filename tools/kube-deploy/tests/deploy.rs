//! A whole deploy by the real binary, whose `--kubectl` is a shim: no API
//! server can run here, so the shim records each command line and answers
//! as a cluster would (the Lease written, workloads' revisions, rollout
//! status), handing what runs offline (`kustomize`, `annotate --local`) to
//! the real kubectl. What is checked is what kube-deploy asks, in order.

#![allow(clippy::unwrap_used, reason = "test helpers panic like tests")]

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{APP_DIGEST, WORKER_DIGEST, commands, kube_deploy, kubectl, project};

const SHIM: &str = r#"#!/bin/sh
# Flags before the verb say where: drop them (the log keeps the whole line).
echo "$*" >> "$SHIM_DIR/log"
while [ "${1#--}" != "$1" ]; do shift 2; done
case "$1 $2" in
"version --client")
    # `old-version`: what an old (or odd) kubectl answers.
    if [ -e "$SHIM_DIR/old-version" ]; then cat "$SHIM_DIR/old-version"; else exec "$REAL_KUBECTL" "$@"; fi ;;
"kustomize "*|"annotate "*) exec "$REAL_KUBECTL" "$@" ;;
"get lease")
    if [ -e "$SHIM_DIR/taken" ]; then
        echo '{"metadata":{"resourceVersion":"900"},"spec":{"holderIdentity":"bob (ci@other, pid 7)"}}'
    fi ;;
"get configmap") if [ -e "$SHIM_DIR/records.json" ]; then cat "$SHIM_DIR/records.json"; fi ;;
"create -f"|"replace -f")
    body=$(cat)
    case "$body" in
    *'"kind":"ConfigMap"'*)
        n=$(ls "$SHIM_DIR" | grep -c '^records-')
        printf '%s\n' "$body" > "$SHIM_DIR/records-$n.json"
        printf '%s\n' "$body" | sed -e 's/,"resourceVersion":"[0-9]*"//' \
            -e "s/\"metadata\":{/\"metadata\":{\"resourceVersion\":\"$((n + 500))\",/" > "$SHIM_DIR/records.json"
        cat "$SHIM_DIR/records.json" ;;
    *)
        if [ -e "$SHIM_DIR/taken" ]; then
            echo "Error from server (Conflict): the object has been modified" >&2; exit 1
        fi
        n=$(ls "$SHIM_DIR" | grep -c '^lease-')
        printf '%s\n' "$body" > "$SHIM_DIR/lease-$n.json"
        echo "{\"metadata\":{\"resourceVersion\":\"$((n + 100))\"}}" ;;
    esac ;;
"get "*)
    # A workload's revision moves with its pod template; its generation
    # with any spec change (`same-revision`: a change of `replicas` only).
    case "$4" in
    *revision*) if [ -e "$SHIM_DIR/applied" ] && [ ! -e "$SHIM_DIR/same-revision" ]; then echo 2; else echo 1; fi ;;
    *) if [ -e "$SHIM_DIR/applied" ]; then echo 2; else echo 1; fi ;;
    esac ;;
"apply -f") cat > "$SHIM_DIR/applied"; echo "deployment.apps/web configured" ;;
"rollout status")
    if [ -e "$SHIM_DIR/slow" ]; then
        touch "$SHIM_DIR/rolling"
        i=0; while [ ! -e "$SHIM_DIR/go" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
    fi
    if [ -e "$SHIM_DIR/fail-${3#*/}" ] && [ ! -e "$SHIM_DIR/failed-${3#*/}" ]; then
        touch "$SHIM_DIR/failed-${3#*/}"
        echo "error: $3 exceeded its progress deadline" >&2; exit 1
    fi
    echo "$3 successfully rolled out" ;;
"rollout undo") touch "$SHIM_DIR/undone"; echo "$3 rolled back" ;;
*) echo "shim: unexpected kubectl $*" >&2; exit 1 ;;
esac
"#;

struct Cluster {
    dir: tempfile::TempDir,
    shim: std::path::PathBuf,
}

impl Cluster {
    fn new() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("kubectl");
        fs_err::write(&shim, SHIM).unwrap();
        fs_err::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        Cluster { dir, shim }
    }

    fn log(&self) -> Vec<String> {
        fs_err::read_to_string(self.dir.path().join("log"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn lease(&self, n: usize) -> serde_json::Value {
        let text = fs_err::read_to_string(self.dir.path().join(format!("lease-{n}.json")))
            .unwrap_or_else(|e| panic!("lease-{n}.json: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn deploy(&self, project: &std::path::Path) -> slipway_testbed::cmd::Outcome {
        self.command(project).run()
    }

    fn command(&self, project: &std::path::Path) -> slipway_testbed::cmd::Cmd {
        let mut command = kube_deploy(project);
        command
            .args(["deploy", "--env", "prod", "--format", "json", "--image"])
            .arg(format!("app=127.0.0.1:5000/demo/app@{APP_DIGEST}"))
            .arg("--image")
            .arg(format!("worker=127.0.0.1:5000/demo/worker@{WORKER_DIGEST}"))
            .arg("--kubectl")
            .arg(&self.shim)
            .env("SHIM_DIR", self.dir.path())
            .env("REAL_KUBECTL", kubectl())
            .env("GITHUB_ACTOR", "alice");
        command
    }
}

fn records(cluster: &Cluster) -> Vec<serde_json::Value> {
    let map: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(cluster.dir.path().join("records.json")).unwrap(),
    )
    .unwrap();
    serde_json::from_str(map["data"]["releases.json"].as_str().unwrap()).unwrap()
}

#[test]
fn a_deploy_cancelled_by_sigterm_gives_the_lease_back() {
    let project = project();
    let cluster = Cluster::new();
    let dir = cluster.dir.path();
    fs_err::write(dir.join("slow"), "").unwrap();
    let running = cluster.command(project.path()).spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !dir.join("rolling").exists() {
        assert!(std::time::Instant::now() < deadline, "no rollout started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &running.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let cancelled = running.wait();
    // The shim's `rollout status` ends by itself; let it go now.
    fs_err::write(dir.join("go"), "").unwrap();
    cancelled.assert_code(143);
    assert!(cancelled.stdout.is_empty());
    // Loosened only for the timestamp of the progress line before it.
    assert!(
        cancelled.stderr_str().ends_with(
            "kube-deploy: rollout status deployment/web\n WARN cancelled: releasing the lease\n"
        ),
        "{}",
        cancelled.stderr_str()
    );
    let log = cluster.log();
    assert_eq!(
        log.last().map(String::as_str),
        Some("--context prod --namespace shop replace -f - -o json --request-timeout=30s"),
        "{log:#?}"
    );
    // The last Lease written has no holder: the next deploy takes it at once.
    let written = fs_err::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("lease-")
        })
        .count();
    let lease = cluster.lease(written - 1);
    assert_eq!(lease["spec"].get("holderIdentity"), None, "{lease}");
    // The record says the deploy did not finish.
    assert_eq!(records(&cluster)[0]["detail"], "the deploy did not finish");
}

#[test]
fn a_deploy_that_lost_its_lease_records_nothing_and_exits_3() {
    let project = project();
    let cluster = Cluster::new();
    let dir = cluster.dir.path();
    fs_err::write(dir.join("slow"), "").unwrap();
    let running = cluster.command(project.path()).spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !dir.join("rolling").exists() {
        assert!(std::time::Instant::now() < deadline, "no rollout started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Another deploy took the Lease over: the next renewal (10 s after it
    // was taken) is refused, and the Lease read names bob.
    fs_err::write(dir.join("taken"), "").unwrap();
    let renewal_seen = |log: &[String]| {
        log.iter()
            .filter(|l| l.contains(" get lease slipway-prod "))
            .count()
            == 2
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !renewal_seen(&cluster.log()) {
        assert!(std::time::Instant::now() < deadline, "no renewal");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    fs_err::write(dir.join("go"), "").unwrap();
    let outcome = running.wait();
    outcome.assert_code(3);
    let stderr = outcome.stderr_str();
    assert!(
        stderr.contains("lost the lease `shop/slipway-prod` (it could not be renewed for 30s, or another deploy holds it now): stopped before recording release 1; another deploy may be running on this env"),
        "{stderr}"
    );
    // The release stays recorded as not finished: the final record was not written.
    assert_eq!(records(&cluster)[0]["detail"], "the deploy did not finish");
    assert_eq!(records(&cluster)[0]["result"], "failed");
}

#[test]
fn a_deploy_takes_the_lease_records_applies_rolls_out_and_releases_it() {
    let project = project();
    let cluster = Cluster::new();
    let outcome = cluster.deploy(project.path());
    outcome.assert_code(0);
    let report = outcome.json();
    assert_eq!(report["action"], "deploy");
    // Only a dry run shows the List (it may hold Secrets' values).
    assert_eq!(report.get("manifest"), None, "{report:#}");
    let host = &report["hosts"][0];
    assert_eq!(host["host"], "kubernetes:prod/shop");
    assert_eq!(host["outcome"], "deployed");
    assert_eq!(host["release"], 1);
    let k = "--context prod --namespace shop";
    let log = cluster.log();
    // What ran is what the report says ran (the lease's renewals aside).
    let reported: Vec<String> = commands(&report)
        .iter()
        .map(|c| c.split_once(' ').unwrap().1.to_owned())
        .collect();
    assert_eq!(log, reported);
    let read_records = format!(
        "{k} get configmap slipway-prod-releases -o json --ignore-not-found --request-timeout=30s"
    );
    let revision = |w: &str| {
        format!(
            "{k} get deployment/{w} -o jsonpath={{.metadata.annotations.deployment\\.kubernetes\\.io/revision}} --ignore-not-found --request-timeout=30s"
        )
    };
    assert_eq!(
        log.iter()
            .filter(|l| {
                !l.starts_with("version ")
                    && !l.starts_with("kustomize ")
                    && !l.starts_with("annotate ")
            })
            .cloned()
            .collect::<Vec<_>>(),
        [
            format!("{k} get lease slipway-prod -o json --ignore-not-found --request-timeout=30s"),
            format!("{k} create -f - -o json --request-timeout=30s"),
            // The history read, then the release recorded as failed
            // before anything changes…
            read_records.clone(),
            read_records.clone(),
            format!("{k} create -f - -o json --request-timeout=30s"),
            revision("web"),
            revision("worker"),
            format!("{k} apply -f - --request-timeout=30s"),
            format!("{k} rollout status deployment/web --timeout=120s"),
            format!("{k} rollout status deployment/worker --timeout=120s"),
            // …then as deployed, at the resourceVersion read.
            read_records,
            format!("{k} replace -f - -o json --request-timeout=30s"),
            format!("{k} replace -f - -o json --request-timeout=30s"),
        ]
    );
    // The lease: taken for this deploy, then released at the resourceVersion it got.
    let taken = cluster.lease(0);
    assert_eq!(taken["kind"], "Lease");
    assert_eq!(taken["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(
        taken["metadata"],
        serde_json::json!({"name": "slipway-prod", "namespace": "shop"})
    );
    let holder = taken["spec"]["holderIdentity"].as_str().unwrap();
    assert!(holder.starts_with("alice ("), "{holder}");
    assert_eq!(taken["spec"]["leaseDurationSeconds"], 30);
    let released = cluster.lease(1);
    assert_eq!(released["metadata"]["resourceVersion"], "100");
    assert!(
        released["spec"].get("holderIdentity").is_none(),
        "{released:#}"
    );
    // The record in the cluster: release 1, deployed, its digests.
    let records = records(&cluster);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["id"], 1);
    assert_eq!(records[0]["result"], "deployed");
    assert_eq!(
        records[0]["images"],
        serde_json::json!({
            "APP_IMAGE": format!("127.0.0.1:5000/demo/app@{APP_DIGEST}"),
            "WORKER_IMAGE": format!("127.0.0.1:5000/demo/worker@{WORKER_DIGEST}"),
        })
    );
    // What was applied is the pinned List, its workloads naming release 1.
    let applied: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(cluster.dir.path().join("applied")).unwrap())
            .unwrap();
    assert_eq!(applied["kind"], "List");
    let web = applied["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "Deployment" && i["metadata"]["name"] == "web")
        .unwrap();
    assert_eq!(
        web["metadata"]["annotations"]["kubernetes.io/change-cause"],
        format!(
            "slipway release 1: app=127.0.0.1:5000/demo/app@{APP_DIGEST}, worker=127.0.0.1:5000/demo/worker@{WORKER_DIGEST}; by alice"
        )
    );

    // `releases` reads the records back.
    let listed = kube_deploy(project.path())
        .args(["releases", "--env", "prod", "--format", "json", "--kubectl"])
        .arg(&cluster.shim)
        .env("SHIM_DIR", cluster.dir.path())
        .run();
    listed.assert_code(0);
    assert_eq!(listed.json()["hosts"][0]["releases"][0]["id"], 1);
}

#[test]
fn a_failed_rollout_undoes_what_changed_and_exits_1() {
    let project = project();
    let cluster = Cluster::new();
    cluster.deploy(project.path()).assert_code(0);
    // Release 2 changes the workloads (revision 1 -> 2), then `worker`
    // does not roll out: both are undone, the release recorded as failed.
    fs_err::remove_file(cluster.dir.path().join("applied")).unwrap();
    fs_err::write(cluster.dir.path().join("fail-worker"), "").unwrap();
    let before = cluster.log().len();
    let outcome = cluster.deploy(project.path());
    outcome.assert_code(1);
    let report = outcome.json();
    let host = &report["hosts"][0];
    assert_eq!(host["outcome"], "rolled_back", "{report:#}");
    assert_eq!(host["release"], 2);
    assert_eq!(host["rolled_back_to"], 1);
    assert_eq!(
        host["error"],
        "`deployment/worker` did not roll out (exit 1: error: deployment/worker exceeded its progress deadline)"
    );
    let k = "--context prod --namespace shop";
    let log = cluster.log();
    let run: Vec<&String> = log[before..].iter().collect();
    let tail: Vec<String> = run[run.len() - 10..].iter().map(|l| (*l).clone()).collect();
    let revision = |w: &str| {
        format!(
            "{k} get deployment/{w} -o jsonpath={{.metadata.annotations.deployment\\.kubernetes\\.io/revision}} --ignore-not-found --request-timeout=30s"
        )
    };
    assert_eq!(
        tail,
        [
            format!("{k} rollout status deployment/worker --timeout=120s"),
            // The revisions now, against those before the apply (1).
            revision("web"),
            revision("worker"),
            format!("{k} rollout undo deployment/web --to-revision=1 --request-timeout=30s"),
            format!("{k} rollout status deployment/web --timeout=120s"),
            format!("{k} rollout undo deployment/worker --to-revision=1 --request-timeout=30s"),
            format!("{k} rollout status deployment/worker --timeout=120s"),
            format!(
                "{k} get configmap slipway-prod-releases -o json --ignore-not-found --request-timeout=30s"
            ),
            format!("{k} replace -f - -o json --request-timeout=30s"),
            format!("{k} replace -f - -o json --request-timeout=30s"),
        ]
    );
    let records = records(&cluster);
    assert_eq!(records[1]["id"], 2);
    assert_eq!(records[1]["result"], "failed");
    assert_eq!(records[1]["rolled_back_to"], 1);
    let stderr = outcome.stderr_str();
    assert!(
        stderr.contains("kube-deploy: rollout undo deployment/worker --to-revision=1\n"),
        "{stderr}"
    );
}

#[test]
fn a_failed_rollout_of_no_new_revision_applies_the_previous_release_again() {
    let project = project();
    let cluster = Cluster::new();
    cluster.deploy(project.path()).assert_code(0);
    // Release 2 moves the workloads' generation (`replicas`, say) but makes
    // no new revision; `worker` does not roll out. `rollout undo` would go
    // to the revision before release 1's: release 1 is applied again.
    let dir = cluster.dir.path();
    fs_err::remove_file(dir.join("applied")).unwrap();
    fs_err::write(dir.join("same-revision"), "").unwrap();
    fs_err::write(dir.join("fail-worker"), "").unwrap();
    let before = cluster.log().len();
    let outcome = cluster.deploy(project.path());
    outcome.assert_code(1);
    let report = outcome.json();
    let host = &report["hosts"][0];
    assert_eq!(host["outcome"], "rolled_back", "{report:#}");
    assert_eq!(host["rolled_back_to"], 1);
    let k = "--context prod --namespace shop";
    let revision = |w: &str| {
        format!(
            "{k} get deployment/{w} -o jsonpath={{.metadata.annotations.deployment\\.kubernetes\\.io/revision}} --ignore-not-found --request-timeout=30s"
        )
    };
    let log = cluster.log();
    let run: Vec<String> = log[before..]
        .iter()
        .filter(|l| {
            !l.starts_with("version ")
                && !l.starts_with("kustomize ")
                && !l.starts_with("annotate ")
        })
        .cloned()
        .collect();
    assert_eq!(
        run[run.len() - 11..],
        [
            format!("{k} rollout status deployment/worker --timeout=120s"),
            revision("web"),
            revision("worker"),
            // No undo: release 1's List again.
            revision("web"),
            revision("worker"),
            format!("{k} apply -f - --request-timeout=30s"),
            format!("{k} rollout status deployment/web --timeout=120s"),
            format!("{k} rollout status deployment/worker --timeout=120s"),
            format!(
                "{k} get configmap slipway-prod-releases -o json --ignore-not-found --request-timeout=30s"
            ),
            format!("{k} replace -f - -o json --request-timeout=30s"),
            format!("{k} replace -f - -o json --request-timeout=30s"),
        ],
        "{run:#?}"
    );
    let applied: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(dir.join("applied")).unwrap()).unwrap();
    let web = applied["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "Deployment" && i["metadata"]["name"] == "web")
        .unwrap();
    assert_eq!(web["metadata"]["annotations"]["slipway.dev/release"], "1");
    assert_eq!(records(&cluster)[1]["result"], "failed");
}

#[test]
fn a_rollback_dry_run_reads_the_records_and_changes_nothing() {
    let project = project();
    let cluster = Cluster::new();
    cluster.deploy(project.path()).assert_code(0);
    cluster.deploy(project.path()).assert_code(0);
    let before = cluster.log().len();
    let outcome = kube_deploy(project.path())
        .args([
            "rollback",
            "--env",
            "prod",
            "--dry-run",
            "--format",
            "json",
            "--kubectl",
        ])
        .arg(&cluster.shim)
        .env("SHIM_DIR", cluster.dir.path())
        .env("REAL_KUBECTL", kubectl())
        .run();
    outcome.assert_code(0);
    let report = outcome.json();
    assert_eq!(report["action"], "rollback");
    assert!(
        report["dry_run"]["command_line"]
            .as_str()
            .unwrap()
            .contains("apply -f - --request-timeout=30s")
    );
    // Release 1's digests, rendered: what the rollback would apply.
    let manifest = report["manifest"].as_str().unwrap();
    assert!(manifest.contains(&format!("127.0.0.1:5000/demo/app@{APP_DIGEST}")));
    // Only the records were read from the cluster; the rest is offline.
    let log = cluster.log();
    let cluster_commands: Vec<&String> = log[before..]
        .iter()
        .filter(|l| {
            !l.starts_with("version ")
                && !l.starts_with("kustomize ")
                && !l.starts_with("annotate ")
        })
        .collect();
    assert_eq!(
        cluster_commands,
        [
            "--context prod --namespace shop get configmap slipway-prod-releases -o json --ignore-not-found --request-timeout=30s"
        ]
    );
    assert_eq!(records(&cluster).len(), 2);
}

#[test]
fn a_kubectl_older_than_1_21_is_refused_before_anything_else() {
    let project = project();
    let cluster = Cluster::new();
    // What Debian 12's kubectl 1.20.2 (kustomize v2.0.3) answers.
    fs_err::write(
        cluster.dir.path().join("old-version"),
        r#"{"clientVersion":{"major":"1","minor":"20","gitVersion":"v1.20.2","platform":"linux/amd64"}}"#,
    )
    .unwrap();
    let outcome = cluster.deploy(project.path());
    outcome.assert_code(2);
    assert_eq!(outcome.stdout_str(), "");
    assert_eq!(
        outcome.stderr_str(),
        format!(
            "error: kube-deploy needs kubectl 1.21 or newer (kustomize v4): `{}` is 1.20.2; install a current one (https://kubernetes.io/docs/tasks/tools/, or the apt repository pkgs.k8s.io) and name it with `--kubectl PATH` or $KUBECTL\n",
            cluster.shim.display()
        )
    );
    // Asked once, and nothing else: no render, no cluster touched.
    assert_eq!(cluster.log(), ["version --client -o json"]);
}

#[test]
fn a_kubectl_version_that_is_not_json_is_refused_naming_what_it_printed() {
    let project = project();
    let cluster = Cluster::new();
    fs_err::write(
        cluster.dir.path().join("old-version"),
        format!(
            "\nClient Version: v1.20.2 {}\nsecond line\n",
            "x".repeat(200)
        ),
    )
    .unwrap();
    let outcome = cluster.deploy(project.path());
    outcome.assert_code(2);
    assert_eq!(
        outcome.stderr_str(),
        format!(
            "error: cannot read the version of `{}`: `version --client -o json` printed `Client Version: v1.20.2 {}…`, not a JSON `clientVersion` with a `gitVersion` such as `v1.32.4`\n",
            cluster.shim.display(),
            "x".repeat(96)
        )
    );
    assert_eq!(cluster.log(), ["version --client -o json"]);
}
