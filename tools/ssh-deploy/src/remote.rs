//! What ssh-deploy keeps on a host, through SFTP and small shell commands on
//! the one connection: the lock's files, the release records, the bundle
//! manifest and the uploads.
//!
//! Layout under the env's remote path:
//! - the bundle files and `deploy.env` (0600);
//! - `.slipway/deploy.lock`: the lock, a `flock` held by the deploy's own
//!   session (see `lock`); `.slipway/holder.json` says who holds it;
//! - `.slipway/run.lock`: held by the remote command's processes;
//!   `.slipway/command.pid`: its process group, for stopping it;
//! - `.slipway/releases/<N>.json`: one record per deploy;
//! - `.slipway/bundle.json`: hash, size and mtime of each uploaded file, so
//!   unchanged files are not sent again.
//!
//! Records, the manifest and the holder are written atomically (a temporary
//! name, synced, renamed): a full disk or a cut leaves the old file whole,
//! never an empty one. What cannot be read is skipped with a warning.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use sha2::Digest as _;

use crate::plan::{BundleFile, Staged};

pub(crate) use slipway_contract::ssh_deploy::{LockHolder, Release, ReleaseResult};

/// One line for people about who holds a lock.
pub(crate) fn describe(holder: &LockHolder) -> String {
    let mut text = format!(
        "held by `{}` (pid {} on `{}`",
        holder.holder, holder.pid, holder.machine
    );
    if let Some(job) = &holder.ci_job {
        text.push_str(&format!(", CI job {job}"));
    }
    text.push_str(&format!(
        ") since {} for release {}",
        timestamp(holder.since),
        holder.release
    ));
    if let Some(pid) = holder.host_pid {
        text.push_str(&format!(", lock holder pid {pid} on the host"));
    }
    match holder.is_alive {
        Some(true) => text.push_str(", alive"),
        Some(false) => text.push_str(", gone (its session ended; the lock is free)"),
        None => {}
    }
    text
}

/// The paths of one env on one host.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) root: PathBuf,
    /// The PID of this deploy's lock holder on the host, once it holds the
    /// lock: every change made under the lock first checks it still holds it.
    pub(crate) holder_pid: Option<u32>,
}

impl Layout {
    pub(crate) fn new(remote_path: &str) -> Layout {
        Layout {
            root: PathBuf::from(remote_path),
            holder_pid: None,
        }
    }

    /// A shell prefix that stops a line (status 86) unless this deploy's
    /// lock holder still holds the lock file open: a deploy whose lock was
    /// taken from it (`lock release --force`, a silent network) changes
    /// nothing more on the host.
    fn guard(&self) -> String {
        match self.holder_pid {
            Some(pid) => format!(
                "[ /proc/{pid}/fd/9 -ef {} ] || {{ echo 'this deploy no longer holds the lock' >&2; exit 86; }}; ",
                slipway_core::output::shell_quote(&self.lock_file().to_string_lossy())
            ),
            None => String::new(),
        }
    }
    fn state(&self) -> PathBuf {
        self.root.join(".slipway")
    }
    /// The lock file, `flock`ed by the deploy's session.
    pub(crate) fn lock_file(&self) -> PathBuf {
        self.state().join("deploy.lock")
    }
    pub(crate) fn holder(&self) -> PathBuf {
        self.state().join("holder.json")
    }
    /// Where the command line records the PID of the login shell that runs
    /// the env's command, the leader of its process group.
    pub(crate) fn command_pid(&self) -> PathBuf {
        self.state().join("command.pid")
    }
    /// Held (`flock`) by every process of the remote command.
    pub(crate) fn run_lock(&self) -> PathBuf {
        self.state().join("run.lock")
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
        if sftp.stat(dir).is_err()
            && let Err(error) = sftp.mkdir(dir, 0o755)
        {
            sftp.stat(dir).map_err(|_| {
                anyhow::Error::from(error).context(format!(
                    "cannot create `{}` on the host (does its parent exist, belong to the deploy user, and have room?)",
                    dir.display()
                ))
            })?;
        }
    }
    Ok(())
}

/// Writes who holds the lock, atomically, after removing what an
/// interrupted deploy may have left (as [`remove_leftovers`] does): one remote
/// command for both, since each command costs a login shell on the host.
pub(crate) fn write_holder(
    session: &ssh2::Session,
    layout: &Layout,
    holder: &LockHolder,
    io: Duration,
) -> anyhow::Result<()> {
    // The removal is best effort, as in `remove_leftovers`: it never stops
    // the write (`;`), and says nothing.
    let before = format!("( {} ) >/dev/null 2>&1; ", leftovers_line(layout));
    write_atomic(
        session,
        layout,
        &before,
        &layout.holder(),
        &serde_json::to_vec_pretty(holder)?,
        0o600,
        None,
        io,
    )
    .map(|_| ())
}

/// Who holds (or last held) the lock, if `holder.json` says; unreadable or
/// damaged counts as unknown.
pub(crate) fn read_holder(sftp: &ssh2::Sftp, layout: &Layout) -> Option<LockHolder> {
    read(sftp, &layout.holder())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

/// Removes the holder's files; call it while holding the lock, before
/// releasing it.
pub(crate) fn clear_holder(sftp: &ssh2::Sftp, layout: &Layout) {
    let _ = sftp.unlink(&layout.command_pid());
    let _ = sftp.unlink(&layout.holder());
}

/// Removes what an interrupted deploy may have left: every
/// `.<name>.slipway-tmp` in the remote path, `.slipway/` and the release
/// records. Only while holding the lock (checked on the host): then no
/// other deploy writes them.
pub(crate) fn remove_leftovers(session: &ssh2::Session, layout: &Layout, io: Duration) {
    let line = format!("{}{}", layout.guard(), leftovers_line(layout));
    match crate::ssh::run_captured(session, &line, b"", io) {
        Ok((0, _)) => {}
        Ok((_, output)) => tracing::warn!(output, "cannot remove temporary files"),
        Err(error) => {
            tracing::warn!(error = %crate::deploy::chain(&error), "cannot remove temporary files")
        }
    }
}

fn leftovers_line(layout: &Layout) -> String {
    format!(
        "cd {} && rm -f -- .*.slipway-tmp .slipway/.*.slipway-tmp .slipway/releases/.*.slipway-tmp",
        slipway_core::output::shell_quote(&layout.root.to_string_lossy())
    )
}

/// A file written after the main one in the same remote command, which may
/// fail without failing the write (a cache such as the bundle manifest).
pub(crate) struct Also<'a> {
    pub(crate) path: &'a Path,
    pub(crate) contents: &'a [u8],
    pub(crate) mode: u32,
}

/// What [`write_atomic`] says of its [`Also`] file: `Err` holds why it
/// was not written.
type AlsoWritten = Result<(), String>;

/// Writes `contents` to `path` on the host atomically: a temporary name,
/// synced, renamed over `path` (see `plan::write_file_line`); on failure
/// the old file stays and no temporary file is left. The error says why,
/// from the host's own message (`no space left on device`).
///
/// After the shell text `before`, and followed by `also` (if any), all in
/// one remote command: each command costs a login shell on the host
/// (about 200 ms where the user's `.bashrc` is heavy), far more than the
/// writes. Both contents travel on stdin, the first read by its exact size.
#[allow(clippy::too_many_arguments)] // Each is one fact of the one write.
fn write_atomic(
    session: &ssh2::Session,
    layout: &Layout,
    before: &str,
    path: &Path,
    contents: &[u8],
    mode: u32,
    also: Option<&Also<'_>>,
    io: Duration,
) -> anyhow::Result<AlsoWritten> {
    const NOT_SAVED: &str = "slipway: the second file was not written";
    let shown = path.display();
    let mut line = format!("{}{before}", layout.guard());
    let mut stdin = Vec::new();
    match also {
        None => {
            line.push_str(&crate::plan::write_file_line(&path.to_string_lossy(), mode));
            stdin.extend_from_slice(contents);
        }
        Some(also) => {
            line.push_str(&format!(
                "( {} ) && {{ ( {} ) || {{ echo '{NOT_SAVED}' >&2; true; }}; }}",
                crate::plan::write_sized_file_line(&path.to_string_lossy(), mode, contents.len()),
                crate::plan::write_file_line(&also.path.to_string_lossy(), also.mode),
            ));
            stdin.extend_from_slice(contents);
            stdin.extend_from_slice(also.contents);
        }
    }
    let (status, output) = crate::ssh::run_captured(session, &line, &stdin, io)
        .with_context(|| format!("cannot write `{shown}` on the host"))?;
    if status != 0 {
        anyhow::bail!("cannot write `{shown}` on the host: {}", reason(&output));
    }
    Ok(match output.contains(NOT_SAVED) {
        true => Err(reason(&output.replace(NOT_SAVED, ""))),
        false => Ok(()),
    })
}

/// The reason in a remote command's message, first: `no space left on
/// device`, `permission denied`, … then the message itself.
pub(crate) fn reason(output: &str) -> String {
    let lower = output.to_lowercase();
    let known = [
        ("no space left on device", "no space left on device"),
        ("disk quota exceeded", "disk quota exceeded"),
        ("read-only file system", "read-only file system"),
        ("permission denied", "permission denied"),
        ("no such file or directory", "no such file or directory"),
        (
            "no longer holds the lock",
            "this deploy no longer holds the lock (it was forced out, or its session was given up)",
        ),
    ];
    let output = output.trim();
    match known.iter().find(|(needle, _)| lower.contains(needle)) {
        Some((_, reason)) => format!("{reason} (the host said: `{output}`)"),
        None if output.is_empty() => "the host's command failed without a message".to_owned(),
        None => format!("the host said: `{output}`"),
    }
}

/// Why an SFTP step failed, beyond libssh2's `failure`: the SFTP status,
/// and for a generic failure of a write (OpenSSH reports a full disk as
/// plain `failure`) the free space of `dir`, read with `stat -f`.
fn explain_sftp(
    session: &ssh2::Session,
    error: &anyhow::Error,
    dir: &Path,
    needed: u64,
    io: Duration,
) -> String {
    let sftp_code = error.chain().find_map(|cause| {
        match cause.downcast_ref::<ssh2::Error>().map(ssh2::Error::code) {
            Some(ssh2::ErrorCode::SFTP(code)) => Some(code),
            _ => None,
        }
    });
    let status = match sftp_code {
        Some(2) => "no such file or directory",
        Some(3) => "permission denied",
        Some(14) => return "no space left on device".to_owned(),
        Some(15) => return "disk quota exceeded".to_owned(),
        Some(4) | None => "",
        Some(_) => "the SFTP server refused it",
    };
    if !status.is_empty() {
        return status.to_owned();
    }
    let line = format!(
        "LC_ALL=C stat -f -c '%a %S' {}",
        slipway_core::output::shell_quote(&dir.to_string_lossy())
    );
    let free = crate::ssh::run_captured(session, &line, b"", io)
        .ok()
        .filter(|(status, _)| *status == 0)
        .and_then(|(_, output)| {
            let mut words = output.split_whitespace().map(str::parse::<u64>);
            match (words.next(), words.next()) {
                (Some(Ok(blocks)), Some(Ok(size))) => Some(blocks.saturating_mul(size)),
                _ => None,
            }
        });
    match free {
        Some(free) if free < needed.saturating_add(64 * 1024) => format!(
            "no space left on device: `{}` has {free} bytes free, {needed} needed",
            dir.display()
        ),
        Some(free) => format!(
            "the SFTP server reported a failure (`{}` has {free} bytes free)",
            dir.display()
        ),
        None => "the SFTP server reported a failure".to_owned(),
    }
}

/// All release records, oldest first.
pub(crate) fn releases(sftp: &ssh2::Sftp, layout: &Layout) -> anyhow::Result<Vec<Release>> {
    Ok(listed(sftp, layout)?
        .into_iter()
        .map(|(_, record)| record)
        .collect())
}

/// All release records that read back whole, oldest first, each with its path.
fn listed(sftp: &ssh2::Sftp, layout: &Layout) -> anyhow::Result<Vec<(PathBuf, Release)>> {
    let entries = sftp
        .readdir(layout.releases())
        .with_context(|| format!("cannot list `{}`", layout.releases().display()))?;
    let mut records = Vec::new();
    for (path, _) in entries {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok());
        let Some(stem) = stem.filter(|_| path.extension().is_some_and(|e| e == "json")) else {
            continue;
        };
        // A damaged record (empty, cut short, hand-edited, too large) is
        // skipped, never a blocker: deploys, rollbacks and `releases` go on
        // without it.
        let record = read(sftp, &path).and_then(|bytes| {
            let record = serde_json::from_slice::<Release>(&bytes)
                .with_context(|| format!("release record `{}` is not valid", path.display()))?;
            check_record(stem, &record)
                .with_context(|| format!("release record `{}` is not valid", path.display()))?;
            Ok(record)
        });
        match record {
            Ok(record) => records.push((path, record)),
            Err(error) => tracing::warn!(
                record = %path.display(),
                error = %crate::deploy::chain(&error),
                "skipping a damaged release record"
            ),
        }
    }
    records.sort_by_key(|(_, r)| r.id);
    Ok(records)
}

/// What a record read from a host must be before anything uses it: the
/// host is input, and a hand-edited record must not crash a deploy or be
/// mistaken for another release.
fn check_record(stem: u64, record: &Release) -> anyhow::Result<()> {
    anyhow::ensure!(
        record.id == stem,
        "its id {} differs from its file name `{stem}.json`",
        record.id
    );
    anyhow::ensure!(
        record.id.checked_add(1).is_some(),
        "its id {} leaves no number for the next release",
        record.id
    );
    if let Some(sha) = &record.git_sha {
        anyhow::ensure!(
            !sha.is_empty() && sha.len() <= 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "its git_sha {} is not a hexadecimal commit id",
            slipway_core::output::shell_quote(sha)
        );
    }
    Ok(())
}

/// The release number after `id`: records are checked on reading, but a
/// host is input, so the arithmetic is checked too.
pub(crate) fn next_release(id: u64) -> anyhow::Result<u64> {
    id.checked_add(1)
        .with_context(|| format!("no release number is left after {id}"))
}

/// Writes a release record (atomically), then drops the oldest beyond
/// `keep`. `manifest` (from [`manifest`]) is written in the same remote
/// command, after the record; losing it only costs uploads next time, so
/// its failure is a warning.
pub(crate) fn record(
    session: &ssh2::Session,
    sftp: &ssh2::Sftp,
    layout: &Layout,
    release: &Release,
    keep: u32,
    manifest: Option<&[u8]>,
    io: Duration,
) -> anyhow::Result<()> {
    let path = layout.releases().join(format!("{}.json", release.id));
    let manifest_path = layout.manifest();
    let also = manifest.map(|contents| Also {
        path: &manifest_path,
        contents,
        mode: 0o644,
    });
    let written = write_atomic(
        session,
        layout,
        "",
        &path,
        &serde_json::to_vec_pretty(release)?,
        0o644,
        also.as_ref(),
        io,
    )?;
    if let Err(why) = written {
        tracing::warn!(
            why,
            "cannot save the bundle manifest; unchanged files will be sent again next time"
        );
    }
    let all = listed(sftp, layout)?;
    let excess = all.len().saturating_sub(keep as usize);
    // By the name read from the directory, never a name rebuilt from what
    // the record says.
    for (old, _) in &all[..excess] {
        let _ = sftp.unlink(old);
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
    pub(crate) local: crate::bundle::LocalFile,
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
    io: Duration,
    timeout: Duration,
) -> anyhow::Result<Upload> {
    // A network that trickles bytes never trips `io`: the whole upload is
    // bounded by `--timeout` too.
    let deadline = std::time::Instant::now() + timeout;
    let mut manifest: BTreeMap<String, Uploaded> = read(sftp, &layout.manifest())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let mut result = Upload::default();
    for file in files {
        crate::cancel::check()?;
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
            (Some(known), None, Some(local)) => known.sha256 == crate::bundle::hash_file(local)?,
            (Some(_), None, None) => false,
        };
        if is_unchanged {
            result.unchanged.push(file.name.clone());
            continue;
        }
        let temp = temp_name(&file.name);
        let temp_path = layout.root.join(&temp);
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
        let sent = match (&file.contents, &file.local) {
            (None, Some(local)) if file.size >= STREAM_THRESHOLD => {
                let _ = sftp.unlink(&temp_path);
                stream_upload(session, &temp_path, local, deadline).and_then(|sent| {
                    sftp.setstat(&temp_path, mode_only(file.mode))
                        .with_context(|| {
                            format!("cannot set the mode of `{}`", temp_path.display())
                        })?;
                    Ok((sent, sftp.stat(&temp_path)?))
                })
            }
            _ => sftp_upload(sftp, &temp_path, file, deadline),
        };
        let ((written, sha256), stat) = match sent {
            Ok(sent) => sent,
            Err(error) => {
                // Leave nothing half-written behind, then say why it failed.
                let _ = sftp.unlink(&temp_path);
                let why = if crate::ssh::is_connection_lost(&error)
                    || error.is::<crate::cancel::Cancelled>()
                {
                    crate::deploy::chain(&error)
                } else {
                    explain_sftp(session, &error, &layout.root, file.size, io)
                };
                return Err(error.context(format!(
                    "cannot upload `{}` to `{}`: {why}",
                    file.name,
                    temp_path.display()
                )));
            }
        };
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

/// The temporary name a file is uploaded under, in the remote path itself
/// (a file of a bundle directory too: `tooling/deploy.sh` is staged as
/// `.tooling%2Fdeploy.sh.slipway-tmp`), moved into place by the command
/// line. Every temporary name is hidden and at the top, where an
/// interrupted deploy's leftovers are looked for; `%` and `/` are escaped,
/// so two paths never share one.
pub(crate) fn temp_name(name: &str) -> String {
    format!(
        ".{}.slipway-tmp",
        name.replace('%', "%25").replace('/', "%2F")
    )
}

/// Files from this size on go through a `cat` channel, which moves bytes
/// faster than libssh2's SFTP writes, at the cost of one remote command.
const STREAM_THRESHOLD: u64 = 16 * 1024 * 1024;

/// A file's attributes that set its mode only.
fn mode_only(mode: u32) -> ssh2::FileStat {
    ssh2::FileStat {
        size: None,
        uid: None,
        gid: None,
        perm: Some(mode),
        atime: None,
        mtime: None,
    }
}

/// Writes one file through SFTP, with its exact mode, and returns its
/// size, hash and attributes as the host has them. Every request goes
/// through the open handle: a round trip costs more than a small file's
/// bytes, so there are as few as can be (open, the writes, one `fstat`, a
/// `fsetstat` only where the server's umask narrowed the mode, close).
fn sftp_upload(
    sftp: &ssh2::Sftp,
    temp_path: &Path,
    file: &BundleFile,
    deadline: std::time::Instant,
) -> anyhow::Result<((u64, String), ssh2::FileStat)> {
    let open = || {
        sftp.open_mode(
            temp_path,
            ssh2::OpenFlags::WRITE | ssh2::OpenFlags::CREATE | ssh2::OpenFlags::EXCLUSIVE,
            i32::try_from(file.mode).unwrap_or(0o600),
            ssh2::OpenType::File,
        )
    };
    // Leftovers were removed under the lock: a temporary file in the way is
    // rare, and is removed only then.
    let mut remote = match open() {
        Ok(remote) => remote,
        Err(_) => {
            let _ = sftp.unlink(temp_path);
            open()?
        }
    };
    let sent = match (&file.contents, &file.local) {
        (Some(contents), _) => {
            remote.write_all(contents)?;
            (
                contents.len() as u64,
                crate::plan::hex(&sha2::Sha256::digest(contents)),
            )
        }
        (None, Some(local)) => pump(local, &mut remote, deadline)?,
        (None, None) => (0, String::new()),
    };
    let mut stat = remote
        .stat()
        .with_context(|| format!("cannot read the attributes of `{}`", temp_path.display()))?;
    if stat.perm.map(|p| p & 0o7777) != Some(file.mode) {
        remote
            .setstat(mode_only(file.mode))
            .with_context(|| format!("cannot set the mode of `{}`", temp_path.display()))?;
        stat.perm = Some(file.mode);
    }
    // No fsync per file (a round trip and a disk flush each, about 15 ms
    // per small file): the command line syncs every staged file at once
    // before moving them into place (`plan::remote_command_line`).
    Ok((sent, stat))
}

/// Streams a large file into `cat > temp` (created 0600; the caller sets the mode).
fn stream_upload(
    session: &ssh2::Session,
    temp_path: &Path,
    local: &crate::bundle::LocalFile,
    deadline: std::time::Instant,
) -> anyhow::Result<(u64, String)> {
    let temp = temp_path.to_string_lossy();
    let command = format!(
        "umask 077 && set -o noclobber && exec cat > {}",
        slipway_core::output::shell_quote(&temp)
    );
    let mut channel = session.channel_session()?;
    channel.exec(&command)?;
    let pumped = pump(local, &mut channel, deadline);
    if let Err(error) = &pumped
        && (crate::ssh::is_connection_lost(error) || crate::deploy::cancelled_in(error).is_some())
    {
        return pumped;
    }
    // `cat` may have stopped early (a full disk): its message says why.
    let _ = channel.send_eof();
    let mut message = String::new();
    let _ = channel.stderr().read_to_string(&mut message);
    channel.wait_close()?;
    match (pumped, channel.exit_status()?) {
        (Ok(sent), 0) => Ok(sent),
        (_, status) => anyhow::bail!(
            "`{command}` exited with status {status}: {}",
            reason(&message)
        ),
    }
}

/// The manifest of what `upload` staged, to write with the release record
/// ([`record`]) once the command line has moved the files into place;
/// `None` if nothing was staged. `streamed` is the size and hash of the
/// file sent on stdin; it is recorded only if it was moved into place.
pub(crate) fn manifest(
    sftp: &ssh2::Sftp,
    layout: &Layout,
    upload: &mut Upload,
    streamed: Option<(u64, String)>,
) -> anyhow::Result<Option<Vec<u8>>> {
    if upload.staged.is_empty() {
        return Ok(None);
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
    Ok(Some(serde_json::to_vec_pretty(&upload.manifest)?))
}

/// Copies `local` to `remote` in large writes (libssh2 pipelines a large
/// SFTP write into many requests in flight) while another thread reads and
/// hashes ahead; returns the size and the hex SHA-256.
pub(crate) fn pump(
    local: &crate::bundle::LocalFile,
    remote: &mut impl std::io::Write,
    deadline: std::time::Instant,
) -> anyhow::Result<(u64, String)> {
    const CHUNK: usize = 4 * 1024 * 1024;
    let mut source = local.reader();
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
            // A signal is acted on between whole chunks only: libssh2's SFTP
            // writes are pipelined, and a handle left with writes in flight
            // confuses the SFTP steps that clean up after the cancel.
            if let Some(signal) = crate::cancel::requested() {
                return Err(std::io::Error::other(crate::cancel::Cancelled(signal)));
            }
            // One write call at a time (each bounded by the session's
            // timeout), looking at the clock in between; past the deadline
            // the connection is given up, so its state no longer matters.
            let mut at = 0;
            while at < chunk.len() {
                if std::time::Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the upload ran longer than `--timeout`",
                    ));
                }
                match remote.write(&chunk[at..]) {
                    Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => at += n,
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            }
            total += chunk.len() as u64;
            Ok(())
        });
        drop(receiver);
        let sha256 = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the reading thread panicked (a bug)"))?
            .with_context(|| format!("cannot read `{}`", local.path.display()))?;
        written?;
        Ok((total, sha256))
    })
}

fn read(sftp: &ssh2::Sftp, path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = sftp
        .open(path)
        .with_context(|| format!("cannot open `{}` on the host", path.display()))?;
    // A host file larger than ssh-deploy ever writes is damaged, not read
    // whole into memory.
    slipway_core::input::read_capped(file, &format!("{} on the host", path.display()))
        .with_context(|| format!("cannot read `{}` on the host", path.display()))
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

    #[test]
    fn reasons_come_first() {
        assert_eq!(
            reason("cat: write error: No space left on device"),
            "no space left on device (the host said: `cat: write error: No space left on device`)"
        );
        assert_eq!(reason(""), "the host's command failed without a message");
        assert_eq!(reason("odd"), "the host said: `odd`");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    }
}
