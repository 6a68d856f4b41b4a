//! `changed-paths --format json`: one [`Report`]. The filters sit under
//! `filters`, keyed by name in filter order, so no filter name can collide
//! with the report's own keys (an image called `base` or `files` is
//! common). The flat dorny/paths-filter outputs (`<name>`, `<name>_count`,
//! `<name>_files`) are the `shell` and `github` formats.

use std::fmt;
use std::str::FromStr;

use crate::Sha;

/// The whole JSON document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// One entry per filter, in filter order; in JSON an object
    /// `{"<name>": {"changed", "count", "files"}}` keeping that order.
    #[serde(with = "filters_by_name")]
    pub filters: Vec<Filter>,
    /// The names of the changed filters, in filter order.
    pub changes: Vec<String>,
    /// The images to build (slipway.toml names) in build order, a list
    /// ready for a matrix; without slipway.toml, the changed filters.
    pub targets: Vec<String>,
    /// The base commit of the compared range (null when there is none: the
    /// working tree, `--files-from`, or every file of the first commit).
    pub base: Option<Sha>,
    /// The head commit (null for the working tree and `--files-from`).
    pub head: Option<Sha>,
    /// `--base-from-image`'s reference, when the base came from it (absent
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    /// Every changed file, whatever the filters say.
    pub files: Vec<ChangedFile>,
    /// With `--explain`: every changed file with each filter's verdict
    /// (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<Vec<Explained>>,
}

/// The part of a [`Report`] a reader that only builds the targets needs
/// (`img-build --targets-from`): the `targets` list; other keys are ignored,
/// so `{"targets": ["app"]}` is enough.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Targets {
    /// [`Report::targets`].
    pub targets: Vec<String>,
}

/// One filter's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The filter's name; its key under `filters`.
    pub name: String,
    /// Whether any changed file matches it.
    pub changed: bool,
    /// How many changed files match it.
    pub count: usize,
    /// The paths of the matching files.
    pub files: Vec<String>,
}

/// One changed file with every filter's verdict (`--explain`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Explained {
    /// The file (its `path`, `status` and `from` inline).
    #[serde(flatten)]
    pub file: ChangedFile,
    /// One verdict per filter, in filter order.
    pub verdicts: Vec<Verdict>,
}

/// `filters` as a JSON object keyed by filter name, in filter order
/// (serde_json keeps neither order nor duplicates in a map type, so the
/// entries are written and read one by one).
mod filters_by_name {
    use std::fmt;

    use serde::ser::SerializeMap as _;

    use super::Filter;

    /// A filter's value under its name.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Answer {
        changed: bool,
        count: usize,
        files: Vec<String>,
    }

    pub(super) fn serialize<S: serde::Serializer>(
        filters: &[Filter],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(filters.len()))?;
        for filter in filters {
            let answer = Answer {
                changed: filter.changed,
                count: filter.count,
                files: filter.files.clone(),
            };
            map.serialize_entry(&filter.name, &answer)?;
        }
        map.end()
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Filter>, D::Error> {
        deserializer.deserialize_map(Visitor)
    }

    struct Visitor;

    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Vec<Filter>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of filters: {\"<name>\": {\"changed\", \"count\", \"files\"}}")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Vec<Filter>, A::Error> {
            let mut filters: Vec<Filter> = Vec::new();
            while let Some((name, answer)) = map.next_entry::<String, Answer>()? {
                if filters.iter().any(|f| f.name == name) {
                    return Err(serde::de::Error::custom(format!(
                        "filter `{name}` appears twice under `filters`"
                    )));
                }
                filters.push(Filter {
                    name,
                    changed: answer.changed,
                    count: answer.count,
                    files: answer.files,
                });
            }
            Ok(filters)
        }
    }
}

/// How a file changed, named as `git diff --name-status` and paths-filter
/// name it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    /// A new file (`A`); untracked files of the working tree count as added.
    Added,
    /// A copy of another file (`C`), reported only with rename detection.
    Copied,
    /// A removed file (`D`).
    Deleted,
    /// Changed contents or mode (`M`), or a changed type (`T`).
    Modified,
    /// A moved file (`R`), reported only with rename detection.
    Renamed,
    /// A file with an unresolved merge conflict (`U`).
    Unmerged,
}

impl ChangeStatus {
    /// Every status, in the order their names are listed in messages.
    pub const ALL: [ChangeStatus; 6] = [
        ChangeStatus::Added,
        ChangeStatus::Copied,
        ChangeStatus::Deleted,
        ChangeStatus::Modified,
        ChangeStatus::Renamed,
        ChangeStatus::Unmerged,
    ];

    /// The lowercase name: `added`, `copied`, `deleted`, `modified`,
    /// `renamed`, `unmerged`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeStatus::Added => "added",
            ChangeStatus::Copied => "copied",
            ChangeStatus::Deleted => "deleted",
            ChangeStatus::Modified => "modified",
            ChangeStatus::Renamed => "renamed",
            ChangeStatus::Unmerged => "unmerged",
        }
    }

    /// The letter `git diff --name-status` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeStatus::Added => 'A',
            ChangeStatus::Copied => 'C',
            ChangeStatus::Deleted => 'D',
            ChangeStatus::Modified => 'M',
            ChangeStatus::Renamed => 'R',
            ChangeStatus::Unmerged => 'U',
        }
    }

    /// The status a `--name-status` letter or a name stands for. Besides
    /// git's letters and this type's names, GitHub's API names are accepted
    /// (`removed`, `changed`), so its file lists can be piped in.
    pub fn from_token(token: &str) -> Option<ChangeStatus> {
        let letter = match token.as_bytes() {
            // `R100`, `C075`: a letter and a similarity score.
            [first, rest @ ..] if rest.iter().all(u8::is_ascii_digit) => Some(*first),
            _ => None,
        };
        match letter {
            Some(b'A') => return Some(ChangeStatus::Added),
            Some(b'C') => return Some(ChangeStatus::Copied),
            Some(b'D') => return Some(ChangeStatus::Deleted),
            Some(b'M' | b'T') => return Some(ChangeStatus::Modified),
            Some(b'R') => return Some(ChangeStatus::Renamed),
            Some(b'U') => return Some(ChangeStatus::Unmerged),
            _ => {}
        }
        match token.to_ascii_lowercase().as_str() {
            "removed" => Some(ChangeStatus::Deleted),
            "changed" => Some(ChangeStatus::Modified),
            name => ChangeStatus::ALL.into_iter().find(|s| s.as_str() == name),
        }
    }
}

impl fmt::Display for ChangeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of [`ChangeStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus {
    /// The name as given.
    pub name: String,
}

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown change status `{}`: expected one of `added`, `copied`, `deleted`, `modified`, `renamed`, `unmerged`",
            self.name
        )
    }
}

impl std::error::Error for UnknownStatus {}

impl FromStr for ChangeStatus {
    type Err = UnknownStatus;

    /// Parses a lowercase or capitalised name (`added`, `Modified`), as
    /// paths-filter's `added|modified:` keys are written.
    fn from_str(name: &str) -> Result<Self, UnknownStatus> {
        let lower = name.trim().to_ascii_lowercase();
        ChangeStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == lower)
            .ok_or_else(|| UnknownStatus {
                name: name.to_owned(),
            })
    }
}

/// One changed file, its path relative to the repository root with `/`
/// separators.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangedFile {
    /// The path after the change (for a deleted file, the path it had).
    pub path: String,
    /// How it changed.
    pub status: ChangeStatus,
    /// For a renamed or copied file, the path it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The path's exact bytes when they are not UTF-8 (git allows any byte
    /// but NUL in a path): JSON shows them as an array of byte values, and
    /// `path` then holds the path with U+FFFD in place of each invalid
    /// sequence, which is what filters match against. Absent for UTF-8
    /// paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_bytes: Option<Vec<u8>>,
}

impl ChangedFile {
    /// A changed file without a source path.
    pub fn new(path: impl Into<String>, status: ChangeStatus) -> ChangedFile {
        ChangedFile {
            path: path.into(),
            status,
            from: None,
            path_bytes: None,
        }
    }

    /// A changed file whose path is git's bytes, kept exactly when they are
    /// not UTF-8 (see [`ChangedFile::path_bytes`]).
    pub fn from_bytes(path: Vec<u8>, status: ChangeStatus, from: Option<String>) -> ChangedFile {
        match String::from_utf8(path) {
            Ok(path) => ChangedFile {
                path,
                status,
                from,
                path_bytes: None,
            },
            Err(error) => ChangedFile {
                path: String::from_utf8_lossy(error.as_bytes()).into_owned(),
                status,
                from,
                path_bytes: Some(error.into_bytes()),
            },
        }
    }

    /// The path's exact bytes.
    pub fn bytes(&self) -> &[u8] {
        self.path_bytes.as_deref().unwrap_or(self.path.as_bytes())
    }
}

/// Why a filter did or did not match a file, for `--explain`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// A pattern matched (for a negated pattern: the path does not match
    /// what follows the `!`).
    Matched {
        /// The pattern.
        pattern: String,
        /// Where it came from.
        origin: String,
    },
    /// A positive pattern matched, but a `!` pattern excluded the path.
    Excluded {
        /// The positive pattern.
        pattern: String,
        /// The excluding pattern.
        by: String,
    },
    /// Under `predicate-quantifier: every`, this pattern does not hold.
    NotEvery {
        /// The failing pattern.
        pattern: String,
    },
    /// A pattern matched, but only for other change statuses.
    Status {
        /// The pattern.
        pattern: String,
        /// The statuses it is limited to.
        statuses: Vec<ChangeStatus>,
    },
    /// The build context's `.dockerignore` leaves the path out.
    DockerIgnored {
        /// The positive pattern that matched.
        pattern: String,
        /// The `.dockerignore` line that excludes.
        by: String,
    },
    /// No pattern of the filter matches the path.
    NoPattern,
}

/// One filter's answer for one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// The filter.
    pub filter: String,
    /// Whether the file counts for the filter.
    pub matched: bool,
    /// Why.
    #[serde(flatten)]
    pub reason: Reason,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.filter;
        match &self.reason {
            Reason::Matched { pattern, origin } => {
                write!(f, "{name}: matched by `{pattern}` ({origin})")
            }
            Reason::Excluded { pattern, by } => {
                write!(f, "{name}: `{pattern}` matches but `{by}` excludes it")
            }
            Reason::NotEvery { pattern } => {
                write!(
                    f,
                    "{name}: `{pattern}` does not hold (predicate-quantifier: every)"
                )
            }
            Reason::Status { pattern, statuses } => {
                let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
                write!(
                    f,
                    "{name}: `{pattern}` matches but only for {}",
                    names.join("|")
                )
            }
            Reason::DockerIgnored { pattern, by } => {
                write!(
                    f,
                    "{name}: `{pattern}` matches but .dockerignore `{by}` leaves it out"
                )
            }
            Reason::NoPattern => write!(f, "{name}: no pattern matches"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_read_back_as_its_targets() {
        let report = Report {
            filters: Vec::new(),
            changes: vec!["app".to_owned()],
            targets: vec!["base".to_owned(), "app".to_owned()],
            base: None,
            head: None,
            base_image: None,
            files: Vec::new(),
            explain: None,
        };
        let json = serde_json::to_string(&report).expect("a report serialises");
        let targets: Targets = serde_json::from_str(&json).expect("its targets are read");
        assert_eq!(targets.targets, report.targets);
    }
}
