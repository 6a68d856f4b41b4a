//! The docker client swarm-deploy runs does not get the registry
//! credentials swarm-deploy read for itself (`REGISTRY_USER`,
//! `REGISTRY_PASSWORD`): docker uses its own login (`--with-registry-auth`),
//! and its CLI plugins need none of them. The client is a shim that writes
//! its environment to a file, then fails as a docker without a swarm would.

use std::os::unix::fs::PermissionsExt as _;

use slipway_testbed::cmd::Cmd;

const SHIM: &str = "#!/bin/sh\nenv >> \"$SHIM_DIR/env\"\necho 'shim: this node is not a swarm manager' >&2\nexit 1\n";

#[test]
fn docker_does_not_get_the_registry_credentials_swarm_deploy_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs_err::write(
        dir.path().join("slipway.toml"),
        r#"[project]
name = "demo"

[images.app]
repository = "127.0.0.1:5000/app"

[envs.dev]
target = "swarm"
images = { APP_IMAGE = "app" }

[envs.dev.swarm]
compose_file = "deploy/stack.yml"
"#,
    )
    .expect("slipway.toml");
    fs_err::create_dir_all(dir.path().join("deploy")).expect("deploy dir");
    fs_err::write(
        dir.path().join("deploy/stack.yml"),
        "version: \"3.8\"\nservices:\n  web:\n    image: ${APP_IMAGE}\n",
    )
    .expect("stack.yml");
    let shim = dir.path().join("docker");
    fs_err::write(&shim, SHIM).expect("shim");
    fs_err::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let image = "app=127.0.0.1:5000/app@sha256:1111111111111111111111111111111111111111111111111111111111111111";
    let outcome = Cmd::new(env!("CARGO_BIN_EXE_swarm-deploy"))
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("DOCKER", &shim)
        .env("SHIM_DIR", dir.path())
        .env("REGISTRY_USER", "ci-bot")
        .env("REGISTRY_PASSWORD", "reg-pw-4b1d")
        .env("UNRELATED", "kept")
        .args(["deploy", "--env", "dev", "--image", image])
        .run();
    outcome.assert_code(3);
    let env = fs_err::read_to_string(dir.path().join("env")).expect("the shim ran");
    assert!(env.contains("UNRELATED=kept\n"), "{env}");
    assert!(!env.contains("REGISTRY_USER"), "{env}");
    assert!(!env.contains("REGISTRY_PASSWORD"), "{env}");
    assert!(!env.contains("reg-pw-4b1d"), "{env}");
}
