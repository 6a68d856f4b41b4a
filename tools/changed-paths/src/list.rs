//! The `--list-files` formats of a filter's `_files` output. `csv`, `json`
//! and `escape` are dorny/paths-filter's; `shell` keeps its name but not its
//! quoting (see below). Every format works on the paths' exact bytes, so a
//! path that is not UTF-8 reaches a shell unchanged (only `json` shows such
//! bytes as U+FFFD, JSON strings being Unicode).
//!
//! Deliberately not paths-filter's shell escaper: it tests "only safe
//! characters" with a multi-line regex, so a path holding a newline and one
//! safe line (`x\n$(touch PWNED)`) was printed unquoted and ran when the
//! output was `eval`ed. Here every path that is not made only of safe
//! characters is single-quoted (`slipway_core::output::shell_quote_bytes`).

use slipway_core::output::shell_quote_bytes;

use crate::cli::ListFormat;

/// The bytes paths-filter never quotes.
fn is_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b",._+:@%/-".contains(&b)
}

/// The files of one filter in `format`; `None` for [`ListFormat::None`].
pub(crate) fn render(files: &[&[u8]], format: ListFormat) -> Option<Vec<u8>> {
    let join = |quoted: Vec<Vec<u8>>, separator: &[u8]| quoted.join(separator);
    Some(match format {
        ListFormat::None => return None,
        ListFormat::Json => {
            let lossy: Vec<String> = files
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            serde_json::to_vec(&lossy).unwrap_or_default()
        }
        ListFormat::Csv => join(files.iter().map(|f| csv_escape(f)).collect(), b","),
        ListFormat::Shell => join(files.iter().map(|f| shell_quote_bytes(f)).collect(), b" "),
        ListFormat::Escape => join(files.iter().map(|f| backslash_escape(f)).collect(), b" "),
    })
}

/// Quoted when any byte is outside the safe set (or is `,`); `"` doubled.
fn csv_escape(value: &[u8]) -> Vec<u8> {
    if value.iter().all(|&b| b != b',' && is_safe(b)) {
        return value.to_vec();
    }
    let mut quoted = vec![b'"'];
    for &b in value {
        if b == b'"' {
            quoted.push(b'"');
        }
        quoted.push(b);
    }
    quoted.push(b'"');
    quoted
}

/// Every byte outside the safe set preceded by `\`, except a newline, which
/// `\` would turn into a line continuation (dropping it): it is written
/// `'<newline>'`, which `sh` reads back as the newline.
fn backslash_escape(value: &[u8]) -> Vec<u8> {
    if value.is_empty() {
        return b"''".to_vec();
    }
    let mut out = Vec::with_capacity(value.len() * 2);
    for &b in value {
        if b == b'\n' {
            out.extend_from_slice(b"'\n'");
            continue;
        }
        if !is_safe(b) {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(files: &[&str], format: ListFormat, expected: &str) {
        let files: Vec<&[u8]> = files.iter().map(|f| f.as_bytes()).collect();
        assert_eq!(
            render(&files, format).map(|v| String::from_utf8(v).unwrap()),
            Some(expected.to_owned()),
            "{files:?} as {format:?}"
        );
    }

    #[test]
    fn formats_quote_every_unsafe_path() {
        check(
            &["a.js", "b/c.ts"],
            ListFormat::Json,
            r#"["a.js","b/c.ts"]"#,
        );
        check(
            &["a.js", "with space.md", "q\"uote"],
            ListFormat::Csv,
            r#"a.js,"with space.md","q""uote""#,
        );
        check(&["a,b"], ListFormat::Csv, r#""a,b""#);
        // paths-filter left this unquoted: one of its lines is safe.
        check(&["a,b\nc"], ListFormat::Csv, "\"a,b\nc\"");
        check(&["file"], ListFormat::Shell, "file");
        check(&["file with space"], ListFormat::Shell, "'file with space'");
        check(
            &["file'with quote"],
            ListFormat::Shell,
            r"'file'\''with quote'",
        );
        check(
            &["x\n$(touch PWNED)"],
            ListFormat::Shell,
            "'x\n$(touch PWNED)'",
        );
        check(&["a b", "c"], ListFormat::Escape, "a\\ b c");
        check(&["$(x)"], ListFormat::Escape, "\\$\\(x\\)");
        check(&["a\nb"], ListFormat::Escape, "a'\n'b");
        check(&[], ListFormat::Json, "[]");
        assert_eq!(render(&[b"a"], ListFormat::None), None);
    }

    /// `shell` and `escape` lists, evaluated by a real `sh`, give back each
    /// path's exact bytes (newlines, quotes, `$(…)`, backslashes, bytes
    /// that are not UTF-8) and run nothing.
    #[test]
    fn shell_and_escape_lists_round_trip_through_sh() {
        let paths: Vec<&[u8]> = vec![
            b"plain.rs",
            b"x\n$(touch PWNED)",
            b"it's \"quoted\"",
            b"`touch PWNED`",
            b"back\\slash\\",
            b"bad\xff\xfe.txt",
            b"\n",
            b"tab\there",
            b"-n",
        ];
        let dir = tempfile::tempdir().unwrap();
        for format in [ListFormat::Shell, ListFormat::Escape] {
            let mut script = b"printf '%s\\0' ".to_vec();
            script.extend(render(&paths, format).unwrap());
            let script_path = dir.path().join("script.sh");
            fs_err::write(&script_path, &script).unwrap();
            let out = std::process::Command::new("sh")
                .arg(&script_path)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{format:?}: {out:?}");
            let printed: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
            assert_eq!(&printed[..paths.len()], &paths[..], "{format:?}");
            assert!(
                !dir.path().join("PWNED").exists(),
                "{format:?} ran a command"
            );
        }
    }
}
