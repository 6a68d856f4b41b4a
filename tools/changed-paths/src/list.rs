//! The `--list-files` formats of a filter's `_files` output, quoted exactly
//! as dorny/paths-filter quotes them so scripts written for it keep working.

use crate::cli::ListFormat;

/// The characters paths-filter never quotes.
fn is_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || ",._+:@%/-".contains(c)
}

/// paths-filter tests its "only safe characters" regexes with the `m` flag,
/// so a value passes when any one of its lines is made only of them.
fn some_line_is(value: &str, allowed: impl Fn(char) -> bool) -> bool {
    value
        .split(['\n', '\r', '\u{2028}', '\u{2029}'])
        .any(|line| !line.is_empty() && line.chars().all(&allowed))
}

/// The files of one filter in `format`; `None` for [`ListFormat::None`].
pub(crate) fn render(files: &[&str], format: ListFormat) -> Option<String> {
    Some(match format {
        ListFormat::None => return None,
        ListFormat::Json => serde_json::to_string(files).unwrap_or_default(),
        ListFormat::Csv => files
            .iter()
            .map(|f| csv_escape(f))
            .collect::<Vec<_>>()
            .join(","),
        ListFormat::Shell => files
            .iter()
            .map(|f| shell_escape(f))
            .collect::<Vec<_>>()
            .join(" "),
        ListFormat::Escape => files
            .iter()
            .map(|f| backslash_escape(f))
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// Quoted only when a character outside the safe set occurs; `"` doubled.
fn csv_escape(value: &str) -> String {
    if value.is_empty() || some_line_is(value, |c| c != ',' && is_safe(c)) {
        return value.to_owned();
    }
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// As few quotes as possible: safe names as they are, names with `'` and
/// only safe characters or whitespace in double quotes, other names with
/// `'` split around it, the rest in single quotes.
fn shell_escape(value: &str) -> String {
    if value.is_empty() || some_line_is(value, is_safe) {
        return value.to_owned();
    }
    if value.contains('\'') {
        if some_line_is(value, |c| is_safe(c) || c == '\'' || c.is_whitespace()) {
            return format!("\"{value}\"");
        }
        return value
            .split('\'')
            .map(shell_escape)
            .collect::<Vec<_>>()
            .join("\\'");
    }
    format!("'{value}'")
}

/// Every character outside the safe set preceded by `\`.
fn backslash_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if !is_safe(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(files: &[&str], format: ListFormat, expected: &str) {
        assert_eq!(
            render(files, format).as_deref(),
            Some(expected),
            "{files:?} as {format:?}"
        );
    }

    #[test]
    fn formats_quote_like_paths_filter() {
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
        check(&["file"], ListFormat::Shell, "file");
        check(&["file with space"], ListFormat::Shell, "'file with space'");
        check(
            &["file'with quote"],
            ListFormat::Shell,
            "\"file'with quote\"",
        );
        check(
            &["file'with$dollar"],
            ListFormat::Shell,
            "file\\''with$dollar'",
        );
        check(&["a b", "c"], ListFormat::Escape, "a\\ b c");
        check(&["$(x)"], ListFormat::Escape, "\\$\\(x\\)");
        check(&[], ListFormat::Json, "[]");
        assert_eq!(render(&["a"], ListFormat::None), None);
    }
}
