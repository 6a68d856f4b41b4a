//! A whole deploy by the real binary, whose `--kubectl` is a shim: no API
//! server can run here, so the shim records each command line and answers
//! as a cluster would (the Lease written, workloads' generations, rollout
//! status), handing what runs offline (`kustomize`, `annotate --local`) to
//! the real kubectl. What is checked is what kube-deploy asks, in order.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{APP_DIGEST, WORKER_DIGEST, commands, kube_deploy, kubectl, project};

const SHIM: &str = r#"#!/bin/sh
# Flags before the verb say where: drop them (the log keeps the whole line).
echo "$*" >> "$SHIM_DIR/log"
while [ "${1#--}" != "$1" ]; do shift 2; done
case "$1 $2" in
"kustomize "*|"annotate "*) exec "$REAL_KUBECTL" "$@" ;;
"get lease") ;;
"create -f"|"replace -f")
    n=$(ls "$SHIM_DIR" | grep -c '^lease-')
    cat > "$SHIM_DIR/lease-$n.json"
    echo "{\"metadata\":{\"resourceVersion\":\"$((n + 100))\"}}" ;;
"get "*) if [ -e "$SHIM_DIR/applied" ]; then echo 2; else echo 1; fi ;;
"apply -f") cat > "$SHIM_DIR/applied"; echo "deployment.apps/web configured" ;;
"rollout status")
    if [ -e "$SHIM_DIR/fail-${3#*/}" ] && [ ! -e "$SHIM_DIR/undone" ]; then
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
        std::fs::write(&shim, SHIM).unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        Cluster { dir, shim }
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("log"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn lease(&self, n: usize) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.path().join(format!("lease-{n}.json")))
            .unwrap_or_else(|e| panic!("lease-{n}.json: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn deploy(&self, project: &std::path::Path) -> slipway_testbed::cmd::Outcome {
        kube_deploy(project)
            .args(["deploy", "--env", "prod", "--format", "json", "--image"])
            .arg(format!("app=127.0.0.1:5000/demo/app@{APP_DIGEST}"))
            .arg("--image")
            .arg(format!("worker=127.0.0.1:5000/demo/worker@{WORKER_DIGEST}"))
            .arg("--kubectl")
            .arg(&self.shim)
            .env("SHIM_DIR", self.dir.path())
            .env("REAL_KUBECTL", kubectl())
            .env("GITHUB_ACTOR", "alice")
            .run()
    }
}

#[test]
fn a_deploy_takes_the_lease_applies_rolls_out_and_releases_it() {
    let project = project();
    let cluster = Cluster::new();
    let outcome = cluster.deploy(project.path());
    outcome.assert_code(0);
    let report = outcome.json();
    assert_eq!(report["outcome"], "deployed");
    assert_eq!(report["lease"], "shop/slipway-prod");
    let release = report["release"]["id"].as_str().unwrap().to_owned();
    let k = "--context prod --namespace shop";
    let log = cluster.log();
    // What ran is what the report says ran (the lease's renewals aside).
    let reported: Vec<String> = commands(&report)
        .iter()
        .map(|c| c.split_once(' ').unwrap().1.to_owned())
        .collect();
    assert_eq!(log, reported);
    assert_eq!(
        log[2..],
        [
            format!("{k} get lease slipway-prod -o json --ignore-not-found --request-timeout=30s"),
            format!("{k} create -f - -o json --request-timeout=30s"),
            format!(
                "{k} get deployment/web -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
            ),
            format!(
                "{k} get deployment/worker -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
            ),
            format!("{k} apply -f - --request-timeout=30s"),
            format!(
                "{k} get deployment/web -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
            ),
            format!(
                "{k} get deployment/worker -o jsonpath={{.metadata.generation}} --ignore-not-found --request-timeout=30s"
            ),
            format!("{k} rollout status deployment/web --timeout=120s"),
            format!("{k} rollout status deployment/worker --timeout=120s"),
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
    assert_eq!(taken["spec"]["holderIdentity"], format!("alice {release}"));
    assert_eq!(taken["spec"]["leaseDurationSeconds"], 30);
    let released = cluster.lease(1);
    assert_eq!(released["metadata"]["resourceVersion"], "100");
    assert!(
        released["spec"].get("holderIdentity").is_none(),
        "{released:#}"
    );
    // What was applied is the pinned List of the dry run.
    let applied: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cluster.dir.path().join("applied")).unwrap())
            .unwrap();
    assert_eq!(applied["kind"], "List");
    assert!(
        applied
            .to_string()
            .contains(&format!("127.0.0.1:5000/demo/worker@{WORKER_DIGEST}")),
        "{applied:#}"
    );
}

#[test]
fn a_failed_rollout_undoes_what_changed_and_exits_1() {
    let project = project();
    let cluster = Cluster::new();
    std::fs::write(cluster.dir.path().join("fail-worker"), "").unwrap();
    let outcome = cluster.deploy(project.path());
    outcome.assert_code(1);
    let report = outcome.json();
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(
        report["failure"],
        "`deployment/worker` did not roll out (exit 1: error: deployment/worker exceeded its progress deadline)"
    );
    assert_eq!(
        report["workloads"],
        serde_json::json!([
            {"workload": "deployment/web", "outcome": "rolled out"},
            {"workload": "deployment/worker", "outcome": "failed: exit 1: error: deployment/worker exceeded its progress deadline"},
        ])
    );
    let k = "--context prod --namespace shop";
    let log = cluster.log();
    assert_eq!(
        log[log.len() - 6..],
        [
            format!("{k} rollout status deployment/worker --timeout=120s"),
            format!("{k} rollout undo deployment/web --request-timeout=30s"),
            format!("{k} rollout status deployment/web --timeout=120s"),
            format!("{k} rollout undo deployment/worker --request-timeout=30s"),
            format!("{k} rollout status deployment/worker --timeout=120s"),
            format!("{k} replace -f - -o json --request-timeout=30s"),
        ]
    );
    let stderr = outcome.stderr_str();
    assert!(
        stderr.contains("kube-deploy: rollout undo deployment/worker\n"),
        "{stderr}"
    );
}
