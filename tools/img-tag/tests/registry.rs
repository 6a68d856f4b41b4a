//! `img-tag apply|promote|resolve|ls` end to end against a real registry.
//! Images are pushed by docker (single platform) or assembled with curl
//! (a two-platform OCI index); skopeo and the registry's own log are the
//! oracles, never img-tag itself.

mod common;

use std::process::Command;

use common::{img_tag, stderr, stdout};
use serde_json::{Value, json};
use slipway_testbed::images::{push_blob, put_manifest};
use slipway_testbed::{Dockerd, Registry};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[test]
fn apply_adds_tags_to_a_docker_pushed_image_without_changing_its_digest() {
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let image = dockerd.base_image(&registry);
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let before = registry.log().len();

    let output = img_tag(
        dir.path(),
        &[
            "apply", &image, "--tag", "v1", "--tag", "stable", "--format", "json",
        ],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let digest = digest_of(&raw(&image));
    assert_eq!(
        report,
        json!({
            "image": image,
            "digest": digest,
            "tags": [
                {"tag": "v1", "previous_digest": null, "changed": true},
                {"tag": "stable", "previous_digest": null, "changed": true},
            ],
            "dry_run": false,
        })
    );
    for tag in ["v1", "stable"] {
        assert_eq!(
            raw(&format!("{host}/base/busybox:{tag}")),
            raw(&image),
            "tag `{tag}`"
        );
    }
    assert_no_blob_reads(&registry.log()[before..]);

    // Again: nothing changes, and the report says where the tags were.
    let output = img_tag(
        dir.path(),
        &["apply", &image, "--tag", "v1", "--format", "json"],
        &[],
        None,
    );
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        report["tags"],
        json!([{"tag": "v1", "previous_digest": digest, "changed": false}])
    );

    let output = img_tag(
        dir.path(),
        &["resolve", &format!("{host}/base/busybox:stable")],
        &[],
        None,
    );
    assert_eq!(
        stdout(&output),
        format!("{digest}\n"),
        "{}",
        stderr(&output)
    );
    let output = img_tag(
        dir.path(),
        &["ls", &format!("{host}/base/busybox")],
        &[],
        None,
    );
    assert_eq!(stdout(&output), "1\nstable\nv1\n", "{}", stderr(&output));
}

#[test]
fn an_index_is_applied_and_promoted_intact_without_moving_layers() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let index = push_two_platform_index(&host, "team/app", "build-1");
    let source_raw = raw(&index);
    let before = registry.log().len();

    let output = img_tag(
        dir.path(),
        &["apply", &index, "--tag", "1.0.0", "--format", "json"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(raw(&format!("{host}/team/app:1.0.0")), source_raw);

    let destination = format!("{host}/prod/app");
    let output = img_tag(
        dir.path(),
        &["promote", &index, &destination, "--format", "json"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_no_blob_reads(&registry.log()[before..]);
    // Times vary: each is a number, then left out of the comparison.
    for elapsed in [
        report["elapsed_ms"].take(),
        report["images"][0]["elapsed_ms"].take(),
        report["images"][1]["elapsed_ms"].take(),
    ] {
        assert!(elapsed.is_u64(), "{elapsed}");
    }
    let image = |platform: &str, digest: &str| {
        json!({
            "digest": digest,
            "platform": platform,
            "referrer": false,
            "blobs_mounted": 2,
            "blobs_copied": 0,
            "blobs_skipped": 0,
            "bytes_copied": 0,
            "elapsed_ms": null,
        })
    };
    let child = children(&source_raw);
    assert_eq!(
        report,
        json!({
            "source": index,
            "destination": format!("{destination}:build-1"),
            "digest": digest_of(&source_raw),
            "blobs_mounted": 4,
            "blobs_copied": 0,
            "blobs_skipped": 0,
            "bytes_copied": 0,
            "dry_run": false,
            "referrers_copied": 0,
            "referrer_tags_updated": 0,
            "images": [image("linux/amd64", &child[0]), image("linux/arm64", &child[1])],
            "elapsed_ms": null,
        })
    );
    let promoted_raw = raw(&format!("{destination}:build-1"));
    assert_eq!(promoted_raw, source_raw, "the index is byte-identical");
    assert_eq!(platforms(&promoted_raw), ["linux/amd64", "linux/arm64"]);
    for child in children(&promoted_raw) {
        assert_eq!(
            raw(&format!("{destination}@{child}")),
            raw(&format!("{host}/team/app@{child}"))
        );
    }

    // Promoting again finds every blob in place.
    let output = img_tag(
        dir.path(),
        &[
            "promote",
            &index,
            &format!("{destination}:again"),
            "--format",
            "json",
        ],
        &[],
        None,
    );
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        (
            report["blobs_skipped"].as_u64(),
            report["blobs_mounted"].as_u64()
        ),
        (Some(4), Some(0))
    );
}

#[test]
fn apply_computes_and_applies_the_tags_in_one_call() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let image = push_two_platform_index(&host, "team/app", "build-7");
    let sha = "860c1904a1ce19322e91ac35af1ab07466440c37";
    let env = [
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REF", "refs/tags/v1.2.3"),
        ("GITHUB_SHA", sha),
    ];
    let output = img_tag(
        dir.path(),
        &[
            "apply",
            &image,
            "--rule",
            "type=semver,pattern={{version}}",
            "--rule",
            "type=semver,pattern={{major}}.{{minor}}",
            "--rule",
            "type=sha",
            "--format",
            "json",
        ],
        &env,
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let applied: Vec<&str> = report["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["tag"].as_str().unwrap())
        .collect();
    assert_eq!(applied, ["1.2.3", "1.2", "sha-860c190", "latest"]);
    assert_eq!(
        list_tags(&host, "team/app"),
        [
            "1.2",
            "1.2.3",
            "build-7",
            "build-7-amd64",
            "build-7-arm64",
            "latest",
            "sha-860c190"
        ]
    );
    for tag in applied {
        assert_eq!(
            raw(&format!("{host}/team/app:{tag}")),
            raw(&image),
            "tag `{tag}`"
        );
    }

    // Without --rule: slipway.toml's [tags], with the CI context's branch.
    fs_err::write(
        dir.path().join("slipway.toml"),
        "[project]\nname = \"demo\"\ndefault_branch = \"main\"\n\n[tags]\nrules = [\"type=ref,event=branch\", \"type=edge\"]\n",
    )
    .unwrap();
    let env = [
        ("GITHUB_EVENT_NAME", "push"),
        ("GITHUB_REF", "refs/heads/main"),
        ("GITHUB_SHA", sha),
    ];
    let output = img_tag(
        dir.path(),
        &["apply", &image, "--computed", "--dry-run"],
        &env,
        None,
    );
    assert_eq!(
        stdout(&output),
        format!(
            "would set {host}/team/app:edge -> {d}\nwould set {host}/team/app:main -> {d}\n",
            d = digest_of(&raw(&image))
        ),
        "{}",
        stderr(&output)
    );
    assert!(!list_tags(&host, "team/app").contains(&"main".to_owned()));
    let output = img_tag(dir.path(), &["apply", &image], &env, None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let tags = list_tags(&host, "team/app");
    assert!(
        tags.contains(&"main".to_owned()) && tags.contains(&"edge".to_owned()),
        "{tags:?}"
    );

    // A bad rule is bad input, and nothing is applied.
    let output = img_tag(
        dir.path(),
        &["apply", &image, "--rule", "type=semvr"],
        &env,
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with("error: invalid `--rule`: unknown tag rule type `semvr`"),
        "{}",
        stderr(&output)
    );
}

/// The tags of `repo`, sorted, as skopeo lists them.
fn list_tags(host: &str, repo: &str) -> Vec<String> {
    let output = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{host}/{repo}"),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("skopeo prints JSON");
    let mut tags: Vec<String> = json["Tags"]
        .as_array()
        .expect("skopeo lists `Tags`")
        .iter()
        .map(|tag| tag.as_str().expect("a tag is a string").to_owned())
        .collect();
    tags.sort();
    tags
}

#[test]
fn promote_streams_blobs_to_another_registry() {
    let source = Registry::start();
    let target = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let index = push_two_platform_index(&source.host(), "team/app", "rc");
    let destination = format!("{}/mirror/app:rc", target.host());

    let output = img_tag(
        dir.path(),
        &[
            "promote",
            &index,
            &destination,
            "--dry-run",
            "--format",
            "json",
        ],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        (report["blobs_copied"].as_u64(), report["dry_run"].as_bool()),
        (Some(4), Some(true))
    );
    assert!(!skopeo_exists(&destination), "a dry run pushes nothing");

    let output = img_tag(
        dir.path(),
        &["promote", &index, &destination, "--format", "json"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["blobs_copied"].as_u64(), Some(4));
    assert_eq!(
        report["bytes_copied"],
        report_bytes(&raw(&index), &source.host())
    );
    assert_eq!(raw(&destination), raw(&index));
    assert_eq!(
        platforms(&raw(&destination)),
        ["linux/amd64", "linux/arm64"]
    );
}

#[test]
fn a_failing_apply_puts_the_moved_tags_back() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let old = push_image(&host, "team/app", "old", ("linux", "amd64"), b"old layer");
    let new = push_image(&host, "team/app", "new", ("linux", "amd64"), b"new layer");
    let output = img_tag(dir.path(), &["apply", &old, "--tag", "live"], &[], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // The registry cannot write tag `broken` (its index directory is a
    // file), yet reads it as absent: the failure comes after `live` moved.
    let broken = registry
        .storage_dir()
        .join("docker/registry/v2/repositories/team/app/_manifests/tags/broken");
    fs_err::create_dir_all(&broken).unwrap();
    fs_err::write(broken.join("index"), "not a directory").unwrap();

    let output = img_tag(
        dir.path(),
        &[
            "apply", &new, "--tag", "live", "--tag", "broken", "--tag", "fresh",
        ],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("cannot point tag `broken`"), "{message}");
    assert!(
        message.contains(&format!(
            "rolled back `live` to `{}`",
            digest_of(&raw(&old))
        )),
        "{message}"
    );
    // distribution 2.8 cannot delete a tag alone; img-tag says so rather
    // than deleting the manifest (and every tag on it).
    assert!(
        message.contains(
            "new tag `fresh` left in place (the registry does not support deleting tags)"
        ),
        "{message}"
    );
    assert_eq!(
        raw(&format!("{host}/team/app:live")),
        raw(&old),
        "`live` is where it was"
    );
    assert_ne!(raw(&old), raw(&new));
}

#[test]
fn dry_run_apply_changes_nothing() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let image = push_image(&host, "team/app", "a", ("linux", "arm64"), b"layer");
    let output = img_tag(
        dir.path(),
        &["apply", &image, "--tag", "b", "--dry-run"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "would set {host}/team/app:b -> {}\n",
            digest_of(&raw(&image))
        )
    );
    assert!(!skopeo_exists(&format!("{host}/team/app:b")));
}

#[test]
fn bad_input_and_missing_images_are_reported() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let output = img_tag(
        dir.path(),
        &["apply", &format!("{host}/team/app:a"), "--tag", "-bad"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let output = img_tag(
        dir.path(),
        &["apply", &format!("{host}/team/app:missing"), "--tag", "b"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot read the manifest of `{host}/team/app:missing`\n  caused by: `{host}/team/app:missing` not found\n"
        )
    );
    let output = img_tag(
        dir.path(),
        &["resolve", &format!("{host}/team/app:missing")],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(3));
    let output = img_tag(
        dir.path(),
        &["apply", &format!("{host}/team/app:a"), "--tag", "b"],
        &[("REGISTRY_USER", "ci")],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("`REGISTRY_USER` is set but `REGISTRY_PASSWORD` is not"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn registry_commands_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["apply", "promote", "referrers", "resolve", "ls"] {
        let output = img_tag(dir.path(), &[command, "--help"], &[], None);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        insta::assert_snapshot!(format!("{command}_help"), stdout(&output));
    }
}

/// Fails the test if the registry log shows a blob download.
#[track_caller]
fn assert_no_blob_reads(log: &str) {
    let reads: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("\"GET /v2/") && line.contains("/blobs/"))
        .collect();
    assert!(
        reads.is_empty(),
        "img-tag downloaded blobs:\n{}",
        reads.join("\n")
    );
}

/// Pushes a one-layer OCI image for `platform` with curl; returns its reference.
fn push_image(host: &str, repo: &str, tag: &str, platform: (&str, &str), layer: &[u8]) -> String {
    let (os, architecture) = platform;
    let layer = push_blob(host, repo, layer);
    let config = json!({
        "architecture": architecture,
        "os": os,
        "config": {"Labels": {"org.opencontainers.image.revision": format!("rev-{architecture}")}},
        "rootfs": {"type": "layers", "diff_ids": [layer.0]},
    });
    let config = push_blob(host, repo, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.0, "size": layer.1}],
    });
    put_manifest(host, repo, tag, OCI_MANIFEST, &manifest.to_string());
    format!("{host}/{repo}:{tag}")
}

/// Pushes a linux/amd64 and a linux/arm64 image and an OCI index of both at `tag`.
fn push_two_platform_index(host: &str, repo: &str, tag: &str) -> String {
    let mut manifests = Vec::new();
    for architecture in ["amd64", "arm64"] {
        let image = push_image(
            host,
            repo,
            &format!("{tag}-{architecture}"),
            ("linux", architecture),
            format!("layer of {architecture}").as_bytes(),
        );
        let bytes = raw(&image);
        manifests.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest_of(&bytes),
            "size": bytes.len(),
            "platform": {"os": "linux", "architecture": architecture},
        }));
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    put_manifest(host, repo, tag, OCI_INDEX, &index.to_string());
    format!("{host}/{repo}:{tag}")
}

/// `sha256:<hex>` of `bytes`, by coreutils' sha256sum.
fn digest_of(bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the fixture step succeeds");
    child
        .stdin
        .take()
        .expect("the fixture step succeeds")
        .write_all(bytes)
        .expect("the fixture step succeeds");
    let output = child.wait_with_output().expect("the fixture step succeeds");
    let text = String::from_utf8(output.stdout).expect("the fixture step succeeds");
    format!(
        "sha256:{}",
        text.split_whitespace()
            .next()
            .expect("the fixture step succeeds")
    )
}

/// The manifest `image` points at, as stored (`skopeo inspect --raw`).
fn raw(image: &str) -> Vec<u8> {
    let output = skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{image}"),
    ]);
    assert!(
        output.status.success(),
        "skopeo inspect {image}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn skopeo_exists(image: &str) -> bool {
    skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!("docker://{image}"),
    ])
    .status
    .success()
}

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new(slipway_testbed::require("skopeo", "skopeo"))
        .args(args)
        .output()
        .expect("the fixture step succeeds")
}

fn platforms(index: &[u8]) -> Vec<String> {
    let index: Value = serde_json::from_slice(index).expect("the index is JSON");
    index["manifests"]
        .as_array()
        .expect("the fixture step succeeds")
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"]
                    .as_str()
                    .expect("the fixture step succeeds"),
                m["platform"]["architecture"]
                    .as_str()
                    .expect("the fixture step succeeds")
            )
        })
        .collect()
}

fn children(index: &[u8]) -> Vec<String> {
    let index: Value = serde_json::from_slice(index).expect("the index is JSON");
    index["manifests"]
        .as_array()
        .expect("the fixture step succeeds")
        .iter()
        .map(|m| {
            m["digest"]
                .as_str()
                .expect("the fixture step succeeds")
                .to_owned()
        })
        .collect()
}

/// The total size of the config and layer blobs of every child of `index`.
fn report_bytes(index: &[u8], host: &str) -> Value {
    let mut total = 0;
    for child in children(index) {
        let manifest: Value = serde_json::from_slice(&raw(&format!("{host}/team/app@{child}")))
            .expect("the fixture step succeeds");
        total += manifest["config"]["size"]
            .as_u64()
            .expect("the fixture step succeeds");
        total += manifest["layers"]
            .as_array()
            .expect("the fixture step succeeds")
            .iter()
            .map(|l| l["size"].as_u64().expect("the fixture step succeeds"))
            .sum::<u64>();
    }
    json!(total)
}
