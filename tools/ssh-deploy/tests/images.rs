//! Where the image references come from (`--images-from` img-build's JSON,
//! `--image`) and the deploy gate that refuses images not built from the
//! commit being released (`--require-revision`, read from the registry).

mod common;

use std::process::Command;

use common::{Project, fake_ref};
use slipway_contract::img_build::{BackendKind, BuildReport, BuiltTarget, Status};
use slipway_testbed::images::push_image;
use slipway_testbed::{Registry, Sshd};

#[track_caller]
fn dry_run(project: &Project, sshd: &Sshd, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["deploy", "--env", "prod", "--dry-run"];
    all.extend_from_slice(args);
    let output = project.run(sshd, &all);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn images_come_from_img_build_s_report_and_flags_win() {
    let sshd = Sshd::start();
    let project = Project::new(&sshd, r#"command = "true""#, &[("run.sh", "true\n", 0o755)]);
    let report = project.dir.path().join("build.json");
    // What `img-build --format json` prints, through its contract type;
    // `base` is built but not deployed.
    let target = |name: &str, reference: Option<String>| BuiltTarget {
        name: name.to_owned(),
        status: if reference.is_some() {
            Status::Built
        } else {
            Status::Failed
        },
        reason: None,
        repository: "127.0.0.1:5000/app".to_owned(),
        tags: Vec::new(),
        digest: None,
        reference,
        image_id: None,
        platforms: Vec::new(),
        duration_seconds: 0.1,
        log: "logs/app.log".into(),
        error: None,
        held_tags: Vec::new(),
    };
    let build = |targets: Vec<BuiltTarget>| {
        serde_json::to_string(&BuildReport {
            backend: BackendKind::Buildah,
            revision: "0123456789abcdef0123456789abcdef01234567".to_owned(),
            pushed: true,
            log_dir: "logs".into(),
            targets,
            failed: Vec::new(),
        })
        .unwrap()
    };
    fs_err::write(
        &report,
        build(vec![
            target("base", Some(fake_ref(1))),
            target("app", Some(fake_ref(2))),
        ]),
    )
    .unwrap();
    let from = report.to_str().unwrap();

    let (code, stdout, stderr) = dry_run(&project, &sshd, &["--images-from", from]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("APP_IMAGE='{}'", fake_ref(2))),
        "{stdout}"
    );

    let flag = format!("app={}", fake_ref(3));
    let (code, stdout, _) = dry_run(&project, &sshd, &["--images-from", from, "--image", &flag]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains(&format!("APP_IMAGE='{}'", fake_ref(3))),
        "{stdout}"
    );

    fs_err::write(&report, build(vec![target("app", None)])).unwrap();
    let (code, _, stderr) = dry_run(&project, &sshd, &["--images-from", from]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("env `prod` needs `--image app=…` (for `APP_IMAGE`)"),
        "{stderr}"
    );

    fs_err::write(&report, "not json").unwrap();
    let (code, _, stderr) = dry_run(&project, &sshd, &["--images-from", from]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&format!(
            "`--images-from {from}` is not img-build's JSON report (`img-build --format json`)"
        )),
        "{stderr}"
    );
}

#[test]
fn the_revision_gate_refuses_images_built_from_another_commit() {
    let sshd = Sshd::start();
    let registry = Registry::start();
    let project = Project::new(&sshd, r#"command = "true""#, &[("run.sh", "true\n", 0o755)]);
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .current_dir(project.dir.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "release"]);
    let head = git(&["rev-parse", "HEAD"]);
    let other = "0123456789abcdef0123456789abcdef01234567";
    let host = registry.host();
    let (fresh, _) = push_image(&host, "demo/app", "sha-new", "amd64", Some(&head));
    let (old, _) = push_image(&host, "demo/app", "sha-old", "amd64", Some(other));
    let (unlabelled, _) = push_image(&host, "demo/app", "bare", "amd64", None);

    let image = format!("app={host}/demo/app@{fresh}");
    let (code, stdout, stderr) = dry_run(
        &project,
        &sshd,
        &["--image", &image, "--require-revision", "HEAD"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(&fresh), "{stdout}");

    let image = format!("app={host}/demo/app@{old}");
    let (code, _, stderr) = dry_run(
        &project,
        &sshd,
        &["--image", &image, "--require-revision", &head],
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains(&format!(
            "refusing to deploy images not built from `{}` (`--require-revision {head}`): `{host}/demo/app@{old}` (built from `0123456`)",
            &head[..7]
        )),
        "{stderr}"
    );

    let image = format!("app={host}/demo/app@{unlabelled}");
    let (code, _, stderr) = dry_run(
        &project,
        &sshd,
        &["--image", &image, "--require-revision", "HEAD"],
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("refusing to deploy images not built from"),
        "{stderr}"
    );

    let (code, _, stderr) = dry_run(
        &project,
        &sshd,
        &["--image", &image, "--require-revision", "v9.9"],
    );
    assert_eq!(code, Some(2));
    // Exit 2 (bad input) although git's own error would say 3; the git
    // error stays as the cause.
    assert!(
        stderr.contains(
            "error: `--require-revision v9.9`\n  caused by: cannot resolve `v9.9` in repository `"
        ),
        "{stderr}"
    );
}

/// Tag resolution reaches a registry through the registry flags every tool
/// shares: a plain-HTTP registry under a name Slipway does not take for
/// loopback (`127.1:PORT`) is refused with the flag that fixes it, before
/// any host is touched, and resolved with `--plain-http-registry`.
#[test]
fn a_tag_is_resolved_on_a_plain_http_registry_named_by_plain_http_registry() {
    let sshd = Sshd::start();
    let registry = Registry::start();
    let project = Project::new(&sshd, r#"command = "true""#, &[("run.sh", "true\n", 0o755)]);
    let (digest, _) = push_image(&registry.host(), "demo/app", "prod", "amd64", None);
    let host = registry.non_loopback_host();
    let image = format!("app={host}/demo/app:prod");

    let (code, stdout, stderr) = dry_run(&project, &sshd, &["--image", &image]);
    assert_eq!((code, stdout.as_str()), (Some(3), ""), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "`{host}` speaks plain HTTP, not TLS (`HEAD /v2/demo/app/manifests/prod`): pass \
             --plain-http-registry {host} (or --plain-http for every registry)"
        )),
        "{stderr}"
    );

    let (code, stdout, stderr) = dry_run(
        &project,
        &sshd,
        &["--image", &image, "--plain-http-registry", &host],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("{host}/demo/app@{digest}")),
        "{stdout}"
    );
}
