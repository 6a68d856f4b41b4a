//! Versions from Conventional Commits: parsing a commit message, the bump it
//! asks for, the next version after the last release, and a changelog
//! section grouped by type.
//!
//! Pure: the caller walks the history (commits since the last release tag,
//! newest first) and hands the messages in.

pub use slipway_contract::img_tag::{Bump, ConventionalCommit};

/// The types of the Conventional Commits convention (as commitlint's
/// `config-conventional` lists them); `check-commit` accepts these.
pub const KNOWN_TYPES: [&str; 11] = [
    "build", "chore", "ci", "docs", "feat", "fix", "perf", "refactor", "revert", "style", "test",
];

/// Why a message is not a Conventional Commit, saying what would be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// The message is empty or only whitespace.
    #[error("the commit message is empty; expected `type(scope): description`")]
    Empty,
    /// The subject line lacks the `type: ` head.
    #[error(
        "subject `{subject}` does not start with `type: ` or `type(scope): `, as in `fix(api): reject empty names`"
    )]
    NoType {
        /// The first line.
        subject: String,
    },
    /// The type is not one of the accepted ones.
    #[error("unknown commit type `{kind}` in `{subject}`{hint}; valid types: {valid}")]
    UnknownType {
        /// The first line.
        subject: String,
        /// The type as written.
        kind: String,
        /// ` — did you mean …?`, or empty.
        hint: String,
        /// The accepted types, comma-separated.
        valid: String,
    },
    /// `type(scope)` with an empty or unclosed scope.
    #[error("invalid scope in `{subject}`: {reason}")]
    Scope {
        /// The first line.
        subject: String,
        /// What is wrong.
        reason: String,
    },
    /// No `: ` (colon and space) after the type, scope and `!`.
    #[error("subject `{subject}` needs `: ` (a colon and a space) after the type{after}")]
    NoSeparator {
        /// The first line.
        subject: String,
        /// ` and scope`, or empty.
        after: String,
    },
    /// Nothing after `type: `.
    #[error("subject `{subject}` has no description after `: `")]
    NoDescription {
        /// The first line.
        subject: String,
    },
    /// The type has upper-case letters (commitlint's `type-case`: lower-case).
    #[error("commit type `{kind}` in `{subject}` must be lower-case: `{lower}`")]
    TypeCase {
        /// The first line.
        subject: String,
        /// The type as written.
        kind: String,
        /// The type in lower case.
        lower: String,
    },
    /// The line after the subject is not blank.
    #[error("the body must be separated from the subject `{subject}` by a blank line")]
    NoBlankLine {
        /// The first line.
        subject: String,
    },
}

slipway_core::cli::exit_status!(CommitError => USAGE);

/// Parsing a [`ConventionalCommit`] (a contract type, serde only) from a
/// commit message.
pub trait ParseCommit: Sized {
    /// Parses a message: `type(scope)!: description`, then optionally a blank
    /// line, a body and footers. Any type is accepted; see [`check`] for the
    /// strict form.
    fn parse(message: &str) -> Result<Self, CommitError>;
}

impl ParseCommit for ConventionalCommit {
    fn parse(message: &str) -> Result<ConventionalCommit, CommitError> {
        let message = message.trim();
        let mut lines = message.lines();
        let subject = lines
            .next()
            .ok_or(CommitError::Empty)?
            .trim_end()
            .to_owned();
        if subject.is_empty() {
            return Err(CommitError::Empty);
        }
        let type_len = subject
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(subject.len());
        if type_len == 0 || !subject[..type_len].starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(CommitError::NoType { subject });
        }
        let kind = subject[..type_len].to_ascii_lowercase();
        let mut rest = &subject[type_len..];
        let mut scope = None;
        if let Some(after) = rest.strip_prefix('(') {
            let Some(end) = after.find(')') else {
                return Err(CommitError::Scope {
                    subject,
                    reason: "`(` is not closed by `)`".to_owned(),
                });
            };
            let text = after[..end].trim();
            if text.is_empty() {
                return Err(CommitError::Scope {
                    subject,
                    reason: "the scope is empty; drop the parentheses or name a scope".to_owned(),
                });
            }
            scope = Some(text.to_owned());
            rest = &after[end + 1..];
        }
        let bang = rest.starts_with('!');
        if bang {
            rest = &rest[1..];
        }
        let Some(description) = rest.strip_prefix(": ") else {
            if rest.starts_with(':') || scope.is_some() || bang {
                let after = if scope.is_some() { " and scope" } else { "" }.to_owned();
                return Err(CommitError::NoSeparator { subject, after });
            }
            return Err(CommitError::NoType { subject });
        };
        let description = description.trim().to_owned();
        if description.is_empty() {
            return Err(CommitError::NoDescription { subject });
        }
        let mut body = lines.clone();
        if body.next().is_some_and(|second| !second.trim().is_empty()) {
            return Err(CommitError::NoBlankLine { subject });
        }
        let breaking_note = breaking_footer(message);
        Ok(ConventionalCommit {
            kind,
            scope,
            is_breaking: bang || breaking_note.is_some(),
            description,
            breaking_note,
        })
    }
}

/// The text of a `BREAKING CHANGE:` (or `BREAKING-CHANGE:`) footer, with its
/// continuation lines, if the message has one after its subject.
fn breaking_footer(message: &str) -> Option<String> {
    let mut lines = message.lines().skip(1);
    while let Some(line) = lines.next() {
        let note = line
            .strip_prefix("BREAKING CHANGE:")
            .or_else(|| line.strip_prefix("BREAKING-CHANGE:"));
        if let Some(note) = note {
            let mut text = note.trim().to_owned();
            for more in lines.by_ref() {
                if more.trim().is_empty() {
                    break;
                }
                text.push(' ');
                text.push_str(more.trim());
            }
            return Some(text);
        }
    }
    None
}

/// Checks a commit message or pull request title strictly: a Conventional
/// Commit whose type is lower-case (commitlint's default `type-case`) and
/// one of `types` (e.g. [`KNOWN_TYPES`]).
pub fn check(message: &str, types: &[&str]) -> Result<ConventionalCommit, CommitError> {
    let commit = ConventionalCommit::parse(message)?;
    let subject = message.trim().lines().next().unwrap_or_default();
    let written = &subject[..commit.kind.len()];
    if written != commit.kind {
        return Err(CommitError::TypeCase {
            subject: subject.to_owned(),
            kind: written.to_owned(),
            lower: commit.kind,
        });
    }
    if !types.contains(&commit.kind.as_str()) {
        let hint = types
            .iter()
            .map(|t| (strsim::jaro_winkler(&commit.kind, t), t))
            .filter(|(score, _)| *score > 0.7)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, t)| format!(" — did you mean `{t}`?"))
            .unwrap_or_default();
        return Err(CommitError::UnknownType {
            subject: message.trim().lines().next().unwrap_or_default().to_owned(),
            kind: commit.kind,
            hint,
            valid: types.join(", "),
        });
    }
    Ok(commit)
}

/// The largest bump the messages ask for; messages that are not
/// Conventional Commits ask for none.
pub fn bump_for<S: AsRef<str>>(messages: &[S]) -> Bump {
    messages
        .iter()
        .filter_map(|message| ConventionalCommit::parse(message.as_ref()).ok())
        .map(|commit| commit.bump())
        .max()
        .unwrap_or(Bump::None)
}

/// `base` bumped: a major bump while `0.x` is a minor one, as semver's
/// "anything may change" initial development phase is usually read.
pub fn apply_bump(base: &semver::Version, bump: Bump) -> semver::Version {
    let (major, minor, patch) = (base.major, base.minor, base.patch);
    let (major, minor, patch) = match bump {
        Bump::None => (major, minor, patch),
        Bump::Patch => (major, minor, patch + 1),
        Bump::Minor => (major, minor + 1, 0),
        Bump::Major if major == 0 => (0, minor + 1, 0),
        Bump::Major => (major + 1, 0, 0),
    };
    semver::Version::new(major, minor, patch)
}

/// What `next-version` decided.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NextVersion {
    /// Whether there is something to release (the bump is not `none`).
    pub has_release: bool,
    /// The next version (the last release's when the bump is none).
    #[serde(serialize_with = "display")]
    pub version: semver::Version,
    /// The last release (`None` when there was none: `0.0.0` is the base).
    #[serde(serialize_with = "display_option")]
    pub previous: Option<semver::Version>,
    /// The bump applied.
    pub bump: Bump,
    /// Commits since the last release (the prerelease counter).
    pub height: usize,
}

/// The next version after `previous` (the last release reachable from
/// HEAD, prereleases excluded) given the messages of the commits since,
/// newest first. `bump_override` replaces the computed bump (release
/// labels). With `prerelease = Some("dev")` and something to release, the
/// version is `X.Y.Z-dev.N`, N being the number of commits since the last
/// release: a counter that needs no pushed tags.
///
/// `highest_release` is the highest release tagged anywhere in the
/// repository. A prerelease never sorts below it: a branch that was not
/// merged back after a release (`dev` still at `1.2.0` while `1.3.0` is
/// out) bumps from it instead (`1.4.0-dev.N`, not `1.3.0-dev.N`).
pub fn next_version<S: AsRef<str>>(
    previous: Option<&semver::Version>,
    highest_release: Option<&semver::Version>,
    messages: &[S],
    bump_override: Option<Bump>,
    prerelease: Option<&str>,
) -> Result<NextVersion, semver::Error> {
    let base = previous
        .cloned()
        .unwrap_or_else(|| semver::Version::new(0, 0, 0));
    let bump = bump_override.unwrap_or_else(|| bump_for(messages));
    let mut version = apply_bump(&base, bump);
    if let (Some(id), false) = (prerelease, bump == Bump::None) {
        if let Some(highest) = highest_release.filter(|highest| **highest >= version) {
            version = apply_bump(highest, bump);
        }
        version.pre = semver::Prerelease::new(&format!("{id}.{}", messages.len()))?;
    }
    Ok(NextVersion {
        has_release: bump != Bump::None,
        version,
        previous: previous.cloned(),
        bump,
        height: messages.len(),
    })
}

/// `changelog` (a Markdown file's text, possibly empty) with `section` (from
/// [`changelog`], headed `## <version>`) added on top: after the file's title
/// and preamble, before the first `## ` section. `None` when the file already
/// has a section for that version, so running twice adds nothing.
pub fn prepend_section(
    changelog: &str,
    version: &semver::Version,
    section: &str,
) -> Option<String> {
    let heading = format!("## {version}");
    let has_version = changelog.lines().any(|line| {
        line.strip_prefix(&heading)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    });
    if has_version {
        return None;
    }
    if changelog.trim().is_empty() {
        return Some(format!("# Changelog\n\n{section}"));
    }
    let section = section.trim_end();
    let mut offset = 0;
    for line in changelog.split_inclusive('\n') {
        if line.starts_with("## ") {
            return Some(format!(
                "{}{section}\n\n{}",
                &changelog[..offset],
                &changelog[offset..]
            ));
        }
        offset += line.len();
    }
    let separator = if changelog.ends_with("\n\n") {
        ""
    } else if changelog.ends_with('\n') {
        "\n"
    } else {
        "\n\n"
    };
    Some(format!("{changelog}{separator}{section}\n"))
}

fn display<S: serde::Serializer>(
    value: &semver::Version,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn display_option<S: serde::Serializer>(
    value: &Option<semver::Version>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

/// One commit for the changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogEntry {
    /// The short sha shown after the entry.
    pub short_sha: String,
    /// The whole commit message.
    pub message: String,
}

/// The changelog sections, in the order they are written.
const SECTIONS: [(&str, &str); 4] = [
    ("feat", "Features"),
    ("fix", "Bug fixes"),
    ("perf", "Performance"),
    ("revert", "Reverts"),
];

/// A Markdown changelog section for `version`: breaking changes first, then
/// features, fixes, performance and reverts (a breaking commit only under
/// breaking changes); other types and messages that are not Conventional
/// Commits are left out. Pass every commit since the last
/// final release, so a release's section also holds what its prereleases had.
pub fn changelog(
    version: &semver::Version,
    date: Option<&str>,
    commits: &[ChangelogEntry],
) -> String {
    let parsed: Vec<(ConventionalCommit, &str)> = commits
        .iter()
        .filter_map(|c| {
            ConventionalCommit::parse(&c.message)
                .ok()
                .map(|p| (p, c.short_sha.as_str()))
        })
        .collect();
    let line = |commit: &ConventionalCommit, text: &str, sha: &str| match &commit.scope {
        Some(scope) => format!("- **{scope}:** {text} ({sha})\n"),
        None => format!("- {text} ({sha})\n"),
    };
    let mut out = match date {
        Some(date) => format!("## {version} ({date})\n"),
        None => format!("## {version}\n"),
    };
    let breaking: String = parsed
        .iter()
        .filter(|(c, _)| c.is_breaking)
        .map(|(c, sha)| line(c, c.breaking_note.as_deref().unwrap_or(&c.description), sha))
        .collect();
    if !breaking.is_empty() {
        out.push_str(&format!("\n### Breaking changes\n\n{breaking}"));
    }
    for (kind, title) in SECTIONS {
        // A breaking commit is listed once, under breaking changes.
        let entries: String = parsed
            .iter()
            .filter(|(c, _)| c.kind == kind && !c.is_breaking)
            .map(|(c, sha)| line(c, &c.description, sha))
            .collect();
        if !entries.is_empty() {
            out.push_str(&format!("\n### {title}\n\n{entries}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_parse(message: &str, expected: Result<(&str, Option<&str>, bool, &str), &str>) {
        let actual = ConventionalCommit::parse(message);
        match (actual, expected) {
            (Ok(commit), Ok((kind, scope, breaking, description))) => {
                assert_eq!(
                    (
                        commit.kind.as_str(),
                        commit.scope.as_deref(),
                        commit.is_breaking,
                        commit.description.as_str()
                    ),
                    (kind, scope, breaking, description),
                    "message `{message}`"
                );
            }
            (Err(error), Err(expected)) => {
                assert_eq!(error.to_string(), expected, "message `{message}`")
            }
            (actual, expected) => {
                panic!("message `{message}`: got {actual:?}, expected {expected:?}")
            }
        }
    }

    #[test]
    fn parsing() {
        check_parse("feat: add x", Ok(("feat", None, false, "add x")));
        check_parse(
            "fix(api): reject empty",
            Ok(("fix", Some("api"), false, "reject empty")),
        );
        check_parse(
            "feat(api)!: drop v1",
            Ok(("feat", Some("api"), true, "drop v1")),
        );
        check_parse("refactor!: rename", Ok(("refactor", None, true, "rename")));
        check_parse(
            "Feat: capitalised type",
            Ok(("feat", None, false, "capitalised type")),
        );
        check_parse(
            "fix: x\n\nbody\n\nBREAKING CHANGE: the flag is gone",
            Ok(("fix", None, true, "x")),
        );
        check_parse(
            "fix: x\n\nBREAKING-CHANGE: gone",
            Ok(("fix", None, true, "x")),
        );
        check_parse(
            "fix: x\n\nmentions BREAKING CHANGE: inline only",
            Ok(("fix", None, false, "x")),
        );
        check_parse(
            "",
            Err("the commit message is empty; expected `type(scope): description`"),
        );
        check_parse(
            "add a thing",
            Err(
                "subject `add a thing` does not start with `type: ` or `type(scope): `, as in `fix(api): reject empty names`",
            ),
        );
        check_parse(
            "feat:missing space",
            Err("subject `feat:missing space` needs `: ` (a colon and a space) after the type"),
        );
        check_parse(
            "feat(api) x",
            Err("subject `feat(api) x` needs `: ` (a colon and a space) after the type and scope"),
        );
        check_parse(
            "feat(): x",
            Err(
                "invalid scope in `feat(): x`: the scope is empty; drop the parentheses or name a scope",
            ),
        );
        check_parse(
            "feat(api: x",
            Err("invalid scope in `feat(api: x`: `(` is not closed by `)`"),
        );
        check_parse(
            "feat: ",
            Err("subject `feat:` needs `: ` (a colon and a space) after the type"),
        );
        check_parse(
            "feat:  ",
            Err("subject `feat:` needs `: ` (a colon and a space) after the type"),
        );
        check_parse(
            "fix: x\nbody",
            Err("the body must be separated from the subject `fix: x` by a blank line"),
        );
    }

    #[test]
    fn strict_check_knows_the_types() {
        assert_eq!(
            check("feature: x", &KNOWN_TYPES).unwrap_err().to_string(),
            "unknown commit type `feature` in `feature: x` — did you mean `feat`?; valid types: build, chore, ci, docs, feat, fix, perf, refactor, revert, style, test"
        );
        assert!(check("docs(readme): typo", &KNOWN_TYPES).is_ok());
        // commitlint's default `type-case`: lower-case.
        assert_eq!(
            check("Feat: x", &KNOWN_TYPES).unwrap_err().to_string(),
            "commit type `Feat` in `Feat: x` must be lower-case: `feat`"
        );
        assert_eq!(
            check("chore: x", &["feat", "fix"]).unwrap_err().to_string(),
            "unknown commit type `chore` in `chore: x`; valid types: feat, fix"
        );
    }

    #[track_caller]
    fn check_next(
        previous: Option<&str>,
        messages: &[&str],
        bump: Option<Bump>,
        pre: Option<&str>,
        expected: &str,
    ) {
        let previous = previous.map(|v| semver::Version::parse(v).unwrap());
        let next = next_version(previous.as_ref(), None, messages, bump, pre).unwrap();
        assert_eq!(
            next.version.to_string(),
            expected,
            "from {previous:?} with {messages:?}"
        );
    }

    #[test]
    fn next_versions() {
        check_next(Some("1.2.3"), &["fix: a"], None, None, "1.2.4");
        check_next(Some("1.2.3"), &["perf: a"], None, None, "1.2.4");
        check_next(Some("1.2.3"), &["fix: a", "feat: b"], None, None, "1.3.0");
        check_next(Some("1.2.3"), &["feat!: b", "fix: a"], None, None, "2.0.0");
        check_next(
            Some("1.2.3"),
            &["fix: a\n\nBREAKING CHANGE: gone"],
            None,
            None,
            "2.0.0",
        );
        check_next(Some("0.4.1"), &["feat!: b"], None, None, "0.5.0");
        check_next(Some("0.4.1"), &["feat: b"], None, None, "0.5.0");
        check_next(
            Some("1.2.3"),
            &["docs: a", "chore: b", "not conventional"],
            None,
            None,
            "1.2.3",
        );
        check_next(Some("1.2.3"), &[], None, None, "1.2.3");
        check_next(None, &["feat: first"], None, None, "0.1.0");
        check_next(None, &["fix: first"], None, None, "0.0.1");
        check_next(Some("1.2.3"), &["fix: a"], Some(Bump::Major), None, "2.0.0");
        check_next(Some("1.2.3"), &["feat: a"], Some(Bump::None), None, "1.2.3");
        check_next(
            Some("1.2.3"),
            &["feat: a", "fix: b", "docs: c"],
            None,
            Some("dev"),
            "1.3.0-dev.3",
        );
        check_next(Some("1.2.3"), &["docs: c"], None, Some("dev"), "1.2.3");
        check_next(
            Some("1.2.3"),
            &["fix: c"],
            Some(Bump::Minor),
            Some("rc"),
            "1.3.0-rc.1",
        );
    }

    #[test]
    fn a_prerelease_never_sorts_below_an_existing_release() {
        let v = |text: &str| semver::Version::parse(text).unwrap();
        let next = |previous: &str, highest: &str, pre: Option<&str>| {
            next_version(
                Some(&v(previous)),
                Some(&v(highest)),
                &["feat: a", "fix: b"],
                None,
                pre,
            )
            .unwrap()
            .version
            .to_string()
        };
        // `dev` not merged back after 1.3.0 was released from main.
        assert_eq!(next("1.2.0", "1.3.0", Some("dev")), "1.4.0-dev.2");
        assert_eq!(next("1.2.0", "1.2.0", Some("dev")), "1.3.0-dev.2");
        assert_eq!(next("1.2.0", "1.2.5", Some("dev")), "1.3.0-dev.2");
        assert_eq!(next("1.2.0", "2.0.0", Some("rc")), "2.1.0-rc.2");
        // A release is what the commits since the reachable release ask.
        assert_eq!(next("1.2.0", "1.3.0", None), "1.3.0");
        let nothing =
            next_version(Some(&v("1.2.0")), None, &["docs: x"], None, Some("dev")).unwrap();
        assert!(!nothing.has_release);
        assert_eq!(nothing.version.to_string(), "1.2.0");
    }

    #[test]
    fn a_section_is_added_on_top_once() {
        let version = semver::Version::new(1, 1, 0);
        let section = "## 1.1.0\n\n### Features\n\n- a (aaaaaaa)\n";
        let new = prepend_section("", &version, section).expect("a new file");
        assert_eq!(
            new,
            "# Changelog\n\n## 1.1.0\n\n### Features\n\n- a (aaaaaaa)\n"
        );
        assert_eq!(prepend_section(&new, &version, section), None);
        let old = "# Changelog\n\nAll notable changes.\n\n## 1.0.0\n\n- x\n";
        assert_eq!(
            prepend_section(old, &version, section).expect("a new section"),
            "# Changelog\n\nAll notable changes.\n\n## 1.1.0\n\n### Features\n\n- a (aaaaaaa)\n\n## 1.0.0\n\n- x\n"
        );
        assert_eq!(
            prepend_section("# Changelog\n", &version, section).expect("appended"),
            "# Changelog\n\n## 1.1.0\n\n### Features\n\n- a (aaaaaaa)\n"
        );
        // `## 1.1.0 (2024-05-01)` counts; `## 1.1.0-rc.1` does not.
        assert_eq!(
            prepend_section("## 1.1.0 (2024-05-01)\n", &version, section),
            None
        );
        assert!(prepend_section("## 1.1.0-rc.1\n", &version, section).is_some());
    }

    #[test]
    fn changelog_groups_by_type() {
        let entries: Vec<ChangelogEntry> = [
            ("aaaaaaa", "feat(api): add search"),
            ("bbbbbbb", "fix: crash on empty input"),
            ("ccccccc", "docs: typo"),
            (
                "ddddddd",
                "feat!: drop the v1 endpoint\n\nBREAKING CHANGE: `/v1` is gone",
            ),
            ("eeeeeee", "Merge branch 'x'"),
            ("fffffff", "perf: cache lookups"),
        ]
        .iter()
        .map(|(sha, message)| ChangelogEntry {
            short_sha: (*sha).to_owned(),
            message: (*message).to_owned(),
        })
        .collect();
        let version = semver::Version::new(2, 0, 0);
        assert_eq!(
            changelog(&version, Some("2024-05-01"), &entries),
            "## 2.0.0 (2024-05-01)\n\n### Breaking changes\n\n- `/v1` is gone (ddddddd)\n\n### Features\n\n- **api:** add search (aaaaaaa)\n\n### Bug fixes\n\n- crash on empty input (bbbbbbb)\n\n### Performance\n\n- cache lookups (fffffff)\n"
        );
        assert_eq!(changelog(&version, None, &[]), "## 2.0.0\n");
    }
}
