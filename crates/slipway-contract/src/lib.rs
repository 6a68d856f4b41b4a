//! The JSON each tool prints with `--format json`, as shared types: the
//! tools build and serialize them, xtask (and anyone else reading a report)
//! deserializes them. One module per tool.
//!
//! These shapes are a contract: adding a field is fine, renaming or removing
//! one is breaking. Each tool's snapshot tests pin its shape. The domain types a
//! report holds (a [`Sha`], a change status, a staleness verdict, a version
//! bump) are defined here, so this crate depends on serde alone; the crates
//! that compute them (slipway-git, slipway-stale, slipway-tags) re-export
//! them.

pub mod changed_paths;
pub mod image_stale_check;
pub mod img_build;
pub mod img_tag;
pub mod ready_wait;
pub mod ssh_deploy;

use std::fmt;
use std::str::FromStr;

/// A full commit sha: 40 lowercase hexadecimal digits.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Sha(String);

impl Sha {
    /// The number of hex digits in [`Sha::short`].
    pub const SHORT_LEN: usize = 7;

    /// The full 40 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first seven hex digits, as `git rev-parse --short=7` prints them
    /// (git would print more only if seven were ambiguous in the repository;
    /// a fixed length keeps tags like `sha-0123abc` stable).
    pub fn short(&self) -> &str {
        &self.0[..Self::SHORT_LEN]
    }
}

impl FromStr for Sha {
    type Err = InvalidSha;

    /// Accepts 40 hex digits in either case; stores them lowercase.
    fn from_str(value: &str) -> Result<Self, InvalidSha> {
        if value.len() == 40 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(value.to_ascii_lowercase()))
        } else {
            Err(InvalidSha {
                value: value.to_owned(),
            })
        }
    }
}

impl TryFrom<String> for Sha {
    type Error = InvalidSha;

    fn try_from(value: String) -> Result<Self, InvalidSha> {
        value.parse()
    }
}

impl From<Sha> for String {
    fn from(sha: Sha) -> String {
        sha.0
    }
}

impl fmt::Display for Sha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that should be a full commit sha is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSha {
    /// The rejected value.
    pub value: String,
}

impl fmt::Display for InvalidSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a full commit sha: expected 40 hexadecimal digits",
            self.value
        )
    }
}

impl std::error::Error for InvalidSha {}

/// (De)serializes a [`std::time::Duration`] as whole milliseconds.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::Deserialize as _;

    pub(crate) fn serialize<S: serde::Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }

    /// The same for an `Option<Duration>`, `null` for `None`.
    pub(crate) mod option {
        use std::time::Duration;

        use serde::Deserialize as _;

        pub(crate) fn serialize<S: serde::Serializer>(
            duration: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match duration {
                Some(duration) => super::serialize(duration, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            Option::<u64>::deserialize(deserializer).map(|ms| ms.map(Duration::from_millis))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `json` (compact, in the order a tool prints it) read as `T` and
    /// written back is the very same text: every field is read, none is
    /// renamed, reordered or dropped.
    #[track_caller]
    fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(json: &str) -> T {
        let value: T = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
        assert_eq!(serde_json::to_string(&value).expect("serializes"), json);
        value
    }

    const SHA_A: &str = "0123456789abcdef0123456789abcdef01234567";
    const SHA_B: &str = "89abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn changed_paths_reads_filters_in_order_and_the_fixed_keys() {
        let json = format!(
            r#"{{"filters":{{"web":{{"changed":true,"count":1,"files":["web/a.js"]}},"api":{{"changed":false,"count":0,"files":[]}}}},"changes":["web"],"targets":["web"],"base":"{SHA_A}","head":"{SHA_B}","base_image":"r/web:main","files":[{{"path":"web/a.js","status":"renamed","from":"web/b.js"}}],"explain":[{{"path":"web/a.js","status":"renamed","from":"web/b.js","verdicts":[{{"filter":"web","matched":true,"reason":"matched","pattern":"web/**","origin":"slipway.toml"}},{{"filter":"api","matched":false,"reason":"no_pattern"}}]}}]}}"#
        );
        let report: changed_paths::Report = round_trip(&json);
        let names: Vec<&str> = report.filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["web", "api"]);
        assert_eq!(report.filters[0].count, 1);
        assert_eq!(report.targets, ["web"]);
        assert_eq!(report.head.as_ref().map(|s| s.as_str()), Some(SHA_B));
    }

    #[test]
    fn changed_paths_filters_named_like_the_reports_keys_do_not_collide() {
        // An image called `base` (the demo has one) or a filter called
        // `changes` keeps its own entry under `filters`.
        let json = r#"{"filters":{"base":{"changed":true,"count":1,"files":["base/Dockerfile"]},"changes":{"changed":false,"count":0,"files":[]}},"changes":["base"],"targets":["base"],"base":null,"head":null,"files":[{"path":"base/Dockerfile","status":"added"}]}"#;
        let report: changed_paths::Report = round_trip(json);
        assert_eq!(report.filters[0].name, "base");
        assert!(report.filters[0].changed);
        assert_eq!(report.changes, ["base"]);
        assert_eq!(report.base, None);
        let error = serde_json::from_str::<changed_paths::Report>(
            r#"{"filters":{"a":{"changed":true,"count":0,"files":[]},"a":{"changed":false,"count":0,"files":[]}},"changes":[],"targets":[],"base":null,"head":null,"files":[]}"#,
        )
        .expect_err("a filter twice");
        assert!(
            error.to_string().contains("filter `a` appears twice"),
            "{error}"
        );
    }

    #[test]
    fn img_build_reads_both_documents() {
        let built = r#"{"backend":"buildx","revision":"abc","pushed":true,"log_dir":"/tmp/logs","targets":[{"name":"app","status":"built","repository":"r/app","tags":["r/app:sha-abc"],"reference":"r/app@sha256:00","digest":"sha256:00","image_id":null,"platforms":[],"duration_seconds":1.5,"log":"/tmp/logs/app.log"},{"name":"web","status":"skipped","reason":"dependency_failed","repository":"r/web","tags":[],"reference":null,"digest":null,"image_id":null,"platforms":["linux/amd64"],"duration_seconds":0.0,"log":"/tmp/logs/web.log","error":"base failed"}],"failed":["web"]}"#;
        let report: img_build::Report = round_trip(built);
        assert!(matches!(report, img_build::Report::Built(_)));
        let plan = r#"{"dry_run":true,"backend":"buildah","backend_reason":"--backend buildah","revision":"abc","push":false,"load":false,"jobs":2,"order":["app"],"targets":[{"name":"app","repository":"r/app","tags":["r/app:1"],"labels":{},"build_args":{},"platforms":[],"depends_on":["base"],"dependency_arg":{"arg":"BASE","image":"base"},"context":".","dockerfile":"Dockerfile","cache_from":[],"cache_to":[],"secrets":[],"commands":[{"step":"build","argv":["buildah","bud"],"env":[["A","1"]]}],"index_tags":["r/app:1"],"stale_check":{"reference":"r/app:1","digest":null,"verdict":{"status":"missing"},"skip":false,"decision":"not published"}}]}"#;
        let report: img_build::Report = round_trip(plan);
        assert!(matches!(report, img_build::Report::Plan(_)));
    }

    #[test]
    fn ssh_deploy_reads_hosts_releases_and_locks() {
        let json = format!(
            r#"{{"env":"prod","action":"releases","hosts":[{{"host":"deploy@a:22","outcome":"listed","release":null,"uploaded":[],"unchanged":[],"exit_status":null,"ready":true,"ready_ms":1250,"rolled_back_to":null,"error":null,"releases":[{{"id":1,"env":"prod","time":"2026-01-01T00:00:00Z","git_sha":"{SHA_A}","images":{{"APP_IMAGE":"r/app@sha256:00"}},"who":"ci","result":"deployed","rollback_of":null,"detail":null}}],"lock":{{"holder":"ci@m","machine":"m","pid":7,"since":1,"deadline":2,"release":2}}}}]}}"#
        );
        let report: ssh_deploy::Report = round_trip(&json);
        assert_eq!(report.hosts[0].ready_ms, Some(1250));
        assert_eq!(report.hosts[0].outcome.as_str(), "listed");
        // Reports from before `ready_ms` existed still read.
        let old = r#"{"host":"a","outcome":"rolled_back","release":2,"uploaded":[],"unchanged":[],"exit_status":0,"ready":false,"rolled_back_to":1,"error":"not ready"}"#;
        let host: ssh_deploy::HostReport = serde_json::from_str(old).expect("an older report");
        assert_eq!(
            (host.ready_ms, host.outcome.as_str()),
            (None, "rolled_back")
        );
        let dry = r#"{"env":"prod","action":"deploy","dry_run":{"hosts":["a"],"remote_path":"/srv","files":[{"name":"deploy.env","mode":"0600","size":3,"sha256":"ff"}],"deploy_env":"A=1\n","command_env":[["SLIPWAY_ENV","prod"]],"command_line":"./deploy.sh","ready_url":null},"hosts":[]}"#;
        round_trip::<ssh_deploy::Report>(dry);
    }

    #[test]
    fn image_stale_check_reads_verdicts_and_hook_reports() {
        let json = format!(
            r#"{{"rev":"{SHA_B}","tag":"main","source":"registry","hook":false,"strict":false,"images":[{{"image":"base","reference":"r/base:main","digest":"sha256:00","status":"stale","revision":"{SHA_A}","files":[{{"path":"Cargo.lock","status":"modified","via":{{"kind":"depends_on","image":"x"}}}}],"commits":[{{"sha":"{SHA_B}","summary":"chore","files":["Cargo.lock"]}}]}},{{"image":"app","reference":"r/app:main","digest":"sha256:01","status":"unknown","reason":"no_label","platform":null}},{{"image":"web","reference":"r/web:main","digest":"sha256:02","status":"fresh","revision":"{SHA_B}","because":"same_commit"}},{{"image":"worker","reference":"r/worker:main","digest":null,"status":"missing"}}]}}"#
        );
        let report: image_stale_check::Report = round_trip(&json);
        let image_stale_check::Report::Check(check) = report else {
            panic!("a check report");
        };
        let statuses: Vec<&str> = check.images.iter().map(|i| i.verdict.status()).collect();
        assert_eq!(statuses, ["stale", "unknown", "fresh", "missing"]);
        let hook = r#"{"path":".git/hooks/pre-push","action":"installed","chained":false}"#;
        let report: image_stale_check::Report = round_trip(hook);
        assert!(matches!(report, image_stale_check::Report::Hook(_)));
    }

    #[test]
    fn img_tag_and_ready_wait_read_their_documents() {
        round_trip::<img_tag::ApplyReport>(
            r#"{"image":"r/app@sha256:00","digest":"sha256:00","tags":[{"tag":"v1","previous_digest":null,"changed":true}],"dry_run":false}"#,
        );
        round_trip::<img_tag::NextVersionReport>(
            r#"{"version":"1.1.0","previous":"1.0.0","bump":"minor","height":3,"has_release":true}"#,
        );
        round_trip::<img_tag::CheckCommitReport>(
            r#"{"valid":true,"commit":{"type":"feat","scope":null,"is_breaking":false,"description":"x","breaking_note":null},"bump":"minor"}"#,
        );
        let promote: img_tag::PromoteReport = round_trip(
            r#"{"source":"a","destination":"b:1","digest":"sha256:00","blobs_mounted":1,"blobs_copied":2,"blobs_skipped":3,"bytes_copied":4,"dry_run":false,"referrers_copied":1,"referrer_tags_updated":1,"images":[{"digest":"sha256:01","platform":"linux/amd64","referrer":false,"blobs_mounted":1,"blobs_copied":2,"blobs_skipped":3,"bytes_copied":4,"elapsed_ms":20}],"elapsed_ms":25}"#,
        );
        assert_eq!(
            (promote.images[0].elapsed, promote.elapsed),
            (
                std::time::Duration::from_millis(20),
                std::time::Duration::from_millis(25)
            )
        );
        // Reports from before `images` and `elapsed_ms` existed still read.
        let older: img_tag::PromoteReport = serde_json::from_str(
            r#"{"source":"a","destination":"b:1","digest":"sha256:00","blobs_mounted":1,"blobs_copied":2,"blobs_skipped":3,"bytes_copied":4,"dry_run":false}"#,
        )
        .unwrap();
        assert_eq!((older.images.len(), older.elapsed.as_millis()), (0, 0));
        round_trip::<img_tag::ReferrersReport>(
            r#"{"image":"r/app:1","digest":"sha256:00","source":"tag","referrers":[{"digest":"sha256:01","media_type":"application/vnd.oci.image.manifest.v1+json","artifact_type":"application/spdx+json","size":9,"annotations":{"k":"v"}}]}"#,
        );
        let outcome: ready_wait::Outcome = round_trip(
            r#"{"ready":true,"elapsed_ms":1500,"targets":[{"target":"http://127.0.0.1:1/","ready":true,"attempts":2,"last_status":200,"last_error":null,"body_excerpt":"ok","ready_after_ms":1499}]}"#,
        );
        assert_eq!(outcome.elapsed, std::time::Duration::from_millis(1500));
    }
}
