//! The chain without Rust: a no-change `slipway release --dry-run` on the
//! demo repository (the shipped program, tools beside it, nothing built)
//! side by side with `cargo xtask release --dry-run` from this checkout
//! (which asks cargo whether the tools are up to date first).

use std::path::Path;
use std::time::Duration;

use slipway_testbed::git::GitRepo;

use super::{Cmd, Figure, median};
use crate::{cargo, project_root};

pub(super) const NAME: &str = "chain: no-change `release --dry-run` on examples/demo";

pub(super) fn figures(
    bin_dir: &Path,
    runs: u32,
    only: Option<&str>,
) -> anyhow::Result<Vec<Figure>> {
    if only.is_some_and(|only| !NAME.contains(only)) {
        return Ok(Vec::new());
    }
    eprintln!("xtask bench: {NAME}");
    let repo = GitRepo::new();
    crate::demo::copy_tree(
        &project_root().join("examples/demo"),
        repo.path(),
        Path::new(""),
        &[],
    )?;
    repo.commit("demo");
    let dir = repo.path().display().to_string();
    let flags = ["release", "--env", "staging", "--dry-run", "--repo", &dir];
    let slipway = Cmd::new(bin_dir.join("slipway"), &flags);
    // `cargo xtask` as a user types it: without the variables `cargo run`
    // set for this bench, which a nested cargo must not see.
    let mut xtask_args = vec!["-u", "CARGO_MANIFEST_DIR", "-u", "CARGO_MANIFEST_PATH"];
    let cargo = cargo();
    xtask_args.extend([cargo.as_str(), "xtask"]);
    xtask_args.extend(flags);
    let mut xtask = Cmd::new("/usr/bin/env", &xtask_args);
    xtask.dir = Some(project_root());
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    slipway.time_once()?;
    xtask.time_once()?;
    for _ in 0..runs.clamp(1, 5) {
        ours.push(slipway.time_once()?);
        theirs.push(xtask.time_once()?);
    }
    let (ours, theirs) = (median(&mut ours), median(&mut theirs));
    Ok(vec![Figure {
        name: NAME.to_owned(),
        value: format!(
            "`slipway` {:.2} s; `cargo xtask` {:.2} s",
            ours.as_secs_f64(),
            theirs.as_secs_f64()
        ),
        goal: "`slipway` < 2 s".to_owned(),
        is_met: ours < Duration::from_secs(2),
    }])
}
