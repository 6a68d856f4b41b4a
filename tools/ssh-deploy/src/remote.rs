//! What ssh-deploy keeps on a host, all through SFTP on the one connection:
//! the lock, the release records, the bundle manifest and the uploads.
//!
//! Layout under the env's remote path:
//! - the bundle files and `deploy.env` (0600);
//! - `.slipway/lock/holder.json`: the lock (the directory is created
//!   atomically with SFTP `mkdir`, which fails when it exists);
//! - `.slipway/releases/<N>.json`: one record per deploy;
//! - `.slipway/bundle.json`: hash, size and mtime of each uploaded file, so
//!   unchanged files are not sent again.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use sha2::Digest as _;

use crate::plan::{BundleFile, Staged};

pub(crate) use slipway_core::contract::ssh_deploy::{LockHolder, Release, ReleaseResult};

/// Whether `holder` is certainly gone: past its deadline, or a process on
/// this very machine that no longer exists.
pub(crate) fn is_stale(holder: &LockHolder, now: i64, machine: &str) -> bool {
    now > holder.deadline
        || (holder.machine == machine && !Path::new(&format!("/proc/{}", holder.pid)).exists())
}

/// One line for people about who holds a lock.
pub(crate) fn describe(holder: &LockHolder) -> String {
    format!(
        "held by `{}` (pid {}) since {} for release {}",
        holder.holder,
        holder.pid,
        timestamp(holder.since),
        holder.release
    )
}

/// The paths of one env on one host.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) root: PathBuf,
}

impl Layout {
    pub(crate) fn new(remote_path: &str) -> Layout {
        Layout {
            root: PathBuf::from(remote_path),
        }
    }
    fn state(&self) -> PathBuf {
        self.root.join(".slipway")
    }
    fn lock_dir(&self) -> PathBuf {
        self.state().join("lock")
    }
    fn holder(&self) -> PathBuf {
        self.lock_dir().join("holder.json")
    }
    /// Where the command line records the PID of the login shell that runs
    /// the env's command, the leader of its process group; inside the lock,
    /// so it lives exactly as long as the deploy that wrote it.
    pub(crate) fn command_pid(&self) -> PathBuf {
        self.lock_dir().join("command.pid")
    }
    fn releases(&self) -> PathBuf {
        self.state().join("releases")
    }
    fn manifest(&self) -> PathBuf {
        self.state().join("bundle.json")
    }
}

/// Creates the remote path's `.slipway` directories (the remote path's parent must exist).
pub(crate) fn prepare(sftp: &ssh2::Sftp, layout: &Layout) -> anyhow::Result<()> {
    for dir in [&layout.root, &layout.state(), &layout.releases()] {
        // Another deploy may create it between the two calls; that is fine.
        if sftp.stat(dir).is_err() && sftp.mkdir(dir, 0o755).is_err() {
            sftp.stat(dir).with_context(|| {
                format!(
                    "cannot create `{}` on the host (does its parent exist and belong to the deploy user?)",
                    dir.display()
                )
            })?;
        }
    }
    Ok(())
}

/// Takes the lock: `Ok(None)` when taken, `Ok(Some(holder))` when someone else
/// holds it (holder `None` in the instant between its `mkdir` and its write).
pub(crate) fn try_lock(
    sftp: &ssh2::Sftp,
    layout: &Layout,
    me: &LockHolder,
) -> anyhow::Result<Option<Option<LockHolder>>> {
    match sftp.mkdir(&layout.lock_dir(), 0o700) {
        Ok(()) => {
            write_new(
                sftp,
                &layout.holder(),
                &serde_json::to_vec_pretty(me)?,
                0o600,
            )?;
            Ok(None)
        }
        Err(_) if sftp.stat(&layout.lock_dir()).is_ok() => Ok(Some(read_holder(sftp, layout)?)),
        Err(error) => Err(anyhow::Error::from(error).context(format!(
            "cannot create the lock `{}`",
            layout.lock_dir().display()
        ))),
    }
}

/// The lock's holder, if the lock exists and names one.
pub(crate) fn read_holder(
    sftp: &ssh2::Sftp,
    layout: &Layout,
) -> anyhow::Result<Option<LockHolder>> {
    match read(sftp, &layout.holder()) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(_) => Ok(None),
    }
}

/// Whether the lock directory exists.
pub(crate) fn is_locked(sftp: &ssh2::Sftp, layout: &Layout) -> bool {
    sftp.stat(&layout.lock_dir()).is_ok()
}

/// Removes the lock.
pub(crate) fn unlock(sftp: &ssh2::Sftp, layout: &Layout) -> anyhow::Result<()> {
    let _ = sftp.unlink(&layout.command_pid());
    let _ = sftp.unlink(&layout.holder());
    sftp.rmdir(&layout.lock_dir())
        .with_context(|| format!("cannot remove the lock `{}`", layout.lock_dir().display()))
}

/// All release records, oldest first.
pub(crate) fn releases(sftp: &ssh2::Sftp, layout: &Layout) -> anyhow::Result<Vec<Release>> {
    let entries = sftp
        .readdir(layout.releases())
        .with_context(|| format!("cannot list `{}`", layout.releases().display()))?;
    let mut records = Vec::new();
    for (path, _) in entries {
        let is_record = path
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|s| s.parse::<u64>().is_ok())
            && path.extension().is_some_and(|e| e == "json");
        if !is_record {
            continue;
        }
        let bytes = read(sftp, &path)?;
        let record: Release = serde_json::from_slice(&bytes)
            .with_context(|| format!("release record `{}` is not valid", path.display()))?;
        records.push(record);
    }
    records.sort_by_key(|r| r.id);
    Ok(records)
}

/// Writes a release record, then drops the oldest beyond `keep`.
pub(crate) fn record(
    sftp: &ssh2::Sftp,
    layout: &Layout,
    release: &Release,
    keep: u32,
) -> anyhow::Result<()> {
    let path = layout.releases().join(format!("{}.json", release.id));
    write_new(sftp, &path, &serde_json::to_vec_pretty(release)?, 0o644)?;
    let all = releases(sftp, layout)?;
    let excess = all.len().saturating_sub(keep as usize);
    for old in &all[..excess] {
        let _ = sftp.unlink(&layout.releases().join(format!("{}.json", old.id)));
    }
    Ok(())
}

/// What the manifest says about one uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Uploaded {
    sha256: String,
    size: u64,
    mtime: u64,
}

/// A file sent on the remote command's stdin (`cat > temp`) instead of SFTP.
#[derive(Debug, Clone)]
pub(crate) struct Streamed {
    pub(crate) temp: String,
    pub(crate) name: String,
    pub(crate) local: PathBuf,
    pub(crate) mode: u32,
}

/// The upload of a bundle: which files were staged and which were unchanged.
#[derive(Debug, Default)]
pub(crate) struct Upload {
    pub(crate) staged: Vec<Staged>,
    /// At most one large file, written by the command line itself.
    pub(crate) streamed: Option<Streamed>,
    pub(crate) unchanged: Vec<String>,
    manifest: BTreeMap<String, Uploaded>,
}

/// Uploads each file whose hash, size or mtime differs from what the host
/// has, under a temporary name with the file's mode; the command line moves
/// them into place.
pub(crate) fn upload(
    session: &ssh2::Session,
    sftp: &ssh2::Sftp,
    layout: &Layout,
    files: &[BundleFile],
) -> anyhow::Result<Upload> {
    let mut manifest: BTreeMap<String, Uploaded> = read(sftp, &layout.manifest())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let mut result = Upload::default();
    for file in files {
        let target = layout.root.join(&file.name);
        let known = manifest.get(&file.name).filter(|known| {
            known.size == file.size
                && sftp.stat(&target).is_ok_and(|stat| {
                    stat.size == Some(known.size)
                        && stat.mtime == Some(known.mtime)
                        && stat.perm.map(|p| p & 0o7777) == Some(file.mode)
                })
        });
        // Hash only a file that may be unchanged; others are hashed as they go.
        let is_unchanged = match (known, &file.sha256, &file.local) {
            (None, _, _) => false,
            (Some(known), Some(sha256), _) => known.sha256 == *sha256,
            (Some(known), None, Some(local)) => known.sha256 == crate::plan::hash_file(local)?,
            (Some(_), None, None) => false,
        };
        if is_unchanged {
            result.unchanged.push(file.name.clone());
            continue;
        }
        let temp = temp_name(&file.name);
        let temp_path = layout.root.join(&temp);
        let _ = sftp.unlink(&temp_path);
        if let (None, Some(local), None) = (&file.contents, &file.local, &result.streamed)
            && file.size >= STREAM_THRESHOLD
        {
            // The largest change rides on the command's own stdin: no extra
            // round trip, and a channel moves bytes faster than SFTP writes.
            result.streamed = Some(Streamed {
                temp: temp.clone(),
                name: file.name.clone(),
                local: local.clone(),
                mode: file.mode,
            });
            result.staged.push(Staged {
                temp,
                name: file.name.clone(),
            });
            continue;
        }
        let (written, sha256) = match (&file.contents, &file.local) {
            (None, Some(local)) if file.size >= STREAM_THRESHOLD => {
                stream_upload(session, &temp_path, local)
            }
            _ => sftp_upload(sftp, &temp_path, file),
        }
        .with_context(|| format!("cannot upload `{}` to `{}`", file.name, temp_path.display()))?;
        // The server's umask may have narrowed the mode; set it exactly.
        let stat = ssh2::FileStat {
            size: None,
            uid: None,
            gid: None,
            perm: Some(file.mode),
            atime: None,
            mtime: None,
        };
        sftp.setstat(&temp_path, stat)
            .with_context(|| format!("cannot set the mode of `{}`", temp_path.display()))?;
        let stat = sftp.stat(&temp_path)?;
        manifest.insert(
            file.name.clone(),
            Uploaded {
                sha256,
                size: written,
                mtime: stat.mtime.unwrap_or_default(),
            },
        );
        result.staged.push(Staged {
            temp,
            name: file.name.clone(),
        });
    }
    result.manifest = manifest;
    Ok(result)
}

/// The temporary name a file is uploaded under, moved into place by the
/// command line.
pub(crate) fn temp_name(name: &str) -> String {
    format!(".{name}.slipway-tmp")
}

/// Removes what an interrupted upload of `names` may have left behind.
pub(crate) fn remove_temps<'a>(
    sftp: &ssh2::Sftp,
    layout: &Layout,
    names: impl IntoIterator<Item = &'a str>,
) {
    for name in names {
        // Absent for files that were unchanged or already moved into place.
        let _ = sftp.unlink(&layout.root.join(temp_name(name)));
    }
}

/// Files from this size on go through a `cat` channel, which moves bytes
/// faster than libssh2's SFTP writes, at the cost of one remote command.
const STREAM_THRESHOLD: u64 = 16 * 1024 * 1024;

fn sftp_upload(
    sftp: &ssh2::Sftp,
    temp_path: &Path,
    file: &BundleFile,
) -> anyhow::Result<(u64, String)> {
    let mut remote = sftp.open_mode(
        temp_path,
        ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::EXCLUSIVE,
        i32::try_from(file.mode).unwrap_or(0o600),
        ssh2::OpenType::File,
    )?;
    let result = match (&file.contents, &file.local) {
        (Some(contents), _) => {
            remote.write_all(contents)?;
            (
                contents.len() as u64,
                crate::plan::hex(&sha2::Sha256::digest(contents)),
            )
        }
        (None, Some(local)) => pump(local, &mut remote)?,
        (None, None) => (0, String::new()),
    };
    remote.fsync().ok();
    Ok(result)
}

/// Streams a large file into `cat > temp` (created 0600; the caller sets the mode).
fn stream_upload(
    session: &ssh2::Session,
    temp_path: &Path,
    local: &Path,
) -> anyhow::Result<(u64, String)> {
    let temp = temp_path.to_string_lossy();
    let command = format!(
        "umask 077 && set -o noclobber && exec cat > {}",
        slipway_core::output::shell_quote(&temp)
    );
    let mut channel = session.channel_session()?;
    channel.exec(&command)?;
    let (total, sha256) = pump(local, &mut channel)?;
    channel.send_eof()?;
    channel.wait_eof()?;
    channel.wait_close()?;
    match channel.exit_status()? {
        0 => Ok((total, sha256)),
        status => anyhow::bail!("`{command}` exited with status {status}"),
    }
}

/// Writes the manifest of what `upload` staged; call it once the command
/// line has moved the files into place. `streamed` is the size and hash of
/// the file sent on stdin; it is recorded only if it was moved into place.
pub(crate) fn save_manifest(
    sftp: &ssh2::Sftp,
    layout: &Layout,
    upload: &mut Upload,
    streamed: Option<(u64, String)>,
) -> anyhow::Result<()> {
    if upload.staged.is_empty() {
        return Ok(());
    }
    if let Some(file) = &upload.streamed {
        upload.manifest.remove(&file.name);
        let is_in_place = sftp.stat(&layout.root.join(&file.temp)).is_err();
        if let (true, Some((size, sha256)), Ok(stat)) = (
            is_in_place,
            streamed,
            sftp.stat(&layout.root.join(&file.name)),
        ) {
            upload.manifest.insert(
                file.name.clone(),
                Uploaded {
                    sha256,
                    size,
                    mtime: stat.mtime.unwrap_or_default(),
                },
            );
        }
    }
    let path = layout.manifest();
    let _ = sftp.unlink(&path);
    write_new(
        sftp,
        &path,
        &serde_json::to_vec_pretty(&upload.manifest)?,
        0o644,
    )
}

/// Copies `local` to `remote` in large writes (libssh2 pipelines a large
/// SFTP write into many requests in flight) while another thread reads and
/// hashes ahead; returns the size and the hex SHA-256.
pub(crate) fn pump(
    local: &Path,
    remote: &mut impl std::io::Write,
) -> anyhow::Result<(u64, String)> {
    const CHUNK: usize = 4 * 1024 * 1024;
    let mut source = crate::plan::open_bundle_file(local)?;
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> std::io::Result<String> {
            let mut hasher = sha2::Sha256::new();
            loop {
                let mut buffer = vec![0u8; CHUNK];
                let mut filled = 0;
                while filled < CHUNK {
                    match source.read(&mut buffer[filled..])? {
                        0 => break,
                        n => filled += n,
                    }
                }
                if filled == 0 {
                    return Ok(crate::plan::hex(&hasher.finalize()));
                }
                buffer.truncate(filled);
                hasher.update(&buffer);
                // The writer stopped on an error, which it reports.
                if sender.send(buffer).is_err() {
                    return Ok(String::new());
                }
            }
        });
        let mut total = 0u64;
        let written = receiver.iter().try_for_each(|chunk| {
            total += chunk.len() as u64;
            remote.write_all(&chunk)
        });
        drop(receiver);
        let sha256 = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the reading thread panicked (a bug)"))?
            .with_context(|| format!("cannot read `{}`", local.display()))?;
        written?;
        Ok((total, sha256))
    })
}

fn write_new(sftp: &ssh2::Sftp, path: &Path, contents: &[u8], mode: i32) -> anyhow::Result<()> {
    let mut file = sftp
        .open_mode(
            path,
            ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::EXCLUSIVE,
            mode,
            ssh2::OpenType::File,
        )
        .with_context(|| format!("cannot create `{}` on the host", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write `{}` on the host", path.display()))?;
    Ok(())
}

fn read(sftp: &ssh2::Sftp, path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut file = sftp
        .open(path)
        .with_context(|| format!("cannot open `{}` on the host", path.display()))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .with_context(|| format!("cannot read `{}` on the host", path.display()))?;
    Ok(bytes)
}

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// RFC 3339 in UTC.
pub(crate) fn timestamp(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

/// `seconds + duration`, saturating.
pub(crate) fn after(seconds: i64, duration: Duration) -> i64 {
    seconds.saturating_add(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(machine: &str, pid: u32, deadline: i64) -> LockHolder {
        LockHolder {
            holder: "ci@runner".to_owned(),
            machine: machine.to_owned(),
            pid,
            since: 0,
            deadline,
            release: 1,
        }
    }

    #[track_caller]
    fn check(lock: LockHolder, now: i64, is_stale: bool) {
        assert_eq!(
            super::is_stale(&lock, now, "here"),
            is_stale,
            "{lock:?} at {now}"
        );
    }

    #[test]
    fn stale_locks() {
        check(holder("here", std::process::id(), 100), 50, false);
        check(holder("here", std::process::id(), 100), 101, true);
        check(holder("here", u32::MAX, 100), 50, true);
        check(holder("elsewhere", u32::MAX, 100), 50, false);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    }
}
