//! Glob filters (changed-paths `--filters`, slipway.toml `paths`, the
//! patterns derived from a Dockerfile and its `.dockerignore`): compiling
//! and matching never panic; the fast matcher and `--explain` agree on
//! every file; a plain path is matched by itself as a pattern; an image's
//! Dockerfile always selects its image. Extglobs and brace ranges (matched
//! by the paths module's own backtracking matcher) are in the seed corpus
//! (`corpus/glob_filters/extglobs_and_ranges`), so the fuzzer mutates them.
//!
//! Input, one item per line: `docker:` a Dockerfile line, `ignore:` a
//! `.dockerignore` line, `path:` a changed file; any other line is a pattern.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_git::changes::{ChangeStatus, ChangedFile};
use slipway_git::paths::docker::{self, DockerIgnore};
use slipway_git::paths::{
    FilterSet, FilterSpec, PatternSpec, Quantifier, RuleSpec, Semantics, exclude_filter,
};

fuzz_target!(|text: &str| {
    let mut patterns = Vec::new();
    let mut dockerfile = String::new();
    let mut dockerignore = String::new();
    let mut files = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("docker:") {
            dockerfile.push_str(rest);
            dockerfile.push('\n');
        } else if let Some(rest) = line.strip_prefix("ignore:") {
            dockerignore.push_str(rest);
            dockerignore.push('\n');
        } else if let Some(rest) = line.strip_prefix("path:") {
            let status = ChangeStatus::ALL[files.len() % ChangeStatus::ALL.len()];
            files.push(ChangedFile::new(rest, status));
        } else {
            patterns.push(PatternSpec::new(line, "fuzz"));
        }
    }
    let _ = docker::copy_sources(&dockerfile);
    let ignore = DockerIgnore::parse(&dockerignore, "app", "app/.dockerignore").ok();
    let paths_filter = |name: &str, quantifier| FilterSpec {
        name: name.to_owned(),
        semantics: Semantics::PathsFilter(quantifier),
        rules: patterns
            .iter()
            .map(|pattern| RuleSpec {
                statuses: None,
                patterns: vec![pattern.clone()],
            })
            .collect(),
        dockerignore: None,
    };
    let mut specs = vec![
        paths_filter("some", Quantifier::Some),
        paths_filter("every", Quantifier::Every),
        exclude_filter("exclude", patterns.clone()),
    ];
    // Each plain path as its own pattern: it must match itself.
    let mut literals = Vec::new();
    for (index, file) in files.iter().enumerate() {
        if is_plain(&file.path) {
            literals.push((specs.len(), index));
            let name = format!("literal-{index}");
            specs.push(exclude_filter(
                &name,
                vec![PatternSpec::new(&file.path, "fuzz")],
            ));
        }
    }
    let derived = specs.len();
    specs.push(docker::derived_filter(
        "app",
        "app",
        "app/Dockerfile",
        &dockerfile,
        ignore,
    ));
    let Ok(set) = FilterSet::compile(specs) else {
        return;
    };
    files.push(ChangedFile::new("app/Dockerfile", ChangeStatus::Modified));
    let matched = set.match_files(&files);
    assert_eq!(matched.len(), set.len());
    for (file_index, file) in files.iter().enumerate() {
        let verdicts = set.explain(file);
        assert_eq!(verdicts.len(), set.len(), "one verdict per filter");
        for (filter, verdict) in verdicts.iter().enumerate() {
            assert_eq!(
                matched[filter].contains(&file_index),
                verdict.matched,
                "match_files and explain disagree on `{}` for filter `{}`: {verdict}",
                file.path,
                verdict.filter
            );
        }
    }
    for (filter, file_index) in literals {
        assert!(
            matched[filter].contains(&file_index),
            "the path `{}` does not match itself as a pattern",
            files[file_index].path
        );
    }
    assert!(
        matched[derived].contains(&(files.len() - 1)),
        "a change to the image's Dockerfile does not select the image"
    );
});

/// A relative path of ordinary names: no glob syntax, no empty, `.` or `..`
/// segment, so it means the same as a path and as a pattern.
fn is_plain(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        })
}
