//! `ssh-deploy … --format json`: one [`Report`] for every subcommand
//! (`deploy`, `rollback`, `releases`, `lock status`, `lock release`,
//! `destroy`, `instances`, `gc`), with one [`HostReport`] per host.
//! [`Release`], [`LockHolder`] and [`Instance`] are also the records
//! ssh-deploy keeps on each host (`.slipway/releases/<N>.json`,
//! `.slipway/holder.json`, and a template env's
//! `.slipway/instances/<name>.json` beside its instances' directories).

use std::collections::BTreeMap;

/// The whole JSON document.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The env of slipway.toml.
    pub env: String,
    /// `deploy`, `rollback`, `releases`, `lock status`, `lock release`,
    /// `destroy`, `instances` or `gc`.
    pub action: String,
    /// The instance of a template env (`--instance`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The plan, for `--dry-run` (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<DryRun>,
    /// One entry per host, in the env's order (empty for `--dry-run`).
    pub hosts: Vec<HostReport>,
}

/// What happened on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The release is deployed and ready.
    Deployed,
    /// The deploy ran and failed; nothing was rolled back.
    Failed,
    /// The deploy failed its readiness, or another host of the fleet failed;
    /// the previous release was redeployed (`rolled_back_to`).
    RolledBack,
    /// Not attempted (no longer reported by deploys, which say `not_started`).
    Skipped,
    /// Not started: the fleet's preflight failed on another host, or a host
    /// of an earlier batch failed; nothing was done on this host.
    NotStarted,
    /// An operation failed (connection, host key, upload, lock).
    Error,
    /// The releases were listed.
    Listed,
    /// The env is locked on the host.
    Locked,
    /// The env is not locked on the host.
    Unlocked,
    /// The lock was removed.
    Released,
    /// The deploy was cancelled (SIGINT, SIGTERM): its command stopped, its
    /// temporary files removed, the release recorded as `cancelled`.
    Cancelled,
    /// `destroy`: the instance was torn down, its directory removed and its
    /// destruction recorded.
    Destroyed,
    /// `destroy`: the instance does not exist on the host; nothing was done.
    Absent,
}

impl Outcome {
    /// The outcome as the JSON spells it: `deployed`, `rolled_back`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Deployed => "deployed",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled_back",
            Outcome::Skipped => "skipped",
            Outcome::NotStarted => "not_started",
            Outcome::Error => "error",
            Outcome::Listed => "listed",
            Outcome::Locked => "locked",
            Outcome::Unlocked => "unlocked",
            Outcome::Released => "released",
            Outcome::Cancelled => "cancelled",
            Outcome::Destroyed => "destroyed",
            Outcome::Absent => "absent",
        }
    }
}

/// One host's part of the report.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HostReport {
    /// `[user@]host[:port]`.
    pub host: String,
    /// What happened.
    pub outcome: Outcome,
    /// The release number recorded on the host (null when none was).
    pub release: Option<u64>,
    /// Files uploaded, by name in the remote path.
    pub uploaded: Vec<String>,
    /// Files already on the host with the same contents.
    pub unchanged: Vec<String>,
    /// The remote command's exit status (null when it did not end).
    pub exit_status: Option<i32>,
    /// Whether the ready URL answered (null when no readiness check ran).
    pub ready: Option<bool>,
    /// Milliseconds from the start of the readiness wait until the ready URL
    /// answered; null when no readiness check ran or it never answered.
    /// Like `ready`, this is the deploy's own wait, not a rollback's.
    #[serde(default)]
    pub ready_ms: Option<u64>,
    /// The release redeployed after a failed readiness.
    pub rolled_back_to: Option<u64>,
    /// What went wrong, in words.
    pub error: Option<String>,
    /// For `releases`: the records, oldest first (absent when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<Release>,
    /// For `lock status`/`lock release`: the holder (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockHolder>,
    /// For `instances`: the env's instances on the host; for `destroy` and
    /// `gc`: those destroyed (or, with `--dry-run`, those that would be).
    /// Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Instance>,
}

impl HostReport {
    /// An entry for `host` that nothing happened to yet (`skipped`).
    pub fn new(host: &str) -> HostReport {
        HostReport {
            host: host.to_owned(),
            outcome: Outcome::Skipped,
            release: None,
            uploaded: Vec::new(),
            unchanged: Vec::new(),
            exit_status: None,
            ready: None,
            ready_ms: None,
            rolled_back_to: None,
            error: None,
            releases: Vec::new(),
            lock: None,
            instances: Vec::new(),
        }
    }
}

/// What `--dry-run` shows.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DryRun {
    /// The hosts, as `[user@]host[:port]`.
    pub hosts: Vec<String>,
    /// The env's directory on the hosts.
    pub remote_path: String,
    /// Files uploaded (unless unchanged on the host), `deploy.env` last.
    pub files: Vec<DryRunFile>,
    /// `deploy.env` as it would be written.
    pub deploy_env: String,
    /// Variables the remote command receives besides the login's own, as
    /// `[name, value]` pairs.
    pub command_env: Vec<(String, String)>,
    /// The command line run on each host (before the staged files' `mv`s).
    pub command_line: String,
    /// The URL awaited through the SSH connection (null when none).
    pub ready_url: Option<String>,
}

/// One file of a dry run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DryRunFile {
    /// Name in the remote path.
    pub name: String,
    /// Unix permission bits, in octal (`0640`).
    pub mode: String,
    /// Size in bytes.
    pub size: u64,
    /// Hex SHA-256 of the contents.
    pub sha256: String,
}

/// Who holds an env's lock on a host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockHolder {
    /// `user@machine` of the deploying process.
    pub holder: String,
    /// The machine the deploy runs on.
    pub machine: String,
    /// Its process id there.
    pub pid: u32,
    /// When the lock was taken, seconds since the Unix epoch.
    pub since: i64,
    /// When the deploy expected to be done at the latest (seconds since the
    /// epoch); informative only: the lock lives as long as the deploy's
    /// session, not until a deadline.
    pub deadline: i64,
    /// The release being deployed.
    pub release: u64,
    /// The CI job that deploys (its URL under GitHub Actions or GitLab CI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_job: Option<String>,
    /// The PID, on the host, of the process that holds the lock for the
    /// deploy's SSH session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<u32>,
    /// For `lock status`: whether the holder still holds the lock (its
    /// session lives); `false` for the last holder of a free lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_alive: Option<bool>,
}

/// What a deploy did, as recorded on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseResult {
    /// The command succeeded and the ready URL answered (or there is none).
    Deployed,
    /// The command failed, timed out, or readiness failed.
    Failed,
    /// The deploy was cancelled (SIGINT, SIGTERM) and its command stopped.
    Cancelled,
}

/// One release record, `.slipway/releases/<id>.json` on the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Release {
    /// Increasing number on this host.
    pub id: u64,
    /// The env.
    pub env: String,
    /// When it was recorded (RFC 3339, UTC).
    pub time: String,
    /// The revision the images were built from (their
    /// `org.opencontainers.image.revision` label, or img-build's `revision`
    /// for `--images-from`), when known and the same for every image; a
    /// rollback records the revision of the release it redeploys.
    pub git_sha: Option<String>,
    /// `deploy.env` variables and their image references (`repo@sha256:…`).
    pub images: BTreeMap<String, String>,
    /// A note: the reference each image was given as, for images given by
    /// tag (`repo:1.2.0`) and resolved to the digest in `images`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The commit ssh-deploy ran from (HEAD of the repository around
    /// slipway.toml, or `$GITHUB_SHA`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployer_sha: Option<String>,
    /// For a rollback: the release whose images it redeployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_to: Option<u64>,
    /// Who deployed (`$GITHUB_ACTOR` or `user@machine`).
    pub who: String,
    /// How it went.
    pub result: ReleaseResult,
    /// The release this one rolled back from, for rollbacks.
    pub rollback_of: Option<u64>,
    /// Why it failed.
    pub detail: Option<String>,
}

/// Whether an instance of a template env exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Its directory exists (deployed, or a deploy failed): it counts
    /// against `max_instances` and holds its port.
    Active,
    /// `destroy` or `gc` removed it; the record stays until it is deployed
    /// again, which makes it active with a new port.
    Destroyed,
}

/// One instance of a template env on one host: the record
/// `.slipway/instances/<name>.json` under the directory holding the
/// instances, and, for `instances`, what its newest release says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    /// The instance name (`--instance`), a DNS label.
    pub name: String,
    /// Whether it exists.
    pub state: InstanceState,
    /// Its directory on the host.
    pub remote_path: String,
    /// Its port, chosen from the env's `port_range` when it was first
    /// deployed and kept across redeploys (null without `port_range`).
    pub port: Option<u16>,
    /// When it was first deployed (RFC 3339, UTC).
    pub created: String,
    /// When its newest release was recorded (RFC 3339, UTC); null when none
    /// was (in the record on the host, always null: the releases say it).
    #[serde(default)]
    pub last_deploy: Option<String>,
    /// Its newest release (null when none).
    #[serde(default)]
    pub release: Option<u64>,
    /// How its newest release went.
    #[serde(default)]
    pub result: Option<ReleaseResult>,
    /// Its newest release's images (`deploy.env` variable -> `repo@sha256:…`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
    /// When it was destroyed (RFC 3339, UTC), for a destroyed instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroyed: Option<String>,
    /// Who destroyed it, and why (`destroy`, or `gc` with the idle time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroyed_by: Option<String>,
}
