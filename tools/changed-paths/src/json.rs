//! The report's JSON document written directly: the bytes serde_json's
//! pretty printer writes (two-space indentation, `[]` and `{}` when
//! empty), without serde's per-byte escaping pass over every path of a
//! large diff. A path that needs no escaping (no `"`, `\` or control
//! character, as nearly every path) is copied as it is; anything else goes
//! through serde_json itself, re-indented to where it stands.

use serde::Serialize;

use slipway_git::changes::ChangedFile;

/// Two spaces per level, as serde_json's `PrettyFormatter`.
fn indent(out: &mut Vec<u8>, level: usize) {
    out.resize(out.len() + 2 * level, b' ');
}

/// Whether serde_json writes `text` as it is between quotes: it escapes
/// `"`, `\` and bytes below 0x20, nothing else.
fn is_plain(text: &str) -> bool {
    // No early exit: the loop is branch-free, and paths are short.
    !text.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// `text` as a JSON string.
pub(crate) fn string(out: &mut Vec<u8>, text: &str) -> std::io::Result<()> {
    if is_plain(text) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, text).map_err(std::io::Error::other)
    }
}

/// `value` pretty-printed by serde_json as the value of a member or
/// element at `level`: its inner lines indented from there. (A line break
/// is only ever layout: inside a string it is written `\n`.)
pub(crate) fn value(
    out: &mut Vec<u8>,
    value: &impl Serialize,
    level: usize,
) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    for line in text.split(|b| *b == b'\n').enumerate() {
        if line.0 > 0 {
            out.push(b'\n');
            indent(out, level);
        }
        out.extend_from_slice(line.1);
    }
    Ok(())
}

/// Writes `"<key>": ` at `level`, after a `,` unless it is the first member.
pub(crate) fn key(out: &mut Vec<u8>, key: &str, level: usize, first: bool) -> std::io::Result<()> {
    if !first {
        out.push(b',');
    }
    out.push(b'\n');
    indent(out, level);
    string(out, key)?;
    out.extend_from_slice(b": ");
    Ok(())
}

/// Closes an object or array at `level` that had members (`\n` and the
/// indented bracket); an empty one is closed right after it opened.
pub(crate) fn close(out: &mut Vec<u8>, bracket: u8, level: usize, had_members: bool) {
    if had_members {
        out.push(b'\n');
        indent(out, level);
    }
    out.push(bracket);
}

/// The array of `paths`, as the value of a member at `level`.
pub(crate) fn paths<'a>(
    out: &mut Vec<u8>,
    paths: impl Iterator<Item = &'a str>,
    level: usize,
) -> std::io::Result<()> {
    out.push(b'[');
    let mut had_members = false;
    for path in paths {
        if had_members {
            out.push(b',');
        }
        out.push(b'\n');
        indent(out, level + 1);
        string(out, path)?;
        had_members = true;
    }
    close(out, b']', level, had_members);
    Ok(())
}

/// The array of `files` (each `{"path", "status"}`, with `from` and
/// `path_bytes` when present), as the value of a member at `level`.
pub(crate) fn files(out: &mut Vec<u8>, files: &[ChangedFile], level: usize) -> std::io::Result<()> {
    out.push(b'[');
    for (index, file) in files.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.push(b'\n');
        indent(out, level + 1);
        if file.from.is_some() || file.path_bytes.is_some() {
            value(out, file, level + 1)?;
            continue;
        }
        out.push(b'{');
        key(out, "path", level + 2, true)?;
        string(out, &file.path)?;
        key(out, "status", level + 2, false)?;
        string(out, file.status.as_str())?;
        close(out, b'}', level + 1, true);
    }
    close(out, b']', level, !files.is_empty());
    Ok(())
}
