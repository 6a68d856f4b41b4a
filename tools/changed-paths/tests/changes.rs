//! The real `changed-paths` binary on git histories built in each test:
//! merges, renames, deletions, new branches, force-pushes, shallow clones,
//! the working tree and piped file lists, with exact outputs.

use std::path::Path;

use slipway_testbed::cmd::Cmd;
use slipway_testbed::git::GitRepo;

const BIN: &str = env!("CARGO_BIN_EXE_changed-paths");

/// What a run printed and returned.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary in `dir` with `args` through the test bed's builder (a
/// cleared environment: no CI, no colour) plus `env`, and `stdin` piped in.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Run {
    let output = Cmd::new(BIN)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "error")
        .envs(env.iter().copied())
        .stdin(stdin)
        .run();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: output.stdout_str(),
        stderr: output.stderr_str(),
    }
}

fn run(repo: &GitRepo, args: &[&str]) -> Run {
    run_in(repo.path(), args, &[], "")
}

#[track_caller]
fn check(run: Run, code: i32, stdout: &str) {
    assert_eq!(run.stdout, stdout, "stdout; stderr was:\n{}", run.stderr);
    assert_eq!(run.code, code, "exit code; stderr was:\n{}", run.stderr);
}

const CONFIG: &str = r#"[project]
registry = "127.0.0.1:5000/demo"

[rebuild_all]
paths = ["shared/**"]

[images.base]
paths = ["base/**"]

[images.app]
paths = ["app/**", "!app/**/*.md"]
depends_on = ["base"]

[images.worker]
context = "worker"
"#;

/// A repository with three images (`worker` without `paths`: derived from
/// its Dockerfile) and a first commit.
fn project() -> (GitRepo, String) {
    let repo = GitRepo::new();
    repo.write("slipway.toml", CONFIG);
    repo.write("base/Dockerfile", "FROM scratch\n");
    repo.write("app/main.js", "1\n");
    repo.write("app/README.md", "app\n");
    repo.write(
        "worker/Dockerfile",
        "FROM x\nCOPY --from=build /out /out\nCOPY src/ \\\n  requirements.txt /w/\n",
    );
    repo.write("worker/.dockerignore", "**/*.md\n");
    repo.write("worker/src/job.py", "1\n");
    repo.write("worker/requirements.txt", "1\n");
    repo.write("docs/guide.md", "1\n");
    let first = repo.commit("first");
    (repo, first)
}

#[test]
fn renames_deletions_and_a_merge() {
    let (repo, first) = project();
    repo.checkout_new("feature");
    repo.rename("app/main.js", "app/server.js");
    repo.remove("docs/guide.md");
    repo.write("worker/src/NOTES.md", "ignored by .dockerignore\n");
    repo.commit("move things");
    repo.checkout("main");
    repo.write("worker/requirements.txt", "2\n");
    repo.commit("bump");
    repo.merge("feature", "merge feature");
    check(
        run(&repo, &["--base", &first, "--renames"]),
        0,
        &format!(
            "changed files: 4, {} -> {} (`{first}`)
app: true (1 file)
  renamed app/server.js
base: false (0 files)
worker: true (1 file)
  modified worker/requirements.txt
rebuild_all: false (0 files)
targets: [\"app\",\"worker\"]
",
            &first[..7],
            &repo.head()[..7]
        ),
    );
    let moved = run(&repo, &["--base", &first, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&moved.stdout).expect("json");
    assert_eq!(
        json["files"],
        serde_json::json!([
            {"path": "app/main.js", "status": "deleted"},
            {"path": "app/server.js", "status": "added"},
            {"path": "docs/guide.md", "status": "deleted"},
            {"path": "worker/requirements.txt", "status": "modified"},
            {"path": "worker/src/NOTES.md", "status": "added"},
        ])
    );
    assert_eq!(
        json["filters"]["app"]["files"],
        serde_json::json!(["app/main.js", "app/server.js"])
    );
    assert_eq!(
        json["filters"]["worker"]["files"],
        serde_json::json!(["worker/requirements.txt"])
    );
}

#[test]
fn rebuild_all_and_depends_on_select_images() {
    let (repo, first) = project();
    repo.write("base/Dockerfile", "FROM scratch\nLABEL x=1\n");
    repo.commit("base");
    let out = run(
        &repo,
        &[
            "--base",
            &first,
            "--format",
            "shell",
            "--list-files",
            "none",
        ],
    );
    check(
        out,
        0,
        "export app=false\nexport app_count=0\nexport base=true\nexport base_count=1\nexport worker=false\nexport worker_count=0\nexport rebuild_all=false\nexport rebuild_all_count=0\nexport changes='[\"base\"]'\nexport targets='[\"base\",\"app\"]'\n",
    );
    let second = repo.head();
    repo.write("shared/lib.txt", "1\n");
    repo.commit("shared");
    let out = run(
        &repo,
        &[
            "--base",
            &second,
            "--format",
            "shell",
            "--list-files",
            "csv",
        ],
    );
    assert!(
        out.stdout.ends_with("export rebuild_all_files=shared/lib.txt\nexport changes='[\"rebuild_all\"]'\nexport targets='[\"base\",\"app\",\"worker\"]'\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_image_out_of_the_default_build_is_never_a_target() {
    let (repo, first) = project();
    // `app` depends on base and its paths change too; `default = false`
    // keeps it out of every automatic selection, its filter still reports.
    repo.write(
        "slipway.toml",
        CONFIG.replace(
            "depends_on = [\"base\"]\n",
            "depends_on = [\"base\"]\ndefault = false\n",
        ),
    );
    repo.write("base/Dockerfile", "FROM scratch\nLABEL x=1\n");
    repo.write("app/main.js", "2\n");
    repo.write("shared/lib.txt", "1\n");
    repo.commit("everything");
    let out = run(
        &repo,
        &[
            "--base",
            &first,
            "--format",
            "shell",
            "--list-files",
            "none",
        ],
    );
    assert!(
        out.stdout.contains("export app=true\n")
            && out
                .stdout
                .ends_with("export targets='[\"base\",\"worker\"]'\n"),
        "{}",
        out.stdout
    );
}

/// A GitHub Actions push event with `payload` as its event file.
fn push_env(dir: &Path, payload: &serde_json::Value, git_ref: &str) -> Vec<(String, String)> {
    let path = dir.join("event.json");
    fs_err::write(&path, payload.to_string()).expect("event file");
    vec![
        ("GITHUB_ACTIONS".to_owned(), "true".to_owned()),
        ("GITHUB_EVENT_NAME".to_owned(), "push".to_owned()),
        ("GITHUB_EVENT_PATH".to_owned(), path.display().to_string()),
        ("GITHUB_REF".to_owned(), git_ref.to_owned()),
    ]
}

fn run_event(repo: &GitRepo, env: &[(String, String)], args: &[&str]) -> Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_in(repo.path(), args, &env, "")
}

const NULL_SHA: &str = "0000000000000000000000000000000000000000";

#[test]
fn push_events_new_branch_force_push_and_first_push() {
    let (repo, first) = project();
    let events = tempfile::tempdir().expect("temp dir");
    repo.checkout_new("feature");
    repo.write("app/a.js", "1\n");
    let a = repo.commit("a");
    repo.write("worker/src/b.py", "1\n");
    let b = repo.commit("b");

    // A new branch: compared with the default branch's merge base.
    let payload = serde_json::json!({"before": NULL_SHA, "after": b, "repository": {"default_branch": "main"}});
    let env = push_env(events.path(), &payload, "refs/heads/feature");
    let out = run_event(&repo, &env, &["--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["base"], serde_json::json!(first));
    assert_eq!(json["changes"], serde_json::json!(["app", "worker"]));
    // The image called `base` keeps its own entry beside the range's `base`.
    assert_eq!(json["filters"]["base"]["changed"], serde_json::json!(false));

    // An ordinary push: before..after.
    let payload =
        serde_json::json!({"before": a, "after": b, "repository": {"default_branch": "main"}});
    let env = push_env(events.path(), &payload, "refs/heads/feature");
    let json: serde_json::Value =
        serde_json::from_str(&run_event(&repo, &env, &["--format", "json"]).stdout).expect("json");
    assert_eq!(json["changes"], serde_json::json!(["worker"]));

    // A force-push replacing `b` with `c`: compared with the replaced commit,
    // so the dropped change counts too.
    repo.git(&["reset", "--quiet", "--hard", &a]);
    repo.write("base/x", "1\n");
    let c = repo.commit("c");
    let payload = serde_json::json!({"before": b, "after": c, "forced": true, "repository": {"default_branch": "main"}});
    let env = push_env(events.path(), &payload, "refs/heads/feature");
    let json: serde_json::Value =
        serde_json::from_str(&run_event(&repo, &env, &["--format", "json"]).stdout).expect("json");
    assert_eq!(json["changes"], serde_json::json!(["base", "worker"]));
    assert_eq!(
        json["targets"],
        serde_json::json!(["base", "app", "worker"])
    );

    // The first push of the default branch: every file is added.
    repo.checkout("main");
    let payload = serde_json::json!({"before": NULL_SHA, "after": first, "repository": {"default_branch": "main"}});
    let env = push_env(events.path(), &payload, "refs/heads/main");
    let json: serde_json::Value =
        serde_json::from_str(&run_event(&repo, &env, &["--format", "json"]).stdout).expect("json");
    assert_eq!(json["base"], serde_json::Value::Null);
    assert_eq!(json["files"].as_array().map(Vec::len), Some(9));
}

#[test]
fn a_pull_request_compares_with_the_merge_base() {
    let (repo, _) = project();
    repo.checkout_new("topic");
    repo.write("app/pr.js", "1\n");
    let head = repo.commit("pr");
    repo.checkout("main");
    repo.write("base/later", "1\n");
    let base = repo.commit("main moves on");
    let events = tempfile::tempdir().expect("temp dir");
    let path = events.path().join("event.json");
    let payload = serde_json::json!({"pull_request": {"number": 7, "base": {"sha": base, "ref": "main"}, "head": {"sha": head, "ref": "topic"}}});
    fs_err::write(&path, payload.to_string()).expect("event");
    let env = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_EVENT_NAME", "pull_request"),
        ("GITHUB_EVENT_PATH", path.to_str().expect("utf-8")),
        ("GITHUB_REF", "refs/pull/7/merge"),
    ];
    let out = run_in(
        repo.path(),
        &["--format", "json", "--list-files", "none"],
        &env,
        "",
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        json["changes"],
        serde_json::json!(["app"]),
        "{}",
        out.stderr
    );
    assert_eq!(
        json["files"],
        serde_json::json!([{"path": "app/pr.js", "status": "added"}])
    );
}

#[test]
fn a_shallow_clone_missing_the_base_says_how_to_fetch_it() {
    let (repo, first) = project();
    repo.write("app/a.js", "1\n");
    let second = repo.commit("second");
    let clone = repo.clone_shallow(1);
    let out = run(&clone, &["--base", &first]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let events = tempfile::tempdir().expect("temp dir");
    let payload = serde_json::json!({"before": first, "after": second, "repository": {"default_branch": "main"}});
    let env = push_env(events.path(), &payload, "refs/heads/main");
    let out = run_event(&clone, &env, &[]);
    assert_eq!(out.code, 3);
    assert_eq!(
        out.stderr.lines().next(),
        Some(format!("error: base `{}` is not in this shallow clone; fetch more history (actions/checkout `fetch-depth: 0`, or `git fetch --deepen=<n>`)", &first[..7]).as_str())
    );
}

#[test]
fn the_working_tree_counts_staged_unstaged_and_untracked_files() {
    let (repo, _) = project();
    repo.write("app/main.js", "changed\n");
    repo.write("base/new", "1\n");
    repo.git(&["add", "base/new"]);
    repo.write("worker/src/untracked.py", "1\n");
    repo.remove("docs/guide.md");
    let out = run(
        &repo,
        &[
            "--working-tree",
            "--format",
            "shell",
            "--list-files",
            "shell",
        ],
    );
    assert!(out.stdout.starts_with("export app=true\nexport app_count=1\nexport app_files=app/main.js\nexport base=true\nexport base_count=1\nexport base_files=base/new\nexport worker=true\nexport worker_count=1\nexport worker_files=worker/src/untracked.py\n"), "{}", out.stdout);
}

#[test]
fn files_from_stdin_with_paths_filter_yaml() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs_err::write(
        dir.path().join("filters.yml"),
        "src:\n  - 'src/**'\n  - '!**/*.md'\nadded:\n  - added: '**'\nchanges:\n  - 'x/**'\n",
    )
    .expect("filters");
    // Under `some`, `!**/*.md` is an alternative: it selects every non-Markdown file.
    let list = "M\tsrc/a.rs\nA\tdocs/new file.md\nR100\told.txt\tnew.txt\nplain/path\n";
    let out = run_in(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--filters",
            "filters.yml",
            "--format",
            "json",
            "--list-files",
            "csv",
        ],
        &[],
        list,
    );
    check(
        out,
        0,
        r#"{
  "filters": {
    "src": {
      "changed": true,
      "count": 3,
      "files": [
        "src/a.rs",
        "new.txt",
        "plain/path"
      ]
    },
    "added": {
      "changed": true,
      "count": 1,
      "files": [
        "docs/new file.md"
      ]
    },
    "changes": {
      "changed": false,
      "count": 0,
      "files": []
    }
  },
  "changes": [
    "src",
    "added"
  ],
  "targets": [
    "src",
    "added"
  ],
  "base": null,
  "head": null,
  "files": [
    {
      "path": "src/a.rs",
      "status": "modified"
    },
    {
      "path": "docs/new file.md",
      "status": "added"
    },
    {
      "path": "new.txt",
      "status": "renamed",
      "from": "old.txt"
    },
    {
      "path": "plain/path",
      "status": "modified"
    }
  ]
}
"#,
    );
    let output = dir.path().join("github_output");
    let out = run_in(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--filters",
            "filters.yml",
            "--format",
            "github",
            "--list-files",
            "csv",
            "--predicate-quantifier",
            "every",
        ],
        &[("GITHUB_OUTPUT", output.to_str().expect("utf-8"))],
        list,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        fs_err::read_to_string(&output).expect("outputs"),
        "src=true\nsrc_count=1\nsrc_files=src/a.rs\nadded=true\nadded_count=1\nadded_files=\"docs/new file.md\"\nchanges=false\nchanges_count=0\nchanges_files=\ntargets=[\"src\",\"added\"]\n"
    );
}

#[test]
fn exit_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let none = run_in(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--filter",
            "app=app/**",
            "--exit-code",
            "--format",
            "json",
        ],
        &[],
        "docs/a.md\n",
    );
    assert_eq!(none.code, 1, "{}", none.stderr);
    let some = run_in(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--filter",
            "app=app/**",
            "--exit-code",
            "--format",
            "json",
        ],
        &[],
        "app/a.md\n",
    );
    assert_eq!(some.code, 0);
    fs_err::write(dir.path().join("bad.yml"), "src:\n  - 42\n").expect("filters");
    let bad = run_in(
        dir.path(),
        &["--files-from", "-", "--filters", "bad.yml"],
        &[],
        "a\n",
    );
    assert_eq!(
        (bad.code, bad.stderr.as_str()),
        (
            2,
            "error: bad.yml:2:5: in filter `src`, expected a pattern string, found `42`: quote it\n"
        )
    );
    // More bad input, each with its message: tests/bad_input.rs.
    let not_a_repo = run_in(dir.path(), &["--base", "HEAD"], &[], "");
    assert_eq!(not_a_repo.code, 3, "{}", not_a_repo.stderr);
}

#[test]
fn explain_says_which_pattern_matched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_in(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--filter",
            "app=app/**",
            "--filter",
            "app=!app/**/*.md",
            "--filter",
            "web=web/**",
            "--explain",
        ],
        &[],
        "app/a.rs\napp/b.md\nother\n",
    );
    check(
        out,
        0,
        "changed files: 3, files from stdin
app: true (1 file)
  modified app/a.rs
web: false (0 files)
targets: [\"app\"]
app/a.rs [modified]
  app: matched by `app/**` (--filter)
app/b.md [modified]
  app: `app/**` matches but `!app/**/*.md` excludes it
other [modified]
  no pattern of any filter matches
",
    );
}

#[test]
fn help_is_the_manual() {
    let out = run_in(Path::new("."), &["--help"], &[], "");
    assert_eq!(out.code, 0);
    insta::assert_snapshot!("help", out.stdout);
}

/// GitHub caps one step output at 1 MiB; `all_files` of 20 000 long paths
/// (5.2 MB in the report that found it) was written whole. Now a value
/// over the limit goes to a file next to `$GITHUB_OUTPUT`, whose path is the
/// output `<name>_path`, with a warning; the other outputs stay as they are.
#[test]
fn an_output_over_github_s_limit_is_written_to_a_file_and_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let github_output = dir.path().join("github_output");
    let list: String = (0..20_000)
        .map(|i| format!("M\tservices/some-long-directory-name/module-{i:05}/src/file.rs\n"))
        .collect();
    let run = run_in(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--filter",
            "all=**",
            "--format",
            "github",
        ],
        &[
            (
                "GITHUB_OUTPUT",
                github_output.to_str().expect("UTF-8 temp path"),
            ),
            ("RUST_LOG", "warn"),
        ],
        &list,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let outputs = fs_err::read_to_string(&github_output).expect("outputs written");
    assert!(outputs.len() < 4096, "{} bytes written", outputs.len());
    assert!(outputs.contains("all=true\nall_count=20000\n"), "{outputs}");
    let path = outputs
        .lines()
        .find_map(|line| line.strip_prefix("all_files_path="))
        .unwrap_or_else(|| panic!("no all_files_path in {outputs}"));
    let files: Vec<String> =
        serde_json::from_str(&fs_err::read_to_string(path).expect("the list file")).unwrap();
    assert_eq!(files.len(), 20_000);
    assert_eq!(
        files[7],
        "services/some-long-directory-name/module-00007/src/file.rs"
    );
    assert!(
        run.stderr.contains("output `all_files` is ")
            && run.stderr.contains(
                " bytes, above GitHub's limit of 1048576 bytes per output: it is written to `"
            ),
        "{}",
        run.stderr
    );
}

/// A tag push in a shallow clone: the previous version tag (or HEAD's
/// parent) is beyond the fetched history. It was taken for the first
/// version tag, every file "added"; now it is refused with the fix.
#[test]
fn a_tag_push_in_a_shallow_clone_is_refused_with_the_fix() {
    let (repo, _first) = project();
    repo.tag("v1.0.0");
    repo.write("app/a.js", "1\n");
    repo.commit("feat: a");
    repo.write("app/b.js", "1\n");
    let head = repo.commit("feat: b");
    repo.tag("v1.1.0");
    let events = tempfile::tempdir().expect("temp dir");
    let payload = serde_json::json!({"before": NULL_SHA, "after": head, "repository": {"default_branch": "main"}});
    let env = push_env(events.path(), &payload, "refs/tags/v1.1.0");
    for depth in [1, 2] {
        let out = run_event(&repo.clone_shallow(depth), &env, &[]);
        assert_eq!(out.code, 3, "depth {depth}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "depth {depth}");
        assert!(
            out.stderr.contains("cannot find the last version tag")
                && out.stderr.contains(
                    "is a shallow clone and the history it needs is not fetched; fetch it with \
                 `git fetch --unshallow` (or `--deepen=<n>`), or set `fetch-depth: 0` on \
                 `actions/checkout`"
                ),
            "depth {depth}: {}",
            out.stderr
        );
    }
    // The full history compares with the previous version tag.
    let out = run_event(&repo, &env, &["--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["files"].as_array().map(Vec::len), Some(2), "{json}");
}

#[test]
fn filters_come_inline_or_from_stdin_as_paths_filter_takes_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let list = "M\tsrc/a.rs\nM\tv2/x\nM\tdocs/a.md\n";
    fs_err::write(dir.path().join("list.txt"), list).expect("list");
    let inline = run_in(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--filters",
            "src: src/**\nversions: 'v{1..3}/**'",
        ],
        &[],
        list,
    );
    let expected = "changed files: 3, files from stdin\nsrc: true (1 file)\n  modified src/a.rs\nversions: true (1 file)\n  modified v2/x\ntargets: [\"src\",\"versions\"]\n";
    check(inline, 0, expected);
    let from_stdin = run_in(
        dir.path(),
        &["--files-from", "list.txt", "--filters", "-"],
        &[],
        "src: src/**\nversions: 'v{1..3}/**'\n",
    );
    check(
        from_stdin,
        0,
        &expected.replace("files from stdin", "files from list.txt"),
    );
}

#[test]
fn an_unknown_status_key_never_matches_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_in(
        dir.path(),
        &[
            "--files-from",
            "-",
            "--filters",
            "src:\n  - changed: 'src/**'\n  - added|edited: 'lib/**'",
        ],
        &[("RUST_LOG", "warn")],
        "M\tsrc/a.rs\nA\tlib/b.rs\n",
    );
    assert!(
        out.stderr.contains("status `changed` of key `changed` in filter `src` (--filters:2) is not a change status, so it never matches (as in paths-filter); valid statuses: added, copied, deleted, modified, renamed, unmerged"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("status `edited`"), "{}", out.stderr);
    check(
        out,
        0,
        "changed files: 2, files from stdin\nsrc: true (1 file)\n  added lib/b.rs\ntargets: [\"src\"]\n",
    );
}

#[test]
fn a_misspelt_base_is_bad_input_with_the_nearest_names() {
    let (repo, _) = project();
    repo.tag("v1.0.0");
    let out = run(&repo, &["--base", "mian"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains(
            "error: invalid `--base` `mian`: no branch, tag or commit has that name — did you mean `main`?"
        ),
        "{}",
        out.stderr
    );
    let out = run(&repo, &["--base", "v1.0.1"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("did you mean `v1.0.0`?"),
        "{}",
        out.stderr
    );
}

/// The plain report's line that says which range was compared, and why.
fn range_line(out: &Run) -> String {
    out.stdout
        .lines()
        .find(|line| line.contains("->") || line.contains("all files of"))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn jenkins_buildkite_and_circleci_builds_say_which_range_they_compare() {
    let (repo, first) = project();
    repo.write("app/a.js", "1\n");
    let a = repo.commit("a");
    repo.write("worker/src/b.py", "1\n");
    let b = repo.commit("b");
    let (short_first, short_a, short_b) = (&first[..7], &a[..7], &b[..7]);

    // A two-commit push on Jenkins: from the last successful build's commit,
    // so the first commit of the push counts too.
    let jenkins = [
        ("JENKINS_URL", "https://jenkins.example.com/"),
        ("BUILD_NUMBER", "12"),
        ("GIT_COMMIT", b.as_str()),
        ("GIT_BRANCH", "origin/main"),
        ("GIT_PREVIOUS_COMMIT", a.as_str()),
        ("GIT_PREVIOUS_SUCCESSFUL_COMMIT", first.as_str()),
    ];
    let out = run_in(repo.path(), &["--format", "json"], &jenkins, "");
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["base"], serde_json::json!(first));
    assert_eq!(json["changes"], serde_json::json!(["app", "worker"]));
    let out = run_in(repo.path(), &[], &jenkins, "");
    assert_eq!(
        range_line(&out),
        format!(
            "changed files: 2, {short_first} -> {short_b} (the last successful build's commit (GIT_PREVIOUS_SUCCESSFUL_COMMIT))"
        )
    );
    // Without a successful build, the previous build's commit.
    let out = run_in(repo.path(), &[], &jenkins[..5], "");
    assert_eq!(
        range_line(&out),
        format!(
            "changed files: 1, {short_a} -> {short_b} (the previous build's commit (GIT_PREVIOUS_COMMIT))"
        )
    );
    // A previous build's commit that history rewriting dropped: on the
    // default branch every file counts, and the report says why.
    let gone = [
        ("JENKINS_URL", "https://jenkins.example.com/"),
        ("GIT_COMMIT", b.as_str()),
        ("GIT_BRANCH", "origin/main"),
        (
            "GIT_PREVIOUS_SUCCESSFUL_COMMIT",
            "9999999999999999999999999999999999999999",
        ),
    ];
    let out = run_in(repo.path(), &[], &gone, "");
    assert_eq!(
        range_line(&out),
        format!(
            "changed files: 11, all files of {short_b} (the previous build's commit is not in this clone: nothing to compare with)"
        )
    );
    // The first build of the branch: the last commit, and why.
    let out = run_in(repo.path(), &[], &jenkins[..4], "");
    assert_eq!(
        range_line(&out),
        format!(
            "changed files: 1, {short_a} -> {short_b} (the last commit (Jenkins gives no previous build's commit))"
        )
    );

    let buildkite = [
        ("BUILDKITE", "true"),
        ("BUILDKITE_SOURCE", "webhook"),
        ("BUILDKITE_COMMIT", b.as_str()),
        ("BUILDKITE_BRANCH", "main"),
        ("BUILDKITE_PULL_REQUEST", "false"),
        ("BUILDKITE_PIPELINE_DEFAULT_BRANCH", "main"),
    ];
    let out = run_in(repo.path(), &[], &buildkite, "");
    assert_eq!(
        range_line(&out),
        format!(
            "changed files: 1, {short_a} -> {short_b} (the last commit (Buildkite gives no push range))"
        )
    );

    let circleci = [
        ("CIRCLECI", "true"),
        ("CIRCLE_SHA1", b.as_str()),
        ("CIRCLE_BRANCH", "main"),
    ];
    let out = run_in(repo.path(), &[], &circleci, "");
    assert_eq!(
        range_line(&out),
        format!(
            "changed files: 1, {short_a} -> {short_b} (the last commit (CircleCI gives no push range))"
        )
    );
}

#[test]
fn version_prints_the_package_version_and_the_commit() {
    slipway_testbed::cmd::Cmd::new(env!("CARGO_BIN_EXE_changed-paths"))
        .arg("--version")
        .run()
        .assert(
            0,
            &slipway_testbed::version_line("changed-paths", env!("CARGO_PKG_VERSION")),
            "",
        );
}
