//! A fleet fails as a unit: a preflight on every host before any is
//! touched, then the hosts in batches (a canary first, if asked), each batch
//! deployed and ready before the next starts. When a host fails, the hosts
//! not started are not started and those this run deployed are rolled back
//! to their previous release, unless `--keep-going`.

use slipway_config::Host;
use slipway_core::progress::Progress;

use crate::deploy::{self, Connection, Identity, Images, Job};
use crate::preflight::{self, Checks};
use crate::{HostReport, Outcome, cancel};

/// How the hosts are grouped, and what a failure does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Hosts deployed at once after the canary.
    pub(crate) batch: usize,
    /// Hosts deployed (and ready) first.
    pub(crate) canary: Option<usize>,
    /// Whether a failed host leaves the others going (`--keep-going`).
    pub(crate) is_keep_going: bool,
}

/// The batches of `hosts` (indices), the canary first.
pub(crate) fn batches(hosts: &[usize], plan: Plan) -> Vec<Vec<usize>> {
    let mut batches = Vec::new();
    let mut rest = hosts;
    if let Some(canary) = plan.canary {
        let (first, after) = rest.split_at(canary.min(rest.len()));
        if !first.is_empty() {
            batches.push(first.to_vec());
        }
        rest = after;
    }
    batches.extend(rest.chunks(plan.batch.max(1)).map(<[usize]>::to_vec));
    batches
}

/// Deploys `job` to `hosts` as one fleet; one report per host, in order.
pub(crate) fn deploy(
    hosts: &[Host],
    connection: &Connection,
    identity: &Identity,
    job: &Job,
    progress: &Progress,
    plan: Plan,
    checks: &Checks,
) -> Vec<HostReport> {
    let mut reports: Vec<HostReport> = hosts
        .iter()
        .map(|host| {
            let mut report = HostReport::new(&host.to_string());
            report.outcome = Outcome::NotStarted;
            report
        })
        .collect();
    let all: Vec<usize> = (0..hosts.len()).collect();
    // Each host's preflight connection, which its deploy goes on with.
    let sessions: Vec<std::sync::Mutex<Option<(ssh2::Session, crate::ssh::Warms)>>> =
        hosts.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let task = progress.task("preflight", "checking every host");
    let checked = parallel(&all, |i| {
        let task = progress.task(&hosts[i].to_string(), "connecting");
        let result = preflight::check(&hosts[i], connection, job, checks).map_err(|error| {
            (
                deploy::cancelled_in(&error),
                format!("preflight: {}", deploy::chain(&error)),
            )
        });
        match result {
            Ok(session) => {
                task.finish("preflight passed");
                if let Ok(mut slot) = sessions[i].lock() {
                    *slot = Some(session);
                }
                Ok(())
            }
            Err((cancelled, message)) => {
                task.fail(&message);
                Err((cancelled, message))
            }
        }
    });
    let mut good = Vec::new();
    for (i, result) in all.iter().zip(checked) {
        match result {
            Ok(()) => good.push(*i),
            Err((cancelled, message)) => {
                let report = &mut reports[*i];
                report.outcome = match cancelled {
                    Some(_) => Outcome::Cancelled,
                    None => Outcome::Error,
                };
                report.error = Some(message);
            }
        }
    }
    if good.len() < hosts.len() {
        let failed = names(&reports, all.iter().filter(|i| !good.contains(i)));
        task.fail(&format!("failed on {failed}"));
        if !plan.is_keep_going {
            for i in &good {
                reports[*i].error = Some(format!(
                    "not started: the preflight failed on {failed}; nothing was done on any host"
                ));
            }
            return reports;
        }
    } else {
        task.finish("every host is ready for the deploy");
    }
    let batches = batches(&good, plan);
    let mut deployed: Vec<usize> = Vec::new();
    for (n, batch) in batches.iter().enumerate() {
        if cancel::check().is_err() {
            break;
        }
        let results = parallel(batch, |i| {
            let session = sessions[i].lock().ok().and_then(|mut slot| slot.take());
            deploy::deploy(&hosts[i], connection, identity, job, progress, session)
        });
        let mut failed = Vec::new();
        for (i, report) in batch.iter().zip(results) {
            if report.outcome == Outcome::Deployed {
                deployed.push(*i);
            } else {
                failed.push(*i);
            }
            reports[*i] = report;
        }
        if failed.is_empty() || plan.is_keep_going {
            continue;
        }
        let why = format!("{} failed", names(&reports, failed.iter()));
        for i in batches[n + 1..].iter().flatten() {
            reports[*i].error = Some(format!("not started: {why}"));
        }
        if cancel::check().is_ok() {
            roll_back(
                hosts,
                connection,
                identity,
                job,
                progress,
                &deployed,
                &why,
                &mut reports,
            );
        }
        break;
    }
    reports
}

/// Rolls the hosts `deployed` back to the release each ran before this run.
#[allow(clippy::too_many_arguments, reason = "the fleet's whole context")]
fn roll_back(
    hosts: &[Host],
    connection: &Connection,
    identity: &Identity,
    job: &Job,
    progress: &Progress,
    deployed: &[usize],
    why: &str,
    reports: &mut [HostReport],
) {
    let jobs: Vec<Option<Job>> = deployed
        .iter()
        .map(|i| {
            reports[*i].release.map(|release| Job {
                bundle: Vec::new(),
                images: Images::Before(release),
                is_rollback_allowed: false,
                ..job.clone()
            })
        })
        .collect();
    let order: Vec<usize> = (0..deployed.len()).collect();
    let results = parallel(&order, |k| {
        jobs[k].as_ref().map(|job| {
            deploy::deploy(
                &hosts[deployed[k]],
                connection,
                identity,
                job,
                progress,
                None,
            )
        })
    });
    for (i, result) in deployed.iter().zip(results) {
        let report = &mut reports[*i];
        match result {
            Some(back) if back.outcome == Outcome::Deployed => {
                report.outcome = Outcome::RolledBack;
                report.rolled_back_to = back.rolled_back_to;
                report.error = Some(format!(
                    "{why}; rolled back to release {} (recorded as release {})",
                    back.rolled_back_to.unwrap_or_default(),
                    back.release.unwrap_or_default()
                ));
            }
            Some(back) => {
                report.outcome = Outcome::Error;
                report.error = Some(format!(
                    "{why}; the rollback of release {} failed: {}",
                    report.release.unwrap_or_default(),
                    back.error.unwrap_or_default()
                ));
            }
            None => {
                report.outcome = Outcome::Error;
                report.error = Some(format!("{why}; no release to roll back from"));
            }
        }
    }
}

/// The hosts `indices` as `` `a`, `b` ``.
fn names<'a>(reports: &[HostReport], indices: impl Iterator<Item = &'a usize>) -> String {
    indices
        .map(|i| format!("`{}`", reports[*i].host))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `work` for each of `items` in parallel threads, results in order.
pub(crate) fn parallel<T: Send>(items: &[usize], work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .iter()
            .map(|i| {
                let work = &work;
                scope.spawn(move || work(*i))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(value) => value,
                // A panic is a bug; the thread's own message was printed.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(hosts: usize, batch: usize, canary: Option<usize>, expected: &[&[usize]]) {
        let all: Vec<usize> = (0..hosts).collect();
        let plan = Plan {
            batch,
            canary,
            is_keep_going: false,
        };
        assert_eq!(
            batches(&all, plan),
            expected,
            "{hosts} hosts, batch {batch}, canary {canary:?}"
        );
    }

    #[test]
    fn batches_put_the_canary_first() {
        check(3, 3, None, &[&[0, 1, 2]]);
        check(3, 1, None, &[&[0], &[1], &[2]]);
        check(5, 2, Some(1), &[&[0], &[1, 2], &[3, 4]]);
        check(2, 5, Some(3), &[&[0, 1]]);
        check(0, 1, Some(1), &[]);
    }
}
