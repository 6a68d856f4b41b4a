//! `changed-paths --format json`: one [`Report`]. The filters sit under
//! `filters`, keyed by name in filter order, so no filter name can collide
//! with the report's own keys (an image called `base` or `files` is
//! common). The flat dorny/paths-filter outputs (`<name>`, `<name>_count`,
//! `<name>_files`) are the `shell` and `github` formats.

use slipway_git::Sha;
pub use slipway_git::changes::{ChangeStatus, ChangedFile};
pub use slipway_git::paths::{Reason, Verdict};

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
