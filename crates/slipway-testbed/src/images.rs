//! Tiny images pushed straight to a registry over its HTTP API (with `curl`),
//! for tests that need published images with given labels but no daemon:
//! a config blob carrying the labels and a manifest without layers.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The label Slipway's stale check and `--base-from-image` read.
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// Pushes a one-platform (`linux/<arch>`) image to `host/repository:tag`
/// whose config has `revision` as its revision label (none when `None`);
/// returns the manifest's `(digest, size)`.
pub fn push_image(
    host: &str,
    repository: &str,
    tag: &str,
    arch: &str,
    revision: Option<&str>,
) -> (String, usize) {
    let labels = revision
        .map(|r| format!(r#""Labels":{{"{REVISION_LABEL}":"{r}"}}"#))
        .unwrap_or_default();
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{{labels}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    );
    let (config_digest, config_size) = push_blob(host, repository, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[]}}"#
    );
    let digest = put(
        host,
        &format!("/v2/{repository}/manifests/{tag}"),
        OCI_MANIFEST,
        &manifest,
    );
    (digest, manifest.len())
}

/// Pushes an index of one image per `(architecture, revision)` to
/// `host/repository:tag` (each child also tagged `<tag>-<arch>`); returns
/// the index's digest.
pub fn push_index(host: &str, repository: &str, tag: &str, images: &[(&str, &str)]) -> String {
    let children: Vec<String> = images
        .iter()
        .map(|(arch, revision)| {
            let (digest, size) =
                push_image(host, repository, &format!("{tag}-{arch}"), arch, Some(revision));
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":{size},"platform":{{"os":"linux","architecture":"{arch}"}}}}"#
            )
        })
        .collect();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        children.join(",")
    );
    put(
        host,
        &format!("/v2/{repository}/manifests/{tag}"),
        OCI_INDEX,
        &index,
    )
}

/// Uploads `bytes` as a blob of `repository` (monolithic upload); returns
/// `(digest, size)`.
pub fn push_blob(host: &str, repository: &str, bytes: &[u8]) -> (String, usize) {
    let digest = sha256(bytes);
    let headers = curl(
        &[
            "-X",
            "POST",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &format!("http://{host}/v2/{repository}/blobs/uploads/"),
        ],
        None,
    );
    let location = headers
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("the blob upload to `{host}` answered no Location: {headers}"));
    let separator = if location.contains('?') { '&' } else { '?' };
    curl(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            "@-",
            &format!("{location}{separator}digest={digest}"),
        ],
        Some(bytes),
    );
    (digest, bytes.len())
}

/// PUTs `body` as the manifest `repository:reference` (a tag or a digest);
/// returns its digest.
pub fn put_manifest(
    host: &str,
    repository: &str,
    reference: &str,
    media_type: &str,
    body: &str,
) -> String {
    put(
        host,
        &format!("/v2/{repository}/manifests/{reference}"),
        media_type,
        body,
    )
}

/// PUTs a manifest; returns its digest.
fn put(host: &str, path: &str, media_type: &str, body: &str) -> String {
    curl(
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {media_type}"),
            "--data-binary",
            "@-",
            &format!("http://{host}{path}"),
        ],
        Some(body.as_bytes()),
    );
    sha256(body.as_bytes())
}

fn curl(args: &[&str], stdin: Option<&[u8]>) -> String {
    let curl = crate::require("curl", "curl");
    let (ok, stdout) = pipe(
        Command::new(curl)
            .args(["-sS", "--fail-with-body"])
            .args(args),
        stdin.unwrap_or_default(),
    );
    assert!(ok, "curl {args:?} failed: {stdout}");
    stdout
}

/// `sha256:<hex>` of `bytes`, by coreutils' `sha256sum`.
pub fn sha256(bytes: &[u8]) -> String {
    let (ok, stdout) = pipe(&mut Command::new("sha256sum"), bytes);
    assert!(ok, "sha256sum failed");
    format!(
        "sha256:{}",
        stdout.split_whitespace().next().unwrap_or_default()
    )
}

fn pipe(command: &mut Command, stdin: &[u8]) -> (bool, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin)
            .unwrap_or_else(|error| panic!("cannot write to {command:?}: {error}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|error| panic!("cannot wait for {command:?}: {error}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}
