//! `ssh-deploy`'s figures (issues #7 and #18): uploading a 200 MB bundle
//! against OpenSSH `scp` of the same file, and a bundle of 200 small files
//! against `tar c | ssh tar x` of the same directory, to the same test bed
//! sshd in the same run; and the overhead of a redeploy in which nothing
//! changed. The ssh-deploy side is a whole deploy (connect, lock, upload,
//! command, record), the other side only the transfer.
//!
//! Each upload run first removes the host's bundle manifest, so ssh-deploy
//! cannot skip the unchanged files; the two sides alternate.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use xshell::Shell;

use super::{Figure, median};

const UPLOAD: &str = "ssh-deploy: 200 MB bundle upload / scp";
const SMALL: &str = "ssh-deploy: 200 small files / tar pipe (tar -c, ssh tar -x)";
const NO_CHANGE: &str = "ssh-deploy: no-change redeploy";
const ROUND_TRIPS: &str = "ssh-deploy: connections and remote commands of a deploy (each command costs the login shell's rc)";
const SIZE: u64 = 200 * 1024 * 1024;
/// The small-file bundle: this many files of `SMALL_SIZE` bytes.
const SMALL_FILES: usize = 200;
const SMALL_SIZE: usize = 4096;
const RUNS: usize = 3;

/// Both figures, unless `--only` excludes them.
pub(super) fn figures(
    _sh: &Shell,
    bin_dir: &Path,
    only: Option<&str>,
) -> anyhow::Result<Vec<Figure>> {
    let wanted = |name: &str| only.is_none_or(|only| name.contains(only));
    if !wanted(UPLOAD) && !wanted(NO_CHANGE) && !wanted(SMALL) && !wanted(ROUND_TRIPS) {
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
    let tar_target = remote.path().join("tar");
    fs_err::create_dir_all(&tar_target)?;
    let tar_pipe = || {
        // `tar c | ssh tar x`, as a team would copy a directory.
        let mut command = Command::new("sh");
        command.current_dir(project.path()).args([
            "-c",
            "tar -c small | ssh -q -p \"$1\" -i \"$2\" -o BatchMode=yes -o UserKnownHostsFile=\"$3\" \"$4\" \"tar -x -C '$5'\"",
            "sh",
        ]);
        command
            .arg(sshd.port().to_string())
            .arg(sshd.client_key_path())
            .arg(sshd.known_hosts_path())
            .arg(format!("{}@127.0.0.1", sshd.user()))
            .arg(&tar_target);
        command
    };
    let scp_target = remote.path().join("scp");
    fs_err::create_dir_all(&scp_target)?;
    let scp = || {
        let mut command = Command::new("scp");
        command
            .args(["-q", "-B", "-P", &sshd.port().to_string(), "-i"])
            .arg(sshd.client_key_path())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                sshd.known_hosts_path().display()
            ))
            .arg(&fixture)
            .arg(format!(
                "{}@127.0.0.1:{}/payload.bin",
                sshd.user(),
                scp_target.display()
            ));
        command
    };

    // Warm up both (and create the remote path).
    time(&mut deploy())?;
    time(&mut scp())?;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..RUNS {
        let _ = fs_err::remove_file(remote_path.join(".slipway/bundle.json"));
        ours.push(time(&mut deploy())?);
        theirs.push(time(&mut scp())?);
    }
    let ours = median(&mut ours);
    let theirs = median(&mut theirs);
    let ratio = ours.as_secs_f64() / theirs.as_secs_f64().max(f64::MIN_POSITIVE);

    time(&mut deploy_env("small"))?;
    time(&mut tar_pipe())?;
    let mut ours_small = Vec::new();
    let mut theirs_small = Vec::new();
    for _ in 0..RUNS {
        let _ = fs_err::remove_file(small_remote.join(".slipway/bundle.json"));
        ours_small.push(time(&mut deploy_env("small"))?);
        theirs_small.push(time(&mut tar_pipe())?);
    }
    let ours_small = median(&mut ours_small);
    let theirs_small = median(&mut theirs_small);
    let small_ratio = ours_small.as_secs_f64() / theirs_small.as_secs_f64().max(f64::MIN_POSITIVE);

    let mut unchanged = Vec::new();
    for _ in 0..RUNS {
        unchanged.push(time(&mut deploy())?);
    }
    let unchanged = median(&mut unchanged);

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
        Figure {
            name: UPLOAD.to_owned(),
            value: format!(
                "{:.2} ({} ms / {} ms)",
                ratio,
                ours.as_millis(),
                theirs.as_millis()
            ),
            goal: "≤ 1.0".to_owned(),
            is_met: ratio <= 1.0,
        },
        Figure {
            name: SMALL.to_owned(),
            value: format!(
                "{:.2} ({} ms / {} ms)",
                small_ratio,
                ours_small.as_millis(),
                theirs_small.as_millis()
            ),
            goal: "≤ 1.0".to_owned(),
            is_met: small_ratio <= 1.0,
        },
        Figure {
            name: NO_CHANGE.to_owned(),
            value: format!("{} ms", unchanged.as_millis()),
            goal: "< 1000 ms".to_owned(),
            is_met: unchanged < Duration::from_secs(1),
        },
        Figure {
            name: ROUND_TRIPS.to_owned(),
            value: format!("{connections} connection(s), {commands} commands"),
            goal: "report".to_owned(),
            is_met: true,
        },
    ])
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
