//! The env's deploy lock: a `coordination.k8s.io/v1` Lease, `slipway-<env>`
//! in the env's namespace, as client-go's leader election keeps one.
//!
//! Taken with optimistic concurrency: `kubectl create` when there is none,
//! else `kubectl replace` of the object read, at its `resourceVersion`, when
//! it is free (no holder) or expired; the API server refuses a replace at a
//! stale resourceVersion, so of two deploys racing for it one wins. Expired
//! means what client-go's leader election means: this deploy watched the
//! Lease stay unchanged (one `resourceVersion`) for `leaseDurationSeconds`
//! by its own monotonic clock. `renewTime` is the holder's clock, and
//! comparing it with ours would let a runner whose clock runs ahead take a
//! live lease over, and keep a dead one held when the holder's ran ahead. The holder renews it every third of
//! its duration while the deploy runs and releases it at the end (holder
//! cleared). A deploy that dies stops renewing: the lease expires by itself
//! and the next deploy takes it over, saying so. It cannot go stale. A
//! deploy cancelled by SIGINT or SIGTERM (a cancelled CI job) gives the
//! lease back before it exits 130 or 143, so the next deploy need not wait
//! for it to expire; its record keeps saying that it did not finish.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jiff::Timestamp;

use crate::kubectl::{Kubectl, REQUEST_TIMEOUT, Runner};

/// How long a lease holds without a renewal.
pub(crate) const LEASE_SECONDS: u64 = 30;
/// How often a taken lease is looked at again while another deploy holds it.
const POLL: Duration = Duration::from_secs(2);

/// The Lease's name for an env: `slipway-<env>`, a DNS subdomain.
pub(crate) fn name(env: &str) -> String {
    let cleaned: String = env
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("slipway-{}", cleaned.trim_matches('-'))
}

/// A MicroTime as the API writes it.
fn micro_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The Lease object written by create and replace; `holder` `None` releases it.
pub(crate) fn object(
    name: &str,
    namespace: &str,
    holder: Option<&str>,
    now: Timestamp,
    resource_version: Option<&str>,
    transitions: u64,
) -> serde_json::Value {
    let mut metadata = serde_json::json!({"name": name, "namespace": namespace});
    if let Some(version) = resource_version {
        metadata["resourceVersion"] = serde_json::json!(version);
    }
    let spec = match holder {
        Some(holder) => serde_json::json!({
            "holderIdentity": holder,
            "leaseDurationSeconds": LEASE_SECONDS,
            "acquireTime": micro_time(now),
            "renewTime": micro_time(now),
            "leaseTransitions": transitions,
        }),
        // Released as client-go releases: no holder, a one-second duration.
        None => serde_json::json!({
            "leaseDurationSeconds": 1,
            "renewTime": micro_time(now),
            "leaseTransitions": transitions,
        }),
    };
    serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    })
}

/// What a Lease read from the cluster says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// No holder: take it.
    Free {
        resource_version: String,
        transitions: u64,
    },
    /// Its holder stopped renewing it: take it over, saying whose it was.
    Expired {
        resource_version: String,
        transitions: u64,
        holder: String,
        expired: String,
    },
    /// Held: wait.
    Held { holder: String, until: String },
}

/// Judges a Lease (`kubectl get lease -o json`) at `now`.
pub(crate) fn judge(lease: &serde_json::Value, now: Timestamp) -> anyhow::Result<State> {
    let resource_version = lease["metadata"]["resourceVersion"]
        .as_str()
        .context("the Lease has no resourceVersion")?
        .to_owned();
    let spec = &lease["spec"];
    let transitions = spec["leaseTransitions"].as_u64().unwrap_or(0);
    let holder = spec["holderIdentity"].as_str().unwrap_or_default();
    if holder.is_empty() {
        return Ok(State::Free {
            resource_version,
            transitions,
        });
    }
    let seconds = spec["leaseDurationSeconds"].as_i64().unwrap_or(0);
    let renewed = spec["renewTime"]
        .as_str()
        .or(spec["acquireTime"].as_str())
        .and_then(|t| t.parse::<Timestamp>().ok());
    // A lease whose times cannot be read never expires by our reading: it is
    // someone else's, written by another tool; the deploy waits, then fails
    // naming it.
    let Some(until) =
        renewed.and_then(|r| r.checked_add(jiff::SignedDuration::from_secs(seconds)).ok())
    else {
        return Ok(State::Held {
            holder: holder.to_owned(),
            until: "unknown (its renewTime cannot be read)".to_owned(),
        });
    };
    if until <= now {
        Ok(State::Expired {
            resource_version,
            transitions,
            holder: holder.to_owned(),
            expired: micro_time(until),
        })
    } else {
        Ok(State::Held {
            holder: holder.to_owned(),
            until: micro_time(until),
        })
    }
}

/// Turns `judge`'s reading of a held Lease into this deploy's own: held
/// until it has stayed at one `resourceVersion` for `leaseDurationSeconds`
/// since this deploy first saw that version (`observed`), then expired,
/// whatever its `renewTime` says. A Lease without a duration is held.
fn observe(
    state: State,
    lease: &serde_json::Value,
    observed: &mut Option<(String, Instant)>,
) -> State {
    let (holder, until, resource_version, transitions) = match state {
        State::Free { .. } => return state,
        State::Held { holder, until } => (
            holder,
            until,
            lease["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            lease["spec"]["leaseTransitions"].as_u64().unwrap_or(0),
        ),
        State::Expired {
            resource_version,
            transitions,
            holder,
            expired,
        } => (holder, expired, resource_version, transitions),
    };
    let Some(seconds) = lease["spec"]["leaseDurationSeconds"]
        .as_u64()
        .filter(|s| *s > 0)
    else {
        return State::Held { holder, until };
    };
    match observed {
        Some((version, since)) if *version == resource_version => {
            if since.elapsed() >= Duration::from_secs(seconds) {
                return State::Expired {
                    resource_version,
                    transitions,
                    holder,
                    expired: format!(
                        "which nobody renewed for {seconds}s, its duration, while this deploy watched"
                    ),
                };
            }
        }
        _ => *observed = Some((resource_version, Instant::now())),
    }
    State::Held { holder, until }
}

/// Whether kubectl's failure is the API's `AlreadyExists` or `Conflict`: another deploy won a race.
fn is_race(stderr: &str) -> bool {
    stderr.contains("AlreadyExists")
        || stderr.contains("already exists")
        || stderr.contains("the object has been modified")
        || stderr.contains("Conflict")
}

/// The argvs of the lease's commands.
pub(crate) fn get_argv(kubectl: &Kubectl, name: &str) -> Vec<String> {
    kubectl.cluster(&[
        "get",
        "lease",
        name,
        "-o",
        "json",
        "--ignore-not-found",
        REQUEST_TIMEOUT,
    ])
}

/// `kubectl create -f - -o json` or `kubectl replace -f - -o json`.
pub(crate) fn write_argv(kubectl: &Kubectl, verb: &str) -> Vec<String> {
    kubectl.cluster(&[verb, "-f", "-", "-o", "json", REQUEST_TIMEOUT])
}

/// A lease this deploy holds; [`Held::release`] gives it back.
pub(crate) struct Held {
    name: String,
    namespace: String,
    holder: String,
    resource_version: Arc<Mutex<(String, u64)>>,
    is_lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
    kubectl: Kubectl,
}

/// Takes the env's lease for `holder`, waiting up to `wait` while another
/// deploy holds it. `say` tells people what happens (a takeover, a wait);
/// `ran` gets each command run.
pub(crate) fn acquire(
    kubectl: &Kubectl,
    runner: &'static dyn Runner,
    env: &str,
    holder: &str,
    wait: Duration,
    say: &dyn Fn(&str),
    ran: &mut Vec<Vec<String>>,
) -> anyhow::Result<Held> {
    let name = name(env);
    let namespace = kubectl.namespace.clone();
    let deadline = slipway_core::duration::deadline(Instant::now(), wait);
    let mut said_waiting = false;
    // The resourceVersion of the held Lease and when this deploy first saw it.
    let mut observed: Option<(String, Instant)> = None;
    loop {
        let argv = get_argv(kubectl, &name);
        let read = runner.run(&argv, b"")?;
        ran.push(argv);
        if !read.is_success() {
            anyhow::bail!(
                "cannot read the lease `{namespace}/{name}` ({})",
                read.reason()
            );
        }
        let (verb, resource_version, transitions) = if read
            .stdout
            .iter()
            .all(u8::is_ascii_whitespace)
        {
            ("create", None, 0)
        } else {
            let lease: serde_json::Value = serde_json::from_slice(&read.stdout)
                .with_context(|| format!("the lease `{namespace}/{name}` is not JSON"))?;
            let state = judge(&lease, Timestamp::now())?;
            match observe(state, &lease, &mut observed) {
                State::Free {
                    resource_version,
                    transitions,
                } => ("replace", Some(resource_version), transitions + 1),
                State::Expired {
                    resource_version,
                    transitions,
                    holder: previous,
                    expired,
                } => {
                    say(&format!(
                        "taking over the lease `{namespace}/{name}` of `{previous}`, {expired} (that deploy stopped without releasing it)"
                    ));
                    ("replace", Some(resource_version), transitions + 1)
                }
                State::Held {
                    holder: other,
                    until,
                } => {
                    if Instant::now() >= deadline {
                        anyhow::bail!(
                            "env `{env}` is being deployed by `{other}`: it holds the lease `{namespace}/{name}` (renewed while it runs, last until {until} by its clock; taken over once it stays unchanged for its duration); waited {}",
                            slipway_core::duration::format(wait)
                        );
                    }
                    if !said_waiting {
                        say(&format!(
                            "waiting for `{other}`, which holds the lease `{namespace}/{name}` (up to {})",
                            slipway_core::duration::format(wait)
                        ));
                        said_waiting = true;
                    }
                    std::thread::sleep(
                        POLL.min(deadline.saturating_duration_since(Instant::now())),
                    );
                    continue;
                }
            }
        };
        let lease = object(
            &name,
            &namespace,
            Some(holder),
            Timestamp::now(),
            resource_version.as_deref(),
            transitions,
        );
        let argv = write_argv(kubectl, verb);
        let written = runner.run(&argv, lease.to_string().as_bytes())?;
        ran.push(argv);
        if written.is_success() {
            let version = resource_version_of(&written.stdout)?;
            return Ok(start(
                kubectl.clone(),
                runner,
                name,
                holder.to_owned(),
                version,
                transitions,
            ));
        }
        if is_race(&written.stderr) {
            tracing::debug!(stderr = %written.stderr, "another deploy won the race for the lease; reading it again");
            continue;
        }
        anyhow::bail!(
            "cannot {verb} the lease `{namespace}/{name}` ({})",
            written.reason()
        );
    }
}

fn resource_version_of(stdout: &[u8]) -> anyhow::Result<String> {
    let lease: serde_json::Value =
        serde_json::from_slice(stdout).context("kubectl printed a lease that is not JSON")?;
    lease["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned)
        .context("the lease written has no resourceVersion")
}

/// What the signal watcher needs to give the held lease back.
struct OnSignal {
    kubectl: Kubectl,
    runner: &'static dyn Runner,
    name: String,
    version: Arc<Mutex<(String, u64)>>,
}

/// The lease this process holds, for the signal watcher; `None` when none.
static HELD: Mutex<Option<OnSignal>> = Mutex::new(None);

/// From the first lease taken on: on SIGINT or SIGTERM, gives the held
/// lease back (holder cleared, at its latest resourceVersion) and exits
/// 128 + the signal's number. Without a way to watch for signals the lease
/// still expires by itself (a warning says so).
fn watch_signals() {
    static WATCH: std::sync::Once = std::sync::Once::new();
    WATCH.call_once(|| {
        use tokio::signal::unix::{SignalKind, signal};
        let watched = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .and_then(|runtime| {
                let signals = runtime.block_on(async {
                    Ok::<_, std::io::Error>((
                        signal(SignalKind::interrupt())?,
                        signal(SignalKind::terminate())?,
                    ))
                })?;
                Ok((runtime, signals))
            });
        let (runtime, (mut interrupt, mut terminate)) = match watched {
            Ok(watched) => watched,
            Err(error) => {
                tracing::warn!(%error, "cannot watch for SIGINT and SIGTERM; a cancelled deploy's lease expires by itself");
                return;
            }
        };
        std::thread::spawn(move || {
            let received = runtime.block_on(async move {
                tokio::select! {
                    _ = interrupt.recv() => 2,
                    _ = terminate.recv() => 15,
                }
            });
            let held = HELD
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(held) = held {
                tracing::warn!("cancelled: releasing the lease");
                let (version, transitions) = held
                    .version
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let lease = object(
                    &held.name,
                    &held.kubectl.namespace,
                    None,
                    Timestamp::now(),
                    Some(&version),
                    transitions,
                );
                let _ = held.runner.run(
                    &write_argv(&held.kubectl, "replace"),
                    lease.to_string().as_bytes(),
                );
            }
            std::process::exit(128 + received);
        });
    });
}

/// Starts renewing a lease just taken.
fn start(
    kubectl: Kubectl,
    runner: &'static dyn Runner,
    name: String,
    holder: String,
    resource_version: String,
    transitions: u64,
) -> Held {
    let namespace = kubectl.namespace.clone();
    let version = Arc::new(Mutex::new((resource_version, transitions)));
    *HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(OnSignal {
        kubectl: kubectl.clone(),
        runner,
        name: name.clone(),
        version: Arc::clone(&version),
    });
    watch_signals();
    let is_lost = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = mpsc::channel::<()>();
    let renewer = {
        let (kubectl, name, holder, version, is_lost) = (
            kubectl.clone(),
            name.clone(),
            holder.clone(),
            Arc::clone(&version),
            Arc::clone(&is_lost),
        );
        std::thread::spawn(move || {
            let every = Duration::from_secs(LEASE_SECONDS / 3);
            let mut renewed_at = Instant::now();
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let mut current = version
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match renew(runner, &kubectl, &name, &holder, &mut current) {
                    Renewal::Renewed => renewed_at = Instant::now(),
                    Renewal::Failed
                        if renewed_at.elapsed() < Duration::from_secs(LEASE_SECONDS) =>
                    {
                        tracing::warn!(lease = %name, "cannot renew the deploy's lease; trying again in {}s", every.as_secs());
                    }
                    Renewal::Failed | Renewal::Lost => {
                        tracing::warn!(lease = %name, "the deploy's lease is lost: another deploy may hold it now");
                        is_lost.store(true, Ordering::SeqCst);
                        break;
                    }
                }
            }
        })
    };
    Held {
        name,
        namespace,
        holder,
        resource_version: version,
        is_lost,
        stop: Some(stop),
        renewer: Some(renewer),
        kubectl,
    }
}

/// What one renewal did.
#[derive(Debug, PartialEq, Eq)]
enum Renewal {
    /// Written: `current` is its new resourceVersion.
    Renewed,
    /// Not written, and the Lease could not be read: still ours, unless
    /// that lasts a lease duration.
    Failed,
    /// Another deploy holds the Lease now (or nobody: it was released).
    Lost,
}

/// Renews the lease at `current`'s resourceVersion. When the write fails
/// (a Conflict, or a reply lost after the API server applied it, which
/// leaves `current` stale), reads the Lease again: still held by `holder`,
/// its resourceVersion is adopted and the renewal written once more; held
/// by anyone else, the lease is lost.
fn renew(
    runner: &dyn Runner,
    kubectl: &Kubectl,
    name: &str,
    holder: &str,
    current: &mut (String, u64),
) -> Renewal {
    let write = |current: &(String, u64)| {
        let lease = object(
            name,
            &kubectl.namespace,
            Some(holder),
            Timestamp::now(),
            Some(&current.0),
            current.1,
        );
        runner
            .run(
                &write_argv(kubectl, "replace"),
                lease.to_string().as_bytes(),
            )
            .ok()
            .filter(crate::kubectl::Ran::is_success)
            .and_then(|ran| resource_version_of(&ran.stdout).ok())
    };
    if let Some(next) = write(current) {
        current.0 = next;
        return Renewal::Renewed;
    }
    let read = runner
        .run(&get_argv(kubectl, name), b"")
        .ok()
        .filter(crate::kubectl::Ran::is_success)
        .and_then(|ran| serde_json::from_slice::<serde_json::Value>(&ran.stdout).ok());
    let Some(lease) = read else {
        return Renewal::Failed;
    };
    let (Some(version), Some(held_by)) = (
        lease["metadata"]["resourceVersion"].as_str(),
        lease["spec"]["holderIdentity"].as_str(),
    ) else {
        return Renewal::Lost;
    };
    if held_by != holder {
        return Renewal::Lost;
    }
    tracing::debug!(lease = %name, stale = %current.0, %version, "renewing the lease at the resourceVersion read");
    current.0 = version.to_owned();
    match write(current) {
        Some(next) => {
            current.0 = next;
            Renewal::Renewed
        }
        None => Renewal::Failed,
    }
}

/// Whether the lease a deploy took is still its own, for the target to
/// ask before each change and record.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    is_lost: Arc<AtomicBool>,
    shown: String,
}

impl Check {
    /// An error (exit 3) when the lease was lost: `before` names what is
    /// not done.
    pub(crate) fn still_held(&self, before: &str) -> anyhow::Result<()> {
        if self.is_lost.load(Ordering::SeqCst) {
            anyhow::bail!(
                "lost the lease `{}` (it could not be renewed for {LEASE_SECONDS}s, or another deploy holds it now): stopped before {before}; another deploy may be running on this env",
                self.shown
            );
        }
        Ok(())
    }
}

impl Held {
    /// What tells whether the lease is still held.
    pub(crate) fn check(&self) -> Check {
        Check {
            is_lost: Arc::clone(&self.is_lost),
            shown: self.shown(),
        }
    }

    /// `namespace/name`.
    pub(crate) fn shown(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Stops renewing and gives the lease back (holder cleared); a failure
    /// is a warning: the lease expires by itself. Returns the command run.
    pub(crate) fn release(mut self, runner: &dyn Runner) -> Vec<String> {
        *HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        if self.is_lost.load(Ordering::SeqCst) {
            tracing::warn!(lease = %self.shown(), "the lease could not be renewed during the deploy: another deploy may have run at the same time");
        }
        let (version, transitions) = self
            .resource_version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let lease = object(
            &self.name,
            &self.namespace,
            None,
            Timestamp::now(),
            Some(&version),
            transitions,
        );
        let argv = write_argv(&self.kubectl, "replace");
        match runner.run(&argv, lease.to_string().as_bytes()) {
            Ok(ran) if ran.is_success() => {
                tracing::debug!(lease = %self.shown(), holder = %self.holder, "released");
            }
            Ok(ran) => {
                tracing::warn!(lease = %self.shown(), reason = %ran.reason(), "cannot release the lease; it expires by itself within {LEASE_SECONDS}s")
            }
            Err(error) => {
                tracing::warn!(lease = %self.shown(), %error, "cannot release the lease; it expires by itself within {LEASE_SECONDS}s")
            }
        }
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn lease(holder: &str, renewed: &str, seconds: i64) -> serde_json::Value {
        serde_json::json!({
            "metadata": {"name": "slipway-prod", "resourceVersion": "42"},
            "spec": {"holderIdentity": holder, "renewTime": renewed, "leaseDurationSeconds": seconds, "leaseTransitions": 3}
        })
    }

    #[test]
    fn a_lease_is_held_until_its_duration_passes_since_its_renewal() {
        let now = at("2026-12-06T10:00:10Z");
        assert_eq!(
            judge(&lease("ci-1", "2026-12-06T10:00:00.000000Z", 30), now).unwrap(),
            State::Held {
                holder: "ci-1".to_owned(),
                until: "2026-12-06T10:00:30.000000Z".to_owned()
            }
        );
        assert_eq!(
            judge(&lease("ci-1", "2026-12-06T09:59:00.000000Z", 30), now).unwrap(),
            State::Expired {
                resource_version: "42".to_owned(),
                transitions: 3,
                holder: "ci-1".to_owned(),
                expired: "2026-12-06T09:59:30.000000Z".to_owned()
            }
        );
        assert_eq!(
            judge(&lease("", "2026-12-06T10:00:00.000000Z", 1), now).unwrap(),
            State::Free {
                resource_version: "42".to_owned(),
                transitions: 3
            }
        );
        assert!(matches!(
            judge(&lease("other-tool", "not a time", 30), now).unwrap(),
            State::Held { .. }
        ));
    }

    #[test]
    fn the_lease_object_is_a_coordination_v1_lease() {
        let now = at("2026-12-06T10:00:00Z");
        assert_eq!(
            object(
                "slipway-prod",
                "shop",
                Some("alice 20261206-100000"),
                now,
                Some("42"),
                4
            ),
            serde_json::json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "slipway-prod", "namespace": "shop", "resourceVersion": "42"},
                "spec": {
                    "holderIdentity": "alice 20261206-100000",
                    "leaseDurationSeconds": 30,
                    "acquireTime": "2026-12-06T10:00:00.000000Z",
                    "renewTime": "2026-12-06T10:00:00.000000Z",
                    "leaseTransitions": 4
                }
            })
        );
        assert_eq!(
            object("slipway-prod", "shop", None, now, Some("43"), 4)["spec"],
            serde_json::json!({"leaseDurationSeconds": 1, "renewTime": "2026-12-06T10:00:00.000000Z", "leaseTransitions": 4})
        );
    }

    /// A runner that answers each argv in turn, checking it.
    struct Script(std::sync::Mutex<Vec<(String, crate::kubectl::Ran)>>);

    impl Runner for Script {
        fn run(&self, argv: &[String], _stdin: &[u8]) -> anyhow::Result<crate::kubectl::Ran> {
            let (expected, ran) = self.0.lock().unwrap().remove(0);
            assert_eq!(argv.join(" "), expected);
            Ok(ran)
        }
    }

    fn ran(code: i32, stdout: &str, stderr: &str) -> crate::kubectl::Ran {
        crate::kubectl::Ran {
            code: Some(code),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.to_owned(),
        }
    }

    fn kubectl() -> Kubectl {
        Kubectl {
            program: "kubectl".into(),
            context: None,
            namespace: "shop".to_owned(),
        }
    }

    const GET: &str = "kubectl --namespace shop get lease slipway-prod -o json --ignore-not-found --request-timeout=30s";
    const REPLACE: &str = "kubectl --namespace shop replace -f - -o json --request-timeout=30s";

    #[test]
    fn an_expired_lease_is_taken_over_and_a_lost_race_read_again() {
        // Its holder's clock ran far ahead: its renewTime is in the future,
        // but nobody renews it, so it expires a duration after it is seen.
        let expired = lease("ci-7 (gone)", "2999-01-01T00:00:00.000000Z", 1).to_string();
        let script: &'static Script = Box::leak(Box::new(Script(std::sync::Mutex::new(vec![
            (GET.to_owned(), ran(0, &expired, "")),
            (GET.to_owned(), ran(0, &expired, "")),
            // Another deploy replaced it first: the API says Conflict.
            (
                REPLACE.to_owned(),
                ran(
                    1,
                    "",
                    "Error from server (Conflict): the object has been modified",
                ),
            ),
            (GET.to_owned(), ran(0, &expired, "")),
            (
                REPLACE.to_owned(),
                ran(0, r#"{"metadata":{"resourceVersion":"43"}}"#, ""),
            ),
        ]))));
        let said = std::sync::Mutex::new(Vec::new());
        let mut commands = Vec::new();
        let held = acquire(
            &kubectl(),
            script,
            "prod",
            "alice",
            Duration::from_secs(5),
            &|line| said.lock().unwrap().push(line.to_owned()),
            &mut commands,
        )
        .expect("taken over");
        assert_eq!(commands.len(), 5);
        assert_eq!(
            said.lock().unwrap()[1],
            "taking over the lease `shop/slipway-prod` of `ci-7 (gone)`, which nobody renewed for 1s, its duration, while this deploy watched (that deploy stopped without releasing it)"
        );
        script
            .0
            .lock()
            .unwrap()
            .push((REPLACE.to_owned(), ran(0, "{}", "")));
        assert_eq!(held.release(script).join(" "), REPLACE);
    }

    /// A runner that answers each argv in turn, checking it, and keeps each stdin.
    /// The argvs still expected (with their answers), and each stdin given.
    type Expected = (Vec<(String, crate::kubectl::Ran)>, Vec<String>);

    struct Recorded(std::sync::Mutex<Expected>);

    impl Runner for Recorded {
        fn run(&self, argv: &[String], stdin: &[u8]) -> anyhow::Result<crate::kubectl::Ran> {
            let mut state = self.0.lock().unwrap();
            let (expected, ran) = state.0.remove(0);
            assert_eq!(argv.join(" "), expected);
            state.1.push(String::from_utf8_lossy(stdin).into_owned());
            Ok(ran)
        }
    }

    fn renewal(steps: Vec<(&str, crate::kubectl::Ran)>) -> (Renewal, (String, u64), Vec<String>) {
        let runner = Recorded(std::sync::Mutex::new((
            steps.into_iter().map(|(a, r)| (a.to_owned(), r)).collect(),
            Vec::new(),
        )));
        let mut current = ("100".to_owned(), 3);
        let renewal = renew(&runner, &kubectl(), "slipway-prod", "alice", &mut current);
        let (left, stdins) = runner.0.into_inner().unwrap();
        assert!(left.is_empty(), "not run: {left:?}");
        (renewal, current, stdins)
    }

    #[test]
    fn a_renewal_whose_reply_was_lost_adopts_the_version_of_the_lease_still_ours() {
        // The last renewal was applied but its reply lost: "100" is stale.
        let conflict = "Error from server (Conflict): the object has been modified";
        let ours = lease("alice", "2026-12-06T10:00:00.000000Z", 30).to_string();
        let (renewal, current, stdins) = renewal(vec![
            (REPLACE, ran(1, "", conflict)),
            (GET, ran(0, &ours, "")),
            (
                REPLACE,
                ran(0, r#"{"metadata":{"resourceVersion":"43"}}"#, ""),
            ),
        ]);
        assert_eq!(renewal, Renewal::Renewed);
        assert_eq!(current, ("43".to_owned(), 3));
        let version = |stdin: &str| {
            serde_json::from_str::<serde_json::Value>(stdin).unwrap()["metadata"]["resourceVersion"]
                .clone()
        };
        assert_eq!(version(&stdins[0]), "100");
        assert_eq!(version(&stdins[2]), "42", "the version read is adopted");
    }

    #[test]
    fn a_renewal_refused_for_a_lease_another_holds_is_a_lost_lease() {
        let conflict = "Error from server (Conflict): the object has been modified";
        let theirs = lease("bob", "2026-12-06T10:00:00.000000Z", 30).to_string();
        let (renewal, current, _) = renewal(vec![
            (REPLACE, ran(1, "", conflict)),
            (GET, ran(0, &theirs, "")),
        ]);
        assert_eq!(renewal, Renewal::Lost);
        assert_eq!(current.0, "100", "never renewed at another's version");
        // Unreadable: not known lost yet (the renewer counts a duration).
        let (renewal, _, _) = renewal_unreadable();
        assert_eq!(renewal, Renewal::Failed);
    }

    fn renewal_unreadable() -> (Renewal, (String, u64), Vec<String>) {
        renewal(vec![
            (
                REPLACE,
                ran(1, "", "Unable to connect to the server: i/o timeout"),
            ),
            (
                GET,
                ran(1, "", "Unable to connect to the server: i/o timeout"),
            ),
        ])
    }

    #[test]
    fn a_lost_lease_stops_the_deploy_naming_the_loss() {
        let check = Check {
            is_lost: Arc::new(AtomicBool::new(false)),
            shown: "shop/slipway-prod".to_owned(),
        };
        check.still_held("applying release 4").expect("held");
        check.is_lost.store(true, Ordering::SeqCst);
        assert_eq!(
            check
                .still_held("applying release 4")
                .unwrap_err()
                .to_string(),
            "lost the lease `shop/slipway-prod` (it could not be renewed for 30s, or another deploy holds it now): stopped before applying release 4; another deploy may be running on this env"
        );
    }

    #[test]
    fn a_held_lease_is_waited_for_then_refused_naming_its_holder() {
        let held = lease("bob (ci@runner, pid 7)", "2999-01-01T00:00:00.000000Z", 30).to_string();
        let script: &'static Script = Box::leak(Box::new(Script(std::sync::Mutex::new(vec![(
            GET.to_owned(),
            ran(0, &held, ""),
        )]))));
        let error = acquire(
            &kubectl(),
            script,
            "prod",
            "alice",
            Duration::ZERO,
            &|_| {},
            &mut Vec::new(),
        )
        .err()
        .expect("refused");
        assert_eq!(
            error.to_string(),
            "env `prod` is being deployed by `bob (ci@runner, pid 7)`: it holds the lease `shop/slipway-prod` (renewed while it runs, last until 2999-01-01T00:00:30.000000Z by its clock; taken over once it stays unchanged for its duration); waited 0s"
        );
    }

    #[test]
    fn a_lease_renewed_by_a_clock_behind_ours_is_still_held() {
        // Its renewTime is long past by our clock, but its holder renews it
        // (a new resourceVersion each read): it is live, never taken over.
        let mut renewed = lease("carol (ci@slow-clock)", "2020-01-01T00:00:00.000000Z", 1);
        let first = renewed.to_string();
        renewed["metadata"]["resourceVersion"] = serde_json::json!("43");
        let second = renewed.to_string();
        renewed["metadata"]["resourceVersion"] = serde_json::json!("44");
        let third = renewed.to_string();
        let script: &'static Script = Box::leak(Box::new(Script(std::sync::Mutex::new(vec![
            (GET.to_owned(), ran(0, &first, "")),
            (GET.to_owned(), ran(0, &second, "")),
            (GET.to_owned(), ran(0, &third, "")),
        ]))));
        let error = acquire(
            &kubectl(),
            script,
            "prod",
            "alice",
            Duration::from_secs(3),
            &|_| {},
            &mut Vec::new(),
        )
        .err()
        .expect("refused");
        assert!(
            error
                .to_string()
                .starts_with("env `prod` is being deployed by `carol (ci@slow-clock)`"),
            "{error}"
        );
    }

    #[test]
    fn lease_names_are_dns_names() {
        assert_eq!(name("prod"), "slipway-prod");
        assert_eq!(name("Pre_Prod"), "slipway-pre-prod");
    }
}
