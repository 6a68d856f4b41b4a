//! Every image is built from its own Dockerfile: three service Dockerfiles
//! of one size and one mtime, each in its own directory, built in one run
//! from the repository root (BuildKit's stat-based Dockerfile reuse built
//! them all from the first one). Checked in the registry with skopeo: each
//! image's label holds the sha256 of its own Dockerfile, and its layer holds
//! its own service's files; a `Dockerfile.dockerignore` beside a Dockerfile
//! still applies. The same holds for Dockerfiles side by side in one
//! directory (`Dockerfile.app`, `Dockerfile.api`), each with its own ignore file.

#![allow(clippy::unwrap_used, reason = "helpers panic like tests")]

mod common;

use std::path::Path;
use std::process::Command;

use common::{img_build, json, run, target};
use slipway_testbed::git::GitRepo;
use slipway_testbed::{Dockerd, Registry};

const SERVICES: [&str; 3] = ["lobboss", "lobwife", "lobster"];

/// A project of three services whose Dockerfiles differ only in the
/// service's name (same length), all with one mtime.
fn services(registry: &str) -> GitRepo {
    let repo = GitRepo::new();
    let mut toml = format!("[project]\nregistry = \"{registry}/demo\"\n\n");
    for service in SERVICES {
        toml += &format!("[images.{service}]\ndockerfile = \"services/{service}/Dockerfile\"\n\n");
        repo.write(
            format!("services/{service}/Dockerfile"),
            format!("FROM scratch\nCOPY src/{service} /app\n"),
        );
        repo.write(
            format!("src/{service}/{service}.txt"),
            format!("{service}\n"),
        );
        repo.write(format!("src/{service}/secret.key"), "not for the image\n");
        repo.write(format!("src/{service}/notes.md"), "notes\n");
    }
    // The context's .dockerignore keeps the notes out; lobster's own ignore
    // file replaces it (as BuildKit reads it): its key is out, its notes in.
    repo.write(".dockerignore", "**/notes.md\n");
    repo.write(
        "services/lobster/Dockerfile.dockerignore",
        "src/lobster/secret.key\n",
    );
    repo.write("slipway.toml", toml + "[tags]\nrules = [\"type=sha\"]\n");
    repo.commit("three services");
    let status = Command::new("touch")
        .args(["-d", "2024-01-01 00:00:00"])
        .args(SERVICES.map(|s| repo.path().join(format!("services/{s}/Dockerfile"))))
        .status()
        .unwrap();
    assert!(status.success());
    repo
}

/// The files of the single layer of `reference`, read with skopeo (not img-build).
fn layer_files(reference: &str, dir: &Path) -> Vec<String> {
    let out = dir.join(
        reference
            .rsplit('/')
            .next()
            .unwrap()
            .replace([':', '@'], "_"),
    );
    let copied = run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", out.display())));
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs_err::read(out.join("manifest.json")).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest:#}");
    let blob = layers[0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let listed = run(Command::new("tar").arg("-tzf").arg(out.join(blob)));
    assert!(listed.status.success());
    let mut files: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_owned())
        .filter(|l| l.contains('.'))
        .collect();
    files.sort();
    files
}

/// Checks every service's image in the registry.
fn check_services(repo: &GitRepo, report: &serde_json::Value) {
    let scratch = tempfile::tempdir().unwrap();
    for service in SERVICES {
        let entry = target(report, service);
        assert_eq!(entry["status"], "built", "{entry:#}");
        let reference = entry["reference"].as_str().unwrap();
        let labels = &common::skopeo_inspect(reference, false)["Labels"];
        assert_eq!(
            labels["dev.slipway.dockerfile.sha256"],
            common::sha256_of(&repo.path().join(format!("services/{service}/Dockerfile"))),
            "{service}: {labels:#}"
        );
        let mut expected = vec![format!("app/{service}.txt")];
        if service == "lobster" {
            expected.push("app/notes.md".to_owned());
        } else {
            expected.push("app/secret.key".to_owned());
        }
        assert_eq!(
            layer_files(reference, scratch.path()),
            expected,
            "{service}"
        );
    }
}

#[test]
fn buildkit_builds_each_image_from_its_own_dockerfile() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let repo = services(&registry.host());
    let output = run(img_build(repo.path())
        .args(["--all", "--push", "--jobs", "3", "--backend", "buildkit"])
        .args(["--network", "none", "--format", "json", "--docker"])
        .arg(dockerd.client_path())
        .env("DOCKER_HOST", dockerd.host())
        .env("DOCKER_CONFIG", dockerd.temp_dir().join("client")));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    check_services(&repo, &json(&output));
}

#[test]
fn buildah_builds_each_image_from_its_own_dockerfile() {
    let registry = Registry::start();
    let repo = services(&registry.host());
    let storage = tempfile::tempdir().unwrap();
    let conf = storage.path().join("storage.conf");
    fs_err::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/root\"\n",
            storage.path().display()
        ),
    )
    .unwrap();
    let output = run(img_build(repo.path())
        .args(["--all", "--push", "--jobs", "1", "--backend", "buildah"])
        .args(["--network", "none", "--format", "json"])
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .env("BUILDAH_ISOLATION", "chroot"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    check_services(&repo, &json(&output));
}

/// Two Dockerfiles of one size and one mtime side by side in one directory
/// (`docker/Dockerfile.app`, `docker/Dockerfile.api`), each with its own
/// `<name>.dockerignore`, built in one run: each image has its own files.
#[test]
fn buildkit_builds_dockerfiles_of_one_directory_each_from_its_own() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let repo = GitRepo::new();
    let mut toml = format!("[project]\nregistry = \"{}/demo\"\n\n", registry.host());
    for name in ["app", "api"] {
        toml += &format!("[images.{name}]\ndockerfile = \"docker/Dockerfile.{name}\"\n\n");
        repo.write(
            format!("docker/Dockerfile.{name}"),
            format!("FROM scratch\nCOPY src/{name} /srv\n"),
        );
        repo.write(
            format!("docker/Dockerfile.{name}.dockerignore"),
            format!("src/{name}/secret.key\n"),
        );
        repo.write(format!("src/{name}/{name}.txt"), format!("{name}\n"));
        repo.write(format!("src/{name}/secret.key"), "not for the image\n");
    }
    repo.write("slipway.toml", toml + "[tags]\nrules = [\"type=sha\"]\n");
    repo.commit("two Dockerfiles in one directory");
    let touched = run(Command::new("touch")
        .args(["-d", "2024-01-01 00:00:00"])
        .args(["app", "api"].map(|n| repo.path().join(format!("docker/Dockerfile.{n}")))));
    assert!(touched.status.success());
    let output = run(img_build(repo.path())
        .args(["--all", "--push", "--jobs", "2", "--backend", "buildkit"])
        .args(["--network", "none", "--format", "json", "--docker"])
        .arg(dockerd.client_path())
        .env("DOCKER_HOST", dockerd.host())
        .env("DOCKER_CONFIG", dockerd.temp_dir().join("client")));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report = json(&output);
    let scratch = tempfile::tempdir().unwrap();
    for name in ["app", "api"] {
        let reference = target(&report, name)["reference"]
            .as_str()
            .unwrap()
            .to_owned();
        let labels = &common::skopeo_inspect(&reference, false)["Labels"];
        assert_eq!(
            labels["dev.slipway.dockerfile.sha256"],
            common::sha256_of(&repo.path().join(format!("docker/Dockerfile.{name}"))),
            "{name}: {labels:#}"
        );
        assert_eq!(
            layer_files(&reference, scratch.path()),
            [format!("srv/{name}.txt")],
            "{name}"
        );
    }
}
