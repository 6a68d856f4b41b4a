//! dorny/paths-filter YAML (changed-paths `--filters`): reading never
//! panics; an error points at a line and column inside the input (lines
//! ending as YAML ends them); every filter read has at least one pattern,
//! and what reads either compiles or fails naming a filter that exists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_git::changes::{ChangeStatus, ChangedFile};
use slipway_git::paths::yaml;
use slipway_git::paths::{FilterSet, PathsError, Quantifier};

fuzz_target!(|text: &str| {
    let quantifier = if text.len() % 2 == 0 {
        Quantifier::Some
    } else {
        Quantifier::Every
    };
    match yaml::parse(text, "filters.yml", quantifier) {
        Err(PathsError::Yaml {
            file,
            line,
            column,
            reason,
        }) => {
            assert_eq!(file, "filters.yml");
            assert!(!reason.is_empty());
            // YAML ends a line at `\r\n`, `\r` or `\n`.
            let text = text.replace("\r\n", "\n").replace('\r', "\n");
            let lines: Vec<&str> = text.split('\n').collect();
            assert!(
                line >= 1 && line <= lines.len(),
                "line {line} outside the input's {} lines: {reason}",
                lines.len()
            );
            let width = lines[line - 1].chars().count();
            assert!(
                column >= 1 && column <= width + 1,
                "column {column} outside line {line} ({width} characters): {reason}"
            );
        }
        Err(other) => panic!("yaml::parse returned a non-YAML error: {other}"),
        Ok(specs) => {
            let names: Vec<String> = specs.iter().map(|spec| spec.name.clone()).collect();
            for spec in &specs {
                assert!(
                    !spec.rules.is_empty(),
                    "filter `{}` has no rules",
                    spec.name
                );
                for rule in &spec.rules {
                    assert!(
                        !rule.patterns.is_empty(),
                        "filter `{}` has an empty rule",
                        spec.name
                    );
                }
            }
            match FilterSet::compile(specs) {
                Ok(set) => {
                    let files = [
                        ChangedFile::new("src/main.rs", ChangeStatus::Modified),
                        ChangedFile::new("docs/a.md", ChangeStatus::Added),
                    ];
                    let matched = set.match_files(&files);
                    for (file_index, file) in files.iter().enumerate() {
                        for (filter, verdict) in set.explain(file).iter().enumerate() {
                            assert_eq!(matched[filter].contains(&file_index), verdict.matched);
                        }
                    }
                }
                Err(PathsError::Pattern { filter, .. }) => {
                    assert!(
                        filter == "*" || names.contains(&filter),
                        "the error names `{filter}`, which is not a filter"
                    );
                }
                Err(other) => panic!("compile returned a non-pattern error: {other}"),
            }
        }
    }
});
