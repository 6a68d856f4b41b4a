//! `slipway install-hooks` (and `cargo xtask install-hooks`): the git hooks a team using Slipway wants.
//!
//! - `pre-push`: image-stale-check's own block, written by
//!   `image-stale-check install-hook` (warns when published images are stale
//!   against the pushed commits; docs/image-stale-check.md).
//! - `commit-msg`: refuses a message that is not a Conventional Commit, as
//!   `img-tag check-commit` judges it (docs/img-tag.md). img-tag has no
//!   installer, so this file writes that small hook.
//!
//! Hooks go where git runs them (`git rev-parse --git-path hooks`, which
//! honours `core.hooksPath`). A hook holding Slipway's block is Slipway's and
//! is updated in place; any other existing hook is refused unless `--force`,
//! which moves it aside (`<hook>.before-slipway`) rather than deleting it.
//! Every hook is checked before any is written.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use slipway_contract::image_stale_check;
use slipway_core::output::shell_quote;
use xshell::{Shell, cmd};

use crate::runner;
use crate::tools::Provide;

/// Flags of `cargo xtask install-hooks`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The git repository to install the hooks in
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Replace hooks Slipway did not write; each is kept as `<hook>.before-slipway`
    #[arg(long)]
    pub force: bool,
}

/// The first line of image-stale-check's block in `pre-push`
/// (docs/image-stale-check.md).
const PRE_PUSH_MARKER: &str = "# >>> slipway image-stale-check >>>";
/// The first line of the `commit-msg` block this file writes.
const COMMIT_MSG_MARKER: &str = "# >>> slipway commit-msg >>>";
/// The suffix a replaced foreign hook is kept under.
const BACKUP_SUFFIX: &str = ".before-slipway";

/// `cargo xtask install-hooks`.
pub fn run(sh: &Shell, provide: Provide<'_>, args: &Args) -> anyhow::Result<()> {
    let repo = sh.current_dir().join(&args.repo);
    if !repo.is_dir() {
        bail!("`--repo {}` is not a directory", args.repo.display());
    }
    let tools = provide(sh)?;
    tools.require(&["image-stale-check", "img-tag"])?;
    let _dir = sh.push_dir(&repo);
    let pre_push = hook_path(sh, &repo, "pre-push")?;
    let commit_msg = hook_path(sh, &repo, "commit-msg")?;

    // Plan: refuse before writing anything.
    let mut foreign = Vec::new();
    for (path, marker) in [
        (&pre_push, PRE_PUSH_MARKER),
        (&commit_msg, COMMIT_MSG_MARKER),
    ] {
        if is_foreign(path, marker)? {
            foreign.push(path.clone());
        }
    }
    if !foreign.is_empty() && !args.force {
        let names: Vec<String> = foreign
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect();
        bail!(
            "{} already exist{} and Slipway did not write {}: nothing was changed; rerun with `--force` to move {} aside (as `<hook>{BACKUP_SUFFIX}`) and install Slipway's hooks, or call `image-stale-check --hook` and `img-tag check-commit - <\"$1\"` from your own hooks",
            names.join(" and "),
            if names.len() == 1 { "s" } else { "" },
            if names.len() == 1 { "it" } else { "them" },
            if names.len() == 1 { "it" } else { "them" },
        );
    }
    for path in &foreign {
        let backup = PathBuf::from(format!("{}{BACKUP_SUFFIX}", path.display()));
        if backup.exists() {
            bail!(
                "cannot move `{}` aside: `{}` exists already (from an earlier `--force`); move one of them yourself",
                path.display(),
                backup.display()
            );
        }
        fs_err::rename(path, &backup)?;
        eprintln!("moved `{}` to `{}`", path.display(), backup.display());
    }

    let stale_check = tools.path("image-stale-check");
    let text = cmd!(sh, "{stale_check} install-hook --format json")
        .read()
        .context("`image-stale-check install-hook` failed")?;
    let report: image_stale_check::Report =
        runner::parse_report(text.as_bytes(), "image-stale-check install-hook")?;
    let image_stale_check::Report::Hook(hook) = report else {
        bail!("`image-stale-check install-hook` printed verdicts instead of what it installed");
    };
    let reported = repo.join(&hook.path);
    if fs_err::canonicalize(&reported).ok() != fs_err::canonicalize(&pre_push).ok() {
        bail!(
            "image-stale-check wrote `{}`, but git runs `{}`: check `core.hooksPath`",
            reported.display(),
            pre_push.display()
        );
    }
    println!("{} {}", hook.action, pre_push.display());

    let img_tag = tools.path("img-tag");
    let script = commit_msg_hook(&img_tag.to_string_lossy());
    let action = match read_hook(&commit_msg)? {
        Some(old) if old == script => "unchanged",
        Some(_) => "updated",
        None => "installed",
    };
    if action != "unchanged" {
        write_executable(&commit_msg, &script)?;
    }
    println!("{action} {}", commit_msg.display());
    Ok(())
}

/// Where git runs hook `name` from, for the repository at `repo`.
fn hook_path(sh: &Shell, repo: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let relative = format!("hooks/{name}");
    let path = cmd!(sh, "git rev-parse --git-path {relative}")
        .quiet()
        .read()
        .with_context(|| format!("`{}` is not inside a git repository", repo.display()))?;
    Ok(repo.join(path))
}

/// Whether `path` holds a hook Slipway did not write (an empty file does not count).
fn is_foreign(path: &Path, marker: &str) -> anyhow::Result<bool> {
    Ok(read_hook(path)?.is_some_and(|text| !text.trim().is_empty() && !text.contains(marker)))
}

fn read_hook(path: &Path) -> anyhow::Result<Option<String>> {
    match fs_err::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).context("cannot read the existing hook"),
    }
}

/// The `commit-msg` hook running `img_tag` (or `img-tag` from PATH when that
/// file is gone).
fn commit_msg_hook(img_tag: &str) -> String {
    let binary = shell_quote(img_tag);
    format!(
        r#"#!/bin/sh
{COMMIT_MSG_MARKER}
# Written by `slipway install-hooks` (or `cargo xtask install-hooks`): run it again to update this hook.
# Refuses a commit whose message is not a Conventional Commit
# (`img-tag check-commit`, docs/img-tag.md); `git commit --no-verify` skips it.
slipway_bin={binary}
[ -x "$slipway_bin" ] || slipway_bin=img-tag
if ! command -v "$slipway_bin" >/dev/null 2>&1; then
  echo "commit-msg: img-tag is not installed; the message was not checked (see docs/install.md)" >&2
  exit 0
fi
# Messages git writes itself are not Conventional Commits; let them through.
case "$(head -n 1 "$1")" in
  "Merge "* | "Revert \""* | "fixup! "* | "squash! "* | "amend! "*) exit 0 ;;
esac
# Below git's scissors line (`git commit -v`) is the diff, not the message.
sed -e '/^# -* >8 -*$/,$d' "$1" | "$slipway_bin" check-commit - >&2
# <<< slipway commit-msg <<<
"#
    )
}

/// Writes `text` to `path` through a temp file, mode 755.
fn write_executable(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir)?;
    let temp = dir.join(format!(
        ".{}.slipway-tmp",
        path.file_name()
            .map_or("hook".into(), |n| n.to_string_lossy())
    ));
    fs_err::write(&temp, text)?;
    fs_err::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))?;
    fs_err::rename(&temp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a hook file is one Slipway may not overwrite without `--force`.
    #[track_caller]
    fn check(text: Option<&str>, expected: bool) {
        let dir = std::env::temp_dir().join(format!(
            "slipway-foreign-{}-{}",
            std::process::id(),
            expected
        ));
        fs_err::create_dir_all(&dir).unwrap();
        let path = dir.join("commit-msg");
        let _ = fs_err::remove_file(&path);
        if let Some(text) = text {
            fs_err::write(&path, text).unwrap();
        }
        let found = is_foreign(&path, COMMIT_MSG_MARKER).unwrap();
        let _ = fs_err::remove_dir_all(&dir);
        assert_eq!(found, expected, "{text:?}");
    }

    #[test]
    fn only_hooks_slipway_did_not_write_are_foreign() {
        check(None, false);
        check(Some(" \n"), false);
        check(Some(&commit_msg_hook("/x/img-tag")), false);
        check(Some("#!/bin/sh\nexec commitlint --edit \"$1\"\n"), true);
        check(Some(&format!("#!/bin/sh\n{PRE_PUSH_MARKER}\n")), true);
    }

    /// The real hook passes shellcheck.
    #[test]
    fn the_commit_msg_hook_is_shellcheck_clean() {
        let shellcheck = slipway_testbed::require("shellcheck", "shellcheck");
        let dir = std::env::temp_dir().join(format!("slipway-hooks-{}", std::process::id()));
        fs_err::create_dir_all(&dir).unwrap();
        let path = dir.join("commit-msg");
        fs_err::write(&path, commit_msg_hook("/opt/it's here/img-tag")).unwrap();
        let output = std::process::Command::new(shellcheck)
            .args(["--shell=sh", "--severity=style"])
            .arg(&path)
            .output()
            .unwrap();
        let _ = fs_err::remove_dir_all(&dir);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}
