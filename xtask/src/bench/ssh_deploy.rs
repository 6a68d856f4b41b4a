//! `ssh-deploy`'s figures (issues #7 and #18), against the same test bed
//! sshd in the same run: a deploy of a 200 MB bundle and of a bundle of 200
//! small files, each against what a user would run instead for the same job
//! (copy the files, then run the env's command on the host), and the
//! overhead of a redeploy in which nothing changed.
//!
//! ssh-deploy's side is always a whole deploy: connect, preflight, lock,
//! upload, command (`true`), record. The alternatives, on the same bytes:
//! `scp FILE host:DIR && ssh host 'cd DIR && true'` (two connections, as
//! a user types it), `scp` alone (the figure, which leaves out the
//! command: stricter than the job), and `tar -c | ssh host 'cd DIR && tar
//! -x && true'` (one connection) for the small files.
//!
//! Each upload run first removes the host's bundle manifest, so ssh-deploy
//! cannot skip the unchanged files; the sides alternate.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use xshell::Shell;

use super::{Figure, median};

const UPLOAD_JOB: &str = "ssh-deploy: deploy of a 200 MB bundle / `scp` it, then `ssh` the command";
const UPLOAD_SCP: &str =
    "ssh-deploy: deploy of a 200 MB bundle / `scp` it alone (no command: stricter than the job)";
// No `|` in a name: it would split the Markdown table's cell.
const SMALL: &str =
    "ssh-deploy: deploy of 200 files of 4 KiB / tar pipe (`tar -c`, `ssh 'tar -x && command'`)";
const NO_CHANGE: &str = "ssh-deploy: no-change redeploy";
const STEPS: &str = "ssh-deploy: each step of a no-change redeploy of the 200 small files after the connection (median ms; `command line` includes running the command `true`)";
const ROUND_TRIPS: &str = "ssh-deploy: connections and remote commands of a deploy (each command costs the login shell's rc)";
const SIZE: u64 = 200 * 1024 * 1024;
/// The small-file bundle: this many files of `SMALL_SIZE` bytes.
const SMALL_FILES: usize = 200;
const SMALL_SIZE: usize = 4096;
/// A 200 MB run takes seconds: `--runs` is capped at this.
const MAX_RUNS: u32 = 9;

/// Both figures, unless `--only` excludes them.
pub(super) fn figures(
    _sh: &Shell,
    bin_dir: &Path,
    runs: u32,
    only: Option<&str>,
) -> anyhow::Result<Vec<Figure>> {
    let runs = runs.clamp(1, MAX_RUNS);
    let wanted = |name: &str| only.is_none_or(|only| name.contains(only));
    if ![UPLOAD_JOB, UPLOAD_SCP, SMALL, NO_CHANGE, STEPS, ROUND_TRIPS]
        .iter()
        .any(|name| wanted(name))
    {
        return Ok(Vec::new());
    }
    let fixture = fixture(&crate::target_dir().join("bench-fixtures"))?;
    let sshd = slipway_testbed::Sshd::start();
    let work = crate::target_dir().join("bench-fixtures/ssh-deploy");
    if work.exists() {
        fs_err::remove_dir_all(&work)?;
    }
    let project = Dir(work.join("project"));
    let remote = Dir(work.join("remote"));
    fs_err::create_dir_all(remote.path())?;
    let bundle_dir = project.path().join("deploy");
    fs_err::create_dir_all(&bundle_dir)?;
    // A copy, not a hard link: ssh-deploy refuses a bundle file with other
    // names, which could be outside the project.
    fs_err::copy(&fixture, bundle_dir.join("payload.bin"))?;
    let small_dir = project.path().join("small");
    fs_err::create_dir_all(&small_dir)?;
    for n in 0..SMALL_FILES {
        let byte = b'a' + (n % 26) as u8;
        fs_err::write(
            small_dir.join(format!("file-{n:03}.txt")),
            vec![byte; SMALL_SIZE],
        )?;
    }
    let remote_path = remote.path().join("srv");
    let small_remote = remote.path().join("small-srv");
    fs_err::write(
        project.path().join("slipway.toml"),
        format!(
            "[images.app]\nrepository = \"127.0.0.1:5000/app\"\n\n[envs.bench]\nhosts = [\"{}@127.0.0.1:{}\"]\nremote_path = \"{}\"\nbundle = [\"deploy/payload.bin\"]\ncommand = \"true\"\nimages = {{ APP_IMAGE = \"app\" }}\n\n[envs.small]\nhosts = [\"{}@127.0.0.1:{}\"]\nremote_path = \"{}\"\nbundle = [\"small\"]\ncommand = \"true\"\nimages = {{ APP_IMAGE = \"app\" }}\n",
            sshd.user(),
            sshd.port(),
            remote_path.display(),
            sshd.user(),
            sshd.port(),
            small_remote.display()
        ),
    )?;
    let image = format!("app=127.0.0.1:5000/app@sha256:{}", "a".repeat(64));
    let deploy_env = |env: &str| {
        let mut command = Command::new(bin_dir.join("ssh-deploy"));
        command
            .current_dir(project.path())
            .args(["-q", "deploy", "--env", env, "--image", &image, "--ssh-key"])
            .arg(sshd.client_key_path())
            .arg("--known-hosts")
            .arg(sshd.known_hosts_path());
        command
    };
    let deploy = || deploy_env("bench");
    // `ssh` and `scp` as a user runs them, with the test bed's key and
    // known_hosts; `host` is `user@127.0.0.1`.
    let host = format!("{}@127.0.0.1", sshd.user());
    let ssh_options = |port_flag: &str| -> Vec<String> {
        vec![
            "-q".to_owned(),
            port_flag.to_owned(),
            sshd.port().to_string(),
            "-i".to_owned(),
            sshd.client_key_path().display().to_string(),
            "-o".to_owned(),
            "BatchMode=yes".to_owned(),
            "-o".to_owned(),
            format!("UserKnownHostsFile={}", sshd.known_hosts_path().display()),
        ]
    };
    let tar_target = remote.path().join("tar");
    fs_err::create_dir_all(&tar_target)?;
    let tar_pipe = || {
        // `tar c | ssh 'tar x && command'`, as a team would copy a
        // directory and run its script: one connection, one command.
        let mut command = Command::new("sh");
        command
            .current_dir(project.path())
            .args(["-c", "tar -c small | ssh \"$@\"", "sh"])
            .args(ssh_options("-p"))
            .arg(&host)
            .arg(format!("cd '{}' && tar -x && true", tar_target.display()));
        command
    };
    let scp_target = remote.path().join("scp");
    fs_err::create_dir_all(&scp_target)?;
    let scp = || {
        let mut command = Command::new("scp");
        command
            .args(ssh_options("-P"))
            .arg(&fixture)
            .arg(format!("{host}:{}/payload.bin", scp_target.display()));
        command
    };
    let scp_then_ssh = || {
        // The same job by hand: copy the bundle, then run the command.
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                "scp -q -P \"$1\" -i \"$2\" -o BatchMode=yes -o \"$3\" \"$4\" \"$5:$6/payload.bin\" && ssh -q -p \"$1\" -i \"$2\" -o BatchMode=yes -o \"$3\" \"$5\" \"cd '$6' && true\"",
                "sh",
            ])
            .arg(sshd.port().to_string())
            .arg(sshd.client_key_path())
            .arg(format!(
                "UserKnownHostsFile={}",
                sshd.known_hosts_path().display()
            ))
            .arg(&fixture)
            .arg(&host)
            .arg(&scp_target);
        command
    };

    let forget = |remote: &Path| {
        let _ = fs_err::remove_file(remote.join(".slipway/bundle.json"));
    };
    let big = alternate(
        runs,
        &mut [
            Side::new(deploy, || forget(&remote_path)),
            Side::new(scp_then_ssh, || {}),
            Side::new(scp, || {}),
        ],
    )?;
    let small = alternate(
        runs,
        &mut [
            Side::new(|| deploy_env("small"), || forget(&small_remote)),
            Side::new(tar_pipe, || {}),
        ],
    )?;

    let mut unchanged = Vec::new();
    for _ in 0..runs {
        unchanged.push(time(&mut deploy())?);
    }
    let unchanged = median(&mut unchanged);

    // Each step's time, as ssh-deploy logs it (`RUST_LOG=ssh_deploy=debug`),
    // on the bundle of small files: on the 200 MB one, `changes` is the
    // SHA-256 of the local file (about 150 ms), which says nothing of the
    // connection.
    let mut steps: std::collections::BTreeMap<String, Vec<Duration>> = Default::default();
    for _ in 0..runs {
        let output = deploy_env("small")
            .env("RUST_LOG", "ssh_deploy=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .context("cannot run ssh-deploy")?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            bail!("ssh-deploy failed: {}", stderr.trim());
        }
        for (step, ms) in stderr.lines().filter_map(step_time) {
            steps
                .entry(step)
                .or_default()
                .push(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let steps: Vec<(String, Duration)> = steps
        .into_iter()
        .map(|(step, mut times)| (step, median(&mut times)))
        .collect();

    // What a deploy costs in what the host charges for: connections (a
    // key exchange each) and commands (a login shell each), from sshd's log.
    let count = |text: &str| sshd.log().matches(text).count();
    let (connections, commands) = (
        count("Accepted publickey"),
        count("Starting session: command"),
    );
    let _ = fs_err::remove_file(small_remote.join(".slipway/bundle.json"));
    time(&mut deploy_env("small"))?;
    let connections = count("Accepted publickey") - connections;
    let commands = count("Starting session: command") - commands;
    Ok(vec![
        ratio_figure(UPLOAD_JOB, big[0], big[1], Some(1.0)),
        ratio_figure(UPLOAD_SCP, big[0], big[2], None),
        ratio_figure(SMALL, small[0], small[1], Some(1.0)),
        Figure {
            name: NO_CHANGE.to_owned(),
            value: format!("{} ms", unchanged.as_millis()),
            goal: "< 1000 ms".to_owned(),
            is_met: unchanged < Duration::from_secs(1),
        },
        Figure {
            name: STEPS.to_owned(),
            value: steps
                .iter()
                .map(|(step, time)| format!("{step} {:.1}", time.as_secs_f64() * 1000.0))
                .collect::<Vec<_>>()
                .join(", "),
            goal: "≤ 15 ms each".to_owned(),
            is_met: !steps.is_empty()
                && steps
                    .iter()
                    .all(|(_, time)| *time <= Duration::from_millis(15)),
        },
        Figure {
            name: ROUND_TRIPS.to_owned(),
            value: format!("{connections} connection(s), {commands} commands"),
            goal: "report".to_owned(),
            is_met: true,
        },
    ])
}

/// The step and its milliseconds in a line of ssh-deploy's debug log
/// (`DEBUG step host="…" step="lock" ms=4.2`).
fn step_time(line: &str) -> Option<(String, f64)> {
    let rest = line.split_once(" step=\"")?.1;
    let (step, rest) = rest.split_once('"')?;
    let ms = rest.split_once(" ms=")?.1.split_whitespace().next()?;
    Some((step.to_owned(), ms.parse().ok()?))
}

/// One side of a comparison: a command, and untimed work before each run.
struct Side<'a> {
    command: Box<dyn FnMut() -> Command + 'a>,
    prepare: Box<dyn FnMut() + 'a>,
}

impl<'a> Side<'a> {
    fn new(command: impl FnMut() -> Command + 'a, prepare: impl FnMut() + 'a) -> Side<'a> {
        Side {
            command: Box::new(command),
            prepare: Box::new(prepare),
        }
    }
}

/// Runs each side once to warm up, then all sides in turn `runs` times;
/// the median of each, in order.
fn alternate(runs: u32, sides: &mut [Side<'_>]) -> anyhow::Result<Vec<Duration>> {
    let mut samples = vec![Vec::new(); sides.len()];
    for round in 0..=runs {
        for (side, samples) in sides.iter_mut().zip(&mut samples) {
            (side.prepare)();
            let elapsed = time(&mut (side.command)())?;
            if round > 0 {
                samples.push(elapsed);
            }
        }
    }
    Ok(samples.iter_mut().map(|s| median(s)).collect())
}

/// `ours / theirs`, with both medians, against `goal` if there is one.
fn ratio_figure(name: &str, ours: Duration, theirs: Duration, goal: Option<f64>) -> Figure {
    let ratio = ours.as_secs_f64() / theirs.as_secs_f64().max(f64::MIN_POSITIVE);
    Figure {
        name: name.to_owned(),
        value: format!(
            "{ratio:.2} ({} ms / {} ms)",
            ours.as_millis(),
            theirs.as_millis()
        ),
        goal: goal.map_or_else(|| "report".to_owned(), |goal| format!("≤ {goal:.1}")),
        is_met: goal.is_none_or(|goal| ratio <= goal),
    }
}

fn time(command: &mut Command) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(elapsed)
}

/// A 200 MB file of incompressible bytes, made once.
fn fixture(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("ssh-deploy-200m.bin");
    if fs_err::metadata(&path).is_ok_and(|m| m.len() == SIZE) {
        return Ok(path);
    }
    fs_err::create_dir_all(dir)?;
    let temp = dir.join("ssh-deploy-200m.bin.tmp");
    let mut file = std::io::BufWriter::new(fs_err::File::create(&temp)?);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 1024 * 1024];
    for _ in 0..SIZE / chunk.len() as u64 {
        for word in chunk.chunks_exact_mut(8) {
            // xorshift64: fast, and incompressible enough for a transfer.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&chunk)?;
    }
    file.flush()?;
    drop(file);
    fs_err::rename(&temp, &path)?;
    Ok(path)
}

/// A directory of this benchmark under target/bench-fixtures.
struct Dir(PathBuf);

impl Dir {
    fn path(&self) -> &Path {
        &self.0
    }
}
