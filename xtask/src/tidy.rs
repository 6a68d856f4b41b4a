//! The tidy test: docs/ARCHITECTURE.md, docs/errors.md and
//! docs/reliability.md state rules about the code; these tests fail when the
//! code and those pages stop matching, so the map stays true (as
//! rust-analyzer's tidy does). Run by `cargo xtask ci` with every other test.
//!
//! What is checked:
//! - the crate dependency table in ARCHITECTURE.md (`<!-- tidy:deps -->`)
//!   equals what the members' Cargo.toml files declare, and the layering
//!   rules hold (no tool depends on a tool, the test bed uses nothing of ours
//!   and is a dev-dependency of everything but xtask; slipway-core and
//!   slipway-contract depend on no crate of ours, and `cargo tree` shows
//!   slipway-core, slipway-contract and ready-wait free of git2, ssh2 and
//!   (but ready-wait) reqwest; every tool passes `finish` the `classify` of
//!   each library crate it depends on);
//! - only the files listed under `<!-- tidy:writers -->` write to stdout or
//!   stderr in library and tool code;
//! - every `cargo xtask` task is named in ARCHITECTURE.md's code map, and
//!   nothing there is said to be "still to come";
//! - every test that docs/errors.md and docs/reliability.md cite exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::project_root;

fn read(path: &Path) -> String {
    fs_err::read_to_string(path).expect("the tidy test reads files of this checkout")
}

/// Workspace members: package name -> manifest directory.
fn members(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut members = BTreeMap::new();
    for parent in ["crates", "tools"] {
        for entry in fs_err::read_dir(root.join(parent)).expect("crates/ and tools/ exist") {
            let dir = entry.expect("a readable directory entry").path();
            if dir.join("Cargo.toml").is_file() {
                members.insert(package_name(&dir), dir);
            }
        }
    }
    members.insert("xtask".to_owned(), root.join("xtask"));
    members
}

fn package_name(dir: &Path) -> String {
    let manifest: toml::Table = read(&dir.join("Cargo.toml"))
        .parse()
        .expect("members' Cargo.toml parse");
    manifest["package"]["name"]
        .as_str()
        .expect("a package name")
        .to_owned()
}

/// The workspace members a member depends on, in one dependency table.
fn our_dependencies(dir: &Path, table: &str, ours: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let manifest: toml::Table = read(&dir.join("Cargo.toml"))
        .parse()
        .expect("members' Cargo.toml parse");
    manifest
        .get(table)
        .and_then(|deps| deps.as_table())
        .map(|deps| {
            deps.keys()
                .filter(|name| ours.contains_key(*name))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The lines of a Markdown section that follow `<!-- tidy:NAME -->` up to
/// the next blank line.
fn marked_block(doc: &str, name: &str) -> Vec<String> {
    let marker = format!("<!-- tidy:{name} -->");
    let start = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/ARCHITECTURE.md has no `{marker}` block"));
    doc[start + marker.len()..]
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Words in backticks on a line.
fn backticked(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

#[test]
fn crate_dependencies_match_the_architecture_table() {
    let root = project_root();
    let members = members(&root);
    let doc = read(&root.join("docs/ARCHITECTURE.md"));
    let mut documented = BTreeMap::new();
    for row in marked_block(&doc, "deps") {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // `| `crate` | `dep`, `dep` |`; the header and separator rows have no
        // backticked crate name in the first cell.
        let Some(name) = cells
            .get(1)
            .and_then(|cell| backticked(cell).first().copied())
        else {
            continue;
        };
        let deps: BTreeSet<String> = cells
            .get(2)
            .map(|cell| backticked(cell).into_iter().map(str::to_owned).collect())
            .unwrap_or_default();
        documented.insert(name.to_owned(), deps);
    }
    let actual: BTreeMap<String, BTreeSet<String>> = members
        .iter()
        .map(|(name, dir)| {
            (
                name.clone(),
                our_dependencies(dir, "dependencies", &members),
            )
        })
        .collect();
    assert_eq!(
        documented, actual,
        "docs/ARCHITECTURE.md's dependency table (<!-- tidy:deps -->) must list every member and exactly the members it depends on"
    );
}

#[test]
fn the_layering_rules_hold() {
    let root = project_root();
    let members = members(&root);
    let tools: BTreeSet<&String> = members
        .iter()
        .filter(|(_, dir)| dir.starts_with(root.join("tools")))
        .map(|(name, _)| name)
        .collect();
    assert!(tools.len() >= 6, "the six tools are members: {tools:?}");
    for (name, dir) in &members {
        let normal = our_dependencies(dir, "dependencies", &members);
        let dev = our_dependencies(dir, "dev-dependencies", &members);
        for dep in normal.iter().chain(&dev) {
            assert!(
                !tools.contains(dep),
                "`{name}` depends on the tool `{dep}`: no crate depends on a tool; move the shared code into a library crate"
            );
            assert_ne!(dep, "xtask", "`{name}` depends on xtask");
        }
        if name == "slipway-testbed" {
            assert!(
                normal.is_empty() && dev.is_empty(),
                "the test bed uses nothing of ours, found {normal:?} {dev:?}"
            );
        } else if name != "xtask" {
            assert!(
                !normal.contains("slipway-testbed"),
                "`{name}` links the test bed into a shipped binary; make it a dev-dependency"
            );
        }
    }
}

/// The packages `cargo tree -e normal` shows `package` linking (itself
/// included), by name.
fn linked_packages(root: &Path, package: &str) -> BTreeSet<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args(["tree", "--offline", "--locked", "-e", "normal"])
        .args(["--prefix", "none", "--format", "{p}", "-p", package])
        .current_dir(root)
        .output()
        .expect("the tidy test runs `cargo tree`");
    assert!(
        output.status.success(),
        "`cargo tree -p {package}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_library_crates_link_only_what_their_layer_allows() {
    let root = project_root();
    let members = members(&root);
    for base in ["slipway-core", "slipway-contract"] {
        let ours = our_dependencies(&members[base], "dependencies", &members);
        assert!(
            ours.is_empty(),
            "`{base}` depends on {ours:?}: it is the bottom layer and depends on no crate of ours"
        );
    }
    const GIT_AND_SSH: &[&str] = &["git2", "libgit2-sys", "ssh2", "libssh2-sys"];
    let rules: [(&str, &[&str], &str); 3] = [
        (
            "slipway-core",
            &["git2", "libgit2-sys", "ssh2", "libssh2-sys", "reqwest"],
            "slipway-core is what every tool links: git, registry and ssh code belong in the crates above it",
        ),
        (
            "slipway-contract",
            &[
                "git2",
                "libgit2-sys",
                "ssh2",
                "libssh2-sys",
                "reqwest",
                "tokio",
            ],
            "slipway-contract is serde types only: define the type there, keep its git or network code in the crate that computes it",
        ),
        (
            "ready-wait",
            GIT_AND_SSH,
            "ready-wait polls endpoints: it must not link libgit2 or libssh2",
        ),
    ];
    for (package, forbidden, why) in rules {
        let linked = linked_packages(&root, package);
        assert!(
            linked.contains(package),
            "`cargo tree -p {package}` does not list {package}: {linked:?}"
        );
        let found: Vec<&&str> = forbidden
            .iter()
            .filter(|name| linked.contains(**name))
            .collect();
        assert!(found.is_empty(), "`{package}` links {found:?}: {why}");
    }
}

#[test]
fn every_tool_classifies_the_errors_of_the_crates_it_uses() {
    let root = project_root();
    let members = members(&root);
    for (name, dir) in &members {
        if !dir.starts_with(root.join("tools")) {
            continue;
        }
        let main = read(&dir.join("src/main.rs"));
        for dep in our_dependencies(dir, "dependencies", &members) {
            let lib = read(&members[&dep].join("src/lib.rs"));
            let classify = format!("{}::ERRORS", dep.replace('-', "_"));
            if lib.contains("pub const ERRORS:") {
                assert!(
                    main.contains(&classify),
                    "`{name}` depends on `{dep}` but its main.rs does not pass `{classify}` to `finish`: its errors would exit 3 whatever code they say, and name no place in a file"
                );
            }
        }
    }
}

/// Non-test source of library and tool crates: each file with its text cut
/// at its `#[cfg(test)]` module, which always comes last (STYLE.md §7).
fn shipped_sources(root: &Path) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs_err::read_dir(dir).expect("a readable source directory") {
            let path = entry.expect("a readable directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for parent in ["crates", "tools"] {
        for entry in fs_err::read_dir(root.join(parent)).expect("crates/ and tools/ exist") {
            let dir = entry.expect("a readable directory entry").path();
            if dir.join("src").is_dir() && !dir.ends_with("slipway-testbed") {
                walk(&dir.join("src"), &mut files);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = read(&path);
            let shipped = match text.find("#[cfg(test)]") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            (path, shipped)
        })
        .collect()
}

#[test]
fn only_the_listed_modules_write_to_stdout_or_stderr() {
    let root = project_root();
    let doc = read(&root.join("docs/ARCHITECTURE.md"));
    let allowed: BTreeSet<PathBuf> = marked_block(&doc, "writers")
        .iter()
        .flat_map(|line| backticked(line).into_iter().map(|path| root.join(path)))
        .collect();
    assert!(!allowed.is_empty(), "the writers list is empty");
    for path in &allowed {
        assert!(
            path.is_file(),
            "the writers list names `{}`, which does not exist",
            path.display()
        );
    }
    const WRITES: &[&str] = &[
        "println!",
        "print!(",
        "eprintln!",
        "eprint!(",
        "dbg!(",
        "io::stdout()",
        "io::stderr()",
    ];
    let mut found = BTreeSet::new();
    for (path, text) in shipped_sources(&root) {
        if let Some(write) = WRITES.iter().find(|write| text.contains(**write)) {
            found.insert(path.clone());
            assert!(
                allowed.contains(&path),
                "`{}` writes to stdout/stderr (`{write}`) but is not in docs/ARCHITECTURE.md's writers list: return a Report, log with tracing, or go through slipway_core::output",
                path.display()
            );
        }
    }
    let unused: Vec<_> = allowed.difference(&found).collect();
    assert!(
        unused.is_empty(),
        "the writers list names files that write nothing: {unused:?}"
    );
}

/// `InstallHooks` -> `install-hooks`.
fn kebab(variant: &str) -> String {
    let mut out = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The variants of `enum <name>` in `source`, kebab-cased as clap names
/// them; a `#[command(flatten)]` variant is left out (its own enum names
/// its subcommands).
fn subcommands(source: &str, name: &str) -> Vec<String> {
    let body = source
        .split(&format!("enum {name} {{"))
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .unwrap_or_else(|| panic!("no `enum {name}` found"));
    let mut flattened = false;
    let mut variants = Vec::new();
    for line in body.lines().map(str::trim) {
        if line.starts_with("#[command(flatten)]") {
            flattened = true;
        }
        if line.starts_with("///") || line.starts_with('#') {
            continue;
        }
        let Some(variant) = line.split('(').next() else {
            continue;
        };
        let variant = variant.trim_end_matches(',').trim();
        if variant.is_empty() {
            continue;
        }
        if !std::mem::take(&mut flattened) {
            variants.push(kebab(variant));
        }
    }
    variants
}

#[test]
fn every_xtask_task_is_on_the_map() {
    let root = project_root();
    let main = read(&root.join("xtask/src/main.rs"));
    // The chain's tasks are declared once, in slipway-chain, and flattened
    // into xtask's.
    let chain = read(&root.join("crates/slipway-chain/src/command.rs"));
    let mut tasks = subcommands(&main, "Task");
    tasks.extend(subcommands(&chain, "Command"));
    assert!(tasks.len() >= 8, "parsed the xtask tasks: {tasks:?}");
    let doc = read(&root.join("docs/ARCHITECTURE.md"));
    let xtask_entry = doc
        .split("- `xtask`")
        .nth(1)
        .and_then(|rest| {
            rest.split("\n- ")
                .next()
                .map(|entry| entry.split("\n## ").next().unwrap_or(entry))
        })
        .expect("docs/ARCHITECTURE.md's code map has an `xtask` entry");
    let entry = xtask_entry.replace('\n', " ");
    // `cargo xtask ci` names the task `ci`: the last word in the backticks.
    let named: BTreeSet<&str> = backticked(&entry)
        .into_iter()
        .filter_map(|word| word.split_whitespace().last())
        .collect();
    for task in &tasks {
        assert!(
            named.contains(task.as_str()),
            "`cargo xtask {task}` is not described in docs/ARCHITECTURE.md's `xtask` entry (found {named:?})"
        );
    }
    assert!(
        !doc.contains("still to come"),
        "docs/ARCHITECTURE.md says something is \"still to come\": describe what exists"
    );
}

/// Every function marked as a test anywhere in the workspace, by the file
/// it is in.
fn test_functions(root: &Path) -> BTreeMap<String, BTreeSet<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs_err::read_dir(dir).expect("a readable source directory") {
            let path = entry.expect("a readable directory entry").path();
            if path.is_dir() && !path.ends_with("target") && !path.ends_with(".git") {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for dir in ["crates", "tools", "xtask"] {
        walk(&root.join(dir), &mut files);
    }
    let mut tests: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
    for path in files {
        let text = read(&path);
        let mut is_test = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with("#[test]") || line.starts_with("#[tokio::test") {
                is_test = true;
            } else if is_test && (line.starts_with("fn ") || line.starts_with("async fn ")) {
                let name = line
                    .trim_start_matches("async ")
                    .trim_start_matches("fn ")
                    .split(['(', '<'])
                    .next()
                    .unwrap_or_default();
                tests
                    .entry(name.to_owned())
                    .or_default()
                    .insert(path.clone());
                is_test = false;
            }
        }
    }
    tests
}

/// Backticked words of a page that cite a test: `name`, `file.rs::name`,
/// `alias::name` or `path/file.rs::name`, where name is a long snake_case
/// sentence (test names here are sentences; short identifiers such as
/// `exit_code_for` are functions, not tests, unless a `.rs::` says so).
fn cited_tests(doc: &str) -> Vec<(Option<String>, String)> {
    let mut cited = Vec::new();
    // Line by line: a code fence's three backticks would pair the rest of
    // the page the wrong way round.
    for word in doc
        .lines()
        .filter(|line| !line.trim_start().starts_with("```"))
        .flat_map(backticked)
    {
        let word = word.trim_start_matches('…').trim_start_matches("...");
        let (file, name) = match word.rsplit_once("::") {
            Some((file, name)) => (Some(file), name),
            None => (None, word),
        };
        let is_snake = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let is_file = file.is_some_and(|file| file.ends_with(".rs"));
        if is_snake && (name.matches('_').count() >= 4 || is_file) {
            let file = file.filter(|file| file.ends_with(".rs")).map(str::to_owned);
            cited.push((file, name.to_owned()));
        }
    }
    cited
}

#[test]
fn every_test_the_docs_cite_exists() {
    let root = project_root();
    let tests = test_functions(&root);
    let mut checked = 0;
    let mut wrong = Vec::new();
    for page in ["docs/errors.md", "docs/reliability.md"] {
        let doc = read(&root.join(page));
        for (file, name) in cited_tests(&doc) {
            checked += 1;
            match (tests.get(&name), file) {
                (None, _) => wrong.push(format!(
                    "{page} cites the test `{name}`, which does not exist"
                )),
                (Some(paths), Some(file)) if !paths.iter().any(|path| path.ends_with(&file)) => {
                    wrong.push(format!(
                        "{page} cites `{file}::{name}`, but that test is in {paths:?}"
                    ));
                }
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        checked >= 100,
        "found only {checked} cited tests: is the citation format still understood?"
    );
}
