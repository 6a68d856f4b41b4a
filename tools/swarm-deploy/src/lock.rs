//! The env's lock on the swarm: a docker config `slipway.<stack>.lock`,
//! which the engine creates atomically (a second `config create` of the
//! name fails), holding a lease: the holder and an expiry, renewed every
//! [`RENEW`] by a heartbeat config while the deploy runs, removed when the
//! deploy ends. A deploy killed before it could remove it leaves a lease
//! that expires within [`TTL`]; the next deploy takes it over, saying so.
//! A takeover removes the stale lock by its ID, so of two deploys taking
//! over at once only one removes it and only one then creates its own.
//! A lease is judged by the manager's clock alone — the time the manager
//! created the lock or its latest heartbeat, against the manager's time
//! now (`docker info`'s `SystemTime`) — never by a runner's: a runner whose
//! clock runs ahead or behind neither takes a live lock over nor keeps a
//! dead one alive.
//! A holder whose renewals fail (or are so slow that none succeeds for
//! [`TTL`]) may be taken over while it carries on: after a failed renewal
//! it looks whether the lock is still its own, and [`Held::still_held`],
//! asked before the stack deploy, a restore and each record, also looks
//! that the lock's config is still the one it created. A lost lock stops
//! the deploy (exit 3), changing and recording nothing more.
//! A deploy cancelled by SIGINT or SIGTERM (a cancelled CI job) removes
//! its lock before it exits 130 or 143; its record keeps saying that the
//! deploy did not finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use slipway_deploy::{Identity, LockGuard};

use crate::docker::Docker;

/// How long a lease lasts without renewal.
pub(crate) const TTL: Duration = Duration::from_secs(15);
/// How often the holder renews it.
const RENEW: Duration = Duration::from_secs(5);

const LOCK_LABEL: &str = "dev.slipway.lock";
const HOLDER_LABEL: &str = "dev.slipway.holder";
const EXPIRES_LABEL: &str = "dev.slipway.expires";
const BEAT_LABEL: &str = "dev.slipway.beat";

/// A held lock; dropping it stops the heartbeat and removes the lock.
pub(crate) struct Lease {
    docker: Docker,
    id: String,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
    /// The lock's ID for the signal watcher; `None` once released.
    held: Arc<std::sync::Mutex<Option<String>>>,
    /// What [`Held::still_held`] reads.
    check: Held,
}

impl Lease {
    /// A handle that says whether this lease is still held.
    pub(crate) fn check(&self) -> Held {
        self.check.clone()
    }
}

/// Whether a lease is still held: shared with its heartbeat.
#[derive(Clone)]
pub(crate) struct Held {
    docker: Docker,
    /// The lock config's name and the ID this deploy created.
    name: String,
    id: String,
    /// Set by the heartbeat once it knows the lock is lost.
    is_lost: Arc<AtomicBool>,
    /// When the lease was last created or renewed, by this process's clock.
    renewed: Arc<std::sync::Mutex<Instant>>,
}

impl Held {
    /// An error (exit 3) when the lock was lost: no renewal succeeded for
    /// [`TTL`], the heartbeat found it gone, or the lock config is now
    /// another's (or none). `before` names what is not done.
    pub(crate) fn still_held(&self, before: &str) -> anyhow::Result<()> {
        if !self.is_lost.load(Ordering::SeqCst) && self.is_expired() {
            self.is_lost.store(true, Ordering::SeqCst);
        }
        if !self.is_lost.load(Ordering::SeqCst) && !self.is_ours()? {
            self.is_lost.store(true, Ordering::SeqCst);
        }
        if self.is_lost.load(Ordering::SeqCst) {
            anyhow::bail!(
                "lost the lock `{}` (it could not be renewed for {}s, or another deploy took it over): stopped before {before}; another deploy may be running on this env",
                self.name,
                TTL.as_secs()
            );
        }
        Ok(())
    }

    fn is_expired(&self) -> bool {
        self.renewed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed()
            >= TTL
    }

    /// Whether the lock config is still the one this deploy created; an
    /// error when the manager cannot say.
    fn is_ours(&self) -> anyhow::Result<bool> {
        let ran = self.docker.try_run(
            &["config", "inspect", &self.name, "--format", "{{.ID}}"],
            &[],
            None,
        )?;
        if ran.success {
            return Ok(ran.stdout.trim() == self.id);
        }
        if is_not_found(&ran.stderr) {
            return Ok(false);
        }
        anyhow::bail!(
            "cannot check that the lock `{}` is still held: {}",
            self.name,
            ran.stderr.trim()
        )
    }
}

/// Whether docker's `stderr` says that a config does not exist.
fn is_not_found(stderr: &str) -> bool {
    let stderr = stderr.to_ascii_lowercase();
    stderr.contains("no such config") || stderr.contains("not found")
}

impl LockGuard for Lease {}

impl Drop for Lease {
    fn drop(&mut self) {
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.heartbeat.take() {
            let _ = thread.join();
        }
        remove_beats(&self.docker, &self.id);
        if let Err(error) = self.docker.run(&["config", "rm", &self.id], &[], None) {
            tracing::warn!("cannot remove the lock: {error:#}; it expires by itself");
        }
    }
}

/// The lock's config name for `stack`.
pub(crate) fn name(stack: &str) -> String {
    format!("slipway.{stack}.lock")
}

/// Takes the lock of `stack` (env `env`), waiting at most `wait` for a
/// live lease of another deploy.
pub(crate) fn acquire(
    docker: &Docker,
    stack: &str,
    env: &str,
    who: &Identity,
    wait: Duration,
) -> anyhow::Result<Lease> {
    let name = name(stack);
    let holder = format!("{} pid {}", who.holder, std::process::id());
    let deadline = Instant::now().checked_add(wait);
    let mut waited = false;
    // Watched from before the lock exists, so that no signal falls between
    // its creation and the watch.
    let held = Arc::new(std::sync::Mutex::new(None::<String>));
    let stop = Arc::new(AtomicBool::new(false));
    release_on_signal(docker, &held, &stop, &name, &holder);
    loop {
        let expires = slipway_deploy::now() + secs(TTL);
        let ran = docker.try_run(
            &[
                "config",
                "create",
                "--label",
                &format!("{LOCK_LABEL}={stack}"),
                "--label",
                &format!("{HOLDER_LABEL}={holder}"),
                "--label",
                &format!("{EXPIRES_LABEL}={expires}"),
                &name,
                "-",
            ],
            &[],
            Some(holder.as_bytes()),
        )?;
        if ran.success {
            let id = ran.stdout.trim().to_owned();
            *held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(id.clone());
            let check = Held {
                docker: docker.clone(),
                name: name.clone(),
                id: id.clone(),
                is_lost: Arc::new(AtomicBool::new(false)),
                renewed: Arc::new(std::sync::Mutex::new(Instant::now())),
            };
            let heartbeat = {
                let (check, stop) = (check.clone(), stop.clone());
                std::thread::spawn(move || beat(&check, &stop))
            };
            return Ok(Lease {
                docker: docker.clone(),
                id,
                stop,
                heartbeat: Some(heartbeat),
                held,
                check,
            });
        }
        if !ran.stderr.contains("already exists") {
            anyhow::bail!(
                "cannot create the lock `{name}` on the swarm: {}",
                ran.stderr.trim()
            );
        }
        let inspect = docker.try_run(
            &[
                "config",
                "inspect",
                &name,
                "--format",
                &format!(
                    "{{{{.ID}}}}\t{{{{index .Spec.Labels \"{HOLDER_LABEL}\"}}}}\t{{{{.CreatedAt.Unix}}}}"
                ),
            ],
            &[],
            None,
        )?;
        if !inspect.success {
            // Removed between our create and this look: try again.
            continue;
        }
        let line = inspect.stdout.trim().to_owned();
        let mut fields = line.split('\t');
        let id = fields.next().unwrap_or_default().to_owned();
        let other = fields.next().unwrap_or_default().to_owned();
        let created: i64 = fields
            .next()
            .and_then(|e| e.trim().parse().ok())
            .unwrap_or(0);
        let until = created.max(latest_beat(docker, &id)) + secs(TTL);
        let now = manager_now(docker)?;
        if until < now {
            tracing::warn!(
                "taking over the lock of env `{env}` from {other}: its lease expired at {} by the manager's clock (a deploy that was killed or lost the manager)",
                slipway_deploy::timestamp(until)
            );
            remove_beats(docker, &id);
            // By ID: if another deploy took it over first, this fails and
            // the loop sees the new holder.
            let _ = docker.try_run(&["config", "rm", &id], &[], None);
            continue;
        }
        if deadline.is_none_or(|d| Instant::now() >= d) {
            anyhow::bail!(
                "env `{env}` is locked by another deploy ({other}) whose lease runs until {} and stayed locked for `lock_timeout` ({}s); the lock is the docker config `{name}`, renewed every {}s while that deploy runs and taken over once it expires",
                slipway_deploy::timestamp(until),
                wait.as_secs(),
                RENEW.as_secs()
            );
        }
        if !waited {
            tracing::warn!("env `{env}` is locked by {other}; waiting up to `lock_timeout`");
            waited = true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// The manager's time now, seconds since the epoch.
fn manager_now(docker: &Docker) -> anyhow::Result<i64> {
    let text = docker.run(&["info", "--format", "{{.SystemTime}}"], &[], None)?;
    slipway_deploy::parse_timestamp(&text).ok_or_else(|| {
        anyhow::anyhow!(
            "cannot read the manager's clock: `docker info` printed `{}` as its SystemTime",
            text.trim()
        )
    })
}

/// When the manager created the latest heartbeat of lock `id` (0: none).
fn latest_beat(docker: &Docker, id: &str) -> i64 {
    let filter = format!("label={BEAT_LABEL}={id}");
    let Ok(ids) = docker.run(&["config", "ls", "-q", "--filter", &filter], &[], None) else {
        return 0;
    };
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return 0;
    }
    let mut args = vec!["config", "inspect"];
    args.extend(ids);
    args.extend(["--format", "{{.CreatedAt.Unix}}"]);
    docker
        .run(&args, &[], None)
        .map(|text| {
            text.lines()
                .filter_map(|l| l.trim().parse::<i64>().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn remove_beats(docker: &Docker, id: &str) {
    let filter = format!("label={BEAT_LABEL}={id}");
    if let Ok(ids) = docker.run(&["config", "ls", "-q", "--filter", &filter], &[], None) {
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["config", "rm"];
            args.extend(ids);
            let _ = docker.try_run(&args, &[], None);
        }
    }
}

/// Renews the lease every [`RENEW`] until `stop`: a new heartbeat config
/// with a later expiry, then the previous one removed. After a failed
/// renewal it looks whether the lock is still ours; once it is not, or no
/// renewal succeeded for [`TTL`], the lease is lost and renewals stop.
fn beat(check: &Held, stop: &AtomicBool) {
    let (docker, id) = (&check.docker, check.id.as_str());
    let mut previous: Option<String> = None;
    let mut seq = 0u64;
    let mut next = Instant::now() + RENEW;
    while !stop.load(Ordering::SeqCst) {
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        next = Instant::now() + RENEW;
        seq += 1;
        let expires = slipway_deploy::now() + secs(TTL);
        // Named after the lock's ID, not the stack, so that the name stays
        // within the 64 characters swarm allows a config's.
        let beat_name = format!("slipway.lock.beat.{}.{seq}", id.get(..12).unwrap_or(id));
        let created = docker.run(
            &[
                "config",
                "create",
                "--label",
                &format!("{BEAT_LABEL}={id}"),
                "--label",
                &format!("{EXPIRES_LABEL}={expires}"),
                &beat_name,
                "-",
            ],
            &[],
            Some(b"beat"),
        );
        match created {
            Ok(_) => {
                *check
                    .renewed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
                if let Some(old) = previous.replace(beat_name) {
                    let _ = docker.try_run(&["config", "rm", &old], &[], None);
                }
            }
            Err(error) => {
                tracing::warn!("cannot renew the lock's lease: {error:#}");
                // Unreadable is not lost yet: the renewal's age decides.
                if check.is_expired() || matches!(check.is_ours(), Ok(false)) {
                    tracing::warn!(lock = %check.name, "the deploy's lock is lost: another deploy may hold it now");
                    check.is_lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}

/// On SIGINT or SIGTERM: stops the heartbeat, removes the lock, exits
/// 128 + the signal's number. Without a way to watch for signals the
/// lease still expires by itself (a warning says so).
fn release_on_signal(
    docker: &Docker,
    held: &Arc<std::sync::Mutex<Option<String>>>,
    stop: &Arc<AtomicBool>,
    name: &str,
    holder: &str,
) {
    let (docker, held, stop) = (docker.clone(), held.clone(), stop.clone());
    let (name, holder) = (name.to_owned(), holder.to_owned());
    slipway_deploy::signals::on_first_signal(
        "a cancelled deploy's lock expires with its lease",
        move |received| {
            stop.store(true, Ordering::SeqCst);
            let id = held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
                // A signal between the swarm creating the lock and
                // `config create` answering with its ID: the lock is ours
                // if its holder label names this process.
                .or_else(|| created_by(&docker, &name, &holder));
            if let Some(id) = id {
                tracing::warn!("cancelled: releasing the lock");
                remove_beats(&docker, &id);
                let _ = docker.try_run(&["config", "rm", &id], &[], None);
            }
            std::process::exit(128 + received);
        },
    );
}

/// The ID of the lock config `name` if its holder label is `holder` (this
/// process), for a signal that came before `config create` answered.
fn created_by(docker: &Docker, name: &str, holder: &str) -> Option<String> {
    let inspect = docker
        .try_run(
            &[
                "config",
                "inspect",
                name,
                "--format",
                &format!("{{{{.ID}}}}\t{{{{index .Spec.Labels \"{HOLDER_LABEL}\"}}}}"),
            ],
            &[],
            None,
        )
        .ok()?;
    if !inspect.success {
        return None;
    }
    let line = inspect.stdout.trim();
    let (id, label) = line.split_once('\t')?;
    (label == holder && !id.is_empty()).then(|| id.to_owned())
}
