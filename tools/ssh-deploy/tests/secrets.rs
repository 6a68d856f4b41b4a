//! Secrets never leak from a deploy: the SSH private key passed in an
//! environment variable (`--ssh-key-env`), the registry password the
//! revision gate uses (`REGISTRY_PASSWORD`) and a CI token in the
//! environment (`GITHUB_TOKEN`). At `-vv` with `RUST_LOG=trace`, under
//! GitHub Actions, on success and on failure (unauthorised key, garbage key,
//! unreachable host, failing remote command, wrong registry password, a key
//! pasted where a name or path belongs), no 8-byte window of them (nor the
//! base64 `Basic` form of the password) appears in stdout, stderr,
//! `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`, the files ssh-deploy writes on
//! the host (deploy.env, releases, lock) or locally, nor in the environment
//! the remote command runs with. The key is masked before the connection.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Project, fake_ref};
use slipway_testbed::cmd::Cmd;
use slipway_testbed::secrets::{GithubRun, Secret, copy_image, distinctive};
use slipway_testbed::{Registry, Sshd};

/// The progress line ssh-deploy prints before it connects to `sshd`.
fn connecting(sshd: &Sshd) -> String {
    format!("@127.0.0.1:{}: connecting", sshd.port())
}

/// Writes what the remote command's environment holds, then succeeds.
const SCRIPT: &str = "#!/bin/sh\nset -eu\nenv > remote-env.txt\necho \"deploying $APP_IMAGE\"\n";

const REGISTRY_USER: &str = "deployer";

/// The armour lines of an OpenSSH private key: the same in every key, not secret.
const ARMOR: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\n-----END OPENSSH PRIVATE KEY-----";

/// The secrets of a test and the SSH key's public half (not secret).
struct Secrets {
    key: String,
    password: String,
    token: String,
    public_key: String,
}

impl Secrets {
    fn new(sshd: &Sshd) -> Secrets {
        let public_key = fs_err::read_to_string(sshd.client_key_path().with_extension("pub"))
            .expect("the client's public key");
        Secrets {
            key: sshd.client_key_pem(),
            password: distinctive("Pa55"),
            token: distinctive("T0k"),
            public_key,
        }
    }

    fn all(&self) -> Vec<Secret> {
        vec![
            Secret::new("SSH private key", &self.key)
                .with_public(&self.public_key)
                .with_public(ARMOR),
            Secret::new("registry password", &self.password).with_user(REGISTRY_USER),
            Secret::new("CI token", &self.token),
        ]
    }
}

/// Runs `ssh-deploy ARGS` in `project` at `-vv` with `RUST_LOG=trace` under
/// GitHub Actions, with `env` (and PATH, HOME) only; no ssh-agent.
fn ssh_deploy(project: &Project, sshd: &Sshd, args: &[&str], env: &[(&str, &str)]) -> GithubRun {
    GithubRun::run(
        Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
            .current_dir(project.dir.path())
            .args(args)
            .args(["-vv", "--known-hosts"])
            .arg(sshd.known_hosts_path())
            .home(project.dir.path())
            .env(
                "DOCKER_CONFIG",
                project.dir.path().join(".no-docker-config"),
            )
            .envs(env.iter().copied()),
    )
}

/// No secret in the run's output and GitHub files, the project directory
/// (caches) or anything on the host.
#[track_caller]
fn assert_no_leak(run: &GithubRun, secrets: &[Secret], project: &Project) {
    run.assert_no_leak(secrets, &[project.dir.path(), project.remote_dir.path()]);
}

/// Makes the project a git repository and returns its HEAD.
fn commit(dir: &Path) -> String {
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "release"]);
    git(&["rev-parse", "HEAD"])
}

#[test]
fn a_deploy_with_a_key_in_the_environment_and_a_locked_registry_leaks_nothing() {
    let sshd = Sshd::start();
    let secrets = Secrets::new(&sshd);
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh""#,
        &[("deploy.sh", SCRIPT, 0o750)],
    );
    let head = commit(project.dir.path());
    // The image the gate checks lives behind the registry password.
    let open = Registry::start();
    let locked = Registry::start_with_auth(REGISTRY_USER, &secrets.password);
    let (pushed, _) =
        slipway_testbed::images::push_image(&open.host(), "demo/app", "v1", "amd64", Some(&head));
    let image = format!("{}/demo/app:v1", locked.host());
    copy_image(
        &format!("{}/demo/app:v1", open.host()),
        &image,
        REGISTRY_USER,
        &secrets.password,
    );
    let env = [
        ("DEPLOY_KEY", secrets.key.as_str()),
        ("REGISTRY_USER", REGISTRY_USER),
        ("REGISTRY_PASSWORD", secrets.password.as_str()),
        ("GITHUB_TOKEN", secrets.token.as_str()),
    ];
    let image_flag = format!("app={image}");

    for format in ["github", "json"] {
        let run = ssh_deploy(
            &project,
            &sshd,
            &[
                "deploy",
                "--env",
                "prod",
                "--image",
                &image_flag,
                "--require-revision",
                "HEAD",
                "--ssh-key-env",
                "DEPLOY_KEY",
                "--format",
                format,
            ],
            &env,
        );
        assert_eq!(run.code(), Some(0), "--format {format}: {}", run.stderr());
        assert_no_leak(&run, &secrets.all(), &project);
        // The key and the password are masked before they are used; the
        // token is never read, so it is neither used nor masked.
        run.assert_masked(&secrets.all()[..1], Some(&connecting(&sshd)));
        run.assert_masked(&secrets.all()[1..2], Some("registry::transport: request"));
    }
    // The deploy really ran with what it was given (the tag resolved to
    // its digest in the locked registry), and only that.
    let pinned = format!("{}/demo/app@{pushed}", locked.host());
    let deploy_env = project.remote_file("deploy.env");
    assert!(
        deploy_env.ends_with(&format!("\nAPP_IMAGE='{pinned}'\n")),
        "{deploy_env}"
    );
    let remote_env = project.remote_file("remote-env.txt");
    assert!(
        remote_env.contains(&format!("APP_IMAGE={pinned}")),
        "{remote_env}"
    );
    assert!(
        locked
            .log()
            .contains("\"HEAD /v2/demo/app/manifests/v1 HTTP/1.1\" 200"),
        "the gate read the image from the locked registry:\n{}",
        locked.log()
    );
}

#[test]
fn failed_deploys_leak_nothing() {
    let sshd = Sshd::start();
    let secrets = Secrets::new(&sshd);
    let project = Project::new(
        &sshd,
        r#"command = "./deploy.sh; exit 7""#,
        &[("deploy.sh", SCRIPT, 0o750)],
    );
    let image_flag = format!("app={}", fake_ref(1));
    let deploy = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["deploy", "--env", "prod", "--image", &image_flag];
        args.extend_from_slice(extra);
        let mut all_env = vec![("GITHUB_TOKEN", secrets.token.as_str())];
        all_env.extend_from_slice(env);
        ssh_deploy(&project, &sshd, &args, &all_env)
    };
    let mut all = secrets.all();

    // The remote command fails: the deploy is recorded as failed.
    let run = deploy(
        &["--ssh-key-env", "DEPLOY_KEY"],
        &[("DEPLOY_KEY", &secrets.key)],
    );
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    assert_no_leak(&run, &all, &project);
    run.assert_masked(&all[..1], Some(&connecting(&sshd)));
    assert_eq!(project.release(1)["result"], "failed");

    // A valid key the host does not authorise.
    let other = other_key();
    all.push(
        Secret::new("unauthorised SSH key", &other.0)
            .with_public(&other.1)
            .with_public(ARMOR),
    );
    let run = deploy(
        &["--ssh-key-env", "DEPLOY_KEY"],
        &[("DEPLOY_KEY", &other.0)],
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    assert!(
        run.stderr().contains("key from environment variable"),
        "{}",
        run.stderr()
    );
    assert_no_leak(&run, &all, &project);
    run.assert_masked(&all[3..], Some(&connecting(&sshd)));

    // Garbage where a key belongs.
    let garbage = distinctive("N0tAKey");
    all.push(Secret::new("garbage key", &garbage));
    let run = deploy(
        &["--ssh-key-env", "DEPLOY_KEY"],
        &[("DEPLOY_KEY", &garbage)],
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    assert_no_leak(&run, &all, &project);

    // Nothing listens on the host's port.
    let closed = Project::new(
        &sshd,
        r#"command = "true""#,
        &[("deploy.sh", SCRIPT, 0o750)],
    );
    let toml = closed.dir.path().join("slipway.toml");
    let text = fs_err::read_to_string(&toml).expect("slipway.toml");
    let port = slipway_testbed::free_port();
    fs_err::write(
        &toml,
        text.replace(&format!(":{}\"", sshd.port()), &format!(":{port}\"")),
    )
    .expect("slipway.toml is written");
    let run = ssh_deploy(
        &closed,
        &sshd,
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            &image_flag,
            "--ssh-key-env",
            "DEPLOY_KEY",
        ],
        &[("DEPLOY_KEY", &secrets.key)],
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    assert!(run.stderr().contains(&port.to_string()), "{}", run.stderr());
    assert_no_leak(&run, &all, &closed);
}

#[test]
fn a_key_pasted_where_a_name_or_path_belongs_is_refused_without_echoing_it() {
    let sshd = Sshd::start();
    let secrets = Secrets::new(&sshd);
    let project = Project::new(
        &sshd,
        r#"command = "true""#,
        &[("deploy.sh", SCRIPT, 0o750)],
    );
    let image_flag = format!("app={}", fake_ref(1));
    let base = ["deploy", "--env", "prod", "--image", &image_flag];

    let mut args = base.to_vec();
    args.extend(["--ssh-key-env", &secrets.key]);
    let run = ssh_deploy(&project, &sshd, &args, &[]);
    assert_eq!(run.code(), Some(2), "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("`--ssh-key-env` takes the name of an environment variable"),
        "{}",
        run.stderr()
    );
    assert_no_leak(&run, &secrets.all(), &project);

    let run = ssh_deploy(&project, &sshd, &base, &[("SLIPWAY_SSH_KEY", &secrets.key)]);
    assert_eq!(run.code(), Some(2), "{}", run.stderr());
    assert!(
        run.stderr()
            .contains("holds a private key itself, not a file path"),
        "{}",
        run.stderr()
    );
    assert_no_leak(&run, &secrets.all(), &project);

    // A wrong registry password at the revision gate.
    let head = commit(project.dir.path());
    let locked = Registry::start_with_auth(REGISTRY_USER, &secrets.password);
    let wrong = distinctive("Wr0ng");
    let mut all = secrets.all();
    all.push(Secret::new("wrong registry password", &wrong).with_user(REGISTRY_USER));
    let image_flag = format!("app={}/demo/app:v1", locked.host());
    let run = ssh_deploy(
        &project,
        &sshd,
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            &image_flag,
            "--require-revision",
            &head,
            "--ssh-key-env",
            "DEPLOY_KEY",
        ],
        &[
            ("DEPLOY_KEY", &secrets.key),
            ("REGISTRY_USER", REGISTRY_USER),
            ("REGISTRY_PASSWORD", &wrong),
        ],
    );
    assert_eq!(run.code(), Some(3), "{}", run.stderr());
    assert!(
        run.stderr()
            .contains(&format!("refused the credentials of `{REGISTRY_USER}`")),
        "{}",
        run.stderr()
    );
    // The way out names what ssh-deploy reads, not flags it does not have.
    assert!(
        !run.stderr().contains("--password-stdin") && !run.stderr().contains("--username"),
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("`--require-revision` reads the registry with the credentials of `docker login 127.0.0.1:"),
        "{}",
        run.stderr()
    );
    assert_no_leak(&run, &all, &project);
}

/// A fresh ed25519 key pair the test bed's sshd does not authorise:
/// `(private key, public key)`.
fn other_key() -> (String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("other");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success());
    (
        fs_err::read_to_string(&path).expect("private key"),
        fs_err::read_to_string(path.with_extension("pub")).expect("public key"),
    )
}

/// The password and `?token=` of the env's `ready_url` were printed: in the
/// "holds credentials" and "is HTTPS" errors (and their `::error::`), in the
/// dry run, and in the progress and error lines of a deploy whose ready URL
/// never answers. Now they are masked and shown as `***` everywhere.
#[test]
fn a_ready_url_password_or_token_is_masked_and_never_printed() {
    let sshd = Sshd::start();
    let password = distinctive("Pa55");
    let token = distinctive("T0k");
    let secrets = [
        Secret::new("ready URL password", &password).with_user("bob"),
        Secret::new("ready URL token", &token),
    ];
    let image_flag = format!("app={}", fake_ref(1));
    let dry_run = [
        "deploy",
        "--env",
        "prod",
        "--image",
        &image_flag,
        "--dry-run",
    ];
    let port = slipway_testbed::free_port();
    // slipway.toml holds the URL, so the project directory is not searched,
    // only the output, the GitHub files and the host's files.

    for (scheme, why) in [("http", "holds credentials"), ("https", "is HTTPS")] {
        let ready_url = format!("{scheme}://bob:{password}@127.0.0.1:{port}/api/ready");
        let project = Project::new(
            &sshd,
            &format!("command = \"true\"\nready_url = \"{ready_url}\""),
            &[("deploy.sh", SCRIPT, 0o750)],
        );
        let run = ssh_deploy(&project, &sshd, &dry_run, &[]);
        assert_eq!(run.code(), Some(2), "{}", run.stderr());
        let shown = format!("ready URL `{scheme}://bob:***@127.0.0.1:{port}/api/ready` {why}");
        assert!(
            run.stderr().contains(&shown),
            "`{shown}` in {}",
            run.stderr()
        );
        assert!(
            run.stderr()
                .lines()
                .any(|line| line.starts_with("::error ") && line.contains("title=ssh-deploy::")),
            "an error annotation in {}",
            run.stderr()
        );
        run.assert_no_leak(&secrets, &[project.remote_dir.path()]);
        run.assert_masked(&secrets[..1], None);
    }

    let ready_url = format!("http://127.0.0.1:{port}/api/ready?token={token}");
    let shown = format!("http://127.0.0.1:{port}/api/ready?token=***");
    let project = Project::new(
        &sshd,
        &format!("command = \"true\"\nready_url = \"{ready_url}\"\nready_timeout = \"1s\""),
        &[("deploy.sh", SCRIPT, 0o750)],
    );
    for format in ["plain", "json"] {
        let mut args = dry_run.to_vec();
        args.extend(["--format", format]);
        let run = ssh_deploy(&project, &sshd, &args, &[]);
        assert_eq!(run.code(), Some(0), "{}", run.stderr());
        assert!(
            run.stdout().contains(&shown),
            "`{shown}` in {}",
            run.stdout()
        );
        run.assert_no_leak(&secrets, &[project.remote_dir.path()]);
        run.assert_masked(&secrets[1..], None);
    }

    // A real deploy whose ready URL never answers (nothing listens).
    let run = ssh_deploy(
        &project,
        &sshd,
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            &image_flag,
            "--ssh-key-env",
            "DEPLOY_KEY",
        ],
        &[("DEPLOY_KEY", &sshd.client_key_pem())],
    );
    assert_ne!(run.code(), Some(0), "{}", run.stderr());
    let not_ready = format!("`{shown}` was not ready within");
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(all.contains(&not_ready), "`{not_ready}` in {all}");
    assert!(all.contains(&format!("waiting for {shown}")), "{all}");
    run.assert_no_leak(&secrets, &[project.remote_dir.path()]);
    run.assert_masked(&secrets[1..], Some(&connecting(&sshd)));
}
