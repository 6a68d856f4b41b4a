//! What a run found, in every `--format`: per filter `<name>` (true/false),
//! `<name>_count` and `<name>_files`, then `changes` (the changed filters,
//! a JSON list) and `targets` (the images to build, a JSON list ready for a
//! matrix), as dorny/paths-filter names its outputs.

use slipway_core::cli::exit;
use slipway_core::output::{Style, escape_control, quote_path};
use slipway_git::Sha;
use slipway_git::changes::ChangedFile;
use slipway_git::paths::Verdict;

use crate::cli::ListFormat;
use crate::list;

/// Where the changed files came from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Commits {
        base: Sha,
        head: Sha,
        why: String,
        /// `--base-from-image`'s reference, when the base came from it.
        from_image: Option<String>,
    },
    AllAdded {
        head: Sha,
        why: String,
    },
    WorkingTree,
    FilesFrom {
        origin: String,
    },
}

pub(crate) use slipway_contract::changed_paths::Explained;

/// What [`Report::new`] is made of.
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) source: Source,
    pub(crate) files: Vec<ChangedFile>,
    pub(crate) names: Vec<String>,
    pub(crate) matched: Vec<Vec<usize>>,
    pub(crate) targets: Vec<String>,
    pub(crate) explain: Option<Vec<Explained>>,
    pub(crate) list_files: ListFormat,
    pub(crate) exit_code: bool,
}

/// The report of a run.
#[derive(Debug)]
pub struct Report {
    parts: Parts,
}

impl Report {
    pub(crate) fn new(parts: Parts) -> Report {
        Report { parts }
    }

    fn filters(&self) -> impl Iterator<Item = (&str, Vec<&ChangedFile>)> {
        self.parts
            .names
            .iter()
            .zip(&self.parts.matched)
            .map(|(name, indices)| (name.as_str(), crate::pick(&self.parts.files, indices)))
    }

    /// The changed filters, in filter order.
    fn changes(&self) -> Vec<&str> {
        self.filters()
            .filter(|(_, files)| !files.is_empty())
            .map(|(name, _)| name)
            .collect()
    }

    /// Whether a filter named `name` exists (its outputs then win over ours,
    /// as paths-filter skips `changes` when a filter has that name).
    fn is_filter(&self, name: &str) -> bool {
        self.parts.names.iter().any(|n| n == name)
    }

    fn range(&self) -> (Option<&Sha>, Option<&Sha>) {
        match &self.parts.source {
            Source::Commits { base, head, .. } => (Some(base), Some(head)),
            Source::AllAdded { head, .. } => (None, Some(head)),
            Source::WorkingTree | Source::FilesFrom { .. } => (None, None),
        }
    }
}

/// The names of the outputs [`Report`]'s `byte_outputs` writes for filters
/// named `names`, in the same order (checked before any work).
pub(crate) fn output_names(names: &[String], list_files: ListFormat) -> Vec<String> {
    let mut outputs = Vec::new();
    for name in names {
        outputs.push(name.clone());
        outputs.push(format!("{name}_count"));
        if list_files != ListFormat::None {
            outputs.push(format!("{name}_files"));
        }
    }
    for own in ["changes", "targets"] {
        if !names.iter().any(|n| n == own) {
            outputs.push(own.to_owned());
        }
    }
    outputs
}

fn json_list(items: &[&str]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

/// The JSON document, [`slipway_contract::changed_paths::Report`]
/// field for field, written from the report's own data: a large diff lists
/// each path once per filter, and none of them is copied to be printed.
impl serde::Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let (base, head) = self.range();
        let base_image = match &self.parts.source {
            Source::Commits { from_image, .. } => from_image.as_ref(),
            _ => None,
        };
        let fields =
            6 + usize::from(base_image.is_some()) + usize::from(self.parts.explain.is_some());
        let mut document = serializer.serialize_struct("Report", fields)?;
        document.serialize_field("filters", &FiltersView(self))?;
        document.serialize_field("changes", &self.changes())?;
        document.serialize_field("targets", &self.parts.targets)?;
        document.serialize_field("base", &base)?;
        document.serialize_field("head", &head)?;
        if let Some(image) = base_image {
            document.serialize_field("base_image", image)?;
        }
        document.serialize_field("files", &self.parts.files)?;
        if let Some(explain) = &self.parts.explain {
            document.serialize_field("explain", explain)?;
        }
        document.end()
    }
}

/// `filters`: `{"<name>": {"changed", "count", "files"}}` in filter order.
struct FiltersView<'a>(&'a Report);

impl serde::Serialize for FiltersView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap as _, SerializeStruct as _};
        struct Answer<'a> {
            indices: &'a [usize],
            files: &'a [ChangedFile],
        }
        impl serde::Serialize for Answer<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut answer = serializer.serialize_struct("Answer", 3)?;
                answer.serialize_field("changed", &!self.indices.is_empty())?;
                answer.serialize_field("count", &self.indices.len())?;
                answer.serialize_field("files", &Paths(self))?;
                answer.end()
            }
        }
        struct Paths<'a>(&'a Answer<'a>);
        impl serde::Serialize for Paths<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(
                    self.0
                        .indices
                        .iter()
                        .map(|i| self.0.files[*i].path.as_str()),
                )
            }
        }
        let parts = &self.0.parts;
        let mut map = serializer.serialize_map(Some(parts.names.len()))?;
        for (name, indices) in parts.names.iter().zip(&parts.matched) {
            map.serialize_entry(
                name,
                &Answer {
                    indices,
                    files: &parts.files,
                },
            )?;
        }
        map.end()
    }
}

impl Report {
    /// The JSON document, the bytes the [`serde::Serialize`] impl gives
    /// through serde_json's pretty printer, written by [`crate::json`]:
    /// `filters` and `files` list every path of a large diff, once per
    /// matching filter and once more.
    fn json(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        use crate::json;
        let parts = &self.parts;
        let listed: usize = parts.matched.iter().map(Vec::len).sum();
        out.reserve(64 * (listed + parts.files.len()));
        let (base, head) = self.range();
        out.push(b'{');
        json::key(out, "filters", 1, true)?;
        out.push(b'{');
        for (index, (name, indices)) in parts.names.iter().zip(&parts.matched).enumerate() {
            json::key(out, name, 2, index == 0)?;
            out.push(b'{');
            json::key(out, "changed", 3, true)?;
            json::value(out, &!indices.is_empty(), 3)?;
            json::key(out, "count", 3, false)?;
            json::value(out, &indices.len(), 3)?;
            json::key(out, "files", 3, false)?;
            json::paths(
                out,
                indices.iter().map(|i| parts.files[*i].path.as_str()),
                3,
            )?;
            json::close(out, b'}', 2, true);
        }
        json::close(out, b'}', 1, !parts.names.is_empty());
        json::key(out, "changes", 1, false)?;
        json::value(out, &self.changes(), 1)?;
        json::key(out, "targets", 1, false)?;
        json::value(out, &parts.targets, 1)?;
        json::key(out, "base", 1, false)?;
        json::value(out, &base, 1)?;
        json::key(out, "head", 1, false)?;
        json::value(out, &head, 1)?;
        if let Source::Commits {
            from_image: Some(image),
            ..
        } = &parts.source
        {
            json::key(out, "base_image", 1, false)?;
            json::value(out, image, 1)?;
        }
        json::key(out, "files", 1, false)?;
        json::files(out, &parts.files, 1)?;
        if let Some(explain) = &parts.explain {
            json::key(out, "explain", 1, false)?;
            json::value(out, explain, 1)?;
        }
        json::close(out, b'}', 0, true);
        Ok(())
    }
}

impl slipway_core::output::Report for Report {
    fn write_json(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        self.json(out)
    }

    fn render_plain(&self, style: &Style) -> String {
        let mut text = String::new();
        let count = self.parts.files.len();
        let source = match &self.parts.source {
            Source::Commits {
                base,
                head,
                from_image: Some(image),
                ..
            } => format!(
                "{} (from image `{}`) -> {}",
                base.short(),
                escape_control(image),
                head.short()
            ),
            Source::Commits {
                base, head, why, ..
            } => format!(
                "{} -> {} ({})",
                base.short(),
                head.short(),
                escape_control(why)
            ),
            Source::AllAdded { head, why } => {
                format!("all files of {} ({})", head.short(), escape_control(why))
            }
            Source::WorkingTree => "the working tree against HEAD".to_owned(),
            Source::FilesFrom { origin } => format!("files from {}", escape_control(origin)),
        };
        text.push_str(&format!("changed files: {count}, {source}\n"));
        for (name, files) in self.filters() {
            let answer = if files.is_empty() {
                style.dim("false")
            } else {
                style.ok("true")
            };
            let plural = if files.len() == 1 { "" } else { "s" };
            text.push_str(&format!(
                "{}: {answer} ({} file{plural})\n",
                style.bold(name),
                files.len()
            ));
            for file in files {
                text.push_str(&format!("  {} {}\n", file.status, quote_path(file.bytes())));
            }
        }
        text.push_str(&format!(
            "targets: {}\n",
            json_list(
                &self
                    .parts
                    .targets
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
            )
        ));
        if let Some(explain) = &self.parts.explain {
            for entry in explain {
                text.push_str(&format!(
                    "{} [{}]\n",
                    quote_path(entry.file.bytes()),
                    entry.file.status
                ));
                let relevant: Vec<&Verdict> = entry
                    .verdicts
                    .iter()
                    .filter(|v| v.matched || v.reason != slipway_git::paths::Reason::NoPattern)
                    .collect();
                if relevant.is_empty() {
                    text.push_str("  no pattern of any filter matches\n");
                }
                for verdict in relevant {
                    // A verdict quotes filter names and patterns from files.
                    text.push_str(&format!("  {}\n", escape_control(&verdict.to_string())));
                }
            }
        }
        text
    }

    fn outputs(&self) -> Vec<(String, String)> {
        self.byte_outputs()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect()
    }

    fn byte_outputs(&self) -> Vec<(String, Vec<u8>)> {
        let mut outputs = Vec::new();
        for (name, files) in self.filters() {
            outputs.push((
                name.to_owned(),
                (!files.is_empty()).to_string().into_bytes(),
            ));
            outputs.push((
                format!("{name}_count"),
                files.len().to_string().into_bytes(),
            ));
            let paths: Vec<&[u8]> = files.iter().map(|f| f.bytes()).collect();
            if let Some(value) = list::render(&paths, self.parts.list_files) {
                outputs.push((format!("{name}_files"), value));
            }
        }
        if !self.is_filter("changes") {
            outputs.push((
                "changes".to_owned(),
                json_list(&self.changes()).into_bytes(),
            ));
        }
        if !self.is_filter("targets") {
            let targets: Vec<&str> = self.parts.targets.iter().map(String::as_str).collect();
            outputs.push(("targets".to_owned(), json_list(&targets).into_bytes()));
        }
        outputs
    }

    fn summary_markdown(&self) -> Option<String> {
        let mut text = String::from(
            "### changed-paths\n\n| filter | changed | files |\n| --- | --- | --- |\n",
        );
        for (name, files) in self.filters() {
            text.push_str(&format!(
                "| `{name}` | {} | {} |\n",
                !files.is_empty(),
                files.len()
            ));
        }
        let targets: Vec<String> = self
            .parts
            .targets
            .iter()
            .map(|t| format!("`{t}`"))
            .collect();
        text.push_str(&format!(
            "\n{} changed files; targets: {}\n",
            self.parts.files.len(),
            if targets.is_empty() {
                "none".to_owned()
            } else {
                targets.join(", ")
            }
        ));
        Some(text)
    }

    fn exit_code(&self) -> u8 {
        let anything = if self.parts.names.is_empty() {
            !self.parts.files.is_empty()
        } else {
            self.parts.matched.iter().any(|files| !files.is_empty())
        };
        if self.parts.exit_code && !anything {
            exit::NO
        } else {
            exit::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    use slipway_git::changes::{ChangeStatus, ChangedFile};
    use slipway_git::paths::{Reason, Verdict};

    use super::*;

    fn report(source: Source, names: &[&str], matched: Vec<Vec<usize>>, explain: bool) -> Report {
        let mut renamed = ChangedFile::new("b/new.rs", ChangeStatus::Renamed);
        renamed.from = Some("a/\"old\".rs".to_owned());
        let files = vec![
            ChangedFile::new("a/plain.rs", ChangeStatus::Added),
            ChangedFile::new("a/\"quoted\".rs", ChangeStatus::Modified),
            ChangedFile::new("a\\back\\slashed.rs", ChangeStatus::Modified),
            ChangedFile::new("a/tab\there\nnewline\u{1}.rs", ChangeStatus::Deleted),
            ChangedFile::new("a/unit\u{1f}separator.rs", ChangeStatus::Deleted),
            ChangedFile::new("a/ünïcödé ✓ \u{7f}.rs", ChangeStatus::Modified),
            ChangedFile::from_bytes(b"a/latin1-\xe9.rs".to_vec(), ChangeStatus::Added, None),
            renamed,
        ];
        let explain = explain.then(|| {
            files
                .iter()
                .map(|file| Explained {
                    file: file.clone(),
                    verdicts: vec![Verdict {
                        filter: "app".to_owned(),
                        matched: false,
                        reason: Reason::NoPattern,
                    }],
                })
                .collect()
        });
        Report::new(Parts {
            source,
            files,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            matched,
            targets: vec!["app".to_owned()],
            explain,
            list_files: ListFormat::None,
            exit_code: false,
        })
    }

    /// The document written directly is the one serde_json pretty-prints
    /// from the `Serialize` impl, byte for byte, on every kind of value.
    #[test]
    fn the_json_written_directly_is_serde_jsons_pretty_document() {
        let sha = |c: char| c.to_string().repeat(40).parse::<Sha>().expect("a sha");
        let commits = |from_image: Option<&str>| Source::Commits {
            base: sha('a'),
            head: sha('b'),
            why: "--base".to_owned(),
            from_image: from_image.map(str::to_owned),
        };
        let cases = [
            report(
                commits(None),
                &["app", "we\"ird \\ name\n", "empty"],
                vec![vec![0, 1, 2, 3, 4, 5, 6, 7], vec![1, 2, 4], vec![]],
                false,
            ),
            report(
                commits(Some("registry.example/app:1")),
                &["app"],
                vec![vec![7]],
                true,
            ),
            report(Source::WorkingTree, &[], vec![], false),
            report(
                Source::AllAdded {
                    head: sha('c'),
                    why: "first push".to_owned(),
                },
                &["all"],
                vec![vec![0]],
                true,
            ),
        ];
        for report in &cases {
            let expected = serde_json::to_string_pretty(report).expect("serialises");
            let mut written = Vec::new();
            report.json(&mut written).expect("writes");
            assert_eq!(String::from_utf8(written).expect("UTF-8"), expected);
        }
        let mut empty = report(Source::WorkingTree, &[], vec![], false);
        empty.parts.files.clear();
        let mut written = Vec::new();
        empty.json(&mut written).expect("writes");
        assert_eq!(
            String::from_utf8(written).expect("UTF-8"),
            serde_json::to_string_pretty(&empty).expect("serialises")
        );
    }
}
