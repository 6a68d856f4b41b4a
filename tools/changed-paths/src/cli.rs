//! The command line of `changed-paths`; the doc comments are its `--help`.

use std::path::PathBuf;

use slipway_git::paths::Quantifier;

/// Tell which files changed between two refs and which named filters (and
/// so which images) they touch.
///
/// Without `--base` (or `--base-from-image`), the range comes from the CI
/// event: a pull request is compared with the merge base of its base
/// branch, a push with its `before` commit (a new branch with the default branch's merge base, a
/// first push lists every file as added), a tag push with the previous
/// version tag, anything else (and a run outside CI) with the default
/// branch's merge base, or the last commit on the default branch itself.
/// A Jenkins branch build starts at `$GIT_PREVIOUS_SUCCESSFUL_COMMIT` (else
/// `$GIT_PREVIOUS_COMMIT`); Buildkite and CircleCI give no push range, so
/// their branch builds are compared as "anything else", and the report says
/// so.
///
/// Filters come from slipway.toml (each image's `paths`, or the paths
/// derived from its Dockerfile's `COPY`/`ADD` sources less `.dockerignore`;
/// `[rebuild_all]` selects every image), from `--filters` (dorny/paths-filter
/// YAML, same answers) and from `--filter`. Images depending on a selected
/// image are selected too.
///
/// `--base-from-image REF` compares from the commit in a published image's
/// `org.opencontainers.image.revision` label instead (every platform of an
/// index must carry the same one; a `-dirty` build counts as its commit).
///
/// Exit codes: 0 success (whatever matched), 1 with `--exit-code` when no
/// filter matched, 2 bad input, 3 git or the registry failed (a shallow
/// clone missing the base says how to fetch it; an image without the
/// label, or not found, says so).
#[derive(Debug, clap::Parser)]
#[command(name = "changed-paths", version = slipway_build_info::VERSION, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: slipway_core::cli::GlobalArgs,

    /// Compare from this revision (sha, branch, tag, `HEAD~3`) [default: from the CI event]
    #[arg(long, value_name = "REV", conflicts_with_all = ["working_tree", "files_from"])]
    pub base: Option<String>,

    /// Compare from the commit a published image was built from: its
    /// `org.opencontainers.image.revision` label (what changed since what is out there)
    #[arg(
        long,
        value_name = "REF",
        conflicts_with_all = ["base", "working_tree", "files_from"]
    )]
    pub base_from_image: Option<String>,

    /// Compare to this revision [default: the CI event's head, else HEAD]
    #[arg(long, value_name = "REV", conflicts_with_all = ["working_tree", "files_from"])]
    pub head: Option<String>,

    /// Compare from the merge base of `--base` and `--head` (`git diff base...head`)
    #[arg(long, requires = "base")]
    pub merge_base: bool,

    /// List the working tree's changes against HEAD: staged, unstaged and untracked (for hooks)
    #[arg(long, conflicts_with = "files_from")]
    pub working_tree: bool,

    /// Read the changed files from FILE (`-` for stdin) in `git diff --name-status` form:
    /// status, tab, path; a plain path means modified
    #[arg(long, value_name = "FILE")]
    pub files_from: Option<PathBuf>,

    /// Detect renames and copies (slower on large diffs); without it a move is a deletion
    /// and an addition, as paths-filter reports it
    #[arg(long)]
    pub renames: bool,

    /// Count only files with these statuses, e.g. `added|modified`
    /// [values: added, copied, deleted, modified, renamed, unmerged]
    #[arg(long, value_name = "LIST")]
    pub status: Option<String>,

    /// Filters in dorny/paths-filter's YAML format (a filter named like an image targets
    /// it): a file, `-` for stdin, or, as paths-filter's `filters` input, the YAML itself
    /// when the value holds a `:` or a newline (`--filters 'src: src/**'`)
    #[arg(long, value_name = "FILE|-|YAML")]
    pub filters: Option<String>,

    /// An inline filter, `NAME=GLOB`; repeat to add patterns; `!GLOB` excludes
    #[arg(long = "filter", value_name = "NAME=GLOB")]
    pub inline_filters: Vec<String>,

    /// How `--filters` patterns combine: `some` (one suffices; `!` is just another
    /// alternative) or `every` (all must hold; `!` excludes)
    #[arg(long, value_enum, default_value_t = Quantifier::Some, value_name = "QUANTIFIER")]
    pub predicate_quantifier: Quantifier,

    /// How `<filter>_files` outputs list files (github and shell formats)
    #[arg(long, value_enum, default_value_t = ListFormat::Json, value_name = "FORMAT")]
    pub list_files: ListFormat,

    /// Say, per changed file, which pattern of which filter matched or why none did
    #[arg(long)]
    pub explain: bool,

    /// Exit with 1 when no filter matched (for `if changed-paths …; then`)
    #[arg(long)]
    pub exit_code: bool,

    #[command(flatten)]
    pub registry: slipway_registry::RegistryArgs,
}

/// How a filter's files are listed in its `_files` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// No `_files` output.
    None,
    /// Comma-separated; quoted (RFC 4180) when a name needs it.
    Csv,
    /// A JSON array of paths.
    Json,
    /// Space-separated, each single-quoted for a POSIX shell unless made only of safe characters; exact bytes (not paths-filter's quoting, see docs)
    Shell,
    /// Space-separated, unsafe characters backslash-escaped, a newline as '<newline>'
    Escape,
}
