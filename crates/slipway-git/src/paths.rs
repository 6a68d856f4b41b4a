//! Path filters: named lists of glob patterns, compiled once into one index
//! of every glob ([`index`]) and matched against changed files in a single
//! pass per path.
//!
//! Two meanings of `!` live here, deliberately:
//! - slipway.toml's own `paths` ([`Semantics::Exclude`]): a file counts if it
//!   matches a positive pattern and no negative one, as users expect;
//! - paths-filter's YAML ([`Semantics::PathsFilter`]): each pattern is its
//!   own predicate and `!p` holds for every path `p` does not match; under
//!   the default `some` quantifier any predicate suffices (so `!` does not
//!   exclude), under `every` all must hold. Same answers as
//!   dorny/paths-filter v3, quirks included, so a team can move over
//!   without rewriting its filters.
//!
//! Pure: parsing and matching only. Reading filter files and build files is
//! the caller's job; [`yaml`] and [`docker`] take their text.

pub mod docker;
mod index;
pub mod project;
pub mod yaml;

pub use slipway_contract::changed_paths::{Reason, Verdict};
use slipway_glob as glob;
use slipway_glob::extglob;

use crate::changes::{ChangeStatus, ChangedFile};

/// How paths-filter combines a filter's patterns (`predicate-quantifier`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantifier {
    /// A file matches if at least one pattern matches it (paths-filter's default).
    #[default]
    Some,
    /// A file matches only if every pattern matches it (so `!` patterns exclude).
    Every,
}

/// What `!` and several patterns mean in a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    /// paths-filter's: each pattern is a predicate, combined by the quantifier.
    PathsFilter(Quantifier),
    /// slipway.toml's: a positive pattern matches and no negative one does.
    Exclude,
}

/// One pattern as written, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternSpec {
    /// The pattern, `!` included.
    pub text: String,
    /// Where it comes from, for `--explain` (`slipway.toml [images.app]`,
    /// `COPY source at app/Dockerfile:4`).
    pub origin: String,
    /// Whether a match counts even if the filter's `.dockerignore` excludes
    /// the path (the Dockerfile and `.dockerignore` themselves).
    pub ignores_dockerignore: bool,
}

impl PatternSpec {
    /// A pattern from `origin`.
    pub fn new(text: impl Into<String>, origin: impl Into<String>) -> PatternSpec {
        PatternSpec {
            text: text.into(),
            origin: origin.into(),
            ignores_dockerignore: false,
        }
    }
}

/// Patterns that hold together, optionally only for some change statuses
/// (paths-filter's `added|modified: [patterns]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// The statuses the rule applies to; `None` for all.
    pub statuses: Option<Vec<ChangeStatus>>,
    /// The patterns; one of them matching satisfies the rule.
    pub patterns: Vec<PatternSpec>,
}

/// A named filter before compilation.
#[derive(Debug, Clone)]
pub struct FilterSpec {
    /// The filter's name: an output name, and an image name when it names one.
    pub name: String,
    /// What `!` and several rules mean.
    pub semantics: Semantics,
    /// The rules.
    pub rules: Vec<RuleSpec>,
    /// Paths the image's build context leaves out (derived filters only).
    pub dockerignore: Option<docker::DockerIgnore>,
}

/// Why filters could not be read or compiled.
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    /// A pattern is not a valid glob.
    #[error("invalid pattern `{pattern}` in filter `{filter}` ({origin}): {reason}")]
    Pattern {
        /// The filter's name.
        filter: String,
        /// The pattern as written.
        pattern: String,
        /// Where the pattern came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A filters file is not valid YAML or not in paths-filter's format.
    #[error("{file}:{line}:{column}: {reason}")]
    Yaml {
        /// The file (or `--filters` source) name.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what would be valid.
        reason: String,
    },
    /// A `.dockerignore` line is not a valid pattern.
    #[error("{file}:{line}: invalid pattern `{pattern}`: {reason}")]
    DockerIgnore {
        /// The `.dockerignore` path.
        file: String,
        /// 1-based line.
        line: usize,
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: String,
    },
}

slipway_core::cli::exit_status!(PathsError => USAGE);

/// A pattern after compilation.
#[derive(Debug, Clone)]
struct Pattern {
    spec: PatternSpec,
    negated: bool,
}

#[derive(Debug, Clone)]
struct Rule {
    statuses: Option<Vec<ChangeStatus>>,
    /// Indices into `FilterSet::patterns`.
    patterns: Vec<usize>,
}

#[derive(Debug, Clone)]
struct Filter {
    name: String,
    semantics: Semantics,
    rules: Vec<Rule>,
    dockerignore: Option<docker::DockerIgnore>,
}

/// Compiled filters, ready to match.
///
/// Which patterns a path hits comes from one index of every glob of every
/// filter ([`index`]): plain globs (`**`, a literal path, `src/go/**`) by
/// hash lookups, the others by `GlobSet`s asked per directory, per file
/// name or per path, whichever the glob's answer depends on. Only the
/// filters one of whose patterns hit are then evaluated.
#[derive(Debug, Clone)]
pub struct FilterSet {
    index: index::PatternIndex,
    patterns: Vec<Pattern>,
    /// For each pattern, the filter it belongs to.
    pattern_filter: Vec<usize>,
    /// The filters that can match a path none of their patterns matches
    /// (paths-filter semantics with a `!` pattern, which holds for such a
    /// path); every other filter needs a hit to match.
    match_without_hit: Vec<usize>,
    filters: Vec<Filter>,
}

impl FilterSet {
    /// Compiles `specs`; a bad pattern names its filter and origin.
    pub fn compile(specs: Vec<FilterSpec>) -> Result<FilterSet, PathsError> {
        let mut builder = index::IndexBuilder::default();
        let mut patterns = Vec::new();
        let mut filters = Vec::with_capacity(specs.len());
        for spec in specs {
            let mut rules = Vec::with_capacity(spec.rules.len());
            for rule in spec.rules {
                let mut indices = Vec::with_capacity(rule.patterns.len());
                for pattern in rule.patterns {
                    let error = |reason: String| PathsError::Pattern {
                        filter: spec.name.clone(),
                        pattern: pattern.text.clone(),
                        origin: pattern.origin.clone(),
                        reason,
                    };
                    let translated = glob::translate(&pattern.text).map_err(error)?;
                    let index = patterns.len();
                    if let Some(matcher) = translated.matcher {
                        builder.add_matcher(matcher, index);
                    }
                    for text in translated.globs {
                        builder
                            .add_glob(&text, index)
                            .map_err(|e| error(glob::glob_reason(&e)))?;
                    }
                    patterns.push(Pattern {
                        spec: pattern,
                        negated: translated.negated,
                    });
                    indices.push(index);
                }
                rules.push(Rule {
                    statuses: rule.statuses,
                    patterns: indices,
                });
            }
            filters.push(Filter {
                name: spec.name,
                semantics: spec.semantics,
                rules,
                dockerignore: spec.dockerignore,
            });
        }
        let mut pattern_filter = vec![0; patterns.len()];
        let mut match_without_hit = Vec::new();
        for (index, filter) in filters.iter().enumerate() {
            let mut negated = false;
            for p in filter.rules.iter().flat_map(|r| &r.patterns) {
                pattern_filter[*p] = index;
                negated |= patterns[*p].negated;
            }
            if negated && matches!(filter.semantics, Semantics::PathsFilter(_)) {
                match_without_hit.push(index);
            }
        }
        let index = builder.build().map_err(|e| PathsError::Pattern {
            filter: "*".to_owned(),
            pattern: String::new(),
            origin: "all filters".to_owned(),
            reason: glob::glob_reason(&e),
        })?;
        Ok(FilterSet {
            index,
            patterns,
            pattern_filter,
            match_without_hit,
            filters,
        })
    }

    /// The filters' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.filters.iter().map(|f| f.name.as_str())
    }

    /// The number of filters.
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether there are no filters.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// For each filter (in order), the indices of the files it matches.
    ///
    /// A large list is shared out between threads (one per core, at most
    /// four), each matching a contiguous run of files; the answers are put
    /// back in file order.
    pub fn match_files(&self, files: &[ChangedFile]) -> Vec<Vec<usize>> {
        const FILES_PER_THREAD: usize = 8192;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
            .min(files.len() / FILES_PER_THREAD)
            .max(1);
        if threads == 1 {
            return self.match_run(files, 0);
        }
        let run = files.len().div_ceil(threads);
        let pieces: Vec<Vec<Vec<usize>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = files
                .chunks(run)
                .enumerate()
                .skip(1)
                .map(|(index, chunk)| scope.spawn(move || self.match_run(chunk, index * run)))
                .collect();
            let mut pieces = vec![self.match_run(&files[..run], 0)];
            // A matching thread only panics on a bug; matching again here
            // gives the same answer.
            for (offset, handle) in handles.into_iter().enumerate() {
                let start = (offset + 1) * run;
                pieces.push(handle.join().unwrap_or_else(|_| {
                    self.match_run(&files[start..(start + run).min(files.len())], start)
                }));
            }
            pieces
        });
        let mut matched = vec![Vec::new(); self.filters.len()];
        for piece in pieces {
            for (filter, indices) in piece.into_iter().enumerate() {
                matched[filter].extend(indices);
            }
        }
        matched
    }

    /// [`FilterSet::match_files`] on `files`, whose first has index `first`.
    fn match_run(&self, files: &[ChangedFile], first: usize) -> Vec<Vec<usize>> {
        let mut matched = vec![Vec::new(); self.filters.len()];
        let mut scratch = self.scratch();
        // The filters worth evaluating for the current file, and for each
        // filter the last file it was listed for.
        let mut candidates = Vec::with_capacity(self.filters.len());
        let mut listed_for = vec![usize::MAX; self.filters.len()];
        for (offset, file) in files.iter().enumerate() {
            let file_index = first + offset;
            if file.status == ChangeStatus::Renamed && file.from.is_some() {
                self.for_each_verdict(file, &mut scratch, |filter, is_match, _| {
                    if is_match {
                        matched[filter].push(file_index);
                    }
                });
                continue;
            }
            // A filter none of whose patterns matched the path cannot match
            // it, unless it is one of `match_without_hit`.
            self.index.mark(&file.path, &mut scratch);
            candidates.clear();
            let hit_filters = scratch.touched.iter().map(|p| self.pattern_filter[*p]);
            for filter in hit_filters.chain(self.match_without_hit.iter().copied()) {
                if listed_for[filter] != file_index {
                    listed_for[filter] = file_index;
                    candidates.push(filter);
                }
            }
            candidates.sort_unstable();
            for filter in &candidates {
                let (is_match, _) = self.evaluate(
                    &self.filters[*filter],
                    &file.path,
                    file.status,
                    &scratch.hits,
                );
                if is_match {
                    matched[*filter].push(file_index);
                }
            }
        }
        matched
    }

    /// Every filter's verdict on `file`, with the reason.
    pub fn explain(&self, file: &ChangedFile) -> Vec<Verdict> {
        let mut verdicts = Vec::with_capacity(self.filters.len());
        let mut scratch = self.scratch();
        self.for_each_verdict(file, &mut scratch, |filter, matched, reason| {
            verdicts.push(Verdict {
                filter: self.filters[filter].name.clone(),
                matched,
                reason: self.reason(reason),
            });
        });
        verdicts
    }

    fn scratch(&self) -> index::Hits {
        index::Hits::new(self.patterns.len())
    }

    /// Calls `each(filter, matched, reason)` for every filter. A renamed
    /// file counts where it is and where it was.
    fn for_each_verdict(
        &self,
        file: &ChangedFile,
        scratch: &mut index::Hits,
        mut each: impl FnMut(usize, bool, RawReason),
    ) {
        let old_path = match file.status {
            ChangeStatus::Renamed => file.from.as_deref(),
            _ => None,
        };
        self.index.mark(&file.path, scratch);
        let Some(old_path) = old_path else {
            for (index, filter) in self.filters.iter().enumerate() {
                let (matched, reason) =
                    self.evaluate(filter, &file.path, file.status, &scratch.hits);
                each(index, matched, reason);
            }
            return;
        };
        let mut first: Vec<(bool, RawReason)> = self
            .filters
            .iter()
            .map(|filter| self.evaluate(filter, &file.path, file.status, &scratch.hits))
            .collect();
        {
            self.index.mark(old_path, scratch);
            for (index, filter) in self.filters.iter().enumerate() {
                if !first[index].0 {
                    let again = self.evaluate(filter, old_path, file.status, &scratch.hits);
                    if again.0 {
                        first[index] = again;
                    }
                }
            }
        }
        for (index, (matched, reason)) in first.into_iter().enumerate() {
            each(index, matched, reason);
        }
    }

    /// One filter's answer for a path whose pattern hits are in `hits`.
    fn evaluate(
        &self,
        filter: &Filter,
        path: &str,
        status: ChangeStatus,
        hits: &[bool],
    ) -> (bool, RawReason) {
        let holds = |p: usize| hits[p] != self.patterns[p].negated;
        let status_ok = |rule: &Rule| rule.statuses.as_ref().is_none_or(|s| s.contains(&status));
        let (matched, reason) = match filter.semantics {
            Semantics::Exclude => {
                let all = || {
                    filter
                        .rules
                        .iter()
                        .flat_map(|r| r.patterns.iter().map(move |p| (r, *p)))
                };
                let positive =
                    all().find(|(r, p)| !self.patterns[*p].negated && hits[*p] && status_ok(r));
                let negative = all().find(|(_, p)| self.patterns[*p].negated && hits[*p]);
                match (positive, negative) {
                    (Some((_, p)), None) => (true, RawReason::Matched(p)),
                    (Some((_, p)), Some((_, n))) => (false, RawReason::Excluded(p, n)),
                    (None, _) => {
                        match all().find(|(_, p)| !self.patterns[*p].negated && hits[*p]) {
                            Some((r, p)) => (false, RawReason::Status(p, r.statuses.clone())),
                            None => (false, RawReason::NoPattern),
                        }
                    }
                }
            }
            Semantics::PathsFilter(quantifier) => {
                let rule_holds = |rule: &Rule| rule.patterns.iter().copied().find(|p| holds(*p));
                match quantifier {
                    Quantifier::Some => {
                        let found = filter
                            .rules
                            .iter()
                            .find_map(|r| rule_holds(r).filter(|_| status_ok(r)));
                        match found {
                            Some(p) => (true, RawReason::Matched(p)),
                            None => match filter
                                .rules
                                .iter()
                                .find_map(|r| rule_holds(r).map(|p| (r, p)))
                            {
                                Some((r, p)) => (false, RawReason::Status(p, r.statuses.clone())),
                                None => (false, RawReason::NoPattern),
                            },
                        }
                    }
                    Quantifier::Every => {
                        let failing = filter.rules.iter().find_map(|r| match rule_holds(r) {
                            None => Some(RawReason::NotEvery(r.patterns.first().copied())),
                            Some(p) if !status_ok(r) => {
                                Some(RawReason::Status(p, r.statuses.clone()))
                            }
                            Some(_) => None,
                        });
                        match failing {
                            None if filter.rules.is_empty() => (false, RawReason::NoPattern),
                            None => {
                                // Name the first positive pattern: the one that says why.
                                let p = filter
                                    .rules
                                    .iter()
                                    .flat_map(|r| r.patterns.iter().copied())
                                    .find(|p| !self.patterns[*p].negated)
                                    .or_else(|| filter.rules[0].patterns.first().copied());
                                match p {
                                    Some(p) => (true, RawReason::Matched(p)),
                                    None => (true, RawReason::NoPattern),
                                }
                            }
                            Some(reason) => (false, reason),
                        }
                    }
                }
            }
        };
        if let (true, RawReason::Matched(p), Some(ignore)) =
            (matched, &reason, &filter.dockerignore)
            && !self.patterns[*p].spec.ignores_dockerignore
            && let Some(line) = ignore.excluded_by(path)
        {
            return (false, RawReason::DockerIgnored(*p, line.to_owned()));
        }
        (matched, reason)
    }

    fn reason(&self, raw: RawReason) -> Reason {
        let text = |p: usize| self.patterns[p].spec.text.clone();
        match raw {
            RawReason::Matched(p) => Reason::Matched {
                pattern: text(p),
                origin: self.patterns[p].spec.origin.clone(),
            },
            RawReason::Excluded(p, n) => Reason::Excluded {
                pattern: text(p),
                by: text(n),
            },
            RawReason::NotEvery(p) => Reason::NotEvery {
                pattern: p.map(text).unwrap_or_default(),
            },
            RawReason::Status(p, statuses) => Reason::Status {
                pattern: text(p),
                statuses: statuses.unwrap_or_default(),
            },
            RawReason::DockerIgnored(p, by) => Reason::DockerIgnored {
                pattern: text(p),
                by,
            },
            RawReason::NoPattern => Reason::NoPattern,
        }
    }
}

/// A [`Reason`] by pattern index, built on the hot path without allocating
/// strings (statuses aside, which only non-matches clone).
#[derive(Debug)]
enum RawReason {
    Matched(usize),
    Excluded(usize, usize),
    NotEvery(Option<usize>),
    Status(usize, Option<Vec<ChangeStatus>>),
    DockerIgnored(usize, String),
    NoPattern,
}

/// A filter from slipway.toml-style patterns: `!` excludes.
pub fn exclude_filter(name: &str, patterns: Vec<PatternSpec>) -> FilterSpec {
    FilterSpec {
        name: name.to_owned(),
        semantics: Semantics::Exclude,
        rules: vec![RuleSpec {
            statuses: None,
            patterns,
        }],
        dockerignore: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slipway_toml_checks_a_pattern_as_the_filters_read_it() {
        // picomatch (and so paths-filter) reads an unclosed `[` literally:
        // `--filter` accepted it while slipway.toml refused it.
        assert_eq!(glob::check_pattern("app/[x"), Ok(()));
        let set = FilterSet::compile(vec![exclude_filter(
            "app",
            vec![PatternSpec::new("app/[x", "slipway.toml")],
        )])
        .expect("compiles");
        let file = ChangedFile {
            path: "app/[x".to_owned(),
            status: ChangeStatus::Modified,
            from: None,
            path_bytes: None,
        };
        assert_eq!(set.match_files(&[file])[0].len(), 1);
        assert_eq!(
            glob::check_pattern("app/{a,b"),
            Err("unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)".to_owned())
        );
    }

    /// Matches `path` (modified, or renamed from `from`) against a
    /// slipway.toml-style filter of `patterns` and compares the verdict's
    /// text with `expected`.
    #[track_caller]
    fn check(patterns: &[&str], path: &str, from: Option<&str>, expected: &str) {
        let specs = patterns
            .iter()
            .map(|p| PatternSpec::new(*p, "slipway.toml"))
            .collect();
        let set = FilterSet::compile(vec![exclude_filter("app", specs)]).expect("valid patterns");
        let file = ChangedFile {
            path: path.to_owned(),
            status: if from.is_some() {
                ChangeStatus::Renamed
            } else {
                ChangeStatus::Modified
            },
            from: from.map(str::to_owned),
            path_bytes: None,
        };
        let verdicts = set.explain(&file);
        assert_eq!(verdicts.len(), 1);
        assert_eq!(
            verdicts[0].matched,
            !set.match_files(std::slice::from_ref(&file))[0].is_empty(),
            "explain and match agree"
        );
        assert_eq!(
            verdicts[0].to_string(),
            expected,
            "{path} against {patterns:?}"
        );
    }

    #[test]
    fn slipway_toml_negation_excludes() {
        check(
            &["app/**"],
            "app/a.rs",
            None,
            "app: matched by `app/**` (slipway.toml)",
        );
        check(
            &["app/**", "!app/**/*.md"],
            "app/README.md",
            None,
            "app: `app/**` matches but `!app/**/*.md` excludes it",
        );
        check(
            &["app/**", "!app/**/*.md"],
            "app/src/a.rs",
            None,
            "app: matched by `app/**` (slipway.toml)",
        );
        check(&["!docs/**"], "src/a.rs", None, "app: no pattern matches");
        check(&["app/**"], "lib/a.rs", None, "app: no pattern matches");
        check(
            &["app/**"],
            "lib/a.rs",
            Some("app/a.rs"),
            "app: matched by `app/**` (slipway.toml)",
        );
        check(
            &["*.toml"],
            ".cargo.toml",
            None,
            "app: matched by `*.toml` (slipway.toml)",
        );
    }

    #[test]
    fn a_large_list_shared_out_between_threads_keeps_its_order() {
        let files: Vec<ChangedFile> = (0..20_000)
            .map(|i| {
                ChangedFile::new(
                    format!("src/d{}/f{i}.{}", i % 7, ["rs", "md"][i % 2]),
                    ChangeStatus::Modified,
                )
            })
            .collect();
        let set = FilterSet::compile(vec![
            exclude_filter("d3", vec![PatternSpec::new("src/d3/**", "test")]),
            exclude_filter(
                "rust",
                vec![
                    PatternSpec::new("**/*.rs", "test"),
                    PatternSpec::new("!src/d1/**", "test"),
                ],
            ),
            exclude_filter("all", vec![PatternSpec::new("**", "test")]),
        ])
        .expect("valid patterns");
        let matched = set.match_files(&files);
        for (filter, indices) in matched.iter().enumerate() {
            let expected: Vec<usize> = files
                .iter()
                .enumerate()
                .filter(|(_, file)| set.explain(file)[filter].matched)
                .map(|(index, _)| index)
                .collect();
            assert_eq!(*indices, expected, "filter {filter}");
        }
        assert_eq!(matched[2].len(), 20_000);
    }

    #[test]
    fn bad_globs_name_filter_and_origin() {
        let error = FilterSet::compile(vec![exclude_filter(
            "app",
            vec![PatternSpec::new("a/{b", "slipway.toml")],
        )])
        .map(|_| ())
        .expect_err("invalid glob");
        assert_eq!(
            error.to_string(),
            "invalid pattern `a/{b` in filter `app` (slipway.toml): unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)"
        );
    }
}
