//! `ready-wait`'s figures (issue #6): start-up against `npx wait-on` on an
//! endpoint that is already ready, the time from an endpoint turning ready
//! to `ready-wait` exiting, and the CPU time of 60 s of waiting, beside
//! wait-on's.
//!
//! wait-on is installed from the npm registry into `target/bench-node`,
//! never globally. The endpoint is a tiny HTTP server on a loopback port,
//! inside this process, whose readiness the benchmark switches.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use xshell::{Shell, cmd};

use super::{Cmd, Comparison, Figure, Goal};

/// The pause between attempts in the latency figure (fixed: no growth).
const INTERVAL_MS: u64 = 200;
/// How long the CPU figure waits.
const CPU_WAIT_SECS: u64 = 60;

const STARTUP: &str = "ready-wait: start-up, endpoint already ready";
const STARTUP_DIRECT: &str = "ready-wait: start-up, endpoint already ready (wait-on without npx)";
const LATENCY: &str = "ready-wait: endpoint ready -> exit, worst of 5";
const CPU: &str = "ready-wait: CPU time while waiting 60 s";
const CPU_WAIT_ON: &str = "ready-wait: CPU time while waiting 60 s, wait-on";

fn wanted(name: &str, only: Option<&str>) -> bool {
    only.is_none_or(|only| name.contains(only))
}

/// `ready-wait` and `npx wait-on` each waiting for an endpoint that is
/// already ready: what a user pays per call.
pub(super) fn comparisons(
    sh: &Shell,
    bin_dir: &Path,
    only: Option<&str>,
) -> anyhow::Result<Vec<Comparison>> {
    if !wanted(STARTUP, only) && !wanted(STARTUP_DIRECT, only) {
        return Ok(Vec::new());
    }
    let node_dir = install_wait_on(sh)?;
    let url = format!(
        "http://{}/api/ready",
        serve(Arc::new(AtomicBool::new(true)))?
    );
    let wait_on_url = url.replacen("http://", "http-get://", 1);
    let ours = Cmd::new(bin_dir.join("ready-wait"), &["--timeout", "10s", &url]);
    let mut npx = Cmd::new(
        "npx",
        &["--no", "--", "wait-on", "--timeout", "10000", &wait_on_url],
    );
    npx.dir = Some(node_dir.clone());
    let direct = Cmd::new(
        node_dir.join("node_modules/.bin/wait-on"),
        &["--timeout", "10000", &wait_on_url],
    );
    Ok(vec![
        Comparison {
            name: STARTUP.to_owned(),
            ours: ours.clone(),
            theirs: npx,
            goal: Goal::RatioAtMost(0.1),
        },
        Comparison {
            name: STARTUP_DIRECT.to_owned(),
            ours,
            theirs: direct,
            goal: Goal::Report,
        },
    ])
}

/// The latency and CPU figures; `--only` skips what it does not name.
pub(super) fn figures(
    sh: &Shell,
    bin_dir: &Path,
    only: Option<&str>,
) -> anyhow::Result<Vec<Figure>> {
    let ready_wait = bin_dir.join("ready-wait");
    let mut figures = Vec::new();
    if wanted(LATENCY, only) {
        eprintln!("xtask bench: {LATENCY}");
        figures.push(latency(&ready_wait)?);
    }
    if wanted(CPU, only) || wanted(CPU_WAIT_ON, only) {
        eprintln!("xtask bench: {CPU} (takes {CPU_WAIT_SECS} s)");
        figures.extend(cpu_while_waiting(sh, &ready_wait)?);
    }
    Ok(figures)
}

/// Starts `ready-wait` against a not-ready endpoint, switches the endpoint
/// to ready at an arbitrary moment and times until `ready-wait` exits.
fn latency(ready_wait: &Path) -> anyhow::Result<Figure> {
    let mut worst = Duration::ZERO;
    for run in 0..5u64 {
        let is_ready = Arc::new(AtomicBool::new(false));
        let url = format!("http://{}/api/ready", serve(Arc::clone(&is_ready))?);
        let interval = format!("{INTERVAL_MS}ms");
        let mut child = Command::new(ready_wait)
            .args([
                "--timeout",
                "30s",
                "--interval",
                &interval,
                "--max-interval",
                &interval,
                &url,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run `{}`", ready_wait.display()))?;
        // Spread the switch over the polling phase: the figure is the worst case.
        thread::sleep(Duration::from_millis(600 + run * 137));
        is_ready.store(true, Ordering::SeqCst);
        let switched = Instant::now();
        let status = child.wait().context("cannot wait for `ready-wait`")?;
        let elapsed = switched.elapsed();
        if !status.success() {
            bail!("`ready-wait {url}` did not see the endpoint turn ready ({status})");
        }
        worst = worst.max(elapsed);
    }
    let goal = Duration::from_millis(INTERVAL_MS + 20);
    Ok(Figure {
        name: format!("{LATENCY} (`--interval {INTERVAL_MS}ms`)"),
        value: format!("{} ms", worst.as_millis()),
        goal: format!("≤ {} ms (one interval + 20 ms)", goal.as_millis()),
        is_met: worst <= goal,
    })
}

/// Runs `ready-wait` and wait-on side by side for 60 s against an endpoint
/// that never turns ready, and reads each one's user + system CPU time
/// from the shell's `times` (the rusage of its waited-for child).
fn cpu_while_waiting(sh: &Shell, ready_wait: &Path) -> anyhow::Result<Vec<Figure>> {
    let node_dir = install_wait_on(sh)?;
    let url = format!(
        "http://{}/api/ready",
        serve(Arc::new(AtomicBool::new(false)))?
    );
    let timeout = format!("{CPU_WAIT_SECS}s");
    let ours = cpu_time_of(&[&ready_wait.to_string_lossy(), "--timeout", &timeout, &url])?;
    let wait_on = node_dir.join("node_modules/.bin/wait-on");
    let theirs = cpu_time_of(&[
        &wait_on.to_string_lossy(),
        "--timeout",
        &(CPU_WAIT_SECS * 1000).to_string(),
        &url.replacen("http://", "http-get://", 1),
    ])?;
    let ours = ours
        .join()
        .map_err(|_| anyhow::anyhow!("the CPU measurement of ready-wait panicked"))??;
    let theirs = theirs
        .join()
        .map_err(|_| anyhow::anyhow!("the CPU measurement of wait-on panicked"))??;
    Ok(vec![
        Figure {
            name: CPU.to_owned(),
            value: format!("{} ms", ours.as_millis()),
            goal: "< 50 ms".to_owned(),
            is_met: ours < Duration::from_millis(50),
        },
        Figure {
            name: CPU_WAIT_ON.to_owned(),
            value: format!("{} ms", theirs.as_millis()),
            goal: "report".to_owned(),
            is_met: true,
        },
    ])
}

/// Starts `argv` under bash on a thread; the thread returns the child's CPU
/// time once it has exited (its exit status is ignored: both time out).
fn cpu_time_of(argv: &[&str]) -> anyhow::Result<thread::JoinHandle<anyhow::Result<Duration>>> {
    let argv: Vec<String> = argv.iter().map(|a| (*a).to_owned()).collect();
    let child = Command::new("bash")
        .arg("-c")
        .arg(r#""$@" >/dev/null 2>&1; times"#)
        .arg("bash")
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run `bash` to measure CPU time")?;
    Ok(thread::spawn(move || {
        let output = child.wait_with_output().context("cannot wait for `bash`")?;
        let text = String::from_utf8_lossy(&output.stdout);
        // `times` prints the shell's line, then its children's: `0m0.012s 0m0.004s`.
        let children = text
            .lines()
            .nth(1)
            .with_context(|| format!("unexpected `times` output: {text}"))?;
        let mut total = Duration::ZERO;
        for field in children.split_whitespace() {
            total += parse_times_field(field)
                .with_context(|| format!("unexpected `times` field `{field}`"))?;
        }
        Ok(total)
    }))
}

/// Parses `1m2.345s`.
fn parse_times_field(field: &str) -> Option<Duration> {
    let (minutes, seconds) = field.strip_suffix('s')?.split_once('m')?;
    let seconds: f64 = seconds.parse().ok()?;
    let minutes: f64 = minutes.parse().ok()?;
    Some(Duration::from_secs_f64(minutes * 60.0 + seconds))
}

/// Installs wait-on into `target/bench-node` (once) and returns that directory.
fn install_wait_on(sh: &Shell) -> anyhow::Result<PathBuf> {
    let dir = crate::target_dir().join("bench-node");
    if dir.join("node_modules/.bin/wait-on").exists() {
        return Ok(dir);
    }
    eprintln!("xtask bench: installing wait-on into {}", dir.display());
    fs_err::create_dir_all(&dir)?;
    cmd!(
        sh,
        "npm install --prefix {dir} --no-audit --no-fund --no-save wait-on"
    )
    .run()
    .context("cannot install wait-on from the npm registry (needs `npm`)")?;
    Ok(dir)
}

/// Serves `GET` with 200 while `is_ready` holds, else 503, on a free
/// loopback port, for the rest of the process.
fn serve(is_ready: Arc<AtomicBool>) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let is_ready = Arc::clone(&is_ready);
            thread::spawn(move || answer(stream, &is_ready));
        }
    });
    Ok(addr)
}

fn answer(stream: TcpStream, is_ready: &AtomicBool) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let (status, body) = if is_ready.load(Ordering::SeqCst) {
        ("200 OK", "ok")
    } else {
        ("503 Service Unavailable", "starting")
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = reader.get_mut().write_all(response.as_bytes());
}
