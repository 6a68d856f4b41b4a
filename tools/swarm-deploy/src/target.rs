//! The swarm target: `docker stack deploy` of the env's compose file with
//! the pinned digests in docker's environment, convergence watched through
//! each service's `UpdateStatus` and replicas, release records kept as
//! docker configs on the swarm.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use slipway_config::{Config, Env};
use slipway_core::cli::UsageError;
use slipway_core::output::Output;
use slipway_deploy::{Identity, LockGuard, Release, Target};

use crate::EnvArgs;
use crate::docker::Docker;

/// The label every release record of a stack carries.
const RELEASE_LABEL: &str = "dev.slipway.release.stack";
/// The label holding the record itself (JSON on one line).
const RECORD_LABEL: &str = "dev.slipway.record";
/// The label docker stack puts on the stack's services.
const STACK_LABEL: &str = "com.docker.stack.namespace";

/// One env's swarm stack.
pub(crate) struct SwarmTarget {
    docker: Docker,
    env: Env,
    stack: String,
    compose: PathBuf,
    prune: bool,
    converge_timeout: Duration,
    /// Whether the env's lock is still held, once taken.
    held: Option<crate::lock::Held>,
}

impl SwarmTarget {
    pub(crate) fn new(
        config: &Config,
        env: &Env,
        args: &EnvArgs,
        _out: &Output,
    ) -> anyhow::Result<SwarmTarget> {
        let swarm = env
            .swarm
            .as_ref()
            .context("a swarm env without its [swarm] table")?;
        let compose = config.root.join(&swarm.compose_file);
        let text = fs_err::read_to_string(&compose).map_err(|error| {
            UsageError::caused_by(
                format!(
                    "cannot read the compose file `{}` of env `{}`",
                    swarm.compose_file.display(),
                    env.name
                ),
                error,
            )
        })?;
        // Every image variable must reach a service, or that service would
        // run whatever its compose line names instead of the pinned digest.
        let unused: Vec<String> = env
            .images
            .keys()
            .filter(|var| !text.contains(&format!("${{{var}")) && !uses_bare(&text, var))
            .map(|var| format!("`${{{var}}}`"))
            .collect();
        if !unused.is_empty() {
            return Err(UsageError::new(format!(
                "the compose file `{}` of env `{}` does not use {}: its services would not run the pinned digests; write e.g. `image: ${{{}}}`",
                swarm.compose_file.display(),
                env.name,
                unused.join(", "),
                env.images.keys().next().map_or("APP_IMAGE", String::as_str)
            )));
        }
        // And every `image:` must be one of those variables or a digest:
        // a literal tag (`redis:7`, `app:latest`) or another variable would
        // reach the swarm as a mutable reference.
        let bypassing: Vec<String> = unpinned_images(&text, &env.images)
            .into_iter()
            .map(|(line, text)| format!("line {line}: `{text}`"))
            .collect();
        if !bypassing.is_empty() {
            return Err(UsageError::new(format!(
                "the compose file `{}` of env `{}` names an image that is neither one of the env's image variables ({}) nor pinned by digest ({}): it would reach the swarm as a mutable tag; write `image: ${{VAR}}` with a variable of the env's `images` table, or `repo@sha256:…`",
                swarm.compose_file.display(),
                env.name,
                env.images
                    .keys()
                    .map(|var| format!("`${{{var}}}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                bypassing.join(", ")
            )));
        }
        let host = args
            .docker_host
            .clone()
            .or_else(|| swarm.docker_host.clone());
        Ok(SwarmTarget {
            docker: Docker {
                client: args.docker.clone(),
                host,
            },
            env: env.clone(),
            stack: swarm.stack.clone(),
            compose,
            prune: swarm.prune,
            converge_timeout: swarm.converge_timeout,
            held: None,
        })
    }

    /// An error (exit 3) when the lock taken was lost: `before` names what
    /// is not done. Without a lock (a dry run) there is nothing to lose.
    fn still_held(&self, before: &str) -> anyhow::Result<()> {
        self.held
            .as_ref()
            .map_or(Ok(()), |held| held.still_held(before))
    }

    /// docker's environment for the stack: the env's `env` table and its
    /// image variables.
    fn variables(&self, release: &Release) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .env
            .env_vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.extend(release.images.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }

    fn deploy_args(&self) -> Vec<String> {
        let mut args = vec![
            "stack".to_owned(),
            "deploy".to_owned(),
            "--compose-file".to_owned(),
            self.compose.display().to_string(),
            "--with-registry-auth".to_owned(),
        ];
        if self.prune {
            args.push("--prune".to_owned());
        }
        args.push(self.stack.clone());
        args
    }

    /// The docker config holding version `version` of release `id`'s
    /// record: `slipway.<stack>.release.<id>.<version>` (version 0 is the
    /// unversioned name older swarm-deploys wrote).
    fn record_name(&self, id: u64, version: u64) -> String {
        if version == 0 {
            format!("slipway.{}.release.{id}", self.stack)
        } else {
            format!("slipway.{}.release.{id}.{version}", self.stack)
        }
    }

    /// Every record config of the stack: its name, its version and the
    /// record. A record is rewritten by creating a new version before the
    /// old one is removed, so a release can have two for a moment (or for
    /// good, if the deploy was killed in between): the newest wins.
    fn record_configs(&self) -> anyhow::Result<Vec<(String, u64, Release)>> {
        let filter = format!("label={RELEASE_LABEL}={}", self.stack);
        let ids = self
            .docker
            .run(&["config", "ls", "-q", "--filter", &filter], &[], None)?;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["config", "inspect"];
        args.extend(ids);
        let format = format!("{{{{.Spec.Name}}}} {{{{index .Spec.Labels \"{RECORD_LABEL}\"}}}}");
        args.extend(["--format", &format]);
        let text = self.docker.run(&args, &[], None)?;
        let prefix = format!("slipway.{}.release.", self.stack);
        let mut configs = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let not_ours = || {
                format!(
                    "a release record of stack `{}` is not one swarm-deploy wrote",
                    self.stack
                )
            };
            let (name, json) = line.split_once(' ').with_context(not_ours)?;
            let release: Release = serde_json::from_str(json).with_context(not_ours)?;
            let version = match name.strip_prefix(&prefix).map(|rest| rest.split_once('.')) {
                Some(Some((_, version))) => version.parse().with_context(not_ours)?,
                Some(None) => 0,
                None => anyhow::bail!(not_ours()),
            };
            configs.push((name.to_owned(), version, release));
        }
        Ok(configs)
    }

    /// Each service of the stack, by name.
    fn services(&self) -> anyhow::Result<BTreeMap<String, Service>> {
        let filter = format!("label={STACK_LABEL}={}", self.stack);
        let listed = self.docker.run(
            &[
                "service",
                "ls",
                "--filter",
                &filter,
                "--format",
                "{{.Name}}\t{{.Replicas}}",
            ],
            &[],
            None,
        )?;
        let mut services = BTreeMap::new();
        for line in listed.lines() {
            let mut fields = line.split('\t');
            let (Some(name), Some(replicas)) = (fields.next(), fields.next()) else {
                continue;
            };
            // `1/2`, or `1/2 (max 1 per node)`.
            let counts = replicas.split_whitespace().next().unwrap_or_default();
            let (running, desired) = counts.split_once('/').unwrap_or(("0", "1"));
            services.insert(
                name.to_owned(),
                Service {
                    is_running: running == desired,
                    replicas: counts.to_owned(),
                    ..Service::default()
                },
            );
        }
        if services.is_empty() {
            return Ok(services);
        }
        let mut args = vec!["service", "inspect"];
        args.extend(services.keys().map(String::as_str));
        args.extend([
            "--format",
            "{{.Spec.Name}}\t{{.Version.Index}}\t{{if .UpdateStatus}}{{.UpdateStatus.State}}\t{{if .UpdateStatus.StartedAt}}{{.UpdateStatus.StartedAt.UnixNano}}{{end}}\t{{.UpdateStatus.Message}}{{else}}-\t-\t-{{end}}",
        ]);
        let inspected = self.docker.run(&args, &[], None)?;
        for line in inspected.lines() {
            let fields: Vec<&str> = line.splitn(5, '\t').collect();
            let [name, version, state, started, message] = fields[..] else {
                continue;
            };
            if let Some(service) = services.get_mut(name) {
                service.version = version.to_owned();
                service.state = state.to_owned();
                service.started = started.to_owned();
                service.message = message.to_owned();
            }
        }
        Ok(services)
    }

    /// Waits until every service has converged after a deploy that found
    /// the services `before`: an update of its own that completed (or no
    /// change), and its replicas running.
    fn converge(&self, before: &BTreeMap<String, Service>) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.converge_timeout;
        let mut quiet_polls = BTreeMap::<String, u32>::new();
        loop {
            let services = self.services()?;
            let mut pending = Vec::new();
            for (name, now) in &services {
                let old = before.get(name);
                let changed = old.is_none_or(|old| old.version != now.version);
                let own_status = now.state != "-"
                    && old.is_none_or(|old| old.started != now.started || old.state == "-");
                if changed && own_status {
                    match now.state.as_str() {
                        "completed" => {}
                        "rollback_completed" => {
                            anyhow::bail!("swarm rolled service `{name}` back: {}", now.message)
                        }
                        "paused" | "rollback_paused" => anyhow::bail!(
                            "the update of service `{name}` paused ({}): {}",
                            now.state,
                            now.message
                        ),
                        state => {
                            pending.push(format!("{name} ({state}: {})", now.message));
                            continue;
                        }
                    }
                } else if changed && old.is_some() {
                    // A changed spec whose update has not reported yet; a
                    // change that restarts no task may never report, so
                    // running replicas for a few polls count as converged.
                    let polls = quiet_polls.entry(name.clone()).or_default();
                    *polls += 1;
                    if *polls < 4 {
                        pending.push(format!("{name} (update not started)"));
                        continue;
                    }
                }
                if !now.is_running {
                    pending.push(format!("{name} (replicas {})", now.replicas));
                }
            }
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "the stack `{}` did not converge within `converge_timeout` ({}s): {}",
                    self.stack,
                    self.converge_timeout.as_secs(),
                    pending.join(", ")
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// What one service looks like now.
#[derive(Debug, Clone, Default)]
struct Service {
    version: String,
    /// `UpdateStatus.State`, `-` when the service never updated.
    state: String,
    started: String,
    message: String,
    replicas: String,
    is_running: bool,
}

/// The `image` entries of a compose file (1-based line, what was read)
/// whose value is neither exactly one of `vars` (`${VAR}` or `$VAR`: an
/// operator such as `${VAR:+redis:latest}` can yield any tag) nor a literal
/// reference pinned by digest.
///
/// There is no YAML parser in the workspace, so the check reads lines and
/// errs on the side of refusing: every key spelled `image` in any case,
/// bare, `"quoted"` or `'quoted'`, with or without space before its colon,
/// in block or flow (JSON) style, in services, extension fields and anchors
/// alike, is checked; a value it cannot read (a block scalar, an alias, a
/// value on the next line), an `image` used as an anchored or explicit
/// (`? image`) key, and an escape sequence that could spell a key
/// (`\u0069mage`) are reported too, so nothing unread passes.
fn unpinned_images(text: &str, vars: &BTreeMap<String, String>) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        let line = strip_comment(line);
        if has_key_escape(line) {
            found.push((index + 1, line.trim().to_owned()));
            continue;
        }
        for (at, _) in line.to_ascii_lowercase().match_indices("image") {
            let before = &line[..at];
            let mut after = &line[at + "image".len()..];
            let quote = before.chars().last().filter(|c| matches!(c, '"' | '\''));
            let before = before.strip_suffix(['"', '\'']).unwrap_or(before);
            if let Some(quote) = quote {
                match after.strip_prefix(quote) {
                    Some(rest) => after = rest,
                    None => continue,
                }
            } else if before.chars().last().is_some_and(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '$' | '{')
            }) || after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '}'))
            {
                // A word that merely contains `image` (`x-image`, `APP_IMAGE`).
                continue;
            }
            let lead = before.trim_end();
            // Wherever it stands, `image:` is checked: a false alarm names
            // its line, a missed key would deploy a tag.
            let Some(value) = after.trim_start().strip_prefix(':') else {
                // `? image` or `&name image` (an anchor later used as a
                // key): refused, as nothing reads what they map to.
                if lead.ends_with('?')
                    || lead.rsplit(' ').next().is_some_and(|w| w.starts_with('&'))
                {
                    found.push((index + 1, line.trim().to_owned()));
                }
                continue;
            };
            if !value.is_empty() && !value.starts_with([' ', '\t']) && quote.is_none() {
                // `image:x` is a plain scalar, not a key.
                continue;
            }
            if !is_pinned_value(value, vars) {
                found.push((index + 1, line.trim().to_owned()));
            }
        }
    }
    found
}

/// `line` without a trailing comment (`#` after a blank, outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && (previous == ' ' || previous == '\t') => return &line[..at],
            None => {}
        }
        previous = c;
    }
    line
}

/// A backslash escape that a YAML double-quoted key could use to spell
/// `image` without the letters (`\x69`, `\u0069`, `\U…`), or a line
/// continuation: the line-based check cannot read those.
fn has_key_escape(line: &str) -> bool {
    line.trim_end().ends_with('\\')
        || line
            .match_indices('\\')
            .any(|(at, _)| line[at + 1..].starts_with(['x', 'u', 'U']))
}

/// Whether what follows `image:` is exactly a variable of `vars` or a
/// digest reference, followed by nothing but a comment or the end of a
/// flow (JSON) entry.
fn is_pinned_value(value: &str, vars: &BTreeMap<String, String>) -> bool {
    let value = value.trim();
    let (scalar, rest) = match value.chars().next() {
        Some(q @ ('"' | '\'')) => match value[1..].find(q) {
            Some(end) => (&value[1..=end], &value[end + 2..]),
            None => return false,
        },
        Some('$') if value.starts_with("${") => match value.find('}') {
            Some(end) => (&value[..=end], &value[end + 1..]),
            None => return false,
        },
        Some('$') => {
            let end = value[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(value.len(), |end| end + 1);
            (&value[..end], &value[end..])
        }
        Some(_) => {
            let end = value
                .find(|c: char| c.is_whitespace() || matches!(c, ',' | '}' | ']'))
                .unwrap_or(value.len());
            (&value[..end], &value[end..])
        }
        None => return false,
    };
    let rest = rest.trim();
    (rest.is_empty() || rest.starts_with([',', '}', ']']))
        && (is_variable_of(scalar, vars) || is_digest_reference(scalar))
}

/// Exactly `$VAR` or `${VAR}` for a `VAR` of `vars`.
fn is_variable_of(value: &str, vars: &BTreeMap<String, String>) -> bool {
    let name = if let Some(inner) = value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        inner
    } else if let Some(name) = value.strip_prefix('$') {
        name
    } else {
        return false;
    };
    vars.contains_key(name)
}

/// A literal `repo@sha256:<64 hex>`, with no variable in it.
fn is_digest_reference(value: &str) -> bool {
    !value.contains('$')
        && value.split_once("@sha256:").is_some_and(|(repo, hex)| {
            !repo.is_empty() && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// The newest version of each release's record, oldest release first.
fn newest_records(configs: &[(String, u64, Release)]) -> Vec<Release> {
    let mut newest: BTreeMap<u64, (u64, &Release)> = BTreeMap::new();
    for (_, version, release) in configs {
        if newest.get(&release.id).is_none_or(|(v, _)| v < version) {
            newest.insert(release.id, (*version, release));
        }
    }
    newest.into_values().map(|(_, r)| r.clone()).collect()
}

/// Whether `text` uses `$var` not followed by a name character.
fn uses_bare(text: &str, var: &str) -> bool {
    let needle = format!("${var}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

impl Target for SwarmTarget {
    fn name(&self) -> String {
        format!("swarm:{}", self.stack)
    }

    fn lock(&mut self, who: &Identity, wait: Duration) -> anyhow::Result<Box<dyn LockGuard>> {
        let lease = crate::lock::acquire(&self.docker, &self.stack, &self.env.name, who, wait)?;
        self.held = Some(lease.check());
        Ok(Box::new(lease))
    }

    fn history(&self) -> anyhow::Result<Vec<Release>> {
        Ok(newest_records(&self.record_configs()?))
    }

    fn record(&mut self, release: &Release, keep: u32) -> anyhow::Result<()> {
        self.still_held(&format!("recording release {}", release.id))?;
        let json = serde_json::to_string(release).context("cannot encode the record")?;
        // Configs are immutable: a record whose result changed is written
        // as a new version first and only then is the old one removed, so
        // a deploy killed in between (or a failed create) still leaves a
        // record of the release, never none.
        let configs = self.record_configs()?;
        let older: Vec<&str> = configs
            .iter()
            .filter(|(_, _, r)| r.id == release.id)
            .map(|(name, _, _)| name.as_str())
            .collect();
        let version = configs
            .iter()
            .filter(|(_, _, r)| r.id == release.id)
            .map(|(_, v, _)| v + 1)
            .max()
            .unwrap_or(1);
        let name = self.record_name(release.id, version);
        self.docker.run(
            &[
                "config",
                "create",
                "--label",
                &format!("{RELEASE_LABEL}={}", self.stack),
                "--label",
                &format!("{RECORD_LABEL}={json}"),
                &name,
                "-",
            ],
            &[],
            Some(json.as_bytes()),
        )?;
        for old in older {
            self.docker.run(&["config", "rm", old], &[], None)?;
        }
        let configs = self.record_configs()?;
        let pruned = slipway_deploy::prunable(&newest_records(&configs), keep);
        for (old, _, _) in configs.iter().filter(|(_, _, r)| pruned.contains(&r.id)) {
            self.docker.run(&["config", "rm", old], &[], None)?;
        }
        Ok(())
    }

    fn apply(&mut self, release: &Release) -> anyhow::Result<()> {
        self.still_held(&format!("deploying release {}", release.id))?;
        let before = self.services()?;
        let args = self.deploy_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.docker.run(&args, &self.variables(release), None)?;
        self.converge(&before)
    }

    fn restore(&mut self, _failed: &Release, previous: &Release) -> anyhow::Result<()> {
        self.still_held(&format!("putting release {} back", previous.id))?;
        self.apply(previous)
    }

    fn commands(&self, _release: &Release) -> Vec<String> {
        let args = self.deploy_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        vec![self.docker.display(&args)]
    }

    fn command_env(&self, release: &Release) -> Vec<(String, String)> {
        self.variables(release)
    }
}
