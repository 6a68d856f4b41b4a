//! What every deploy target that is not reached over SSH shares: the images
//! pinned to `repo@sha256:…` before anything is touched ([`images`]), the
//! readiness gate ([`ready`]), and the flow of a deploy, a rollback and a
//! listing of releases over a [`Target`] ([`flow`]) — lock, apply, wait,
//! roll back on failure, record — with the report every deploy tool prints
//! ([`report`]).
//!
//! The records and the report are ssh-deploy's contract types
//! (`slipway_contract::ssh_deploy`), so the chain reads every deploy tool
//! the same way; a target is one "host" of that report (`swarm:demo-dev`,
//! `command:prod`).
//!
//! This crate never prints and parses no flags: swarm-deploy and cmd-deploy
//! (and kube-deploy) implement [`Target`] and call [`flow`].

pub mod flow;
pub mod images;
pub mod ready;
pub mod report;
pub mod signals;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use slipway_contract::ssh_deploy::{Release, ReleaseResult};

/// A deploy target: what swarm-deploy, kube-deploy and cmd-deploy each
/// implement. Every method may block; each bounds its own waits.
pub trait Target {
    /// What the report names as its one host: `swarm:demo-dev`, `command:prod`.
    fn name(&self) -> String;

    /// Takes the env's lock, waiting at most `wait` for another deploy's;
    /// the lock is held until the returned guard drops, and must not
    /// outlive a killed process for long (a lease, or a lock the kernel
    /// drops with the process).
    fn lock(&mut self, who: &Identity, wait: Duration) -> anyhow::Result<Box<dyn LockGuard>>;

    /// Every release recorded for the env, oldest first.
    fn history(&self) -> anyhow::Result<Vec<Release>>;

    /// Records `release` (a new one, or one whose result changed); keeps
    /// the newest `keep` records and the newest deployed one ([`prunable`]).
    fn record(&mut self, release: &Release, keep: u32) -> anyhow::Result<()>;

    /// Deploys `release`'s images and waits until the target has converged
    /// (bounded); an error means the deploy failed.
    fn apply(&mut self, release: &Release) -> anyhow::Result<()>;

    /// Puts `previous` back after `failed` did not become ready: by
    /// default, applies `previous` again.
    fn restore(&mut self, failed: &Release, previous: &Release) -> anyhow::Result<()> {
        let _ = failed;
        self.apply(previous)
    }

    /// The exact commands [`Target::apply`] would run for `release`, for
    /// `--dry-run`, one per line, shell-quoted.
    fn commands(&self, release: &Release) -> Vec<String>;

    /// The environment the commands would get besides the runner's, for
    /// `--dry-run`.
    fn command_env(&self, release: &Release) -> Vec<(String, String)> {
        let _ = release;
        Vec::new()
    }
}

/// Held while a deploy runs: dropping it releases the lock.
pub trait LockGuard {}

/// Who deploys: recorded in each release and in a lock.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `user@machine`.
    pub holder: String,
    /// `$GITHUB_ACTOR`, else the holder.
    pub who: String,
    /// The commit the deploying checkout is at, when known.
    pub deployer_sha: Option<String>,
}

impl Identity {
    /// The identity of this process: the login and machine, the CI actor,
    /// `$GITHUB_SHA`.
    pub fn detect() -> Identity {
        let machine = fs_read("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".to_owned());
        let user = std::env::var("USER")
            .ok()
            .or_else(|| std::env::var("LOGNAME").ok())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        let holder = format!("{user}@{machine}");
        let who = std::env::var("GITHUB_ACTOR")
            .ok()
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| holder.clone());
        Identity {
            holder,
            who,
            deployer_sha: std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()),
        }
    }
}

fn fs_read(path: &str) -> Option<String> {
    fs_err::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// `seconds` as RFC 3339 in UTC.
pub fn timestamp(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

/// Seconds since the Unix epoch of an RFC 3339 time (`2026-12-06T11:40:00.5Z`,
/// an offset or fractions allowed), as docker and kubectl print them.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    text.trim()
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// The ids of `releases` that keeping `keep` records drops: all but the
/// newest `keep` (at least the one just written) and the newest `deployed`
/// one. Failed records count towards `keep`, so without that exception a
/// run of failures would prune the record of the release that is running,
/// and rollback would find nothing to go back to.
pub fn prunable(releases: &[Release], keep: u32) -> Vec<u64> {
    let keep = usize::try_from(keep.max(1)).unwrap_or(usize::MAX);
    let mut ids: Vec<u64> = releases.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let running = releases
        .iter()
        .filter(|r| r.result == ReleaseResult::Deployed)
        .map(|r| r.id)
        .max();
    let excess = ids.len().saturating_sub(keep);
    ids.truncate(excess);
    ids.retain(|id| Some(*id) != running);
    ids
}

/// The variable a command target's images are given in:
/// `SLIPWAY_IMAGE_<NAME>`, the image name upper-cased with every character
/// that cannot be in a variable name as `_` (`api-gw` → `SLIPWAY_IMAGE_API_GW`).
pub fn image_variable(image: &str) -> String {
    let name: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("SLIPWAY_IMAGE_{name}")
}

/// What slipway-deploy's errors say: none has an exit code or a place of
/// its own (they wrap the config's, git's, the registry's, the labels' and
/// readiness's, which their crates classify).
pub const ERRORS: slipway_core::cli::ErrorKinds =
    slipway_core::cli::ErrorKinds::codes_only(classify);

/// The exit code `cause` says if it is one of the errors this crate wraps.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    [
        slipway_config::classify,
        slipway_git::classify,
        slipway_registry::classify,
        slipway_stale::classify,
        slipway_ready::classify,
    ]
    .iter()
    .find_map(|code| code(cause))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(image: &str, expected: &str) {
        assert_eq!(image_variable(image), expected, "image `{image}`");
    }

    #[test]
    fn timestamps_parse_with_fractions_and_offsets() {
        assert_eq!(
            parse_timestamp("2026-12-06T11:40:00.123456789Z"),
            Some(1_796_557_200)
        );
        assert_eq!(
            parse_timestamp("2026-12-06T12:40:00+01:00\n"),
            Some(1_796_557_200)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn image_variables_are_upper_case_with_underscores() {
        check("app", "SLIPWAY_IMAGE_APP");
        check("api-gw", "SLIPWAY_IMAGE_API_GW");
        check("web.v2", "SLIPWAY_IMAGE_WEB_V2");
    }
}

#[cfg(test)]
/// Pruning, apart from `tests` whose `check` is the image variable's.
mod prune_tests {
    use super::*;

    #[track_caller]
    fn check(history: &[(u64, ReleaseResult)], keep: u32, expected: &[u64]) {
        let releases: Vec<Release> = history
            .iter()
            .map(|(id, result)| Release {
                id: *id,
                env: "prod".to_owned(),
                time: String::new(),
                git_sha: None,
                images: std::collections::BTreeMap::new(),
                tags: std::collections::BTreeMap::new(),
                deployer_sha: None,
                rolled_back_to: None,
                who: String::new(),
                result: *result,
                rollback_of: None,
                detail: None,
            })
            .collect();
        assert_eq!(prunable(&releases, keep), expected, "keep {keep}");
    }

    #[test]
    fn the_newest_deployed_record_outlives_a_run_of_failures() {
        use ReleaseResult::{Cancelled, Deployed, Failed};
        check(
            &[(5, Deployed), (6, Failed), (7, Failed), (8, Failed)],
            3,
            &[],
        );
        check(
            &[
                (4, Deployed),
                (5, Deployed),
                (6, Failed),
                (7, Failed),
                (8, Failed),
            ],
            3,
            &[4],
        );
        check(&[(1, Deployed), (2, Deployed), (3, Deployed)], 2, &[1]);
        check(&[(1, Failed), (2, Cancelled), (3, Failed)], 1, &[1, 2]);
        check(&[(1, Deployed), (2, Failed)], 0, &[]);
    }
}
