//! img-tag against a registry with `auth: token` and the test bed's token
//! issuer: the registry verifies every JWT, so these are the real Docker
//! token flow, the OAuth2 refresh-token exchange of identity tokens, the
//! containers tools' auth files, a promote between registries that need
//! different users, and what each refusal or failure says.

mod common;

use std::process::Command;

use common::{img_tag, stderr, stdout};
use slipway_testbed::{IssuerFault, Registry, TokenIssuer};

/// A registry with token auth, its issuer, and `team/app:1` pushed to it
/// (by skopeo, as `writer`); the image's digest.
struct Bed {
    issuer: TokenIssuer,
    registry: Registry,
    digest: String,
}

const WRITER: (&str, &str) = ("writer", "writer-pw-8c1e");

impl Bed {
    fn start() -> Bed {
        let issuer = TokenIssuer::start();
        issuer.add_user(WRITER.0, WRITER.1, &[("*", "pull,push")]);
        let registry = Registry::start_with_token(&issuer);
        let digest = seed(
            &registry,
            &format!("{}:{}", WRITER.0, WRITER.1),
            "team/app:1",
        );
        issuer.clear_seen();
        Bed {
            issuer,
            registry,
            digest,
        }
    }

    fn host(&self) -> String {
        self.registry.host()
    }

    fn image(&self) -> String {
        format!("{}/team/app:1", self.host())
    }
}

/// Copies a tiny image into `registry` as `to` with skopeo and `creds`;
/// returns its digest.
fn seed(registry: &Registry, creds: &str, to: &str) -> String {
    let plain = Registry::start();
    let (digest, _) =
        slipway_testbed::images::push_image(&plain.host(), "src/app", "1", "amd64", Some("r1"));
    let output = Command::new(slipway_testbed::require("skopeo", "skopeo"))
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("--dest-creds={creds}"))
        .arg(format!("docker://{}/src/app:1", plain.host()))
        .arg(format!("docker://{}/{to}", registry.host()))
        .output()
        .expect("skopeo runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    digest
}

/// `{"auths":{key:{field:value}}}` written to `dir/file`; returns the path.
fn auth_file(dir: &std::path::Path, file: &str, key: &str, entry: &str) -> String {
    let path = dir.join(file);
    let parent = path.parent().expect("the file is in a directory");
    fs_err::create_dir_all(parent).expect("the fixture directory is made");
    fs_err::write(&path, format!(r#"{{"auths":{{"{key}":{entry}}}}}"#))
        .expect("the fixture file is written");
    path.display().to_string()
}

fn basic(user: &str, password: &str) -> String {
    format!(
        r#"{{"auth":"{}"}}"#,
        slipway_testbed::secrets::basic_auth(user, password)
    )
}

/// The Bearer challenge is answered with the docker config's credentials or
/// --password-stdin (the registry checks the token), the password shows up
/// nowhere but in the `::add-mask::` line, wrong credentials are refused
/// naming their source, and anonymous access is refused as such.
#[test]
fn bearer_challenges_are_answered_with_the_configured_credentials() {
    let bed = Bed::start();
    let host = bed.host();
    let image = bed.image();
    let realm = bed.issuer.realm();
    let dir = tempfile::tempdir().unwrap();
    let config = auth_file(
        dir.path(),
        "docker/config.json",
        &host,
        &basic(WRITER.0, WRITER.1),
    );
    let config_dir = dir.path().join("docker").display().to_string();

    let output = img_tag(
        dir.path(),
        &["resolve", &image],
        &[("DOCKER_CONFIG", &config_dir), ("GITHUB_ACTIONS", "true")],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{}\n", bed.digest));
    assert_eq!(stderr(&output), format!("::add-mask::{}\n", WRITER.1));
    // As docker asks: GET with Basic, the user also named as `account`.
    let seen = bed.issuer.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].auth_scheme.as_deref()),
        ("GET", Some("Basic"))
    );
    assert_eq!(
        seen[0].target,
        format!(
            "/token?scope=repository%3Ateam%2Fapp%3Apull&service={}&account=writer",
            slipway_testbed::token_issuer::SERVICE
        )
    );

    let output = img_tag(
        dir.path(),
        &[
            "resolve",
            &image,
            "--username",
            "writer",
            "--password-stdin",
        ],
        &[],
        Some(&format!("{}\n", WRITER.1)),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let output = img_tag(
        dir.path(),
        &[
            "resolve",
            &image,
            "--username",
            "writer",
            "--password-stdin",
        ],
        &[],
        Some("wrong-pw-77"),
    );
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot resolve `{image}`\n  caused by: `{host}` refused the credentials of `writer` from `--password-stdin` for `GET {realm}` (401): UNAUTHORIZED invalid username or password; log in with `docker login {host}`, or pass --username and --password-stdin\n"
        )
    );
    assert!(!stdout(&output).contains("wrong-pw"));

    // The same, from the docker config: the file is named.
    fs_err::write(
        &config,
        format!(
            r#"{{"auths":{{"{host}":{}}}}}"#,
            basic("writer", "wrong-pw-77")
        ),
    )
    .unwrap();
    let output = img_tag(
        dir.path(),
        &["resolve", &image],
        &[("DOCKER_CONFIG", &config_dir)],
        None,
    );
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains(&format!(
            "refused the credentials of `writer` from `{config}` for `GET {realm}` (401)"
        )),
        "{}",
        stderr(&output)
    );

    // Anonymous: the issuer grants nothing, the registry refuses.
    let output = img_tag(dir.path(), &["resolve", &image], &[], None);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot resolve `{image}`\n  caused by: `{host}` refused anonymous access for `HEAD /v2/team/app/manifests/1` (401); log in with `docker login {host}`, or pass --username and --password-stdin\n"
        )
    );
}

/// A docker identity token (`identitytoken`, or a credential helper's
/// `<token>` user) is exchanged by the OAuth2 `refresh_token` POST, never
/// sent as Basic; the registry accepts the token it yields; a server that
/// echoes the refresh token in an error does not get it printed.
#[test]
fn identity_tokens_are_exchanged_by_the_oauth2_refresh_token_post() {
    let bed = Bed::start();
    let host = bed.host();
    let image = bed.image();
    let realm = bed.issuer.realm();
    let refresh = bed.issuer.refresh_token_for(WRITER.0);
    let dir = tempfile::tempdir().unwrap();
    auth_file(
        dir.path(),
        "docker/config.json",
        &host,
        // As `docker login` stores it: `auth` is `writer:` (no password).
        &format!(
            r#"{{"auth":"{}","identitytoken":"{refresh}"}}"#,
            slipway_testbed::secrets::basic_auth(WRITER.0, "")
        ),
    );
    let config_dir = dir.path().join("docker").display().to_string();

    let output = img_tag(
        dir.path(),
        &["resolve", &image],
        &[("DOCKER_CONFIG", &config_dir)],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{}\n", bed.digest));
    let seen = bed.issuer.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].grant_type.as_deref(), Some("refresh_token"));
    assert_eq!(seen[0].client_id.as_deref(), Some("slipway"));
    assert_eq!(seen[0].auth_scheme, None);
    assert_eq!(seen[0].status, 200);

    // A credential helper answering the `<token>` user: the same exchange.
    let helper = dir.path().join("bin/docker-credential-tok");
    fs_err::create_dir_all(helper.parent().unwrap()).unwrap();
    fs_err::write(
        &helper,
        format!(
            "#!/bin/sh\nread host\nprintf '{{\"Username\":\"<token>\",\"Secret\":\"{refresh}\"}}'\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    fs_err::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper_dir = dir.path().join("helper");
    fs_err::create_dir_all(&helper_dir).unwrap();
    fs_err::write(
        helper_dir.join("config.json"),
        format!(r#"{{"credHelpers":{{"{host}":"tok"}}}}"#),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.path().join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let output = img_tag(
        dir.path(),
        &["resolve", &image],
        &[
            ("DOCKER_CONFIG", helper_dir.to_str().unwrap()),
            ("PATH", &path),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let seen = bed.issuer.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].grant_type.as_deref(), Some("refresh_token"));

    // A failing server that echoes what it got: retried, reported as the
    // token server's failure, the refresh token redacted.
    bed.issuer.set_fault(
        Some(IssuerFault::Status {
            status: 500,
            echo: true,
        }),
        None,
    );
    let output = img_tag(
        dir.path(),
        &["resolve", &image],
        &[("DOCKER_CONFIG", &config_dir)],
        None,
    );
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!(
            "error: cannot resolve `{image}`\n  caused by: the token server of `{host}` (`{realm}`) answered 500 after 5 attempt(s): UNAVAILABLE cannot serve `/token` with ``, form `"
        )),
        "{message}"
    );
    assert!(
        message.ends_with(
            "`; the registry's auth service is failing, not the credentials: try again later\n"
        ),
        "{message}"
    );
    slipway_testbed::secrets::assert_no_leak(
        &[slipway_testbed::secrets::Secret::new(
            "refresh token",
            &refresh,
        )],
        "stderr",
        message.as_bytes(),
    );
    assert_eq!(bed.issuer.seen().len(), 2 + 5);

    // A revoked (or expired) identity token: refused by the token server,
    // named as the identity token of its file, never as a `<token>` user.
    bed.issuer.set_fault(None, None);
    let revoked = auth_file(
        dir.path(),
        "revoked/config.json",
        &host,
        r#"{"identitytoken":"revoked-refresh-0042"}"#,
    );
    let output = img_tag(
        dir.path(),
        &["resolve", &image],
        &[(
            "DOCKER_CONFIG",
            dir.path().join("revoked").to_str().unwrap(),
        )],
        None,
    );
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot resolve `{image}`\n  caused by: `{host}` refused the identity token from `{revoked}` for `POST {realm}` (401): UNAUTHORIZED invalid refresh token; log in with `docker login {host}`, or pass --username and --password-stdin\n"
        )
    );
    assert!(!stderr(&output).contains("revoked-refresh-0042"));
}

/// A token server's 5xx is retried per the retry policy and, when it
/// persists, reported as the token server failing (which server, which
/// status), never as refused credentials.
#[test]
fn a_token_servers_5xx_is_retried_then_reported_as_such() {
    let bed = Bed::start();
    let host = bed.host();
    let image = bed.image();
    let realm = bed.issuer.realm();
    let dir = tempfile::tempdir().unwrap();
    let stdin = format!("{}\n", WRITER.1);
    let args = [
        "resolve",
        &image,
        "--username",
        "writer",
        "--password-stdin",
    ];

    bed.issuer.set_fault(
        Some(IssuerFault::Status {
            status: 503,
            echo: false,
        }),
        Some(2),
    );
    let output = img_tag(dir.path(), &args, &[], Some(&stdin));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let statuses: Vec<u16> = bed.issuer.seen().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);

    bed.issuer.set_fault(
        Some(IssuerFault::Status {
            status: 503,
            echo: false,
        }),
        None,
    );
    let output = img_tag(dir.path(), &args, &[], Some(&stdin));
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot resolve `{image}`\n  caused by: the token server of `{host}` (`{realm}`) answered 503 after 5 attempt(s): UNAVAILABLE the token service is failing; the registry's auth service is failing, not the credentials: try again later\n"
        )
    );
    assert_eq!(bed.issuer.seen().len(), 3 + 5);
}

/// A user whose rights do not cover the request is told so: the issuer's
/// 403, or a token without push (the registry's `401 insufficient_scope`),
/// names the user, where the credentials came from, the action and the
/// repository, not "anonymous access refused, docker login".
#[test]
fn a_user_without_the_right_is_told_which_right_is_missing() {
    let bed = Bed::start();
    bed.issuer
        .add_user("reader", "reader-pw-31f", &[("team/*", "pull")]);
    let host = bed.host();
    let image = bed.image();
    let realm = bed.issuer.realm();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("REGISTRY_USER", "reader"),
        ("REGISTRY_PASSWORD", "reader-pw-31f"),
    ];

    let output = img_tag(dir.path(), &["resolve", &image], &env, None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let output = img_tag(dir.path(), &["apply", &image, "--tag", "2"], &env, None);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "`reader` (from `REGISTRY_USER`/`REGISTRY_PASSWORD`) may not push `team/app` on `{host}`: the registry answered 401 to `PUT /v2/team/app/manifests/2`: UNAUTHORIZED authentication required; ask for push access to `team/app`, or use credentials that have it\n"
        )),
        "{message}"
    );
    assert!(!message.contains("anonymous"), "{message}");
    assert_eq!(stdout(&output), "");

    bed.issuer.set_fault(
        Some(IssuerFault::Status {
            status: 403,
            echo: false,
        }),
        None,
    );
    let output = img_tag(dir.path(), &["resolve", &image], &env, None);
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot resolve `{image}`\n  caused by: `reader` (from `REGISTRY_USER`/`REGISTRY_PASSWORD`) may not pull `team/app` on `{host}`: its token server `{realm}` answered 403 to `GET {realm}`: DENIED access to the repository is denied; ask for pull access to `team/app`, or use credentials that have it\n"
        )
    );
}

/// Podman's and the containers tools' auth files are read, before docker's
/// config: `REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`,
/// then `~/.config/containers/auth.json`, with namespaced keys
/// (`host/team`), the most specific first.
#[test]
fn containers_auth_files_are_read_before_the_docker_config() {
    let bed = Bed::start();
    let host = bed.host();
    let image = bed.image();
    let realm = bed.issuer.realm();
    let dir = tempfile::tempdir().unwrap();
    let docker_dir = dir.path().join("docker").display().to_string();
    auth_file(
        dir.path(),
        "docker/config.json",
        &host,
        &basic(WRITER.0, WRITER.1),
    );
    let runtime = dir.path().join("run").display().to_string();

    // `REGISTRY_AUTH_FILE` with a namespaced key for `team`.
    let file = auth_file(
        dir.path(),
        "podman-auth.json",
        &format!("{host}/team"),
        &basic(WRITER.0, WRITER.1),
    );
    let output = img_tag(
        dir.path(),
        &["resolve", &image],
        &[("REGISTRY_AUTH_FILE", &file)],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{}\n", bed.digest));

    // `$XDG_RUNTIME_DIR/containers/auth.json`, keyed by host.
    auth_file(
        dir.path(),
        "run/containers/auth.json",
        &host,
        &basic(WRITER.0, WRITER.1),
    );
    let output = img_tag(
        dir.path(),
        &["resolve", &image],
        &[("XDG_RUNTIME_DIR", &runtime)],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    // It wins over the docker config, which holds good credentials: the
    // refusal names the auth file.
    let wrong = auth_file(
        dir.path(),
        "run/containers/auth.json",
        &format!("{host}/team/app"),
        &basic(WRITER.0, "stale-pw-0042"),
    );
    let output = img_tag(
        dir.path(),
        &["resolve", &image],
        &[
            ("XDG_RUNTIME_DIR", &runtime),
            ("DOCKER_CONFIG", &docker_dir),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains(&format!(
            "refused the credentials of `writer` from `{wrong}` for `GET {realm}` (401)"
        )),
        "{}",
        stderr(&output)
    );
    // An entry for another repository does not apply: the docker config's does.
    auth_file(
        dir.path(),
        "run/containers/auth.json",
        &format!("{host}/other"),
        &basic(WRITER.0, "stale-pw-0042"),
    );
    let output = img_tag(
        dir.path(),
        &["resolve", &image],
        &[
            ("XDG_RUNTIME_DIR", &runtime),
            ("DOCKER_CONFIG", &docker_dir),
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    // `~/.config/containers/auth.json` (HOME is the command's temp home).
    let mut command = slipway_testbed::cmd::Cmd::new(env!("CARGO_BIN_EXE_img-tag"));
    command.args(["resolve", &image]).current_dir(dir.path());
    auth_file(
        command.home_dir(),
        ".config/containers/auth.json",
        &host,
        &basic(WRITER.0, WRITER.1),
    );
    command.run().assert(0, &format!("{}\n", bed.digest), "");
}

/// A promote between two registries that need different users: the
/// source's with --src-username, the destination's with --dest-username,
/// passwords from an environment variable and a file, never the command
/// line; the destination holds the same digest.
#[test]
fn promote_between_registries_with_a_user_for_each_side() {
    let source = Bed::start();
    source
        .issuer
        .add_user("alice", "alice-pw-5d2", &[("team/*", "pull")]);
    let dest_issuer = TokenIssuer::start();
    dest_issuer.add_user("bob", "bob-pw-9a7e", &[("prod/*", "pull,push")]);
    let dest = Registry::start_with_token(&dest_issuer);
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("dest-pw");
    fs_err::write(&password_file, "bob-pw-9a7e\n").unwrap();
    let target = format!("{}/prod/app:1", dest.host());

    let output = img_tag(
        dir.path(),
        &[
            "promote",
            &source.image(),
            &target,
            "--src-username",
            "alice",
            "--src-password-env",
            "SRC_PW",
            "--dest-username",
            "bob",
            "--dest-password-file",
            password_file.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[("SRC_PW", "alice-pw-5d2")],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let inspect = Command::new(slipway_testbed::require("skopeo", "skopeo"))
        .args(["inspect", "--tls-verify=false", "--creds=bob:bob-pw-9a7e"])
        .arg(format!("docker://{target}"))
        .output()
        .expect("skopeo runs");
    let inspected: serde_json::Value =
        serde_json::from_slice(&inspect.stdout).expect("skopeo answers JSON");
    assert_eq!(inspected["Digest"], source.digest.as_str());
    let combined = format!("{}{}", stdout(&output), stderr(&output));
    assert!(
        !combined.contains("alice-pw") && !combined.contains("bob-pw"),
        "{combined}"
    );

    // Within one registry, a user per namespace: bob may not read `team/`,
    // so the blobs are copied (alice reads, bob writes), not mounted.
    source
        .issuer
        .add_user("bob", "bob-pw-9a7e", &[("prod/*", "pull,push")]);
    let same_registry = format!("{}/prod/app:1", source.host());
    let output = img_tag(
        dir.path(),
        &[
            "promote",
            &source.image(),
            &same_registry,
            "--src-username",
            "alice",
            "--src-password-env",
            "SRC_PW",
            "--dest-username",
            "bob",
            "--dest-password-file",
            password_file.to_str().unwrap(),
        ],
        &[("SRC_PW", "alice-pw-5d2")],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let inspect = Command::new(slipway_testbed::require("skopeo", "skopeo"))
        .args(["inspect", "--tls-verify=false", "--creds=bob:bob-pw-9a7e"])
        .arg(format!("docker://{same_registry}"))
        .output()
        .expect("skopeo runs");
    let inspected: serde_json::Value =
        serde_json::from_slice(&inspect.stdout).expect("skopeo answers JSON");
    assert_eq!(inspected["Digest"], source.digest.as_str());

    // One user for both sides cannot do it: bob may not read the source.
    let output = img_tag(
        dir.path(),
        &[
            "promote",
            &source.image(),
            &target,
            "--username",
            "bob",
            "--password-stdin",
        ],
        &[],
        Some("bob-pw-9a7e"),
    );
    assert_eq!(output.status.code(), Some(3));

    // A side's username without its password is bad input, said before any request.
    let output = img_tag(
        dir.path(),
        &[
            "promote",
            &source.image(),
            &target,
            "--src-username",
            "alice",
        ],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: `--src-username alice` needs its password: give `--src-password-env NAME` or `--src-password-file FILE` (never the password itself on the command line)\n"
    );
    // A side's password of 1 to 3 bytes is refused as any other, named by where it came from.
    let output = img_tag(
        dir.path(),
        &[
            "promote",
            &source.image(),
            &target,
            "--src-username",
            "alice",
            "--src-password-env",
            "SRC_PW",
        ],
        &[("SRC_PW", "abc")],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot find credentials for `{}`\n  caused by: the password of `alice` given with `$SRC_PW` (`--src-password-env`) is 3 byte(s) long: a secret shorter than 4 bytes cannot be redacted from output without garbling it (and is guessed at once); use a longer one\n",
            source.host()
        )
    );
    let output = img_tag(
        dir.path(),
        &[
            "promote",
            &source.image(),
            &target,
            "--dest-username",
            "bob",
            "--dest-password-env",
            "NOT_SET_HERE",
        ],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: the environment variable named by `--dest-password-env` is not set (its name is not shown: it may be the password itself); set it to the password of `bob`\n"
    );
}
