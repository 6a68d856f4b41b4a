//! What ssh-deploy keeps on a host, through SFTP and small shell commands on
//! the one connection: the lock's files, the release records, the bundle
//! manifest, and which bundle files a release must send (they travel as
//! one tar stream on the command's stdin, see `tarball`).
//!
//! Layout under the env's remote path:
//! - the bundle files and `deploy.env` (0600);
//! - `.slipway/deploy.lock`: the lock, a `flock` held by the deploy's own
//!   session (see `lock`); `.slipway/holder.json` says who holds it;
//! - `.slipway/run.lock`: held by the remote command's processes;
//!   `.slipway/command.pid`: its process group, for stopping it;
//! - `.slipway/releases/<N>.json`: one record per deploy;
//! - `.slipway/bundle.json`: hash, size and mtime of each uploaded file, so
//!   unchanged files are not sent again;
//! - `.slipway/staging/`: where the command line unpacks the changed files
//!   before moving them into place; gone once they are.
//!
//! Records, the manifest and the holder are written atomically (a temporary
//! name, renamed; records and the manifest synced first): a full disk or a
//! cut leaves the old file whole, never an empty one. What cannot be read
//! is skipped with a warning.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use sha2::Digest as _;

use crate::plan::BundleFile;

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
    /// `.slipway` under the remote path: the lock, records, manifest.
    pub(crate) fn state(&self) -> PathBuf {
        self.root.join(".slipway")
    }
    /// The lock file, `flock`ed by the deploy's session.
    pub(crate) fn lock_file(&self) -> PathBuf {
        self.state().join("deploy.lock")
    }
    pub(crate) fn holder(&self) -> PathBuf {
        self.state().join("holder.json")
    }
    /// Where the command line records the PID of the shell that runs the
    /// env's command, the leader of its process group.
    pub(crate) fn command_pid(&self) -> PathBuf {
        self.state().join("command.pid")
    }
    /// Held (`flock`) by every process of the remote command.
    pub(crate) fn run_lock(&self) -> PathBuf {
        self.state().join("run.lock")
    }
    pub(crate) fn releases_dir(&self) -> PathBuf {
        self.state().join("releases")
    }
    fn manifest(&self) -> PathBuf {
        self.state().join("bundle.json")
    }
}

/// Creates the remote path's `.slipway` directories (the remote path's parent must exist).
pub(crate) fn prepare(sftp: &ssh2::Sftp, layout: &Layout) -> anyhow::Result<()> {
    for dir in [&layout.root, &layout.state(), &layout.releases_dir()] {
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

/// The status, and the line printed before it, of a command line that
/// could not record who holds the lock: nothing else of it ran.
/// The line ends with the command line's `plan::nonce`, as
/// `plan::upload_tag`'s does.
pub(crate) const HOLDER_FAILED: i32 = 87;
pub(crate) fn holder_tag(nonce: &str) -> String {
    format!("slipway-holder: failed {nonce}")
}

/// The start of a deploy's first command line: remove what an interrupted
/// deploy may have left (as [`remove_leftovers`] does), then write who
/// holds the lock (`holder`, JSON on one line) to `holder.json`,
/// atomically (a temporary file renamed over it, 0600); on failure the
/// line stops with [`HOLDER_FAILED`]. Part of the command line, not a
/// command of its own: each command costs a login shell on the host. The
/// contents are a word of the line (shell-quoted), not stdin: a subshell
/// and an `mv` on the host instead of seven processes. The subshell keeps
/// the removal's patterns, `cd` and `umask` from the rest of the line.
/// The shell's `printf` writes the file; when that fails, it is written
/// again through `cat`, whose error names the cause (`No space left on
/// device`), which dash's `printf` ("I/O error") and BusyBox's (nothing)
/// do not; the first attempt's own messages are dropped, so a message is
/// said once, and the retry's failure cannot end the line before its tag
/// (an rc file's `set -e`); both write with `>|` (an rc file's
/// noclobber). zsh's `printf` misses a failed write only from 8 KiB on,
/// far above a holder's size. The file is not synced: it only says who holds the lock,
/// which the `flock` decides, and a crash frees the lock anyway (an
/// unreadable holder is shown as unknown).
pub(crate) fn holder_line(layout: &Layout, holder: &str, nonce: &str) -> String {
    let state = layout.state().to_string_lossy().into_owned();
    let temp = format!("{state}/.holder.json.slipway-tmp");
    // The removal is best effort, as in `remove_leftovers`: it never stops
    // the write (`;`), and says nothing.
    format!(
        "{}( {{ {}; }} >/dev/null 2>&1; umask 077 && printf %s {json} 2>/dev/null >| {temp} && mv -f {temp} {} ) || {{ printf %s {json} | cat >| {temp} || :; rm -f {temp}; echo '{}' >&2; exit {HOLDER_FAILED}; }}; ",
        layout.guard(),
        leftovers_line(layout),
        slipway_core::output::shell_quote(&layout.holder().to_string_lossy()),
        holder_tag(nonce),
        temp = slipway_core::output::shell_quote(&temp),
        json = slipway_core::output::shell_quote(holder),
    )
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

/// Removes what an interrupted deploy may have left: the staging
/// directory of an upload, and every `.<name>.slipway-tmp` in the remote
/// path, `.slipway/` and the release records. Only while holding the lock (checked on the host): then no
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

/// [`remove_leftovers`]'s line, for a shell of its own or a subshell (it
/// changes the directory and the shell's options): an `rm` only for what
/// is there, no process for what is not. zsh (by default) and bash with
/// `failglob` fail a command whose pattern matches nothing, which would
/// end the line before anything is removed: there such a pattern expands
/// to nothing. An `rm` that fails ends nothing, even under an rc file's
/// `set -e`.
fn leftovers_line(layout: &Layout) -> String {
    format!(
        "cd {} && {{ [ -z \"${{ZSH_VERSION-}}\" ] || setopt nullglob; }} && {{ [ -z \"${{BASH_VERSION-}}\" ] || shopt -u failglob; }} && for f in {} .*.slipway-tmp .slipway/.*.slipway-tmp .slipway/releases/.*.slipway-tmp; do if [ -e \"$f\" ] || [ -L \"$f\" ]; then rm -rf -- \"$f\" || :; fi; done",
        slipway_core::output::shell_quote(&layout.root.to_string_lossy()),
        crate::plan::STAGING
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
/// Followed by `also` (if any), both as one step of the lock holder (see
/// `plan::lock_holder_line`), which costs no login shell. Both contents
/// travel on the holder's stdin and are read whole, by their exact sizes,
/// before anything is checked or written: whatever fails, the holder's
/// next byte is the next step's.
fn write_atomic(
    session: &ssh2::Session,
    lock: &crate::lock::HeldLock,
    layout: &Layout,
    path: &Path,
    contents: &[u8],
    mode: u32,
    also: Option<&Also<'_>>,
) -> anyhow::Result<AlsoWritten> {
    const NOT_SAVED: &str = "slipway: the second file was not written";
    let shown = path.display();
    // `x` keeps the trailing newlines that `$(…)` would drop. A read that
    // timed out ends the holder: where the next step starts is unknown.
    let short = crate::plan::SHORT_READ;
    let mut line = format!(
        "a=$({} && echo x) || exit {short}; ",
        lock.read_exactly(contents.len())
    );
    let mut stdin = contents.to_vec();
    if let Some(also) = also {
        let _ = write!(
            line,
            "b=$({} && echo x) || exit {short}; ",
            lock.read_exactly(also.contents.len())
        );
        stdin.extend_from_slice(also.contents);
    }
    let _ = write!(
        line,
        "{{ {}{}",
        layout.guard(),
        crate::plan::write_sized_var_line(&path.to_string_lossy(), mode, "a", contents.len())
    );
    match also {
        None => line.push_str("; }"),
        Some(also) => {
            let _ = write!(
                line,
                " && {{ ( {} ) || {{ echo '{NOT_SAVED}' >&2; true; }}; }}; }}",
                crate::plan::write_sized_var_line(
                    &also.path.to_string_lossy(),
                    also.mode,
                    "b",
                    also.contents.len()
                ),
            );
        }
    }
    let (status, output) = lock
        .run(session, &line, &stdin)
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

/// From this many known files in one directory on, [`changes`] lists the
/// directory instead of a stat for each.
const LIST_FROM: usize = 8;

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
        .readdir(layout.releases_dir())
        .with_context(|| format!("cannot list `{}`", layout.releases_dir().display()))?;
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
/// `keep`. `manifest` (from [`manifest`]) is written in the same step of
/// the lock holder, after the record; losing it only costs uploads next
/// time, so its failure is a warning.
#[allow(
    clippy::too_many_arguments,
    reason = "each is one fact of the one record"
)]
pub(crate) fn record(
    session: &ssh2::Session,
    lock: &crate::lock::HeldLock,
    sftp: &ssh2::Sftp,
    layout: &Layout,
    release: &Release,
    keep: u32,
    manifest: Option<&[u8]>,
) -> anyhow::Result<()> {
    let path = layout.releases_dir().join(format!("{}.json", release.id));
    let manifest_path = layout.manifest();
    let also = manifest.map(|contents| Also {
        path: &manifest_path,
        contents,
        mode: 0o644,
    });
    let written = write_atomic(
        session,
        lock,
        layout,
        &path,
        &serde_json::to_vec_pretty(release)?,
        0o644,
        also.as_ref(),
    )?;
    if let Err(why) = written {
        tracing::warn!(
            why,
            "cannot save the bundle manifest; unchanged files will be sent again next time"
        );
    }
    // By the names read from the directory (`<id>.json`, oldest first),
    // never a name rebuilt from what a record says; without reading every
    // record again, which took a round trip or three each.
    let entries = sftp
        .readdir(layout.releases_dir())
        .with_context(|| format!("cannot list `{}`", layout.releases_dir().display()))?;
    let mut all: Vec<(u64, PathBuf)> = entries
        .into_iter()
        .filter(|(path, stat)| stat.is_file() && path.extension().is_some_and(|e| e == "json"))
        .filter_map(|(path, _)| {
            let id = path.file_stem()?.to_str()?.parse::<u64>().ok()?;
            Some((id, path))
        })
        // A stray name numbered past this record takes no place of a real one.
        .filter(|(id, _)| *id <= release.id)
        .collect();
    all.sort();
    let excess = all.len().saturating_sub(keep as usize);
    for (_, old) in &all[..excess] {
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

/// What a release sends: the files that changed since the host's
/// manifest, and those it already has.
#[derive(Debug, Default)]
pub(crate) struct Upload {
    /// In bundle order: sent as one tar stream on the command's stdin and
    /// moved into place by the command line.
    pub(crate) changed: Vec<BundleFile>,
    pub(crate) unchanged: Vec<String>,
    /// The mtime every changed file is given, which the manifest records.
    pub(crate) mtime: u64,
    manifest: BTreeMap<String, Uploaded>,
}

impl Upload {
    /// The changed files as members of the tar stream.
    pub(crate) fn members(&self) -> Vec<crate::tarball::Member<'_>> {
        self.changed
            .iter()
            .filter_map(|file| {
                let source = match (&file.contents, &file.local) {
                    (Some(bytes), _) => crate::tarball::Source::Bytes(bytes),
                    (None, Some(local)) => crate::tarball::Source::File(local),
                    (None, None) => return None,
                };
                Some(crate::tarball::Member {
                    name: &file.name,
                    mode: file.mode,
                    size: file.size,
                    source,
                })
            })
            .collect()
    }

    /// The names of the changed files.
    pub(crate) fn names(&self) -> Vec<String> {
        self.changed.iter().map(|f| f.name.clone()).collect()
    }
}

/// Which of `files` the host lacks: each whose hash, size, mtime or mode
/// differs from what the host's manifest and the file itself say. Sends
/// nothing: the changed files travel on the command's stdin.
pub(crate) fn changes(
    sftp: &ssh2::Sftp,
    layout: &Layout,
    files: &[BundleFile],
) -> anyhow::Result<Upload> {
    let manifest: BTreeMap<String, Uploaded> = read(sftp, &layout.manifest())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let mut result = Upload {
        mtime: u64::try_from(now()).unwrap_or_default(),
        ..Upload::default()
    };
    // What the host has: a directory listing at a time where a directory
    // holds many of the files the manifest knows (a few round trips for
    // hundreds of files, where a stat each took one per file), else a stat
    // each (a `.keep` beside a million files is not worth their listing).
    let mut wanted: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for file in files.iter().filter(|f| manifest.contains_key(&f.name)) {
        if let Some(dir) = layout.root.join(&file.name).parent() {
            *wanted.entry(dir.to_path_buf()).or_default() += 1;
        }
    }
    let mut listed: BTreeMap<PathBuf, BTreeMap<std::ffi::OsString, ssh2::FileStat>> =
        BTreeMap::new();
    for (dir, _) in wanted.iter().filter(|(_, n)| **n >= LIST_FROM) {
        crate::cancel::check()?;
        let entries = sftp.readdir(dir).unwrap_or_default();
        let entries = entries
            .into_iter()
            .filter_map(|(path, stat)| path.file_name().map(|n| (n.to_owned(), stat)))
            .collect();
        listed.insert(dir.clone(), entries);
    }
    let stat_of = |target: &Path| -> Option<ssh2::FileStat> {
        let dir = target.parent()?;
        match listed.get(dir) {
            Some(entries) => entries.get(target.file_name()?).cloned(),
            None => sftp.lstat(target).ok(),
        }
    };
    for file in files {
        crate::cancel::check()?;
        let target = layout.root.join(&file.name);
        // A listing gives what the name itself is (a symbolic link's own
        // size and mode): such a file is sent again, never taken as kept.
        let known = manifest.get(&file.name).filter(|known| {
            known.size == file.size
                && stat_of(&target).is_some_and(|stat| {
                    stat.is_file()
                        && stat.size == Some(known.size)
                        && stat.mtime == Some(known.mtime)
                        && stat.perm.map(|p| p & 0o7777) == Some(file.mode)
                })
        });
        // Hash only a file that may be unchanged; others are hashed as they go.
        let is_unchanged = match (known, &file.sha256, &file.local, &file.contents) {
            (None, ..) => false,
            (Some(known), Some(sha256), _, _) => known.sha256 == *sha256,
            (Some(known), None, _, Some(contents)) => {
                known.sha256 == crate::plan::hex(&sha2::Sha256::digest(contents))
            }
            (Some(known), None, Some(local), None) => {
                known.sha256 == crate::bundle::hash_file(local)?
            }
            (Some(_), None, None, None) => false,
        };
        if is_unchanged {
            result.unchanged.push(file.name.clone());
        } else {
            result.changed.push(file.clone());
        }
    }
    result.manifest = manifest;
    Ok(result)
}

/// The manifest after `upload`'s files, `sent` as the stream sent them,
/// were moved into place, to write with the release record ([`record`]);
/// `None` if nothing changed.
pub(crate) fn manifest(
    upload: &mut Upload,
    sent: &[crate::tarball::Sent],
) -> anyhow::Result<Option<Vec<u8>>> {
    if upload.changed.is_empty() {
        return Ok(None);
    }
    for (file, sent) in upload.changed.iter().zip(sent) {
        upload.manifest.insert(
            file.name.clone(),
            Uploaded {
                sha256: sent.sha256.clone(),
                size: sent.size,
                mtime: upload.mtime,
            },
        );
    }
    Ok(Some(serde_json::to_vec_pretty(&upload.manifest)?))
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

    #[test]
    fn the_first_line_removes_leftovers_and_writes_the_holder_in_every_login_shell() {
        // The line runs in the user's login shell where the host cannot
        // run it from the lock holder: zsh and bash's `failglob` fail a
        // pattern that matches nothing, which must not end the line, and
        // an rc file may have set `-e` and `-u`.
        let holder = r#"{"holder":"o'brien@\"box\" $(touch pwned) `id` é","pid":1}"#;
        let shells: [&[&str]; 6] = [
            &["bash"],
            &["bash", "-O", "failglob"],
            &["bash", "-eu"],
            &["dash", "-eu"],
            &["zsh"],
            &["busybox", "sh"],
        ];
        for shell in shells {
            let dir = tempfile::tempdir().expect("temp dir");
            let root = dir.path().join("app");
            let layout = Layout::new(&root.to_string_lossy());
            fs_err::create_dir_all(layout.releases_dir()).expect("made");
            fs_err::create_dir_all(root.join(crate::plan::STAGING).join("a")).expect("made");
            for left in [".x.slipway-tmp", ".slipway/.holder.json.slipway-tmp"] {
                fs_err::write(root.join(left), "left").expect("written");
            }
            for kept in ["compose.yml", ".slipway/releases/1.json"] {
                fs_err::write(root.join(kept), "kept").expect("written");
            }
            let line = format!("{}echo after", holder_line(&layout, holder, "n0nce"));
            let output = run_in(shell, &line, dir.path());
            assert_eq!(
                String::from_utf8_lossy(&output.stdout),
                "after\n",
                "{shell:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                fs_err::read_to_string(layout.holder()).expect("written"),
                holder,
                "{shell:?}"
            );
            let mut left: Vec<String> = walk(&root);
            left.sort();
            assert_eq!(
                left,
                [
                    ".slipway/holder.json",
                    ".slipway/releases/1.json",
                    "compose.yml"
                ],
                "{shell:?}"
            );
            assert!(!dir.path().join("pwned").exists(), "{shell:?}");
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &fs_err::metadata(layout.holder())
                    .expect("written")
                    .permissions(),
            );
            assert_eq!(mode & 0o777, 0o600, "{shell:?}");
        }
    }

    /// `line` run by `shell` (its program, then its flags) with `-c`, in
    /// `dir`.
    fn run_in(shell: &[&str], line: &str, dir: &Path) -> std::process::Output {
        std::process::Command::new(shell[0])
            .args(&shell[1..])
            .args(["-c", line])
            .current_dir(dir)
            .output()
            .expect("the shell runs")
    }

    /// A 64 KiB tmpfs on `dir`, unmounted when dropped.
    struct FullDisk(std::path::PathBuf);

    impl Drop for FullDisk {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }

    /// A 64 KiB tmpfs mounted on `dir` (which must exist), with `old` as
    /// `file` in it, then filled to the last byte.
    fn full_disk(dir: &Path, file: &Path, old: &str) -> FullDisk {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "cannot mount a tmpfs (root is needed)");
        let mounted = FullDisk(dir.to_owned());
        if let Some(parent) = file.parent() {
            fs_err::create_dir_all(parent).expect("made");
        }
        fs_err::write(file, old).expect("written");
        // `dd` stops at ENOSPC, which is the point.
        let _ = std::process::Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", dir.join("filler").display()))
            .args(["bs=4096", "status=none"])
            .stderr(std::process::Stdio::null())
            .status();
        mounted
    }

    #[test]
    fn a_record_too_large_for_the_disk_is_refused_and_the_old_one_kept_in_every_login_shell() {
        // zsh's own printf says nothing when a write of 8 KiB or more
        // fails: a record is written through `cat`, whose status tells.
        let dir = tempfile::tempdir().expect("temp dir");
        let releases = dir.path().join("releases");
        fs_err::create_dir_all(&releases).expect("made");
        let record = releases.join("3.json");
        let _mounted = full_disk(&releases, &record, "old");
        let line = format!(
            "a=$(head -c 9000 /dev/zero | tr '\\0' a; echo x) && {}",
            crate::plan::write_sized_var_line(&record.to_string_lossy(), 0o644, "a", 9000)
        );
        for shell in [
            &["bash", "-C"][..],
            &["dash", "-C"],
            &["zsh", "-C"],
            &["busybox", "sh", "-C"],
        ] {
            let output = run_in(shell, &line, dir.path());
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{shell:?}: {stderr}");
            assert!(
                stderr.to_lowercase().contains("no space left on device"),
                "{shell:?}: {stderr}"
            );
            assert_eq!(fs_err::read_to_string(&record).expect("kept"), "old");
            let mut left = walk(&releases);
            left.sort();
            assert_eq!(left, ["3.json", "filler"], "{shell:?}");
        }
    }

    #[test]
    fn a_full_disk_fails_the_holder_write_with_its_cause_in_every_login_shell() {
        // Where the line runs in a login shell whose rc file set `-e` and
        // noclobber, the failure still ends with the line's own status and
        // tag (not as the env's command failing), says why, and leaves the
        // old holder and no temporary file.
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("app");
        fs_err::create_dir_all(&root).expect("made");
        let layout = Layout::new(&root.to_string_lossy());
        let _mounted = full_disk(&root, &layout.holder(), "old");
        fs_err::create_dir_all(layout.releases_dir()).expect("made");
        let shells: [&[&str]; 5] = [
            &["bash", "-eC"],
            &["dash", "-eC"],
            &["zsh", "-eC"],
            &["busybox", "sh", "-eC"],
            &["bash", "-o", "pipefail", "-e"],
        ];
        for shell in shells {
            let line = format!(
                "{}echo after",
                holder_line(&layout, r#"{"pid":1}"#, "n0nce")
            );
            let output = run_in(shell, &line, dir.path());
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(HOLDER_FAILED),
                "{shell:?}: {stderr}"
            );
            assert!(
                stderr.ends_with("slipway-holder: failed n0nce\n"),
                "{shell:?}: {stderr}"
            );
            assert_eq!(
                stderr
                    .to_lowercase()
                    .matches("no space left on device")
                    .count(),
                1,
                "{shell:?}: {stderr}"
            );
            assert_eq!(
                fs_err::read_to_string(layout.holder()).expect("kept"),
                "old"
            );
            let mut left = walk(&root);
            left.sort();
            assert_eq!(left, [".slipway/holder.json", "filler"], "{shell:?}");
        }
    }

    /// Every file under `root`, relative to it.
    fn walk(root: &Path) -> Vec<String> {
        let mut files = Vec::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in fs_err::read_dir(&dir).expect("listed") {
                let path = entry.expect("entry").path();
                match path.is_dir() {
                    true => dirs.push(path),
                    false => files.push(
                        path.strip_prefix(root)
                            .expect("under root")
                            .to_string_lossy()
                            .into_owned(),
                    ),
                }
            }
        }
        files
    }
}
