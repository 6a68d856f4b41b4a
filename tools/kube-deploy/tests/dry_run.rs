//! `--dry-run` with the real kubectl, offline: the manifests kube-deploy
//! renders (kustomize's `images:` pins every image; the workloads carry the
//! release), the exact kubectl command lines it would run, and bad input
//! refused before any cluster is touched (exit 2).

#![allow(clippy::unwrap_used, reason = "test helpers panic like tests")]

mod common;

use common::{APP_DIGEST, WORKER_DIGEST, kube_deploy, kubectl, planned, project};

const REVISION: &str = "0123456789abcdef0123456789abcdef01234567";

fn images() -> [String; 4] {
    [
        "--image".to_owned(),
        format!("app=127.0.0.1:5000/demo/app@{APP_DIGEST}"),
        "--image".to_owned(),
        format!("worker=127.0.0.1:5000/demo/worker@{WORKER_DIGEST}"),
    ]
}

fn dry_run(dir: &std::path::Path, env: &str) -> serde_json::Value {
    let kubectl = kubectl();
    let outcome = kube_deploy(dir)
        .args(["deploy", "--env", env, "--dry-run", "--format", "json"])
        .args(images())
        .arg("--kubectl")
        .arg(&kubectl)
        .env("GITHUB_ACTOR", "alice")
        .run();
    outcome.assert_code(0);
    assert_eq!(outcome.stderr_str(), "");
    outcome.json()
}

/// The item of the applied List of `kind` and `name`.
fn item<'a>(manifest: &'a serde_json::Value, kind: &str, name: &str) -> &'a serde_json::Value {
    manifest["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["kind"] == kind && i["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} in {manifest:#}"))
}

#[test]
fn a_kustomize_env_is_rendered_with_every_image_pinned_and_applied() {
    let dir = project();
    let report = dry_run(dir.path(), "prod");
    let kubectl = kubectl().display().to_string();
    let commands = planned(&report);
    // kubectl's version is asked first (kustomize v4 needs kubectl 1.21).
    assert_eq!(commands[0], format!("{kubectl} version --client -o json"));
    // The render names our temp kustomization dir (random, removed after).
    assert!(
        commands[1].starts_with(&format!("{kubectl} kustomize /")),
        "{commands:#?}"
    );
    let k = format!("{kubectl} --context prod --namespace shop");
    assert_eq!(
        commands[2..],
        [
            // A dry run records nothing: its release is number 0.
            format!("{kubectl} annotate -f - --local -o json --overwrite slipway.dev/release=0"),
            format!("{k} get lease slipway-prod -o json --ignore-not-found --request-timeout=30s"),
            format!("{k} create -f - -o json --request-timeout=30s"),
            format!(
                "{k} get configmap slipway-prod-releases -o json --ignore-not-found --request-timeout=30s"
            ),
            format!("{k} create -f - -o json --request-timeout=30s"),
            format!(
                "{k} get deployment/web -o 'jsonpath={{.metadata.annotations.deployment\\.kubernetes\\.io/revision}}' --ignore-not-found --request-timeout=30s"
            ),
            format!(
                "{k} get deployment/worker -o 'jsonpath={{.metadata.annotations.deployment\\.kubernetes\\.io/revision}}' --ignore-not-found --request-timeout=30s"
            ),
            format!("{k} apply -f - --request-timeout=30s"),
            format!("{k} rollout status deployment/web --timeout=120s"),
            format!("{k} rollout status deployment/worker --timeout=120s"),
        ]
    );
    // The overlay by a relative path (kustomize refuses absolute ones) from
    // the temp dir, then one `images:` entry per image.
    let kustomization = report["kustomization"].as_str().expect("a kustomization");
    assert!(
        kustomization.starts_with(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- \"../"
        ),
        "{kustomization}"
    );
    assert!(
        kustomization.ends_with(&format!(
            "/k8s/overlays/prod\"\nimages:\n- name: \"127.0.0.1:5000/demo/app\"\n  digest: \"{APP_DIGEST}\"\n- name: \"127.0.0.1:5000/demo/worker\"\n  digest: \"{WORKER_DIGEST}\"\n"
        )),
        "{kustomization}"
    );

    let manifest: serde_json::Value =
        serde_json::from_str(report["manifest"].as_str().expect("a manifest")).unwrap();
    assert_eq!(manifest["kind"], "List");
    let web = item(&manifest, "Deployment", "web");
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("127.0.0.1:5000/demo/app@{APP_DIGEST}")
    );
    // The overlay's own work is kept.
    assert_eq!(web["metadata"]["labels"]["env"], "prod");
    let worker = item(&manifest, "Deployment", "worker");
    let pod = &worker["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        format!("127.0.0.1:5000/demo/worker@{WORKER_DIGEST}")
    );
    assert_eq!(
        pod["initContainers"][0]["image"],
        format!("127.0.0.1:5000/demo/app@{APP_DIGEST}")
    );
    let annotations = &web["metadata"]["annotations"];
    assert_eq!(
        annotations["kubernetes.io/change-cause"],
        format!(
            "slipway release 0: app=127.0.0.1:5000/demo/app@{APP_DIGEST}, worker=127.0.0.1:5000/demo/worker@{WORKER_DIGEST}; by alice"
        )
    );
    assert_eq!(annotations["slipway.dev/release"], "0");
    assert_eq!(annotations["slipway.dev/deployer"], "alice");
    // Every object is marked with the release; only workloads get the rest.
    let service = item(&manifest, "Service", "web");
    assert_eq!(
        service["metadata"]["annotations"],
        serde_json::json!({"slipway.dev/release": "0"})
    );
    assert_eq!(
        report["dry_run"]["hosts"],
        serde_json::json!(["kubernetes:prod/shop"])
    );
}

#[test]
fn large_manifests_are_rendered_without_waiting_on_a_full_pipe() {
    let dir = project();
    // About 430 KB of manifests: far more than a pipe holds, so kubectl
    // prints while kube-deploy is still writing to it.
    let big: Vec<String> = (0..400)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  k: {}\n",
                "x".repeat(1000)
            )
        })
        .collect();
    fs_err::write(dir.path().join("k8s/base/big.yaml"), big.join("---\n")).unwrap();
    fs_err::write(
        dir.path().join("k8s/base/kustomization.yaml"),
        "resources: [deployment.yaml, worker.yaml, service.yaml, big.yaml]\n",
    )
    .unwrap();
    let outcome = kube_deploy(dir.path())
        .args(["deploy", "--env", "prod", "--dry-run", "--format", "json"])
        .args(images())
        .arg("--kubectl")
        .arg(kubectl())
        .timeout(std::time::Duration::from_secs(60))
        .run();
    outcome.assert_code(0);
    let report = outcome.json();
    let manifest: serde_json::Value =
        serde_json::from_str(report["manifest"].as_str().expect("a manifest")).unwrap();
    assert_eq!(
        item(&manifest, "ConfigMap", "cm-399")["data"]["k"],
        "x".repeat(1000)
    );
}

#[test]
fn the_applied_list_is_what_kubectl_itself_renders_but_for_images_and_annotations() {
    // The oracle: the overlay rendered by kubectl alone, then each image
    // pinned by `kubectl set image --local`, container by container.
    let dir = project();
    let report = dry_run(dir.path(), "prod");
    let ours: serde_json::Value =
        serde_json::from_str(report["manifest"].as_str().unwrap()).unwrap();
    let kubectl = kubectl();
    let rendered = std::process::Command::new(&kubectl)
        .args(["kustomize", "k8s/overlays/prod"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(rendered.status.success());
    // Each Deployment pinned by `kubectl set image --local`, its containers named.
    let text = String::from_utf8(rendered.stdout).unwrap();
    let app = format!("127.0.0.1:5000/demo/app@{APP_DIGEST}");
    let worker = format!("127.0.0.1:5000/demo/worker@{WORKER_DIGEST}");
    let mut oracle = Vec::new();
    for (index, document) in text.split("\n---\n").enumerate() {
        let containers = if document.contains("name: worker\n") {
            vec![format!("migrate={app}"), format!("worker={worker}")]
        } else if document.contains("kind: Deployment") {
            vec![format!("web={app}")]
        } else {
            continue;
        };
        let file = dir.path().join(format!("oracle-{index}.yaml"));
        fs_err::write(&file, document).unwrap();
        let pinned = std::process::Command::new(&kubectl)
            .args(["set", "image", "-f"])
            .arg(&file)
            .args(["--local", "-o", "json"])
            .args(containers)
            .output()
            .unwrap();
        assert!(
            pinned.status.success(),
            "{}",
            String::from_utf8_lossy(&pinned.stderr)
        );
        oracle.push(serde_json::from_slice::<serde_json::Value>(&pinned.stdout).unwrap());
    }
    assert_eq!(oracle.len(), 2, "two Deployments in:\n{text}");
    // Typed set image adds empty defaults (`status: {}`, `resources: {}`,
    // `creationTimestamp: null`): those and our annotations aside, equal.
    let strip = |mut object: serde_json::Value| {
        object["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("annotations");
        prune(&mut object);
        object
    };
    let mut ours: Vec<serde_json::Value> = ours["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .cloned()
        .map(strip)
        .collect();
    let mut oracle: Vec<serde_json::Value> = oracle.into_iter().map(strip).collect();
    let key = |o: &serde_json::Value| format!("{}/{}", o["kind"], o["metadata"]["name"]);
    ours.sort_by_key(key);
    oracle.sort_by_key(key);
    assert_eq!(ours, oracle);
}

/// Removes nulls and empty objects, recursively.
fn prune(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for child in map.values_mut() {
                prune(child);
            }
            map.retain(|_, v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

#[test]
fn a_manifests_env_applies_its_files_and_a_workloads_env_sets_images() {
    let dir = project();
    let report = dry_run(dir.path(), "files");
    let kubectl = kubectl().display().to_string();
    let commands_run = planned(&report);
    assert_eq!(
        commands_run[0],
        format!("{kubectl} version --client -o json")
    );
    assert!(
        commands_run[1].starts_with(&format!(
            "{kubectl} kustomize --load-restrictor LoadRestrictionsNone /"
        )),
        "{commands_run:#?}"
    );
    let kustomization = report["kustomization"].as_str().unwrap();
    for file in ["deployment.yaml", "service.yaml", "worker.yaml"] {
        assert!(
            kustomization.contains(&format!("/k8s/base/{file}\"\n")),
            "{file} in {kustomization}"
        );
    }
    assert!(
        !kustomization.contains("kustomization.yaml\""),
        "{kustomization}"
    );
    assert_eq!(
        report["dry_run"]["hosts"],
        serde_json::json!(["kubernetes:current/shop-files"])
    );

    let report = dry_run(dir.path(), "dev");
    let k = format!("{kubectl} --namespace shop-dev");
    let app = format!("127.0.0.1:5000/demo/app@{APP_DIGEST}");
    let worker = format!("127.0.0.1:5000/demo/worker@{WORKER_DIGEST}");
    let annotations = |workload: &str| {
        format!(
            "{k} annotate {workload} --overwrite 'kubernetes.io/change-cause=slipway release 0: app={app}, worker={worker}; by alice' slipway.dev/release=0 'slipway.dev/images={{\"app\":\"{app}\",\"worker\":\"{worker}\"}}' slipway.dev/deployer=alice --request-timeout=30s"
        )
    };
    assert_eq!(
        planned(&report),
        [
            format!("{k} get lease slipway-dev -o json --ignore-not-found --request-timeout=30s"),
            format!("{k} create -f - -o json --request-timeout=30s"),
            format!(
                "{k} get configmap slipway-dev-releases -o json --ignore-not-found --request-timeout=30s"
            ),
            format!("{k} create -f - -o json --request-timeout=30s"),
            format!(
                "{k} get deployment/web -o 'jsonpath={{.metadata.annotations.deployment\\.kubernetes\\.io/revision}}' --ignore-not-found --request-timeout=30s"
            ),
            format!(
                "{k} get deployment/worker -o 'jsonpath={{.metadata.annotations.deployment\\.kubernetes\\.io/revision}}' --ignore-not-found --request-timeout=30s"
            ),
            annotations("deployment/web"),
            format!("{k} set image deployment/web web={app} --request-timeout=30s"),
            annotations("deployment/worker"),
            format!(
                "{k} set image deployment/worker migrate={app} worker={worker} --request-timeout=30s"
            ),
            format!("{k} rollout status deployment/web --timeout=300s"),
            format!("{k} rollout status deployment/worker --timeout=300s"),
        ]
    );
    assert!(report.get("manifest").is_none());
}

#[test]
fn a_dry_run_shows_no_secret_value_of_a_generator_or_a_manifest() {
    let dir = project();
    // A kustomize secretGenerator (prod) and a `kind: Secret` file (files).
    fs_err::write(
        dir.path().join("k8s/overlays/prod/kustomization.yaml"),
        "resources: [../../base]\nsecretGenerator:\n- name: db\n  literals: [PASSWORD=hunter2-generated]\n",
    )
    .unwrap();
    fs_err::write(
        dir.path().join("k8s/base/secret.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: api\ndata:\n  TOKEN: aHVudGVyMi1maWxl\nstringData:\n  KEY: hunter2-string\n",
    )
    .unwrap();
    let secret = |report: &serde_json::Value, name_prefix: &str| {
        let manifest: serde_json::Value =
            serde_json::from_str(report["manifest"].as_str().expect("a manifest")).unwrap();
        manifest["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| {
                i["kind"] == "Secret"
                    && i["metadata"]["name"]
                        .as_str()
                        .unwrap()
                        .starts_with(name_prefix)
            })
            .unwrap_or_else(|| panic!("no Secret {name_prefix}* in {manifest:#}"))
            .clone()
    };
    let report = dry_run(dir.path(), "prod");
    let generated = secret(&report, "db-");
    assert_eq!(generated["data"], serde_json::json!({"PASSWORD": "***"}));
    let report = dry_run(dir.path(), "files");
    let file = secret(&report, "api");
    assert_eq!(file["data"], serde_json::json!({"TOKEN": "***"}));
    assert_eq!(file["stringData"], serde_json::json!({"KEY": "***"}));
    // The plain output shows the same List, its values hidden too.
    let kubectl = kubectl();
    for env in ["prod", "files"] {
        let outcome = kube_deploy(dir.path())
            .args(["deploy", "--env", env, "--dry-run"])
            .args(images())
            .arg("--kubectl")
            .arg(&kubectl)
            .run();
        outcome.assert_code(0);
        let stdout = outcome.stdout_str();
        assert!(
            stdout.contains("\"PASSWORD\": \"***\"") || env == "files",
            "{stdout}"
        );
        assert!(
            stdout.contains("\"TOKEN\": \"***\"") || env == "prod",
            "{stdout}"
        );
        // Neither the value nor its base64 (`aHVudGVyMi1…` is `hunter2-…`).
        for value in ["hunter2", "aHVudGVyMi"] {
            assert!(!stdout.contains(value), "{value} shown: {stdout}");
        }
    }
}

#[test]
fn img_build_s_report_gives_the_digests() {
    let dir = project();
    let target = |name: &str, digest: &str| {
        serde_json::json!({
            "name": name, "status": "built", "repository": format!("127.0.0.1:5000/demo/{name}"),
            "tags": [format!("127.0.0.1:5000/demo/{name}:sha-0123456")],
            "reference": format!("127.0.0.1:5000/demo/{name}@{digest}"), "digest": digest,
            "image_id": null, "platforms": [], "duration_seconds": 0.5, "log": format!("/tmp/{name}.log"),
        })
    };
    // img-build's `--format json` report of a pushed build (the contract's shape).
    let build = serde_json::json!({
        "backend": "buildx", "revision": REVISION, "pushed": true, "log_dir": "/tmp",
        "targets": [target("app", APP_DIGEST), target("worker", WORKER_DIGEST)],
        "failed": [],
    });
    let outcome = kube_deploy(dir.path())
        .args(["deploy", "--env", "dev", "--dry-run", "--format", "json"])
        .args(["--images-from", "-", "--kubectl"])
        .arg(kubectl())
        .stdin(build.to_string())
        .run();
    outcome.assert_code(0);
    let report = outcome.json();
    // img-build's revision goes into the change-cause (`git <short sha>`).
    let manifest = report["manifest"].as_str().unwrap_or_default();
    assert!(
        report.get("manifest").is_none(),
        "a workloads env applies no manifest: {manifest}"
    );
    assert!(
        planned(&report).iter().any(|line| line.contains(&format!(
            "worker=127.0.0.1:5000/demo/worker@{WORKER_DIGEST}; git 0123456; by unknown"
        ))),
        "{report:#}"
    );
}

#[track_caller]
fn check_refused(dir: &std::path::Path, args: &[&str], message: &str) {
    let outcome = kube_deploy(dir)
        .args(args)
        .arg("--kubectl")
        .arg(kubectl())
        .run();
    outcome.assert(2, "", &format!("error: {message}\n"));
}

#[test]
fn a_manifest_image_of_no_env_image_by_tag_is_refused() {
    let dir = project();
    let path = dir.path().join("k8s/base/deployment.yaml");
    let text = fs_err::read_to_string(&path).unwrap();
    // A sidecar pinned by digest is fine; one by tag is not.
    fs_err::write(
        &path,
        format!(
            "{text}      - name: proxy\n        image: 127.0.0.1:5000/ext/proxy:1@{APP_DIGEST}\n      - name: cache\n        image: redis:7\n"
        ),
    )
    .unwrap();
    let app = format!("app=127.0.0.1:5000/demo/app@{APP_DIGEST}");
    let worker = format!("worker=127.0.0.1:5000/demo/worker@{WORKER_DIGEST}");
    check_refused(
        dir.path(),
        &[
            "deploy",
            "--env",
            "prod",
            "--dry-run",
            "--image",
            &app,
            "--image",
            &worker,
        ],
        "`deployment/web` runs `redis:7` by tag, an image this deploy does not pin: write it with its digest in the manifests (`redis@sha256:…`), or make it an image of slipway.toml that the env deploys",
    );
}

#[test]
fn two_envs_that_would_share_a_lease_are_refused() {
    let dir = project();
    let path = dir.path().join("slipway.toml");
    let text = fs_err::read_to_string(&path).unwrap();
    // `Prod` spells `prod`'s Lease and records in the same namespace.
    let prod = text
        .split("[envs.prod]")
        .nth(1)
        .and_then(|rest| rest.split("[envs.files]").next())
        .unwrap()
        .replace("[envs.prod.kubernetes]", "[envs.Prod.kubernetes]");
    fs_err::write(&path, format!("{text}\n[envs.Prod]{prod}")).unwrap();
    let app = format!("app=127.0.0.1:5000/demo/app@{APP_DIGEST}");
    let worker = format!("worker=127.0.0.1:5000/demo/worker@{WORKER_DIGEST}");
    check_refused(
        dir.path(),
        &[
            "deploy",
            "--env",
            "prod",
            "--dry-run",
            "--image",
            &app,
            "--image",
            &worker,
        ],
        "envs `prod` and `Prod` of slipway.toml both keep their Lease and release records as `slipway-prod` in namespace `shop`: they would share a lock and a history; rename one (lowercase letters, digits and `-` name them exactly) or give it another `namespace`",
    );
}

#[test]
fn bad_input_is_refused_before_any_cluster_is_touched() {
    let dir = project();
    let dir = dir.path();
    let app = format!("app=127.0.0.1:5000/demo/app@{APP_DIGEST}");
    check_refused(
        dir,
        &["deploy", "--env", "hosts", "--image", &app],
        "env `hosts` deploys to ssh: use ssh-deploy",
    );
    check_refused(
        dir,
        &["deploy", "--env", "prod", "--image", &app],
        "env `prod` needs `--image worker=…` (for `WORKER_IMAGE`)",
    );
    check_refused(
        dir,
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            "app=127.0.0.1:5000/demo/app:latest",
        ],
        "`--image app=127.0.0.1:5000/demo/app:latest` is not immutable: give a digest (`repo@sha256:…`) or a tag such as `sha-<commit>`, never `latest`",
    );
    check_refused(
        dir,
        &["deploy", "--env", "partial", "--image", &app],
        "`deployment/worker` runs `127.0.0.1:5000/demo/worker:main`, image `worker` by tag: this deploy does not pin it to a digest; give `--image worker=<registry/repo>@sha256:…` (or build it into `--images-from`)",
    );
    let cron = format!("cron=127.0.0.1:5000/demo/cron@{APP_DIGEST}");
    let worker = format!("worker=127.0.0.1:5000/demo/worker@{WORKER_DIGEST}");
    check_refused(
        dir,
        &[
            "deploy", "--env", "extra", "--image", &app, "--image", &worker, "--image", &cron,
        ],
        "image `cron` is in no container of the env's manifests: no `image:` names its repository `127.0.0.1:5000/demo/cron`; deploy only the images the manifests use, or add it to them",
    );
    check_refused(
        dir,
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            &app,
            "--namespace",
            "Shop",
        ],
        "invalid `--namespace Shop`: a namespace is 1 to 63 lowercase letters, digits and `-`, starting and ending with a letter or digit",
    );
}

#[test]
fn an_unreachable_cluster_fails_at_the_lease_with_kubectl_s_reason() {
    // A kubeconfig whose server refuses connections (nothing listens on
    // port 1 of loopback): the first cluster command, the lease, fails.
    let dir = project();
    let kubeconfig = dir.path().join("kubeconfig");
    fs_err::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\ncontexts: [{name: prod, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: not-a-secret}}]\ncurrent-context: prod\n",
    )
    .unwrap();
    let outcome = kube_deploy(dir.path())
        .args(["deploy", "--env", "prod"])
        .args(images())
        .arg("--kubectl")
        .arg(kubectl())
        .env("KUBECONFIG", &kubeconfig)
        .run();
    outcome.assert_code(3);
    assert_eq!(outcome.stdout_str(), "");
    assert_eq!(
        outcome.stderr_str(),
        "error: cannot read the lease `shop/slipway-prod` (exit 1: The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?)\n"
    );
}

#[test]
fn the_lobmob_example_renders_for_dev_and_prod() {
    // examples/lobmob as the workflow deploys it: each overlay's namespace
    // and replicas kept, the image pinned.
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lobmob");
    let reference = format!("registry.example.com/lobmob/app@{APP_DIGEST}");
    for (env, namespace, replicas) in [("dev", "lobmob-dev", 1), ("prod", "lobmob", 3)] {
        let outcome = kube_deploy(&example)
            .args([
                "deploy",
                "--env",
                env,
                "--dry-run",
                "--format",
                "json",
                "--image",
            ])
            .arg(format!("app={reference}"))
            .arg("--kubectl")
            .arg(kubectl())
            .run();
        outcome.assert_code(0);
        let report = outcome.json();
        let manifest: serde_json::Value =
            serde_json::from_str(report["manifest"].as_str().unwrap()).unwrap();
        let deployment = item(&manifest, "Deployment", "lobmob");
        assert_eq!(deployment["metadata"]["namespace"], namespace, "{env}");
        assert_eq!(deployment["spec"]["replicas"], replicas, "{env}");
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"], reference,
            "{env}"
        );
        assert_eq!(
            report["dry_run"]["hosts"],
            serde_json::json!([format!("kubernetes:lobmob/{namespace}")])
        );
    }
}

#[test]
fn context_and_namespace_flags_win_over_slipway_toml() {
    let dir = project();
    let outcome = kube_deploy(dir.path())
        .args(["deploy", "--env", "dev", "--dry-run", "--format", "json"])
        .args(images())
        .args([
            "--context",
            "staging-cluster",
            "--namespace",
            "shop-blue",
            "--timeout",
            "45s",
        ])
        .arg("--kubectl")
        .arg(kubectl())
        .run();
    outcome.assert_code(0);
    let report = outcome.json();
    assert_eq!(
        report["dry_run"]["hosts"],
        serde_json::json!(["kubernetes:staging-cluster/shop-blue"])
    );
    let kubectl = kubectl().display().to_string();
    let lines = planned(&report);
    assert_eq!(
        lines[0],
        format!(
            "{kubectl} --context staging-cluster --namespace shop-blue get lease slipway-dev -o json --ignore-not-found --request-timeout=30s"
        )
    );
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "{kubectl} --context staging-cluster --namespace shop-blue rollout status deployment/worker --timeout=45s"
        )
    );
}
