//! `changed-paths`: tell which files changed between two refs and which
//! named filters (and so which images) they touch.
//!
//! `run` builds the plan first (config, filters, range), all of it checked,
//! then lists the changes through git2 and matches them in one pass.

mod cli;
mod image;
mod json;
mod list;
mod range;
mod report;

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context as _;
use slipway_config::{Config, ConfigErrorKind};
use slipway_core::cli::UsageError;
use slipway_git::changes::{self, ChangedFile, DiffOptions, Differ};
use slipway_git::paths::{self, FilterSet, FilterSpec, PatternSpec};

pub use cli::{Cli, ListFormat};
pub use report::Report;

/// The name of the filter `[rebuild_all]` becomes.
const REBUILD_ALL: &str = paths::project::REBUILD_ALL;

/// Runs `changed-paths`.
pub fn run(cli: Cli, out: &slipway_core::output::Output) -> anyhow::Result<Report> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let config = load_config(cli.global.config.as_deref(), &cwd)?;
    let statuses = match &cli.status {
        Some(list) => Some(
            changes::parse_status_list(list)
                .map_err(|e| UsageError::new(format!("`--status {list}`: {e}")))?,
        ),
        None => None,
    };

    // Where paths are relative to: the repository root when there is one.
    let repo = if cli.files_from.is_some() {
        None
    } else {
        Some(slipway_git::Repo::discover(&cwd)?)
    };
    let repo_root = repo.as_ref().map(|r| r.workdir().to_owned());
    let filters = compile_filters(&cli, config.as_ref(), repo_root.as_deref().unwrap_or(&cwd))?;
    let options = DiffOptions {
        renames: cli.renames,
    };

    let (mut files, source) = match (&cli.files_from, &repo) {
        (Some(path), _) => {
            let (text, origin) = read_list(path)?;
            let files = changes::parse_name_status(&text, &origin)?;
            (files, report::Source::FilesFrom { origin })
        }
        (None, repo) => {
            let repo = repo
                .as_ref()
                .context("a repository is opened unless --files-from is given")?;
            let differ = Differ::open(repo.workdir())?;
            if cli.working_tree {
                (differ.working_tree(options)?, report::Source::WorkingTree)
            } else {
                let base_commit = match &cli.base_from_image {
                    Some(text) => Some((
                        image::base_revision(text, &cli.registry, out)?,
                        format!("from image `{text}`"),
                    )),
                    None => None,
                };
                let ctx = if cli.base.is_some() || base_commit.is_some() {
                    slipway_core::ci::CiContext::local()
                } else {
                    slipway_core::ci::CiContext::detect()?
                };
                let flags = range::RangeFlags {
                    base: cli.base.clone(),
                    head: cli.head.clone(),
                    merge_base: cli.merge_base,
                    base_commit,
                };
                let default_branch = config.as_ref().map(|c| c.project.default_branch.as_str());
                match range::choose(repo, &differ, &ctx, &flags, default_branch)? {
                    range::Range::Commits { base, head, why } => {
                        tracing::info!(base = %base.short(), head = %head.short(), "comparing with {why}");
                        let files = differ.between(&base, &head, options)?;
                        let source = report::Source::Commits {
                            base,
                            head,
                            why,
                            from_image: cli.base_from_image.clone(),
                        };
                        (files, source)
                    }
                    range::Range::AllAdded { head, why } => {
                        tracing::info!(head = %head.short(), "{why}: every file is added");
                        (
                            differ.all_added(&head)?,
                            report::Source::AllAdded { head, why },
                        )
                    }
                }
            }
        }
    };
    if let Some(statuses) = &statuses {
        files.retain(|f| statuses.contains(&f.status));
    }

    let matched = filters.match_files(&files);
    let names: Vec<String> = filters.names().map(str::to_owned).collect();
    let targets = targets(config.as_ref(), &names, &matched);
    let explain = cli.explain.then(|| {
        files
            .iter()
            .map(|file| report::Explained {
                file: file.clone(),
                verdicts: filters.explain(file),
            })
            .collect()
    });
    Ok(Report::new(report::Parts {
        source,
        files,
        names,
        matched,
        targets,
        explain,
        list_files: cli.list_files,
        exit_code: cli.exit_code,
    }))
}

/// slipway.toml: the one `--config` names (it must load), else the one
/// found from the current directory, if any.
fn load_config(explicit: Option<&Path>, cwd: &Path) -> anyhow::Result<Option<Config>> {
    match Config::locate(explicit, cwd) {
        Ok(config) => Ok(Some(config)),
        Err(error)
            if explicit.is_none() && matches!(error.kind(), ConfigErrorKind::NotFound { .. }) =>
        {
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

/// Reads a `--files-from` list: a file, or stdin for `-`.
fn read_list(path: &Path) -> anyhow::Result<(String, String)> {
    if path == Path::new("-") {
        let text = slipway_core::input::read_stdin_to_string()
            .map_err(|e| UsageError::new(format!("cannot read the file list from stdin: {e}")))?;
        Ok((text, "stdin".to_owned()))
    } else {
        let text = slipway_core::input::read_to_string(path)
            .map_err(|e| UsageError::new(e.to_string()))?;
        Ok((text, path.display().to_string()))
    }
}

/// The `--filters` YAML and the name errors give it: stdin for `-`, the
/// value itself when it holds a `:` or a newline (paths-filter's rule for its
/// `filters` input), else the file it names.
fn read_filters(value: &str, files_from: Option<&Path>) -> anyhow::Result<(String, String)> {
    if value == "-" {
        if files_from == Some(Path::new("-")) {
            return Err(UsageError::new(
                "`--filters -` and `--files-from -` cannot both read stdin; give one of them a file",
            ));
        }
        let text = slipway_core::input::read_stdin_to_string()
            .map_err(|e| UsageError::new(format!("cannot read the filters from stdin: {e}")))?;
        Ok((text, "stdin".to_owned()))
    } else if value.contains([':', '\n']) {
        Ok((value.to_owned(), "--filters".to_owned()))
    } else {
        let text = slipway_core::input::read_to_string(Path::new(value))
            .map_err(|e| UsageError::new(e.to_string()))?;
        Ok((text, value.to_owned()))
    }
}

/// All filters: slipway.toml's images and `[rebuild_all]`, then
/// `--filters`, then `--filter`; a later filter replaces an earlier one of
/// the same name (flags win).
fn compile_filters(
    cli: &Cli,
    config: Option<&Config>,
    repo_root: &Path,
) -> anyhow::Result<FilterSet> {
    let mut specs: Vec<FilterSpec> = Vec::new();
    let add = |spec: FilterSpec, specs: &mut Vec<FilterSpec>| match specs
        .iter_mut()
        .find(|s| s.name == spec.name)
    {
        Some(existing) => *existing = spec,
        None => specs.push(spec),
    };
    if let Some(config) = config {
        // A `.dockerignore` that is wrong is bad input, an unreadable file
        // is not: the error's type says which (`ExitStatus`).
        let specs_of_config = paths::project::config_filters(config, repo_root)?;
        for spec in specs_of_config {
            add(spec, &mut specs);
        }
    }
    if let Some(value) = &cli.filters {
        let (text, source) = read_filters(value, cli.files_from.as_deref())?;
        let parsed = paths::yaml::parse(&text, &source, cli.predicate_quantifier)?;
        for spec in parsed {
            add(spec, &mut specs);
        }
    }
    let mut inline: Vec<(String, Vec<PatternSpec>)> = Vec::new();
    for value in &cli.inline_filters {
        let Some((name, glob)) = value
            .split_once('=')
            .filter(|(n, g)| !n.is_empty() && !g.is_empty())
        else {
            return Err(UsageError::new(format!(
                "`--filter {value}` is not `NAME=GLOB`, e.g. `--filter 'app=app/**'`"
            )));
        };
        let pattern = PatternSpec::new(glob, "--filter");
        match inline.iter_mut().find(|(n, _)| n == name) {
            Some((_, patterns)) => patterns.push(pattern),
            None => inline.push((name.to_owned(), vec![pattern])),
        }
    }
    for (name, patterns) in inline {
        add(paths::exclude_filter(&name, patterns), &mut specs);
    }
    // With `github` and `shell`, each filter becomes step outputs (`NAME`,
    // `NAME_count`, `NAME_files`) and shell variables: a name that could end a
    // `$GITHUB_OUTPUT` line early or inject one, or two filters whose
    // outputs would be one (`a-b` and `a_b` in a shell, `a_count` and `a`'s
    // count), are refused before any work. `json` and `plain` write no
    // outputs, so any name is fine there.
    let names: Vec<String> = specs.iter().map(|spec| spec.name.clone()).collect();
    let outputs = report::output_names(&names, cli.list_files);
    slipway_core::output::check_output_names(outputs.iter().map(String::as_str), cli.global.format)
        .map_err(|why| {
            UsageError::new(format!(
                "invalid filter name for `--format {}`: {why}",
                cli.global.format.name()
            ))
        })?;
    Ok(FilterSet::compile(specs)?)
}

/// The images to build: each matched filter naming an image, every image
/// when `[rebuild_all]` matched, then every image depending on one of them.
/// Without slipway.toml, the matched filters' names.
fn targets(config: Option<&Config>, names: &[String], matched: &[Vec<usize>]) -> Vec<String> {
    let changed = names
        .iter()
        .zip(matched)
        .filter(|(_, files)| !files.is_empty())
        .map(|(name, _)| name.as_str());
    match config {
        None => changed
            .filter(|n| *n != REBUILD_ALL)
            .map(str::to_owned)
            .collect(),
        Some(config) => {
            let changed: Vec<&str> = changed.collect();
            let selected: BTreeSet<String> =
                if changed.contains(&REBUILD_ALL) && !config.images.contains_key(REBUILD_ALL) {
                    config.images.keys().cloned().collect()
                } else {
                    config.dependents_closure(changed)
                };
            // `default = false`: built only when named, never selected by a change.
            let defaults = config.default_images();
            let selected: BTreeSet<String> = selected.intersection(&defaults).cloned().collect();
            // Build order, so a matrix or a loop can take them as listed.
            let selected: Vec<&str> = selected.iter().map(String::as_str).collect();
            config
                .build_order(&selected)
                .unwrap_or_else(|_| selected.iter().map(|s| (*s).to_owned()).collect())
        }
    }
}

/// The files of `files` at `indices`.
pub(crate) fn pick<'a>(files: &'a [ChangedFile], indices: &[usize]) -> Vec<&'a ChangedFile> {
    indices.iter().map(|i| &files[*i]).collect()
}
