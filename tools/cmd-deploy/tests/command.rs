//! cmd-deploy with a real script on the runner: the environment it gets
//! (images pinned by digest, the tag resolved through the test bed's
//! registry), a failing script recorded and rolled back by re-running the
//! previous release's images, `rollback`, the flock that a second deploy
//! waits for and that a SIGKILLed deploy frees, and bad input.

use std::path::Path;
use std::time::{Duration, Instant};

use slipway_testbed::Registry;
use slipway_testbed::cmd::{Cmd, Outcome};

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// A project whose env `prod` runs `run` with image `app` (variable
/// `APP_IMAGE`) and `LOG_LEVEL=info`.
fn project(run: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let toml = format!(
        r#"[project]
name = "demo"

[images.app]
repository = "127.0.0.1:5000/app"

[envs.prod]
target = "command"
images = {{ APP_IMAGE = "app" }}
env = {{ LOG_LEVEL = "info" }}
{extra}
[envs.prod.command]
run = '{run}'
history = "history"
"#
    );
    fs_err::write(dir.path().join("slipway.toml"), toml).expect("slipway.toml");
    dir
}

fn cmd_deploy(dir: &Path, args: &[&str]) -> Cmd {
    let mut cmd = Cmd::new(env!("CARGO_BIN_EXE_cmd-deploy"));
    cmd.current_dir(dir).env("NO_COLOR", "1").args(args);
    cmd
}

fn deploy(dir: &Path, reference: &str) -> Outcome {
    let image = format!("app={reference}");
    cmd_deploy(dir, &["deploy", "--env", "prod", "--image", &image]).run()
}

fn record(dir: &Path, id: u64) -> serde_json::Value {
    let text = fs_err::read_to_string(dir.join(format!("history/{id}.json"))).expect("record");
    serde_json::from_str(&text).expect("a record is JSON")
}

/// What `runs.log` holds: one line per run of the script.
fn runs(dir: &Path) -> String {
    fs_err::read_to_string(dir.join("runs.log")).unwrap_or_default()
}

/// Appends `<release> <image>` to runs.log; fails when `fail-<release>` exists.
const LOGGING: &str =
    r#"echo "$SLIPWAY_RELEASE $SLIPWAY_IMAGE_APP" >> runs.log; test ! -e "fail-$SLIPWAY_RELEASE""#;

#[test]
fn the_command_gets_the_images_pinned_by_digest_and_the_release_is_recorded() {
    let registry = Registry::start();
    let host = registry.host();
    let (digest, _) =
        slipway_testbed::images::push_image(&host, "app", "sha-0123456", "amd64", None);
    let dir = project(
        "env | grep -E \"^(SLIPWAY_|APP_IMAGE|LOG_LEVEL)\" | sort > got.env",
        "",
    );
    deploy(dir.path(), &format!("{host}/app:sha-0123456")).assert(
        0,
        "deployed command:prod release=1\n",
        "",
    );
    let pinned = format!("{host}/app@{digest}");
    assert_eq!(
        fs_err::read_to_string(dir.path().join("got.env")).expect("the script ran"),
        format!(
            "APP_IMAGE={pinned}\nLOG_LEVEL=info\nSLIPWAY_ENV=prod\nSLIPWAY_IMAGE_APP={pinned}\nSLIPWAY_RELEASE=1\n"
        )
    );
    let record = record(dir.path(), 1);
    assert_eq!(record["result"], "deployed");
    assert_eq!(record["images"]["APP_IMAGE"], pinned.as_str());
    assert_eq!(
        record["tags"]["APP_IMAGE"],
        format!("{host}/app:sha-0123456").as_str()
    );
}

#[test]
fn a_failing_command_is_recorded_and_the_previous_images_run_again() {
    let dir = project(LOGGING, "");
    let first = format!("127.0.0.1:5000/app@{D1}");
    let second = format!("127.0.0.1:5000/app@{D2}");
    deploy(dir.path(), &first).success();
    fs_err::write(dir.path().join("fail-2"), "").expect("marker");
    deploy(dir.path(), &second).assert(
        1,
        "rolled_back command:prod release=2 rolled_back_to=1 error='the command failed (exit status 1)'\n",
        "",
    );
    assert_eq!(
        runs(dir.path()),
        format!("1 {first}\n2 {second}\n1 {first}\n")
    );
    let failed = record(dir.path(), 2);
    assert_eq!(failed["result"], "failed");
    assert_eq!(failed["rolled_back_to"], 1);
    assert_eq!(failed["detail"], "the command failed (exit status 1)");
}

#[test]
fn failed_releases_never_prune_the_record_of_the_running_one() {
    let dir = project(LOGGING, "keep_releases = 2");
    let first = format!("127.0.0.1:5000/app@{D1}");
    let second = format!("127.0.0.1:5000/app@{D2}");
    deploy(dir.path(), &first).success();
    for id in 2..=4 {
        fs_err::write(dir.path().join(format!("fail-{id}")), "").expect("marker");
        deploy(dir.path(), &second).assert(
            1,
            &format!("rolled_back command:prod release={id} rolled_back_to=1 error='the command failed (exit status 1)'\n"),
            "",
        );
    }
    let mut kept: Vec<String> = fs_err::read_dir(dir.path().join("history"))
        .expect("history")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    kept.sort();
    assert_eq!(kept, ["1.json", "3.json", "4.json"]);
    assert_eq!(record(dir.path(), 1)["result"], "deployed");
}

#[test]
fn no_rollback_leaves_a_failed_release_failed() {
    let dir = project(LOGGING, "");
    let first = format!("127.0.0.1:5000/app@{D1}");
    let second = format!("127.0.0.1:5000/app@{D2}");
    deploy(dir.path(), &first).success();
    fs_err::write(dir.path().join("fail-2"), "").expect("marker");
    let image = format!("app={second}");
    cmd_deploy(
        dir.path(),
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            &image,
            "--no-rollback",
        ],
    )
    .run()
    .assert(
        1,
        "failed command:prod release=2 error='the command failed (exit status 1)'\n",
        "",
    );
    assert_eq!(runs(dir.path()), format!("1 {first}\n2 {second}\n"));
}

#[test]
fn rollback_reruns_the_command_with_the_older_release_images() {
    let dir = project(LOGGING, "");
    let first = format!("127.0.0.1:5000/app@{D1}");
    let second = format!("127.0.0.1:5000/app@{D2}");
    deploy(dir.path(), &first).success();
    deploy(dir.path(), &second).success();
    cmd_deploy(dir.path(), &["rollback", "--env", "prod"])
        .run()
        .assert(0, "deployed command:prod release=3\n", "");
    assert_eq!(
        runs(dir.path()),
        format!("1 {first}\n2 {second}\n3 {first}\n")
    );
    let third = record(dir.path(), 3);
    assert_eq!(third["rolled_back_to"], 1);
    assert_eq!(third["rollback_of"], 2);
    let listed = cmd_deploy(
        dir.path(),
        &["releases", "--env", "prod", "--format", "json"],
    )
    .run();
    listed.assert_code(0);
    let ids: Vec<u64> = listed.json()["hosts"][0]["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .map(|r| r["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, [1, 2, 3]);
}

/// Waits until `file` exists in `dir`.
fn wait_for(dir: &Path, file: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join(file).exists() {
        assert!(Instant::now() < deadline, "`{file}` never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_command_past_its_timeout_is_stopped_with_what_it_started() {
    // A background job of the script, as pulumi or helm started by it.
    let dir = project("(sleep 2; touch outlived) & sleep 4", "");
    let toml = dir.path().join("slipway.toml");
    let text = fs_err::read_to_string(&toml).expect("slipway.toml");
    fs_err::write(&toml, format!("{text}timeout = \"1s\"\n")).expect("slipway.toml");
    let image = format!("app=127.0.0.1:5000/app@{D1}");
    let started = Instant::now();
    cmd_deploy(dir.path(), &["deploy", "--env", "prod", "--image", &image])
        .run()
        .assert(
            1,
            "failed command:prod release=1 error='the command ran past its `timeout` (1s) and was stopped, with every process it started'\n",
            "",
        );
    // Past the moment the background job would have written its file.
    std::thread::sleep(Duration::from_secs(3).saturating_sub(started.elapsed()));
    assert!(
        !dir.path().join("outlived").exists(),
        "a process the command started outlived the deploy"
    );
}

#[test]
fn a_deploy_cancelled_by_sigterm_stops_its_command() {
    let dir = project("touch started; sleep 2; touch finished", "");
    let image = format!("app=127.0.0.1:5000/app@{D1}");
    let running = cmd_deploy(dir.path(), &["deploy", "--env", "prod", "--image", &image]).spawn();
    wait_for(dir.path(), "started");
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &running.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(signalled.success());
    let cancelled = running.wait();
    cancelled.assert(143, "", " WARN cancelled: stopping the command\n");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !dir.path().join("finished").exists(),
        "the command ran on after its deploy was cancelled"
    );
    // The lock went with the process, and the record says the deploy did
    // not finish.
    assert_eq!(record(dir.path(), 1)["detail"], "the deploy did not finish");
    deploy(dir.path(), &format!("127.0.0.1:5000/app@{D2}")).assert_code(0);
}

#[test]
fn a_ready_url_the_probe_cannot_use_is_refused_before_the_command_runs() {
    // slipway.toml accepts it (a `tcp://` URL); the probe needs a port.
    let dir = project(LOGGING, "ready_url = \"tcp://127.0.0.1\"\n");
    for args in [&["--dry-run"][..], &[]] {
        let image = format!("app=127.0.0.1:5000/app@{D1}");
        let mut all = vec!["deploy", "--env", "prod", "--image", &image];
        all.extend(args);
        cmd_deploy(dir.path(), &all).run().assert(
            2,
            "",
            "error: the `ready_url` of env `prod`\n  caused by: invalid `TARGET` value `tcp://127.0.0.1`: no port; valid targets are `http://host[:port]/path`, `https://…` or `tcp://host:port`\n",
        );
    }
    assert_eq!(runs(dir.path()), "", "the command ran");
    assert!(!dir.path().join("history/1.json").exists());
}

#[test]
fn a_second_deploy_waits_for_the_lock_and_a_killed_deploy_frees_it() {
    // The first deploy's command waits until the test lets it go.
    let dir = project(
        "touch started; while [ ! -e go ]; do sleep 0.05; done",
        "lock_timeout = \"1s\"\n",
    );
    let image = format!("app=127.0.0.1:5000/app@{D1}");
    let first = cmd_deploy(dir.path(), &["deploy", "--env", "prod", "--image", &image]).spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.path().join("started").exists() {
        assert!(
            Instant::now() < deadline,
            "the first deploy's command never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = deploy(dir.path(), &format!("127.0.0.1:5000/app@{D2}"));
    second.assert_code(3);
    let stderr = second.stderr_str();
    assert!(
        stderr.contains("error: env `prod` is locked by another deploy (")
            && stderr.contains("and stayed locked for `lock_timeout` (1s)"),
        "{stderr}"
    );
    assert!(second.stdout.is_empty());

    let status = std::process::Command::new("kill")
        .args(["-KILL", &first.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    // The orphaned script ends too, so the killed binary's pipes close.
    fs_err::write(dir.path().join("go"), "").expect("go");
    let killed = first.wait();
    assert_eq!(killed.code(), None, "SIGKILL ends the deploy");
    // What a killed deploy leaves: its record says it did not finish.
    assert_eq!(record(dir.path(), 1)["detail"], "the deploy did not finish");

    deploy(dir.path(), &format!("127.0.0.1:5000/app@{D2}")).assert(
        0,
        "deployed command:prod release=2\n",
        "",
    );
}

#[test]
fn dry_run_prints_the_command_and_its_environment_and_runs_nothing() {
    let dir = project(LOGGING, "");
    let image = format!("app=127.0.0.1:5000/app@{D1}");
    let root = dir.path().canonicalize().expect("canonical");
    cmd_deploy(
        dir.path(),
        &["deploy", "--env", "prod", "--image", &image, "--dry-run"],
    )
    .run()
    .assert(
        0,
        &format!(
            "dry run: nothing was deployed or recorded\ntarget: command:prod\ncommand env:\n  LOG_LEVEL=info\n  SLIPWAY_ENV=prod\n  SLIPWAY_RELEASE=0\n  APP_IMAGE=127.0.0.1:5000/app@{D1}\n  SLIPWAY_IMAGE_APP=127.0.0.1:5000/app@{D1}\nrun: cd {} && sh -c '{}'\n",
            root.display(),
            LOGGING.replace('\'', r"'\''")
        ),
        "",
    );
    assert_eq!(runs(dir.path()), "");
    assert!(!dir.path().join("history").exists());
}

#[test]
fn an_env_of_another_target_names_its_tool() {
    let dir = project(LOGGING, "");
    let toml = fs_err::read_to_string(dir.path().join("slipway.toml")).expect("toml");
    fs_err::write(
        dir.path().join("slipway.toml"),
        format!("{toml}\n[envs.dev]\nhosts = [\"root@127.0.0.1:1\"]\nremote_path = \"/srv\"\ncommand = \"true\"\n"),
    )
    .expect("toml");
    cmd_deploy(dir.path(), &["releases", "--env", "dev"])
        .run()
        .assert(2, "", "error: env `dev` deploys to ssh: use ssh-deploy\n");
}

#[test]
fn a_latest_image_is_refused_before_anything_runs() {
    let dir = project(LOGGING, "");
    deploy(dir.path(), "127.0.0.1:5000/app:latest").assert(
        2,
        "",
        "error: `--image app=127.0.0.1:5000/app:latest` is not immutable: give a digest (`repo@sha256:…`) or a tag such as `sha-<commit>`, never `latest`\n",
    );
    assert_eq!(runs(dir.path()), "");
}

#[test]
fn image_names_that_share_one_variable_are_refused() {
    let dir = project(LOGGING, "");
    let toml = fs_err::read_to_string(dir.path().join("slipway.toml")).expect("toml");
    let toml = toml
        .replace(
            "[envs.prod]",
            "[images.web-app]\nrepository = \"127.0.0.1:5000/web-app\"\n\n[images.web_app]\nrepository = \"127.0.0.1:5000/web_app\"\n\n[envs.prod]",
        )
        .replace(
            "images = { APP_IMAGE = \"app\" }",
            "images = { APP_IMAGE = \"web-app\", WORKER_IMAGE = \"web_app\" }",
        );
    fs_err::write(dir.path().join("slipway.toml"), toml).expect("toml");
    cmd_deploy(
        dir.path(),
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            &format!("web-app=127.0.0.1:5000/web-app@{D1}"),
            "--image",
            &format!("web_app=127.0.0.1:5000/web_app@{D2}"),
        ],
    )
    .run()
    .assert(
        2,
        "",
        "error: the images `web-app` and `web_app` of env `prod` would both be given to the command as `SLIPWAY_IMAGE_WEB_APP`: rename one in `[images]` so their names differ in more than `-`, `_`, `.` or case\n",
    );
    assert_eq!(runs(dir.path()), "");
    assert!(!dir.path().join("history").exists());
}

#[test]
fn images_from_img_build_s_report_give_the_digest_and_the_revision() {
    let dir = project(
        "env | grep -E \"^(SLIPWAY_|APP_IMAGE)\" | sort > got.env",
        "",
    );
    let report = format!(
        r#"{{"backend":"buildkit","revision":"0123456789abcdef0123456789abcdef01234567","pushed":true,"log_dir":"/tmp","targets":[{{"name":"app","status":"built","repository":"127.0.0.1:5000/app","tags":["127.0.0.1:5000/app:sha-0123456"],"reference":"127.0.0.1:5000/app@{D1}","digest":"{D1}","image_id":null,"platforms":["linux/amd64"],"duration_seconds":1.5,"log":"/tmp/app.log"}}],"failed":[]}}"#
    );
    cmd_deploy(
        dir.path(),
        &["deploy", "--env", "prod", "--images-from", "-"],
    )
    .stdin(report)
    .run()
    .assert(0, "deployed command:prod release=1\n", "");
    assert_eq!(
        fs_err::read_to_string(dir.path().join("got.env")).expect("the script ran"),
        format!(
            "APP_IMAGE=127.0.0.1:5000/app@{D1}\nSLIPWAY_ENV=prod\nSLIPWAY_IMAGE_APP=127.0.0.1:5000/app@{D1}\nSLIPWAY_RELEASE=1\nSLIPWAY_REVISION=0123456789abcdef0123456789abcdef01234567\n"
        )
    );
    assert_eq!(
        record(dir.path(), 1)["git_sha"],
        "0123456789abcdef0123456789abcdef01234567"
    );
}
