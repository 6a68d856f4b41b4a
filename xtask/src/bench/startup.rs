//! Start-up cost of each tool: `--version` against `true`, the physical
//! floor of one process spawn.

use std::path::Path;

use anyhow::bail;

use super::{Cmd, Comparison, Goal};
use crate::TOOLS;

pub(super) fn comparisons(bin_dir: &Path) -> anyhow::Result<Vec<Comparison>> {
    let floor = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .find(|path| Path::new(path).exists());
    let Some(floor) = floor else {
        bail!("no `true` binary in /bin or /usr/bin to measure a bare process spawn");
    };
    Ok(TOOLS
        .iter()
        .map(|tool| Comparison {
            name: format!("start-up: {tool}"),
            ours: Cmd::new(bin_dir.join(tool), &["--version"]),
            theirs: Cmd::new(floor, &[]),
            goal: Goal::Report,
        })
        .collect())
}
