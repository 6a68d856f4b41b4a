//! `--local`: labels read from a real Docker engine with `docker image
//! inspect`, for images built but not pushed.

mod common;

use std::process::Command;

use common::{BIN, project};
use slipway_testbed::Dockerd;
use slipway_testbed::cmd::Cmd;

#[test]
fn local_images_are_judged_like_published_ones() {
    let dockerd = Dockerd::start();
    let repo = project("127.0.0.1:5999");
    let built = repo.head();
    // A tiny image, labelled as img-build labels it, made by `docker import`.
    let rootfs = tempfile::tempdir().unwrap();
    fs_err::write(rootfs.path().join("hello"), "hi\n").unwrap();
    let tar = rootfs.path().join("rootfs.tar");
    let status = Command::new(slipway_testbed::require("tar", "tar"))
        .args(["-C", &rootfs.path().display().to_string(), "-cf"])
        .arg(&tar)
        .arg("hello")
        .status()
        .unwrap();
    assert!(status.success());
    let status = dockerd
        .docker()
        .args([
            "import",
            "--change",
            &format!("LABEL org.opencontainers.image.revision={built}"),
        ])
        .arg(&tar)
        .arg("127.0.0.1:5999/demo/app:main")
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    repo.write("worker/main.rs", "changed\n");
    repo.commit("feat(worker): change");

    let run = Cmd::new(BIN)
        .current_dir(repo.path())
        .args([
            "--format", "json", "--local", "--image", "app", "--image", "base",
        ])
        .env("DOCKER", dockerd.client_path())
        .env("DOCKER_HOST", dockerd.host())
        .env("RUST_LOG", "error")
        .run();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let json: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&run.stderr)));
    assert_eq!(json["source"], "local");
    let statuses: Vec<(&str, &str)> = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["image"].as_str().unwrap(), i["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [("base", "missing"), ("app", "fresh")],
        "{stdout}"
    );
    assert_eq!(run.status.code(), Some(1));
}
