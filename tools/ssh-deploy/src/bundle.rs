//! What a bundle may carry to a host: the env's bundle entries resolved
//! (symlinks followed, canonicalised) to regular files inside the project,
//! directories expanded, each file opened once and checked through its
//! handle, then hashed and sent from that same handle. Each file keeps its
//! path relative to the project root (less `strip_components` leading
//! directories) under the remote path. Nothing outside the project
//! (`/proc/self/environ`, `../`, a device, a fifo, a hard link to a file
//! elsewhere) ever reaches a host.

use std::io::Read as _;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use sha2::Digest as _;
use slipway_config::Env;
use slipway_core::cli::UsageError;

use crate::plan::{BundleFile, DEPLOY_ENV, hex};

/// A bundle file opened once, after its handle was checked: a regular file
/// with one name, that name inside the project. Every later read (hashing,
/// upload) goes through this handle, at explicit offsets, so nothing can
/// swap the file between the check and the send.
#[derive(Debug, Clone)]
pub(crate) struct LocalFile {
    /// Its canonical path, for messages.
    pub(crate) path: PathBuf,
    file: Arc<std::fs::File>,
}

impl PartialEq for LocalFile {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for LocalFile {}

impl LocalFile {
    /// A reader of the whole file from its first byte; readers do not share
    /// an offset, so the file can be hashed and sent several times.
    pub(crate) fn reader(&self) -> impl std::io::Read + Send + '_ {
        Positional {
            file: &self.file,
            at: 0,
        }
    }
}

/// Reads a file at explicit offsets (`pread`).
struct Positional<'a> {
    file: &'a std::fs::File,
    at: u64,
}

impl std::io::Read for Positional<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buffer, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// The bundle files of `env` (hashed when `with_hashes`), each named by
/// its path relative to the project root less `env.strip_components`
/// leading directories.
///
/// Every entry must resolve (symlinks followed, the path canonicalised) to
/// a regular file inside the project root, or to a directory whose files
/// all do; anything else (a path outside the root, `/proc`, a fifo, a
/// device, a dangling symlink, a file with other hard links) is refused
/// before anything is sent: a bundle must never carry a file of the
/// machine that deploys, such as `/proc/self/environ`, to the host.
pub(crate) fn bundle_files(
    root: &Path,
    env: &Env,
    with_hashes: bool,
) -> anyhow::Result<Vec<BundleFile>> {
    let project = std::fs::canonicalize(root).map_err(|error| {
        UsageError::caused_by(
            format!("cannot resolve the project root `{}`", root.display()),
            error,
        )
    })?;
    let mut files: Vec<BundleFile> = Vec::new();
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
        let relative = relative_path(root, &project, entry).map_err(refuse)?;
        let metadata = std::fs::metadata(&resolved).map_err(|error| {
            refuse(format!(
                "cannot be read (`{}`: {error})",
                resolved.display()
            ))
        })?;
        let mut found: Vec<(PathBuf, PathBuf)> = Vec::new();
        if metadata.is_dir() {
            expand_dir(&project, &relative, &resolved, &mut found).map_err(refuse)?;
        } else {
            found.push((relative, resolved));
        }
        for (relative, resolved) in found {
            let (local, metadata) = open_checked(&project, &resolved).map_err(|why| {
                if relative.as_path() == entry.as_path() {
                    refuse(why)
                } else {
                    refuse(format!("holds `{}`, which {why}", relative.display()))
                }
            })?;
            let name = remote_name(&relative, env.strip_components).map_err(refuse)?;
            if let Some(other) = files.iter().find(|f| f.name == name) {
                return Err(UsageError::new(format!(
                    "bundle files `{}` and `{}` of env `{}` would both be uploaded as `{name}`; paths in a bundle (after `strip_components = {}`) must differ",
                    other
                        .local
                        .as_ref()
                        .map_or(Path::new(""), |l| &l.path)
                        .display(),
                    local.path.display(),
                    env.name,
                    env.strip_components
                )));
            }
            let sha256 = if with_hashes {
                Some(hash_file(&local)?)
            } else {
                None
            };
            files.push(BundleFile {
                name,
                mode: std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o7777,
                size: metadata.len(),
                local: Some(local),
                contents: None,
                sha256,
            });
        }
    }
    Ok(files)
}

/// `entry`'s path relative to the project root, lexically (`./` and
/// `a/../` folded; an absolute entry inside the root made relative), as
/// written: a symlink keeps its own name, not its target's.
fn relative_path(root: &Path, project: &Path, entry: &Path) -> Result<PathBuf, String> {
    let joined = normalize(&root.join(entry));
    let relative = joined
        .strip_prefix(normalize(root))
        .or_else(|_| joined.strip_prefix(project))
        .map_err(|_| {
            format!(
                "is written as a path outside the project (`{}`)",
                joined.display()
            )
        })?;
    if relative.as_os_str().is_empty() {
        return Err(
            "is the project root itself; name the files or directories to upload".to_owned(),
        );
    }
    Ok(relative.to_path_buf())
}

/// `path` with `.` dropped and `..` folded into its parent, without looking
/// at the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The name a file has under the remote path: `relative` less `strip`
/// leading directories, `/`-separated. Hidden components, `deploy.env` at
/// the top and names that are not UTF-8 are refused.
fn remote_name(relative: &Path, strip: u32) -> Result<String, String> {
    let components: Vec<&str> = relative
        .components()
        .map(|c| {
            c.as_os_str()
                .to_str()
                .ok_or_else(|| format!("holds `{}`, whose name is not UTF-8", relative.display()))
        })
        .collect::<Result<_, _>>()?;
    let kept = components.get(strip as usize..).unwrap_or_default();
    if kept.is_empty() {
        return Err(format!(
            "holds `{}`, which has no path left after `strip_components = {strip}` drops its leading directories; lower `strip_components`",
            relative.display()
        ));
    }
    let name = kept.join("/");
    if name == DEPLOY_ENV || kept.iter().any(|c| c.starts_with('.')) {
        return Err(format!(
            "holds `{}`, which cannot be uploaded as `{name}`: `deploy.env` is written by ssh-deploy and hidden names are reserved",
            relative.display()
        ));
    }
    Ok(name)
}

/// `path` with every symlink followed, if that lands inside `project`;
/// else why not, naming what it points at.
fn resolve_inside(project: &Path, path: &Path) -> Result<PathBuf, String> {
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

/// Opens `resolved` once and checks the opened handle, not the path: it
/// must be a regular file (a fifo would hang the upload, a device would
/// stream the deploying machine's bytes) with exactly one name, and that
/// name, resolved after opening, must be inside `project` and lead to the
/// very file opened (same device and inode). One name inside the project
/// and the same inode means the bytes sent are the project's, whatever is
/// swapped on the path later; a file with other hard links could be a name
/// for a file elsewhere (`/etc/shadow` linked in), which cannot be checked,
/// so it is refused.
fn open_checked(project: &Path, resolved: &Path) -> Result<(LocalFile, std::fs::Metadata), String> {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
    // A device is refused before it is opened (opening one can have
    // effects); what is opened is checked again below, through the handle.
    if let Ok(metadata) = std::fs::metadata(resolved)
        && (metadata.file_type().is_char_device() || metadata.file_type().is_block_device())
    {
        return Err(format!(
            "points at `{}`, which is a device",
            resolved.display()
        ));
    }
    // O_NONBLOCK: opening a fifo must not wait for a writer; a regular
    // file ignores the flag.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(resolved)
        .map_err(|error| format!("cannot be opened (`{}`: {error})", resolved.display()))?;
    let opened = file
        .metadata()
        .map_err(|error| format!("cannot be read (`{}`: {error})", resolved.display()))?;
    let kind = opened.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a fifo"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(format!(
            "points at `{}`, which is {what}",
            resolved.display()
        ));
    }
    if opened.nlink() > 1 {
        return Err(format!(
            "points at `{}`, which has {} hard links: its other names may be outside the project, which cannot be checked; upload a copy instead (`cp --remove-destination`)",
            resolved.display(),
            opened.nlink()
        ));
    }
    let now = resolve_inside(project, resolved)?;
    let is_same = std::fs::metadata(&now)
        .is_ok_and(|now| now.dev() == opened.dev() && now.ino() == opened.ino());
    if !is_same {
        return Err(format!(
            "changed while it was opened (`{}` is no longer the file opened); refusing to send it",
            resolved.display()
        ));
    }
    Ok((
        LocalFile {
            path: now,
            file: Arc::new(file),
        },
        opened,
    ))
}

/// Adds every file under `dir` (sorted, recursively), each named by its
/// path under `shown`; files are checked when opened.
fn expand_dir(
    project: &Path,
    shown: &Path,
    dir: &Path,
    found: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), String> {
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect())
        .map_err(|error| format!("cannot be listed (`{}`: {error})", dir.display()))?;
    children.sort();
    for child in children {
        let shown = shown.join(child.strip_prefix(dir).unwrap_or(&child));
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
            found.push((shown, resolved));
        }
    }
    Ok(())
}

/// The hex SHA-256 of a checked bundle file, read through its handle.
pub(crate) fn hash_file(local: &LocalFile) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let mut hasher = sha2::Sha256::new();
    let mut reader = local.reader();
    let mut buffer = vec![0u8; 1024 * 1024];
    loop {
        let n = reader
            .read(&mut buffer)
            .with_context(|| format!("cannot read bundle file `{}`", local.path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(relative: &str, strip: u32, expected: Result<&str, &str>) {
        let got = remote_name(Path::new(relative), strip);
        match expected {
            Ok(name) => assert_eq!(got.as_deref(), Ok(name), "`{relative}` strip {strip}"),
            Err(part) => {
                let error = got.expect_err("refused");
                assert!(error.contains(part), "`{relative}` strip {strip}: {error}");
            }
        }
    }

    #[test]
    fn remote_names_keep_the_layout_less_stripped_directories() {
        check(
            "tooling/deploy/deploy-compose.sh",
            0,
            Ok("tooling/deploy/deploy-compose.sh"),
        );
        check(
            "tooling/deploy/deploy-compose.sh",
            2,
            Ok("deploy-compose.sh"),
        );
        check("compose.yml", 0, Ok("compose.yml"));
        check(
            "deploy/compose.yml",
            2,
            Err("no path left after `strip_components = 2`"),
        );
        check(
            "deploy.env",
            0,
            Err("`deploy.env` is written by ssh-deploy"),
        );
        check(
            "x/deploy.env",
            1,
            Err("`deploy.env` is written by ssh-deploy"),
        );
        check("x/deploy.env", 0, Ok("x/deploy.env"));
        check("conf/.env", 0, Err("hidden names are reserved"));
        check(".github/x", 1, Ok("x"));
    }

    #[test]
    fn entries_are_made_relative_to_the_root_lexically() {
        let root = Path::new("/p/root");
        let relative = |entry: &str| relative_path(root, root, Path::new(entry));
        assert_eq!(relative("./a/../b/c.sh"), Ok(PathBuf::from("b/c.sh")));
        assert_eq!(relative("/p/root/b/c.sh"), Ok(PathBuf::from("b/c.sh")));
        assert!(relative("../other/c.sh").is_err());
        assert!(relative(".").is_err());
    }
}
