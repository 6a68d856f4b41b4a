//! `img-tag` when the registry misbehaves: cut or killed in the middle of a
//! promote, answering 429/503, refusing connections or not resolving, and
//! two applies racing for one tag. The registry API itself (curl) is the
//! oracle: after every fault, every tag that exists must resolve to a
//! manifest whose blobs (and, for an index, whose children) all exist.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use slipway_testbed::UNRESOLVABLE_REGISTRY as UNRESOLVABLE;
use slipway_testbed::cmd::{Cmd, Running};
use slipway_testbed::images::{push_blob, put_manifest};
use slipway_testbed::{Fault, HttpFault, Mode, Registry, TcpProxy};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// The size of each platform's layer in the big fixture: large enough that
/// a cut or a kill lands in the middle of its upload.
const BIG_LAYER: usize = 3 << 20;

/// No fault may make img-tag hang: each run must end within this.
const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn a_promote_cut_in_the_middle_of_a_blob_leaves_no_tag_and_a_retry_completes() {
    let source = Registry::start();
    let target = Registry::start();
    let proxy = TcpProxy::start(target.addr());
    let dir = tempfile::tempdir().unwrap();
    let index = push_big_index(&source.host(), "team/app", "rc");
    let destination = format!("{}/mirror/app:rc", proxy.addr());

    // Every connection to the target dies after 1 MB, in the middle of
    // the first 3 MB layer; retries meet the same fate.
    proxy.set_mode(Mode::CutAfter(1 << 20));
    let output = run_bounded(dir.path(), &["promote", &index, &destination]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("`{}`", proxy.addr())),
        "the error names the registry's host:port: {message}"
    );
    assert!(message.contains("cannot copy blob"), "{message}");
    assert_eq!(
        manifest_status(&target.host(), "mirror/app", "rc"),
        404,
        "no tag was written"
    );
    assert_every_tag_complete(&target.host(), "mirror/app");

    proxy.set_mode(Mode::Pass);
    let output = run_bounded(dir.path(), &["promote", &index, &destination]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        manifest_digest(&target.host(), "mirror/app", "rc"),
        manifest_digest(&source.host(), "team/app", "rc")
    );
    assert_every_tag_complete(&target.host(), "mirror/app");
}

#[test]
fn a_registry_killed_in_the_middle_of_a_promote_leaves_no_tag_and_a_retry_completes() {
    let source = Registry::start();
    let mut target = Registry::start();
    let proxy = TcpProxy::start(target.addr());
    let dir = tempfile::tempdir().unwrap();
    let index = push_big_index(&source.host(), "team/app", "rc");
    let destination = format!("{}/mirror/app:rc", proxy.addr());

    // Slow enough (each 3 MB layer takes 3 s) to stop the registry while
    // the layers are on their way.
    proxy.set_mode(Mode::Throttle(1 << 20));
    let child = spawn(dir.path(), &["promote", &index, &destination]);
    let started = Instant::now();
    while proxy.forwarded() < 512 << 10 {
        assert!(
            started.elapsed() < DEADLINE,
            "the upload never started; registry log:\n{}",
            target.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    target.stop();
    let output = wait_bounded(child);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("`{}`", proxy.addr())),
        "the error names the registry's host:port: {message}"
    );

    target.restart();
    assert_eq!(manifest_status(&target.host(), "mirror/app", "rc"), 404);
    assert_every_tag_complete(&target.host(), "mirror/app");

    proxy.set_mode(Mode::Pass);
    let output = run_bounded(dir.path(), &["promote", &index, &destination]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        manifest_digest(&target.host(), "mirror/app", "rc"),
        manifest_digest(&source.host(), "team/app", "rc")
    );
    assert_every_tag_complete(&target.host(), "mirror/app");
}

#[test]
fn a_registry_answering_429_and_503_is_waited_for_and_the_apply_and_promote_succeed() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    push_image(&registry.host(), "team/app", "a", b"layer a");
    let front = HttpFault::start(
        registry.addr(),
        vec![
            Fault::new("/v2/team/app/manifests/live", 2, 429)
                .method("PUT")
                .header("Retry-After", "1"),
            Fault::new("/v2/team/app/manifests/live", 1, 503).method("HEAD"),
            // The cross-repository mount of promote.
            Fault::new("/v2/prod/app/blobs/uploads/", 1, 429)
                .method("POST")
                .header("Retry-After", "0"),
        ],
    );
    let host = front.host();
    let through_front = format!("{host}/team/app:a");

    let output = run_bounded(dir.path(), &["apply", &through_front, "--tag", "live"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        manifest_digest(&registry.host(), "team/app", "live"),
        manifest_digest(&registry.host(), "team/app", "a")
    );
    let puts = front.seen_matching("PUT", "/manifests/live");
    let faulted: Vec<Option<u16>> = puts.iter().map(|s| s.faulted).collect();
    assert_eq!(
        faulted,
        [Some(429), Some(429), None],
        "three PUTs, two refused"
    );
    for pair in puts.windows(2) {
        // `Retry-After: 1` is honoured: never sooner (a lower bound only).
        assert!(
            pair[1].at - pair[0].at >= Duration::from_secs(1),
            "retried after {:?}",
            pair[1].at - pair[0].at
        );
    }

    let output = run_bounded(
        dir.path(),
        &["promote", &through_front, &format!("{host}/prod/app:1")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(front.fault_counts(), [2, 1, 1], "every fault was met");
    assert_eq!(
        manifest_digest(&registry.host(), "prod/app", "1"),
        manifest_digest(&registry.host(), "team/app", "a")
    );
    assert_every_tag_complete(&registry.host(), "prod/app");
}

#[test]
fn a_refused_connection_fails_fast_naming_the_host_and_port() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let image = push_image(&registry.host(), "team/app", "a", b"layer a");
    // A port nothing listens on.
    let closed = format!("127.0.0.1:{}", slipway_testbed::free_port());

    let output = run_bounded(
        dir.path(),
        &["apply", &format!("{closed}/team/app:a"), "--tag", "b"],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!(
            "error: cannot read the manifest of `{closed}/team/app:a`\n  caused by: cannot reach `{closed}` for `GET /v2/team/app/manifests/a` after 5 attempt(s): "
        )),
        "{message}"
    );
    assert!(message.contains("Connection refused"), "{message}");

    // The push side: the source answers, the destination refuses.
    let output = run_bounded(
        dir.path(),
        &["promote", &image, &format!("{closed}/prod/app:1")],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("cannot reach `{closed}`")),
        "{message}"
    );
}

#[test]
fn an_unresolvable_registry_fails_fast_naming_the_host_and_port() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let image = push_image(&registry.host(), "team/app", "a", b"layer a");

    let output = run_bounded(
        dir.path(),
        &["resolve", &format!("{UNRESOLVABLE}/team/app:a")],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "cannot reach `{UNRESOLVABLE}` for `HEAD /v2/team/app/manifests/a`"
        )),
        "{message}"
    );
    // The resolver rejects the name without a lookup ("invalid dns name");
    // a name it looked up in vain would say "failed to lookup address".
    assert!(message.contains("dns"), "{message}");

    let output = run_bounded(
        dir.path(),
        &["promote", &image, &format!("{UNRESOLVABLE}/prod/app:1")],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("cannot reach `{UNRESOLVABLE}`")),
        "{}",
        stderr(&output)
    );
}

#[test]
fn two_applies_racing_for_a_tag_leave_it_on_one_of_their_digests() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let a = push_image(&host, "team/app", "a", b"layer a");
    let b = push_image(&host, "team/app", "b", b"layer b");
    let digests = [
        manifest_digest(&host, "team/app", "a"),
        manifest_digest(&host, "team/app", "b"),
    ];
    assert_ne!(digests[0], digests[1]);
    for round in 0..20 {
        let args = |image: &str| -> Vec<String> {
            ["apply", image, "--tag", "live", "--tag", "stable"]
                .map(str::to_owned)
                .to_vec()
        };
        let first = spawn_owned(dir.path(), &args(&a));
        let second = spawn_owned(dir.path(), &args(&b));
        for output in [wait_bounded(first), wait_bounded(second)] {
            assert_eq!(
                output.status.code(),
                Some(0),
                "round {round}: {}",
                stderr(&output)
            );
        }
        for tag in ["live", "stable"] {
            let digest = manifest_digest(&host, "team/app", tag);
            assert!(
                digests.contains(&digest),
                "round {round}: `{tag}` points at `{digest}`, neither of {digests:?}"
            );
        }
        assert_every_tag_complete(&host, "team/app");
    }
}

/// Stderr as text.
fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs img-tag with `args` in `dir`, failing the test if it takes longer than [`DEADLINE`].
fn run_bounded(dir: &Path, args: &[&str]) -> Output {
    wait_bounded(spawn(dir, args))
}

fn spawn(dir: &Path, args: &[&str]) -> Running {
    let owned: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    spawn_owned(dir, &owned)
}

/// Starts img-tag as `common::img_tag` runs it (the test bed's builder:
/// cleared environment), without waiting; [`DEADLINE`] counts from here.
fn spawn_owned(dir: &Path, args: &[String]) -> Running {
    Cmd::new(env!("CARGO_BIN_EXE_img-tag"))
        .args(args)
        .current_dir(dir)
        .env("DOCKER_CONFIG", dir.join(".no-docker-config"))
        .timeout(DEADLINE)
        .spawn()
}

/// Waits for `child` up to [`DEADLINE`]; the builder kills it and fails the
/// test with what it printed after that.
fn wait_bounded(child: Running) -> Output {
    child.wait().into()
}

/// Pushes a two-platform index at `tag`, each platform with a [`BIG_LAYER`]
/// layer of its own; returns its reference.
fn push_big_index(host: &str, repo: &str, tag: &str) -> String {
    let mut manifests = Vec::new();
    for (seed, architecture) in [(1u64, "amd64"), (2, "arm64")] {
        let layer = noise(seed, BIG_LAYER);
        let child_tag = format!("{tag}-{architecture}");
        push_image(host, repo, &child_tag, &layer);
        let digest = manifest_digest(host, repo, &child_tag);
        let (_, body) = http(
            "GET",
            &format!("http://{host}/v2/{repo}/manifests/{digest}"),
        );
        manifests.push(json!({
            "mediaType": OCI_MANIFEST,
            "digest": digest,
            "size": body.len(),
            "platform": {"os": "linux", "architecture": architecture},
        }));
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    put_manifest(host, repo, tag, OCI_INDEX, &index.to_string());
    format!("{host}/{repo}:{tag}")
}

/// Pushes a one-layer linux/amd64 OCI image with curl; returns its reference.
fn push_image(host: &str, repo: &str, tag: &str, layer: &[u8]) -> String {
    let layer = push_blob(host, repo, layer);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Labels": {"fixture": tag}},
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

/// `len` bytes that no two seeds share and nothing compresses.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn sha256_of(file: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(file)
        .output()
        .expect("sha256sum runs");
    let text = String::from_utf8_lossy(&output.stdout);
    format!(
        "sha256:{}",
        text.split_whitespace()
            .next()
            .expect("sha256sum prints a hash")
    )
}

/// `(status, body)` of a request to the registry API (HEAD: empty body).
fn http(method: &str, url: &str) -> (u16, Vec<u8>) {
    let accept = format!("Accept: {ACCEPT}");
    let mut args = vec!["-s", "-H", &accept, "-w", "\n%{http_code}"];
    if method == "HEAD" {
        args.push("-I");
    } else {
        args.extend(["-X", method]);
    }
    args.push(url);
    let output = Command::new(slipway_testbed::require("curl", "curl"))
        .args(&args)
        .output()
        .expect("curl runs");
    let text = output.stdout;
    let split = text
        .iter()
        .rposition(|b| *b == b'\n')
        .expect("curl printed the status");
    let status = String::from_utf8_lossy(&text[split + 1..])
        .trim()
        .parse()
        .expect("curl printed a status code");
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        text[..split].to_vec()
    };
    (status, body)
}

fn manifest_status(host: &str, repo: &str, reference: &str) -> u16 {
    http(
        "HEAD",
        &format!("http://{host}/v2/{repo}/manifests/{reference}"),
    )
    .0
}

/// The digest of the manifest at `reference`, computed from its bytes.
fn manifest_digest(host: &str, repo: &str, reference: &str) -> String {
    let (status, body) = http(
        "GET",
        &format!("http://{host}/v2/{repo}/manifests/{reference}"),
    );
    assert_eq!(status, 200, "`{host}/{repo}:{reference}` exists");
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("manifest");
    fs_err::write(&file, &body).expect("the manifest is written");
    sha256_of(&file)
}

/// Fails the test unless every tag of `repo` resolves to a manifest whose
/// config and layers (and, for an index, whose children and theirs) exist.
#[track_caller]
fn assert_every_tag_complete(host: &str, repo: &str) {
    let (status, body) = http("GET", &format!("http://{host}/v2/{repo}/tags/list"));
    if status == 404 {
        return; // No repository, so no tag.
    }
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let list: Value = serde_json::from_slice(&body).expect("the tag list is JSON");
    for tag in list["tags"].as_array().into_iter().flatten() {
        let tag = tag.as_str().expect("tags are strings");
        assert_manifest_complete(host, repo, tag, &format!("{host}/{repo}:{tag}"));
    }
}

#[track_caller]
fn assert_manifest_complete(host: &str, repo: &str, reference: &str, shown: &str) {
    let (status, body) = http(
        "GET",
        &format!("http://{host}/v2/{repo}/manifests/{reference}"),
    );
    assert_eq!(status, 200, "`{shown}` points at a missing manifest");
    let manifest: Value = serde_json::from_slice(&body).expect("the manifest is JSON");
    if let Some(children) = manifest["manifests"].as_array() {
        for child in children {
            let digest = child["digest"].as_str().expect("a child digest");
            assert_manifest_complete(host, repo, digest, &format!("{shown} -> {digest}"));
        }
        return;
    }
    let blobs = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().into_iter().flatten());
    for blob in blobs {
        let digest = blob["digest"].as_str().expect("a blob digest");
        let (status, _) = http("HEAD", &format!("http://{host}/v2/{repo}/blobs/{digest}"));
        assert_eq!(status, 200, "`{shown}` lacks blob `{digest}`");
    }
}

/// A registry failing in the middle of an apply, and again while img-tag
/// puts the moved tags back, said "`stable` not restored" without the
/// digest to restore. Now the message names the tag, its previous digest
/// and the command that restores it; the tag is then restored with it.
#[test]
fn a_tag_that_cannot_be_restored_is_named_with_its_digest_and_the_command() {
    let registry = Registry::start();
    let host = registry.host();
    let (old, _) =
        slipway_testbed::images::push_image(&host, "team/app", "stable", "amd64", Some("1111111"));
    let (new, _) = slipway_testbed::images::push_image(
        &host,
        "team/app",
        "candidate",
        "amd64",
        Some("2222222"),
    );
    // `latest` cannot be written, and the old manifest cannot be read back.
    let front = HttpFault::start(
        registry.addr(),
        vec![
            Fault::new("/manifests/latest", 100, 400).method("PUT"),
            Fault::new(&format!("/manifests/{old}"), 100, 400).method("GET"),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{}/team/app@{new}", front.host());
    let output = run_bounded(
        dir.path(),
        &["apply", &image, "--tag", "stable", "--tag", "latest"],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{text}");
    let command = format!("img-tag apply {}/team/app@{old} --tag stable", front.host());
    assert!(
        text.contains(&format!(
            "`stable` not restored to `{old}` (where it pointed before): "
        )) && text.contains(&format!("restore it with `{command}`")),
        "{text}"
    );
    // The command it gives works once the registry is healthy.
    let repaired = format!("{host}/team/app@{old}");
    let output = run_bounded(dir.path(), &["apply", &repaired, "--tag", "stable"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let skopeo = slipway_testbed::require("skopeo", "skopeo");
    let inspect = Command::new(skopeo)
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{host}/team/app:stable"))
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{inspect:?}");
    assert_eq!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        old,
        "`stable` points at its old digest again"
    );
}
