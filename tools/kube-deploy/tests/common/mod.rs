//! What the kube-deploy tests share: a project with a kustomize base and
//! overlay, three kubernetes envs (kustomize, manifests, named workloads),
//! and the binary.

#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "each test file uses a different part; helpers panic like tests"
)]

use std::path::{Path, PathBuf};

use slipway_testbed::cmd::Cmd;

/// A digest for `app`.
pub(crate) const APP_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";
/// A digest for `worker`.
pub(crate) const WORKER_DIGEST: &str =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";

pub(crate) const SLIPWAY_TOML: &str = r#"[project]
name = "shop"
registry = "127.0.0.1:5000/demo"

[images.app]

[images.worker]

[images.cron]

[envs.prod]
target = "kubernetes"
images = { APP_IMAGE = "app", WORKER_IMAGE = "worker" }
lock_timeout = "5s"

[envs.prod.kubernetes]
context = "prod"
namespace = "shop"
kustomize = "k8s/overlays/prod"
rollout_timeout = "2m"

[envs.files]
target = "kubernetes"
images = { APP_IMAGE = "app", WORKER_IMAGE = "worker" }

[envs.files.kubernetes]
namespace = "shop-files"
manifests = "k8s/base"

[envs.dev]
target = "kubernetes"
images = { APP_IMAGE = "app", WORKER_IMAGE = "worker" }

[envs.dev.kubernetes]
namespace = "shop-dev"

[envs.dev.kubernetes.workloads]
"deployment/web" = { web = "app" }
"deployment/worker" = { worker = "worker", migrate = "app" }

[envs.extra]
target = "kubernetes"
images = { APP_IMAGE = "app", WORKER_IMAGE = "worker", CRON_IMAGE = "cron" }

[envs.extra.kubernetes]
kustomize = "k8s/overlays/prod"

[envs.partial]
target = "kubernetes"
images = { APP_IMAGE = "app" }

[envs.partial.kubernetes]
manifests = "k8s/base"

[envs.hosts]
hosts = ["deploy@127.0.0.1"]
remote_path = "/srv/shop"
command = "./deploy.sh"
"#;

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: 127.0.0.1:5000/demo/app:latest
";

const WORKER: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
spec:
  selector:
    matchLabels: {app: worker}
  template:
    metadata:
      labels: {app: worker}
    spec:
      initContainers:
      - name: migrate
        image: 127.0.0.1:5000/demo/app
      containers:
      - name: worker
        image: 127.0.0.1:5000/demo/worker:main
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
";

/// A project directory holding slipway.toml and `k8s/` (base and a prod overlay).
pub(crate) fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    };
    write("slipway.toml", SLIPWAY_TOML);
    write("k8s/base/deployment.yaml", DEPLOYMENT);
    write("k8s/base/worker.yaml", WORKER);
    write("k8s/base/service.yaml", SERVICE);
    write(
        "k8s/base/kustomization.yaml",
        "resources: [deployment.yaml, worker.yaml, service.yaml]\n",
    );
    write(
        "k8s/overlays/prod/kustomization.yaml",
        "resources: [../../base]\nlabels:\n- pairs: {env: prod}\n",
    );
    dir
}

/// `kube-deploy` in `dir`, environment cleared.
pub(crate) fn kube_deploy(dir: &Path) -> Cmd {
    let mut command = Cmd::new(env!("CARGO_BIN_EXE_kube-deploy"));
    command.current_dir(dir);
    command
}

/// The real kubectl, for what runs offline.
pub(crate) fn kubectl() -> PathBuf {
    slipway_testbed::require("kubectl", "kubectl (kubernetes-client)")
}

/// The command lines of a dry run, shell-quoted, one per line.
pub(crate) fn planned(report: &serde_json::Value) -> Vec<String> {
    report["dry_run"]["command_line"]
        .as_str()
        .expect("a dry run's command lines")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The argvs of a report's `commands`, each joined by spaces.
pub(crate) fn commands(report: &serde_json::Value) -> Vec<String> {
    report["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|argv| {
            argv.as_array()
                .expect("an argv")
                .iter()
                .map(|a| a.as_str().expect("a string").to_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}
