//! A fleet fails as a unit: several sshds, each with a file system of its
//! own under the remote path (a mount namespace per sshd), act as hosts. A
//! host that fails the preflight stops the deploy before any host is
//! touched; a host that fails in a later batch rolls back the hosts already
//! deployed and leaves the rest not started; `--canary` gates the rest on
//! the first host's readiness; `--keep-going` opts out.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is the test failing"
)]

mod common;

use std::path::PathBuf;

use common::{Project, fake_ref};
use slipway_testbed::Sshd;
use slipway_testbed::cmd::Cmd;

/// `n` hosts deploying env `prod` of one project.
struct Fleet {
    hosts: Vec<Sshd>,
    project: Project,
    known_hosts: PathBuf,
    _mount: tempfile::TempDir,
}

impl Fleet {
    fn new(n: usize, extra: &str) -> Fleet {
        let mount = tempfile::tempdir().unwrap();
        let hosts: Vec<Sshd> = (0..n)
            .map(|_| Sshd::start_with_private_dir(mount.path()))
            .collect();
        let project = Project::new(&hosts[0], extra, &[("compose.yml", "x\n", 0o644)]);
        // Every host sees its own directory at the mount point.
        let toml = project.dir.path().join("slipway.toml");
        let text = fs_err::read_to_string(&toml).unwrap().replace(
            &project.remote_dir.path().display().to_string(),
            &mount.path().display().to_string(),
        );
        fs_err::write(&toml, text).unwrap();
        let known_hosts = project.dir.path().join("known_hosts");
        let mut all = String::new();
        for host in &hosts {
            all += &fs_err::read_to_string(host.known_hosts_path()).unwrap();
            authorize(&hosts[0], host);
        }
        fs_err::write(&known_hosts, all).unwrap();
        Fleet {
            hosts,
            project,
            known_hosts,
            _mount: mount,
        }
    }

    /// The remote path as host `k` sees it.
    fn remote(&self, k: usize) -> PathBuf {
        self.hosts[k].private_dir().join("srv")
    }

    fn file(&self, k: usize, name: &str) -> String {
        fs_err::read_to_string(self.remote(k).join(name)).unwrap_or_default()
    }

    /// Release records on host `k`: `(id, result, rollback_of)`.
    fn releases(&self, k: usize) -> Vec<(u64, String, Option<u64>)> {
        let mut list: Vec<(u64, String, Option<u64>)> =
            fs_err::read_dir(self.remote(k).join(".slipway/releases"))
                .map(|dir| {
                    dir.map(|entry| {
                        let record: serde_json::Value = serde_json::from_str(
                            &fs_err::read_to_string(entry.unwrap().path()).unwrap(),
                        )
                        .unwrap();
                        (
                            record["id"].as_u64().unwrap(),
                            record["result"].as_str().unwrap().to_owned(),
                            record["rollback_of"].as_u64(),
                        )
                    })
                    .collect()
                })
                .unwrap_or_default();
        list.sort();
        list
    }

    /// `ssh-deploy --format json deploy --image app=<fake_ref(image)> ARGS` to every host.
    fn deploy(&self, image: u8, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
        let image = format!("app={}", fake_ref(image));
        let mut command = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"));
        command
            .current_dir(self.project.dir.path())
            .env("NO_COLOR", "1")
            .args([
                "--format", "json", "deploy", "--env", "prod", "--image", &image,
            ]);
        for host in &self.hosts {
            command.args([
                "--host",
                &format!("{}@127.0.0.1:{}", host.user(), host.port()),
            ]);
        }
        let output = command
            .arg("--ssh-key")
            .arg(self.hosts[0].client_key_path())
            .arg("--known-hosts")
            .arg(&self.known_hosts)
            .args(extra)
            .run();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let report =
            serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
        (output.status.code(), report, stderr)
    }
}

/// `host` accepts `first`'s client key too.
fn authorize(first: &Sshd, host: &Sshd) {
    let key = std::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(first.client_key_path())
        .output()
        .unwrap();
    assert!(key.status.success());
    let authorized = host.client_key_path().with_file_name("authorized_keys");
    let mut text = fs_err::read_to_string(&authorized).unwrap();
    text.push_str(&String::from_utf8(key.stdout).unwrap());
    fs_err::write(&authorized, text).unwrap();
}

fn outcomes(report: &serde_json::Value) -> Vec<String> {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["outcome"].as_str().unwrap().to_owned())
        .collect()
}

fn error(report: &serde_json::Value, k: usize) -> String {
    report["hosts"][k]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[track_caller]
fn assert_untouched(fleet: &Fleet, k: usize) {
    assert_eq!(fleet.file(k, "runs.txt"), "1\n", "host {k}");
    assert_eq!(
        fleet.file(k, "deploy.env").lines().last().unwrap(),
        format!("APP_IMAGE='{}'", fake_ref(1)),
        "host {k}"
    );
    assert_eq!(
        fleet.releases(k),
        [(1, "deployed".to_owned(), None)],
        "host {k}"
    );
}

#[test]
fn a_host_failing_the_preflight_stops_the_fleet_before_any_host_is_touched() {
    let mut fleet = Fleet::new(
        3,
        "command = \"echo $SLIPWAY_RELEASE >> runs.txt\"\npreflight = \"test ! -e maintenance\"",
    );
    let (code, report, stderr) = fleet.deploy(1, &[]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(outcomes(&report), ["deployed", "deployed", "deployed"]);

    // A host that is down.
    fleet.hosts[1].stop();
    let (code, report, stderr) = fleet.deploy(2, &[]);
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    assert_eq!(outcomes(&report), ["not_started", "error", "not_started"]);
    let down = report["hosts"][1]["host"].as_str().unwrap().to_owned();
    assert!(error(&report, 1).starts_with("preflight: "), "{report}");
    assert_eq!(
        error(&report, 0),
        format!("not started: the preflight failed on `{down}`; nothing was done on any host")
    );
    for k in [0, 2] {
        assert_untouched(&fleet, k);
    }

    // A host whose own preflight command refuses.
    fleet.hosts[1].restart();
    fs_err::write(fleet.remote(2).join("maintenance"), "").unwrap();
    let (code, report, stderr) = fleet.deploy(2, &[]);
    assert_eq!(code, Some(3), "{report}\n{stderr}");
    assert_eq!(outcomes(&report), ["not_started", "not_started", "error"]);
    assert_eq!(
        error(&report, 2),
        "preflight: the env's preflight command `test ! -e maintenance` exited with status 1"
    );
    for k in 0..3 {
        assert_untouched(&fleet, k);
    }
}

#[test]
fn a_host_failing_in_a_later_batch_rolls_back_the_hosts_already_deployed() {
    let fleet = Fleet::new(
        3,
        r#"command = "test ! -e broken && echo $SLIPWAY_RELEASE >> runs.txt""#,
    );
    let (code, report, stderr) = fleet.deploy(1, &[]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");

    fs_err::write(fleet.remote(1).join("broken"), "").unwrap();
    let (code, report, stderr) = fleet.deploy(2, &["--batch", "1"]);
    assert_eq!(code, Some(1), "{report}\n{stderr}");
    assert_eq!(outcomes(&report), ["rolled_back", "failed", "not_started"]);
    let broken = report["hosts"][1]["host"].as_str().unwrap().to_owned();
    assert_eq!(report["hosts"][0]["rolled_back_to"], 1);
    assert_eq!(
        error(&report, 0),
        format!("`{broken}` failed; rolled back to release 1 (recorded as release 3)")
    );
    assert_eq!(error(&report, 2), format!("not started: `{broken}` failed"));
    // Host 0 ran release 2, then release 1 again as release 3.
    assert_eq!(fleet.file(0, "runs.txt"), "1\n2\n3\n");
    assert_eq!(
        fleet.file(0, "deploy.env").lines().last().unwrap(),
        format!("APP_IMAGE='{}'", fake_ref(1))
    );
    assert_eq!(
        fleet.releases(0),
        [
            (1, "deployed".to_owned(), None),
            (2, "deployed".to_owned(), None),
            (3, "deployed".to_owned(), Some(2)),
        ]
    );
    // Host 1's command stopped before switching; host 2 was never touched.
    assert_eq!(fleet.file(1, "runs.txt"), "1\n");
    assert_eq!(
        fleet.releases(1),
        [
            (1, "deployed".to_owned(), None),
            (2, "failed".to_owned(), None)
        ]
    );
    assert_untouched(&fleet, 2);

    // `--keep-going`: the others go on and stay deployed.
    let (code, report, stderr) = fleet.deploy(3, &["--batch", "1", "--keep-going"]);
    assert_eq!(code, Some(1), "{report}\n{stderr}");
    assert_eq!(outcomes(&report), ["deployed", "failed", "deployed"]);
    assert_eq!(fleet.file(2, "runs.txt"), "1\n2\n");
}

#[test]
fn a_canary_that_is_not_ready_stops_the_rest() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fleet = Fleet::new(
        3,
        &format!(
            "command = \"echo $SLIPWAY_RELEASE >> runs.txt\"\nready_url = \"tcp://127.0.0.1:{port}\"\nready_timeout = \"1s\""
        ),
    );
    let (code, report, stderr) = fleet.deploy(1, &["--canary", "1"]);
    assert_eq!(code, Some(0), "{report}\n{stderr}");
    assert_eq!(outcomes(&report), ["deployed", "deployed", "deployed"]);

    // Nothing listens any more: the canary is not ready (nor is its own
    // rollback), and the rest are not started.
    drop(listener);
    let (code, report, stderr) = fleet.deploy(2, &["--canary", "1"]);
    assert_eq!(code, Some(1), "{report}\n{stderr}");
    assert_eq!(outcomes(&report), ["failed", "not_started", "not_started"]);
    let canary = report["hosts"][0]["host"].as_str().unwrap().to_owned();
    assert_eq!(error(&report, 1), format!("not started: `{canary}` failed"));
    assert_eq!(report["hosts"][0]["rolled_back_to"], 1);
    for k in [1, 2] {
        assert_untouched(&fleet, k);
    }
}
