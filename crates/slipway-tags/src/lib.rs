//! Image tags and OCI labels computed the way docker/metadata-action computes
//! them, from its own `tags:`, `flavor:` and `images:` lines, so a team can
//! paste its workflow's inputs and get the same tags in the same order.
//! [`version`] computes the next semver from Conventional Commits.
//!
//! This module is pure: the caller gathers the facts (event, ref, sha,
//! default branch, clock) into a [`TagContext`]; nothing here reads the
//! environment, git or the clock.
//!
//! Where metadata-action would emit a tag that registries reject (one that
//! starts with `-` or `.`, or is longer than 128 characters), the leading
//! characters are dropped and the tag is cut at 128 characters instead,
//! keeping the prefix and suffix whole. Handlebars block helpers are not
//! supported; an unknown attribute or expression is an error, where the
//! action ignores it.

mod compute;
pub mod context;
mod date;
mod flavor;
mod image;
pub mod pep440;
mod rule;
mod template;
pub mod version;

pub use compute::*;
pub use date::*;
pub use flavor::*;
pub use image::*;
pub use rule::*;
use template::*;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

/// The rules metadata-action uses when none are given.
pub const DEFAULT_RULES: [&str; 4] = [
    "type=schedule",
    "type=ref,event=branch",
    "type=ref,event=tag",
    "type=ref,event=pr",
];

/// The longest tag a registry accepts (the distribution spec's tag grammar).
pub const MAX_TAG_LEN: usize = 128;

/// Why a rule, flavor or image line is invalid, or could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// `type=` names no known rule type.
    #[error("unknown tag rule type `{value}` in `{rule}`{hint}; valid types: {valid}")]
    UnknownType {
        /// The rule line as given.
        rule: String,
        /// The unknown type.
        value: String,
        /// ` — did you mean …?`, or empty.
        hint: String,
        /// The valid types, comma-separated.
        valid: String,
    },
    /// An attribute that the rule's type does not take.
    #[error("unknown tag rule attribute `{key}` in `{rule}`{hint}; valid attributes: {valid}")]
    UnknownAttribute {
        /// The rule line as given.
        rule: String,
        /// The unknown attribute.
        key: String,
        /// ` — did you mean …?`, or empty.
        hint: String,
        /// The attributes this type takes, comma-separated.
        valid: String,
    },
    /// A required attribute is missing.
    #[error("tag rule `{rule}` needs a `{key}` attribute")]
    MissingAttribute {
        /// The rule line as given.
        rule: String,
        /// The missing attribute.
        key: String,
    },
    /// An attribute has a value outside its domain.
    #[error("invalid `{key}` value `{value}` in `{line}`; expected {expected}")]
    InvalidValue {
        /// The rule, flavor or image line as given.
        line: String,
        /// The attribute.
        key: String,
        /// The value as given (or as evaluated, for `enable`).
        value: String,
        /// What would be valid.
        expected: String,
    },
    /// A line cannot be split into fields (an unclosed quote).
    #[error("cannot parse `{line}`: {reason}")]
    Syntax {
        /// The line as given.
        line: String,
        /// What is wrong.
        reason: String,
    },
    /// A `{{…}}` expression is malformed or unknown where it is used.
    #[error("invalid expression in `{template}`: {reason}")]
    Expression {
        /// The template holding the expression.
        template: String,
        /// What is wrong and what would be valid.
        reason: String,
    },
    /// An unknown flavor entry.
    #[error(
        "unknown flavor entry `{key}` in `{line}`{hint}; valid entries: latest, prefix, suffix, onlatest"
    )]
    UnknownFlavor {
        /// The flavor line as given.
        line: String,
        /// The unknown key.
        key: String,
        /// ` — did you mean …?`, or empty.
        hint: String,
    },
    /// An unknown attribute in an `images:` line.
    #[error("unknown image attribute `{key}` in `{line}`; valid attributes: name, enable")]
    UnknownImageAttribute {
        /// The image line as given.
        line: String,
        /// The unknown key.
        key: String,
    },
}

slipway_core::cli::exit_status!(TagError => USAGE);

/// ` — did you mean `x`?` for the valid name nearest to `given`, or empty.
pub(crate) fn hint(given: &str, valid: &[&str]) -> String {
    valid
        .iter()
        .map(|candidate| (strsim::jaro_winkler(given, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| format!(" — did you mean `{candidate}`?"))
        .unwrap_or_default()
}

/// What slipway-tags's errors say: their exit codes ([`classify`]); none
/// names a place in a file. A tool that uses this crate passes it to
/// [`slipway_core::cli::finish`].
pub const ERRORS: slipway_core::cli::ErrorKinds =
    slipway_core::cli::ErrorKinds::codes_only(classify);

/// The exit code `cause` says if it is one of slipway-tags' errors: a tool that
/// uses this crate passes it to [`slipway_core::cli::finish`]. It asks the
/// `classify` of the Slipway crates this one wraps errors of as well.
pub fn classify(cause: &(dyn std::error::Error + 'static)) -> Option<u8> {
    [
        slipway_core::cli::code::<TagError>,
        slipway_core::cli::code::<context::ContextError>,
        slipway_core::cli::code::<version::CommitError>,
        slipway_config::classify,
        slipway_git::classify,
    ]
    .iter()
    .find_map(|code| code(cause))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_slipway_toml_and_errors_name_their_source() {
        let text = "[project]\nname = \"p\"\nregistry = \"r.io/p\"\n\n[tags]\nrules = [\"type=sha\", \"type=nope\"]\nflavor = [\"latest=false\"]\n";
        let config = slipway_config::Config::from_str(text, std::path::Path::new("slipway.toml"))
            .expect("a config whose tag lines are only parsed later");
        let error = rules_and_flavor::<&str>(&[], &[], Some(&config.tags)).expect_err("type=nope");
        assert!(
            error.starts_with("invalid `[tags] rules` entry at slipway.toml:6:"),
            "{error}"
        );
        let (rules, flavor) = rules_and_flavor(
            &["type=ref,event=branch"],
            &["prefix=v"],
            Some(&config.tags),
        )
        .expect("the flags replace the file's lines");
        assert_eq!(rules.len(), 1);
        assert_eq!(flavor.prefix, "v");
        let error =
            rules_and_flavor(&["type=sha"], &["latest=sometimes"], None).expect_err("a bad flavor");
        assert!(error.starts_with("invalid `--flavor`: "), "{error}");
        let (rules, flavor) = rules_and_flavor::<&str>(&[], &[], None).expect("nothing given");
        assert!(rules.is_empty());
        assert_eq!(flavor, Flavor::default());
    }

    const SHA: &str = "860c1904a1ce19322e91ac35af1ab07466440c37";

    fn ctx(event: &str, git_ref: &str) -> TagContext {
        TagContext {
            event_name: event.to_owned(),
            git_ref: git_ref.to_owned(),
            sha: SHA.to_owned(),
            default_branch: Some("master".to_owned()),
            base_ref: None,
            pr_base_ref: Some("main".to_owned()),
            now: "2020-01-10T00:30:00Z".parse().unwrap(),
            commit_date: "2020-01-09T12:34:56Z".parse().unwrap(),
            short_sha_length: 7,
            repository: RepoInfo::default(),
        }
    }

    fn push(branch: &str) -> TagContext {
        ctx("push", &format!("refs/heads/{branch}"))
    }

    fn tag(name: &str) -> TagContext {
        ctx("push", &format!("refs/tags/{name}"))
    }

    fn pr(number: u32) -> TagContext {
        ctx("pull_request", &format!("refs/pull/{number}/merge"))
    }

    fn schedule(branch: &str) -> TagContext {
        ctx("schedule", &format!("refs/heads/{branch}"))
    }

    fn run(
        ctx: &TagContext,
        rules: &[&str],
        flavor: &[&str],
        images: &[&str],
    ) -> Result<Metadata, TagError> {
        let rules = rules
            .iter()
            .map(|r| TagRule::parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let flavor = Flavor::parse(flavor)?;
        let images = ImageSpec::parse_all(images)?;
        compute(&rules, &flavor, &images, ctx)
    }

    #[track_caller]
    fn check(ctx: TagContext, rules: &[&str], flavor: &[&str], expected: &[&str]) {
        let meta = run(&ctx, rules, flavor, &[]).expect("valid rules");
        assert_eq!(
            meta.tags, expected,
            "rules {rules:?}, flavor {flavor:?}, ref `{}`",
            ctx.git_ref
        );
    }

    #[track_caller]
    fn check_error(ctx: TagContext, rules: &[&str], flavor: &[&str], expected: &str) {
        let error = run(&ctx, rules, flavor, &[]).expect_err("invalid input");
        assert_eq!(
            error.to_string(),
            expected,
            "rules {rules:?}, flavor {flavor:?}"
        );
    }

    #[test]
    fn default_rules() {
        check(push("master"), &[], &[], &["master"]);
        check(push("feature/login"), &[], &[], &["feature-login"]);
        check(tag("v1.1.1"), &[], &[], &["v1.1.1", "latest"]);
        check(pr(15), &[], &[], &["pr-15"]);
        check(schedule("master"), &[], &[], &["nightly", "master"]);
        check(ctx("workflow_dispatch", ""), &[], &[], &[]);
    }

    #[test]
    fn sha_rules() {
        check(push("master"), &["type=sha"], &[], &["sha-860c190"]);
        check(
            push("master"),
            &["type=sha,format=long"],
            &[],
            &[&format!("sha-{SHA}")],
        );
        check(push("master"), &["type=sha,prefix="], &[], &["860c190"]);
        check(
            push("master"),
            &["type=sha,prefix=commit-,suffix=-x"],
            &[],
            &["commit-860c190-x"],
        );
        // The sha rule's default `sha-` prefix is its own attribute, so the
        // flavor's prefix never applies to it; the flavor's suffix does.
        check(
            push("master"),
            &["type=sha"],
            &["prefix=foo-"],
            &["sha-860c190"],
        );
        check(
            push("master"),
            &["type=sha"],
            &["suffix=-alpine"],
            &["sha-860c190-alpine"],
        );
        check(tag("v1.0.0"), &["type=sha"], &[], &["sha-860c190"]);
        check(pr(3), &["type=sha"], &[], &["sha-860c190"]);
    }

    #[test]
    fn ref_rules() {
        check(tag("v1.0.0"), &["type=ref,event=branch"], &[], &[]);
        check(
            tag("v1.0.0"),
            &["type=ref,event=tag"],
            &[],
            &["v1.0.0", "latest"],
        );
        check(push("master"), &["type=ref,event=tag"], &[], &[]);
        check(pr(2), &["type=ref,event=pr"], &[], &["pr-2"]);
        check(pr(2), &["type=ref,event=pr,prefix=pull-"], &[], &["pull-2"]);
        check(pr(2), &["type=ref,event=pr"], &["prefix=foo-"], &["pr-2"]);
        check(push("master"), &["type=ref,event=pr"], &[], &[]);
        check(
            push("feature/a/b@#!"),
            &["type=ref,event=branch"],
            &[],
            &["feature-a-b-"],
        );
        check(
            tag("release/1.0"),
            &["type=ref,event=tag"],
            &[],
            &["release-1.0", "latest"],
        );
        check(
            push("dev"),
            &["type=ref,event=branch"],
            &["prefix=br-,suffix=-x"],
            &["br-dev-x"],
        );
        check(
            ctx("pull_request_target", "refs/pull/7/merge"),
            &["type=ref,event=pr"],
            &[],
            &["pr-7"],
        );
    }

    #[test]
    fn semver_rules() {
        let all = [
            "type=semver,pattern={{version}}",
            "type=semver,pattern={{major}}.{{minor}}",
            "type=semver,pattern={{major}}",
        ];
        check(tag("v1.2.3"), &all[..1], &[], &["1.2.3", "latest"]);
        check(tag("v1.2.3"), &all, &[], &["1.2.3", "1.2", "1", "latest"]);
        check(tag("1.2.3"), &all, &[], &["1.2.3", "1.2", "1", "latest"]);
        check(tag("v0.1.0"), &all, &[], &["0.1.0", "0.1", "0", "latest"]);
        // A prerelease gets its full version whatever the pattern, and no latest.
        check(tag("v1.2.3-beta.1"), &all, &[], &["1.2.3-beta.1"]);
        check(
            tag("v1.2.3-rc.1"),
            &["type=semver,pattern={{raw}}"],
            &[],
            &["v1.2.3-rc.1"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{raw}}"],
            &[],
            &["v1.2.3", "latest"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern=v{{major}}"],
            &[],
            &["v1", "latest"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{major}}.{{minor}}.{{patch}}"],
            &[],
            &["1.2.3", "latest"],
        );
        check(push("master"), &all, &[], &[]);
        check(
            push("master"),
            &["type=semver,pattern={{version}},value=v2.0.0"],
            &[],
            &["2.0.0", "latest"],
        );
        check(tag("foo"), &all, &[], &[]);
        check(tag("1.2"), &all, &[], &[]);
        check(tag("v01.2.3"), &all, &[], &[]);
        check(tag("v1.2.3+build.5"), &all[..1], &[], &["1.2.3", "latest"]);
        check(
            tag("v1.2.3+build.5"),
            &["type=semver,pattern={{raw}}"],
            &[],
            &["v1.2.3-build.5", "latest"],
        );
        check(
            tag("v1.2.3-alpha"),
            &["type=semver,pattern={{version}}", "type=raw,value=dev"],
            &[],
            &["1.2.3-alpha", "dev"],
        );
    }

    #[test]
    fn semver_match_keeps_group_one_of_the_raw_tag() {
        // metadata-action's README table for `type=semver`.
        let rule = r"type=semver,pattern={{version}},match=v(\d.\d.\d)$";
        check(tag("p1/v1.2.3"), &[rule], &[], &["1.2.3", "latest"]);
        check(
            push("master"),
            &[r"type=semver,pattern={{version}},value=p1/v1.0.0,match=v(\d.\d.\d)$"],
            &[],
            &["1.0.0", "latest"],
        );
        // No match: the value is used whole (`/` then becomes `-`).
        check(tag("v1.2.3"), &[rule], &[], &["1.2.3", "latest"]);
        check(tag("p1/x"), &[rule], &[], &[]);
        check(
            tag("p1/v2.0.8-beta.67"),
            &[r"type=semver,pattern={{major}},match=p1/(v.*)"],
            &[],
            &["2.0.8-beta.67"],
        );
        check_error(
            tag("v1"),
            &["type=semver,pattern={{version}},match=v(("],
            &[],
            "invalid `match` value `v((` in `type=semver,pattern={{version}},match=v((`; expected a regex whose group 1 is the version (regex parse error:\n    v((\n      ^\nerror: unclosed group)",
        );
    }

    #[test]
    fn pep440_rules_as_metadata_actions_readme() {
        // Its README table for `type=pep440`, line by line.
        let cases: [(&str, &str, &[&str]); 12] = [
            ("1.2.3", "{{raw}}", &["1.2.3", "latest"]),
            ("1.2.3", "{{version}}", &["1.2.3", "latest"]),
            ("v1.2.3", "{{version}}", &["1.2.3", "latest"]),
            ("1.2.3", "{{major}}.{{minor}}", &["1.2", "latest"]),
            ("1.2.3", "v{{major}}", &["v1", "latest"]),
            ("v1.2.3rc2", "{{raw}}", &["v1.2.3rc2"]),
            ("1.2.3rc2", "{{version}}", &["1.2.3rc2"]),
            ("1.2.3rc2", "{{major}}.{{minor}}", &["1.2.3rc2"]),
            ("1.2.3post1", "{{major}}.{{minor}}", &["1.2.3.post1"]),
            ("1.2.3beta2", "{{major}}.{{minor}}", &["1.2.3b2"]),
            ("1.0dev4", "{{major}}.{{minor}}", &["1.0.dev4"]),
            ("1.1beta2", "{{version}}", &["1.1b2"]),
        ];
        for (git_tag, pattern, expected) in cases {
            let rule = format!("type=pep440,pattern={pattern}");
            check(tag(git_tag), &[&rule], &[], expected);
        }
        check(
            tag("p1/v1.2.3"),
            &[r"type=pep440,pattern={{version}},match=v(\d.\d.\d)$"],
            &[],
            &["1.2.3", "latest"],
        );
        check(
            push("master"),
            &["type=pep440,pattern={{version}},value=1.0.0"],
            &[],
            &["1.0.0", "latest"],
        );
        check(
            tag("1.2"),
            &["type=pep440,pattern={{major}}.{{minor}}.{{patch}}"],
            &[],
            &["1.2.0", "latest"],
        );
        // A local version is a release; `+` becomes `-`.
        check(
            tag("1.2.3+ubuntu.1"),
            &["type=pep440,pattern={{version}}"],
            &[],
            &["1.2.3-ubuntu-1", "latest"],
        );
        check(tag("1.2.x"), &["type=pep440,pattern={{version}}"], &[], &[]);
        check(
            push("master"),
            &["type=pep440,pattern={{version}}"],
            &[],
            &[],
        );
        // Priority 900, as semver.
        check(
            tag("1.2.3"),
            &["type=ref,event=tag", "type=pep440,pattern={{major}}"],
            &[],
            &["1", "1.2.3", "latest"],
        );
    }

    #[test]
    fn is_not_default_branch_is_the_negation() {
        let rule = "type=raw,value=dev,enable={{is_not_default_branch}}";
        check(push("feature"), &[rule], &[], &["dev"]);
        check(push("master"), &[rule], &[], &[]);
        check(tag("v1.0.0"), &[rule], &[], &["dev"]);
        check(schedule("master"), &[rule], &[], &[]);
    }

    #[test]
    fn a_cut_keeps_the_flavor_prefix_and_suffix() {
        let long = "feature/".to_owned() + &"x".repeat(150);
        let rules = ["type=ref,event=branch"];
        let cut = format!(
            "feature-{}",
            "x".repeat(128 - "feature-".len() - "-alpine".len())
        );
        check(
            push(&long),
            &rules,
            &["suffix=-alpine"],
            &[&format!("{cut}-alpine")],
        );
        let cut = format!(
            "feature-{}",
            "x".repeat(128 - "feature-".len() - "-debian".len())
        );
        check(
            push(&long),
            &rules,
            &["suffix=-debian"],
            &[&format!("{cut}-debian")],
        );
        let cut = format!(
            "feature-{}",
            "x".repeat(128 - "feature-".len() - "v2-".len())
        );
        check(
            push(&long),
            &rules,
            &["prefix=v2-"],
            &[&format!("v2-{cut}")],
        );
        // Exactly 128 characters is not cut.
        let exact = "y".repeat(121);
        check(
            push(&exact),
            &rules,
            &["suffix=-alpine"],
            &[&format!("{exact}-alpine")],
        );
    }

    #[test]
    fn custom_labels_and_annotations_replace_or_add() {
        let ctx = push("master");
        let labels = oci_annotations(
            Some("1.0.0"),
            &[
                "maintainer=CrazyMax",
                "org.opencontainers.image.title=MyCustomTitle",
                "org.opencontainers.image.vendor=MyCompany",
                "built.from={{branch}}",
                "a=b=c",
                "no-equals-sign",
            ],
            &ctx,
        )
        .expect("valid entries");
        assert_eq!(labels["maintainer"], "CrazyMax");
        assert_eq!(labels["org.opencontainers.image.title"], "MyCustomTitle");
        assert_eq!(labels["org.opencontainers.image.vendor"], "MyCompany");
        assert_eq!(labels["org.opencontainers.image.version"], "1.0.0");
        assert_eq!(labels["built.from"], "master");
        assert_eq!(labels["a"], "b=c");
        assert!(!labels.contains_key("no-equals-sign"));
        let annotations = annotations_at_levels(
            &BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            &["manifest".to_owned(), "index".to_owned()],
        );
        assert_eq!(annotations, ["manifest:k=v", "index:k=v"]);
    }

    #[test]
    fn order_is_priority_then_declaration() {
        check(
            tag("v1.2.3"),
            &["type=ref,event=tag", "type=semver,pattern={{version}}"],
            &[],
            &["1.2.3", "v1.2.3", "latest"],
        );
        check(
            tag("v1.2.3"),
            &[
                "type=sha",
                "type=ref,event=branch",
                "type=semver,pattern={{version}}",
            ],
            &[],
            &["1.2.3", "sha-860c190", "latest"],
        );
        check(
            push("master"),
            &["type=raw,value=b", "type=raw,value=a"],
            &[],
            &["b", "a"],
        );
        check(
            push("master"),
            &["type=raw,value=b", "type=raw,value=a,priority=201"],
            &[],
            &["a", "b"],
        );
        check(
            push("master"),
            &["type=sha", "type=raw,value=x"],
            &[],
            &["x", "sha-860c190"],
        );
        check(
            push("master"),
            &["type=sha,priority=300", "type=raw,value=x"],
            &[],
            &["sha-860c190", "x"],
        );
        check(
            push("master"),
            &["type=edge", "type=ref,event=branch"],
            &[],
            &["edge", "master"],
        );
    }

    #[test]
    fn latest_auto_is_decided_by_the_first_rule_that_yields_a_tag() {
        check(
            tag("v1.0.0"),
            &["type=sha", "type=ref,event=tag"],
            &[],
            &["v1.0.0", "sha-860c190", "latest"],
        );
        check(
            tag("v1.0.0"),
            &["type=sha,priority=601", "type=ref,event=tag"],
            &[],
            &["sha-860c190", "v1.0.0"],
        );
        check(tag("v1.0.0"), &["type=raw,value=foo"], &[], &["foo"]);
        check(
            tag("v1.0.0"),
            &["type=match,pattern=\\d.\\d.\\d"],
            &[],
            &["1.0.0", "latest"],
        );
        // A semver rule that yields nothing leaves the decision to the next one.
        check(
            tag("foo"),
            &["type=semver,pattern={{version}}", "type=ref,event=tag"],
            &[],
            &["foo", "latest"],
        );
        check(push("master"), &["type=ref,event=branch"], &[], &["master"]);
        check(
            tag("v2.0.0-rc.1"),
            &["type=semver,pattern={{version}}", "type=ref,event=tag"],
            &[],
            &["2.0.0-rc.1", "v2.0.0-rc.1"],
        );
    }

    #[test]
    fn latest_flavor() {
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["latest=false"],
            &["1.2.3"],
        );
        check(
            push("master"),
            &["type=ref,event=branch"],
            &["latest=true"],
            &["master", "latest"],
        );
        check(
            tag("v1.2.3-beta"),
            &["type=semver,pattern={{version}}"],
            &["latest=true"],
            &["1.2.3-beta", "latest"],
        );
        check(
            push("master"),
            &["type=sha"],
            &["latest=default-branch"],
            &["sha-860c190", "latest"],
        );
        check(
            push("dev"),
            &["type=sha"],
            &["latest=default-branch"],
            &["sha-860c190"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["latest=default-branch"],
            &["1.2.3"],
        );
        // No tag at all means no `latest` either.
        check(
            push("master"),
            &["type=ref,event=tag"],
            &["latest=true"],
            &[],
        );
        check(
            push("master"),
            &["type=raw,value=latest"],
            &["latest=true"],
            &["latest"],
        );
    }

    #[test]
    fn flavor_prefix_and_suffix() {
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["prefix=v"],
            &["v1.2.3", "latest"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["prefix=v,onlatest=true"],
            &["v1.2.3", "vlatest"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["suffix=-alpine,onlatest=true"],
            &["1.2.3-alpine", "latest-alpine"],
        );
        check(
            tag("v1.2.3"),
            &["type=semver,pattern={{version}}"],
            &["suffix=-alpine"],
            &["1.2.3-alpine", "latest"],
        );
        check(
            push("master"),
            &["type=raw,value=foo,prefix="],
            &["prefix=x-"],
            &["foo"],
        );
        check(
            push("master"),
            &["type=raw,value=foo"],
            &["prefix={{date 'YYYY'}}-"],
            &["2020-foo"],
        );
        check(
            push("master"),
            &["type=raw,value=foo"],
            &["prefix=a-", "prefix=b-"],
            &["b-foo"],
        );
    }

    #[test]
    fn match_rules() {
        check(
            tag("v1.2.3"),
            &["type=match,pattern=v(\\d.\\d),group=1"],
            &[],
            &["1.2", "latest"],
        );
        check(tag("v1.2.3"), &["type=match,pattern=x(\\d)"], &[], &[]);
        check(
            tag("V2.0"),
            &["type=match,pattern=/^v(.*)$/i,group=1"],
            &[],
            &["2.0", "latest"],
        );
        check(
            push("master"),
            &["type=match,pattern=\\d+,value=build-42"],
            &[],
            &["42", "latest"],
        );
        check(push("master"), &["type=match,pattern=\\d+"], &[], &[]);
        check(
            tag("app/v12.3"),
            &["type=match,\"pattern=app/v(\\d{1,3})\",group=1"],
            &[],
            &["12", "latest"],
        );
        check(
            tag("v1"),
            &["type=match,pattern=v(\\d)(x)?,group=2"],
            &[],
            &[],
        );
    }

    #[test]
    fn edge_rules() {
        check(push("master"), &["type=edge"], &[], &["edge"]);
        check(push("dev"), &["type=edge"], &[], &[]);
        check(push("dev"), &["type=edge,branch=dev"], &[], &["edge"]);
        check(tag("v1.0.0"), &["type=edge"], &[], &[]);
    }

    #[test]
    fn raw_rules_and_expressions() {
        check(
            push("master"),
            &["type=raw,value=foo", "type=raw,value=bar"],
            &[],
            &["foo", "bar"],
        );
        check(push("master"), &["foo"], &[], &["foo"]);
        check(
            push("master"),
            &["type=raw,value=foo", "type=raw,value=foo"],
            &[],
            &["foo"],
        );
        check(
            push("feature/x"),
            &["type=raw,value={{branch}}"],
            &[],
            &["feature-x"],
        );
        check(tag("v1"), &["type=raw,value={{branch}}"], &[], &[]);
        check(
            push("master"),
            &["type=raw,value={{sha}}"],
            &[],
            &["860c190"],
        );
        check(
            push("master"),
            &["type=raw,value={{date 'YYYYMMDD'}}"],
            &[],
            &["20200110"],
        );
        check(
            push("master"),
            &["type=raw,value={{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}"],
            &[],
            &["20200110-093000"],
        );
        check(
            push("master"),
            &["type=raw,value={{commit_date 'YYYY-MM-DDTHH:mm'}}"],
            &[],
            &["2020-01-09T12-34"],
        );
        check(
            tag("v1"),
            &["type=raw,value=custom-{{tag}}"],
            &[],
            &["custom-v1"],
        );
        check(
            pr(4),
            &["type=raw,value=into-{{base_ref}}"],
            &[],
            &["into-main"],
        );
        check(
            push("master"),
            &["type=raw,value={{ branch }}-{{sha}}"],
            &[],
            &["master-860c190"],
        );
        check(push("master"), &["type=raw,value=my tag"], &[], &["my-tag"]);
    }

    #[test]
    fn enable_expressions() {
        let latest = ["type=raw,value=latest,enable={{is_default_branch}}"];
        check(push("master"), &latest, &[], &["latest"]);
        check(push("dev"), &latest, &[], &[]);
        check(tag("v1.0.0"), &latest, &[], &[]);
        check(schedule("dev"), &latest, &[], &["latest"]);
        check(
            push("master"),
            &["type=ref,event=branch,enable=false"],
            &[],
            &[],
        );
        check(
            push("master"),
            &["type=ref,event=branch,enable=false", "type=sha"],
            &[],
            &["sha-860c190"],
        );
    }

    #[test]
    fn schedule_rules() {
        check(schedule("master"), &["type=schedule"], &[], &["nightly"]);
        check(
            schedule("master"),
            &["type=schedule,pattern={{date 'YYYYMMDD'}}"],
            &[],
            &["20200110"],
        );
        check(
            schedule("master"),
            &["type=schedule,pattern=nightly-{{date 'YYYY.MM'}}"],
            &[],
            &["nightly-2020.01"],
        );
        check(push("master"), &["type=schedule"], &[], &[]);
        check(
            schedule("master"),
            &["type=schedule"],
            &["latest=true"],
            &["nightly", "latest"],
        );
    }

    #[test]
    fn tags_registries_reject_are_made_valid() {
        check(push("-dash"), &["type=ref,event=branch"], &[], &["dash"]);
        check(
            push("master"),
            &["type=raw,value=.hidden"],
            &[],
            &["hidden"],
        );
        check(push("master"), &["type=raw,value=/"], &[], &[]);
        let long = "a".repeat(200);
        check(
            push(&long),
            &["type=ref,event=branch"],
            &[],
            &[&"a".repeat(128)],
        );
    }

    #[test]
    fn images_prefix_every_tag() {
        let meta = run(
            &tag("v1.0.0"),
            &["type=ref,event=tag"],
            &[],
            &["user/app", "ghcr.io/User/App"],
        )
        .unwrap();
        assert_eq!(
            meta.tags,
            [
                "user/app:v1.0.0",
                "user/app:latest",
                "ghcr.io/user/app:v1.0.0",
                "ghcr.io/user/app:latest"
            ]
        );
        let meta = run(
            &tag("v1.0.0"),
            &["type=ref,event=tag"],
            &[],
            &["user/app,ghcr.io/x/y"],
        )
        .unwrap();
        assert_eq!(
            meta.tags,
            [
                "user/app:v1.0.0",
                "user/app:latest",
                "ghcr.io/x/y:v1.0.0",
                "ghcr.io/x/y:latest"
            ]
        );
        let meta = run(
            &tag("v1.0.0"),
            &["type=ref,event=tag"],
            &[],
            &["name=a/b", "name=c/d,enable=false"],
        )
        .unwrap();
        assert_eq!(meta.tags, ["a/b:v1.0.0", "a/b:latest"]);
    }

    #[test]
    fn labels_are_metadata_actions() {
        let mut context = tag("v1.2.3");
        context.repository = RepoInfo {
            name: "app".to_owned(),
            description: "An app".to_owned(),
            html_url: "https://github.com/o/app".to_owned(),
            license: "MIT".to_owned(),
        };
        let meta = run(&context, &["type=semver,pattern={{version}}"], &[], &[]).unwrap();
        let labels: Vec<String> = meta
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            labels,
            [
                "org.opencontainers.image.created=2020-01-10T00:30:00.000Z",
                "org.opencontainers.image.description=An app",
                "org.opencontainers.image.licenses=MIT",
                &format!("org.opencontainers.image.revision={SHA}"),
                "org.opencontainers.image.source=https://github.com/o/app",
                "org.opencontainers.image.title=app",
                "org.opencontainers.image.url=https://github.com/o/app",
                "org.opencontainers.image.version=1.2.3",
            ]
        );
        assert_eq!(meta.version.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn errors_name_the_rule_and_what_is_valid() {
        check_error(
            push("m"),
            &["type=ref,evnt=branch"],
            &[],
            "unknown tag rule attribute `evnt` in `type=ref,evnt=branch` — did you mean `event`?; valid attributes: type, enable, priority, prefix, suffix, event",
        );
        check_error(
            push("m"),
            &["type=semvr,pattern={{version}}"],
            &[],
            "unknown tag rule type `semvr` in `type=semvr,pattern={{version}}` — did you mean `semver`?; valid types: schedule, semver, pep440, match, edge, ref, raw, sha",
        );
        check_error(
            push("m"),
            &["type=semver"],
            &[],
            "tag rule `type=semver` needs a `pattern` attribute",
        );
        check_error(
            push("m"),
            &["type=ref"],
            &[],
            "tag rule `type=ref` needs a `event` attribute",
        );
        check_error(
            push("m"),
            &["type=ref,event=push"],
            &[],
            "invalid `event` value `push` in `type=ref,event=push`; expected `branch`, `tag` or `pr`",
        );
        check_error(
            push("m"),
            &["type=sha,format=medium"],
            &[],
            "invalid `format` value `medium` in `type=sha,format=medium`; expected `short` or `long`",
        );
        check_error(
            push("m"),
            &["type=raw,value=x,priority=high"],
            &[],
            "invalid `priority` value `high` in `type=raw,value=x,priority=high`; expected an integer such as `600`",
        );
        check_error(
            push("m"),
            &["type=raw,value=x,enable={{branch}}"],
            &[],
            "invalid `enable` value `m` in `type=raw,value=x,enable={{branch}}`; expected an expression that gives `true` or `false`",
        );
        check_error(
            push("m"),
            &["type=raw,value={{brnch}}"],
            &[],
            "invalid expression in `{{brnch}}`: unknown expression `{{brnch}}`; valid names: branch, tag, sha, base_ref, is_default_branch, is_not_default_branch, date, commit_date",
        );
        check_error(
            push("m"),
            &["type=raw,value={{branch"],
            &[],
            "invalid expression in `{{branch`: `{{` is not closed by `}}`",
        );
        check_error(
            push("m"),
            &["type=pep440,value=1.0"],
            &[],
            "tag rule `type=pep440,value=1.0` needs a `pattern` attribute",
        );
        check_error(
            push("m"),
            &[],
            &["latest=maybe"],
            "invalid `latest` value `maybe` in `latest=maybe`; expected `auto`, `true`, `false` or `default-branch`",
        );
        check_error(
            push("m"),
            &[],
            &["prefx=v"],
            "unknown flavor entry `prefx` in `prefx=v` — did you mean `prefix`?; valid entries: latest, prefix, suffix, onlatest",
        );
        check_error(
            push("m"),
            &["type=raw,value={{date 'YYYY' tz='Mars/Base'}}"],
            &[],
            "invalid expression in `{{date 'YYYY' tz='Mars/Base'}}`: unknown time zone `Mars/Base` (use an IANA name such as `Europe/Paris`)",
        );
        check_error(
            tag("v1.0.0"),
            &["type=semver,pattern={{branch}}"],
            &[],
            "invalid expression in `{{branch}}`: unknown expression `{{branch}}`; valid names: version, major, minor, patch, raw",
        );
    }

    #[track_caller]
    fn check_moment(format: &str, expected: &str) {
        let time: jiff::Timestamp = "2021-03-04T05:06:07.089Z".parse().unwrap();
        assert_eq!(
            format_moment(&time.to_zoned(jiff::tz::TimeZone::UTC), format),
            expected,
            "format `{format}`"
        );
    }

    #[test]
    fn moment_formats() {
        check_moment("YYYYMMDD", "20210304");
        check_moment("YY-M-D H:m:s", "21-3-4 5:6:7");
        check_moment("YYYY-MM-DDTHH:mm:ss.SSSZ", "2021-03-04T05:06:07.089+00:00");
        check_moment("[week] W, Q, DDD, Do", "week 9, 1, 63, 4th");
        check_moment(
            "dddd ddd MMMM MMM hh A a",
            "Thursday Thu March Mar 05 AM am",
        );
        check_moment("X", "1614834367");
    }
}
