//! `img-build` (issue #5): Slipway's overhead over the bare `docker build`
//! of the same image (goal: under 5 % of wall time, ratio ≤ 1.05), and
//! three independent images built with `--jobs 3` against the same three
//! `docker build`s one after another (goal: faster, ratio < 1.0).
//!
//! And issue #17's multi-platform registry cache: a code-only change to an
//! image for linux/amd64 and linux/arm64, each build on a fresh dockerd (a
//! new data root, started before the timed run: a fresh CI runner) so only
//! the registry can help. The image's expensive part is a dependency stage
//! a code change leaves alone: for amd64 a `RUN` on busybox (a CPU-bound
//! loop, then generated files), standing for compilation; arm64 cannot `RUN`
//! here (no emulation) and no honest expensive step exists without one, so
//! its dependency stage is `FROM scratch` + `COPY`. The warm build reads
//! each platform's cache (img-build's `-<os>-<arch>` refs) against
//! - the cold build of the same image with an empty cache repository
//!   (goal: ratio ≤ 0.3);
//! - what a user would script instead: one `docker build --cache-from` of
//!   the multi-platform tag per platform, pushes, `docker manifest create`
//!   and `push` (reported).
//!
//! Both sides use the test bed's dockerd through Debian's 20.10 client with
//! BuildKit. Each run starts with `docker builder prune -af` on both sides,
//! so every build does its work (a busybox shell loop, CPU-bound) instead of
//! answering from the cache; the prune costs both sides the same.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail};
use slipway_testbed::{Dockerd, Registry};
use xshell::Shell;

use super::{Cmd, Comparison, Goal, Prepare};

const OVERHEAD: &str = "img-build: one image, vs bare docker build";
const PARALLEL: &str = "img-build: 3 independent images --jobs 3, vs 3 docker builds in a row";
const MULTI_ARCH: &str =
    "img-build: code-only change, 2 platforms, fresh daemon, registry cache, vs cold build";
const MULTI_ARCH_USER: &str = "img-build: code-only change, 2 platforms, fresh daemon, registry cache, \
     vs docker build --cache-from the multi-platform tag";
/// Iterations of the busybox loop that stands for compilation in the amd64
/// dependency stage (several seconds here: the cold build took 13 s).
const DEPS_LOOP: u32 = 6_000_000;
const IMAGES: [&str; 3] = ["one", "two", "three"];

/// The services and the fixture project; they go away when this drops, so
/// the caller keeps it until every comparison is measured.
pub(super) struct Services {
    _registry: Registry,
    _dockerd: Dockerd,
    _fresh: FreshDockerd,
}

/// A dockerd replaced by a new one (new data root) before each run; the
/// scripts read its `DOCKER_HOST` from `host_file`.
#[derive(Clone)]
struct FreshDockerd {
    current: Arc<Mutex<Option<Dockerd>>>,
    host_file: PathBuf,
}

impl FreshDockerd {
    fn restart(&self) -> anyhow::Result<()> {
        let mut current = self
            .current
            .lock()
            .map_err(|_| anyhow::anyhow!("a previous restart panicked"))?;
        // The old daemon stops (by PID) and its data root goes before the
        // new one starts.
        drop(current.take());
        let dockerd = Dockerd::start();
        fs_err::write(&self.host_file, dockerd.host())?;
        *current = Some(dockerd);
        Ok(())
    }
}

/// Starts a registry and dockerd, writes the fixture project and appends
/// the comparisons; does nothing when `--only` names none of them.
pub(super) fn comparisons(
    _sh: &Shell,
    bin_dir: &Path,
    only: Option<&str>,
    comparisons: &mut Vec<Comparison>,
) -> anyhow::Result<Option<Services>> {
    if ![OVERHEAD, PARALLEL, MULTI_ARCH, MULTI_ARCH_USER]
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
    // Each run of the multi-platform rows starts on a new dockerd.
    let fresh = FreshDockerd {
        current: Arc::new(Mutex::new(None)),
        host_file: dockerd.temp_dir().join("fresh-dockerd-host"),
    };
    let restart = {
        let fresh = fresh.clone();
        Prepare(Arc::new(move || fresh.restart()))
    };
    let on_fresh = format!(
        "export DOCKER_HOST=\"$(cat {})\"",
        fresh.host_file.display()
    );
    let host = registry.host();
    // `--force-tags`: the sides take turns at `edge` on purpose, and the
    // user's script pushes images without a revision label.
    let multi = |tag: &str, extra: &str| {
        format!(
            "{img_build} --only multi --push --force-tags --tag type=raw,value={tag} {extra} --backend buildkit \
             --docker {docker} --network none --log-dir {logs} -q >/dev/null"
        )
    };
    let fresh_side = |label: &str, script: String| {
        let mut cmd = side(label.to_owned(), format!("set -e; {on_fresh}; {script}"));
        cmd.prepare = Some(restart.clone());
        cmd
    };
    // A repository nobody pushed to: every platform's cache misses.
    let cold = multi(
        "edge",
        &format!("--cache-from {host}/demo/empty-$(date +%s%N):edge"),
    );
    // Docker 20.10's BuildKit writes an inline cache that the next build
    // misses when the build's own layers came from the cache, so rebuilds in
    // a row alternate between hit and miss (docs/img-build.md). Each side
    // that reads a cache therefore gets, untimed, a full build pushed to
    // `edge` from a fresh daemon first: every timed rebuild is the first one
    // after a full build, on another fresh daemon.
    let seeded = {
        let fresh = fresh.clone();
        let seed = side(
            "full build of edge".to_owned(),
            format!("set -e; {on_fresh}; {cold}"),
        );
        Prepare(Arc::new(move || {
            fresh.restart()?;
            seed.time_once()?;
            fresh.restart()
        }))
    };
    let warm = {
        let mut cmd = fresh_side(
            "change code.txt; img-build --only multi --push (cache from edge-<os>-<arch>)",
            format!(
                "date +%s%N > code.txt; \
                 git -c user.name=bench -c user.email=bench@slipway.invalid commit -qam code; {}",
                multi("edge", "")
            ),
        );
        cmd.prepare = Some(seeded.clone());
        cmd
    };
    comparisons.push(Comparison {
        name: MULTI_ARCH.to_owned(),
        ours: warm.clone(),
        theirs: fresh_side(
            "img-build --only multi --push --cache-from <empty repository>",
            cold.clone(),
        ),
        goal: Goal::RatioAtMost(0.3),
    });
    // What a user scripts without per-platform refs: every platform's build
    // reads the cache of the tag the team publishes, a multi-platform index.
    let user_build = |arch: &str| {
        format!(
            "{docker} build -q --platform linux/{arch} --network none --build-arg BUSYBOX={busybox} \
             --build-arg BUILDKIT_INLINE_CACHE=1 --cache-from {host}/demo/multi:edge \
             -t {host}/demo/multi:edge-linux-{arch} -f multi.Dockerfile . >/dev/null; \
             {docker} push -q {host}/demo/multi:edge-linux-{arch} >/dev/null"
        )
    };
    let mut user = fresh_side(
        "change code.txt; docker build --cache-from …/multi:edge per platform, push, \
         docker manifest create/push",
        format!(
            "date +%s%N > code.txt; {}; {}; \
             {docker} manifest rm {host}/demo/multi:edge >/dev/null 2>&1 || true; \
             {docker} manifest create --insecure {host}/demo/multi:edge \
             {host}/demo/multi:edge-linux-amd64 {host}/demo/multi:edge-linux-arm64 >/dev/null; \
             {docker} manifest push --insecure --purge {host}/demo/multi:edge >/dev/null; \
             git checkout -q code.txt",
            user_build("amd64"),
            user_build("arm64")
        ),
    );
    user.prepare = Some(seeded);
    comparisons.push(Comparison {
        name: MULTI_ARCH_USER.to_owned(),
        ours: warm,
        theirs: user,
        goal: Goal::Report,
    });
    Ok(Some(Services {
        _registry: registry,
        _dockerd: dockerd,
        _fresh: fresh,
    }))
}

/// A committed git project with three independent images, each a CPU-bound
/// `RUN` on busybox, and the two-platform image `multi`.
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
    // Two platforms; a dependency stage per platform that a code change
    // leaves alone, then the code. Only amd64 can `RUN` here.
    toml.push_str(&format!(
        "[images.multi]\ndockerfile = \"multi.Dockerfile\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\
         build_args = {{ BUSYBOX = \"{busybox}\" }}\n\
         cache_from = [\"{registry}/demo/multi:edge\"]\ncache_to = [\"type=inline\"]\n\n"
    ));
    fs_err::write(
        dir.join("multi.Dockerfile"),
        format!(
            "ARG BUSYBOX\n\
             FROM ${{BUSYBOX}} AS deps-amd64\n\
             RUN i=0; while [ $i -lt {DEPS_LOOP} ]; do i=$((i+1)); done; \
             busybox mkdir /deps && busybox seq 1 100000 > /deps/index\n\
             FROM scratch AS deps-arm64\n\
             COPY deps-arm64.txt /deps/index\n\
             FROM deps-${{TARGETARCH}}\n\
             COPY code.txt /code.txt\n"
        ),
    )?;
    fs_err::write(dir.join("deps-arm64.txt"), "arm64 dependencies\n")?;
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
