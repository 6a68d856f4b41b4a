//! The manifests an env applies: its `manifests` directory or `kustomize`
//! overlay, rendered by `kubectl kustomize` through a kustomization of our
//! own whose `images:` pins every image to its digest, then turned into JSON
//! (and every object marked with the release) by `kubectl annotate --local`.
//! Both run offline. The workloads found get the release's annotations
//! (change-cause, digests, git sha, deployer); the result is one `v1` List
//! that `kubectl apply -f -` reads on its stdin.
//!
//! Nothing here edits the user's files: the kustomization lives in a temp dir
//! and names the user's directory or files by relative paths (kustomize
//! refuses absolute ones).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use slipway_core::cli::UsageError;

use crate::kubectl::{Kubectl, Runner};
use crate::release::{Pinned, ReleaseFacts};

/// The annotation every applied object carries: the release that applied it.
pub(crate) const RELEASE_ANNOTATION: &str = "slipway.dev/release";
/// The kinds `kubectl rollout` manages, as they appear in manifests.
const WORKLOAD_KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet"];

/// Where the manifests come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A kustomization directory.
    Kustomize(PathBuf),
    /// Manifest files (a directory's `*.yaml`, `*.yml`, `*.json`, sorted, or one file).
    Files(Vec<PathBuf>),
}

impl Source {
    /// The files of a `manifests` path: the file itself, or the directory's
    /// manifest files (not its subdirectories, nor a `kustomization.yaml`), sorted.
    pub(crate) fn manifests(path: &Path) -> anyhow::Result<Source> {
        if path.is_file() {
            return Ok(Source::Files(vec![path.to_owned()]));
        }
        let mut files: Vec<PathBuf> = fs_err::read_dir(path)
            .with_context(|| format!("cannot list the manifests in `{}`", path.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| {
                // A kustomization is not a manifest (`kustomize` applies one).
                let is_kustomization = p.file_stem().is_some_and(|s| s == "kustomization");
                p.is_file()
                    && !is_kustomization
                    && p.extension()
                        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(UsageError::new(format!(
                "`manifests` names `{}`, which holds no `*.yaml`, `*.yml` or `*.json` file",
                path.display()
            )));
        }
        Ok(Source::Files(files))
    }
}

/// The manifests ready to apply.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    /// The kustomization written to render them (shown by `--dry-run`).
    pub(crate) kustomization: String,
    /// The `v1` List applied, as JSON.
    pub(crate) list: String,
    /// The workloads in it, as `kubectl rollout` names them (`deployment/web`).
    pub(crate) workloads: Vec<String>,
    /// The commands that rendered them.
    pub(crate) commands: Vec<Vec<String>>,
}

/// Our kustomization for `source`, read from `dir`: the user's
/// kustomization or files as resources, and an `images:` entry per image.
pub(crate) fn kustomization(source: &Source, dir: &Path, images: &[Pinned]) -> String {
    let mut text = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
    );
    let resources: Vec<&PathBuf> = match source {
        Source::Kustomize(path) => vec![path],
        Source::Files(files) => files.iter().collect(),
    };
    for resource in resources {
        text.push_str(&format!(
            "- {}\n",
            yaml_string(&relative(dir, resource).display().to_string())
        ));
    }
    text.push_str("images:\n");
    for image in images {
        for name in image.names_in_manifests() {
            text.push_str(&format!("- name: {}\n", yaml_string(&name)));
            if name != image.repository {
                text.push_str(&format!("  newName: {}\n", yaml_string(&image.repository)));
            }
            text.push_str(&format!("  digest: {}\n", yaml_string(&image.digest)));
        }
    }
    text
}

/// Renders the env's manifests with `images` pinned and `release` annotated.
/// `known` is every `[images.*]` (name, repository): a container running one
/// of them by tag, not pinned by this deploy, is refused.
pub(crate) fn render(
    kubectl: &Kubectl,
    runner: &dyn Runner,
    source: &Source,
    images: &[Pinned],
    release: &ReleaseFacts,
    known: &[(String, String)],
) -> anyhow::Result<Rendered> {
    // An old kubectl's kustomize fails on a directory resource with a
    // message that does not say why; say it first.
    let version = crate::kubectl::check_version(kubectl, runner)?;
    let dir = tempfile::Builder::new()
        .prefix("kube-deploy-")
        .tempdir()
        .context("cannot create a temp dir for the kustomization")?;
    // Resolved, so that the relative paths from it hold (`/tmp` may be a link).
    let dir_path = fs_err::canonicalize(dir.path())?;
    let source = match source {
        Source::Kustomize(path) => Source::Kustomize(fs_err::canonicalize(path)?),
        Source::Files(files) => Source::Files(
            files
                .iter()
                .map(fs_err::canonicalize)
                .collect::<Result<_, _>>()?,
        ),
    };
    let text = kustomization(&source, &dir_path, images);
    fs_err::write(dir_path.join("kustomization.yaml"), &text)?;
    let shown = dir_path.display().to_string();
    let render = match source {
        // Files outside the kustomization's root need kustomize told so;
        // a directory (an overlay) is a root of its own.
        Source::Files(_) => kubectl.local(&[
            "kustomize",
            "--load-restrictor",
            "LoadRestrictionsNone",
            &shown,
        ]),
        Source::Kustomize(_) => kubectl.local(&["kustomize", &shown]),
    };
    let rendered = runner.run(&render, b"")?;
    if !rendered.is_success() {
        return Err(UsageError::new(format!(
            "kustomize cannot render the env's manifests ({})",
            rendered.reason()
        )));
    }
    let annotate = kubectl.local(&[
        "annotate",
        "-f",
        "-",
        "--local",
        "-o",
        "json",
        "--overwrite",
        &format!("{RELEASE_ANNOTATION}={}", release.id),
    ]);
    let annotated = runner.run(&annotate, &rendered.stdout)?;
    if !annotated.is_success() {
        return Err(UsageError::new(format!(
            "kubectl cannot read the rendered manifests ({})",
            annotated.reason()
        )));
    }
    let (list, workloads) = finish(&annotated.stdout, images, release, known)?;
    Ok(Rendered {
        kustomization: text,
        list,
        workloads,
        commands: vec![version, render, annotate],
    })
}

/// From `kubectl annotate -o json`'s stream of objects to the List applied:
/// each workload gets the release's annotations; every image must be in a
/// container, pinned.
pub(crate) fn finish(
    json: &[u8],
    images: &[Pinned],
    release: &ReleaseFacts,
    known: &[(String, String)],
) -> anyhow::Result<(String, Vec<String>)> {
    let mut items = Vec::new();
    for object in serde_json::Deserializer::from_slice(json).into_iter::<serde_json::Value>() {
        let object = object.context("kubectl printed an object that is not JSON")?;
        // One document holding a List (a `kind: List` file) is its items.
        match object.get("items").and_then(|i| i.as_array()) {
            Some(list) if object["kind"] == "List" => items.extend(list.iter().cloned()),
            _ => items.push(object),
        }
    }
    if items.is_empty() {
        return Err(UsageError::new(
            "the env's manifests hold no object: nothing would be applied",
        ));
    }
    let mut workloads = Vec::new();
    let mut found: BTreeMap<&str, bool> = images.iter().map(|i| (i.name.as_str(), false)).collect();
    for item in &mut items {
        let kind = item["kind"].as_str().unwrap_or_default().to_owned();
        let name = item["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for container in containers(item) {
            for image in images {
                if container == image.reference() {
                    found.insert(image.name.as_str(), true);
                }
            }
            let repository = repository_of(&container);
            let is_pinned = images.iter().any(|i| container == i.reference());
            if let Some((unpinned, _)) = known.iter().find(|(_, r)| *r == repository)
                && !is_pinned
                && !release.images.is_empty()
            {
                return Err(UsageError::new(format!(
                    "`{}/{name}` runs `{container}`, image `{unpinned}` by tag: this deploy does not pin it to a digest; give `--image {unpinned}=<registry/repo>@sha256:…` (or build it into `--images-from`)",
                    kind.to_lowercase()
                )));
            }
            // An image of no `[images.*]` (a sidecar, a database) must be
            // pinned in the manifests themselves: a tag would reach the
            // cluster as a mutable reference.
            if !is_pinned && !is_digest_reference(&container) && !release.images.is_empty() {
                return Err(UsageError::new(format!(
                    "`{}/{name}` runs `{container}` by tag, an image this deploy does not pin: write it with its digest in the manifests (`{}@sha256:…`), or make it an image of slipway.toml that the env deploys",
                    kind.to_lowercase(),
                    repository
                )));
            }
        }
        if WORKLOAD_KINDS.contains(&kind.as_str()) {
            workloads.push(format!("{}/{name}", kind.to_lowercase()));
            let annotations = item
                .pointer_mut("/metadata")
                .and_then(|m| m.as_object_mut())
                .map(|m| {
                    m.entry("annotations")
                        .or_insert_with(|| serde_json::json!({}))
                });
            if let Some(serde_json::Value::Object(annotations)) = annotations {
                for (key, value) in release.annotations() {
                    annotations.insert(key, serde_json::Value::String(value));
                }
            }
        }
    }
    if let Some((missing, _)) = found.iter().find(|(_, is_found)| !**is_found) {
        let image = images
            .iter()
            .find(|i| i.name == *missing)
            .map(|i| i.configured.as_str())
            .unwrap_or_default();
        return Err(UsageError::new(format!(
            "image `{missing}` is in no container of the env's manifests: no `image:` names its repository `{image}`; deploy only the images the manifests use, or add it to them"
        )));
    }
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let text = serde_json::to_string_pretty(&list).context("cannot write the List")?;
    Ok((text + "\n", workloads))
}

/// The images of an object's containers and init containers (a pod
/// template's, a CronJob's job template's, or a Pod's own).
fn containers(object: &serde_json::Value) -> Vec<String> {
    let specs = [
        "/spec/template/spec",
        "/spec/jobTemplate/spec/template/spec",
        "/spec",
    ];
    let mut images = Vec::new();
    for spec in specs {
        let Some(spec) = object.pointer(spec) else {
            continue;
        };
        for list in ["containers", "initContainers"] {
            for container in spec[list].as_array().into_iter().flatten() {
                if let Some(image) = container["image"].as_str() {
                    images.push(image.to_owned());
                }
            }
        }
    }
    images
}

/// Whether `image` names its digest: `repo[:tag]@sha256:<64 hex>`.
fn is_digest_reference(image: &str) -> bool {
    image.split_once("@sha256:").is_some_and(|(repo, hex)| {
        !repo.is_empty() && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The repository of an image reference as written in a manifest: without
/// its `@digest` and `:tag` (a `:` before the last `/` is a registry's port).
fn repository_of(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or(image);
    match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    }
}

/// `path` relative to `from` (both absolute): `../..` up to `/`, then down.
fn relative(from: &Path, path: &Path) -> PathBuf {
    let from: Vec<Component<'_>> = from.components().collect();
    let to: Vec<Component<'_>> = path.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut relative = PathBuf::new();
    for _ in common..from.len() {
        relative.push("..");
    }
    for component in &to[common..] {
        relative.push(component);
    }
    relative
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_drop_tag_and_digest_but_keep_the_port() {
        assert_eq!(
            repository_of("127.0.0.1:5000/demo/app:main"),
            "127.0.0.1:5000/demo/app"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/demo/app"),
            "127.0.0.1:5000/demo/app"
        );
        assert_eq!(repository_of("r/app@sha256:aa"), "r/app");
        assert_eq!(repository_of("nginx:1.27"), "nginx");
    }

    #[test]
    fn relative_paths_climb_to_the_common_root() {
        assert_eq!(
            relative(Path::new("/tmp/kube-deploy-x"), Path::new("/work/app/k8s")),
            PathBuf::from("../../work/app/k8s")
        );
        assert_eq!(
            relative(Path::new("/work/a/tmp"), Path::new("/work/a/k8s/x.yaml")),
            PathBuf::from("../k8s/x.yaml")
        );
    }
}
