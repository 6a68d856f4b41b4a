//! What a bundle may carry to a host: the env's bundle entries resolved
//! (symlinks followed, canonicalised) to regular files inside the project,
//! directories expanded, hashed; and the one way a bundle file is opened,
//! which checks it is still the file that was checked. Nothing outside the
//! project (`/proc/self/environ`, `../`, a device, a fifo) ever reaches a
//! host.

use std::path::PathBuf;

use sha2::Digest as _;
use slipway_core::cli::UsageError;
use slipway_core::config::Env;

use crate::plan::{BundleFile, DEPLOY_ENV, hex};

/// The bundle files of `env` (hashed when `with_hashes`); each keeps its
/// file name in the remote path.
///
/// Every entry must resolve (symlinks followed, the path canonicalised) to
/// a regular file inside the project root, or to a directory whose files
/// all do (each uploaded under its own file name); anything else (a path
/// outside the root, `/proc`, a fifo, a device, a dangling symlink) is
/// refused before anything is sent: a bundle must never carry a file of
/// the machine that deploys, such as `/proc/self/environ`, to the host.
pub(crate) fn bundle_files(
    root: &std::path::Path,
    env: &Env,
    with_hashes: bool,
) -> anyhow::Result<Vec<BundleFile>> {
    let project = std::fs::canonicalize(root).map_err(|error| {
        UsageError::new(format!(
            "cannot resolve the project root `{}`: {error}",
            root.display()
        ))
    })?;
    let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
    for entry in &env.bundle {
        let refuse = |why: String| {
            UsageError::new(format!(
                "bundle entry `{}` of env `{}` {why}; bundle entries must be regular files (or directories of them) inside the project `{}`",
                entry.display(),
                env.name,
                project.display()
            ))
        };
        let resolved = resolve_inside(&project, &root.join(entry)).map_err(refuse)?;
        let metadata = std::fs::metadata(&resolved).map_err(|error| {
            refuse(format!(
                "cannot be read (`{}`: {error})",
                resolved.display()
            ))
        })?;
        if metadata.is_dir() {
            expand_dir(&project, entry, &resolved, &mut found).map_err(refuse)?;
        } else {
            check_regular(&resolved, &metadata).map_err(refuse)?;
            found.push((entry.clone(), resolved));
        }
    }
    let mut files: Vec<BundleFile> = Vec::new();
    for (path, local) in found {
        // The name as written in the bundle, not the symlink's target's.
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == DEPLOY_ENV || name.starts_with('.') || name.is_empty() {
            return Err(UsageError::new(format!(
                "bundle file `{}` of env `{}` cannot be uploaded as `{name}`: `deploy.env` is written by ssh-deploy and hidden names are reserved",
                path.display(),
                env.name
            )));
        }
        if let Some(other) = files.iter().find(|f| f.name == name) {
            return Err(UsageError::new(format!(
                "bundle files `{}` and `{}` of env `{}` would both be uploaded as `{name}`; file names in a bundle must differ",
                other.local.as_deref().unwrap_or(&path).display(),
                path.display(),
                env.name
            )));
        }
        let metadata = fs_err::metadata(&local)?;
        let sha256 = if with_hashes {
            Some(hash_file(&local)?)
        } else {
            None
        };
        files.push(BundleFile {
            name,
            local: Some(local),
            contents: None,
            mode: std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o7777,
            size: metadata.len(),
            sha256,
        });
    }
    Ok(files)
}

/// `path` with every symlink followed, if that lands inside `project`;
/// else why not, naming what it points at.
fn resolve_inside(project: &std::path::Path, path: &std::path::Path) -> Result<PathBuf, String> {
    match std::fs::canonicalize(path) {
        Ok(resolved) if resolved.starts_with(project) => Ok(resolved),
        Ok(resolved) => Err(format!(
            "points at `{}`, outside the project",
            resolved.display()
        )),
        Err(error) => Err(match std::fs::read_link(path) {
            Ok(target) => format!(
                "is a symlink to `{}`, which cannot be resolved ({error})",
                target.display()
            ),
            Err(_) => format!("cannot be resolved (`{}`: {error})", path.display()),
        }),
    }
}

/// Refuses what is not a regular file: a fifo would hang the upload, a
/// device would stream the deploying machine's bytes.
fn check_regular(resolved: &std::path::Path, metadata: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_fifo() {
        "a fifo"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(format!(
        "points at `{}`, which is {what}",
        resolved.display()
    ))
}

/// Adds every file under `dir` (sorted, recursively), each checked as a
/// bundle entry of its own.
fn expand_dir(
    project: &std::path::Path,
    entry: &std::path::Path,
    dir: &std::path::Path,
    found: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), String> {
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect())
        .map_err(|error| format!("cannot be listed (`{}`: {error})", dir.display()))?;
    children.sort();
    for child in children {
        let shown = entry.join(child.strip_prefix(dir).unwrap_or(&child));
        let inner = |why: String| format!("holds `{}`, which {why}", shown.display());
        let resolved = resolve_inside(project, &child).map_err(inner)?;
        let metadata = std::fs::metadata(&resolved)
            .map_err(|error| inner(format!("cannot be read ({error})")))?;
        if metadata.is_dir() {
            // A symlink back up the tree would loop; such a directory is refused.
            if dir.starts_with(&resolved) {
                return Err(inner(format!("points back at `{}`", resolved.display())));
            }
            expand_dir(project, &shown, &resolved, found)?;
        } else {
            check_regular(&resolved, &metadata).map_err(inner)?;
            found.push((shown, resolved));
        }
    }
    Ok(())
}

/// The hex SHA-256 of a local file.
pub(crate) fn hash_file(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let mut file = open_bundle_file(path)?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("cannot read bundle file `{}`", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

/// Opens a checked bundle file for reading, refusing it if it is no longer
/// a regular file (swapped since the plan was checked).
pub(crate) fn open_bundle_file(path: &std::path::Path) -> anyhow::Result<fs_err::File> {
    use std::os::unix::fs::MetadataExt as _;
    let file = fs_err::File::open(path)?;
    let opened = file.metadata()?;
    // `path` was canonical when checked: it must still hold no symlink and
    // be the very file opened, so that a path swapped since (a directory
    // replaced by a link to /proc/self) is refused, not read.
    let is_same = std::fs::canonicalize(path).is_ok_and(|now| now == path)
        && std::fs::metadata(path)
            .is_ok_and(|now| now.dev() == opened.dev() && now.ino() == opened.ino());
    if !opened.is_file() || !is_same {
        anyhow::bail!(
            "bundle file `{}` changed since it was checked (no longer this regular file inside the project); refusing to send it",
            path.display()
        );
    }
    Ok(file)
}
