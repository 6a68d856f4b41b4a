//! The bad-input catalogue of `ssh-deploy` (docs/errors.md): each test is
//! one mistake users make, run through the real binary, and asserts exit 2,
//! nothing on stdout, and a message naming the flag, key, file:line:col or
//! value and what would be valid. The env's host is `127.0.0.1:1`, where
//! nothing listens: a run that tried to connect would exit 3, so exit 2 also
//! shows the mistake was caught before any connection. The last test uses
//! the test bed's sshd to show bad input leaves nothing on a host. More
//! cases: `deploy.rs` (injection), `images.rs` (`--image`, `--images-from`,
//! `--require-revision`).

mod common;

use std::path::Path;

use common::{Project, fake_ref};
use slipway_testbed::Sshd;
use slipway_testbed::cmd::Cmd;

/// slipway.toml of a project deploying image `app` to env `prod` on a host
/// nobody listens on; `extra` is appended to `[envs.prod]`.
fn config(extra: &str) -> String {
    format!(
        r#"[images.app]
repository = "127.0.0.1:5000/app"

[envs.prod]
hosts = ["root@127.0.0.1:1"]
remote_path = "/srv/app"
bundle = ["deploy/compose.yml"]
images = {{ APP_IMAGE = "app" }}
command = "true"
{extra}"#
    )
}

/// A project directory with `toml` as slipway.toml and the bundle file.
fn project(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    fs_err::create_dir_all(dir.path().join("deploy")).expect("bundle dir");
    fs_err::write(dir.path().join("deploy/compose.yml"), "services: {}\n").expect("bundle");
    fs_err::write(dir.path().join("slipway.toml"), toml).expect("slipway.toml");
    dir
}

/// Runs `ssh-deploy ARGS` in `dir`, asserts exit 2, an empty stdout and
/// `expected` in stderr; returns stderr.
#[track_caller]
fn check_in(dir: &Path, args: &[&str], expected: &str) -> String {
    let output = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .run();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(output.stdout.is_empty(), "{args:?}: stdout is for data");
    assert!(
        stderr.contains(expected),
        "{args:?}: expected `{expected}` in:\n{stderr}"
    );
    stderr
}

/// `deploy --env prod --image app=<digest ref> ARGS` in a valid project.
#[track_caller]
fn check_deploy(args: &[&str], expected: &str) -> String {
    let dir = project(&config(""));
    let image = format!("app={}", fake_ref(1));
    let mut all = vec!["deploy", "--env", "prod", "--image", &image];
    all.extend_from_slice(args);
    check_in(dir.path(), &all, expected)
}

/// `deploy --env prod --image … --dry-run` in a project whose slipway.toml
/// is `toml`.
#[track_caller]
fn check_config(toml: &str, expected: &str) -> String {
    let dir = project(toml);
    let image = format!("app={}", fake_ref(1));
    check_in(
        dir.path(),
        &["deploy", "--env", "prod", "--image", &image, "--dry-run"],
        expected,
    )
}

#[test]
fn an_md5_fingerprint_says_which_form_and_where_to_get_it() {
    check_deploy(
        &["--host-key-fingerprint", "MD5:16:27:ac:a5"],
        "error: invalid `--host-key-fingerprint MD5:16:27:ac:a5`: expected `SHA256:` and 43 base64 characters, as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it on the host",
    );
}

#[test]
fn a_key_variable_name_starting_with_a_digit_is_not_a_variable() {
    // No shell can set `9KEY`: it is a value pasted where a name belongs.
    let stderr = check_deploy(
        &["--ssh-key-env", "9KEY"],
        "error: `--ssh-key-env` takes the name of an environment variable (letters, digits and `_`, not starting with a digit), e.g. `DEPLOY_KEY`, not the key itself; the value given is not shown: it may be a secret",
    );
    assert!(!stderr.contains("9KEY"), "{stderr}");
}

#[test]
fn an_unset_ssh_key_env_names_the_variable() {
    check_deploy(
        &["--ssh-key-env", "SLIPWAY_TEST_UNSET_KEY"],
        "error: `--ssh-key-env SLIPWAY_TEST_UNSET_KEY` names an environment variable that is unset or empty; it must hold the private key itself",
    );
}

#[test]
fn a_missing_ssh_key_file_is_named_before_connecting() {
    check_deploy(
        &["--ssh-key", "/nonexistent/id_ed25519"],
        "error: cannot read `--ssh-key /nonexistent/id_ed25519`; give a private key file, e.g. `~/.ssh/id_ed25519`\n  caused by: failed to open file `/nonexistent/id_ed25519`: No such file or directory (os error 2)\n",
    );
}

#[test]
fn a_public_key_given_as_ssh_key_is_refused_before_connecting() {
    let keys = tempfile::tempdir().expect("temp dir");
    let public = keys.path().join("id_ed25519.pub");
    fs_err::write(
        &public,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPL ci@example\n",
    )
    .expect("key");
    let public = public.to_str().expect("utf-8 path");
    check_deploy(
        &["--ssh-key", public],
        &format!(
            "error: `--ssh-key {public}` is not a private key (no `-----BEGIN … PRIVATE KEY-----` line); give the private key, not its `.pub`"
        ),
    );
}

#[test]
fn an_unknown_env_lists_the_envs() {
    let dir = project(&config(""));
    let image = format!("app={}", fake_ref(1));
    check_in(
        dir.path(),
        &["deploy", "--env", "production", "--image", &image],
        "slipway.toml` (envs, nearest first: prod)",
    );
}

#[test]
fn deploy_without_an_env_says_env_is_required() {
    let dir = project(&config(""));
    check_in(
        dir.path(),
        &["deploy", "--image", "app=x"],
        "error: the following required arguments were not provided:\n  --env <NAME>",
    );
}

#[test]
fn a_connect_timeout_without_a_unit_is_refused() {
    check_deploy(
        &["--connect-timeout", "10"],
        "error: invalid value '10' for '--connect-timeout <DURATION>': time unit needed, for example 10sec or 10ms",
    );
}

#[test]
fn durations_out_of_range_or_zero_are_refused_before_connecting() {
    // `584542046090y` panicked after taking the lock; `0s` left no time.
    for flag in ["--timeout", "--connect-timeout"] {
        check_deploy(
            &[flag, "584542046090y"],
            &format!(
                "error: invalid value '584542046090y' for '{flag} <DURATION>': `584542046090y` is \
                 out of range: give a duration from `1ms` to `1week` (7 days)"
            ),
        );
        check_deploy(
            &[flag, "0s"],
            &format!(
                "error: invalid value '0s' for '{flag} <DURATION>': `0s` must be more than zero: \
                 give a duration from `1ms` to `1week` (7 days)"
            ),
        );
    }
    check_deploy(
        &["--lock-wait", "584542046090y"],
        "`584542046090y` is out of range: give a duration from `0s` to `1week` (7 days)",
    );
}

#[test]
fn an_image_without_a_name_shows_the_form() {
    let dir = project(&config(""));
    check_in(
        dir.path(),
        &["deploy", "--env", "prod", "--image", &fake_ref(1)],
        "expected `<image>=<registry/repo>@sha256:<digest>`, e.g. `app=registry.example.com/app@sha256:…`",
    );
}

#[test]
fn a_host_with_a_space_shows_the_host_form() {
    check_deploy(
        &["--host", "web 1", "--dry-run"],
        "error: invalid `--host`\n  caused by: invalid host `web 1`: the host is empty or has characters other than letters, digits, `.`, `-` and `_`; expected `[user@]host[:port]`",
    );
}

#[test]
fn a_missing_images_from_file_names_the_flag() {
    let dir = project(&config(""));
    check_in(
        dir.path(),
        &[
            "deploy",
            "--env",
            "prod",
            "--images-from",
            "build.json",
            "--dry-run",
        ],
        "error: cannot read `--images-from build.json`; give img-build's JSON report (`img-build --format json > build.json`) or `-` for stdin\n  caused by: failed to open file `build.json`: No such file or directory (os error 2)\n",
    );
}

#[test]
fn a_truncated_images_from_report_says_where_json_ends() {
    let dir = project(&config(""));
    fs_err::write(dir.path().join("build.json"), "{\"targets\": [\n").expect("report");
    check_in(
        dir.path(),
        &[
            "deploy",
            "--env",
            "prod",
            "--images-from",
            "build.json",
            "--dry-run",
        ],
        "error: `--images-from build.json` is not img-build's JSON report (`img-build --format json`)\n  caused by: EOF while parsing a list at line 2 column 0",
    );
}

#[test]
fn accept_new_host_key_and_a_pinned_fingerprint_conflict() {
    check_deploy(
        &[
            "--accept-new-host-key",
            "--host-key-fingerprint",
            "SHA256:TagkcNXMniqOkXDXVc0CiuhYOMx6onNKrCWiVEElfHQ",
        ],
        "error: the argument '--accept-new-host-key' cannot be used with '--host-key-fingerprint <FINGERPRINT>'",
    );
}

#[test]
fn rollback_to_a_non_number_names_the_flag() {
    let dir = project(&config(""));
    check_in(
        dir.path(),
        &["rollback", "--env", "prod", "--to", "v1.2.0"],
        "error: invalid value 'v1.2.0' for '--to <N>'",
    );
}

#[test]
fn a_misspelt_env_key_gets_the_nearest_key() {
    check_config(
        &config("bundel = [\"deploy/compose.yml\"]\n"),
        "slipway.toml:10:1 — did you mean `bundle`?",
    );
}

#[test]
fn a_relative_remote_path_shows_an_absolute_one() {
    check_config(
        &config("").replace("remote_path = \"/srv/app\"", "remote_path = \"srv/app\""),
        "slipway.toml:6:15: `srv/app` is relative; it must be absolute, e.g. `/srv/demo`",
    );
}

#[test]
fn an_empty_host_list_shows_a_host_list() {
    check_config(
        &config("").replace("hosts = [\"root@127.0.0.1:1\"]", "hosts = []"),
        "slipway.toml:5:9: must not be empty; the SSH hosts to deploy to, e.g. `hosts = [\"deploy@web1.example.com\"]`",
    );
}

#[test]
fn a_host_port_out_of_range_gives_file_line_and_column() {
    check_config(
        &config("").replace("root@127.0.0.1:1\"", "root@127.0.0.1:65536\""),
        "slipway.toml:5:10: invalid host `root@127.0.0.1:65536`: the port is not a number from 1 to 65535",
    );
}

#[test]
fn env_images_naming_an_unknown_image_lists_the_images() {
    check_config(
        &config("").replace("APP_IMAGE = \"app\"", "APP_IMAGE = \"web\""),
        "error: [envs.prod] images `APP_IMAGE` = `web` at ",
    );
}

#[test]
fn a_lowercase_variable_name_shows_the_form() {
    check_config(
        &config("").replace("APP_IMAGE", "app-image"),
        "`app-image` is not a variable name; use uppercase letters, digits and `_`, not starting with a digit, e.g. `APP_IMAGE`",
    );
}

#[test]
fn a_missing_bundle_file_says_where_it_was_looked_for() {
    check_config(
        &config("").replace("deploy/compose.yml", "deploy/compose.yaml"),
        "error: bundle file `deploy/compose.yaml` in [envs.prod] at ",
    );
}

#[test]
fn bad_input_leaves_nothing_on_the_host() {
    let sshd = Sshd::start();
    let project = Project::new(
        &sshd,
        r#"command = "touch ran""#,
        &[("compose.yml", "services: {}\n", 0o644)],
    );
    fs_err::write(project.dir.path().join("build.json"), "{\"targets\": [\n").expect("report");
    let image = format!("app={}", fake_ref(1));
    for args in [
        &["deploy", "--env", "prod", "--images-from", "build.json"][..],
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            "app=127.0.0.1:5000/app:latest",
        ][..],
        &[
            "deploy",
            "--env",
            "prod",
            "--image",
            &image,
            "--host",
            "root@127.0.0.1:0",
        ][..],
    ] {
        let output = project.run(&sshd, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        !project.remote().exists(),
        "no bundle, deploy.env, lock or release record reached the host"
    );
}

#[test]
fn a_dangerous_remote_path_is_refused_with_the_reason() {
    for (path, why) in [
        ("/", "is the root directory"),
        ("/etc", "is a top-level directory"),
        ("/etc/app", "is a system directory"),
        ("/home/deploy", "is a home or system directory itself"),
        ("/srv/app/../..", "holds `.` or `..`"),
    ] {
        check_config(
            &config("").replace("/srv/app", path),
            &format!(
                "`remote_path = \"{path}\"` of env `prod` {why}; ssh-deploy writes its bundle, `deploy.env` and `.slipway/` there"
            ),
        );
    }
    // Queries refuse it too: `lock release` would remove files there.
    let dir = project(&config("").replace("/srv/app", "/"));
    check_in(
        dir.path(),
        &["lock", "release", "--env", "prod"],
        "`remote_path = \"/\"` of env `prod` is the root directory",
    );
}

#[test]
fn the_same_image_given_twice_is_refused_naming_both() {
    let other = format!("app={}", fake_ref(2));
    let stderr = check_deploy(
        &["--image", &other],
        &format!(
            "image `app` is given twice: `--image app={}` and `--image {other}`; give one reference per image",
            fake_ref(1)
        ),
    );
    assert!(!stderr.contains("caused by"), "{stderr}");
}

#[test]
fn an_endless_images_from_file_is_refused_naming_the_limit() {
    check_deploy(
        &["--images-from", "/dev/zero"],
        "`--images-from /dev/zero` is larger than 4 MiB, the most ssh-deploy reads",
    );
}

/// A secret of 1 to 3 bytes could not be kept out of the output: a
/// `--env-var` value, a key passphrase or a password in `ready_url` that
/// short is refused before connecting, naming where it came from and never
/// showing it (docs/errors.md, "Short secrets").
#[test]
fn secrets_shorter_than_4_bytes_are_refused_naming_where_they_came_from() {
    let dir = project(&config(""));
    let image = format!("app={}", fake_ref(1));
    // The passphrase is read with the key it opens.
    let with_key = ["--ssh-key-env", "DEPLOY_KEY", "--ssh-key-passphrase-env"];
    for (flag, args) in [
        ("--env-var", &["--env-var"][..]),
        ("--ssh-key-passphrase-env", &with_key[..]),
    ] {
        let output = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("SHORT_VALUE", "q7")
            .env("DEPLOY_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
            .args(["deploy", "--env", "prod", "--image", &image])
            .args(args)
            .arg("SHORT_VALUE")
            .run();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag}: {stderr}");
        assert!(output.stdout.is_empty(), "{flag}");
        let what = if flag == "--env-var" {
            // The refusal says what to do instead; the typed cause says why.
            "error: cannot carry `--env-var SHORT_VALUE` as a secret; a value that is no secret belongs in the env's `env` table\n  caused by: the value of `--env-var SHORT_VALUE` is 2 byte(s) long"
        } else {
            "the passphrase in `SHORT_VALUE` is 2 byte(s) long"
        };
        assert!(stderr.contains(what), "{flag}: {stderr}");
        assert!(!stderr.contains("q7"), "{flag} echoed the secret: {stderr}");
    }
    let stderr = check_config(
        &config("ready_url = \"http://probe:q7@127.0.0.1:1/health\""),
        "a secret in `ready_url` of [envs.prod] is 2 byte(s) long",
    );
    assert!(!stderr.contains("q7"), "{stderr}");
}

/// A project with env `prod` and the template env `preview`.
fn preview_project() -> tempfile::TempDir {
    project(&config(
        r#"
[envs.preview]
hosts = ["root@127.0.0.1:1"]
remote_path = "/srv/previews/{instance}"
command = "true"
instances = true
port_range = "20000-20009"
"#,
    ))
}

#[test]
fn an_instance_name_that_is_not_a_dns_label_names_the_flag_and_the_form() {
    let dir = preview_project();
    for name in ["PR_123", "pr-", "../x", &"a".repeat(64)] {
        check_in(
            dir.path(),
            &[
                "deploy",
                "--env",
                "preview",
                "--instance",
                name,
                "--dry-run",
            ],
            &format!(
                "invalid value '{name}' for '--instance <NAME>': `{name}` is not an instance name: use a DNS label, 1 to 63 lowercase letters, digits and `-`, not starting or ending with `-`, e.g. `pr-123`"
            ),
        );
    }
}

#[test]
fn a_template_env_without_instance_says_how_to_name_one() {
    let dir = preview_project();
    let image = format!("app={}", fake_ref(1));
    for args in [
        &["deploy", "--env", "preview", "--image", &image][..],
        &["destroy", "--env", "preview"][..],
        &["releases", "--env", "preview"][..],
    ] {
        check_in(
            dir.path(),
            args,
            "error: env `preview` is a template of instances (`instances = true`): name the instance with `--instance NAME`, e.g. `--instance pr-123`",
        );
    }
}

#[test]
fn instance_on_a_plain_env_is_refused() {
    let dir = preview_project();
    let image = format!("app={}", fake_ref(1));
    check_in(
        dir.path(),
        &[
            "deploy",
            "--env",
            "prod",
            "--instance",
            "pr-1",
            "--image",
            &image,
        ],
        "error: `--instance pr-1` needs a template env, and env `prod` has no `instances = true`; leave `--instance` out, or set `instances = true` and `remote_path = \"/srv/previews/{instance}\"` in [envs.prod]",
    );
    check_in(
        dir.path(),
        &["instances", "--env", "prod"],
        "error: `ssh-deploy instances` needs a template env, and env `prod` has no `instances = true`",
    );
    check_in(
        dir.path(),
        &[
            "gc",
            "--env",
            "preview",
            "--idle",
            "7d",
            "--instance",
            "pr-1",
        ],
        "error: `ssh-deploy gc` works on every instance of the env; leave out `--instance pr-1`",
    );
}

#[test]
fn an_idle_time_past_a_year_is_refused_and_two_weeks_is_not() {
    let dir = preview_project();
    check_in(
        dir.path(),
        &["gc", "--env", "preview", "--idle", "400d"],
        "invalid value '400d' for '--idle <DURATION>': `400d` is out of range: give a duration from `1m` to `366days`",
    );
    // 14 days parses: the run goes on to connect, and 127.0.0.1:1 refuses (exit 3).
    let output = Cmd::new(env!("CARGO_BIN_EXE_ssh-deploy"))
        .current_dir(dir.path())
        .args(["gc", "--env", "preview", "--idle", "14d", "--dry-run"])
        .run();
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn template_keys_are_checked_when_the_file_loads() {
    check_config(
        &config("instances = true\n"),
        "/slipway.toml:6:15: `/srv/app` must end in `/{instance}` in an env with `instances = true` (each instance gets a directory of its own under one directory of the env), e.g. `/srv/previews/{instance}`",
    );
    check_config(
        &config("max_instances = 3\n"),
        "`max_instances` needs `instances = true` in the env (a template of preview instances)",
    );
    check_config(
        &config("ready_url = \"http://127.0.0.1:{port}/\"\n"),
        "`{port}` in `ready_url` needs `port_range` in the env",
    );
    let bad_range = config("").replace(
        "remote_path = \"/srv/app\"",
        "remote_path = \"/srv/app/{instance}\"\ninstances = true\nport_range = \"30000-20000\"",
    );
    check_config(
        &bad_range,
        "`30000-20000` is not a port range; give `FIRST-LAST`, two ports from 1 to 65535 with FIRST <= LAST, e.g. `20000-20999`",
    );
}

#[test]
fn an_env_of_another_target_names_the_tool_that_deploys_it() {
    let toml = format!(
        "{}\n[envs.dev]\ntarget = \"swarm\"\nimages = {{ APP_IMAGE = \"app\" }}\n\n[envs.dev.swarm]\ncompose_file = \"deploy/compose.yml\"\n",
        config("")
    );
    let dir = project(&toml);
    let image = format!("app={}", fake_ref(1));
    let stderr = check_in(
        dir.path(),
        &["deploy", "--env", "dev", "--image", &image, "--dry-run"],
        "",
    );
    assert_eq!(
        stderr,
        "error: env `dev` deploys to swarm: use swarm-deploy\n"
    );
}
