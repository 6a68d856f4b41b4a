//! `ssh-deploy`'s figures (issue #7): uploading a 200 MB bundle against
//! OpenSSH `scp` of the same file to the same test bed sshd in the same run,
//! and the overhead of a redeploy in which nothing changed.
//!
//! Each upload run first removes the host's bundle manifest, so ssh-deploy
//! cannot skip the unchanged file; the two sides alternate.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use xshell::Shell;

use super::{Figure, median};

const UPLOAD: &str = "ssh-deploy: 200 MB bundle upload / scp";
const NO_CHANGE: &str = "ssh-deploy: no-change redeploy";
const SIZE: u64 = 200 * 1024 * 1024;
const RUNS: usize = 3;

/// Both figures, unless `--only` excludes them.
pub(super) fn figures(
    _sh: &Shell,
    bin_dir: &Path,
    only: Option<&str>,
) -> anyhow::Result<Vec<Figure>> {
    let wanted = |name: &str| only.is_none_or(|only| name.contains(only));
    if !wanted(UPLOAD) && !wanted(NO_CHANGE) {
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
    let remote_path = remote.path().join("srv");
    fs_err::write(
        project.path().join("slipway.toml"),
        format!(
            "[images.app]\nrepository = \"127.0.0.1:5000/app\"\n\n[envs.bench]\nhosts = [\"{}@127.0.0.1:{}\"]\nremote_path = \"{}\"\nbundle = [\"deploy/payload.bin\"]\ncommand = \"true\"\nimages = {{ APP_IMAGE = \"app\" }}\n",
            sshd.user(),
            sshd.port(),
            remote_path.display()
        ),
    )?;
    let image = format!("app=127.0.0.1:5000/app@sha256:{}", "a".repeat(64));
    let deploy = || {
        let mut command = Command::new(bin_dir.join("ssh-deploy"));
        command
            .current_dir(project.path())
            .args([
                "-q",
                "deploy",
                "--env",
                "bench",
                "--image",
                &image,
                "--ssh-key",
            ])
            .arg(sshd.client_key_path())
            .arg("--known-hosts")
            .arg(sshd.known_hosts_path());
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

    let mut unchanged = Vec::new();
    for _ in 0..RUNS {
        unchanged.push(time(&mut deploy())?);
    }
    let unchanged = median(&mut unchanged);
    Ok(vec![
        Figure {
            name: UPLOAD.to_owned(),
            value: format!(
                "{:.2} ({} ms / {} ms)",
                ratio,
                ours.as_millis(),
                theirs.as_millis()
            ),
            goal: "≤ 1.5".to_owned(),
            is_met: ratio <= 1.5,
        },
        Figure {
            name: NO_CHANGE.to_owned(),
            value: format!("{} ms", unchanged.as_millis()),
            goal: "< 1000 ms".to_owned(),
            is_met: unchanged < Duration::from_secs(1),
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
