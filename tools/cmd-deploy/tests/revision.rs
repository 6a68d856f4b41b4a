//! cmd-deploy's `--require-revision` gate and what a release given by tag
//! records: slipway-deploy's image pinning, the same code as ssh-deploy's,
//! against the test bed's registry and a real git repository.

use std::path::Path;
use std::process::Command;

use slipway_testbed::Registry;
use slipway_testbed::cmd::Cmd;
use slipway_testbed::images::push_image;

/// A git repository with one commit holding a slipway.toml whose env
/// `prod` runs a command that logs the image it gets; returns it and HEAD.
fn project() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let toml = r#"[project]
name = "demo"

[images.app]
repository = "127.0.0.1:5000/app"

[envs.prod]
target = "command"
images = { APP_IMAGE = "app" }

[envs.prod.command]
run = 'echo "$SLIPWAY_IMAGE_APP" >> runs.log'
history = "history"
"#;
    fs_err::write(dir.path().join("slipway.toml"), toml).expect("slipway.toml");
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .current_dir(dir.path())
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout)
            .expect("UTF-8")
            .trim()
            .to_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "slipway.toml"]);
    git(&["commit", "-q", "-m", "release"]);
    let head = git(&["rev-parse", "HEAD"]);
    (dir, head)
}

fn cmd_deploy(dir: &Path, args: &[&str]) -> Cmd {
    let mut cmd = Cmd::new(env!("CARGO_BIN_EXE_cmd-deploy"));
    cmd.current_dir(dir).env("NO_COLOR", "1").args(args);
    cmd
}

fn runs(dir: &Path) -> String {
    fs_err::read_to_string(dir.join("runs.log")).unwrap_or_default()
}

#[test]
fn the_revision_gate_refuses_images_built_from_another_commit_before_anything_runs() {
    let registry = Registry::start();
    let host = registry.host();
    let (dir, head) = project();
    let other = "0123456789abcdef0123456789abcdef01234567";
    let (old, _) = push_image(&host, "app", "sha-old", "amd64", Some(other));
    let (fresh, _) = push_image(&host, "app", "sha-new", "amd64", Some(&head));

    let image = format!("app={host}/app:sha-old");
    cmd_deploy(
        dir.path(),
        &["deploy", "--env", "prod", "--image", &image, "--require-revision", "HEAD"],
    )
    .run()
    .assert(
        2,
        "",
        &format!(
            "error: refusing to deploy images not built from `{}` (`--require-revision HEAD`): `{host}/app@{old}` (built from `0123456`)\n",
            &head[..7]
        ),
    );
    assert_eq!(runs(dir.path()), "", "nothing ran");

    let image = format!("app={host}/app:sha-new");
    cmd_deploy(
        dir.path(),
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            &image,
            "--require-revision",
            &head,
        ],
    )
    .run()
    .assert(0, "deployed command:prod release=1\n", "");
    assert_eq!(runs(dir.path()), format!("{host}/app@{fresh}\n"));
    let record: serde_json::Value = serde_json::from_str(
        &fs_err::read_to_string(dir.path().join("history/1.json")).expect("record"),
    )
    .expect("a record is JSON");
    assert_eq!(record["git_sha"], head.as_str(), "{record}");
    assert_eq!(record["tags"]["APP_IMAGE"], format!("{host}/app:sha-new"));
}

/// `releases` lists a release given by tag with the tag it was given as,
/// as ssh-deploy's listing does (the two render with one function), and
/// the revision its label names.
#[test]
fn a_release_given_by_tag_lists_its_tag_and_its_label_s_revision() {
    let registry = Registry::start();
    let host = registry.host();
    let (dir, head) = project();
    let (digest, _) = push_image(&host, "app", "sha-new", "amd64", Some(&head));
    let image = format!("app={host}/app:sha-new");
    cmd_deploy(dir.path(), &["deploy", "--env", "prod", "--image", &image])
        .run()
        .assert(0, "deployed command:prod release=1\n", "");

    let listed = cmd_deploy(dir.path(), &["releases", "--env", "prod"]).run();
    listed.assert_code(0);
    let stdout = listed.stdout_str();
    // The time and who deployed are this run's: the line is checked around them.
    let (first, release) = stdout.split_once('\n').expect("two lines");
    assert_eq!(first, "listed command:prod");
    assert!(release.starts_with("  1 "), "{stdout}");
    assert!(
        release.ends_with(&format!(
            " deployed git={} who={} APP_IMAGE={host}/app@{digest} tag:APP_IMAGE={host}/app:sha-new\n",
            &head[..12],
            record_who(dir.path()),
        )),
        "{stdout}"
    );
}

fn record_who(dir: &Path) -> String {
    let record: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(dir.join("history/1.json")).expect("record"))
            .expect("a record is JSON");
    record["who"].as_str().expect("who").to_owned()
}
