//! Real builds with buildah (daemonless, vfs storage in a temp dir, chroot
//! isolation), chosen by `--backend auto` when no docker answers, pushed to
//! a real registry and checked with skopeo, a multi-platform index included.

mod common;

use common::{THREE_IMAGES, check_pushed, img_build, json, project, run, target};
use slipway_testbed::Registry;

/// A buildah storage of its own (vfs, in a temp dir): `CONTAINERS_STORAGE_CONF`'s value.
fn storage(dir: &std::path::Path) -> std::path::PathBuf {
    let conf = dir.join("storage.conf");
    fs_err::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/root\"\n",
            dir.display()
        ),
    )
    .expect("the temp dir is writable");
    conf
}

#[test]
fn auto_picks_buildah_which_builds_and_pushes_base_app_and_migrator() {
    let registry = Registry::start();
    let images = format!(
        "{THREE_IMAGES}\n[images.multi]\ndockerfile = \"base.Dockerfile\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n"
    );
    let repo = project(
        &registry.host(),
        &images,
        "FROM scratch\nCOPY base.txt /base.txt\n",
    );
    let storage = tempfile::tempdir().unwrap();
    let conf = self::storage(storage.path());
    let output = run(img_build(repo.path())
        .args(["--all", "--push", "--backend", "auto", "--network", "none"])
        .args(["--format", "json", "--log-dir", "logs", "--docker"])
        .arg(storage.path().join("no-docker-here"))
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .env("BUILDAH_ISOLATION", "chroot"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("img-build: backend buildah (`buildah version` succeeded)"),
        "{stderr}"
    );
    let report = json(&output);
    assert_eq!(report["backend"], "buildah");
    let head = repo.head();
    let base = check_pushed(&report, "base", &head);
    let app = check_pushed(&report, "app", &head);
    check_pushed(&report, "migrator", &head);
    assert_eq!(app["Labels"]["com.example.team"], "web");
    let base_layers = base["Layers"].as_array().unwrap();
    assert_eq!(
        app["Layers"].as_array().unwrap()[..base_layers.len()],
        base_layers[..]
    );
    let multi = target(&report, "multi");
    let digest = multi["digest"].as_str().unwrap();
    for tag in multi["tags"].as_array().unwrap() {
        common::check_index(
            tag.as_str().unwrap(),
            digest,
            &["linux/amd64", "linux/arm64"],
        );
    }
    let main = multi["tags"][0].as_str().unwrap();
    let arm = common::skopeo_inspect(&format!("{main}-linux-arm64"), false);
    assert_eq!(arm["Architecture"], "arm64");
    assert_eq!(arm["Labels"]["org.opencontainers.image.revision"], head);
    let base_ref = target(&report, "base")["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let app_log = fs_err::read_to_string(repo.path().join("logs/app.log")).unwrap();
    assert!(
        app_log.contains(&format!("BASE_IMAGE={base_ref}")),
        "{app_log}"
    );

    // Under GitHub Actions: a group per image, a summary table, the references as an output.
    let summary = storage.path().join("summary.md");
    let outputs = storage.path().join("outputs.txt");
    let output = run(img_build(repo.path())
        .args([
            "--only",
            "base",
            "--push",
            "--backend",
            "buildah",
            "--format",
            "github",
            "--log-dir",
            "logs-github",
        ])
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .env("BUILDAH_ISOLATION", "chroot")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("::group::img-build base\n"), "{stderr}");
    assert!(stderr.contains("::endgroup::"), "{stderr}");
    let summary = fs_err::read_to_string(&summary).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let reference = stdout
        .split_whitespace()
        .find(|word| word.contains("@sha256:"))
        .unwrap_or_else(|| panic!("no reference in {stdout}"));
    assert!(
        summary.contains(&format!("| base | built | `{reference}` | - |")),
        "{summary}"
    );
    let outputs = fs_err::read_to_string(&outputs).unwrap();
    assert!(
        outputs.contains(&format!("{{\"base\":\"{reference}\"}}")),
        "{outputs}"
    );
}

#[test]
fn fail_fast_starts_nothing_after_the_first_failure() {
    // Nothing is pushed, so the registry is never contacted.
    let repo = project(
        "127.0.0.1:9",
        "[images.broken]\ndockerfile = \"broken.Dockerfile\"\n\n[images.fine]\ndockerfile = \"base.Dockerfile\"\n",
        "FROM scratch\nCOPY base.txt /base.txt\n",
    );
    repo.write("broken.Dockerfile", "FROM scratch\nCOPY missing.txt /\n");
    repo.commit("broken");
    let dir = tempfile::tempdir().unwrap();
    let conf = storage(dir.path());
    let build = |extra: &[&str]| {
        run(img_build(repo.path())
            .args([
                "--all",
                "--jobs",
                "1",
                "--backend",
                "buildah",
                "--format",
                "json",
                "-q",
                "--log-dir",
                "logs",
            ])
            .args(extra)
            .env("CONTAINERS_STORAGE_CONF", &conf)
            .env("BUILDAH_ISOLATION", "chroot"))
    };
    let output = build(&["--fail-fast"]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = json(&output);
    assert_eq!(report["failed"], serde_json::json!(["broken", "fine"]));
    assert_eq!(target(&report, "broken")["status"], "failed");
    let fine = target(&report, "fine");
    assert_eq!(fine["status"], "skipped");
    assert_eq!(
        fine["error"],
        "not started: an image failed and `--fail-fast` is given"
    );

    // Without it, the independent image is built anyway.
    let output = build(&[]);
    assert_eq!(output.status.code(), Some(3));
    let report = json(&output);
    assert_eq!(report["failed"], serde_json::json!(["broken"]));
    let fine = target(&report, "fine");
    assert_eq!(fine["status"], "built");
    assert_eq!(fine["reference"], "127.0.0.1:9/demo/fine:main");
    assert!(fine["image_id"].as_str().unwrap().len() >= 12, "{fine:#}");
}

#[test]
fn a_ci_cache_setting_builds_on_a_laptop_with_a_notice() {
    let registry = Registry::start();
    let host = registry.host();
    // The same slipway.toml a buildx runner uses: gha and inline are left
    // out here, the registry cache is used (and written).
    let repo = project(
        &host,
        &format!(
            "[images.app]\ndockerfile = \"base.Dockerfile\"\ncache_from = [\"type=gha\", \"type=registry,ref={host}/demo/cache\"]\ncache_to = [\"type=inline\", \"type=registry,ref={host}/demo/cache\"]\n"
        ),
        "FROM scratch\nCOPY base.txt /base.txt\n",
    );
    let storage = tempfile::tempdir().unwrap();
    let conf = self::storage(storage.path());
    let output = run(img_build(repo.path())
        .args([
            "--all",
            "--push",
            "--backend",
            "buildah",
            "--format",
            "json",
        ])
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .env("BUILDAH_ISOLATION", "chroot"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("img-build: `cache_from` value `type=gha,scope=app` of image `app` is left out: the buildah backend uses only registry caches"),
        "{stderr}"
    );
    assert_eq!(target(&json(&output), "app")["status"], "built");
}
