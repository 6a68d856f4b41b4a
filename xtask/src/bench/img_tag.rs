//! `img-tag apply` (issue #4): retagging an image of ~200 MB of random layer
//! data against `skopeo copy` (goal: ratio ≤ 1.0) and against
//! `docker pull && docker tag && docker push` (goal: ≥ 20× faster, ratio
//! ≤ 0.05), and ten tags applied in one call against ten `skopeo copy`s.
//!
//! The services are the test bed's (a registry and a private dockerd), up
//! for the whole run. The random layer is made once under
//! target/bench-img-tag and reused by later runs. Two images share that
//! layer, `:a` and `:c` (different labels, so different digests); each side
//! of a pair moves the same tags to its own image, so every run of either
//! side really moves a tag instead of finding it in place.

use std::path::{Path, PathBuf};

use slipway_testbed::{Dockerd, Registry};
use xshell::Shell;

use super::{Cmd, Comparison, Goal, run_to_end, which};

const LAYER_BYTES: usize = 200 * 1024 * 1024;
const RETAG_SKOPEO: &str = "img-tag: retag a 200 MB image, vs skopeo copy";
const RETAG_DOCKER: &str = "img-tag: retag a 200 MB image, vs docker pull, tag, push";
const TEN_TAGS: &str = "img-tag: 10 tags in one call, vs 10 skopeo copies";

/// The services the comparisons run against; they stop when this drops, so
/// the caller keeps it until every comparison is measured.
pub(super) struct Services {
    _registry: Registry,
    _dockerd: Dockerd,
}

/// Starts the services, pushes the images and appends the comparisons to
/// `comparisons`; does nothing (and starts nothing) when `--only` names
/// none of them.
pub(super) fn comparisons(
    _sh: &Shell,
    bin_dir: &Path,
    only: Option<&str>,
    comparisons: &mut Vec<Comparison>,
) -> anyhow::Result<Option<Services>> {
    let names = [RETAG_SKOPEO, RETAG_DOCKER, TEN_TAGS];
    if !names
        .iter()
        .any(|name| only.is_none_or(|only| name.contains(only)))
    {
        return Ok(None);
    }
    let layer = random_layer()?;
    eprintln!("xtask bench: starting a registry and dockerd, pushing the 200 MB image");
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let repository = format!("{}/bench/big", registry.host());
    for (tag, label) in [("a", "a"), ("c", "c")] {
        build_and_push(&dockerd, &layer, &format!("{repository}:{tag}"), label)?;
    }
    let img_tag = bin_dir.join("img-tag");
    let skopeo = which("skopeo")?;
    let docker_env = vec![
        ("DOCKER_HOST".to_owned(), dockerd.host()),
        (
            "DOCKER_CONFIG".to_owned(),
            dockerd.temp_dir().join("client").display().to_string(),
        ),
    ];

    let ours = Cmd::new(
        &img_tag,
        &["apply", &format!("{repository}:a"), "--tag", "b"],
    );
    comparisons.push(Comparison {
        name: RETAG_SKOPEO.to_owned(),
        ours: ours.clone(),
        theirs: Cmd::new(
            &skopeo,
            &[
                "copy",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{repository}:c"),
                &format!("docker://{repository}:b"),
            ],
        ),
        goal: Goal::RatioAtMost(1.0),
    });

    let docker = dockerd.client_path().display().to_string();
    let script = format!(
        "set -e; {docker} pull -q {repository}:c >/dev/null; {docker} tag {repository}:c {repository}:b; \
         {docker} push {repository}:b >/dev/null; {docker} image rm -f {repository}:c {repository}:b >/dev/null"
    );
    let mut theirs = Cmd::new("sh", &["-c", &script]);
    theirs.label = "docker pull && docker tag && docker push".to_owned();
    theirs.env = docker_env;
    comparisons.push(Comparison {
        name: RETAG_DOCKER.to_owned(),
        ours,
        theirs,
        goal: Goal::RatioAtMost(0.05),
    });

    let tags: Vec<String> = (1..=10).map(|n| format!("t{n}")).collect();
    let mut args = vec!["apply".to_owned(), format!("{repository}:a")];
    for tag in &tags {
        args.push("--tag".to_owned());
        args.push(tag.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut ours = Cmd::new(&img_tag, &args);
    ours.label = format!("img-tag apply {repository}:a --tag t1 … --tag t10");
    let script = format!(
        "set -e; for t in {}; do {} copy -q --src-tls-verify=false --dest-tls-verify=false \
         docker://{repository}:c docker://{repository}:$t; done",
        tags.join(" "),
        skopeo.display()
    );
    let mut theirs = Cmd::new("sh", &["-c", &script]);
    theirs.label = "for t in t1 … t10; do skopeo copy …:c …:$t; done".to_owned();
    comparisons.push(Comparison {
        name: TEN_TAGS.to_owned(),
        ours,
        theirs,
        goal: Goal::Report,
    });
    Ok(Some(Services {
        _registry: registry,
        _dockerd: dockerd,
    }))
}

/// target/bench-img-tag/layer.bin: 200 MB from the system's random source,
/// made once.
fn random_layer() -> anyhow::Result<PathBuf> {
    let dir = crate::target_dir().join("bench-img-tag");
    let layer = dir.join("layer.bin");
    let is_ready = fs_err::metadata(&layer).is_ok_and(|m| m.len() == LAYER_BYTES as u64);
    if !is_ready {
        eprintln!("xtask bench: writing {} (once)", layer.display());
        fs_err::create_dir_all(&dir)?;
        let mut random = fs_err::File::open("/dev/urandom")?;
        let partial = dir.join("layer.bin.partial");
        let mut out = fs_err::File::create(&partial)?;
        std::io::copy(
            &mut std::io::Read::take(&mut random, LAYER_BYTES as u64),
            &mut out,
        )?;
        fs_err::rename(&partial, &layer)?;
    }
    Ok(layer)
}

/// `FROM scratch`, the layer, a label; built by the bench dockerd and pushed.
fn build_and_push(dockerd: &Dockerd, layer: &Path, image: &str, label: &str) -> anyhow::Result<()> {
    let context = dockerd.temp_dir().join(format!("bench-context-{label}"));
    fs_err::create_dir_all(&context)?;
    let copy = context.join("layer.bin");
    if fs_err::hard_link(layer, &copy).is_err() {
        fs_err::copy(layer, &copy)?;
    }
    fs_err::write(
        context.join("Dockerfile"),
        format!("FROM scratch\nCOPY layer.bin /layer.bin\nLABEL bench.variant={label}\n"),
    )?;
    run_to_end(
        dockerd
            .docker()
            .args(["build", "--network=none", "-q", "-t", image])
            .arg(&context),
    )?;
    run_to_end(dockerd.docker().args(["push", image]))?;
    // The retag benchmarks pull from the registry, never from this cache:
    // BuildKit's cache would keep the layer, and `docker pull` would reuse it.
    run_to_end(dockerd.docker().args(["image", "rm", "-f", image]))?;
    run_to_end(dockerd.docker().args(["builder", "prune", "-af"]))
}
