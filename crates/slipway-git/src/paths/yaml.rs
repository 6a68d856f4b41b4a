//! dorny/paths-filter's filter format, read as it reads it, so a team moves
//! its `filters:` block over unchanged.
//!
//! The root is a mapping of filter names to a pattern, a list of patterns,
//! or a list mixing patterns and `{status: pattern(s)}` entries
//! (`added|modified: '**/*.js'`); lists nested by YAML anchors (`- *shared`)
//! are flattened. Each pattern string is its own rule, each status entry
//! one rule whose patterns are alternatives; the quantifier combines rules.
//! As in paths-filter, a status key is split at `|`, each name trimmed and
//! lowercased, and a name that is no status (`changed`) never matches; a
//! warning names it and the valid ones.

use saphyr::{LoadableYamlNode as _, MarkedYaml, Scalar, YamlData};

use super::{FilterSpec, PathsError, PatternSpec, Quantifier, RuleSpec, Semantics};
use crate::changes::ChangeStatus;

/// Reads paths-filter YAML from `text`; `file` names it in errors and in
/// each pattern's origin.
pub fn parse(
    text: &str,
    file: &str,
    quantifier: Quantifier,
) -> Result<Vec<FilterSpec>, PathsError> {
    let documents = MarkedYaml::load_from_str(text).map_err(|e| {
        let (line, column) = within_text(text, e.marker().line(), e.marker().col() + 1);
        PathsError::Yaml {
            file: file.to_owned(),
            line,
            column,
            reason: e.info().to_owned(),
        }
    })?;
    let error = |node: &MarkedYaml<'_>, reason: String| {
        let start = node.span.start;
        let (line, column) = within_text(text, start.line(), start.col() + 1);
        PathsError::Yaml {
            file: file.to_owned(),
            line,
            column,
            reason,
        }
    };
    let Some(root) = documents.first() else {
        return Err(PathsError::Yaml {
            file: file.to_owned(),
            line: 1,
            column: 1,
            reason: "the filters are empty: expected a mapping of filter names to patterns"
                .to_owned(),
        });
    };
    let YamlData::Mapping(mapping) = &root.data else {
        return Err(error(
            root,
            "the root is not a mapping: expected `name: pattern` or `name: [patterns]` entries"
                .to_owned(),
        ));
    };
    let mut filters = Vec::with_capacity(mapping.len());
    for (key, value) in mapping {
        let Some(name) = scalar_text(key) else {
            return Err(error(key, "a filter name must be a string".to_owned()));
        };
        let mut rules = Vec::new();
        if !matches!(value.data, YamlData::Value(Scalar::Null)) {
            collect(value, &name, file, &mut rules, &error)?;
        }
        if rules.is_empty() {
            return Err(error(
                value,
                format!(
                    "filter `{name}` has no patterns: expected a pattern or a list of patterns"
                ),
            ));
        }
        filters.push(FilterSpec {
            name,
            semantics: Semantics::PathsFilter(quantifier),
            rules,
            dockerignore: None,
        });
    }
    Ok(filters)
}

/// `line` and `column` (1-based), or the end of the last line when they are
/// past it: saphyr puts the end of a text that lacks a final newline (and
/// an empty value there) on a line of its own, one past the last. Lines end
/// as YAML ends them: at `\r\n`, `\r` or `\n`. Found by fuzzing
/// (fuzz/fuzz_targets/paths_filter_yaml.rs).
fn within_text(text: &str, line: usize, column: usize) -> (usize, usize) {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    match lines.get(line.max(1) - 1) {
        Some(_) => (line.max(1), column),
        None => (
            lines.len(),
            lines.last().map_or(0, |last| last.chars().count()) + 1,
        ),
    }
}

type ErrorAt<'e> = dyn Fn(&MarkedYaml<'_>, String) -> PathsError + 'e;

/// Adds the rules `node` holds (recursively through nested lists).
fn collect(
    node: &MarkedYaml<'_>,
    name: &str,
    file: &str,
    rules: &mut Vec<RuleSpec>,
    error: &ErrorAt<'_>,
) -> Result<(), PathsError> {
    let origin = |node: &MarkedYaml<'_>| format!("{file}:{}", node.span.start.line());
    match &node.data {
        YamlData::Sequence(items) => {
            for item in items {
                collect(item, name, file, rules, error)?;
            }
        }
        YamlData::Mapping(entries) => {
            for (key, value) in entries {
                let Some(key_text) = scalar_text(key) else {
                    return Err(error(
                        key,
                        format!(
                            "in filter `{name}`, a status key must be a string like `added|modified`"
                        ),
                    ));
                };
                let statuses = status_key(&key_text, name, &origin(key));
                let mut patterns = Vec::new();
                match &value.data {
                    YamlData::Sequence(items) => {
                        for item in items {
                            patterns.push(PatternSpec::new(
                                pattern_text(item, name, error)?,
                                origin(item),
                            ));
                        }
                    }
                    _ => patterns.push(PatternSpec::new(
                        pattern_text(value, name, error)?,
                        origin(value),
                    )),
                }
                rules.push(RuleSpec {
                    statuses: Some(statuses),
                    patterns,
                });
            }
        }
        _ => {
            let text = pattern_text(node, name, error)?;
            rules.push(RuleSpec {
                statuses: None,
                patterns: vec![PatternSpec::new(text, origin(node))],
            });
        }
    }
    Ok(())
}

/// The statuses a key names (`added|modified`), as paths-filter reads it:
/// split at `|`, trimmed, lowercased; a name that is no status is kept out
/// (so a rule with only such names never matches), with a warning.
fn status_key(key: &str, filter: &str, at: &str) -> Vec<ChangeStatus> {
    let mut statuses = Vec::new();
    for name in key
        .split('|')
        .map(|name| name.trim().to_lowercase())
        .filter(|name| !name.is_empty())
    {
        match name.parse::<ChangeStatus>() {
            Ok(status) if !statuses.contains(&status) => statuses.push(status),
            Ok(_) => {}
            Err(_) => {
                let valid: Vec<&str> = ChangeStatus::ALL.iter().map(|s| s.as_str()).collect();
                tracing::warn!(
                    "status `{name}` of key `{key}` in filter `{filter}` ({at}) is not a change status, so it never matches (as in paths-filter); valid statuses: {}",
                    valid.join(", ")
                );
            }
        }
    }
    statuses
}

/// A pattern must be a string, as in paths-filter (a number or boolean is
/// an "unexpected element type" there too).
fn pattern_text(
    node: &MarkedYaml<'_>,
    name: &str,
    error: &ErrorAt<'_>,
) -> Result<String, PathsError> {
    match &node.data {
        YamlData::Value(Scalar::String(text)) => Ok(text.to_string()),
        YamlData::Representation(text, _, _) => Ok(text.to_string()),
        YamlData::Value(Scalar::Null) => Err(error(
            node,
            format!("filter `{name}` has an empty pattern: expected a glob like `src/**`"),
        )),
        YamlData::Value(other) => Err(error(
            node,
            format!(
                "in filter `{name}`, expected a pattern string, found `{}`: quote it",
                scalar_display(other)
            ),
        )),
        _ => Err(error(
            node,
            format!(
                "in filter `{name}`, expected a pattern string, a list of them, or `status: pattern`"
            ),
        )),
    }
}

/// A mapping key as text: strings as they are, numbers and booleans as
/// JavaScript would name them.
fn scalar_text(node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(text)) => Some(text.to_string()),
        YamlData::Representation(text, _, _) => Some(text.to_string()),
        YamlData::Value(Scalar::Null) => None,
        YamlData::Value(other) => Some(scalar_display(other)),
        _ => None,
    }
}

fn scalar_display(scalar: &Scalar<'_>) -> String {
    match scalar {
        Scalar::Null => "null".to_owned(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::FloatingPoint(f) => f.to_string(),
        Scalar::String(s) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    //! The compatibility suite: cases from paths-filter's README and its
    //! own tests, each asserting exactly which files a filter selects.

    use super::*;
    use crate::changes::{ChangeStatus, ChangedFile};
    use crate::paths::FilterSet;

    /// Parses `yaml`, matches `files` (`path` is modified, `A path` added,
    /// `D path` deleted, …) and compares each filter's files with `expected`
    /// (`name: a, b` per filter, `name:` for none).
    #[track_caller]
    fn check_with(quantifier: Quantifier, yaml: &str, files: &[&str], expected: &[&str]) {
        let files: Vec<ChangedFile> = files
            .iter()
            .map(|f| match f.split_once(' ') {
                Some((letter, path)) => {
                    let status = match letter {
                        "A" => ChangeStatus::Added,
                        "D" => ChangeStatus::Deleted,
                        "R" => ChangeStatus::Renamed,
                        "C" => ChangeStatus::Copied,
                        _ => ChangeStatus::Modified,
                    };
                    ChangedFile::new(path, status)
                }
                None => ChangedFile::new(*f, ChangeStatus::Modified),
            })
            .collect();
        let set = FilterSet::compile(parse(yaml, "filters.yml", quantifier).expect("valid yaml"))
            .expect("valid patterns");
        let matched = set.match_files(&files);
        for (index, file) in files.iter().enumerate() {
            for (verdict, indices) in set.explain(file).iter().zip(&matched) {
                assert_eq!(
                    verdict.matched,
                    indices.contains(&index),
                    "explain and match agree on `{}` for `{}`",
                    file.path,
                    verdict.filter
                );
            }
        }
        let got: Vec<String> = set
            .names()
            .zip(&matched)
            .map(|(name, indices)| {
                let paths: Vec<&str> = indices.iter().map(|i| files[*i].path.as_str()).collect();
                format!("{name}: {}", paths.join(", "))
                    .trim_end()
                    .to_owned()
            })
            .collect();
        assert_eq!(got, expected, "filters:\n{yaml}");
    }

    #[track_caller]
    fn check(yaml: &str, files: &[&str], expected: &[&str]) {
        check_with(Quantifier::Some, yaml, files, expected);
    }

    #[track_caller]
    fn check_error(yaml: &str, expected: &str) {
        let error = parse(yaml, "filters.yml", Quantifier::Some)
            .map_err(|e| e.to_string())
            .and_then(|specs| {
                FilterSet::compile(specs)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .expect_err("invalid filters");
        assert_eq!(error, expected);
    }

    #[test]
    fn paths_filter_compatibility() {
        // README: a filter is a single string or a list of patterns.
        check(
            "src: 'src/**/*.js'",
            &["src/app/module/file.js"],
            &["src: src/app/module/file.js"],
        );
        check(
            "src:\n  - src/**/*.js",
            &["src/app/module/file.js"],
            &["src: src/app/module/file.js"],
        );
        check(
            "src:\n  - src/**/*.js",
            &["not_src/other_file.js"],
            &["src:"],
        );
        check(
            "src:\n  - src/**/*.js\ntest:\n  - test/**/*.js",
            &["test/test.js"],
            &["src:", "test: test/test.js"],
        );
        check(
            "src:\n  - src/**/*.js\n  - test/**/*.js",
            &["test/test.js"],
            &["src: test/test.js"],
        );
        check("any:\n  - '**'", &["test/test.js"], &["any: test/test.js"]);
        // Dotfiles and dot-directories match `*` and `**` (picomatch `dot: true`).
        check(
            "dot:\n  - '**/*.js'",
            &[".test/.test.js"],
            &["dot: .test/.test.js"],
        );
        check("all: '*'", &[".env", "a/.env"], &["all: .env"]);
        check(
            "gh: '.github/**'",
            &[".github/workflows/ci.yml"],
            &["gh: .github/workflows/ci.yml"],
        );
        // A negated extglob over the whole pattern.
        check(
            "backend:\n  - '!(**/*.tsx|**/*.less)'",
            &["src/ui.tsx", "src/ui.less", "src/server.py"],
            &["backend: src/server.py"],
        );
        // Anchors: a list included in another list.
        check(
            "shared: &shared\n  - common/**/*\n  - config/**/*\nsrc:\n  - *shared\n  - src/**/*",
            &["config/settings.yml", "src/main.rs", "docs/x.md"],
            &[
                "shared: config/settings.yml",
                "src: config/settings.yml, src/main.rs",
            ],
        );
        // Statuses.
        check("add:\n  - added: '**/*'", &["file.js"], &["add:"]);
        check("add:\n  - added: '**/*'", &["A file.js"], &["add: file.js"]);
        check(
            "addOrModify:\n  - added|modified: '**/*'",
            &["file.js", "D gone.js"],
            &["addOrModify: file.js"],
        );
        check(
            "shared: &shared\n  - common/**/*\n  - config/**/*\nsrc:\n  - modified: *shared",
            &["config/file.js", "common/anotherFile.js", "A common/new.js"],
            &[
                "shared: config/file.js, common/anotherFile.js, common/new.js",
                "src: config/file.js, common/anotherFile.js",
            ],
        );
        check(
            "x:\n  - ' Added | Deleted ': 'a/*'",
            &["A a/1", "D a/2", "a/3"],
            &["x: a/1, a/2"],
        );
        check(
            "x:\n  - deleted: ['a/*', 'b/*']\n  - 'c/*'",
            &["D b/1", "b/2", "c/3", "D d/4"],
            &["x: b/1, c/3"],
        );
        // Under the default `some`, `!` is just another alternative: it
        // matches everything the pattern does not.
        check(
            "backend:\n  - 'pkg/**'\n  - '!**/*.md'",
            &[
                "pkg/a.go",
                "pkg/README.md",
                "docs/guide.txt",
                "docs/guide.md",
            ],
            &["backend: pkg/a.go, pkg/README.md, docs/guide.txt"],
        );
        check(
            "notdocs: '!docs/**'",
            &["docs/a.md", "src/a.rs"],
            &["notdocs: src/a.rs"],
        );
        // Exact paths: a pattern without glob characters matches one path.
        check(
            "lock: package.json",
            &["package.json", "web/package.json", "package.json5"],
            &["lock: package.json"],
        );
        check("dir: src", &["src", "src/a.rs"], &["dir: src"]);
        // `*` stops at `/`; `**` crosses; `dir/**` matches the dir itself too.
        check(
            "top: '*.md'",
            &["README.md", "docs/a.md"],
            &["top: README.md"],
        );
        check(
            "deep: '**/*.md'",
            &["README.md", "docs/a/b.md"],
            &["deep: README.md, docs/a/b.md"],
        );
        check(
            "tree: 'src/**'",
            &["src", "src/a/b.rs", "srcx/a"],
            &["tree: src, src/a/b.rs"],
        );
        // `**` that is not a whole segment is a single `*`.
        check("md: '**.md'", &["a.md", "docs/a.md"], &["md: a.md"]);
        // Braces, classes and `?`.
        check(
            "ts: 'src/**/*.{ts,tsx}'",
            &["src/a.ts", "src/b/c.tsx", "src/d.js"],
            &["ts: src/a.ts, src/b/c.tsx"],
        );
        check(
            "one: 'v?.txt'",
            &["v1.txt", "v10.txt", "v/.txt"],
            &["one: v1.txt"],
        );
        check(
            "cls: 'log[0-9].txt'",
            &["log1.txt", "logx.txt"],
            &["cls: log1.txt"],
        );
        // A leading `/` never matches: changed paths are relative.
        check("abs: '/src/**'", &["src/a"], &["abs:"]);
        // Case matters.
        check(
            "docs: 'Docs/**'",
            &["docs/a.md", "Docs/b.md"],
            &["docs: Docs/b.md"],
        );
        // Every filter is reported, in the file's order.
        check(
            "b: 'b/*'\na: 'a/*'\nc: 'c/*'",
            &["a/1", "b/1"],
            &["b: b/1", "a: a/1", "c:"],
        );
        // README's `predicate-quantifier: every` example: `!` now excludes.
        check_with(
            Quantifier::Every,
            "backend:\n  - 'pkg/a/b/c/**'\n  - '!**/*.jpeg'\n  - '!**/*.md'",
            &[
                "pkg/a/b/c/d.go",
                "pkg/a/b/c/e.md",
                "pkg/a/b/c/f.jpeg",
                "pkg/x.go",
            ],
            &["backend: pkg/a/b/c/d.go"],
        );
        // Under `every`, two positive patterns must both match.
        check_with(
            Quantifier::Every,
            "x:\n  - 'src/**'\n  - '**/*.rs'",
            &["src/a.rs", "src/b.md", "c.rs"],
            &["x: src/a.rs"],
        );
        // Under `every`, a status rule must hold too.
        check_with(
            Quantifier::Every,
            "x:\n  - 'src/**'\n  - added: '**'",
            &["A src/a", "src/b"],
            &["x: src/a"],
        );
    }

    #[test]
    fn unknown_status_keys_never_match_as_in_paths_filter() {
        check(
            "x:\n  - changed: '**'\ny:\n  - added|changed: '**'\nz:\n  - ADDED: 'a/*'",
            &["a/1", "A a/2"],
            &["x:", "y: a/2", "z: a/2"],
        );
        // Renames are off by default, as in paths-filter: `renamed` is a
        // status that matches nothing then.
        check("r:\n  - renamed: '**'", &["a/1", "A b/2", "D a/1"], &["r:"]);
        check_with(
            Quantifier::Every,
            "x:\n  - 'a/**'\n  - changed: '**'",
            &["a/1"],
            &["x:"],
        );
    }

    #[test]
    fn extglobs_and_brace_ranges_as_paths_filter_reads_them() {
        check(
            "v: 'v{1..3}/**'",
            &["v1/a", "v3/b/c", "v4/a", "v12/a"],
            &["v: v1/a, v3/b/c"],
        );
        check(
            "n: 'f{01..10}.txt'",
            &["f0.txt", "f1.txt", "f01.txt", "f10.txt"],
            &["n: f0.txt, f1.txt"],
        );
        check(
            "x: 'src/+(a|b)/*.rs'",
            &["src/a/x.rs", "src/abba/x.rs", "src/c/x.rs"],
            &["x: src/a/x.rs, src/abba/x.rs"],
        );
        check(
            "x: 'lib/*(x).rs'",
            &["lib/.rs", "lib/xx.rs", "lib/y.rs"],
            &["x: lib/.rs, lib/xx.rs"],
        );
        check(
            "x: 'lib/?(x)y.rs'",
            &["lib/y.rs", "lib/xy.rs", "lib/xxy.rs"],
            &["x: lib/y.rs, lib/xy.rs"],
        );
        check(
            "x: 'docs/!(*.md)'",
            &["docs/a.md", "docs/a.rs", "docs/x/a.rs"],
            &["x: docs/a.rs"],
        );
        check(
            "x: '@(app|@(lib|bin))/**'",
            &["app/a", "lib/b", "bin/c", "doc/d"],
            &["x: app/a, lib/b, bin/c"],
        );
        // A negated extglob pattern is another alternative under `some`.
        check(
            "x:\n  - 'pkg/**'\n  - '!+(docs|site)/**'",
            &["pkg/a", "docs/b", "site/c", "other/d"],
            &["x: pkg/a, other/d"],
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        check_error(
            "not a dictionary",
            "filters.yml:1:1: the root is not a mapping: expected `name: pattern` or `name: [patterns]` entries",
        );
        check_error(
            "src:\n  - src/**/*.js\n  - dict:\n      some: value\n",
            "filters.yml:4:7: in filter `src`, expected a pattern string, a list of them, or `status: pattern`",
        );
        check_error(
            "src:\n  - 42\n",
            "filters.yml:2:5: in filter `src`, expected a pattern string, found `42`: quote it",
        );
        check_error(
            "src:\n",
            "filters.yml:1:4: filter `src` has no patterns: expected a pattern or a list of patterns",
        );
        check_error(
            "src: [a\n",
            "filters.yml:2:1: while parsing a flow sequence, expected ',' or ']'",
        );
        check_error(
            "x: 'src/+(a|b'",
            "invalid pattern `src/+(a|b` in filter `x` (filters.yml:1): an extglob `(` is not closed by `)`",
        );
        check_error(
            "x: 'a/{b'",
            "invalid pattern `a/{b` in filter `x` (filters.yml:1): unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)",
        );
        check_error("a: x\na: y\n", "filters.yml:2:1: duplicated key in mapping");
    }

    #[test]
    fn an_error_at_the_end_of_a_text_without_final_newline_points_at_its_last_line() {
        // The fuzzer's input: saphyr reported line 4 of these 3 lines.
        check_error(
            "backend:\n  - \"api/**\"\n!  ",
            "filters.yml:3:4: simple key expected",
        );
        check_error(
            "src: [a",
            "filters.yml:1:8: while parsing a flow sequence, expected ',' or ']'",
        );
        // An empty value at the very end sits on that line too (fuzzer's input).
        check_error(
            "backend:\n  :&s -**\"\n? :/\"",
            "filters.yml:3:6: filter `:/\"` has no patterns: expected a pattern or a list of patterns",
        );
    }
}
