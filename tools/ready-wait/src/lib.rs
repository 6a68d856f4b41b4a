//! `ready-wait`: wait until HTTP(S) or TCP endpoints are really ready.
//!
//! The binary is a thin front over `slipway_ready`, which ssh-deploy
//! calls too; its items are re-exported here unchanged: build a [`Plan`]
//! (from flags with [`plan_from_cli`], or by hand from [`Plan::new`]), then
//! [`wait`] (or [`wait_blocking`]) for an [`Outcome`].

mod cli;

use std::fmt::Write as _;

use anyhow::Context as _;
use slipway_core::cli::UsageError;
use slipway_core::output::{Output, Style};
use slipway_core::progress::Task;

pub use cli::Cli;
pub use slipway_ready::{
    Event, HttpCheck, JsonPath, Mode, Outcome, Plan, PlanError, State, StatusSet, Target,
    TargetOutcome, Tls, parse_cacert, parse_duration, parse_header, parse_method,
    parse_retry_after, wait, wait_blocking,
};

/// Under GitHub Actions, masks what in `plan` may be secret before the
/// first request: what `slipway_core::secret::url_secrets` finds in a URL
/// (a password, a lone token user name, secret-looking query values) and
/// the values of credential headers (`Authorization`, `Cookie`, and any
/// name with `token`, `key`, `secret`, `auth`, `password` or `session` in
/// it), also without their scheme word. Each is registered for redaction;
/// one of 1 to 3 bytes, which could not be redacted, is refused (exit 2).
fn mask_secrets(plan: &Plan, out: &Output) -> anyhow::Result<()> {
    // Each secret with where it came from, for a refusal of a short one.
    let mut secrets: Vec<(String, String)> = Vec::new();
    for target in &plan.targets {
        if let Target::Http(url) = target {
            let shown = slipway_core::secret::RedactedUrl(url.as_str()).to_string();
            secrets.extend(
                slipway_core::secret::register_url(url.as_str())
                    .into_iter()
                    .map(|secret| (secret, format!("a secret in the URL `{shown}`"))),
            );
        }
    }
    for (name, value) in &plan.http.headers {
        let name = name.as_str();
        let is_credential = name == "cookie"
            || ["auth", "token", "key", "secret", "password", "session"]
                .iter()
                .any(|word| name.contains(word));
        if is_credential {
            // A value that is not visible ASCII (`to_str` refuses it) is a
            // secret all the same: its bytes, read lossily, are masked.
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let what = format!("the value of header `{name}`");
            if let Some((_scheme, credentials)) = value.split_once(' ') {
                secrets.push((credentials.trim().to_owned(), what.clone()));
            }
            secrets.push((value, what));
        }
    }
    secrets.sort();
    secrets.dedup_by(|a, b| a.0 == b.0);
    for (secret, what) in &secrets {
        slipway_core::secret::check_len(secret, what)
            .map_err(|error| UsageError::new(error.to_string()))?;
    }
    for (secret, _) in secrets.into_iter().filter(|(s, _)| !s.is_empty()) {
        out.mask(&slipway_core::secret::SecretString::from(secret));
    }
    Ok(())
}

/// The report of a run: the [`Outcome`], as `--format json` prints it.
#[derive(Debug, serde::Serialize)]
#[serde(transparent)]
pub struct Report(pub Outcome);

impl slipway_core::output::Report for Report {
    fn render_plain(&self, style: &Style) -> String {
        let mut text = String::new();
        for target in &self.0.targets {
            let mark = if target.ready {
                style.ok("ready")
            } else {
                style.error("not-ready")
            };
            let _ = write!(
                text,
                "{mark} {} attempts={}",
                target.target, target.attempts
            );
            if let Some(status) = target.last_status {
                let _ = write!(text, " status={status}");
            }
            if let Some(after) = target.ready_after {
                let _ = write!(text, " ready_after_ms={}", after.as_millis());
            }
            if !target.ready {
                if let Some(error) = &target.last_error {
                    let _ = write!(text, " error={}", quote(error));
                }
                if let Some(body) = target.body_excerpt.as_ref().filter(|b| !b.is_empty()) {
                    let _ = write!(text, " body={}", quote(body));
                }
            }
            text.push('\n');
        }
        text
    }

    fn outputs(&self) -> Vec<(String, String)> {
        vec![
            ("ready".to_owned(), self.0.ready.to_string()),
            (
                "elapsed_ms".to_owned(),
                self.0.elapsed.as_millis().to_string(),
            ),
        ]
    }

    fn summary_markdown(&self) -> Option<String> {
        let mut text = String::from(
            "### ready-wait\n\n| target | ready | attempts | last status | last error |\n| --- | --- | ---: | ---: | --- |\n",
        );
        for target in &self.0.targets {
            let _ = writeln!(
                text,
                "| `{}` | {} | {} | {} | {} |",
                target.target,
                if target.ready { "yes" } else { "**no**" },
                target.attempts,
                target
                    .last_status
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                target
                    .last_error
                    .as_deref()
                    .unwrap_or("")
                    .replace('|', "\\|"),
            );
        }
        Some(text)
    }

    fn exit_code(&self) -> u8 {
        if self.0.ready {
            slipway_core::cli::exit::SUCCESS
        } else {
            slipway_core::cli::exit::NO
        }
    }
}

/// A value quoted as a JSON string, so a plain line stays one line.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// Runs `ready-wait`: flags to plan, then the wait, on a single-threaded
/// runtime (cheap to start, and waiting needs no more).
pub fn run(cli: Cli, out: &Output) -> anyhow::Result<Report> {
    let plan = plan_from_cli(&cli)?;
    mask_secrets(&plan, out)?;
    let progress = out.progress();
    let mut tasks: Vec<Option<Task>> = plan
        .targets
        .iter()
        .map(|target| Some(progress.task(&target.to_string(), "waiting")))
        .collect();
    let outcome = wait_blocking(&plan, |event| {
        let Some(Some(task)) = tasks.get(event.index) else {
            return;
        };
        match &event.state {
            State::Waiting(problem) => task.message(&format!("not ready: {problem}")),
            State::Passing { successes, needed } => {
                task.message(&format!("passing ({successes} of {needed} in a row)"));
            }
            State::Ready { attempts, .. } => {
                if let Some(task) = tasks[event.index].take() {
                    task.finish(&format!(
                        "ready after {attempts} attempt{}",
                        plural(*attempts)
                    ));
                }
            }
        }
    })
    .context("cannot start the async runtime")?;
    for (task, target) in tasks.iter_mut().zip(&outcome.targets) {
        let Some(task) = task.take() else { continue };
        if target.ready {
            continue;
        }
        // The task adds how long it waited.
        let mut message = format!(
            "not ready after {} attempt{}",
            target.attempts,
            plural(target.attempts)
        );
        if let Some(status) = target.last_status {
            let _ = write!(message, "; last status {status}");
        }
        if let Some(error) = &target.last_error {
            let _ = write!(message, "; {error}");
        }
        if let Some(body) = target.body_excerpt.as_ref().filter(|b| !b.is_empty()) {
            let _ = write!(message, "; body: {body}");
        }
        if outcome.ready {
            // Under `--any` the others simply were not needed.
            drop(task);
        } else {
            task.fail(&message);
        }
    }
    Ok(Report(outcome))
}

fn plural(count: u32) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Builds and validates the plan from the flags; every bad value is a usage
/// error (exit 2) naming the flag.
/// With `--env NAME`, that env's `ready_url` and `ready_timeout` in
/// slipway.toml are the defaults; flags win.
pub fn plan_from_cli(cli: &Cli) -> anyhow::Result<Plan> {
    let defaults = match &cli.env {
        Some(name) => env_defaults(cli, name)?,
        None => EnvDefaults::default(),
    };
    Ok(plan_from_flags(cli, defaults)?)
}

/// What an env in slipway.toml contributes.
#[derive(Debug, Default)]
struct EnvDefaults {
    ready_url: Option<String>,
    ready_timeout: Option<std::time::Duration>,
}

fn env_defaults(cli: &Cli, name: &str) -> anyhow::Result<EnvDefaults> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let config = slipway_config::Config::locate(cli.global.config.as_deref(), &cwd)?;
    let Some(env) = config.envs.get(name) else {
        let known: Vec<String> = config.envs.keys().map(|k| format!("`{k}`")).collect();
        return Err(UsageError::new(format!(
            "no env `{name}` in {}; the envs are: {}",
            config.path.display(),
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    };
    if cli.targets.is_empty() && env.ready_url.is_none() {
        return Err(UsageError::new(format!(
            "env `{name}` in {} has no `ready_url`; add one or pass a TARGET",
            config.path.display()
        )));
    }
    Ok(EnvDefaults {
        ready_url: env.ready_url.clone(),
        ready_timeout: Some(env.ready_timeout),
    })
}

fn plan_from_flags(cli: &Cli, defaults: EnvDefaults) -> Result<Plan, PlanError> {
    let mut targets = cli
        .targets
        .iter()
        .map(|value| Target::parse(value))
        .collect::<Result<Vec<_>, _>>()?;
    if targets.is_empty()
        && let Some(url) = &defaults.ready_url
    {
        targets.push(Target::parse(url)?);
    }
    let mut plan = Plan::new(targets);
    plan.user_agent = concat!("ready-wait/", env!("CARGO_PKG_VERSION")).to_owned();
    plan.mode = if cli.any { Mode::Any } else { Mode::All };
    if let Some(timeout) = defaults.ready_timeout {
        plan.timeout = timeout;
    }
    if let Some(timeout) = &cli.timeout {
        plan.timeout = parse_duration("--timeout", timeout)?;
    }
    plan.attempt_timeout = parse_duration("--attempt-timeout", &cli.attempt_timeout)?;
    plan.interval = parse_duration("--interval", &cli.interval)?;
    plan.max_interval = parse_duration("--max-interval", &cli.max_interval)?;
    plan.initial_delay = parse_duration("--initial-delay", &cli.initial_delay)?;
    plan.stable = cli.stable;
    plan.http.method = parse_method(&cli.method)?;
    plan.http.headers = cli
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<_, _>>()?;
    plan.http.status = StatusSet::parse(&cli.status)?;
    plan.http.body_contains = cli.body_contains.clone();
    plan.http.body_regex = cli
        .body_regex
        .as_deref()
        .map(|value| {
            regex::Regex::new(value).map_err(|error| PlanError::Invalid {
                flag: "--body-regex".to_owned(),
                value: value.to_owned(),
                reason: error
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
                    + "; expected a Rust `regex` pattern such as `\"status\":\\s*\"ok\"`",
            })
        })
        .transpose()?;
    plan.http.json_path = cli.json_path.as_deref().map(JsonPath::parse).transpose()?;
    plan.http.equals = cli.equals.clone();
    plan.follow_redirects = cli.follow;
    plan.tls.is_insecure = cli.insecure;
    for path in &cli.cacert {
        let pem = slipway_core::input::read(path).map_err(|error| PlanError::Invalid {
            flag: "--cacert".to_owned(),
            value: path.display().to_string(),
            reason: format!(
                "cannot read it: {}",
                std::error::Error::source(&error).map_or(error.to_string(), |s| s.to_string())
            ),
        })?;
        plan.tls.extra_roots.extend(parse_cacert(path, &pem)?);
    }
    reject_http_checks_without_http_target(cli, &plan)?;
    plan.validate()?;
    Ok(plan)
}

/// A response check given when every target is `tcp://` would never run:
/// the user meant an HTTP target, so say so instead of waiting on a port.
fn reject_http_checks_without_http_target(cli: &Cli, plan: &Plan) -> Result<(), PlanError> {
    if plan.targets.is_empty()
        || plan
            .targets
            .iter()
            .any(|target| matches!(target, Target::Http(_)))
    {
        return Ok(());
    }
    let given = [
        ("--body-contains", cli.body_contains.is_some()),
        ("--body-regex", cli.body_regex.is_some()),
        ("--json-path", cli.json_path.is_some()),
        ("--header", !cli.headers.is_empty()),
    ];
    match given.iter().find(|(_, is_given)| *is_given) {
        Some((flag, _)) => Err(PlanError::Combination(format!(
            "`{flag}` checks HTTP responses, but every target is TCP (`{}`): use an `http://` or `https://` target",
            plan.targets[0]
        ))),
        None => Ok(()),
    }
}
