//! The plan without a builder: `--dry-run` prints every command a backend
//! would run (the only way to check buildx here, which has no plugin), in
//! dependency order, for the selected images; bad input exits 2 with a
//! message naming what is wrong.

mod common;

use common::{THREE_IMAGES, img_build, json, project, run};

const REGISTRY: &str = "127.0.0.1:5999";

fn dry_run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    run(img_build(dir)
        .args(["--dry-run", "--format", "json", "--log-dir", "logs"])
        .args(args))
}

fn argv(report: &serde_json::Value, name: &str, command: usize) -> Vec<String> {
    common::target(report, name)["commands"][command]["argv"]
        .as_array()
        .expect("an argv")
        .iter()
        .map(|a| a.as_str().expect("a string").to_owned())
        .collect()
}

#[track_caller]
fn check_usage_error(dir: &std::path::Path, args: &[&str], message: &str) {
    let output = dry_run(dir, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(message),
        "{args:?}: expected `{message}` in:\n{stderr}"
    );
}

#[test]
fn buildx_builds_each_image_with_one_command_in_dependency_order() {
    let repo = project(
        REGISTRY,
        &format!(
            "{THREE_IMAGES}\n[images.multi]\ndockerfile = \"base.Dockerfile\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ncache_from = [\"type=gha\"]\ncache_to = [\"type=gha,mode=max\"]\nsecrets = [\"id=npm,env=NPM_TOKEN\"]\n"
        ),
        "FROM scratch\nCOPY base.txt /\n",
    );
    let head = repo.head();
    let short = &head[..7];
    let output = run(img_build(repo.path())
        .args(["--dry-run", "--format", "json", "--log-dir", "logs"])
        .args([
            "--all",
            "--backend",
            "buildx",
            "--push",
            "--network",
            "none",
            "--docker",
            "/opt/docker",
        ])
        .env("NPM_TOKEN", "top-secret-value"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    assert_eq!(
        report["order"],
        serde_json::json!(["base", "app", "migrator", "multi"])
    );
    assert_eq!(report["backend"], "buildx");
    assert_eq!(report["revision"], head);

    let logs = repo.path().join("logs");
    let dir = repo.path().display().to_string();
    let app = argv(&report, "app", 0);
    // The builder reads a copy named by the sha256 of the Dockerfile's bytes.
    let sha = common::sha256_of(&repo.path().join("Dockerfile"));
    let epoch = repo.git(&["log", "-1", "--format=%ct"]);
    let expected: Vec<String> = [
        "/opt/docker",
        "buildx",
        "build",
        "--file",
        &format!("{dir}/logs/dockerfiles/{sha}.Dockerfile"),
        "--target",
        "app",
        "--build-arg",
        // A pushed run passes base's digest, known once base is pushed.
        &format!("BASE_IMAGE={REGISTRY}/demo/base@<digest of base>"),
        "--build-arg",
        &format!("SOURCE_DATE_EPOCH={}", epoch.trim()),
        "--label",
        "com.example.team=web",
        "--label",
        &format!("dev.slipway.dockerfile.sha256={sha}"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    assert_eq!(app[..expected.len()], expected[..], "{app:?}");
    for label in [
        format!("org.opencontainers.image.revision={head}"),
        "org.opencontainers.image.source=https://example.invalid/demo".to_owned(),
        "org.opencontainers.image.title=app".to_owned(),
        "org.opencontainers.image.version=main".to_owned(),
    ] {
        assert!(
            app.windows(2).any(|w| w == ["--label", label.as_str()]),
            "{label} in {app:?}"
        );
    }
    let tail = [
        "--tag".to_owned(),
        format!("{REGISTRY}/demo/app:main"),
        "--tag".to_owned(),
        format!("{REGISTRY}/demo/app:sha-{short}"),
        "--network".to_owned(),
        "none".to_owned(),
        "--metadata-file".to_owned(),
        logs.join("app.metadata.json").display().to_string(),
        "--push".to_owned(),
        dir.clone(),
    ];
    assert_eq!(app[app.len() - tail.len()..], tail[..], "{app:?}");
    assert_eq!(
        common::target(&report, "app")["commands"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let multi = argv(&report, "multi", 0);
    for pair in [
        ["--platform", "linux/amd64,linux/arm64"],
        ["--cache-from", "type=gha,scope=multi"],
        ["--cache-to", "type=gha,mode=max,scope=multi"],
        ["--secret", "id=npm,env=NPM_TOKEN"],
    ] {
        assert!(multi.windows(2).any(|w| w == pair), "{pair:?} in {multi:?}");
    }
    assert!(!String::from_utf8_lossy(&output.stdout).contains("top-secret-value"));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("top-secret-value"));
}

#[test]
fn without_buildx_a_multi_platform_image_is_built_per_platform_and_indexed() {
    let repo = project(
        REGISTRY,
        "[images.multi]\ndockerfile = \"base.Dockerfile\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\nsecrets = [\"id=npm,env=NPM_TOKEN\"]\n",
        "FROM scratch\nCOPY base.txt /\n",
    );
    let output = run(img_build(repo.path())
        .args(["--dry-run", "--format", "json", "--log-dir", "logs"])
        .args([
            "--only",
            "multi",
            "--backend",
            "buildah",
            "--push",
            "--buildah",
            "/opt/buildah",
        ])
        .env("NPM_TOKEN", "top-secret-value"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    let multi = common::target(&report, "multi");
    let steps: Vec<&str> = multi["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["step"].as_str().unwrap())
        .collect();
    let main = format!("{REGISTRY}/demo/multi:main");
    assert_eq!(
        steps,
        [
            "build linux/amd64".to_owned(),
            format!("push {main}-linux-amd64"),
            "build linux/arm64".to_owned(),
            format!("push {main}-linux-arm64"),
        ]
    );
    assert_eq!(multi["index_tags"], serde_json::json!(multi["tags"]));
    let push = argv(&report, "multi", 3);
    let digest_file = repo
        .path()
        .join("logs/multi-linux-arm64.digest")
        .display()
        .to_string();
    assert_eq!(
        push,
        [
            "/opt/buildah",
            "push",
            "--tls-verify=false",
            "--digestfile",
            &digest_file,
            &format!("{main}-linux-arm64"),
            &format!("docker://{main}-linux-arm64"),
        ]
    );
    let build = argv(&report, "multi", 2);
    assert!(
        build.windows(2).any(|w| w == ["--platform", "linux/arm64"]),
        "{build:?}"
    );
    assert!(
        build
            .windows(2)
            .any(|w| w == ["--secret", "id=npm,src=<0600 temp file holding secret npm>"]),
        "{build:?}"
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("top-secret-value"));
}

#[test]
fn only_and_targets_from_select_images_and_keep_dependency_order() {
    let repo = project(REGISTRY, THREE_IMAGES, "FROM scratch\nCOPY base.txt /\n");
    // app and migrator can be built without base: their base has a default.
    repo.write(
        "Dockerfile",
        common::TWO_STAGES.replace("ARG BASE_IMAGE\n", "ARG BASE_IMAGE=scratch\n"),
    );
    repo.commit("a default base");
    let order = |args: &[&str], stdin: Option<&str>| {
        let mut command = img_build(repo.path());
        command
            .args(["--dry-run", "--format", "json", "--backend", "buildkit"])
            .args(args);
        if let Some(text) = stdin {
            command.stdin(text);
        }
        let output = run(&mut command);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        json(&output)["order"].clone()
    };
    assert_eq!(
        order(&["--only", "migrator,base"], None),
        serde_json::json!(["base", "migrator"])
    );
    assert_eq!(
        order(&["--only", "app", "--only", "migrator"], None),
        serde_json::json!(["app", "migrator"])
    );
    repo.write(
        "changes.json",
        r#"{"app": true, "app_count": 1, "app_files": ["app.txt"], "changes": ["app"], "targets": ["migrator", "base"]}"#,
    );
    assert_eq!(
        order(&["--targets-from", "changes.json"], None),
        serde_json::json!(["base", "migrator"])
    );
    assert_eq!(
        order(&["--targets-from", "-"], Some(r#"{"targets": ["app"]}"#)),
        serde_json::json!(["app"])
    );
    assert_eq!(
        order(&["--targets-from", "-"], Some(r#"{"targets": []}"#)),
        serde_json::json!([])
    );
}

#[test]
fn a_dependency_built_in_the_same_run_is_handed_over_as_a_build_arg() {
    let repo = project(REGISTRY, THREE_IMAGES, "FROM scratch\nCOPY base.txt /\n");
    let with_base = json(&dry_run(
        repo.path(),
        &["--only", "app,base", "--backend", "buildkit"],
    ));
    let app = argv(&with_base, "app", 0);
    assert!(
        app.windows(2).any(|w| w
            == [
                "--build-arg",
                &format!("BASE_IMAGE={REGISTRY}/demo/base:main")
            ]),
        "{app:?}"
    );
    assert_eq!(
        common::target(&with_base, "app")["depends_on"],
        serde_json::json!(["base"])
    );
    // Alone, the Dockerfile's default applies (without one, the plan is
    // refused: see bad_input.rs).
    repo.write(
        "Dockerfile",
        common::TWO_STAGES.replace("ARG BASE_IMAGE\n", "ARG BASE_IMAGE=scratch\n"),
    );
    repo.commit("a default base");
    let alone = json(&dry_run(
        repo.path(),
        &["--only", "app", "--backend", "buildkit"],
    ));
    let app = argv(&alone, "app", 0);
    assert!(!app.iter().any(|a| a.starts_with("BASE_IMAGE=")), "{app:?}");
}

#[test]
fn a_dirty_tree_is_labelled_or_refused() {
    let repo = project(REGISTRY, THREE_IMAGES, "FROM scratch\nCOPY base.txt /\n");
    repo.write("app.txt", "changed\n");
    let report = json(&dry_run(
        repo.path(),
        &["--only", "base", "--backend", "buildah"],
    ));
    assert_eq!(report["revision"], format!("{}-dirty", repo.head()));
    let base = argv(&report, "base", 0);
    let label = format!("org.opencontainers.image.revision={}-dirty", repo.head());
    assert!(
        base.windows(2).any(|w| w == ["--label", label.as_str()]),
        "{base:?}"
    );
    check_usage_error(
        repo.path(),
        &["--only", "base", "--backend", "buildah", "--require-clean"],
        "has uncommitted changes and `--require-clean` is given",
    );
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    let repo = project(
        REGISTRY,
        &format!(
            "{THREE_IMAGES}\n[images.multi]\ndockerfile = \"base.Dockerfile\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ncache_to = [\"type=local,dest=/tmp/c\"]\n\n[images.secretive]\nsecrets = [\"id=npm,env=IMG_BUILD_TEST_UNSET\"]\n"
        ),
        "FROM scratch\nCOPY base.txt /\n",
    );
    let dir = repo.path();
    check_usage_error(
        dir,
        &["--backend", "buildkit"],
        "choose the images to build: `--only NAMES`, `--all`, or `--targets-from FILE`",
    );
    check_usage_error(
        dir,
        &["--only", "ap", "--backend", "buildkit"],
        "did you mean `app`?",
    );
    check_usage_error(
        dir,
        &["--only", "multi", "--backend", "buildkit"],
        "image `multi` is built for 2 platforms: without buildx each platform is pushed",
    );
    check_usage_error(
        dir,
        &["--only", "multi", "--backend", "buildx", "--load"],
        "which `--load` cannot keep in the local image store",
    );
    check_usage_error(
        dir,
        &["--only", "secretive", "--backend", "buildx"],
        "secret `npm` of image `secretive` reads $IMG_BUILD_TEST_UNSET, which is not set",
    );
    check_usage_error(
        dir,
        &["--only", "app", "--backend", "buildx", "--tag", "type=nope"],
        "invalid `--tag`: unknown tag rule type `nope` in `type=nope`",
    );
    check_usage_error(dir, &["--all", "--only", "app"], "cannot be used with");
    check_usage_error(
        dir,
        &["--all", "--jobs", "0"],
        "invalid value '0' for '--jobs <N>'",
    );
    repo.write("not-json.txt", "app\n");
    check_usage_error(
        dir,
        &["--targets-from", "not-json.txt", "--backend", "buildx"],
        "is not JSON",
    );
    repo.write("no-targets.json", "{\"changes\": []}");
    check_usage_error(
        dir,
        &["--targets-from", "no-targets.json", "--backend", "buildx"],
        "has no `targets` list",
    );
}

#[test]
fn the_plain_dry_run_lists_the_order_tags_and_commands() {
    let repo = project(
        REGISTRY,
        "[images.base]\ndockerfile = \"base.Dockerfile\"\n\n[images.app]\ntarget = \"app\"\ndepends_on = [\"base\"]\ncache_to = [\"type=inline\"]\n",
        "FROM scratch\nCOPY base.txt /\n",
    );
    let output = run(img_build(repo.path())
        .args([
            "--all",
            "--dry-run",
            "--push",
            "--backend",
            "buildkit",
            "--docker",
            "/usr/bin/docker",
        ])
        .args(["--network", "none", "--log-dir", "logs"])
        .env("SOURCE_DATE_EPOCH", "1700000000"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let root = repo.path().display().to_string();
    insta::with_settings!({ filters => vec![(root.as_str(), "[TMP]")] }, {
        insta::assert_snapshot!(stdout);
    });
}

#[test]
fn without_push_nothing_is_pushed_and_buildx_loads_when_asked() {
    let repo = project(REGISTRY, THREE_IMAGES, "FROM scratch\nCOPY base.txt /\n");
    let commands = |args: &[&str]| {
        let report = json(&dry_run(repo.path(), args));
        common::target(&report, "base")["commands"]
            .as_array()
            .expect("commands")
            .iter()
            .map(|c| {
                c["argv"]
                    .as_array()
                    .expect("argv")
                    .iter()
                    .map(|a| a.as_str().expect("a string").to_owned())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    for backend in ["buildkit", "buildah"] {
        let local = commands(&["--only", "base", "--backend", backend]);
        assert_eq!(local.len(), 1, "{backend}: one build, no push: {local:?}");
    }
    let loaded = commands(&["--only", "base", "--backend", "buildx", "--load"]);
    assert_eq!(
        loaded[0].iter().rev().nth(1).map(String::as_str),
        Some("--load"),
        "{loaded:?}"
    );
    let neither = commands(&["--only", "base", "--backend", "buildx"]);
    assert!(
        !neither[0].iter().any(|a| a == "--load" || a == "--push"),
        "{neither:?}"
    );
}

#[test]
fn an_image_out_of_the_default_build_is_built_only_by_name() {
    let repo = project(
        REGISTRY,
        &THREE_IMAGES.replace(
            "[images.migrator]\n",
            "[images.migrator]\ndefault = false\n",
        ),
        "FROM scratch\nCOPY base.txt /\n",
    );
    let all = json(&dry_run(repo.path(), &["--all", "--backend", "buildah"]));
    assert_eq!(all["order"], serde_json::json!(["base", "app"]));
    let named = json(&dry_run(
        repo.path(),
        &["--only", "base,migrator", "--backend", "buildah"],
    ));
    assert_eq!(named["order"], serde_json::json!(["base", "migrator"]));
}

#[test]
fn cache_values_a_backend_cannot_use_are_left_out_and_flags_win() {
    let repo = project(
        REGISTRY,
        "[images.app]\ndockerfile = \"base.Dockerfile\"\ncache_from = [\"type=gha\", \"type=registry,ref=127.0.0.1:5999/demo/cache:app\"]\ncache_to = [\"type=inline\", \"type=gha,mode=max\"]\n",
        "FROM scratch\nCOPY base.txt /\n",
    );
    let argv_of = |args: &[&str]| {
        let output = dry_run(repo.path(), args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{args:?}: {stderr}");
        (argv(&json(&output), "app", 0), stderr)
    };
    let pairs = |argv: &[String], flag: &str| -> Vec<String> {
        argv.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    };
    // One slipway.toml: buildx takes it all, buildah what it can, saying what it left out.
    let (buildx, _) = argv_of(&["--only", "app", "--backend", "buildx"]);
    assert_eq!(
        pairs(&buildx, "--cache-from"),
        [
            "type=gha,scope=app",
            "type=registry,ref=127.0.0.1:5999/demo/cache:app"
        ]
    );
    assert_eq!(
        pairs(&buildx, "--cache-to"),
        ["type=inline", "type=gha,mode=max,scope=app"]
    );
    let (buildah, stderr) = argv_of(&["--only", "app", "--backend", "buildah"]);
    assert_eq!(
        pairs(&buildah, "--cache-from"),
        ["127.0.0.1:5999/demo/cache:app"]
    );
    assert!(pairs(&buildah, "--cache-to").is_empty(), "{buildah:?}");
    for value in [
        "cache_from` value `type=gha,scope=app",
        "cache_to` value `type=inline",
        "cache_to` value `type=gha,mode=max,scope=app",
    ] {
        assert!(
            stderr.contains(&format!("img-build: `{value}` of image `app` is left out: the buildah backend uses only registry caches")),
            "{value}: {stderr}"
        );
    }
    let (buildkit, stderr) = argv_of(&["--only", "app", "--backend", "buildkit"]);
    assert_eq!(
        pairs(&buildkit, "--cache-from"),
        ["127.0.0.1:5999/demo/cache:app"]
    );
    assert!(
        buildkit.contains(&"BUILDKIT_INLINE_CACHE=1".to_owned()),
        "{buildkit:?}"
    );
    assert!(stderr.contains("img-build: `cache_to` value `type=gha,mode=max,scope=app` of image `app` is left out: the buildkit backend writes only `type=inline` (buildx takes it)"), "{stderr}");

    // Flags win over the file; `--no-cache` drops every value.
    let (flagged, _) = argv_of(&[
        "--only",
        "app",
        "--backend",
        "buildx",
        "--cache-from",
        "type=local,src=/tmp/c",
        "--cache-to",
        "type=local,dest=/tmp/c",
    ]);
    assert_eq!(pairs(&flagged, "--cache-from"), ["type=local,src=/tmp/c"]);
    assert_eq!(pairs(&flagged, "--cache-to"), ["type=local,dest=/tmp/c"]);
    let (none, _) = argv_of(&["--only", "app", "--backend", "buildah", "--no-cache"]);
    assert!(none.contains(&"--no-cache".to_owned()), "{none:?}");
    assert!(
        pairs(&none, "--cache-from").is_empty() && !none.contains(&"--layers".to_owned()),
        "{none:?}"
    );
}

#[test]
fn a_gitlab_branch_pipeline_on_a_detached_head_gets_the_branch_tag() {
    let repo = project(REGISTRY, THREE_IMAGES, "FROM scratch\nCOPY base.txt /\n");
    let head = repo.head();
    // GitLab's runner checks out the commit, not the branch.
    repo.checkout(&head);
    // What GitLab CI sets for a push pipeline of `main`.
    let gitlab = [
        ("GITLAB_CI", "true"),
        ("CI", "true"),
        ("CI_PIPELINE_SOURCE", "push"),
        ("CI_COMMIT_SHA", head.as_str()),
        ("CI_COMMIT_BRANCH", "main"),
        ("CI_COMMIT_REF_NAME", "main"),
        (
            "CI_COMMIT_BEFORE_SHA",
            "0000000000000000000000000000000000000000",
        ),
        ("CI_DEFAULT_BRANCH", "main"),
        ("CI_PROJECT_PATH", "group/demo"),
    ];
    let output = run(img_build(repo.path())
        .args(["--dry-run", "--format", "json", "--log-dir", "logs"])
        .args(["--only", "base", "--backend", "buildah"])
        .envs(gitlab));
    let report = json(&output);
    assert_eq!(
        common::target(&report, "base")["tags"],
        serde_json::json!([
            format!("{REGISTRY}/demo/base:main"),
            format!("{REGISTRY}/demo/base:sha-{}", &head[..7]),
        ])
    );
}

#[test]
fn a_jenkins_multibranch_build_on_a_detached_head_gets_the_branch_tag() {
    let repo = project(REGISTRY, THREE_IMAGES, "FROM scratch\nCOPY base.txt /\n");
    let head = repo.head();
    // Jenkins' git plugin checks out the commit, not the branch.
    repo.checkout(&head);
    // What a Jenkins multibranch pipeline sets for a build of `main`.
    let jenkins = [
        ("JENKINS_URL", "https://jenkins.example.com/"),
        ("BUILD_NUMBER", "31"),
        ("BRANCH_NAME", "main"),
        ("GIT_COMMIT", head.as_str()),
        ("GIT_BRANCH", "origin/main"),
    ];
    let output = run(img_build(repo.path())
        .args(["--dry-run", "--format", "json", "--log-dir", "logs"])
        .args(["--only", "base", "--backend", "buildah"])
        .envs(jenkins));
    let report = json(&output);
    assert_eq!(
        common::target(&report, "base")["tags"],
        serde_json::json!([
            format!("{REGISTRY}/demo/base:main"),
            format!("{REGISTRY}/demo/base:sha-{}", &head[..7]),
        ])
    );
}

/// buildah allows plain HTTP only when told (`--tls-verify=false`): it is
/// told for exactly the registries Slipway's own calls speak plain HTTP
/// to, so `--plain-http-registry` reaches the builder's pulls and pushes
/// too, and a loopback registry with a certs.d directory (TLS) keeps
/// buildah's certificate checks.
#[test]
fn buildah_is_told_plain_http_for_the_registries_the_flags_name() {
    let run_with = |registry: &str, args: &[&str]| {
        let repo = project(
            registry,
            "[images.base]\ndockerfile = \"base.Dockerfile\"\n",
            "FROM scratch\nCOPY base.txt /\n",
        );
        let output = dry_run(
            repo.path(),
            &[&["--only", "base", "--backend", "buildah", "--push"], args].concat(),
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report = json(&output);
        [argv(&report, "base", 0), argv(&report, "base", 1)]
            .map(|argv| argv.iter().any(|a| a == "--tls-verify=false"))
    };
    assert_eq!(run_with("registry.lan:5000", &[]), [false, false]);
    assert_eq!(
        run_with(
            "registry.lan:5000",
            &["--plain-http-registry", "registry.lan:5000"]
        ),
        [true, true]
    );
    assert_eq!(
        run_with("registry.lan:5000", &["--plain-http"]),
        [true, true]
    );
    assert_eq!(run_with(REGISTRY, &[]), [true, true]);
    let certs = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(certs.path().join(REGISTRY)).unwrap();
    assert_eq!(
        run_with(REGISTRY, &["--certs-dir", certs.path().to_str().unwrap()]),
        [false, false]
    );
}
