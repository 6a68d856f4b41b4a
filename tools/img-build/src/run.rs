//! Running a plan: targets start as soon as what they depend on is built, up
//! to `--jobs` at once; a failed target skips its dependents and lets
//! independent targets finish (or, with `--fail-fast`, starts nothing more).
//! Each target's commands write to `<log dir>/<image>.log`, streamed to
//! stderr with an `image | ` prefix unless quiet; under GitHub Actions each
//! target's log is printed in its own `::group::` when it ends.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use slipway_config::Platform;
use slipway_core::image_ref::Digest;
use slipway_core::output::Output;
use slipway_core::progress::{Progress, Task};
use xshell::Shell;

use crate::backend::{Backend, BackendKind, DigestSource, Invocation};
use crate::freshness::Freshness;
use crate::plan::{Plan, Target};
use crate::work::work;
use slipway_config::SecretSource;

pub(crate) use slipway_contract::img_build::{SkipReason, Status};

/// What one target produced.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) status: Status,
    /// Why it was skipped, when it was.
    pub(crate) reason: Option<SkipReason>,
    /// `repo@sha256:…` when pushed, else the main tag.
    pub(crate) reference: Option<String>,
    pub(crate) digest: Option<Digest>,
    pub(crate) image_id: Option<String>,
    pub(crate) duration: Duration,
    pub(crate) error: Option<String>,
    pub(crate) log: PathBuf,
}

impl Outcome {
    /// Whether dependents can use it: built, or already published (`--only-stale`).
    pub(crate) fn is_available(&self) -> bool {
        self.status == Status::Built || self.reason == Some(SkipReason::Fresh)
    }
}

/// Runs every target of `plan` except those `freshness` skips; returns
/// their outcomes by name.
pub(crate) fn execute(
    plan: &Plan,
    backend: &dyn Backend,
    out: &Output,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    freshness: &BTreeMap<String, Freshness>,
) -> anyhow::Result<BTreeMap<String, Outcome>> {
    fs_err::create_dir_all(&plan.log_dir).context("cannot create the log directory")?;
    for target in &plan.targets {
        target.build_file.write_copy().with_context(|| {
            format!(
                "cannot write the copy of `{}` the builder reads",
                target.dockerfile.display()
            )
        })?;
    }
    // Env secrets go to 0600 files in a private directory, removed when the run ends.
    let secret_dir = tempfile::Builder::new()
        .prefix("img-build-secrets-")
        .tempdir()
        .context("cannot create a directory for build secrets")?;
    let mut secret_files: BTreeMap<(String, String), String> = BTreeMap::new();
    // Every secret value, so that a log excerpt in an error never shows one.
    let mut secret_values: Vec<String> = Vec::new();
    for target in &plan.targets {
        for (id, secret) in &target.secret_sources {
            if let SecretSource::File(path) = secret
                && let Ok(value) = slipway_core::input::read(path)
            {
                secret_values.push(String::from_utf8_lossy(&value).trim().to_owned());
            }
            if let SecretSource::Env(var) = secret {
                let value = env(var).unwrap_or_default();
                secret_values.push(value.clone());
                out.mask(&secrecy::SecretString::from(value.clone()));
                let path = secret_dir.path().join(format!("{}-{id}", target.name));
                write_private(&path, &value)
                    .with_context(|| format!("cannot write secret `{id}` of `{}`", target.name))?;
                secret_files.insert(
                    (target.name.clone(), id.clone()),
                    path.display().to_string(),
                );
            }
        }
    }

    let progress = out.progress();
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    for target in &plan.targets {
        if let Some(fresh) = freshness.get(&target.name).filter(|f| f.skip) {
            let reference = crate::freshness::published_reference(fresh, target);
            progress.task(&target.name, "").finish(&format!(
                "skipped, published for this commit: {}",
                reference.as_deref().unwrap_or_default()
            ));
            outcomes.insert(
                target.name.clone(),
                Outcome {
                    status: Status::Skipped,
                    reason: Some(SkipReason::Fresh),
                    reference,
                    digest: crate::freshness::published_digest(fresh),
                    image_id: None,
                    duration: Duration::ZERO,
                    error: None,
                    log: plan.log_dir.join(format!("{}.log", target.name)),
                },
            );
        }
    }
    let mut running = 0usize;
    let mut started: Vec<String> = Vec::new();
    let (sender, receiver) = mpsc::channel::<(String, Outcome)>();
    std::thread::scope(|scope| {
        loop {
            let has_failed = outcomes.values().any(|o| o.status == Status::Failed);
            for target in &plan.targets {
                if started.contains(&target.name) || outcomes.contains_key(&target.name) {
                    continue;
                }
                let blocker = target
                    .depends_on
                    .iter()
                    .find(|d| outcomes.get(*d).is_some_and(|o| !o.is_available()));
                if let Some(blocker) = blocker {
                    let outcome = skipped(
                        plan,
                        target,
                        SkipReason::DependencyFailed,
                        format!("dependency `{blocker}` was not built"),
                    );
                    progress
                        .task(&target.name, "")
                        .fail(outcome.error.as_deref().unwrap_or_default());
                    outcomes.insert(target.name.clone(), outcome);
                    continue;
                }
                if plan.fail_fast && has_failed {
                    let outcome = skipped(
                        plan,
                        target,
                        SkipReason::FailFast,
                        "not started: an image failed and `--fail-fast` is given".to_owned(),
                    );
                    progress
                        .task(&target.name, "")
                        .fail(outcome.error.as_deref().unwrap_or_default());
                    outcomes.insert(target.name.clone(), outcome);
                    continue;
                }
                let ready = target.depends_on.iter().all(|d| outcomes.contains_key(d));
                if !ready || running >= plan.jobs {
                    continue;
                }
                let dependency_ref = target
                    .dependency_arg
                    .as_ref()
                    .and_then(|arg| outcomes.get(&arg.image).and_then(|o| o.reference.clone()));
                let secret_file = |id: &str| {
                    secret_files
                        .get(&(target.name.clone(), id.to_owned()))
                        .cloned()
                        .unwrap_or_default()
                };
                let commands = work(
                    plan,
                    backend,
                    target,
                    dependency_ref.as_deref(),
                    &secret_file,
                );
                let sender = sender.clone();
                let progress = progress.clone();
                let secret_values = &secret_values;
                running += 1;
                started.push(target.name.clone());
                scope.spawn(move || {
                    let outcome =
                        run_target(plan, target, &commands, &progress, out, secret_values);
                    // The receiver lives until every spawned target has reported.
                    let _ = sender.send((target.name.clone(), outcome));
                });
            }
            if running == 0 {
                break;
            }
            match receiver.recv() {
                Ok((name, outcome)) => {
                    running -= 1;
                    outcomes.insert(name, outcome);
                }
                Err(_) => break,
            }
        }
    });
    drop(secret_dir);
    Ok(outcomes)
}

fn skipped(plan: &Plan, target: &Target, reason: SkipReason, error: String) -> Outcome {
    Outcome {
        status: Status::Skipped,
        reason: Some(reason),
        reference: None,
        digest: None,
        image_id: None,
        duration: Duration::ZERO,
        error: Some(error),
        log: plan.log_dir.join(format!("{}.log", target.name)),
    }
}

fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    let mut file = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(value.as_bytes())
}

/// Builds (and pushes) one target; never panics on a failed command.
fn run_target(
    plan: &Plan,
    target: &Target,
    work: &crate::work::Work,
    progress: &Progress,
    out: &Output,
    secret_values: &[String],
) -> Outcome {
    let started = Instant::now();
    let log_path = plan.log_dir.join(format!("{}.log", target.name));
    let task = progress.task(&target.name, "building");
    let result = run_commands(plan, target, work, &log_path, &task, progress, out);
    if out.has_log_groups() && !out.is_quiet() {
        let _group = out.group(&format!("img-build {}", target.name));
        print_log(&log_path, progress);
    }
    let duration = started.elapsed();
    match result {
        Ok((reference, digest, image_id)) => {
            task.finish(&reference);
            Outcome {
                status: Status::Built,
                reason: None,
                reference: Some(reference),
                digest,
                image_id,
                duration,
                error: None,
                log: log_path,
            }
        }
        Err(error) => {
            let message = match log_tail(&log_path, secret_values) {
                Some(tail) => format!("{error:#}; the log ends with:\n{tail}"),
                None => format!("{error:#}"),
            };
            task.fail(&format!("{message} (log: {})", log_path.display()));
            Outcome {
                status: Status::Failed,
                reason: None,
                reference: None,
                digest: None,
                image_id: None,
                duration,
                error: Some(message),
                log: log_path,
            }
        }
    }
}

#[allow(
    clippy::too_many_arguments,
    reason = "one target's run needs the plan, its work and every output channel"
)]
fn run_commands(
    plan: &Plan,
    target: &Target,
    work: &crate::work::Work,
    log_path: &Path,
    task: &Task,
    progress: &Progress,
    out: &Output,
) -> anyhow::Result<(String, Option<Digest>, Option<String>)> {
    let log = Mutex::new(fs_err::File::create(log_path).context("cannot create the build log")?);
    // Where the CI folds groups, the log is printed in one after the build.
    let stream = !out.is_quiet() && !out.has_log_groups();
    let mut first_digest: Option<Digest> = None;
    let mut platform_digests: Vec<(Platform, Digest)> = Vec::new();
    let mut image_id = None;
    for command in &work.commands {
        task.message(&command.step);
        let digest_lines = run_command(command, &target.name, &log, stream.then_some(progress))
            .with_context(|| format!("`{}` failed", command.step))?;
        if command.step.starts_with("build") {
            image_id = read_image_id(command);
            // Checked before anything is pushed; buildx pushes as it
            // builds, so its image is checked in the registry below.
            if let Some(id) = image_id
                .as_deref()
                .filter(|_| plan.backend != BackendKind::Buildx)
            {
                let checked = crate::verify::local(plan, target, id)?;
                write_line(&log, &format!("img-build: {checked}"));
            }
        }
        if let Some(digest) = digest_of(command, &digest_lines)? {
            if let Some(platform) = &command.platform {
                platform_digests.push((platform.clone(), digest.clone()));
            }
            first_digest.get_or_insert(digest);
        }
    }
    if let Some(tags) = &work.index_tags {
        task.message("pushing the index");
        let digest = crate::index::push_index(
            &target.repo,
            &platform_digests,
            &target.tag_names,
            &plan.registry,
            out,
        )
        .context("cannot push the image index")?;
        let mut log = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(log, "pushed index {digest} to {}", tags.join(", "));
        first_digest = Some(digest);
    }
    let main_tag = target.tags.first().cloned().unwrap_or_default();
    if plan.backend == BackendKind::Buildx {
        let checked = match (&first_digest, plan.push, plan.load) {
            (Some(digest), true, _) => Some(crate::verify::pushed(plan, target, digest, out)?),
            (_, false, true) => Some(crate::verify::local(plan, target, &main_tag)?),
            // The image stays in the builder's cache: nothing to read back.
            _ => None,
        };
        if let Some(checked) = checked {
            write_line(&log, &format!("img-build: {checked}"));
        }
    }
    match (&first_digest, plan.push) {
        (Some(digest), true) => Ok((
            format!("{}@{digest}", target.repository),
            first_digest.clone(),
            image_id,
        )),
        (None, true) => anyhow::bail!("the push reported no digest"),
        (_, false) => Ok((main_tag, None, image_id)),
    }
}

/// How many of a failed build's last log lines its error shows.
const TAIL_LINES: usize = 8;

/// The last meaningful lines of a build log, indented, each secret value
/// replaced by `***`: no command lines of ours, no blank or progress-only
/// lines (BuildKit's `#12 DONE 0.1s`, `#12 sha256:… 0.0s done`).
fn log_tail(path: &Path, secret_values: &[String]) -> Option<String> {
    let text = read_log_end(path)?;
    let meaningful: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|line| {
            let body = line
                .split_once(' ')
                .filter(|(step, _)| step.starts_with('#'))
                .map_or(*line, |(_, rest)| rest);
            !line.trim().is_empty()
                && !line.starts_with("$ ")
                && !line.starts_with("img-build: ")
                && !body.starts_with("DONE ")
                && !body.starts_with("CACHED")
                && !body.starts_with("sha256:")
                && !body.starts_with("transferring ")
        })
        .collect();
    let start = meaningful.len().saturating_sub(TAIL_LINES);
    let tail = &meaningful[start..];
    if tail.is_empty() {
        return None;
    }
    // A multi-line secret (a key file) is redacted line by line too, since
    // the log shows it one line at a time.
    let parts: Vec<&str> = secret_values
        .iter()
        .flat_map(|value| std::iter::once(value.as_str()).chain(value.lines()))
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect();
    let text = tail
        .iter()
        .map(|line| {
            let mut line = (*line).to_owned();
            for part in &parts {
                line = line.replace(part, "***");
            }
            format!("  {line}")
        })
        .collect::<Vec<_>>()
        .join("\n");
    Some(text)
}

/// How much of the end of a build log [`log_tail`] reads: a build may log
/// gigabytes, its last lines fit in far less.
const TAIL_BYTES: u64 = 64 * 1024;

/// The last [`TAIL_BYTES`] of a build log as text (through
/// `slipway_core::input`'s capped reader), from its first whole line.
fn read_log_end(path: &Path) -> Option<String> {
    use std::io::{Read as _, Seek as _};
    let mut file = fs_err::File::open(path).ok()?;
    let start = file.metadata().ok()?.len().saturating_sub(TAIL_BYTES);
    file.seek(std::io::SeekFrom::Start(start)).ok()?;
    let bytes =
        slipway_core::input::read_capped(file.take(TAIL_BYTES), &path.display().to_string())
            .ok()?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if start == 0 {
        return Some(text);
    }
    // The first line was cut: drop it.
    text.split_once('\n').map(|(_, rest)| rest.to_owned())
}

/// The longest piece of one log line [`print_log`] holds at a time.
const LOG_LINE_BYTES: u64 = 64 * 1024;

/// Prints a build log line by line, streaming: memory stays bounded
/// whatever the log's size (a line past [`LOG_LINE_BYTES`] is printed in
/// pieces).
fn print_log(path: &Path, progress: &Progress) {
    use std::io::{BufRead as _, Read as _};
    let Ok(file) = fs_err::File::open(path) else {
        return;
    };
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(LOG_LINE_BYTES)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                progress.println(text.trim_end_matches(['\n', '\r']));
            }
        }
    }
}

/// Appends a line of img-build's own to a target's log.
fn write_line(log: &Mutex<fs_err::File>, line: &str) {
    let mut log = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = writeln!(log, "{line}");
}

/// Reads the image id a build wrote (`--iidfile`), if it wrote one.
fn read_image_id(command: &Invocation) -> Option<String> {
    let position = command.argv.iter().position(|a| a == "--iidfile")?;
    let path = command.argv.get(position + 1)?;
    slipway_core::input::read_to_string(Path::new(path))
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
}

/// The digest a command pushed, from where its backend writes it.
fn digest_of(command: &Invocation, lines: &[String]) -> anyhow::Result<Option<Digest>> {
    let text = match &command.digest {
        DigestSource::None => return Ok(None),
        DigestSource::DigestFile(path) => slipway_core::input::read_to_string(path)
            .context("cannot read the digest file")?
            .trim()
            .to_owned(),
        DigestSource::MetadataFile(path) => {
            let text = slipway_core::input::read_to_string(path)
                .context("cannot read the metadata file")?;
            metadata_digest(&text)?
        }
        DigestSource::PushOutput => lines
            .iter()
            .find_map(|line| push_output_digest(line))
            .context("`docker push` printed no `digest: sha256:…` line")?,
    };
    text.parse::<Digest>()
        .map(Some)
        .with_context(|| format!("`{text}` is not a digest"))
}

/// The pushed digest in buildx's `--metadata-file`: `containerimage.digest`
/// (the manifest's, or the index's for several platforms), which must agree
/// with `containerimage.descriptor.digest` when both are there.
fn metadata_digest(text: &str) -> anyhow::Result<String> {
    let json: serde_json::Value =
        serde_json::from_str(text).context("the metadata file is not JSON")?;
    let digest = json
        .get("containerimage.digest")
        .and_then(serde_json::Value::as_str);
    let descriptor = json
        .pointer("/containerimage.descriptor/digest")
        .and_then(serde_json::Value::as_str);
    match (digest, descriptor) {
        (Some(digest), Some(descriptor)) if digest != descriptor => anyhow::bail!(
            "the metadata file disagrees with itself: `containerimage.digest` is `{digest}`, `containerimage.descriptor` says `{descriptor}`"
        ),
        (Some(digest), _) | (None, Some(digest)) => Ok(digest.to_owned()),
        (None, None) => anyhow::bail!(
            "the metadata file has no `containerimage.digest` (was the image pushed? buildx writes it with `--push`)"
        ),
    }
}

/// `latest: digest: sha256:… size: 528` gives `sha256:…`.
fn push_output_digest(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("digest: ")?;
    let digest = rest.split_whitespace().next()?;
    digest.starts_with("sha256:").then(|| digest.to_owned())
}

/// Runs one command, its output appended to the log (and streamed when
/// `stream` is given); returns the output lines that mention a digest.
fn run_command(
    command: &Invocation,
    name: &str,
    log: &Mutex<fs_err::File>,
    stream: Option<&Progress>,
) -> anyhow::Result<Vec<String>> {
    let write_log = |line: &str| {
        let mut log = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(log, "{line}");
    };
    write_log(&format!("$ {}", crate::report::shell_line(&command.argv)));
    let (program, args) = command
        .argv
        .split_first()
        .context("an empty command line")?;
    let sh = Shell::new()?;
    let mut cmd = sh.cmd(program).args(args);
    // docker and buildah push with their own login; the registry
    // credentials img-build read for itself are not passed on, unless a
    // build secret names one (`--secret id=…,env=REGISTRY_PASSWORD`, read
    // by buildx from its environment).
    for name in slipway_registry::auth::CREDENTIAL_ENV_VARS {
        let secret = format!(",env={name}");
        if !command.argv.iter().any(|arg| arg.ends_with(&secret)) {
            cmd = cmd.env_remove(name);
        }
    }
    for (key, value) in &command.env {
        cmd = cmd.env(key, value);
    }
    let mut process: std::process::Command = cmd.into();
    process
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = process
        .spawn()
        .with_context(|| format!("cannot run `{program}`"))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let digests = Mutex::new(Vec::new());
    let handle = |reader: Box<dyn std::io::Read + Send>| {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            write_log(&line);
            if let Some(progress) = stream {
                progress.println(&format!("{name} | {line}"));
            }
            if line.contains("digest:") {
                digests
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        }
    };
    std::thread::scope(|scope| {
        scope.spawn(|| handle(Box::new(stdout)));
        handle(Box::new(stderr));
    });
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for `{program}`"))?;
    if !status.success() {
        anyhow::bail!("`{program}` exited with {status}");
    }
    Ok(digests
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(line: &str, expected: Option<&str>) {
        assert_eq!(push_output_digest(line).as_deref(), expected, "`{line}`");
    }

    #[test]
    fn docker_push_prints_the_digest_after_the_tag() {
        check(
            "sha-abc1234: digest: sha256:0123abcd size: 528",
            Some("sha256:0123abcd"),
        );
    }

    #[track_caller]
    fn check_metadata(text: &str, expected: Result<&str, &str>) {
        let got = metadata_digest(text).map_err(|e| e.to_string());
        assert_eq!(
            got.as_deref(),
            expected.map_err(|e| e.to_owned()).as_deref(),
            "{text}"
        );
    }

    #[test]
    fn buildx_metadata_gives_the_pushed_digest() {
        // Samples in buildx's documented `--metadata-file` shape.
        check_metadata(
            include_str!("../tests/fixtures/buildx-metadata.json"),
            Ok("sha256:19ffeab6f8bc9293ac2c3fdf94ebe28396254c993aea0b5a542cfb02e0883fa3"),
        );
        check_metadata(
            include_str!("../tests/fixtures/buildx-metadata-multi-platform.json"),
            Ok("sha256:b4c57c45edb633da2b73d0183f0cc71bc2f37805d62cef074bfd105e01b414cc"),
        );
        check_metadata(
            r#"{"containerimage.descriptor": {"digest": "sha256:00"}}"#,
            Ok("sha256:00"),
        );
        check_metadata(
            r#"{"buildx.build.ref": "builder/builder0/x"}"#,
            Err(
                "the metadata file has no `containerimage.digest` (was the image pushed? buildx writes it with `--push`)",
            ),
        );
        check_metadata(
            r#"{"containerimage.digest": "sha256:01", "containerimage.descriptor": {"digest": "sha256:02"}}"#,
            Err(
                "the metadata file disagrees with itself: `containerimage.digest` is `sha256:01`, `containerimage.descriptor` says `sha256:02`",
            ),
        );
    }

    #[test]
    fn a_log_tail_keeps_the_builders_words_and_hides_secrets() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let log = dir.path().join("app.log");
        fs_err::write(
            &log,
            "$ docker build --secret id=key,src=/tmp/k .\n#5 [2/2] RUN cat /run/secrets/key\n#5 0.2 -----BEGIN KEY-----\n#5 0.2 c2VjcmV0\n#5 0.3 table t is missing\n#5 DONE 0.4s\n\n#5 ERROR: exit code: 7\n",
        )
        .expect("written");
        let secrets = ["-----BEGIN KEY-----\nc2VjcmV0\n-----END KEY-----".to_owned()];
        assert_eq!(
            log_tail(&log, &secrets).as_deref(),
            Some(
                "  #5 [2/2] RUN cat /run/secrets/key\n  #5 0.2 ***\n  #5 0.2 ***\n  #5 0.3 table t is missing\n  #5 ERROR: exit code: 7"
            )
        );
    }

    /// A build that logged far more than memory should hold (here a
    /// sparse 8 GiB of NULs, then the failure): the tail reads only the
    /// end, from a whole line, and still finds the builder's last words.
    #[test]
    fn a_log_tail_reads_only_the_end_of_a_huge_log() {
        use std::io::{Seek as _, Write as _};
        let dir = tempfile::tempdir().expect("a temp dir");
        let log = dir.path().join("app.log");
        let mut file = fs_err::File::create(&log).expect("created");
        file.set_len(8 << 30).expect("sparse");
        file.seek(std::io::SeekFrom::End(0)).expect("seek");
        file.write_all(b"\n#7 1.0 npm ERR! missing script\n#7 ERROR: exit code: 1\n")
            .expect("written");
        drop(file);
        let started = std::time::Instant::now();
        assert_eq!(
            log_tail(&log, &[]).as_deref(),
            Some("  #7 1.0 npm ERR! missing script\n  #7 ERROR: exit code: 1")
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(read_log_end(&log).expect("read").len() <= TAIL_BYTES as usize);
    }

    #[test]
    fn other_lines_hold_no_digest() {
        check("The push refers to repository [127.0.0.1:5000/app]", None);
        check("Digest: none here", None);
    }
}
