//! Which files changed: between two commits, in the working tree (staged,
//! unstaged and untracked, for hooks), or as a list in `git diff
//! --name-status` form that another tool or an API produced.
//!
//! The diffs go through git2 without reading file contents, unless rename
//! detection is asked for (it compares blobs, which costs time on large
//! diffs). This module never fetches: a commit that a shallow clone lacks is
//! an error that says how to fetch it, never an empty answer.

use std::fmt;
use std::path::{Path, PathBuf};

pub use slipway_contract::changed_paths::{ChangeStatus, ChangedFile, UnknownStatus};

use crate::Sha;

/// Parses `added|modified` (as `--status` and paths-filter keys write
/// them) into the statuses it names, in order, without repeats.
pub fn parse_status_list(list: &str) -> Result<Vec<ChangeStatus>, UnknownStatus> {
    let mut statuses = Vec::new();
    for name in list
        .split(['|', ','])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let status: ChangeStatus = name.parse()?;
        if !statuses.contains(&status) {
            statuses.push(status);
        }
    }
    Ok(statuses)
}

/// How the diff is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffOptions {
    /// Detect renames and copies (compares blob contents: slower on large
    /// diffs). Without it a move is a deletion and an addition, as
    /// `git diff --no-renames` and paths-filter report it.
    pub renames: bool,
}

/// Why the changed files could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    /// The repository could not be opened.
    #[error("cannot open the git repository at `{}`", .path.display())]
    Open {
        /// The path that was opened.
        path: PathBuf,
        /// What git2 reported.
        #[source]
        source: git2::Error,
    },
    /// A shallow clone lacks a commit the diff needs.
    #[error(
        "{role} `{}` is not in this shallow clone; fetch more history (actions/checkout `fetch-depth: 0`, or `git fetch --deepen=<n>`)",
        .sha.short()
    )]
    NotInShallowClone {
        /// `base` or `head`.
        role: &'static str,
        /// The missing commit.
        sha: Sha,
    },
    /// A full clone lacks a commit the diff needs (a force-pushed-away
    /// commit, or one from another repository).
    #[error(
        "{role} `{}` is not in repository `{}`; fetch it first (`git fetch origin {}`)",
        .sha.short(),
        .repo.display(),
        .sha
    )]
    MissingCommit {
        /// `base` or `head`.
        role: &'static str,
        /// The missing commit.
        sha: Sha,
        /// The repository's work tree.
        repo: PathBuf,
    },
    /// git2 failed while diffing.
    #[error("cannot {operation} in repository `{}`", .repo.display())]
    Git {
        /// The repository's work tree.
        repo: PathBuf,
        /// What was being done.
        operation: &'static str,
        /// What git2 reported.
        #[source]
        source: git2::Error,
    },
    /// A line of a `--name-status` list is not understood.
    #[error("{origin}:{line}: cannot read `{text}`: {reason}")]
    NameStatus {
        /// Where the list came from (a file name, or `stdin`).
        origin: String,
        /// The 1-based line number.
        line: usize,
        /// The line as given.
        text: String,
        /// What is wrong and what would be valid.
        reason: String,
    },
}

impl slipway_core::cli::ExitStatus for ChangesError {
    fn exit_code(&self) -> Option<u8> {
        match self {
            // `--files-from` text that is not `git diff --name-status`.
            Self::NameStatus { .. } => Some(slipway_core::cli::exit::USAGE),
            _ => Some(slipway_core::cli::exit::FAILURE),
        }
    }
}

/// An open repository for diffing.
pub struct Differ {
    repo: git2::Repository,
    path: PathBuf,
}

impl fmt::Debug for Differ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Differ").field("path", &self.path).finish()
    }
}

impl Differ {
    /// Opens the repository at `path` (its work tree or git dir).
    ///
    /// Turns off libgit2's re-hashing of every object it reads, for the
    /// whole process: `git` itself does not re-hash on read (only `git fsck`
    /// does), and hashing each tree of a large diff costs more than the diff.
    pub fn open(path: &Path) -> Result<Differ, ChangesError> {
        git2::opts::strict_hash_verification(false);
        let repo = git2::Repository::open(path).map_err(|source| ChangesError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Differ {
            repo,
            path: path.to_owned(),
        })
    }

    /// A differ over a repository already opened (by [`crate::Repo`]).
    pub fn from_repo(repo: crate::Repo) -> Differ {
        git2::opts::strict_hash_verification(false);
        let path = repo.workdir().to_owned();
        Differ {
            repo: repo.into_git2(),
            path,
        }
    }

    /// The repository it reads.
    pub fn repository(&self) -> &git2::Repository {
        &self.repo
    }

    fn git_error(&self, operation: &'static str) -> impl FnOnce(git2::Error) -> ChangesError {
        let repo = self.path.clone();
        move |source| ChangesError::Git {
            repo,
            operation,
            source,
        }
    }

    /// The tree of commit `sha`, or an error naming what is missing and how
    /// to fetch it.
    fn tree(&self, sha: &Sha, role: &'static str) -> Result<git2::Tree<'_>, ChangesError> {
        let oid = git2::Oid::from_str(sha.as_str()).map_err(self.git_error("read a commit id"))?;
        let commit = match self.repo.find_commit(oid) {
            Ok(commit) => commit,
            Err(error) if error.code() == git2::ErrorCode::NotFound => {
                return Err(if self.repo.is_shallow() {
                    ChangesError::NotInShallowClone {
                        role,
                        sha: sha.clone(),
                    }
                } else {
                    ChangesError::MissingCommit {
                        role,
                        sha: sha.clone(),
                        repo: self.path.clone(),
                    }
                });
            }
            Err(error) => return Err(self.git_error("read a commit")(error)),
        };
        commit
            .tree()
            .map_err(self.git_error("read a commit's tree"))
    }

    /// Checks that commit `sha` is in the repository; if not, the error says
    /// whether the clone is shallow and how to fetch it. `role` (`base`,
    /// `head`) names the commit in the message.
    pub fn require_commit(&self, sha: &Sha, role: &'static str) -> Result<(), ChangesError> {
        self.tree(sha, role).map(|_| ())
    }

    /// The files that differ between commits `base` and `head`, sorted by
    /// path, as `git diff --name-status base head`.
    pub fn between(
        &self,
        base: &Sha,
        head: &Sha,
        options: DiffOptions,
    ) -> Result<Vec<ChangedFile>, ChangesError> {
        let old = self.tree(base, "base")?;
        let new = self.tree(head, "head")?;
        if !options.renames {
            // Without rename detection, a walk of the two trees that skips
            // identical subtrees and never builds libgit2's delta list is
            // the fastest way to the same answer (`git diff --no-renames`).
            return self
                .walk_trees(old.id(), new.id())
                .map_err(self.git_error("diff two commits"));
        }
        let mut git_options = git2::DiffOptions::new();
        git_options.include_typechange(true).skip_binary_check(true);
        let mut diff = self
            .repo
            .diff_tree_to_tree(Some(&old), Some(&new), Some(&mut git_options))
            .map_err(self.git_error("diff two commits"))?;
        self.collect(&mut diff, options)
    }

    /// The files that differ between trees `old` and `new`, in git's path
    /// order. The trees are read raw from the object database and parsed
    /// here (no libgit2 tree objects), and once the subtrees that differ are
    /// known they are diffed on a few threads, each with its own repository
    /// handle; the pieces are put back in order.
    fn walk_trees(&self, old: git2::Oid, new: git2::Oid) -> Result<Vec<ChangedFile>, git2::Error> {
        let odb = self.repo.odb()?;
        // Expand the differing subtrees level by level until there are
        // enough of them to share out (or none are left).
        let mut segments = vec![Segment::Subtree {
            prefix: Vec::new(),
            old: Some(old),
            new: Some(new),
        }];
        loop {
            let subtrees = segments
                .iter()
                .filter(|s| matches!(s, Segment::Subtree { .. }))
                .count();
            if subtrees == 0 || subtrees >= PARALLEL_SUBTREES {
                break;
            }
            let mut next = Vec::with_capacity(segments.len());
            for segment in segments {
                match segment {
                    Segment::File(file) => next.push(Segment::File(file)),
                    Segment::Subtree { prefix, old, new } => {
                        diff_level(&odb, &prefix, old, new, &mut |event| {
                            next.push(event);
                            Ok(())
                        })?;
                    }
                }
            }
            segments = next;
        }

        let tasks: Vec<(&[u8], Option<git2::Oid>, Option<git2::Oid>)> = segments
            .iter()
            .filter_map(|segment| match segment {
                Segment::Subtree { prefix, old, new } => Some((prefix.as_slice(), *old, *new)),
                Segment::File(_) => None,
            })
            .collect();
        let results = self.run_tasks(&odb, &tasks)?;
        let mut results = results.into_iter();
        let mut files = Vec::new();
        for segment in segments {
            match segment {
                Segment::File(file) => files.push(file),
                Segment::Subtree { .. } => files.extend(results.next().unwrap_or_default()),
            }
        }
        Ok(files)
    }

    /// Diffs each `(prefix, old, new)` subtree pair; the answers in task
    /// order. Work is shared with other threads when there is enough of it.
    fn run_tasks(
        &self,
        odb: &git2::Odb<'_>,
        tasks: &[(&[u8], Option<git2::Oid>, Option<git2::Oid>)],
    ) -> Result<Vec<Vec<ChangedFile>>, git2::Error> {
        let next_task = std::sync::atomic::AtomicUsize::new(0);
        // Takes tasks until none is left; the answers by task index.
        let work = |odb: &git2::Odb<'_>| -> Result<Vec<(usize, Vec<ChangedFile>)>, git2::Error> {
            let mut done = Vec::new();
            loop {
                let index = next_task.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((prefix, old, new)) = tasks.get(index) else {
                    return Ok(done);
                };
                let mut files = Vec::new();
                walk(odb, prefix, *old, *new, &mut files)?;
                done.push((index, files));
            }
        };
        let helpers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
            .saturating_sub(1)
            .min(tasks.len().saturating_sub(1));
        let git_dir = self.repo.path();
        let pieces = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..helpers)
                .filter_map(|_| {
                    std::thread::Builder::new()
                        .spawn_scoped(scope, || {
                            let repo = git2::Repository::open(git_dir)?;
                            let odb = repo.odb()?;
                            work(&odb)
                        })
                        // Without a thread, this one does all the work.
                        .ok()
                })
                .collect();
            let mut pieces = vec![work(odb)];
            for handle in handles {
                pieces.push(
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(git2::Error::from_str("a diff thread panicked"))),
                );
            }
            pieces
        });
        let mut results = vec![Vec::new(); tasks.len()];
        for piece in pieces {
            for (index, files) in piece? {
                results[index] = files;
            }
        }
        Ok(results)
    }

    /// Every file of commit `head`, as added: the answer for a first push,
    /// where there is nothing to compare with.
    pub fn all_added(&self, head: &Sha) -> Result<Vec<ChangedFile>, ChangesError> {
        let tree = self.tree(head, "head")?;
        let mut files = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() != Some(git2::ObjectType::Tree) {
                let name = String::from_utf8_lossy(entry.name_bytes());
                files.push(ChangedFile::new(
                    format!("{dir}{name}"),
                    ChangeStatus::Added,
                ));
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(self.git_error("list the files of a commit"))?;
        files.sort_by(|a, b| a.bytes().cmp(b.bytes()));
        Ok(files)
    }

    /// The working tree's changes against HEAD: staged, unstaged and
    /// untracked files (ignored ones left out), as a pre-commit or pre-push
    /// hook sees them. Untracked files are added; conflicts are unmerged.
    pub fn working_tree(&self, options: DiffOptions) -> Result<Vec<ChangedFile>, ChangesError> {
        let head = match self.repo.head().and_then(|head| head.peel_to_tree()) {
            Ok(tree) => Some(tree),
            // A repository without commits: everything is new.
            Err(error) if error.code() == git2::ErrorCode::UnbornBranch => None,
            Err(error) => return Err(self.git_error("read HEAD")(error)),
        };
        let mut git_options = git2::DiffOptions::new();
        git_options
            .include_typechange(true)
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .skip_binary_check(true);
        let mut diff = self
            .repo
            .diff_tree_to_workdir_with_index(head.as_ref(), Some(&mut git_options))
            .map_err(self.git_error("diff the working tree"))?;
        self.collect(&mut diff, options)
    }

    fn collect(
        &self,
        diff: &mut git2::Diff<'_>,
        options: DiffOptions,
    ) -> Result<Vec<ChangedFile>, ChangesError> {
        if options.renames {
            let mut find = git2::DiffFindOptions::new();
            find.renames(true).copies(true).for_untracked(true);
            diff.find_similar(Some(&mut find))
                .map_err(self.git_error("detect renames"))?;
        }
        let mut files = Vec::with_capacity(diff.deltas().len());
        for delta in diff.deltas() {
            let path_of = |file: git2::DiffFile<'_>| file.path_bytes().map(<[u8]>::to_vec);
            let lossy = |path: Option<Vec<u8>>| {
                path.map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            };
            let new_path = path_of(delta.new_file());
            let old_path = path_of(delta.old_file());
            let (status, path, from) = match delta.status() {
                git2::Delta::Added | git2::Delta::Untracked => {
                    (ChangeStatus::Added, new_path, None)
                }
                git2::Delta::Deleted => (ChangeStatus::Deleted, old_path, None),
                git2::Delta::Modified | git2::Delta::Typechange => {
                    (ChangeStatus::Modified, new_path, None)
                }
                git2::Delta::Renamed => (ChangeStatus::Renamed, new_path, lossy(old_path)),
                git2::Delta::Copied => (ChangeStatus::Copied, new_path, lossy(old_path)),
                git2::Delta::Conflicted => (ChangeStatus::Unmerged, new_path.or(old_path), None),
                git2::Delta::Unmodified | git2::Delta::Ignored | git2::Delta::Unreadable => {
                    continue;
                }
            };
            if let Some(path) = path {
                files.push(ChangedFile::from_bytes(path, status, from));
            }
        }
        // A rename pairs two paths; keep the list sorted by the new one, as git prints it.
        if options.renames {
            files.sort_by(|a, b| a.bytes().cmp(b.bytes()));
        }
        Ok(files)
    }
}

/// How many differing subtrees are enough to share out among threads.
const PARALLEL_SUBTREES: usize = 32;

/// The most threads a diff uses.
const MAX_THREADS: usize = 4;

/// A piece of a diff: a changed file, or a pair of subtrees still to diff
/// (either side absent: everything in the other is added or deleted).
enum Segment {
    File(ChangedFile),
    Subtree {
        /// The subtree's path, with a trailing `/`.
        prefix: Vec<u8>,
        old: Option<git2::Oid>,
        new: Option<git2::Oid>,
    },
}

/// Appends the files that differ between trees `old` and `new` (either may
/// be absent), in git's path order, each path prefixed by `prefix`.
fn walk(
    odb: &git2::Odb<'_>,
    prefix: &[u8],
    old: Option<git2::Oid>,
    new: Option<git2::Oid>,
    files: &mut Vec<ChangedFile>,
) -> Result<(), git2::Error> {
    diff_level(odb, prefix, old, new, &mut |segment| {
        match segment {
            Segment::File(file) => files.push(file),
            Segment::Subtree { prefix, old, new } => walk(odb, &prefix, old, new, files)?,
        }
        Ok(())
    })
}

/// Compares one level of trees `old` and `new`: calls `each` with every
/// file that differs and every pair of subtrees that differ, in git's path
/// order.
fn diff_level(
    odb: &git2::Odb<'_>,
    prefix: &[u8],
    old: Option<git2::Oid>,
    new: Option<git2::Oid>,
    each: &mut dyn FnMut(Segment) -> Result<(), git2::Error>,
) -> Result<(), git2::Error> {
    // The newer tree first: when it is stored as a delta against the older
    // one (as a fetch into an existing clone and `git fast-import` store
    // it), libgit2 keeps the older one in its delta-base cache and reading
    // it next costs no second inflate. Reading in the other order would
    // inflate the older tree twice.
    let new_object = new.map(|id| read_tree(odb, id)).transpose()?;
    let old_object = old.map(|id| read_tree(odb, id)).transpose()?;
    let old_entries = match &old_object {
        Some(object) => parse_tree(object.data(), object.id())?,
        None => Vec::new(),
    };
    let new_entries = match &new_object {
        Some(object) => parse_tree(object.data(), object.id())?,
        None => Vec::new(),
    };
    let path = |name: &[u8], is_tree: bool| {
        let mut path = Vec::with_capacity(prefix.len() + name.len() + 1);
        path.extend_from_slice(prefix);
        path.extend_from_slice(name);
        if is_tree {
            path.push(b'/');
        }
        path
    };
    // An entry only one side has: a file, or every file under a tree.
    let one_side = |entry: &Entry<'_>, status: ChangeStatus| -> Result<Segment, git2::Error> {
        Ok(if entry.is_tree() {
            let id = Some(entry.oid()?);
            let (old, new) = match status {
                ChangeStatus::Deleted => (id, None),
                _ => (None, id),
            };
            Segment::Subtree {
                prefix: path(entry.name, true),
                old,
                new,
            }
        } else {
            Segment::File(ChangedFile::from_bytes(
                path(entry.name, false),
                status,
                None,
            ))
        })
    };
    let (mut i, mut j) = (0, 0);
    loop {
        let order = match (old_entries.get(i), new_entries.get(j)) {
            (Some(a), Some(b)) => git_order(a, b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => return Ok(()),
        };
        match order {
            std::cmp::Ordering::Less => {
                each(one_side(&old_entries[i], ChangeStatus::Deleted)?)?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                each(one_side(&new_entries[j], ChangeStatus::Added)?)?;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (&old_entries[i], &new_entries[j]);
                if x.id != y.id || x.mode != y.mode {
                    // Equal names in git order are both trees or both not.
                    if x.is_tree() {
                        each(Segment::Subtree {
                            prefix: path(x.name, true),
                            old: Some(x.oid()?),
                            new: Some(y.oid()?),
                        })?;
                    } else {
                        each(Segment::File(ChangedFile::from_bytes(
                            path(x.name, false),
                            ChangeStatus::Modified,
                            None,
                        )))?;
                    }
                }
                i += 1;
                j += 1;
            }
        }
    }
}

/// The raw tree object `id`.
fn read_tree<'a>(
    odb: &'a git2::Odb<'_>,
    id: git2::Oid,
) -> Result<git2::OdbObject<'a>, git2::Error> {
    let object = odb.read(id)?;
    if object.kind() != git2::ObjectType::Tree {
        return Err(git2::Error::from_str(&format!(
            "object `{id}` is a {}, where a tree was expected",
            object.kind()
        )));
    }
    Ok(object)
}

/// One entry of a raw tree object.
struct Entry<'a> {
    name: &'a [u8],
    /// The object id's bytes.
    id: &'a [u8],
    /// The mode as git compares it (`100664` is `100644`, as git reads it).
    mode: u32,
}

impl Entry<'_> {
    fn is_tree(&self) -> bool {
        self.mode == MODE_TREE
    }

    fn oid(&self) -> Result<git2::Oid, git2::Error> {
        git2::Oid::from_bytes(self.id)
    }
}

const MODE_TREE: u32 = 0o040000;

/// The length of an object id in a tree (SHA-1).
const OID_LEN: usize = 20;

/// Parses a tree object: entries `<octal mode> <name>\0<id bytes>`, in
/// git's order.
fn parse_tree(data: &[u8], id: git2::Oid) -> Result<Vec<Entry<'_>>, git2::Error> {
    let malformed = || git2::Error::from_str(&format!("tree object `{id}` is malformed"));
    let mut entries = Vec::with_capacity(data.len() / 32 + 1);
    let mut pos = 0;
    while pos < data.len() {
        let mut mode = 0u32;
        let mut end = pos;
        while let Some(digit @ b'0'..=b'7') = data.get(end) {
            mode = (mode << 3) | u32::from(digit - b'0');
            end += 1;
        }
        if end == pos || end - pos > 7 || data.get(end) != Some(&b' ') {
            return Err(malformed());
        }
        let name_start = end + 1;
        let name_len = data[name_start..]
            .iter()
            .position(|b| *b == 0)
            .filter(|len| *len > 0)
            .ok_or_else(malformed)?;
        let id_start = name_start + name_len + 1;
        let id = data
            .get(id_start..id_start + OID_LEN)
            .ok_or_else(malformed)?;
        entries.push(Entry {
            name: &data[name_start..name_start + name_len],
            id,
            mode: canonical_mode(mode),
        });
        pos = id_start + OID_LEN;
    }
    Ok(entries)
}

/// git's `canon_mode`: trees, symlinks and submodules as they are, a
/// regular file `100755` if any execute bit is set, else `100644`.
fn canonical_mode(mode: u32) -> u32 {
    match mode & 0o170000 {
        MODE_TREE => MODE_TREE,
        0o120000 => 0o120000,
        0o160000 => 0o160000,
        _ if mode & 0o100 != 0 => 0o100755,
        _ => 0o100644,
    }
}

/// Git's tree order: names compared bytewise, a tree's name as if it ended
/// in `/` — also when both are trees: `a.b/` sorts before `a/`.
fn git_order(a: &Entry<'_>, b: &Entry<'_>) -> std::cmp::Ordering {
    let len = a.name.len().min(b.name.len());
    a.name[..len].cmp(&b.name[..len]).then_with(|| {
        let tail = |e: &Entry<'_>| e.name.get(len).copied().or(e.is_tree().then_some(b'/'));
        tail(a).cmp(&tail(b))
    })
}

/// Parses a file list in `git diff --name-status` form: a status, a tab and
/// a path per line (`R100`/`C75` lines carry the old path, a tab and the new
/// one). A line without a tab is a path that was modified. Blank lines are
/// skipped. `origin` names the list in errors (a file name, or `stdin`).
pub fn parse_name_status(text: &str, origin: &str) -> Result<Vec<ChangedFile>, ChangesError> {
    let mut files = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let error = |reason: String| ChangesError::NameStatus {
            origin: origin.to_owned(),
            line: index + 1,
            text: line.to_owned(),
            reason,
        };
        let fields: Vec<&str> = line.split('\t').collect();
        let file = match fields.as_slice() {
            [path] => ChangedFile::new(*path, ChangeStatus::Modified),
            [token, path] => {
                let status = ChangeStatus::from_token(token).ok_or_else(|| {
                    error(format!(
                        "unknown status `{token}`: expected a letter of `ACDMRTU` or a name (`added`, `modified`, `deleted`, `renamed`, `copied`, `unmerged`, `removed`, `changed`)"
                    ))
                })?;
                ChangedFile::new(*path, status)
            }
            [token, from, path] => {
                let status = ChangeStatus::from_token(token)
                    .filter(|s| matches!(s, ChangeStatus::Renamed | ChangeStatus::Copied))
                    .ok_or_else(|| {
                        error(format!(
                            "status `{token}` takes one path; only renames (`R`) and copies (`C`) take two"
                        ))
                    })?;
                ChangedFile {
                    path: (*path).to_owned(),
                    status,
                    from: Some((*from).to_owned()),
                    path_bytes: None,
                }
            }
            _ => {
                return Err(error(
                    "expected `STATUS<tab>PATH`, `R100<tab>OLD<tab>NEW` or a plain path".to_owned(),
                ));
            }
        };
        if file.path.is_empty() {
            return Err(error("the path is empty".to_owned()));
        }
        files.push(file);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expected: &[(&str, ChangeStatus, Option<&str>)]) {
        let files = parse_name_status(text, "list").expect("valid list");
        let got: Vec<(&str, ChangeStatus, Option<&str>)> = files
            .iter()
            .map(|f| (f.path.as_str(), f.status, f.from.as_deref()))
            .collect();
        assert_eq!(got, expected, "list {text:?}");
    }

    #[track_caller]
    fn check_error(text: &str, expected: &str) {
        let error = parse_name_status(text, "list").expect_err("invalid list");
        assert_eq!(error.to_string(), expected);
    }

    use ChangeStatus::*;

    #[test]
    fn name_status_lines() {
        check("M\ta.rs\n", &[("a.rs", Modified, None)]);
        check("A\tnew file.txt", &[("new file.txt", Added, None)]);
        check("D\tgone\r\n", &[("gone", Deleted, None)]);
        check("T\tlink", &[("link", Modified, None)]);
        check("U\tconflict", &[("conflict", Unmerged, None)]);
        check("R100\told\tnew", &[("new", Renamed, Some("old"))]);
        check("C75\tsrc\tcopy", &[("copy", Copied, Some("src"))]);
        check(
            "plain/path.rs\n\n  \nother",
            &[("plain/path.rs", Modified, None), ("other", Modified, None)],
        );
        check(
            "removed\tx\nadded\ty\nchanged\tz",
            &[
                ("x", Deleted, None),
                ("y", Added, None),
                ("z", Modified, None),
            ],
        );
        check("", &[]);
    }

    #[test]
    fn name_status_errors_name_the_line() {
        check_error(
            "M\ta\nX\tb",
            "list:2: cannot read `X\tb`: unknown status `X`: expected a letter of `ACDMRTU` or a name (`added`, `modified`, `deleted`, `renamed`, `copied`, `unmerged`, `removed`, `changed`)",
        );
        check_error(
            "M\ta\tb",
            "list:1: cannot read `M\ta\tb`: status `M` takes one path; only renames (`R`) and copies (`C`) take two",
        );
        check_error("M\t", "list:1: cannot read `M\t`: the path is empty");
    }

    #[track_caller]
    fn check_statuses(list: &str, expected: Result<Vec<ChangeStatus>, &str>) {
        let got = parse_status_list(list).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "list `{list}`");
    }

    /// Parses a tree of `(mode, name)` entries and compares git's order of
    /// its first two entries with `expected`.
    #[track_caller]
    fn check_order(entries: &[(&str, &str)], expected: std::cmp::Ordering) {
        let mut data = Vec::new();
        for (mode, name) in entries {
            data.extend_from_slice(format!("{mode} {name}\0").as_bytes());
            data.extend_from_slice(&[7; OID_LEN]);
        }
        let parsed = parse_tree(&data, git2::Oid::ZERO_SHA1).expect("valid tree");
        assert_eq!(git_order(&parsed[0], &parsed[1]), expected, "{entries:?}");
    }

    #[test]
    fn tree_order_and_modes() {
        use std::cmp::Ordering::*;
        check_order(&[("40000", "a"), ("100644", "a.b")], Greater);
        check_order(&[("100644", "a"), ("100644", "a.b")], Less);
        check_order(&[("40000", "a"), ("100644", "a")], Greater);
        check_order(&[("40000", "ab"), ("100644", "a")], Greater);
        check_order(&[("40000", "a"), ("40000", "a.b")], Greater);
        check_order(&[("40000", "a.b"), ("40000", "a")], Less);
        check_order(&[("40000", "a"), ("40000", "a")], Equal);
        check_order(&[("100644", "a"), ("100644", "a")], Equal);
        check_order(&[("100664", "a"), ("100644", "a")], Equal);
        let parsed = parse_tree(b"100664 a\0", git2::Oid::ZERO_SHA1);
        assert!(parsed.is_err(), "a truncated id is refused");
        assert_eq!(canonical_mode(0o100664), 0o100644);
        assert_eq!(canonical_mode(0o100775), 0o100755);
        assert_eq!(canonical_mode(0o120000), 0o120000);
    }

    #[test]
    fn status_lists() {
        check_statuses("added|modified", Ok(vec![Added, Modified]));
        check_statuses(" Added | added ,deleted", Ok(vec![Added, Deleted]));
        check_statuses(
            "added|changed",
            Err(
                "unknown change status `changed`: expected one of `added`, `copied`, `deleted`, `modified`, `renamed`, `unmerged`",
            ),
        );
    }
}
