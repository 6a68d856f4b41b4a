//! `install-hook`: Slipway's block in `.git/hooks/pre-push`, between marker
//! comments, so a re-install replaces it and the rest of an existing hook
//! is kept.
//!
//! The block reads the refs git passes on stdin (`<local ref> <local sha>
//! <remote ref> <remote sha>` per line), checks each pushed commit, then
//! hands the same lines to whatever follows in the hook, so it chains with
//! an existing hook that reads them too.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use slipway_core::cli::UsageError;
use slipway_core::output::shell_quote;

use crate::cli::InstallHookArgs;
use crate::report::HookReport;

/// The first line of Slipway's block.
pub(crate) const BEGIN: &str = "# >>> slipway image-stale-check >>>";
/// The last line of Slipway's block.
pub(crate) const END: &str = "# <<< slipway image-stale-check <<<";

/// Installs (or updates) the hook of the repository around `cwd`.
pub(crate) fn install(args: &InstallHookArgs, cwd: &Path) -> anyhow::Result<HookReport> {
    let path = hook_path(cwd)?;
    let binary = std::env::current_exe().context("cannot find this program's own path")?;
    let block = block(
        &binary.to_string_lossy(),
        args.strict,
        args.tag.as_ref().map(|t| t.as_str()),
    );
    let existing = match slipway_core::input::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error).context("cannot read the existing pre-push hook"),
    };
    let (text, chained) = merge(existing.as_deref(), &block)
        .map_err(|message| UsageError::new(format!("`{}`: {message}", path.display())))?;
    let action = match (&existing, args.dry_run) {
        (_, true) => "would_write",
        (Some(old), false) if *old == text => "unchanged",
        (Some(_), false) => "updated",
        (None, false) => "installed",
    };
    if !args.dry_run && action != "unchanged" {
        write_executable(&path, &text)?;
    }
    Ok(HookReport {
        path,
        action: action.to_owned(),
        chained,
        script: args.dry_run.then_some(text),
    })
}

/// Where git runs the pre-push hook from: `core.hooksPath` when set, else
/// `<git dir>/hooks`.
fn hook_path(cwd: &Path) -> anyhow::Result<PathBuf> {
    let repo = git2::Repository::discover(cwd).map_err(|e| {
        UsageError::new(format!(
            "`{}` is not inside a git repository: {}",
            cwd.display(),
            e.message()
        ))
    })?;
    let configured = repo
        .config()
        .ok()
        .and_then(|c| c.get_path("core.hooksPath").ok());
    let dir = match configured {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => repo.workdir().unwrap_or_else(|| repo.path()).join(dir),
        None => repo.path().join("hooks"),
    };
    Ok(dir.join("pre-push"))
}

/// Writes `text` to `path` through a temp file, mode 755.
fn write_executable(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a temp file in `{}`", dir.display()))?;
    file.write_all(text.as_bytes())
        .context("cannot write the hook")?;
    fs_err::set_permissions(file.path(), std::fs::Permissions::from_mode(0o755))?;
    file.persist(path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// Slipway's block, running `binary` (or `image-stale-check` from PATH
/// when that file is gone).
pub(crate) fn block(binary: &str, strict: bool, tag: Option<&str>) -> String {
    let mut flags = if strict { " --strict" } else { "" }.to_owned();
    if let Some(tag) = tag {
        // A valid tag is `[A-Za-z0-9_][A-Za-z0-9_.-]*`: nothing to quote.
        flags.push_str(&format!(" --tag {tag}"));
    }
    let binary = shell_quote(binary);
    format!(
        r#"{BEGIN}
# Written by `image-stale-check install-hook`: run it again to update this
# block, delete the block to remove the check. Warns when published images
# are stale against the pushed commits; exit 1 (only with --strict) refuses.
slipway_refs=$(cat)
slipway_bin={binary}
[ -x "$slipway_bin" ] || slipway_bin=image-stale-check
slipway_status=0
while read -r _ slipway_sha _ _; do
  # A deleted ref arrives as an all-zero sha: nothing to check.
  case "$slipway_sha" in *[!0]*) ;; *) continue ;; esac
  slipway_code=0
  "$slipway_bin" --hook{flags} --rev "$slipway_sha" </dev/null >&2 || slipway_code=$?
  if [ "$slipway_code" -eq 1 ]; then slipway_status=1; fi
done <<SLIPWAY_REFS
$slipway_refs
SLIPWAY_REFS
if [ "$slipway_status" -ne 0 ]; then exit 1; fi
# The rest of the hook reads the same lines from stdin.
exec <<SLIPWAY_REFS
$slipway_refs
SLIPWAY_REFS
{END}
"#
    )
}

/// The hook's text with `block` in place of an earlier Slipway block, or
/// right after the shebang of an existing shell hook (so it reads stdin
/// first), or as a new hook. Returns whether other lines are kept, or why
/// the existing hook cannot take the block.
pub(crate) fn merge(existing: Option<&str>, block: &str) -> Result<(String, bool), String> {
    let Some(existing) = existing.filter(|e| !e.trim().is_empty()) else {
        return Ok((format!("#!/bin/sh\n{block}"), false));
    };
    if let (Some(start), Some(end)) = (existing.find(BEGIN), existing.find(END))
        && start < end
    {
        let after = &existing[end + END.len()..];
        let after = after.strip_prefix('\n').unwrap_or(after);
        let text = format!("{}{block}{after}", &existing[..start]);
        let chained = text.lines().count() > block.lines().count() + 1;
        return Ok((text, chained));
    }
    let (first, rest) = existing.split_once('\n').unwrap_or((existing, ""));
    let Some(interpreter) = first.strip_prefix("#!") else {
        return Err(
            "the existing hook has no `#!` line, so Slipway cannot tell it is a shell script: add `#!/bin/sh` or chain the check yourself"
                .to_owned(),
        );
    };
    let is_shell = interpreter
        .split_whitespace()
        .flat_map(|word| word.rsplit('/').next())
        .any(|name| matches!(name, "sh" | "bash" | "dash" | "ksh" | "zsh"));
    if !is_shell {
        return Err(format!(
            "the existing hook runs `{}`, not a POSIX shell: call `image-stale-check --hook --rev <sha>` from it yourself",
            interpreter.trim()
        ));
    }
    Ok((format!("{first}\n{block}{rest}"), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: &str =
        "# >>> slipway image-stale-check >>>\nX\n# <<< slipway image-stale-check <<<\n";

    #[track_caller]
    fn check(existing: Option<&str>, expected: Result<(&str, bool), &str>) {
        let got = merge(existing, BLOCK);
        let expected = expected
            .map(|(t, c)| (t.to_owned(), c))
            .map_err(str::to_owned);
        assert_eq!(got, expected, "{existing:?}");
    }

    #[test]
    fn merging_into_hooks() {
        check(None, Ok((&format!("#!/bin/sh\n{BLOCK}"), false)));
        check(Some("\n"), Ok((&format!("#!/bin/sh\n{BLOCK}"), false)));
        check(
            Some("#!/bin/sh\necho hi\n"),
            Ok((&format!("#!/bin/sh\n{BLOCK}echo hi\n"), true)),
        );
        check(
            Some("#!/usr/bin/env bash\nx\n"),
            Ok((&format!("#!/usr/bin/env bash\n{BLOCK}x\n"), true)),
        );
        check(
            Some(&format!("#!/bin/sh\n{}", BLOCK.replace('X', "old"))),
            Ok((&format!("#!/bin/sh\n{BLOCK}"), false)),
        );
        check(
            Some(&format!(
                "#!/bin/sh\n{}echo hi\n",
                BLOCK.replace('X', "old")
            )),
            Ok((&format!("#!/bin/sh\n{BLOCK}echo hi\n"), true)),
        );
        check(
            Some("#!/usr/bin/python3\nprint()\n"),
            Err(
                "the existing hook runs `/usr/bin/python3`, not a POSIX shell: call `image-stale-check --hook --rev <sha>` from it yourself",
            ),
        );
        check(
            Some("echo hi\n"),
            Err(
                "the existing hook has no `#!` line, so Slipway cannot tell it is a shell script: add `#!/bin/sh` or chain the check yourself",
            ),
        );
    }

    #[test]
    fn merging_twice_changes_nothing() {
        let (once, _) = merge(Some("#!/bin/sh\necho hi\n"), BLOCK).unwrap();
        let (twice, _) = merge(Some(&once), BLOCK).unwrap();
        assert_eq!(once, twice);
    }

    /// The real block passes shellcheck (a Debian package on CI machines).
    #[test]
    fn the_block_is_shellcheck_clean() {
        let shellcheck = slipway_testbed::require("shellcheck", "shellcheck");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pre-push");
        let (text, _) = merge(
            None,
            &block("/opt/it's here/image-stale-check", true, Some("latest")),
        )
        .unwrap();
        fs_err::write(&path, text).unwrap();
        let output = std::process::Command::new(shellcheck)
            .args(["--shell=sh", "--severity=style"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}
