//! `img-build` (issue #5): Slipway's overhead over the bare `docker build`
//! of the same image (goal: under 5 % of wall time, ratio ≤ 1.05), and
//! three independent images built with `--jobs 3` against the same three
//! `docker build`s one after another (goal: faster, ratio < 1.0).
//!
//! And issue #17's multi-platform registry cache: a code-only change to a
//! two-platform image (`FROM scratch`, a 32 MiB dependency layer, a small
//! code layer), built on a daemon with no cache or images left (`docker
//! builder prune -af`, `docker image prune -af`: a fresh daemon's state) so
//! only each platform's registry cache can help, against the cold build of
//! the same image (`--no-cache`; goal: ratio ≤ 0.3).
//!
//! Both sides use the test bed's dockerd through Debian's 20.10 client with
//! BuildKit. Each run starts with `docker builder prune -af` on both sides,
//! so every build does its work (a busybox shell loop, CPU-bound) instead of
//! answering from the cache; the prune costs both sides the same.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};
use slipway_testbed::{Dockerd, Registry};
use xshell::Shell;

use super::{Cmd, Comparison, Goal};

const OVERHEAD: &str = "img-build: one image, vs bare docker build";
const PARALLEL: &str = "img-build: 3 independent images --jobs 3, vs 3 docker builds in a row";
const MULTI_ARCH: &str =
    "img-build: code-only change, 2 platforms, pruned daemon with registry cache, vs cold build";
const IMAGES: [&str; 3] = ["one", "two", "three"];

/// The services and the fixture project; they go away when this drops, so
/// the caller keeps it until every comparison is measured.
pub(super) struct Services {
    _registry: Registry,
    _dockerd: Dockerd,
}

/// Starts a registry and dockerd, writes the fixture project and appends
/// the comparisons; does nothing when `--only` names none of them.
pub(super) fn comparisons(
    _sh: &Shell,
    bin_dir: &Path,
    only: Option<&str>,
    comparisons: &mut Vec<Comparison>,
) -> anyhow::Result<Option<Services>> {
    if ![OVERHEAD, PARALLEL, MULTI_ARCH]
        .iter()
        .any(|name| only.is_none_or(|only| name.contains(only)))
    {
        return Ok(None);
    }
    eprintln!("xtask bench: starting a registry and dockerd for img-build");
    let registry = Registry::start();
    let dockerd = Dockerd::start();
    let busybox = dockerd.base_image(&registry);
    let project = dockerd.temp_dir().join("bench-img-build");
    write_project(&project, &registry.host(), &busybox)?;

    let docker = dockerd.client_path().display().to_string();
    let env = vec![
        ("DOCKER_HOST".to_owned(), dockerd.host()),
        ("DOCKER_BUILDKIT".to_owned(), "1".to_owned()),
        (
            "DOCKER_CONFIG".to_owned(),
            dockerd.temp_dir().join("client").display().to_string(),
        ),
        // Fixed labels, so every run builds the same image.
        ("SOURCE_DATE_EPOCH".to_owned(), "1700000000".to_owned()),
    ];
    let img_build = bin_dir.join("img-build").display().to_string();
    let prune = format!("{docker} builder prune -af >/dev/null");
    // Logs outside the project (which must stay a clean tree), removed with dockerd's temp dir.
    let logs = dockerd.temp_dir().join("bench-img-build-logs");
    let logs = logs.display();
    let ours_for = |only: &str, jobs: &str| {
        format!(
            "set -e; {prune}; {img_build} --only {only} --jobs {jobs} --backend buildkit \
             --docker {docker} --network none --log-dir {logs} -q >/dev/null"
        )
    };
    let bare = |name: &str| {
        format!(
            "{docker} build -q --network none --build-arg BUSYBOX={busybox} \
             -t {}/demo/{name}:bare -f {name}.Dockerfile . >/dev/null",
            registry.host()
        )
    };
    let side = |label: String, script: String| {
        let mut cmd = Cmd::new("sh", &["-c", &script]);
        cmd.label = label;
        cmd.env = env.clone();
        cmd.dir = Some(project.clone());
        cmd
    };

    comparisons.push(Comparison {
        name: OVERHEAD.to_owned(),
        ours: side(
            "img-build --only one --backend buildkit".to_owned(),
            ours_for("one", "1"),
        ),
        theirs: side(
            "docker build -t …/one -f one.Dockerfile .".to_owned(),
            format!("set -e; {prune}; {}", bare("one")),
        ),
        goal: Goal::RatioAtMost(1.05),
    });
    let in_a_row: Vec<String> = IMAGES.iter().map(|name| bare(name)).collect();
    comparisons.push(Comparison {
        name: PARALLEL.to_owned(),
        ours: side(
            "img-build --only one,two,three --jobs 3".to_owned(),
            ours_for(&IMAGES.join(","), "3"),
        ),
        theirs: side(
            "docker build one; docker build two; docker build three".to_owned(),
            format!("set -e; {prune}; {}", in_a_row.join("; ")),
        ),
        // "Beats" them: anything under 1.0.
        goal: Goal::RatioAtMost(0.99),
    });
    // Everything local goes, as on a fresh daemon: only the registry is left.
    let fresh = format!("{prune}; {docker} image prune -af >/dev/null");
    let multi = |tag: &str, extra: &str| {
        format!(
            "{img_build} --only multi --push --tag type=raw,value={tag} {extra} --backend buildkit \
             --docker {docker} --network none --log-dir {logs} -q >/dev/null"
        )
    };
    comparisons.push(Comparison {
        name: MULTI_ARCH.to_owned(),
        ours: side(
            "change code.txt; img-build --only multi --push (cache from edge-<platform>)"
                .to_owned(),
            format!(
                "set -e; {fresh}; date +%s%N > code.txt; \
                 git -c user.name=bench -c user.email=bench@slipway.invalid commit -qam code; {}",
                multi("edge", "")
            ),
        ),
        theirs: side(
            "img-build --only multi --push --no-cache".to_owned(),
            format!("set -e; {fresh}; {}", multi("cold", "--no-cache")),
        ),
        goal: Goal::RatioAtMost(0.3),
    });
    Ok(Some(Services {
        _registry: registry,
        _dockerd: dockerd,
    }))
}

/// A committed git project with three independent images, each a CPU-bound
/// `RUN` on busybox.
fn write_project(dir: &Path, registry: &str, busybox: &str) -> anyhow::Result<()> {
    fs_err::create_dir_all(dir)?;
    let mut toml = format!("[project]\nregistry = \"{registry}/demo\"\n\n");
    for (n, name) in IMAGES.iter().enumerate() {
        toml.push_str(&format!(
            "[images.{name}]\ndockerfile = \"{name}.Dockerfile\"\nbuild_args = {{ BUSYBOX = \"{busybox}\" }}\n\n"
        ));
        fs_err::write(
            dir.join(format!("{name}.Dockerfile")),
            format!(
                "ARG BUSYBOX\nFROM ${{BUSYBOX}}\n\
                 RUN i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo {n} > /n\n"
            ),
        )?;
    }
    // Two platforms, `FROM scratch` (no emulation needed): a big layer that
    // a code change leaves alone, then the code.
    toml.push_str(&format!(
        "[images.multi]\ndockerfile = \"multi.Dockerfile\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\
         cache_from = [\"{registry}/demo/multi:edge\"]\ncache_to = [\"type=inline\"]\n\n"
    ));
    fs_err::write(
        dir.join("multi.Dockerfile"),
        "FROM scratch\nCOPY deps.bin /deps.bin\nCOPY code.txt /code.txt\n",
    )?;
    let mut deps = vec![0u8; 32 << 20];
    fs_err::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut deps))
        .context("cannot read /dev/urandom for the dependency layer")?;
    fs_err::write(dir.join("deps.bin"), deps)?;
    fs_err::write(dir.join("code.txt"), "0\n")?;
    toml.push_str("[tags]\nrules = [\"type=sha\"]\n");
    fs_err::write(dir.join("slipway.toml"), toml)?;
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@slipway.invalid",
            "commit",
            "-qm",
            "bench",
        ],
    ] {
        git(dir, args)?;
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot run git {args:?}"))?;
    if !output.status.success() {
        bail!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
