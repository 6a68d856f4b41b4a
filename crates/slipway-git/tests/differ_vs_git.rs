//! Differential test of the hand-written tree differ (`changes::Differ`,
//! which parses raw tree objects itself for speed) against its oracle,
//! `git diff --no-renames --name-status -z`, on generated histories: added,
//! modified and deleted files, mode changes, file <-> symlink, file <->
//! directory, submodules (gitlinks) added, moved forward and removed, moves
//! (a deletion and an addition without rename detection), and names git
//! sorts in surprising ways (`a`, `a.b`, `a/`, `a-b`, spaces, quotes, a
//! newline, non-ASCII). Both answers must agree exactly, order included.

use std::path::Path;
use std::str::FromStr as _;

use slipway_git::Sha;
use slipway_git::changes::{ChangeStatus, DiffOptions, Differ};
use slipway_testbed::git::GitRepo;

/// Names the generator picks from: siblings whose order differs between a
/// plain byte sort and git's tree order (`a` as a directory sorts as `a/`).
const PATHS: &[&str] = &[
    "a",
    "a.b",
    "a-b",
    "a/x",
    "a/y/z",
    "a b",
    "b/a",
    "b/a.b/c",
    "b/a/c",
    "q\"uote",
    "new\nline",
    "\u{e4}/\u{f6}",
    "deep/er/than/that",
    "sub",
    "b/sub",
];

const CONTENTS: &[&str] = &["one\n", "two\n", "three\n", ""];

/// Removes whatever stands at `path` or at any of its ancestors that is not
/// a directory, so something else can be written there.
fn clear(root: &Path, path: &str) {
    let mut ancestor = root.to_path_buf();
    for part in Path::new(path).iter() {
        ancestor.push(part);
        match fs_err::symlink_metadata(&ancestor) {
            Ok(meta) if meta.is_dir() && ancestor != root.join(path) => {}
            Ok(meta) if meta.is_dir() => {
                fs_err::remove_dir_all(&ancestor).expect("remove a directory");
                return;
            }
            Ok(_) => {
                fs_err::remove_file(&ancestor).expect("remove a file");
                return;
            }
            Err(_) => return,
        }
    }
}

/// One random change to the work tree.
fn mutate(repo: &GitRepo, rng: &mut fastrand::Rng) {
    let root = repo.path();
    let path = PATHS[rng.usize(..PATHS.len())];
    let full = root.join(path);
    match rng.u8(..7) {
        // Write a file (replacing a symlink, a directory or a submodule).
        0..=2 => {
            let is_file = fs_err::symlink_metadata(&full).is_ok_and(|m| m.is_file());
            if !is_file {
                clear(root, path);
            }
            repo.write(path, CONTENTS[rng.usize(..CONTENTS.len())]);
        }
        // Flip the executable bit of a file.
        3 => {
            if let Ok(meta) = fs_err::symlink_metadata(&full)
                && meta.is_file()
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = meta.permissions().mode() ^ 0o111;
                fs_err::set_permissions(&full, std::fs::Permissions::from_mode(mode))
                    .expect("chmod");
            }
        }
        // A symlink (replacing whatever is there).
        4 => {
            clear(root, path);
            if let Some(parent) = full.parent() {
                fs_err::create_dir_all(parent).expect("create the parent directory");
            }
            let target = ["a", "../x", "nowhere"][rng.usize(..3)];
            fs_err::os::unix::fs::symlink(target, &full).expect("create a symlink");
        }
        // Delete.
        5 => clear(root, path),
        // A submodule: a nested repository, added as a gitlink, or moved to
        // a new commit if it is already there.
        _ => {
            if !full.join(".git").is_dir() {
                clear(root, path);
                fs_err::create_dir_all(&full).expect("create the submodule directory");
                nested_git(&full, &["init", "--quiet"]);
            }
            let marker = full.join("file");
            fs_err::write(&marker, rng.u32(..).to_string()).expect("write in the submodule");
            nested_git(&full, &["add", "-A"]);
            nested_git(&full, &["commit", "--quiet", "-m", "sub"]);
        }
    }
}

fn nested_git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run git");
    assert!(status.success(), "git {args:?} in {}", dir.display());
}

/// `git diff --no-renames --name-status -z base head` as (letter, path),
/// with `T` (a type change) read as `M`, as the differ reports it.
fn oracle(repo: &GitRepo, base: &str, head: &str) -> Vec<(char, String)> {
    let out = repo.git(&["diff", "--no-renames", "--name-status", "-z", base, head]);
    let mut fields = out.split('\0').filter(|field| !field.is_empty());
    let mut files = Vec::new();
    while let (Some(status), Some(path)) = (fields.next(), fields.next()) {
        let letter = match status.chars().next() {
            Some('T') => 'M',
            Some(letter) => letter,
            None => panic!("an empty status in {out:?}"),
        };
        files.push((letter, path.to_owned()));
    }
    files
}

fn ours(differ: &Differ, base: &str, head: &str) -> Vec<(char, String)> {
    let base = Sha::from_str(base).expect("a sha");
    let head = Sha::from_str(head).expect("a sha");
    differ
        .between(&base, &head, DiffOptions::default())
        .expect("the differ answers")
        .into_iter()
        .map(|file| {
            let letter = match file.status {
                ChangeStatus::Added => 'A',
                ChangeStatus::Deleted => 'D',
                ChangeStatus::Modified => 'M',
                other => panic!("no rename detection, yet `{other}`"),
            };
            (letter, file.path)
        })
        .collect()
}

#[test]
fn the_tree_differ_agrees_with_git_diff_on_generated_histories() {
    let mut compared = 0;
    let mut changed = 0;
    for seed in 0..16_u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let repo = GitRepo::new();
        let mut commits = Vec::new();
        for _ in 0..6 {
            for _ in 0..rng.usize(1..8) {
                mutate(&repo, &mut rng);
            }
            commits.push(repo.commit("step"));
        }
        let differ = Differ::open(repo.path()).expect("open the repository");
        for base in &commits {
            for head in &commits {
                let expected = oracle(&repo, base, head);
                assert_eq!(
                    ours(&differ, base, head),
                    expected,
                    "seed {seed}: diff {base}..{head}\nbase:\n{}\nhead:\n{}",
                    repo.git(&["ls-tree", "-r", "-t", base]),
                    repo.git(&["ls-tree", "-r", "-t", head]),
                );
                compared += 1;
                changed += usize::from(!expected.is_empty());
            }
        }
    }
    // The generator must produce real differences, or agreement means nothing.
    assert!(
        changed * 2 > compared,
        "{changed} of {compared} diffs were non-empty"
    );
}
