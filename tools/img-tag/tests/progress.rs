//! What `img-tag promote` shows people while it works: on stderr only, a
//! line per blob as it ends (outside a terminal: no bar animation in a
//! log) and a closing table per image; `--format json` carries the same
//! figures; stdout keeps its report, and `-q` silences stderr. The
//! terminal's byte bar is tested in slipway-core's progress module.

mod common;

use common::{img_tag, stderr, stdout};
use serde_json::{Value, json};
use slipway_testbed::Registry;
use slipway_testbed::cmd::Cmd;
use slipway_testbed::images::{push_blob, put_manifest};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MIB: usize = 1024 * 1024;

/// An image pushed to a registry: its reference and what it is made of.
struct Pushed {
    image: String,
    digest: String,
    config: (String, usize),
    layer: (String, usize),
}

/// Pushes a one-layer image whose layer is `layer_size` bytes.
fn push_image(host: &str, repository: &str, tag: &str, layer_size: usize) -> Pushed {
    let bytes: Vec<u8> = (0..layer_size).map(|i| (i * 31 % 251) as u8).collect();
    let layer = push_blob(host, repository, &bytes);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.0]},
    });
    let config = push_blob(host, repository, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.0, "size": layer.1}],
    });
    let digest = put_manifest(host, repository, tag, OCI_MANIFEST, &manifest.to_string());
    Pushed {
        image: format!("{host}/{repository}:{tag}"),
        digest,
        config,
        layer,
    }
}

/// `sha256:` and the first 12 hex digits, as progress lines name a blob.
fn short(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}

/// Stderr with what is not stable replaced: the timestamp that starts
/// each line by `[TS]`, durations (`850ms`, `1.2s`, `2m05s`) by `[TIME]`.
fn normalized(stderr: &str) -> Vec<String> {
    let timestamp = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ").expect("a valid regex");
    let duration = regex::Regex::new(r"\b(\d+ms|\d+\.\ds|\d+m\d\ds)\b").expect("a valid regex");
    stderr
        .lines()
        .map(|line| {
            let line = timestamp.replace(line, "[TS] ");
            duration.replace_all(&line, "[TIME]").into_owned()
        })
        .collect()
}

#[test]
fn a_cross_registry_promote_shows_each_blob_and_a_closing_table_on_stderr() {
    let source = Registry::start();
    let target = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let pushed = push_image(&source.host(), "team/app", "rc", 3 * MIB);
    let (config, layer) = (&pushed.config, &pushed.layer);
    let destination = format!("{}/mirror/app:rc", target.host());
    let bytes = config.1 + layer.1;

    let output = img_tag(
        dir.path(),
        &["promote", &pushed.image, &destination],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // Stdout is the report, as it always was.
    assert_eq!(
        stdout(&output),
        format!(
            "promoted {} -> {destination} {}\nblobs: 0 mounted, 2 copied ({bytes} bytes), 0 skipped\n",
            pushed.image, pushed.digest
        )
    );
    let lines = normalized(&stderr(&output));
    assert_eq!(lines.len(), 5, "{lines:#?}");
    // The two blobs move at once: their lines come in either order.
    let mut blobs = lines[..2].to_vec();
    blobs.sort();
    let mut expected = vec![
        format!("[TS] {}: {} B copied ([TIME])", short(&config.0), config.1),
        format!("[TS] {}: 3.00 MiB copied ([TIME])", short(&layer.0)),
    ];
    expected.sort();
    assert_eq!(blobs, expected);
    assert_eq!(
        lines[2..],
        [
            "[TS] image                mounted  copied  skipped     bytes  time".to_owned(),
            format!(
                "[TS] {}        0       2        0  3.00 MiB  [TIME]",
                short(&pushed.digest)
            ),
            "[TS] total                      0       2        0  3.00 MiB  [TIME]".to_owned(),
        ]
    );

    // A dry run says what would happen to each blob, and moves nothing.
    let output = img_tag(
        dir.path(),
        &[
            "promote",
            &pushed.image,
            &format!("{}/dry/app", target.host()),
            "--dry-run",
        ],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut blobs = normalized(&stderr(&output))[..2].to_vec();
    blobs.sort();
    let mut expected = vec![
        format!(
            "[TS] {}: {} B would be copied ([TIME])",
            short(&config.0),
            config.1
        ),
        format!(
            "[TS] {}: 3.00 MiB would be copied ([TIME])",
            short(&layer.0)
        ),
    ];
    expected.sort();
    assert_eq!(blobs, expected);

    // JSON carries the table's figures, besides the keys it always had.
    let elsewhere = format!("{}/other/app:rc", target.host());
    let output = img_tag(
        dir.path(),
        &["promote", &pushed.image, &elsewhere, "--format", "json"],
        &[],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mut report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let elapsed = report["elapsed_ms"].take();
    let image_elapsed = report["images"][0]["elapsed_ms"].take();
    assert!(elapsed.is_u64() && image_elapsed.is_u64(), "{report}");
    assert!(image_elapsed.as_u64() <= elapsed.as_u64(), "{report}");
    assert_eq!(
        report,
        json!({
            "source": pushed.image,
            "destination": elsewhere,
            "digest": pushed.digest,
            "blobs_mounted": 0,
            "blobs_copied": 2,
            "blobs_skipped": 0,
            "bytes_copied": bytes,
            "dry_run": false,
            "referrers_copied": 0,
            "referrer_tags_updated": 0,
            "images": [{
                "digest": pushed.digest,
                "platform": null,
                "referrer": false,
                "blobs_mounted": 0,
                "blobs_copied": 2,
                "blobs_skipped": 0,
                "bytes_copied": bytes,
                "elapsed_ms": null,
            }],
            "elapsed_ms": null,
        })
    );

    // Again, quietly: every blob is there already; stderr says nothing,
    // stdout is the same report.
    let output = img_tag(
        dir.path(),
        &["promote", &pushed.image, &destination, "-q"],
        &[],
        None,
    );
    output.assert(
        0,
        &format!(
            "promoted {} -> {destination} {}\nblobs: 0 mounted, 0 copied (0 bytes), 2 skipped\n",
            pushed.image, pushed.digest
        ),
        "",
    );
}

/// On a terminal (a pty from `script`, util-linux in Debian's bsdutils), blobs streamed
/// are drawn as byte bars (bytes of total), each giving way to its line
/// when done, with no timestamps; the table closes it.
#[test]
fn on_a_terminal_a_promote_draws_byte_bars() {
    let source = Registry::start();
    let target = Registry::start();
    let pushed = push_image(&source.host(), "team/app", "rc", 3 * MIB);
    let destination = format!("{}/mirror/app:rc", target.host());
    let command = format!(
        "{} promote {} {destination} >/dev/null",
        env!("CARGO_BIN_EXE_img-tag"),
        pushed.image
    );
    let output = Cmd::new(slipway_testbed::require("script", "bsdutils"))
        .args(["-qefc", &command, "/dev/null"])
        .env("TERM", "xterm")
        .run();
    assert_eq!(output.code(), Some(0), "{}", output.stdout_str());
    let screen = output.stdout_str();
    let layer = short(&pushed.layer.0);
    let bar = regex::Regex::new(&format!(
        r"{layer} \[[=> ]{{30}}\] [0-9.]+ [KM]?i?B/3\.00 MiB "
    ))
    .expect("a valid regex");
    assert!(bar.is_match(&screen), "no byte bar drawn: {screen:?}");
    assert!(
        screen.contains(&format!("{layer} ✓ 3.00 MiB copied (")),
        "{screen:?}"
    );
    assert!(screen.contains("total "), "{screen:?}");
    let timestamp = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").expect("a valid regex");
    assert!(!timestamp.is_match(&screen), "{screen:?}");
}

/// In a CI that runs steps in a pseudo-terminal (Buildkite here; CircleCI
/// too), the log gets one timestamped line per blob, as in any CI: no bar
/// redrawn with `\r` or cursor moves.
#[test]
fn in_a_ci_with_a_terminal_a_promote_prints_lines_not_bars() {
    let source = Registry::start();
    let target = Registry::start();
    let pushed = push_image(&source.host(), "team/app", "rc", 3 * MIB);
    let destination = format!("{}/mirror/app:rc", target.host());
    let command = format!(
        "{} promote {} {destination} >/dev/null",
        env!("CARGO_BIN_EXE_img-tag"),
        pushed.image
    );
    let output = Cmd::new(slipway_testbed::require("script", "bsdutils"))
        .args(["-qefc", &command, "/dev/null"])
        .env("TERM", "xterm")
        .env("BUILDKITE", "true")
        .run();
    assert_eq!(output.code(), Some(0), "{}", output.stdout_str());
    // The pty turns each `\n` into `\r\n`; any other `\r` is a redraw.
    let screen = output.stdout_str().replace("\r\n", "\n");
    assert!(!screen.contains('\r'), "{screen:?}");
    assert!(!screen.contains('\u{1b}'), "{screen:?}");
    let layer = short(&pushed.layer.0);
    let line = regex::Regex::new(&format!(
        r"(?m)^\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ {layer}: 3\.00 MiB copied \("
    ))
    .expect("a valid regex");
    assert!(line.is_match(&screen), "no line for the layer: {screen:?}");
}
