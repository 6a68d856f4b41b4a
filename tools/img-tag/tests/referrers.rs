//! Referrers (signatures, SBOMs, attestations) survive `img-tag promote`,
//! end to end against the test bed's registry (distribution 2.8: no
//! referrers API, so the `sha256-<hex>` fallback tag is what is read and
//! written). Artifacts are assembled and pushed with curl, as a producer
//! (oras, cosign) would push them; curl and the registry's own log are the
//! oracles, never img-tag itself.

mod common;

use std::process::Command;

use common::{img_tag, stderr, stdout};
use serde_json::{Value, json};
use slipway_testbed::Registry;
use slipway_testbed::images::{push_blob, push_image, put_manifest, sha256};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SPDX: &str = "application/spdx+json";
const SIGNATURE: &str = "application/vnd.example.signature.v1+json";

/// An image `repo:1.0` with an SBOM (subject: the image) and a signature
/// of the SBOM (subject: the SBOM), each listed in its subject's fallback
/// index as a producer without the referrers API writes it.
struct Fixture {
    image: String,
    image_digest: String,
    sbom: Artifact,
    signature: Artifact,
}

struct Artifact {
    digest: String,
    /// The manifest, as pushed.
    bytes: String,
    /// Its layer blob.
    layer: String,
    /// Its descriptor, as listed in the fallback index.
    descriptor: Value,
}

fn fixture(host: &str, repo: &str) -> Fixture {
    let (image_digest, image_size) = push_image(host, repo, "1.0", "amd64", Some("rev-1"));
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": image_digest, "size": image_size});
    let sbom = push_artifact(host, repo, SPDX, br#"{"spdxVersion":"SPDX-2.3"}"#, &subject);
    add_to_fallback(host, repo, &image_digest, &sbom.descriptor);
    let subject =
        json!({"mediaType": OCI_MANIFEST, "digest": sbom.digest, "size": sbom.bytes.len()});
    let signature = push_artifact(host, repo, SIGNATURE, b"signature of the sbom", &subject);
    add_to_fallback(host, repo, &sbom.digest, &signature.descriptor);
    Fixture {
        image: format!("{host}/{repo}:1.0"),
        image_digest,
        sbom,
        signature,
    }
}

/// Pushes an OCI artifact manifest (empty config, one layer) with `subject`, by digest.
fn push_artifact(
    host: &str,
    repo: &str,
    artifact_type: &str,
    layer: &[u8],
    subject: &Value,
) -> Artifact {
    let (empty, empty_size) = push_blob(host, repo, b"{}");
    let (layer, layer_size) = push_blob(host, repo, layer);
    let annotations = json!({"org.opencontainers.image.created": "2026-12-06T09:00:00Z"});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": empty_size},
        "layers": [{"mediaType": artifact_type, "digest": layer, "size": layer_size}],
        "subject": subject,
        "annotations": annotations,
    })
    .to_string();
    let digest = sha256(manifest.as_bytes());
    put_manifest(host, repo, &digest, OCI_MANIFEST, &manifest);
    let descriptor = json!({
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": manifest.len(),
        "artifactType": artifact_type,
        "annotations": annotations,
    });
    Artifact {
        digest,
        bytes: manifest,
        layer,
        descriptor,
    }
}

/// Writes the fallback index `repo:sha256-<hex of subject>` listing `descriptor`.
fn add_to_fallback(host: &str, repo: &str, subject: &str, descriptor: &Value) {
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]});
    put_manifest(
        host,
        repo,
        &fallback_tag(subject),
        OCI_INDEX,
        &index.to_string(),
    );
}

fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// `GET http://host/v2/<path>` with an OCI Accept: `(status, body)`.
fn get(host: &str, path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args([
            "-sS",
            "-H",
            &format!("Accept: {OCI_MANIFEST}, {OCI_INDEX}"),
            "-w",
            "\n%{http_code}",
            &format!("http://{host}/v2/{path}"),
        ])
        .output()
        .expect("curl runs");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let (body, status) = text.rsplit_once('\n').expect("a status line");
    (status.parse().expect("a status"), body.to_owned())
}

/// The digests the fallback index of `subject` in `host/repo` lists (none: 404).
fn fallback_digests(host: &str, repo: &str, subject: &str) -> Option<Vec<String>> {
    let (status, body) = get(host, &format!("{repo}/manifests/{}", fallback_tag(subject)));
    if status == 404 {
        return None;
    }
    assert_eq!(status, 200, "{body}");
    let index: Value = serde_json::from_str(&body).expect("JSON index");
    Some(
        index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|m| m["digest"].as_str().expect("digest").to_owned())
            .collect(),
    )
}

/// Asserts that `artifact` is at `host/repo` byte for byte (same digest),
/// with its layer, and listed once in its subject's fallback index.
#[track_caller]
fn assert_carried(host: &str, repo: &str, artifact: &Artifact, subject: &str) {
    let (status, body) = get(host, &format!("{repo}/manifests/{}", artifact.digest));
    assert_eq!((status, body.as_str()), (200, artifact.bytes.as_str()));
    let (status, _) = get(host, &format!("{repo}/blobs/{}", artifact.layer));
    assert_eq!(status, 200, "the referrer's layer is at the destination");
    assert_eq!(
        fallback_digests(host, repo, subject),
        Some(vec![artifact.digest.clone()]),
        "the fallback index lists the referrer exactly once"
    );
}

fn run_json(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = img_tag(dir.path(), args, &[], None);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}",
        stderr(&output)
    );
    serde_json::from_str(&stdout(&output)).expect("JSON report")
}

#[test]
fn referrers_lists_the_fallback_tag_index() {
    let registry = Registry::start();
    let host = registry.host();
    let f = fixture(&host, "team/app");
    let report = run_json(&["referrers", &f.image, "--format", "json"]);
    assert_eq!(
        report,
        json!({
            "image": f.image,
            "digest": f.image_digest,
            "source": "tag",
            "referrers": [{
                "digest": f.sbom.digest,
                "media_type": OCI_MANIFEST,
                "artifact_type": SPDX,
                "size": f.sbom.bytes.len(),
                "annotations": {"org.opencontainers.image.created": "2026-12-06T09:00:00Z"},
            }],
        })
    );
    let filtered = run_json(&[
        "referrers",
        &f.image,
        "--artifact-type",
        SIGNATURE,
        "--format",
        "json",
    ]);
    assert_eq!(filtered["referrers"], json!([]));

    let dir = tempfile::tempdir().unwrap();
    let output = img_tag(dir.path(), &["referrers", &f.image], &[], None);
    assert_eq!(
        stdout(&output),
        format!("{} {SPDX} {} bytes\n", f.sbom.digest, f.sbom.bytes.len())
    );
    let none = run_json(&[
        "referrers",
        &format!("{host}/team/app@{}", f.signature.digest),
        "--format",
        "json",
    ]);
    assert_eq!(
        (none["source"].as_str(), none["referrers"].clone()),
        (Some("none"), json!([]))
    );
}

#[test]
fn promote_carries_referrers_and_theirs_to_another_repository_without_reading_blobs() {
    let registry = Registry::start();
    let host = registry.host();
    let f = fixture(&host, "team/app");
    let destination = format!("{host}/prod/app:1.0");

    let report = run_json(&["promote", &f.image, &destination, "--format", "json"]);
    assert_eq!(
        (
            report["referrers_copied"].as_u64(),
            report["referrer_tags_updated"].as_u64()
        ),
        (Some(2), Some(2))
    );
    assert_carried(&host, "prod/app", &f.sbom, &f.image_digest);
    assert_carried(&host, "prod/app", &f.signature, &f.sbom.digest);
    let (status, _) = get(&host, "prod/app/manifests/1.0");
    assert_eq!(status, 200);
    let reads: Vec<String> = registry
        .log()
        .lines()
        .filter(|line| line.contains("\"GET /v2/") && line.contains("/blobs/"))
        // The checks above read blobs with curl; img-tag must not.
        .filter(|line| !line.contains("curl/"))
        .map(str::to_owned)
        .collect();
    assert!(reads.is_empty(), "blobs were read: {reads:?}");

    // Again: nothing new in the fallback indexes, no duplicate.
    let report = run_json(&["promote", &f.image, &destination, "--format", "json"]);
    assert_eq!(report["referrer_tags_updated"].as_u64(), Some(0));
    assert_carried(&host, "prod/app", &f.sbom, &f.image_digest);
    assert_carried(&host, "prod/app", &f.signature, &f.sbom.digest);
    let listed = run_json(&["referrers", &destination, "--format", "json"]);
    assert_eq!(listed["referrers"][0]["digest"], json!(f.sbom.digest));

    let dir = tempfile::tempdir().unwrap();
    let output = img_tag(dir.path(), &["promote", &f.image, &destination], &[], None);
    assert!(
        stdout(&output).ends_with(
            "\nblobs: 0 mounted, 0 copied (0 bytes), 4 skipped\nreferrers: 2 copied, 0 referrers tag(s) updated\n"
        ),
        "{}",
        stdout(&output)
    );
}

#[test]
fn promote_streams_referrers_to_another_registry_and_merges_its_fallback_index() {
    let source = Registry::start();
    let target = Registry::start();
    let f = fixture(&source.host(), "team/app");
    // The destination already lists another referrer of the image: kept.
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": f.image_digest, "size": 1});
    let other = push_artifact(&target.host(), "mirror/app", SIGNATURE, b"other", &subject);
    add_to_fallback(
        &target.host(),
        "mirror/app",
        &f.image_digest,
        &other.descriptor,
    );
    let destination = format!("{}/mirror/app:1.0", target.host());

    let report = run_json(&[
        "promote",
        &f.image,
        &destination,
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_eq!(report["referrers_copied"].as_u64(), Some(2));
    let (status, _) = get(
        &target.host(),
        &format!("mirror/app/manifests/{}", f.sbom.digest),
    );
    assert_eq!(status, 404, "a dry run pushes no referrer");

    let report = run_json(&["promote", &f.image, &destination, "--format", "json"]);
    assert_eq!(report["referrers_copied"].as_u64(), Some(2));
    // The report's `images`: the image, then its SBOM, then the SBOM's
    // signature, each with what became of its blobs (copied, skipped). The
    // artifacts' empty config is at the destination already (the other
    // signature's): skipped for the SBOM, and not counted again for the
    // signature, which shares it.
    let images: Vec<(&str, bool, u64, u64)> = report["images"]
        .as_array()
        .expect("`images` is a list")
        .iter()
        .map(|image| {
            (
                image["digest"].as_str().unwrap_or_default(),
                image["referrer"].as_bool().unwrap_or_default(),
                image["blobs_copied"].as_u64().unwrap_or_default(),
                image["blobs_skipped"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        images,
        [
            (f.image_digest.as_str(), false, 1, 0),
            (f.sbom.digest.as_str(), true, 1, 1),
            (f.signature.digest.as_str(), true, 1, 0),
        ]
    );
    assert_eq!(
        fallback_digests(&target.host(), "mirror/app", &f.image_digest),
        Some(vec![other.digest.clone(), f.sbom.digest.clone()])
    );
    assert_carried(&target.host(), "mirror/app", &f.signature, &f.sbom.digest);
    let (status, body) = get(
        &target.host(),
        &format!("mirror/app/manifests/{}", f.sbom.digest),
    );
    assert_eq!((status, body), (200, f.sbom.bytes.clone()));
}

#[test]
fn no_referrers_copies_the_image_alone() {
    let registry = Registry::start();
    let host = registry.host();
    let f = fixture(&host, "team/app");
    let report = run_json(&[
        "promote",
        &f.image,
        &format!("{host}/prod/app:1.0"),
        "--no-referrers",
        "--format",
        "json",
    ]);
    assert_eq!(report["referrers_copied"].as_u64(), Some(0));
    assert_eq!(fallback_digests(&host, "prod/app", &f.image_digest), None);
    let (status, _) = get(&host, &format!("prod/app/manifests/{}", f.sbom.digest));
    assert_eq!(status, 404);
}

#[test]
fn a_retag_within_the_repository_copies_nothing_and_keeps_the_referrers() {
    let registry = Registry::start();
    let host = registry.host();
    let f = fixture(&host, "team/app");
    let destination = format!("{host}/team/app:2.0");
    let report = run_json(&["promote", &f.image, &destination, "--format", "json"]);
    assert_eq!(report["referrers_copied"].as_u64(), Some(0));
    let listed = run_json(&["referrers", &destination, "--format", "json"]);
    assert_eq!(listed["referrers"][0]["digest"], json!(f.sbom.digest));
}

#[test]
fn a_referrer_that_cannot_be_read_fails_the_promote_before_the_tag_moves() {
    let registry = Registry::start();
    let host = registry.host();
    let (digest, size) = push_image(&host, "team/app", "1.0", "amd64", None);
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size});
    let sbom = push_artifact(&host, "team/app", SPDX, b"sbom", &subject);
    add_to_fallback(&host, "team/app", &digest, &sbom.descriptor);
    // Listed, but gone (deleted after the index was written).
    let deleted = Command::new("curl")
        .args(["-sSf", "-X", "DELETE"])
        .arg(format!(
            "http://{host}/v2/team/app/manifests/{}",
            sbom.digest
        ))
        .status()
        .expect("curl runs");
    assert!(deleted.success());
    let missing = sbom.digest;

    let dir = tempfile::tempdir().unwrap();
    let output = img_tag(
        dir.path(),
        &[
            "promote",
            &format!("{host}/team/app:1.0"),
            &format!("{host}/prod/app:1.0"),
        ],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "cannot read referrer `{host}/team/app@{missing}` of `{digest}`; the destination tag was not written (pass --no-referrers to copy the image alone)"
        )),
        "{}",
        stderr(&output)
    );
    let (status, _) = get(&host, "prod/app/manifests/1.0");
    assert_eq!(status, 404, "the destination tag was not written");
}

#[test]
fn referrers_of_an_index_and_of_its_children_are_carried() {
    let registry = Registry::start();
    let host = registry.host();
    let index = slipway_testbed::images::push_index(
        &host,
        "team/app",
        "multi",
        &[("amd64", "rev-1"), ("arm64", "rev-1")],
    );
    let (index_status, index_body) = get(&host, "team/app/manifests/multi");
    assert_eq!(index_status, 200);
    let child: Value = serde_json::from_str::<Value>(&index_body).unwrap()["manifests"][0].clone();
    let index_subject = json!({"mediaType": OCI_INDEX, "digest": index, "size": index_body.len()});
    let on_index = push_artifact(&host, "team/app", SPDX, b"index sbom", &index_subject);
    add_to_fallback(&host, "team/app", &index, &on_index.descriptor);
    let child_digest = child["digest"].as_str().unwrap().to_owned();
    let on_child = push_artifact(&host, "team/app", SIGNATURE, b"child signature", &child);
    add_to_fallback(&host, "team/app", &child_digest, &on_child.descriptor);

    let report = run_json(&[
        "promote",
        &format!("{host}/team/app:multi"),
        &format!("{host}/prod/app"),
        "--format",
        "json",
    ]);
    assert_eq!(report["referrers_copied"].as_u64(), Some(2));
    assert_carried(&host, "prod/app", &on_index, &index);
    assert_carried(&host, "prod/app", &on_child, &child_digest);
}
