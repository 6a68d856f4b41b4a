//! swarm-deploy against a real one-node swarm (the test bed's dockerd
//! after `docker swarm init`) and the test bed's registry: the tasks run
//! the exact digests, an update whose healthcheck fails is rolled back to
//! the old digests, and the lock refuses a second deploy and is taken over
//! once a SIGKILLed deploy's lease expires. What runs is checked with the
//! docker client itself (`docker service ps`, `docker config ls`), not
//! with swarm-deploy.

use std::path::Path;
use std::time::{Duration, Instant};

use slipway_testbed::cmd::{Cmd, Outcome};
use slipway_testbed::{Dockerd, Registry};

/// A swarm, a registry, and three images pushed to it: `good` (has `/ok`,
/// which the healthcheck tests, and `/www/ready`, the ready URL), `bad`
/// (no `/ok`: unhealthy) and `unready` (healthy, but no `/www/ready`).
struct Bed {
    dockerd: Dockerd,
    registry: Registry,
    good: String,
    bad: String,
    unready: String,
}

impl Bed {
    fn start() -> Bed {
        let registry = Registry::start();
        let dockerd = Dockerd::start();
        dockerd.swarm_init();
        let base = dockerd.base_image(&registry);
        let good = image(&dockerd, &registry, &base, "good", true, true);
        let bad = image(&dockerd, &registry, &base, "bad", false, true);
        let unready = image(&dockerd, &registry, &base, "unready", true, false);
        Bed {
            dockerd,
            registry,
            good,
            bad,
            unready,
        }
    }

    /// The image each task of service `name` runs, for tasks that should run.
    fn running_images(&self, service: &str) -> Vec<String> {
        let output = self
            .dockerd
            .docker()
            .args(["service", "ps", service, "--no-trunc"])
            .args(["--filter", "desired-state=running"])
            .args(["--format", "{{.Image}}"])
            .output()
            .expect("docker service ps runs");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn configs(&self) -> Vec<String> {
        let output = self
            .dockerd
            .docker()
            .args(["config", "ls", "--format", "{{.Name}}"])
            .output()
            .expect("docker config ls runs");
        let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }
}

/// Builds `FROM base` plus `/www` (holding `ready` when `ready`) and `/ok`
/// when `healthy`, pushes it as `<registry>/app:<tag>`, returns
/// `<registry>/app@<digest>`.
fn image(
    dockerd: &Dockerd,
    registry: &Registry,
    base: &str,
    tag: &str,
    healthy: bool,
    ready: bool,
) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    fs_err::create_dir_all(dir.path().join("www")).expect("www");
    let page = if ready { "ready" } else { "index.html" };
    fs_err::write(dir.path().join("www").join(page), "ready\n").expect("page");
    fs_err::write(dir.path().join("ok"), "ok\n").expect("ok");
    let ok = if healthy { "COPY ok /ok\n" } else { "" };
    fs_err::write(
        dir.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY www /www\n{ok}"),
    )
    .expect("Dockerfile");
    let reference = format!("{}/app:{tag}", registry.host());
    let built = dockerd
        .docker()
        .args(["build", "--network=none", "-q", "-t", &reference])
        .arg(dir.path())
        .output()
        .expect("docker build runs");
    assert!(built.status.success(), "{built:?}");
    let pushed = dockerd
        .docker()
        .args(["push", &reference])
        .output()
        .expect("docker push runs");
    assert!(pushed.status.success(), "{pushed:?}");
    let text = String::from_utf8_lossy(&pushed.stdout);
    let digest = text
        .split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .expect("docker push prints the digest");
    format!("{}/app@{digest}", registry.host())
}

/// A project deploying image `app` as stack `demo-dev` whose service
/// serves `/www` on `port` (the ready URL) and is healthy when `/ok` exists.
fn project(port: u16, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs_err::write(
        dir.path().join("slipway.toml"),
        format!(
            r#"[project]
name = "demo"

[images.app]
repository = "127.0.0.1:5000/app"

[envs.dev]
target = "swarm"
images = {{ APP_IMAGE = "app" }}
ready_url = "http://127.0.0.1:{port}/ready"
ready_timeout = "10s"
{extra}
[envs.dev.swarm]
compose_file = "deploy/stack.yml"
converge_timeout = "90s"
"#
        ),
    )
    .expect("slipway.toml");
    fs_err::create_dir_all(dir.path().join("deploy")).expect("deploy dir");
    fs_err::write(
        dir.path().join("deploy/stack.yml"),
        format!(
            r#"version: "3.8"
services:
  web:
    image: ${{APP_IMAGE}}
    command: ["httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "/www"]
    networks: [hostnet]
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "cat", "/ok"]
      interval: 1s
      timeout: 1s
      retries: 1
    deploy:
      replicas: 1
      update_config:
        failure_action: rollback
        order: stop-first
        monitor: 3s
      rollback_config:
        order: stop-first
networks:
  hostnet:
    external: true
    name: host
"#
        ),
    )
    .expect("stack.yml");
    dir
}

fn swarm_deploy(bed: &Bed, dir: &Path, args: &[&str]) -> Cmd {
    let mut cmd = Cmd::new(env!("CARGO_BIN_EXE_swarm-deploy"));
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env("DOCKER_HOST", bed.dockerd.host())
        .env("DOCKER", bed.dockerd.client_path())
        .timeout(Duration::from_secs(240))
        .args(args);
    cmd
}

fn deploy(bed: &Bed, dir: &Path, reference: &str) -> Outcome {
    let image = format!("app={reference}");
    swarm_deploy(bed, dir, &["deploy", "--env", "dev", "--image", &image]).run()
}

#[test]
fn the_stack_runs_the_exact_digests_and_a_failing_update_is_rolled_back() {
    let bed = Bed::start();
    let port = slipway_testbed::free_port();
    let dir = project(port, "");

    deploy(&bed, dir.path(), &bed.good).assert(
        0,
        "deployed swarm:demo-dev release=1 ready=true\n",
        "",
    );
    assert_eq!(bed.running_images("demo-dev_web"), [bed.good.as_str()]);

    // The bad image's healthcheck fails: swarm rolls the service back and
    // swarm-deploy reports it, the good digest running again.
    deploy(&bed, dir.path(), &bed.bad).assert(
        1,
        "rolled_back swarm:demo-dev release=2 rolled_back_to=1 error='swarm rolled service `demo-dev_web` back: rollback completed'\n",
        "",
    );
    assert_eq!(bed.running_images("demo-dev_web"), [bed.good.as_str()]);

    let listed = swarm_deploy(
        &bed,
        dir.path(),
        &["releases", "--env", "dev", "--format", "json"],
    )
    .run();
    listed.assert_code(0);
    let releases = listed.json()["hosts"][0]["releases"].clone();
    assert_eq!(releases[0]["result"], "deployed");
    assert_eq!(releases[0]["images"]["APP_IMAGE"], bed.good.as_str());
    assert_eq!(releases[1]["result"], "failed");
    assert_eq!(releases[1]["images"]["APP_IMAGE"], bed.bad.as_str());
    assert_eq!(releases[1]["rolled_back_to"], 1);
    assert_eq!(
        bed.configs(),
        [
            "slipway.demo-dev.release.1.2",
            "slipway.demo-dev.release.2.2"
        ],
        "the records are on the swarm, and no lock is left"
    );
    drop(bed.registry);
}

#[test]
fn the_lock_refuses_a_second_deploy_and_a_killed_deploys_lease_is_taken_over() {
    let bed = Bed::start();
    let port = slipway_testbed::free_port();
    let dir = project(port, "lock_timeout = \"1s\"\n");
    let image = format!("app={}", bed.good);
    let first = swarm_deploy(
        &bed,
        dir.path(),
        &["deploy", "--env", "dev", "--image", &image],
    )
    .spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !bed.configs().contains(&"slipway.demo-dev.lock".to_owned()) {
        assert!(
            Instant::now() < deadline,
            "the first deploy never took the lock"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let second = deploy(&bed, dir.path(), &bed.good);
    second.assert_code(3);
    let stderr = second.stderr_str();
    assert!(
        stderr.contains("error: env `dev` is locked by another deploy (")
            && stderr.contains("and stayed locked for `lock_timeout` (1s); the lock is the docker config `slipway.demo-dev.lock`"),
        "{stderr}"
    );

    let killed = std::process::Command::new("kill")
        .args(["-KILL", &first.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    assert_eq!(first.wait().code(), None);
    assert!(bed.configs().contains(&"slipway.demo-dev.lock".to_owned()));

    // Its lease expires within 15 s; a deploy that waits longer takes over.
    let toml = fs_err::read_to_string(dir.path().join("slipway.toml")).expect("toml");
    fs_err::write(
        dir.path().join("slipway.toml"),
        toml.replace("lock_timeout = \"1s\"", "lock_timeout = \"60s\""),
    )
    .expect("toml");
    let third = deploy(&bed, dir.path(), &bed.good);
    third.assert_code(0);
    assert!(
        third
            .stdout_str()
            .starts_with("deployed swarm:demo-dev release=2"),
        "{}",
        third.stdout_str()
    );
    assert!(
        third
            .stderr_str()
            .contains("taking over the lock of env `dev` from "),
        "{}",
        third.stderr_str()
    );
    assert_eq!(bed.running_images("demo-dev_web"), [bed.good.as_str()]);
    assert!(
        !bed.configs().iter().any(|c| c.contains(".lock")),
        "{:?}",
        bed.configs()
    );
}

#[test]
fn a_lease_is_judged_by_the_managers_clock_not_the_holders() {
    let bed = Bed::start();
    let port = slipway_testbed::free_port();
    let dir = project(port, "lock_timeout = \"60s\"\n");
    // The lock a deploy left when it was killed on a runner whose clock
    // ran an hour ahead: its own expiry label says it is live for an hour.
    let ahead = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600;
    let mut create = bed.dockerd.docker();
    create
        .args(["config", "create", "--label", "dev.slipway.lock=demo-dev"])
        .args(["--label", "dev.slipway.holder=ci@fast-clock pid 1"])
        .args(["--label", &format!("dev.slipway.expires={ahead}")])
        .arg("slipway.demo-dev.lock")
        .arg(dir.path().join("slipway.toml"));
    let created = create.output().expect("docker config create runs");
    assert!(created.status.success(), "{created:?}");
    let started = Instant::now();
    let taken = deploy(&bed, dir.path(), &bed.good);
    taken.assert_code(0);
    assert!(
        taken.stderr_str().contains(
            "taking over the lock of env `dev` from ci@fast-clock pid 1: its lease expired at "
        ),
        "{}",
        taken.stderr_str()
    );
    // Taken over once the manager's clock says 15 s passed, not in an hour
    // (nor after the 60 s `lock_timeout`).
    assert!(
        started.elapsed() < Duration::from_secs(55),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(bed.running_images("demo-dev_web"), [bed.good.as_str()]);
}

#[test]
fn dry_run_prints_the_stack_deploy_and_touches_nothing() {
    let dir = project(8080, "");
    let image = "app=127.0.0.1:5000/app@sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let root = dir.path().canonicalize().expect("canonical");
    Cmd::new(env!("CARGO_BIN_EXE_swarm-deploy"))
        .current_dir(dir.path())
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .args(["deploy", "--env", "dev", "--image", image, "--dry-run"])
        .run()
        .assert(
            0,
            &format!(
                "dry run: nothing was deployed or recorded\ntarget: swarm:demo-dev\ncommand env:\n  APP_IMAGE=127.0.0.1:5000/app@sha256:1111111111111111111111111111111111111111111111111111111111111111\nrun: docker stack deploy --compose-file {}/deploy/stack.yml --with-registry-auth demo-dev\nready: http://127.0.0.1:8080/ready\n",
                root.display()
            ),
            "",
        );
}

#[test]
fn a_compose_file_that_does_not_use_the_image_variable_is_refused() {
    let dir = project(8080, "");
    let path = dir.path().join("deploy/stack.yml");
    let text = fs_err::read_to_string(&path).expect("stack.yml");
    fs_err::write(
        &path,
        text.replace("${APP_IMAGE}", "127.0.0.1:5000/app:latest"),
    )
    .expect("write");
    let image = "app=127.0.0.1:5000/app@sha256:1111111111111111111111111111111111111111111111111111111111111111";
    Cmd::new(env!("CARGO_BIN_EXE_swarm-deploy"))
        .current_dir(dir.path())
        .args(["deploy", "--env", "dev", "--image", image])
        .run()
        .assert(
            2,
            "",
            "error: the compose file `deploy/stack.yml` of env `dev` does not use `${APP_IMAGE}`: its services would not run the pinned digests; write e.g. `image: ${APP_IMAGE}`\n",
        );
}

#[test]
fn a_compose_image_that_bypasses_the_variables_is_refused() {
    let dir = project(8080, "");
    let path = dir.path().join("deploy/stack.yml");
    let text = fs_err::read_to_string(&path).expect("stack.yml");
    // The web service runs the pinned variable; a second service and an
    // anchor name mutable tags, and a variable of the env table a third.
    fs_err::write(
        &path,
        text.replace(
            "networks:\n  hostnet:",
            "  cache:\n    image: \"redis:7\"  # a sidecar\n  worker:\n    image: ${OTHER_IMAGE:-127.0.0.1:5000/app:latest}\n  pinned:\n    image: 127.0.0.1:5000/app@sha256:1111111111111111111111111111111111111111111111111111111111111111\nx-base: &base\n  image: 127.0.0.1:5000/app:latest\nnetworks:\n  hostnet:",
        ),
    )
    .expect("write");
    let image = "app=127.0.0.1:5000/app@sha256:1111111111111111111111111111111111111111111111111111111111111111";
    Cmd::new(env!("CARGO_BIN_EXE_swarm-deploy"))
        .current_dir(dir.path())
        .args(["deploy", "--env", "dev", "--dry-run", "--image", image])
        .run()
        .assert(
            2,
            "",
            "error: the compose file `deploy/stack.yml` of env `dev` names an image that is neither one of the env's image variables (`${APP_IMAGE}`) nor pinned by digest (line 22: `image: \"redis:7\"`, line 24: `image: ${OTHER_IMAGE:-127.0.0.1:5000/app:latest}`, line 28: `image: 127.0.0.1:5000/app:latest`): it would reach the swarm as a mutable tag; write `image: ${VAR}` with a variable of the env's `images` table, or `repo@sha256:…`\n",
        );
}

#[test]
fn every_spelling_of_an_image_key_and_an_interpolation_operator_is_refused() {
    let image = "app=127.0.0.1:5000/app@sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let refused = |compose: &str, file: &str, shown: &str| {
        let dir = project(8080, "");
        let path = dir.path().join("deploy/stack.yml");
        let text = fs_err::read_to_string(&path).expect("stack.yml");
        let text = if file.is_empty() {
            text.replace(
                "networks:\n  hostnet:",
                &format!("{compose}networks:\n  hostnet:"),
            )
        } else {
            file.to_owned()
        };
        fs_err::write(&path, text).expect("write");
        Cmd::new(env!("CARGO_BIN_EXE_swarm-deploy"))
            .current_dir(dir.path())
            .args(["deploy", "--env", "dev", "--dry-run", "--image", image])
            .run()
            .assert(
                2,
                "",
                &format!("error: the compose file `deploy/stack.yml` of env `dev` names an image that is neither one of the env's image variables (`${{APP_IMAGE}}`) nor pinned by digest ({shown}): it would reach the swarm as a mutable tag; write `image: ${{VAR}}` with a variable of the env's `images` table, or `repo@sha256:…`\n"),
            );
    };
    refused(
        "  cache:\n    image : redis:7\n",
        "",
        "line 22: `image : redis:7`",
    );
    refused(
        "  cache:\n    \"image\": \"redis:7\"\n",
        "",
        "line 22: `\"image\": \"redis:7\"`",
    );
    refused(
        "  cache:\n    'image': redis:7\n",
        "",
        "line 22: `'image': redis:7`",
    );
    refused(
        "  cache:\n    image: ${APP_IMAGE:+redis:latest}\n",
        "",
        "line 22: `image: ${APP_IMAGE:+redis:latest}`",
    );
    refused(
        "  cache: {\"image\": \"redis:7\"}\n",
        "",
        "line 21: `cache: {\"image\": \"redis:7\"}`",
    );
    refused(
        "  cache:\n    \"\\x69mage\": redis:7\n",
        "",
        "line 22: `\"\\x69mage\": redis:7`",
    );
    refused(
        "",
        "{\"services\": {\"web\": {\"image\": \"${APP_IMAGE}\"},\n  \"cache\": {\"image\": \"redis:7\"}}}\n",
        "line 2: `\"cache\": {\"image\": \"redis:7\"}}}`",
    );
}

#[test]
fn a_record_whose_rewrite_fails_is_kept_and_its_id_never_reused() {
    let bed = Bed::start();
    let port = slipway_testbed::free_port();
    let dir = project(port, "");
    deploy(&bed, dir.path(), &bed.good).assert(
        0,
        "deployed swarm:demo-dev release=1 ready=true\n",
        "",
    );
    // A docker client whose `config create` of a release record fails
    // once `budget` holds 0, as a manager error (or a kill) between the
    // two steps of a rewrite would.
    let budget = dir.path().join("budget");
    let wrapper = dir.path().join("docker");
    fs_err::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" config create \"*slipway.demo-dev.release.*)\n  n=$(cat '{budget}')\n  if [ \"$n\" -le 0 ]; then echo 'Error response from daemon: injected failure' >&2; exit 1; fi\n  echo $((n - 1)) > '{budget}';;\nesac\nexec '{real}' \"$@\"\n",
            budget = budget.display(),
            real = bed.dockerd.client_path().display(),
        ),
    )
    .expect("wrapper");
    fs_err::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    // The record before the deploy is written; its final rewrite fails.
    fs_err::write(&budget, "1").expect("budget");
    let image = format!("app={}", bed.good);
    swarm_deploy(
        &bed,
        dir.path(),
        &["deploy", "--env", "dev", "--image", &image],
    )
    .env("DOCKER", &wrapper)
    .run()
    .assert_code(3);

    let listed = swarm_deploy(
        &bed,
        dir.path(),
        &["releases", "--env", "dev", "--format", "json"],
    )
    .run();
    listed.assert_code(0);
    let releases = listed.json()["hosts"][0]["releases"].clone();
    assert_eq!(releases[1]["id"], 2, "{releases}");
    assert_eq!(releases[1]["result"], "failed");
    assert_eq!(releases[1]["detail"], "the deploy did not finish");
    deploy(&bed, dir.path(), &bed.good).assert(
        0,
        "deployed swarm:demo-dev release=3 ready=true\n",
        "",
    );
    assert_eq!(
        bed.configs(),
        [
            "slipway.demo-dev.release.1.2",
            "slipway.demo-dev.release.2.1",
            "slipway.demo-dev.release.3.2"
        ],
        "one version of each record is left"
    );
    drop(bed.registry);
}

#[test]
fn a_deploy_whose_lock_was_not_renewed_for_its_lease_stops_before_changing_the_stack() {
    let bed = Bed::start();
    let port = slipway_testbed::free_port();
    let dir = project(port, "");
    deploy(&bed, dir.path(), &bed.good).assert(
        0,
        "deployed swarm:demo-dev release=1 ready=true\n",
        "",
    );
    // A docker client whose lease renewals fail and whose first write of
    // a release record takes longer than the lease lasts (15s), as a
    // loaded manager would: another deploy may take the lock meanwhile.
    // It logs what it is asked to do.
    let log = dir.path().join("docker.log");
    let slow = dir.path().join("slow");
    let wrapper = dir.path().join("docker");
    fs_err::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{log}'\ncase \" $* \" in\n  *\" config create \"*slipway.lock.beat.*) echo 'Error response from daemon: injected failure' >&2; exit 1;;\n  *\" config create \"*slipway.demo-dev.release.*) if [ ! -e '{slow}' ]; then : > '{slow}'; sleep 17; fi;;\nesac\nexec '{real}' \"$@\"\n",
            log = log.display(),
            slow = slow.display(),
            real = bed.dockerd.client_path().display(),
        ),
    )
    .expect("wrapper");
    fs_err::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let image = format!("app={}", bed.bad);
    let stopped = swarm_deploy(
        &bed,
        dir.path(),
        &["deploy", "--env", "dev", "--image", &image],
    )
    .env("DOCKER", &wrapper)
    .run();
    stopped.assert_code(3);
    let stderr = stopped.stderr_str();
    assert!(
        stderr.contains("error: lost the lock `slipway.demo-dev.lock` (it could not be renewed for 15s, or another deploy took it over): stopped before recording release 2; another deploy may be running on this env\n"),
        "{stderr}"
    );
    let log = fs_err::read_to_string(&log).expect("log");
    assert!(!log.contains("stack deploy"), "{log}");

    let listed = swarm_deploy(
        &bed,
        dir.path(),
        &["releases", "--env", "dev", "--format", "json"],
    )
    .run();
    listed.assert_code(0);
    let releases = listed.json()["hosts"][0]["releases"].clone();
    assert_eq!(releases[0]["result"], "deployed", "{releases}");
    assert_eq!(releases[1]["id"], 2, "{releases}");
    assert_eq!(releases[1]["result"], "failed");
    assert_eq!(releases[1]["detail"], "the deploy did not finish");
    assert!(
        !bed.configs().iter().any(|c| c.contains(".lock")),
        "{:?}",
        bed.configs()
    );
}

#[test]
fn a_deploy_cancelled_by_sigterm_releases_its_lock_at_once() {
    let bed = Bed::start();
    let port = slipway_testbed::free_port();
    let dir = project(port, "");
    let image = format!("app={}", bed.good);
    let running = swarm_deploy(
        &bed,
        dir.path(),
        &["deploy", "--env", "dev", "--image", &image],
    )
    .spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !bed.configs().contains(&"slipway.demo-dev.lock".to_owned()) {
        assert!(Instant::now() < deadline, "the deploy never took the lock");
        std::thread::sleep(Duration::from_millis(100));
    }
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &running.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(signalled.success());
    let cancelled = running.wait();
    assert_eq!(cancelled.code(), Some(143), "{}", cancelled.stderr_str());
    assert!(
        cancelled
            .stderr_str()
            .contains("cancelled: releasing the lock"),
        "{}",
        cancelled.stderr_str()
    );
    assert!(
        !bed.configs().iter().any(|c| c.contains(".lock")),
        "{:?}",
        bed.configs()
    );
}

#[test]
fn a_release_that_never_gets_ready_is_replaced_by_the_previous_digests_and_rollback_redeploys() {
    let bed = Bed::start();
    let port = slipway_testbed::free_port();
    let dir = project(port, "");
    deploy(&bed, dir.path(), &bed.good).assert(
        0,
        "deployed swarm:demo-dev release=1 ready=true\n",
        "",
    );
    // Healthy, so swarm completes the update; the ready URL answers 404.
    let failed = deploy(&bed, dir.path(), &bed.unready);
    failed.assert_code(1);
    assert!(
        failed.stdout_str().starts_with(&format!(
            "rolled_back swarm:demo-dev release=2 ready=false rolled_back_to=1 error='`http://127.0.0.1:{port}/ready` not ready after 10s: "
        )),
        "{}",
        failed.stdout_str()
    );
    assert_eq!(bed.running_images("demo-dev_web"), [bed.good.as_str()]);

    // `rollback --to 1` redeploys release 1's digest as release 3.
    swarm_deploy(&bed, dir.path(), &["rollback", "--env", "dev", "--to", "1"])
        .run()
        .assert(0, "deployed swarm:demo-dev release=3 ready=true\n", "");
    assert_eq!(bed.running_images("demo-dev_web"), [bed.good.as_str()]);
}
