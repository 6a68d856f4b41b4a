//! How bundle files travel: the changed files of a release as one tar
//! stream (POSIX ustar; GNU `L` records for names that do not fit), written
//! on the remote command's stdin and unpacked there by `tar -x` into a
//! staging directory (see `plan::remote_command_line`). One stream on one
//! channel moves small files without a round trip each and large files at
//! the channel's speed.
//!
//! Only regular files are written, with their mode and the given mtime,
//! owned by nobody in particular (`tar -o` gives them to the deploy user).
//! Each file's bytes are read through its checked handle, exactly as many
//! as its header says, and hashed as they go. The last member is an empty
//! [`MARKER`]: the host tells a whole stream from one cut short by it.

use sha2::Digest as _;

use crate::bundle::LocalFile;

/// The last member of every stream; its presence after `tar -x` proves the
/// whole stream arrived.
pub(crate) const MARKER: &str = ".slipway-end";

const BLOCK: usize = 512;

/// Bytes handed to the channel at a time (and read ahead, on another
/// thread, while the previous ones are sent).
const CHUNK: usize = 4 << 20;

/// One file of the stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member<'a> {
    /// Its path under the staging directory (`/`-separated, relative).
    pub(crate) name: &'a str,
    pub(crate) mode: u32,
    pub(crate) size: u64,
    pub(crate) source: Source<'a>,
}

/// Where a member's bytes come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source<'a> {
    /// Generated contents (`deploy.env`).
    Bytes(&'a [u8]),
    /// A checked bundle file, read through its handle.
    File(&'a LocalFile),
}

/// What was sent of one member: its size and hex SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

/// Why a stream stopped before its end.
#[derive(Debug)]
pub(crate) enum Stopped {
    /// A local file could not be read, or changed size: nothing is wrong
    /// with the connection, so the host's answer can still be read.
    Read(anyhow::Error),
    /// Writing to the host failed (the connection, `--timeout`, a signal)
    /// while `name` was being sent.
    Write { name: String, error: std::io::Error },
}

/// The exact size of the stream [`send`] writes for `members`.
pub(crate) fn stream_size(members: &[Member<'_>]) -> u64 {
    let header = |name: &str| -> u64 {
        match split_name(name.as_bytes()) {
            Some(_) => BLOCK as u64,
            None => 2 * BLOCK as u64 + padded(name.len() as u64 + 1),
        }
    };
    members
        .iter()
        .map(|m| header(m.name) + padded(m.size))
        .sum::<u64>()
        + header(MARKER)
        + 2 * BLOCK as u64
}

/// `size` rounded up to whole blocks.
fn padded(size: u64) -> u64 {
    size.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// Writes `members` (each with `mtime`) and the marker to `remote`, reading
/// ahead on another thread; returns what was sent of each member, in order.
/// Past `deadline`, or on a signal, it stops between writes.
pub(crate) fn send(
    members: &[Member<'_>],
    mtime: u64,
    remote: &mut impl std::io::Write,
    deadline: std::time::Instant,
) -> Result<Vec<Sent>, Stopped> {
    let (sender, receiver) = std::sync::mpsc::sync_channel::<(Vec<u8>, usize)>(2);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || produce(members, mtime, &sender));
        let mut written = Ok(());
        for (chunk, member) in receiver.iter() {
            if let Err(error) = write_chunk(remote, &chunk, deadline) {
                let name = members.get(member).map_or(MARKER, |m| m.name).to_owned();
                written = Err(Stopped::Write { name, error });
                break;
            }
        }
        // The reader stops at its next send.
        drop(receiver);
        let read = reader
            .join()
            .map_err(|_| Stopped::Read(anyhow::anyhow!("the reading thread panicked (a bug)")))?;
        written?;
        read.map_err(Stopped::Read)
    })
}

/// Writes one chunk, a write call at a time (each bounded by the session's
/// timeout), looking at the clock and for a signal in between.
fn write_chunk(
    remote: &mut impl std::io::Write,
    chunk: &[u8],
    deadline: std::time::Instant,
) -> std::io::Result<()> {
    let mut at = 0;
    while at < chunk.len() {
        if let Some(signal) = crate::cancel::requested() {
            return Err(std::io::Error::other(crate::cancel::Cancelled(signal)));
        }
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
    Ok(())
}

/// Builds the stream in chunks of about [`CHUNK`] bytes, each sent with the
/// index of the member its last byte belongs to.
fn produce(
    members: &[Member<'_>],
    mtime: u64,
    sender: &std::sync::mpsc::SyncSender<(Vec<u8>, usize)>,
) -> anyhow::Result<Vec<Sent>> {
    let mut sent = Vec::with_capacity(members.len());
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK + BLOCK * 4);
    // `false` once the writer stopped: the rest is not read.
    let flush = |chunk: &mut Vec<u8>, member: usize, is_last: bool| -> bool {
        if chunk.len() < CHUNK && !is_last {
            return true;
        }
        let full = std::mem::replace(chunk, Vec::with_capacity(CHUNK + BLOCK * 4));
        sender.send((full, member)).is_ok()
    };
    for (index, member) in members.iter().enumerate() {
        header(&mut chunk, member.name, member.mode, member.size, mtime);
        let mut hasher = sha2::Sha256::new();
        match member.source {
            Source::Bytes(bytes) => {
                anyhow::ensure!(
                    bytes.len() as u64 == member.size,
                    "`{}` has {} bytes, not the {} announced (a bug)",
                    member.name,
                    bytes.len(),
                    member.size
                );
                hasher.update(bytes);
                chunk.extend_from_slice(bytes);
            }
            Source::File(local) => {
                let mut reader = local.reader();
                let mut left = member.size;
                while left > 0 {
                    let start = chunk.len();
                    let room = (CHUNK.saturating_sub(start)).max(64 * 1024);
                    let want = usize::try_from(left).unwrap_or(usize::MAX).min(room);
                    chunk.resize(start + want, 0);
                    let n = read_full(&mut reader, &mut chunk[start..]).map_err(|error| {
                        anyhow::Error::from(error)
                            .context(format!("cannot read `{}`", local.path.display()))
                    })?;
                    chunk.truncate(start + n);
                    anyhow::ensure!(
                        n == want,
                        "`{}` changed while it was sent (it is shorter than the {} bytes it had when checked); nothing was moved into place",
                        local.path.display(),
                        member.size
                    );
                    hasher.update(&chunk[start..]);
                    left -= n as u64;
                    if !flush(&mut chunk, index, false) {
                        return Ok(sent);
                    }
                }
            }
        }
        pad(&mut chunk);
        sent.push(Sent {
            size: member.size,
            sha256: crate::plan::hex(&hasher.finalize()),
        });
        if !flush(&mut chunk, index, false) {
            return Ok(sent);
        }
    }
    header(&mut chunk, MARKER, 0o600, 0, mtime);
    // The end of the archive: two zero blocks.
    chunk.resize(chunk.len() + BLOCK * 2, 0);
    flush(&mut chunk, members.len(), true);
    Ok(sent)
}

/// Reads until `buffer` is full or the file ends; returns the bytes read.
fn read_full(reader: &mut impl std::io::Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// Zero bytes up to the next block boundary.
fn pad(out: &mut Vec<u8>) {
    let rest = out.len() % BLOCK;
    if rest != 0 {
        out.resize(out.len() + BLOCK - rest, 0);
    }
}

/// The header of a regular file: ustar, with the name split into prefix
/// and name where it is longer than 100 bytes, else preceded by a GNU
/// `././@LongLink` record (GNU tar and busybox read both).
fn header(out: &mut Vec<u8>, name: &str, mode: u32, size: u64, mtime: u64) {
    let bytes = name.as_bytes();
    match split_name(bytes) {
        Some((prefix, short)) => block(out, short, prefix, mode, size, mtime, b'0', false),
        None => {
            let long = bytes.len() as u64 + 1;
            block(out, b"././@LongLink", b"", 0, long, 0, b'L', true);
            out.extend_from_slice(bytes);
            out.push(0);
            pad(out);
            block(
                out,
                &bytes[..100.min(bytes.len())],
                b"",
                mode,
                size,
                mtime,
                b'0',
                true,
            );
        }
    }
}

/// `(prefix, name)` of a ustar header for `name`, if it fits.
fn split_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((b"", name));
    }
    name.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(|(i, _)| (&name[..i], &name[i + 1..]))
        .find(|(prefix, rest)| prefix.len() <= 155 && !rest.is_empty() && rest.len() <= 100)
}

/// One 512-byte header block.
#[allow(clippy::too_many_arguments)] // Each is one field of the header.
fn block(
    out: &mut Vec<u8>,
    name: &[u8],
    prefix: &[u8],
    mode: u32,
    size: u64,
    mtime: u64,
    kind: u8,
    is_gnu: bool,
) {
    let mut header = [0u8; BLOCK];
    header[..name.len()].copy_from_slice(name);
    octal(&mut header[100..108], u64::from(mode & 0o7777));
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], size);
    octal(&mut header[136..148], mtime);
    header[156] = kind;
    if is_gnu {
        header[257..265].copy_from_slice(b"ustar  \0");
    } else {
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[345..345 + prefix.len()].copy_from_slice(prefix);
    }
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    octal(&mut header[148..155], u64::from(sum));
    out.extend_from_slice(&header);
}

/// `value` in octal, zero-padded, NUL-terminated; a value too large for
/// the field in base-256 (GNU), as for files of 8 GiB and more.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() <= digits {
        field[..digits].copy_from_slice(text.as_bytes());
        field[digits] = 0;
    } else {
        field.fill(0);
        field[0] = 0x80;
        let bytes = value.to_be_bytes();
        let at = field.len() - bytes.len();
        field[at..].copy_from_slice(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streams `files` (name, mode, contents) and unpacks them with the
    /// hosts' own tools, GNU tar and busybox's (package busybox-static):
    /// what arrives must be exact.
    #[track_caller]
    fn check_unpacked(files: &[(&str, u32, &[u8])]) {
        let members: Vec<Member<'_>> = files
            .iter()
            .map(|(name, mode, bytes)| Member {
                name,
                mode: *mode,
                size: bytes.len() as u64,
                source: Source::Bytes(bytes),
            })
            .collect();
        let mut stream = Vec::new();
        let far = std::time::Instant::now() + std::time::Duration::from_secs(600);
        let sent = send(&members, 1_700_000_000, &mut stream, far).expect("sent");
        assert_eq!(stream.len() % BLOCK, 0);
        // The lock holder reads exactly this many bytes for the stream.
        assert_eq!(stream.len() as u64, stream_size(&members));
        for tar in [&["tar"][..], &["busybox", "tar"][..]] {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut child = std::process::Command::new(tar[0])
                .args(&tar[1..])
                .args(["-x", "-p", "-o", "-f", "-", "-C"])
                .arg(dir.path())
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run {tar:?} (packages tar, busybox-static): {e}")
                });
            std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &stream)
                .expect("fed");
            assert!(child.wait().expect("tar ends").success(), "{tar:?}");
            for ((name, mode, bytes), sent) in files.iter().zip(&sent) {
                let path = dir.path().join(name);
                assert_eq!(
                    fs_err::read(&path).expect("unpacked"),
                    *bytes,
                    "{tar:?} `{name}`"
                );
                let meta = fs_err::metadata(&path).expect("unpacked");
                assert_eq!(
                    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
                    *mode,
                    "{tar:?} `{name}`"
                );
                assert_eq!(std::os::unix::fs::MetadataExt::mtime(&meta), 1_700_000_000);
                assert_eq!(sent.size, bytes.len() as u64);
                assert_eq!(sent.sha256, crate::plan::hex(&sha2::Sha256::digest(bytes)));
            }
            assert!(dir.path().join(MARKER).is_file(), "{tar:?}");
        }
    }

    #[test]
    fn files_arrive_exactly_with_modes_nested_and_long_names() {
        let deep = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let long = format!("a/{}", "x".repeat(140));
        let big = vec![7u8; 70_000];
        check_unpacked(&[
            ("compose.yml", 0o644, b"services: {}\n"),
            ("tooling/deploy/deploy.sh", 0o755, b"#!/bin/sh\n"),
            ("empty", 0o600, b""),
            ("setuid", 0o4750, b"x"),
            (&deep, 0o640, b"deep"),
            (&long, 0o644, b"long"),
            ("big.bin", 0o644, &big),
            ("sp ace/'q\"uote", 0o644, b"q"),
        ]);
    }

    #[test]
    fn sizes_past_the_octal_field_use_base_256() {
        let mut field = [0u8; 12];
        octal(&mut field, 8 << 30);
        assert_eq!(field[0], 0x80);
        assert_eq!(&field[4..], &(8u64 << 30).to_be_bytes());
        octal(&mut field, 0o777);
        assert_eq!(&field, b"00000000777\0");
    }
}
