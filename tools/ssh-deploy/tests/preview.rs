//! Preview environments against the test bed's real sshd, dockerd and
//! registry: a template env (`instances = true`) deployed as two instances
//! side by side, each with its own directory, container and port; a
//! redeploy keeps the port; `max_instances` refuses a third before anything
//! is touched; `destroy` runs the teardown and removes only its instance;
//! `instances` lists them; `gc --idle` destroys only the idle one.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Project;
use slipway_testbed::{Dockerd, Registry, Sshd};

/// Runs the instance's container, named by its compose project, on its port.
const SCRIPT: &str = r#"#!/bin/sh
set -eu
. ./deploy.env
echo "instance $SLIPWAY_INSTANCE on port $SLIPWAY_PORT as $COMPOSE_PROJECT_NAME"
"$DOCKER" pull --quiet "$APP_IMAGE" >/dev/null
"$DOCKER" rm -f "$COMPOSE_PROJECT_NAME" >/dev/null 2>&1 || true
"$DOCKER" run -d --name "$COMPOSE_PROJECT_NAME" --network host "$APP_IMAGE" httpd -f -p "127.0.0.1:$SLIPWAY_PORT" -h /srv/www >/dev/null
"#;

/// Builds `FROM base` + `www/api/ready` and pushes it as `app:v1`; returns
/// `repo@sha256:…`.
fn push_app(dockerd: &Dockerd, registry: &Registry, base: &str) -> String {
    let context = tempfile::tempdir().unwrap();
    let www = context.path().join("www/api");
    fs_err::create_dir_all(&www).unwrap();
    fs_err::write(www.join("ready"), "ok").unwrap();
    fs_err::write(
        context.path().join("Dockerfile"),
        format!("FROM {base}\nCOPY www /srv/www\n"),
    )
    .unwrap();
    let image = format!("{}/app:v1", registry.host());
    run(dockerd
        .docker()
        .args(["build", "--network=none", "-q", "-t", &image])
        .arg(context.path()));
    run(dockerd.docker().args(["push", &image]));
    run(dockerd
        .docker()
        .args(["inspect", "--format", "{{index .RepoDigests 0}}", &image]))
    .trim()
    .to_owned()
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The names of the running containers, sorted.
fn containers(dockerd: &Dockerd) -> Vec<String> {
    let mut names: Vec<String> = run(dockerd.docker().args(["ps", "--format", "{{.Names}}"]))
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// Every file under `dir`, relative, sorted: what a refusal must not change.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(next) = stack.pop() {
        for entry in fs_err::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            all.push(path.strip_prefix(dir).unwrap().to_owned());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    all.sort();
    all
}

/// The first of `n` consecutive free ports below the kernel's ephemeral
/// range (32768 and up here), where no outgoing connection takes one.
fn free_ports(n: u16) -> u16 {
    let offset = u16::try_from(std::process::id() % 500).unwrap();
    (0..500)
        .map(|k| 20000 + ((offset + k) % 500) * n)
        .find(|first| {
            (*first..first + n).all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        })
        .expect("a free range of ports between 20000 and 25000")
}

/// `(name, state, port)` of each instance `instances` lists.
fn listed(report: &serde_json::Value) -> Vec<(String, String, Option<u64>)> {
    report["hosts"][0]["instances"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|i| {
                    (
                        i["name"].as_str().unwrap().to_owned(),
                        i["state"].as_str().unwrap().to_owned(),
                        i["port"].as_u64(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn instances_live_side_by_side_and_are_destroyed_and_collected_one_by_one() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let sshd = Sshd::start();
    let base = dockerd.base_image(&registry);
    let app = push_app(&dockerd, &registry, &base);
    let first_port = free_ports(10);
    let docker_config = tempfile::tempdir().unwrap();
    let docker = format!(
        "DOCKER_HOST={} DOCKER={} DOCKER_CONFIG={}",
        dockerd.host(),
        dockerd.client_path().display(),
        docker_config.path().display()
    );
    let remote = tempfile::tempdir().unwrap();
    let previews = remote.path().join("previews");
    let extra = format!(
        r#"command = "true"

[envs.preview]
hosts = ["{user}@127.0.0.1:{port}"]
remote_path = "{previews}/{{instance}}"
bundle = ["deploy/deploy.sh"]
strip_components = 1
images = {{ APP_IMAGE = "app" }}
command = "{docker} ./deploy.sh"
teardown = "{docker} sh -c '\"$DOCKER\" rm -f \"$COMPOSE_PROJECT_NAME\" && echo torn down $SLIPWAY_INSTANCE'"
instances = true
max_instances = 2
port_range = "{first_port}-{last_port}"
ready_url = "http://127.0.0.1:{{port}}/api/ready"
ready_timeout = "10s"
env = {{ APP_HOST = "{{instance}}.preview.example.com" }}
"#,
        user = sshd.user(),
        port = sshd.port(),
        previews = previews.display(),
        last_port = first_port + 9,
    );
    let project = Project::new(&sshd, &extra, &[("deploy.sh", SCRIPT, 0o755)]);
    let _cleanup = Cleanup(&dockerd);
    let image = format!("app={app}");
    let deploy = |instance: &str| {
        project.run_json(
            &sshd,
            &[
                "deploy",
                "--env",
                "preview",
                "--instance",
                instance,
                "--image",
                &image,
            ],
        )
    };
    let instances = || project.run_json(&sshd, &["instances", "--env", "preview"]);

    // Two instances side by side: their own directories, containers, ports.
    let (code, report, stderr) = deploy("pr-1");
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(report["instance"], "pr-1");
    assert_eq!(report["hosts"][0]["ready"], true, "{report}");
    let (code, report, stderr) = deploy("pr-2");
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert!(
        stderr.contains("| instance pr-2 on port "),
        "the command gets SLIPWAY_INSTANCE and SLIPWAY_PORT: {stderr}"
    );
    assert_eq!(containers(&dockerd), ["preview-pr-1", "preview-pr-2"]);
    for name in ["pr-1", "pr-2"] {
        let env_file = fs_err::read_to_string(previews.join(name).join("deploy.env")).unwrap();
        assert!(
            env_file.ends_with(&format!("\nAPP_IMAGE='{app}'\n")),
            "{env_file}"
        );
        assert!(
            previews
                .join(name)
                .join(".slipway/releases/1.json")
                .exists()
        );
    }
    let (code, report, stderr) = instances();
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    let both = listed(&report);
    assert_eq!(both.len(), 2, "{report}");
    let (port1, port2) = (both[0].2.unwrap(), both[1].2.unwrap());
    assert_ne!(port1, port2);
    for port in [port1, port2] {
        assert!((u64::from(first_port)..=u64::from(first_port) + 9).contains(&port));
    }
    assert_eq!(both[0].0, "pr-1");
    assert_eq!(both[0].1, "active");
    let pr1 = &report["hosts"][0]["instances"][0];
    assert_eq!(pr1["release"], 1);
    assert_eq!(pr1["result"], "deployed");
    assert_eq!(pr1["images"]["APP_IMAGE"], app.as_str());
    assert_eq!(pr1["remote_path"], previews.join("pr-1").to_str().unwrap());
    assert!(pr1["last_deploy"].as_str().unwrap().ends_with('Z'), "{pr1}");
    // Each instance answers on its own port.
    for port in [port1, port2] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", u16::try_from(port).unwrap())).is_ok(),
            "port {port}"
        );
    }

    // A redeploy keeps the instance's port.
    let (code, report, stderr) = deploy("pr-1");
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["release"], 2);
    assert!(
        stderr.contains(&format!("| instance pr-1 on port {port1} as preview-pr-1")),
        "{stderr}"
    );
    assert_eq!(listed(&instances().1)[0].2, Some(port1));

    // A third instance is refused before anything is touched.
    let before = tree(remote.path());
    let (code, report, stderr) = deploy("pr-3");
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "error");
    assert_eq!(
        report["hosts"][0]["error"],
        "preflight: instance `pr-3` would be instance 3 of at most 2 (`max_instances`); the host has 2: `pr-1`, `pr-2`; destroy one first (`ssh-deploy destroy --instance NAME`, or `ssh-deploy gc --idle 7d`)"
    );
    assert_eq!(tree(remote.path()), before);
    assert_eq!(containers(&dockerd), ["preview-pr-1", "preview-pr-2"]);

    // Destroy runs the teardown and removes only its instance.
    let (code, report, stderr) = project.run_json(
        &sshd,
        &["destroy", "--env", "preview", "--instance", "pr-1"],
    );
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "destroyed");
    assert!(stderr.contains("| torn down pr-1"), "{stderr}");
    assert_eq!(containers(&dockerd), ["preview-pr-2"]);
    assert!(!previews.join("pr-1").exists());
    assert!(previews.join("pr-2/deploy.env").exists());
    let after = listed(&instances().1);
    assert_eq!(
        after,
        [
            ("pr-1".to_owned(), "destroyed".to_owned(), Some(port1)),
            ("pr-2".to_owned(), "active".to_owned(), Some(port2)),
        ]
    );

    // Destroying it again says so and succeeds.
    let output = project.run(
        &sshd,
        &["destroy", "--env", "preview", "--instance", "pr-1"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "instance `pr-1` does not exist (no `{}`); nothing to destroy",
            previews.join("pr-1").display()
        )),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("absent "),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    // gc destroys only the instance idle for longer than --idle: pr-2's
    // newest release is made old on the host.
    let (code, report, stderr) = deploy("pr-3");
    assert_eq!(
        code,
        Some(0),
        "{report}\n{stderr}\n{:?}\n{}",
        dockerd.docker().args(["logs", "preview-pr-3"]).output(),
        run(dockerd.docker().args(["ps", "-a"]))
    );
    let record = previews.join("pr-2/.slipway/releases/1.json");
    let text = fs_err::read_to_string(&record).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["time"] = "2020-01-01T00:00:00Z".into();
    fs_err::write(&record, json.to_string()).unwrap();

    let before = tree(remote.path());
    let (code, report, stderr) = project.run_json(
        &sshd,
        &["gc", "--env", "preview", "--idle", "14d", "--dry-run"],
    );
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "listed");
    assert_eq!(
        listed(&report),
        [("pr-2".to_owned(), "active".to_owned(), Some(port2))]
    );
    assert_eq!(tree(remote.path()), before, "a dry run changes nothing");

    let (code, report, stderr) =
        project.run_json(&sshd, &["gc", "--env", "preview", "--idle", "14d"]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "destroyed");
    assert_eq!(
        listed(&report),
        [("pr-2".to_owned(), "destroyed".to_owned(), Some(port2))]
    );
    assert_eq!(
        report["hosts"][0]["instances"][0]["destroyed_by"]
            .as_str()
            .unwrap()
            .split_once(" (")
            .unwrap()
            .1,
        "gc: idle since 2020-01-01T00:00:00Z, longer than 14days)"
    );
    assert_eq!(containers(&dockerd), ["preview-pr-3"]);
    assert!(!previews.join("pr-2").exists());
    assert!(previews.join("pr-3/deploy.env").exists());
    let states: Vec<(String, String)> = listed(&instances().1)
        .into_iter()
        .map(|(name, state, _)| (name, state))
        .collect();
    assert_eq!(
        states,
        [
            ("pr-1".to_owned(), "destroyed".to_owned()),
            ("pr-2".to_owned(), "destroyed".to_owned()),
            ("pr-3".to_owned(), "active".to_owned()),
        ]
    );
}

/// Removes the instances' containers before dockerd stops.
struct Cleanup<'a>(&'a Dockerd);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in ["preview-pr-1", "preview-pr-2", "preview-pr-3"] {
            let _ = self.0.docker().args(["rm", "-f", name]).output();
        }
    }
}

/// A template env on `sshd` whose instances run `command` and tear down
/// with `teardown`; returns the project and the directory of the instances.
fn plain_template(sshd: &Sshd, teardown: &str) -> (Project, tempfile::TempDir) {
    let remote = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"command = "true"

[envs.preview]
hosts = ["{user}@127.0.0.1:{port}"]
remote_path = "{previews}/{{instance}}"
bundle = ["deploy/deploy.sh"]
strip_components = 1
command = "./deploy.sh"
teardown = "{teardown}"
instances = true
"#,
        user = sshd.user(),
        port = sshd.port(),
        previews = remote.path().join("previews").display(),
    );
    let project = Project::new(
        sshd,
        &extra,
        &[(
            "deploy.sh",
            "#!/bin/sh\necho \"up $SLIPWAY_INSTANCE\"\n",
            0o755,
        )],
    );
    (project, remote)
}

#[test]
fn a_failed_teardown_keeps_the_instance_and_exits_1() {
    let sshd = Sshd::start();
    let (project, remote) = plain_template(&sshd, "echo cannot stop; exit 4");
    let instance = remote.path().join("previews/pr-9");
    let (code, report, stderr) =
        project.run_json(&sshd, &["deploy", "--env", "preview", "--instance", "pr-9"]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert!(stderr.contains("| up pr-9"), "{stderr}");

    let (code, report, stderr) = project.run_json(
        &sshd,
        &["destroy", "--env", "preview", "--instance", "pr-9"],
    );
    assert_eq!(code, Some(1), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "failed");
    assert_eq!(
        report["hosts"][0]["error"],
        format!(
            "the teardown command `echo cannot stop; exit 4` exited with status 4; `{}` is kept: fix it and run `ssh-deploy destroy` again",
            instance.display()
        )
    );
    assert!(stderr.contains("| cannot stop"), "{stderr}");
    assert!(instance.join(".slipway/releases/1.json").exists());
    // The instance's lock was released: a redeploy goes through.
    let (code, report, stderr) =
        project.run_json(&sshd, &["deploy", "--env", "preview", "--instance", "pr-9"]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["release"], 2);

    // `instances` in plain text: one line per host, one per instance.
    let output = project.run(&sshd, &["instances", "--env", "preview"]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(
        lines[0],
        format!("listed {}@127.0.0.1:{}", sshd.user(), sshd.port())
    );
    let (head, tail) = lines[1].split_once(" last_deploy=").unwrap();
    assert_eq!(head, "  pr-9 active port=-");
    assert!(tail.ends_with("Z release=2 result=deployed"), "{stdout}");

    // A dry run says what it would do and changes nothing.
    let output = project.run(
        &sshd,
        &[
            "destroy",
            "--env",
            "preview",
            "--instance",
            "pr-9",
            "--dry-run",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with(&format!(
            "dry run: the instances listed would be destroyed; nothing was changed\nlisted {}@127.0.0.1:{} instance=pr-9\n  pr-9 active port=- last_deploy=",
            sshd.user(),
            sshd.port()
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "would run `echo cannot stop; exit 4` in `{dir}`, then remove `{dir}` and record instance `pr-9` as destroyed",
            dir = instance.display()
        )),
        "{stderr}"
    );
    assert!(instance.join(".slipway/releases/2.json").exists());
}

#[test]
fn a_rollback_never_creates_an_instance() {
    let sshd = Sshd::start();
    let (project, remote) = plain_template(&sshd, "true");
    let (code, report, stderr) = project.run_json(
        &sshd,
        &["rollback", "--env", "preview", "--instance", "pr-5"],
    );
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    assert_eq!(
        report["hosts"][0]["error"],
        "instance `pr-5` does not exist on the host (never deployed, or destroyed), so there is nothing to roll back"
    );
    assert!(!remote.path().join("previews/pr-5").exists());
}

#[test]
fn a_directory_slipway_never_deployed_is_not_an_instance_to_destroy() {
    let sshd = Sshd::start();
    let (project, remote) = plain_template(&sshd, "touch torn-down");
    // `/srv/{instance}` with `--instance www`: someone else's directory.
    let theirs = remote.path().join("previews/www");
    fs_err::create_dir_all(&theirs).unwrap();
    fs_err::write(theirs.join("index.html"), "theirs").unwrap();
    let (code, report, stderr) =
        project.run_json(&sshd, &["destroy", "--env", "preview", "--instance", "www"]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(report["hosts"][0]["outcome"], "absent");
    assert!(
        stderr.contains(&format!(
            "`{}` is not an instance Slipway deployed (no record, no `{}`): left alone, nothing destroyed",
            theirs.display(),
            theirs.join(".slipway/releases").display()
        )),
        "{stderr}"
    );
    assert_eq!(tree(&theirs), [PathBuf::from("index.html")], "untouched");
}

#[test]
fn a_teardown_past_the_timeout_is_stopped_on_the_host_and_the_instance_kept() {
    let sshd = Sshd::start();
    // Prints every half second: a read timeout alone would never trip.
    let (project, remote) = plain_template(&sshd, "while :; do echo still; sleep 0.5; done");
    let instance = remote.path().join("previews/pr-3");
    let (code, report, stderr) =
        project.run_json(&sshd, &["deploy", "--env", "preview", "--instance", "pr-3"]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    let (code, report, stderr) = project.run_json(
        &sshd,
        &[
            "destroy",
            "--env",
            "preview",
            "--instance",
            "pr-3",
            "--timeout",
            "2s",
        ],
    );
    assert_eq!(code, Some(1), "{report}\n{stderr}");
    assert_eq!(
        report["hosts"][0]["error"],
        format!(
            "the teardown command `while :; do echo still; sleep 0.5; done` did not finish within 2 s (`--timeout`); `{}` is kept: fix it and run `ssh-deploy destroy` again",
            instance.display()
        )
    );
    assert!(instance.join(".slipway/releases/1.json").exists());
}
