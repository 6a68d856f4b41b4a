//! `image-stale-check` (issue #8): the pre-push check of 4 images against
//! the local registry (goal: under 200 ms wall cold, under 50 ms with a
//! warm label cache), side by side with `skopeo inspect` of the same 4
//! images, which reads the same manifests and config blobs.
//!
//! The services (a test-bed registry, and a dockerd that imports and
//! pushes 4 tiny labelled images) stay up for the whole run; the project
//! is a test-bed git repository with a slipway.toml of 4 images and a few
//! commits after the one the images were built from, so the check walks
//! real history: two images are stale, two fresh.

use std::path::{Path, PathBuf};
use std::process::Command;

use slipway_testbed::git::GitRepo;
use slipway_testbed::{Dockerd, Registry};
use xshell::Shell;

use super::{Cmd, Comparison, Goal, run_to_end, which};

const COLD: &str = "image-stale-check: pre-push check of 4 images, no cache (goal: under 200 ms), vs 4 skopeo inspect";
const WARM: &str = "image-stale-check: pre-push check of 4 images, warm cache (goal: under 50 ms), vs 4 skopeo inspect";
const IMAGES: [&str; 4] = ["base", "app", "worker", "migrator"];

/// The services and the project the comparisons run against; they go away
/// when this drops, so the caller keeps it until every comparison is measured.
pub(super) struct Services {
    _registry: Registry,
    _dockerd: Dockerd,
    _repo: GitRepo,
}

/// Starts the services, builds the project, pushes the images and appends
/// the comparisons to `comparisons`; does nothing (and starts nothing) when
/// `--only` names none of them.
pub(super) fn comparisons(
    _sh: &Shell,
    bin_dir: &Path,
    only: Option<&str>,
    comparisons: &mut Vec<Comparison>,
) -> anyhow::Result<Option<Services>> {
    if ![COLD, WARM]
        .iter()
        .any(|name| only.is_none_or(|only| name.contains(only)))
    {
        return Ok(None);
    }
    eprintln!("xtask bench: starting a registry and dockerd for image-stale-check");
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let host = registry.host();
    let repo = project(&host);
    let built = repo.head();
    let tar = tiny_rootfs(&crate::target_dir().join("bench-image-stale-check"))?;
    for image in IMAGES {
        let reference = format!("{host}/demo/{image}:main");
        run_to_end(
            dockerd
                .docker()
                .args([
                    "import",
                    "--change",
                    &format!("LABEL org.opencontainers.image.revision={built}"),
                ])
                .arg(&tar)
                .arg(&reference),
        )?;
        run_to_end(dockerd.docker().args(["push", "-q", &reference]))?;
    }
    // History after the build: one image's paths, one through `depends_on`,
    // and unrelated files.
    for (path, message) in [
        ("README.md", "docs: readme"),
        ("worker/main.rs", "feat(worker): change"),
        ("docs/notes.md", "docs: notes"),
        ("base/Dockerfile", "feat(base): change"),
    ] {
        repo.write(path, format!("{message}\n"));
        repo.commit(message);
    }

    let tool = bin_dir.join("image-stale-check");
    let mut cold = Cmd::new(&tool, &["--hook", "--rev", "HEAD", "--no-cache"]);
    cold.dir = Some(repo.path().to_owned());
    let mut warm = Cmd::new(&tool, &["--hook", "--rev", "HEAD"]);
    warm.dir = Some(repo.path().to_owned());
    let skopeo = which("skopeo")?;
    let script = IMAGES
        .iter()
        .map(|image| {
            format!(
                "{} inspect --tls-verify=false docker://{host}/demo/{image}:main >/dev/null",
                skopeo.display()
            )
        })
        .collect::<Vec<_>>()
        .join(" && ");
    let mut theirs = Cmd::new("sh", &["-c", &script]);
    theirs.label =
        "skopeo inspect --tls-verify=false docker://…/demo/{base,app,worker,migrator}:main"
            .to_owned();
    comparisons.push(Comparison {
        name: COLD.to_owned(),
        ours: cold,
        theirs: theirs.clone(),
        goal: Goal::RatioAtMost(1.0),
    });
    comparisons.push(Comparison {
        name: WARM.to_owned(),
        ours: warm,
        theirs,
        goal: Goal::RatioAtMost(1.0),
    });
    Ok(Some(Services {
        _registry: registry,
        _dockerd: dockerd,
        _repo: repo,
    }))
}

/// A project of 4 images (`app` and `migrator` depend on `base`) pushed to
/// `host/demo`, with one commit.
fn project(host: &str) -> GitRepo {
    let repo = GitRepo::new();
    repo.write(
        "slipway.toml",
        format!(
            "[project]\nname = \"demo\"\nregistry = \"{host}/demo\"\n\n\
             [rebuild_all]\npaths = [\"Cargo.lock\"]\n\n\
             [images.base]\npaths = [\"base/**\"]\n\n\
             [images.app]\npaths = [\"app/**\"]\ndepends_on = [\"base\"]\n\n\
             [images.worker]\npaths = [\"worker/**\"]\n\n\
             [images.migrator]\npaths = [\"migrations/**\"]\ndepends_on = [\"base\"]\n"
        ),
    );
    for path in [
        "Cargo.lock",
        "base/Dockerfile",
        "app/main.rs",
        "worker/main.rs",
        "migrations/001.sql",
        "README.md",
    ] {
        repo.write(path, "initial\n");
    }
    repo.commit("initial");
    repo
}

/// A tar of one small file in `dir`, for `docker import`.
fn tiny_rootfs(dir: &Path) -> anyhow::Result<PathBuf> {
    fs_err::create_dir_all(dir)?;
    fs_err::write(dir.join("hello"), "hello\n")?;
    let tar = dir.join("rootfs.tar");
    run_to_end(
        Command::new("tar")
            .arg("-C")
            .arg(dir)
            .arg("-cf")
            .arg(&tar)
            .arg("hello"),
    )?;
    Ok(tar)
}
