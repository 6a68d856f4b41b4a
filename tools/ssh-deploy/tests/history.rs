//! History that says what ran: tags resolved to digests through the real
//! registry before any host is touched, records holding the digests (the
//! tag as a note) and the images' revision label, and a rollback that says
//! which release it chose and why (`--dry-run` changes nothing).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use common::Project;
use slipway_testbed::images::push_image;
use slipway_testbed::{Registry, Sshd};

const REV1: &str = "1111111111111111111111111111111111111111";
const REV2: &str = "2222222222222222222222222222222222222222";

#[test]
fn tags_resolve_to_digests_and_a_rollback_redeploys_what_ran() {
    let sshd = Sshd::start();
    let registry = Registry::start();
    let host = registry.host();
    let project = Project::new(
        &sshd,
        r#"command = "echo $APP_IMAGE >> ran.txt""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    let tag = format!("{host}/demo/app:prod");
    let image = format!("app={tag}");
    let deploy =
        |image: &str| project.run_json(&sshd, &["deploy", "--env", "prod", "--image", image]);

    let (first, _) = push_image(&host, "demo/app", "prod", "amd64", Some(REV1));
    let (code, report, stderr) = deploy(&image);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    let pinned1 = format!("{host}/demo/app@{first}");
    assert_eq!(
        project.remote_file("deploy.env").lines().last().unwrap(),
        format!("APP_IMAGE='{pinned1}'")
    );
    let record = project.release(1);
    assert_eq!(record["images"]["APP_IMAGE"], pinned1.as_str());
    assert_eq!(record["tags"]["APP_IMAGE"], tag.as_str());
    assert_eq!(record["git_sha"], REV1);

    // The tag moves on; the next deploy runs (and records) the new digest.
    let (second, _) = push_image(&host, "demo/app", "prod", "amd64", Some(REV2));
    assert_ne!(first, second);
    let (code, report, stderr) = deploy(&image);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    let pinned2 = format!("{host}/demo/app@{second}");
    assert_eq!(project.release(2)["images"]["APP_IMAGE"], pinned2.as_str());
    assert_eq!(project.release(2)["git_sha"], REV2);

    // `--dry-run` says which release and why, and changes nothing.
    let output = project.run(&sshd, &["rollback", "--env", "prod", "--dry-run"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let who = format!("{}@127.0.0.1:{}", sshd.user(), sshd.port());
    assert!(
        stdout.starts_with(&format!("listed {who} rolled_back_to=1\n  1 ")),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "{who}: would roll back to release 1 ({}, revision 111111111111): the newest good release before the current release 2 whose images differ from it",
            project.release(1)["time"].as_str().unwrap()
        )),
        "{stderr}"
    );
    assert!(!project.remote().join(".slipway/releases/3.json").exists());
    assert_eq!(
        project.remote_file("ran.txt"),
        format!("{pinned1}\n{pinned2}\n")
    );

    // The rollback redeploys the digest release 1 ran, not what `:prod` is now.
    let (code, report, stderr) = project.run_json(&sshd, &["rollback", "--env", "prod"]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["rolled_back_to"], 1);
    assert!(
        stderr.contains(&format!("{who}: rolling back to release 1 (")),
        "{stderr}"
    );
    let record = project.release(3);
    assert_eq!(record["images"]["APP_IMAGE"], pinned1.as_str());
    assert_eq!(record["git_sha"], REV1);
    assert_eq!(record["rolled_back_to"], 1);
    assert_eq!(record["rollback_of"], 2);
    assert_eq!(
        project.remote_file("ran.txt"),
        format!("{pinned1}\n{pinned2}\n{pinned1}\n")
    );

    // A tag the registry does not have fails before any host is touched.
    let missing = format!("{host}/demo/app:nope");
    let output = project.run(
        &sshd,
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            &format!("app={missing}"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "error: `{missing}` does not resolve: the registry `{host}` has no such tag; give a tag that is pushed, or a digest (`repo@sha256:…`)\n"
        )
    );
    assert!(!project.remote().join(".slipway/releases/4.json").exists());
}

#[test]
fn images_from_img_build_record_the_revision_it_built() {
    use slipway_contract::img_build::{BackendKind, BuildReport, BuiltTarget, Status};

    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "true""#,
        &[("compose.yml", "x\n", 0o644)],
    );
    let reference = common::fake_ref(7);
    let report = BuildReport {
        backend: BackendKind::Buildah,
        revision: REV2.to_owned(),
        pushed: true,
        log_dir: "logs".into(),
        targets: vec![BuiltTarget {
            name: "app".to_owned(),
            status: Status::Built,
            reason: None,
            repository: "127.0.0.1:5000/app".to_owned(),
            tags: Vec::new(),
            reference: Some(reference.clone()),
            digest: None,
            image_id: None,
            platforms: Vec::new(),
            duration_seconds: 0.1,
            log: "logs/app.log".into(),
            error: None,
            held_tags: Vec::new(),
        }],
        failed: Vec::new(),
    };
    let path = project.dir.path().join("build.json");
    fs_err::write(&path, serde_json::to_string(&report).unwrap()).unwrap();
    let (code, report, stderr) = project.run_json(
        &sshd,
        &[
            "deploy",
            "--env",
            "prod",
            "--images-from",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    let record = project.release(1);
    assert_eq!(record["images"]["APP_IMAGE"], reference.as_str());
    assert_eq!(record["git_sha"], REV2);
    assert!(record.get("tags").is_none(), "{record}");
}
