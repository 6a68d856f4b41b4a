//! Mutable tags only move forward, and a rerun keeps digests where the
//! builder is reproducible: real builds pushed to a real registry, every
//! tag read back with skopeo.
//!
//! - A rerun of an older commit pushes its `sha-` tag but leaves `latest`
//!   and the branch tag at the newer image, saying so on stderr and in the
//!   report.
//! - buildah with `--timestamp` (the commit's time) is reproducible: a rerun
//!   at one commit, from an empty storage, pushes the same digests.
//! - BuildKit (Docker 20.10) honours no `SOURCE_DATE_EPOCH`; a rerun on the
//!   same daemon hits the cache and keeps the digests.

#![allow(clippy::unwrap_used, reason = "helpers panic like tests")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{img_build, json, run, target};
use slipway_testbed::git::GitRepo;
use slipway_testbed::{Dockerd, Registry};

/// One image, `sha`, `latest` and branch tags.
fn app(registry: &str) -> GitRepo {
    let repo = GitRepo::new();
    repo.write(
        "slipway.toml",
        format!(
            "[project]\nregistry = \"{registry}/demo\"\n\n[images.app]\n\n[tags]\nrules = [\"type=sha\", \"type=raw,value=latest\", \"type=ref,event=branch\"]\n"
        ),
    );
    repo.write("Dockerfile", "FROM scratch\nCOPY app.txt /app.txt\n");
    repo.write("app.txt", "one\n");
    repo.commit("app one");
    repo
}

/// A buildah storage of its own, as `CONTAINERS_STORAGE_CONF`'s value.
fn storage(dir: &Path) -> std::path::PathBuf {
    let conf = dir.join("storage.conf");
    fs_err::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/root\"\n",
            dir.display()
        ),
    )
    .unwrap();
    conf
}

/// The digest each tag of `app` points at, read with skopeo.
fn digests(registry: &str) -> BTreeMap<String, String> {
    let listed = run(Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{registry}/demo/app")));
    assert!(listed.status.success());
    let tags: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| {
            let tag = tag.as_str().unwrap().to_owned();
            let inspected = common::skopeo_inspect(&format!("{registry}/demo/app:{tag}"), false);
            (tag, inspected["Digest"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn short(sha: &str) -> String {
    format!("sha-{}", &sha[..7])
}

#[test]
fn buildah_never_moves_latest_back_and_a_rerun_keeps_every_digest() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = app(&host);
    let build = || {
        // An empty storage per run: the digest owes nothing to a cache.
        let dir = tempfile::tempdir().unwrap();
        let output = run(img_build(repo.path())
            .args(["--only", "app", "--push", "--backend", "buildah"])
            .args(["--format", "json", "--ref", "refs/heads/main"])
            .env("CONTAINERS_STORAGE_CONF", storage(dir.path()))
            .env("BUILDAH_ISOLATION", "chroot"));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        (json(&output), stderr)
    };
    let older = repo.head();
    build();
    let after_older = digests(&host);
    repo.write("app.txt", "two\n");
    let newer = repo.commit("app two");
    build();
    let after_newer = digests(&host);
    assert_eq!(after_newer["latest"], after_newer[&short(&newer)]);
    assert_eq!(after_newer["main"], after_newer[&short(&newer)]);

    // A rerun of the older pipeline: its sha tag is pushed again (the same
    // digest: buildah is reproducible), latest and main stay.
    repo.checkout(&older);
    let (report, stderr) = build();
    assert_eq!(digests(&host), after_newer);
    assert_eq!(after_newer[&short(&older)], after_older[&short(&older)]);
    let app = target(&report, "app");
    assert_eq!(
        app["tags"],
        serde_json::json!([format!("{host}/demo/app:{}", short(&older))])
    );
    let held: Vec<&str> = app["held_tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["tag"].as_str().unwrap())
        .collect();
    assert_eq!(
        held,
        [
            format!("{host}/demo/app:main"),
            format!("{host}/demo/app:latest")
        ]
    );
    assert_eq!(app["held_tags"][0]["revision"], newer);
    assert_eq!(app["held_tags"][0]["digest"], after_newer["latest"]);
    assert!(
        stderr.contains(&format!(
            "img-build: `{host}/demo/app:latest` stays where it is: it points at {}, which is not an ancestor of {} (a rerun of an older pipeline, or another branch); `--force-tags` moves it",
            &newer[..7],
            &older[..7]
        )),
        "{stderr}"
    );

    // A plain rerun at the newer commit moves nothing: same digests.
    repo.checkout("main");
    let (report, _) = build();
    assert_eq!(digests(&host), after_newer);
    assert!(
        target(&report, "app").get("held_tags").is_none(),
        "{report:#}"
    );

    // `--force-tags` moves them back on purpose.
    repo.checkout(&older);
    let dir = tempfile::tempdir().unwrap();
    let output = run(img_build(repo.path())
        .args([
            "--only",
            "app",
            "--push",
            "--backend",
            "buildah",
            "--force-tags",
        ])
        .args(["--ref", "refs/heads/main"])
        .env("CONTAINERS_STORAGE_CONF", storage(dir.path()))
        .env("BUILDAH_ISOLATION", "chroot"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(digests(&host)["latest"], after_older["latest"]);
}

#[test]
fn buildkit_keeps_latest_and_its_digests_on_a_rerun() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let host = registry.host();
    let repo = app(&host);
    let build = || {
        let output = run(img_build(repo.path())
            .args(["--only", "app", "--push", "--backend", "buildkit"])
            .args([
                "--network",
                "none",
                "--format",
                "json",
                "--ref",
                "refs/heads/main",
                "--docker",
            ])
            .arg(dockerd.client_path())
            .env("DOCKER_HOST", dockerd.host())
            .env("DOCKER_CONFIG", dockerd.temp_dir().join("client")));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        json(&output)
    };
    let older = repo.head();
    build();
    repo.write("app.txt", "two\n");
    let newer = repo.commit("app two");
    build();
    let after_newer = digests(&host);
    assert_eq!(after_newer["latest"], after_newer[&short(&newer)]);

    repo.checkout(&older);
    let report = build();
    assert_eq!(digests(&host)["latest"], after_newer["latest"]);
    assert_eq!(digests(&host)["main"], after_newer["main"]);
    assert_eq!(
        target(&report, "app")["held_tags"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // On the same daemon the build hits its cache: the same image, the same digests.
    repo.checkout("main");
    build();
    assert_eq!(digests(&host), after_newer);
}

#[test]
fn a_tag_at_a_commit_this_clone_has_not_fetched_stays_where_it_is() {
    let registry = Registry::start();
    let host = registry.host();
    let repo = app(&host);
    // A colleague's clone, taken before the newer commit and never fetched since.
    let clone = repo.clone_shallow(1000);
    let build = |repo: &GitRepo| {
        let dir = tempfile::tempdir().unwrap();
        let output = run(img_build(repo.path())
            .args(["--only", "app", "--push", "--backend", "buildah"])
            .args(["--format", "json", "--ref", "refs/heads/main"])
            .env("CONTAINERS_STORAGE_CONF", storage(dir.path()))
            .env("BUILDAH_ISOLATION", "chroot"));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        (json(&output), stderr)
    };
    repo.write("app.txt", "two\n");
    let newer = repo.commit("app two");
    build(&repo);
    let after_newer = digests(&host);

    // The clone's own commit: `main` in the registry points at a revision
    // this clone does not have, so img-build cannot tell forward from back.
    clone.write("app.txt", "three\n");
    let ours = clone.commit("app three");
    let (report, stderr) = build(&clone);
    let after = digests(&host);
    assert_eq!(after["main"], after_newer["main"]);
    assert_eq!(after["latest"], after_newer["latest"]);
    assert!(after.contains_key(&short(&ours)), "{after:?}");
    let held = target(&report, "app")["held_tags"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(held.len(), 2, "{report:#}");
    assert_eq!(held[0]["revision"], newer);
    assert!(
        stderr.contains(&format!(
            "img-build: `{host}/demo/app:latest` stays where it is: it points at {}, which the local history does not have",
            &newer[..7]
        )),
        "{stderr}"
    );
}
