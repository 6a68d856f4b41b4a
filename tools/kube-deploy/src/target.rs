//! The kubernetes target of slipway-deploy's flow: the lock is the env's
//! Lease (`lease`), the history a ConfigMap `slipway-<env>-releases` in the
//! namespace (Slipway's release records, kept at its resourceVersion), an
//! apply is `kubectl apply` of the pinned manifests or `set image` on the
//! env's workloads followed by `rollout status` of each, and a restore is
//! `kubectl rollout undo --to-revision` of each workload the failed apply
//! gave a new revision (else the previous release applied again). Each
//! workload's change-cause names the Slipway release, so `kubectl rollout
//! history` and `releases` tell the same story.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Context as _;
use slipway_config::{Config, Env, KubernetesSource, KubernetesTarget};
use slipway_core::cli::UsageError;
use slipway_core::output::shell_quote;
use slipway_deploy::{Identity, LockGuard, Release};

use crate::deploy::{self, Change, Steps};
use crate::kubectl::{Kubectl, REQUEST_TIMEOUT, Runner};
use crate::release::{Pinned, ReleaseFacts};

/// The ConfigMap key holding the release records (a JSON array, oldest first).
const RECORDS_KEY: &str = "releases.json";

/// What a kubernetes env deploys to.
pub(crate) struct KubeTarget<'a> {
    pub(crate) kubectl: Kubectl,
    pub(crate) runner: &'static dyn Runner,
    config: &'a Config,
    env: &'a Env,
    kubernetes: &'a KubernetesTarget,
    timeout: Duration,
    say: &'a dyn Fn(&str),
    /// Every command run, in order (the report's `commands`), shared with
    /// the lock's guard, which releases the Lease last.
    pub(crate) commands: Commands,
    /// The workloads of the last apply with their revisions before it:
    /// a restore undoes those whose revision moved.
    before: Vec<(String, Option<String>)>,
    /// The rendered kustomization and List of the last render (dry runs show them).
    pub(crate) rendered: Option<crate::manifests::Rendered>,
    /// Whether the Lease taken is still held: asked before each apply,
    /// undo and record (`None` before it is taken).
    lease: Option<crate::lease::Check>,
}

/// The commands run, in order.
pub(crate) type Commands = Rc<RefCell<Vec<Vec<String>>>>;

/// Holds the Lease; dropping it releases it (and notes the command).
struct LeaseGuard(Option<crate::lease::Held>, &'static dyn Runner, Commands);

impl LockGuard for LeaseGuard {}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(held) = self.0.take() {
            let argv = held.release(self.1);
            self.2.borrow_mut().push(argv);
        }
    }
}

impl<'a> KubeTarget<'a> {
    pub(crate) fn new(
        config: &'a Config,
        env: &'a Env,
        kubernetes: &'a KubernetesTarget,
        kubectl: Kubectl,
        runner: &'static dyn Runner,
        timeout: Duration,
        say: &'a dyn Fn(&str),
    ) -> anyhow::Result<KubeTarget<'a>> {
        if let KubernetesSource::Workloads(workloads) = &kubernetes.source {
            for workload in workloads {
                for image in workload.containers.values() {
                    if !env.images.values().any(|i| i == image) {
                        return Err(UsageError::new(format!(
                            "`{}/{}` runs image `{image}`, which env `{}` does not deploy: add it to the env's `images` (e.g. `images = {{ {} = \"{image}\" }}`)",
                            workload.kind,
                            workload.name,
                            env.name,
                            slipway_deploy::image_variable(image)
                        )));
                    }
                }
            }
        }
        Ok(KubeTarget {
            kubectl,
            runner,
            config,
            env,
            kubernetes,
            timeout,
            say,
            commands: Rc::default(),
            before: Vec::new(),
            rendered: None,
            lease: None,
        })
    }

    /// The images of `release` by image name, pinned.
    fn pinned(&self, release: &Release) -> anyhow::Result<Vec<Pinned>> {
        release
            .images
            .iter()
            .map(|(var, reference)| {
                let name = self.env.images.get(var).with_context(|| {
                    format!(
                        "release {} names variable `{var}`, which env `{}` no longer has",
                        release.id, self.env.name
                    )
                })?;
                Pinned::new(self.config, name, reference)
            })
            .collect()
    }

    /// The change a release makes: set image, or the manifests rendered and applied.
    pub(crate) fn change(&mut self, release: &Release) -> anyhow::Result<Change> {
        let images = self.pinned(release)?;
        let facts = ReleaseFacts::of(release, &images);
        match &self.kubernetes.source {
            KubernetesSource::Workloads(workloads) => deploy::set_image_change(workloads, &images),
            KubernetesSource::Manifests(_) | KubernetesSource::Kustomize(_) => {
                let source = crate::source(self.config, self.kubernetes)?
                    .context("a manifests or kustomize env has its manifests")?;
                let rendered = crate::manifests::render(
                    &self.kubectl,
                    self.runner,
                    &source,
                    &images,
                    &facts,
                    &crate::known_images(self.config),
                )?;
                self.commands
                    .borrow_mut()
                    .extend(rendered.commands.iter().cloned());
                let change = Change::Apply {
                    list: rendered.list.clone(),
                    workloads: rendered.workloads.clone(),
                };
                self.rendered = Some(rendered);
                Ok(change)
            }
        }
    }

    fn steps(&self) -> Steps<'_> {
        Steps {
            runner: self.runner,
            commands: self.commands.take(),
            say: self.say,
        }
    }

    fn records_argv(&self, verb: &str) -> Vec<String> {
        match verb {
            "get" => self.kubectl.cluster(&[
                "get",
                "configmap",
                &records_name(&self.env.name),
                "-o",
                "json",
                "--ignore-not-found",
                REQUEST_TIMEOUT,
            ]),
            verb => crate::lease::write_argv(&self.kubectl, verb),
        }
    }

    /// An error (exit 3) when the Lease taken was lost: another deploy may
    /// hold it, so nothing more may change or be recorded.
    fn still_held(&self, before: &str) -> anyhow::Result<()> {
        match &self.lease {
            Some(lease) => lease.still_held(before),
            None => Ok(()),
        }
    }

    /// The records ConfigMap as read: its releases and resourceVersion.
    fn read_records(&mut self) -> anyhow::Result<(Vec<Release>, Option<String>)> {
        let argv = self.records_argv("get");
        let ran = self.runner.run(&argv, b"")?;
        self.commands.borrow_mut().push(argv);
        if !ran.is_success() {
            anyhow::bail!(
                "cannot read the release records `{}/{}` ({})",
                self.kubectl.namespace,
                records_name(&self.env.name),
                ran.reason()
            );
        }
        if ran.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok((Vec::new(), None));
        }
        let map: serde_json::Value =
            serde_json::from_slice(&ran.stdout).context("the release records are not JSON")?;
        let version = map["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_owned);
        let releases = match map["data"][RECORDS_KEY].as_str() {
            Some(text) => serde_json::from_str(text).with_context(|| {
                format!(
                    "the release records `{}/{}` hold no release list under `{RECORDS_KEY}`",
                    self.kubectl.namespace,
                    records_name(&self.env.name)
                )
            })?,
            None => Vec::new(),
        };
        Ok((releases, version))
    }
}

/// The ConfigMap of an env's release records.
pub(crate) fn records_name(env: &str) -> String {
    format!("{}-releases", crate::lease::name(env))
}

/// The ConfigMap holding `releases`, at `version` when it exists.
pub(crate) fn records_object(
    name: &str,
    namespace: &str,
    releases: &[Release],
    version: Option<&str>,
) -> serde_json::Value {
    let mut metadata = serde_json::json!({
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "slipway"},
    });
    if let Some(version) = version {
        metadata["resourceVersion"] = serde_json::json!(version);
    }
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {RECORDS_KEY: serde_json::to_string(releases).unwrap_or_default()},
    })
}

impl slipway_deploy::Target for KubeTarget<'_> {
    fn name(&self) -> String {
        format!(
            "kubernetes:{}/{}",
            self.kubectl.context.as_deref().unwrap_or("current"),
            self.kubectl.namespace
        )
    }

    fn lock(&mut self, who: &Identity, wait: Duration) -> anyhow::Result<Box<dyn LockGuard>> {
        let holder = format!("{} ({}, pid {})", who.who, who.holder, std::process::id());
        let mut ran = Vec::new();
        let held = crate::lease::acquire(
            &self.kubectl,
            self.runner,
            &self.env.name,
            &holder,
            wait,
            self.say,
            &mut ran,
        );
        self.commands.borrow_mut().extend(ran);
        let held = held?;
        self.lease = Some(held.check());
        Ok(Box::new(LeaseGuard(
            Some(held),
            self.runner,
            Rc::clone(&self.commands),
        )))
    }

    fn history(&self) -> anyhow::Result<Vec<Release>> {
        let argv = self.records_argv("get");
        let ran = self.runner.run(&argv, b"")?;
        self.commands.borrow_mut().push(argv);
        if !ran.is_success() {
            anyhow::bail!(
                "cannot read the release records `{}/{}` ({})",
                self.kubectl.namespace,
                records_name(&self.env.name),
                ran.reason()
            );
        }
        if ran.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        let map: serde_json::Value =
            serde_json::from_slice(&ran.stdout).context("the release records are not JSON")?;
        match map["data"][RECORDS_KEY].as_str() {
            Some(text) => {
                serde_json::from_str(text).context("the release records are not a release list")
            }
            None => Ok(Vec::new()),
        }
    }

    fn record(&mut self, release: &Release, keep: u32) -> anyhow::Result<()> {
        self.still_held(&format!("recording release {}", release.id))?;
        let (mut releases, version) = self.read_records()?;
        match releases.iter_mut().find(|r| r.id == release.id) {
            Some(old) => *old = release.clone(),
            None => releases.push(release.clone()),
        }
        let pruned = slipway_deploy::prunable(&releases, keep);
        releases.retain(|r| !pruned.contains(&r.id));
        let object = records_object(
            &records_name(&self.env.name),
            &self.kubectl.namespace,
            &releases,
            version.as_deref(),
        );
        let verb = if version.is_some() {
            "replace"
        } else {
            "create"
        };
        let argv = self.records_argv(verb);
        let ran = self.runner.run(&argv, object.to_string().as_bytes())?;
        self.commands.borrow_mut().push(argv);
        if !ran.is_success() {
            anyhow::bail!(
                "cannot record release {} in `{}/{}` ({})",
                release.id,
                self.kubectl.namespace,
                records_name(&self.env.name),
                ran.reason()
            );
        }
        Ok(())
    }

    fn apply(&mut self, release: &Release) -> anyhow::Result<()> {
        self.still_held(&format!("applying release {}", release.id))?;
        let change = self.change(release)?;
        let images = self.pinned(release)?;
        let facts = ReleaseFacts::of(release, &images);
        let (kubectl, timeout) = (self.kubectl.clone(), self.timeout);
        let mut steps = self.steps();
        let outcome = deploy::apply(&mut steps, &kubectl, &change, &facts, timeout);
        self.commands.replace(steps.commands);
        let applied = outcome?;
        self.before = applied.before;
        match applied.failure {
            Some(failure) => anyhow::bail!("{failure}"),
            None => Ok(()),
        }
    }

    fn restore(&mut self, failed: &Release, previous: &Release) -> anyhow::Result<()> {
        self.still_held(&format!("putting back release {}", previous.id))?;
        let _ = failed;
        let (kubectl, timeout) = (self.kubectl.clone(), self.timeout);
        let before = std::mem::take(&mut self.before);
        let mut steps = self.steps();
        let outcome = deploy::undo(&mut steps, &kubectl, &before, timeout);
        self.commands.replace(steps.commands);
        if outcome? == 0 {
            // No workload has a new revision (the apply failed before it
            // changed one, or changed only ConfigMaps, replicas, a
            // strategy…): applying the previous release again restores
            // what the manifests hold, and no workload goes back to an
            // older release.
            return self.apply(previous);
        }
        Ok(())
    }

    fn commands(&self, release: &Release) -> Vec<String> {
        // A dry run renders through `change` first (it needs `&mut self`);
        // here the commands are spelled from what it left.
        let lease_name = crate::lease::name(&self.env.name);
        let mut argvs = self.commands.borrow().clone();
        argvs.push(crate::lease::get_argv(&self.kubectl, &lease_name));
        argvs.push(crate::lease::write_argv(&self.kubectl, "create"));
        argvs.push(self.records_argv("get"));
        argvs.push(self.records_argv("create"));
        let change = match &self.rendered {
            Some(rendered) => Change::Apply {
                list: rendered.list.clone(),
                workloads: rendered.workloads.clone(),
            },
            None => match &self.kubernetes.source {
                KubernetesSource::Workloads(workloads) => {
                    match self
                        .pinned(release)
                        .and_then(|images| deploy::set_image_change(workloads, &images))
                    {
                        Ok(change) => change,
                        Err(error) => return vec![format!("# {error:#}")],
                    }
                }
                _ => return vec!["# the manifests were not rendered".to_owned()],
            },
        };
        let images = self.pinned(release).unwrap_or_default();
        let facts = ReleaseFacts::of(release, &images);
        for workload in change.workloads() {
            argvs.push(deploy::revision_argv(&self.kubectl, &workload));
        }
        argvs.extend(
            deploy::change_commands(&self.kubectl, &change, &facts)
                .into_iter()
                .map(|(argv, _)| argv),
        );
        for workload in change.workloads() {
            argvs.push(self.kubectl.rollout_status(&workload, self.timeout));
        }
        argvs
            .iter()
            .map(|argv| {
                argv.iter()
                    .map(|a| shell_quote(a))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }
}
