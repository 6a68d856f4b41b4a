//! What a user sees for each kind of mistake in slipway.toml (the full
//! message, location included), a full file loading as written, and every
//! `toml` block and error line of docs/config.md checked against the loader.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use slipway_config::{BuildSecret, Config, Host, PathPattern, Platform, SecretSource};

/// Each mistake: a name, a slipway.toml, and the exact message it produces.
/// Loaded as `slipway.toml` relative to the package directory, where no
/// bundle file exists.
const MISTAKES: &[(&str, &str, &str)] = &[
    (
        "misspelt key",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.app]\ncontext = \".\"\npaths = [\"app/**\"]\nplatfroms = [\"linux/amd64\"]\n",
        "unknown key `platfroms` in [images.app] at slipway.toml:7:1 — did you mean `platforms`?",
    ),
    (
        "key with no near match",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.app]\ncontext = \".\"\npaths = [\"app/**\"]\ncolour = \"blue\"\n",
        "unknown key `colour` in [images.app] at slipway.toml:7:1 — valid keys: `context`, `dockerfile`, `target`, `repository`, `build_args`, `labels`, `platforms`, `paths`, `depends_on`, `depends_on_arg`, `cache_from`, `cache_to`, `secrets`, `default`, `builder`",
    ),
    (
        "misspelt table",
        "[project]\n\n[imagez.app]\ncontext = \".\"\n",
        "unknown table [imagez] at slipway.toml:3:1 — did you mean [images]?",
    ),
    (
        "misspelt top-level table",
        "[project]\n\n[imagez]\n",
        "unknown table [imagez] at slipway.toml:3:1 — did you mean [images]?",
    ),
    (
        "unknown top-level key",
        "name = \"demo\"\n",
        "unknown key `name` in the top-level table at slipway.toml:1:1 — valid keys: `project`, `rebuild_all`, `images`, `tags`, `stale`, `envs`",
    ),
    (
        "misspelt key in a nested inline table",
        "project = { registry = \"127.0.0.1:5000/demo\" }\nimages = { app = { contxt = \"app\" } }\n",
        "unknown key `contxt` in [images.app] at slipway.toml:2:20 — did you mean `context`?",
    ),
    (
        "TOML syntax",
        "[project]\nname = demo\n",
        "invalid TOML at slipway.toml:2:8: string values must be quoted, expected literal string",
    ),
    (
        "string for an array",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.app]\ncontext = \".\"\npaths = [\"app/**\"]\n\nplatforms = \"linux/amd64\"\n",
        "`platforms` in [images.app] at slipway.toml:8:13: expected an array of strings like [\"linux/amd64\"], found a string",
    ),
    (
        "integer in an array of names",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.base]\n[images.app]\ndepends_on = [\"base\", 2]\n",
        "`depends_on` in [images.app] at slipway.toml:6:23: expected an array of image names like [\"base\"], found an integer in the array",
    ),
    (
        "number for a build arg",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.app]\nbuild_args = { RUST_VERSION = 1.95 }\n",
        "`build_args` in [images.app] at slipway.toml:5:31: expected a table of strings like { RUST_VERSION = \"1.95\" }, found a float for `RUST_VERSION`",
    ),
    (
        "string for an image table",
        "[images]\napp = \"Dockerfile\"\n",
        "`app` in [images] at slipway.toml:2:7: expected a table like [images.app], found a string",
    ),
    (
        "invalid platform",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.app]\ncontext = \".\"\npaths = [\"app/**\"]\n\nplatforms = [\"linux\"]\n",
        "`platforms` in [images.app] at slipway.toml:8:14: invalid platform `linux`: expected `os/arch` or `os/arch/variant` in lowercase letters, digits and `_`, e.g. `linux/amd64` or `linux/arm64/v8`",
    ),
    (
        "invalid glob",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.app]\ncontext = \".\"\ndepends_on = []\n\npaths = [\"app/{a,b\"]\n",
        "invalid glob `app/{a,b` in [images.app] paths at slipway.toml:8:10: unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)",
    ),
    (
        "invalid glob in rebuild_all",
        "[rebuild_all]\npaths = [\"Cargo.lock\", \"!\"]\n",
        "invalid glob `!` in [rebuild_all] paths at slipway.toml:2:24: the pattern is empty",
    ),
    (
        "uppercase repository",
        "[project]\n\n[images.app]\ncontext = \".\"\n\nrepository = \"Demo/App\"\n",
        "invalid repository `Demo/App` for [images.app] at slipway.toml:6:14: repository `Demo/App` must be lowercase",
    ),
    (
        "registry without a path",
        "[project]\nregistry = \"registry.example.com\"\n",
        "`registry` in [project] at slipway.toml:2:12: `registry.example.com` is a registry host without a repository path; write e.g. `registry.example.com/demo`",
    ),
    (
        "no repository and no registry",
        "[project]\nname = \"demo\"\n\n[images.app]\ncontext = \".\"\n",
        "[images.app] at slipway.toml:4:1 has no repository: set `repository` in [images.app] or `registry` in [project], e.g. `registry = \"127.0.0.1:5000/demo\"`",
    ),
    (
        "two images, one repository",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.app]\n[images.web]\nrepository = \"127.0.0.1:5000/demo/app\"\n",
        "[images.web] at slipway.toml:6:14 uses repository `127.0.0.1:5000/demo/app`, which [images.app] already uses; give each image its own `repository`",
    ),
    (
        "invalid image name",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.\"My App\"]\n",
        "invalid image name `My App` at slipway.toml:4:9: an image name is lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit, e.g. `app` or `web-worker`",
    ),
    (
        "unknown dependency",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.base]\n[images.migrator]\n\n[images.app]\ncontext = \".\"\ndepends_on = [\"bsae\"]\n",
        "[images.app] depends_on `bsae` at slipway.toml:9:15, which is not an image — did you mean `base`? (images: app, base, migrator)",
    ),
    (
        "dependency cycle",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.app]\ndepends_on = [\"worker\"]\n[images.worker]\ndepends_on = [\"base\", \"app\"]\n[images.base]\n",
        "`depends_on` forms a cycle: app -> worker -> app (at slipway.toml:5:15)",
    ),
    (
        "image depending on itself",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.app]\ndepends_on = [\"app\"]\n",
        "`depends_on` forms a cycle: app -> app (at slipway.toml:5:15)",
    ),
    (
        "bad depends_on_arg",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.app]\ndepends_on_arg = \"BASE-IMAGE\"\n",
        "`depends_on_arg` in [images.app] at slipway.toml:5:18: `BASE-IMAGE` is not a build argument name; use letters, digits and `_`, e.g. `BASE_IMAGE`",
    ),
    (
        "secret of the wrong shape",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.app]\nsecrets = [\"npm=NPM_TOKEN\"]\n",
        "`secrets` in [images.app] at slipway.toml:5:12: invalid build secret `npm=NPM_TOKEN`: unknown field `npm`; expected `id=<id>,env=<VARIABLE>` or `id=<id>,src=<file>`, e.g. `id=npm,env=NPM_TOKEN`",
    ),
    (
        "invalid duration",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nready_url = \"http://127.0.0.1:8080/api/ready\"\nready_timeout = \"soon\"\n",
        "`ready_timeout` in [envs.staging] at slipway.toml:6:17: `soon` is not a duration; use e.g. `30s`, `2m`, `1h30m`",
    ),
    (
        "missing remote_path",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\ncommand = \"./deploy.sh\"\n",
        "missing key `remote_path` in [envs.staging] at slipway.toml:1:1: the absolute directory on each host that holds the bundle and the release records, e.g. `/srv/demo`",
    ),
    (
        "missing hosts",
        "[envs.staging]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\n",
        "missing key `hosts` in [envs.staging] at slipway.toml:1:1: the SSH hosts to deploy to, e.g. `hosts = [\"deploy@web1.example.com\"]`",
    ),
    (
        "relative remote_path",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"srv/demo\"\ncommand = \"./deploy.sh\"\n",
        "`remote_path` in [envs.staging] at slipway.toml:3:15: `srv/demo` is relative; it must be absolute, e.g. `/srv/demo`",
    ),
    (
        "invalid host",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\", \"deploy@::1\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\n",
        "`hosts` in [envs.staging] at slipway.toml:2:35: invalid host `deploy@::1`: an IPv6 address must be in brackets; expected `[user@]host[:port]`, e.g. `deploy@web1.example.com`, `root@127.0.0.1:2222` or `deploy@[::1]:22`",
    ),
    (
        "missing bundle file",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\nbundle = [\"deploy.sh\"]\ncommand = \"./deploy.sh\"\n",
        "bundle file `deploy.sh` in [envs.staging] at slipway.toml:4:11 does not exist (looked for `deploy.sh`; bundle paths are relative to the directory holding slipway.toml)",
    ),
    (
        "bad variable name",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n[images.app]\n\n[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nimages = { app_image = \"app\" }\n",
        "`images` in [envs.staging] at slipway.toml:9:12: `app_image` is not a variable name; use uppercase letters, digits and `_`, not starting with a digit, e.g. `APP_IMAGE`",
    ),
    (
        "env naming an unknown image",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n[images.app]\n[images.migrator]\n\n[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nimages = { APP_IMAGE = \"ap\" }\n",
        "[envs.staging] images `APP_IMAGE` = `ap` at slipway.toml:10:24, which is not an image — did you mean `app`? (images: app, migrator)",
    ),
    (
        "zero releases kept",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nkeep_releases = 0\n",
        "`keep_releases` in [envs.staging] at slipway.toml:5:17: `0` is not a number of releases; keep at least 1",
    ),
    (
        "ready_url without a scheme",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nready_url = \"127.0.0.1:8080/ready\"\n",
        "`ready_url` in [envs.staging] at slipway.toml:5:13: `127.0.0.1:8080/ready` is not an `http://`, `https://` or `tcp://` URL, e.g. `http://127.0.0.1:8080/ready`",
    ),
    (
        "string for default",
        "[project]\nregistry = \"127.0.0.1:5000/demo\"\n\n[images.tools]\ndefault = \"no\"\n",
        "`default` in [images.tools] at slipway.toml:5:11: expected `true` or `false`, found a string",
    ),
    (
        "invalid stale tag",
        "[stale]\ntag = \"-latest\"\n",
        "`tag` in [stale] at slipway.toml:2:7: invalid tag `-latest`: a tag starts with a letter, digit or `_` and has at most 128 of `A-Z a-z 0-9 _ . -`",
    ),
    (
        "env variable named by ssh-deploy",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nenv = { SLIPWAY_ENV = \"x\" }\n",
        "`env` in [envs.staging] at slipway.toml:5:9: `SLIPWAY_ENV` is set by ssh-deploy (`SLIPWAY_…` and the env's `images` variables); give it another name",
    ),
    (
        "env variable that is no name",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nenv = { \"1X\" = \"x\" }\n",
        "`env` in [envs.staging] at slipway.toml:5:9: `1X` is not a variable name; use letters, digits and `_`, not starting with a digit, e.g. `LOG_LEVEL`",
    ),
    (
        "strip_components out of range",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nstrip_components = -1\n",
        "`strip_components` in [envs.staging] at slipway.toml:5:20: `-1` is not a number of leading directories to drop; use 0 (keep the paths as in the project) to 64",
    ),
    (
        "batch of no hosts",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nbatch = \"0%\"\n",
        "`batch` in [envs.staging] at slipway.toml:5:9: `0%` is not a batch size; give a number of hosts (at least 1) like `2`, or a percentage from 1% to 100% like `25%`",
    ),
    (
        "string for keep_releases",
        "[envs.staging]\nhosts = [\"deploy@127.0.0.1:2222\"]\nremote_path = \"/srv/demo\"\ncommand = \"./deploy.sh\"\nkeep_releases = \"10\"\n",
        "`keep_releases` in [envs.staging] at slipway.toml:5:17: expected an integer like 10, found a string",
    ),
    (
        "unknown deploy target",
        "[envs.dev]\ntarget = \"nomad\"\n",
        "`target` in [envs.dev] at slipway.toml:2:10: `nomad` is not a deploy target; use `ssh` (the default), `swarm`, `kubernetes` or `command`",
    ),
    (
        "ssh key on a swarm env",
        "[envs.dev]\ntarget = \"swarm\"\nhosts = [\"deploy@127.0.0.1\"]\n\n[envs.dev.swarm]\ncompose_file = \"Cargo.toml\"\n",
        "`hosts` in [envs.dev] at slipway.toml:3:1: `hosts` is a key of envs deployed over SSH, and env `dev` deploys to swarm (`target = \"swarm\"`); its keys are `target`, `images`, `ready_url`, `ready_timeout`, `lock_timeout`, `keep_releases`, `env`, `swarm`",
    ),
    (
        "unknown key in a command target",
        "[envs.prod]\ntarget = \"command\"\n\n[envs.prod.command]\nrun = \"./deploy.sh\"\nrnu = \"x\"\n",
        "unknown key `rnu` in [envs.prod.command] at slipway.toml:6:1 — did you mean `run`?",
    ),
    (
        "swarm env without its table",
        "[envs.dev]\ntarget = \"swarm\"\n",
        "missing key `swarm` in [envs.dev] at slipway.toml:1:1: a swarm env needs its table, e.g. `[envs.dev.swarm]` with `compose_file = \"deploy/compose.yml\"`",
    ),
    (
        "missing compose file",
        "[envs.dev]\ntarget = \"swarm\"\n\n[envs.dev.swarm]\ncompose_file = \"deploy/stack.yml\"\n",
        "`compose_file` in [envs.dev.swarm] at slipway.toml:5:16: `deploy/stack.yml` is not a file (looked at `deploy/stack.yml`); name the compose file relative to slipway.toml",
    ),
    (
        "swarm stack name too long for its records' config names",
        "[envs.dev]\ntarget = \"swarm\"\n\n[envs.dev.swarm]\ncompose_file = \"Cargo.toml\"\nstack = \"a-stack-name-of-forty-one-characters-xyz1\"\n",
        "`stack` in [envs.dev.swarm] at slipway.toml:6:9: `a-stack-name-of-forty-one-characters-xyz1` is not a stack name; use at most 40 letters, digits, `_`, `.` and `-`, starting with a letter or digit, e.g. `demo-prod`",
    ),
    (
        "kubernetes env without its table",
        "[envs.prod]\ntarget = \"kubernetes\"\n",
        "missing key `kubernetes` in [envs.prod] at slipway.toml:1:1: a kubernetes env needs its table, e.g. `[envs.prod.kubernetes]` with `kustomize = \"k8s/overlays/prod\"`",
    ),
    (
        "kubernetes env deploying nothing",
        "[envs.prod]\ntarget = \"kubernetes\"\n\n[envs.prod.kubernetes]\nnamespace = \"shop\"\n",
        "missing key `workloads` in [envs.prod.kubernetes] at slipway.toml:4:1: say what is deployed with exactly one of `workloads` (`kubectl set image` on running workloads), `manifests` (a directory of manifests applied) or `kustomize` (an overlay applied)",
    ),
    (
        "kubernetes workload of an unknown kind",
        "[images.app]\nrepository = \"127.0.0.1:5000/demo/app\"\n\n[envs.prod]\ntarget = \"kubernetes\"\n\n[envs.prod.kubernetes.workloads]\n\"pod/web\" = { web = \"app\" }\n",
        "`workloads` in [envs.prod.kubernetes] at slipway.toml:8:1: `pod/web` is not a workload: write `deployment/NAME`, `statefulset/NAME` or `daemonset/NAME` (what `kubectl rollout` manages), NAME in lowercase letters, digits, `-` and `.`",
    ),
    (
        "kubernetes container of an unknown image",
        "[images.app]\nrepository = \"127.0.0.1:5000/demo/app\"\n\n[envs.prod]\ntarget = \"kubernetes\"\n\n[envs.prod.kubernetes.workloads]\n\"deployment/web\" = { web = \"ap\" }\n",
        "`workloads` in [envs.prod.kubernetes] at slipway.toml:8:28: container `web` of `deployment/web` gets image `ap`, which is not an [images.*] table; images are `app`",
    ),
    (
        "kubernetes namespace that is no DNS label",
        "[envs.prod]\ntarget = \"kubernetes\"\n\n[envs.prod.kubernetes]\nnamespace = \"Shop\"\nkustomize = \".\"\n",
        "`namespace` in [envs.prod.kubernetes] at slipway.toml:5:13: `Shop` is not a namespace name: 1 to 63 lowercase letters, digits and `-`, starting and ending with a letter or digit",
    ),
];

#[track_caller]
fn check(name: &str, toml: &str, expected: &str) {
    let error = Config::from_str(toml, Path::new("slipway.toml"))
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(error, Err(expected.to_owned()), "mistake: {name}");
}

#[test]
fn each_mistake_reports_where_it_is_and_what_would_be_valid() {
    for (name, toml, expected) in MISTAKES {
        check(name, toml, expected);
    }
}

#[test]
fn the_path_is_shown_as_given() {
    let toml = "[project]\nnme = \"demo\"\n";
    let error = Config::from_str(toml, Path::new("deploy/slipway.toml")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown key `nme` in [project] at deploy/slipway.toml:2:1 — did you mean `name`?"
    );
    let error = Config::load(Path::new("no/such/slipway.toml")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot read config `no/such/slipway.toml`"),
        "{error}"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let toml = "[project]\nsource = \"ünïcödé\"\nnaem = \"x\"\n[images.app]\nlabels = { \"ä\" = \"ö\", \"é\" = 1 }\n";
    let error = Config::from_str(toml, Path::new("slipway.toml")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown key `naem` in [project] at slipway.toml:3:1 — did you mean `name`?"
    );
    let toml = "[project]\nregistry = \"127.0.0.1:5000/demo\"\n[images.app]\nlabels = { \"ä\" = \"ö\", \"é\" = 1 }\n";
    let error = Config::from_str(toml, Path::new("slipway.toml")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "`labels` in [images.app] at slipway.toml:4:29: expected a table of strings like { \"com.example.team\" = \"web\" }, found an integer for `é`"
    );
}

/// Writes `toml` as slipway.toml in a temporary directory, with every bundle
/// file it names (the loader checks they exist), and loads it.
fn load_with_bundle(toml: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let table: toml::Table = toml.parse().expect("valid TOML");
    let envs = table
        .get("envs")
        .and_then(|e| e.as_table())
        .cloned()
        .unwrap_or_default();
    for env in envs.values() {
        let files = env
            .get("bundle")
            .and_then(|b| b.as_array())
            .cloned()
            .unwrap_or_default();
        for file in files {
            let path = dir
                .path()
                .join(file.as_str().expect("bundle entries are strings"));
            fs_err::create_dir_all(path.parent().expect("a file has a parent"))
                .expect("bundle directory created");
            fs_err::write(&path, "#!/bin/sh\n").expect("bundle file written");
        }
        if let Some(compose) = env
            .get("swarm")
            .and_then(|s| s.get("compose_file"))
            .and_then(|f| f.as_str())
        {
            let path = dir.path().join(compose);
            fs_err::create_dir_all(path.parent().expect("a file has a parent"))
                .expect("compose directory created");
            fs_err::write(&path, "services: {}\n").expect("compose file written");
        }
    }
    let path = dir.path().join("slipway.toml");
    fs_err::write(&path, toml).expect("slipway.toml written");
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}\n---\n{toml}"));
    (dir, config)
}

const FULL: &str = r#"
[project]
name = "demo"
registry = "127.0.0.1:5000/demo"
default_branch = "trunk"
source = "https://example.com/acme/demo"

[rebuild_all]
paths = ["Cargo.lock", "shared/**"]

[images.base]
context = "."
dockerfile = "docker/base.Dockerfile"
target = "runtime"
repository = "127.0.0.1:5000/other/base"
build_args = { RUST_VERSION = "1.95" }
labels = { "com.example.team" = "web" }
platforms = ["linux/amd64", "linux/arm64/v8"]
paths = ["app/**", "!app/docs/**"]
cache_from = ["type=registry,ref=127.0.0.1:5000/demo/cache:app"]
cache_to = ["type=inline"]
secrets = ["id=npm,env=NPM_TOKEN", "id=npmrc,src=.npmrc"]

[images.app]
context = "app"
depends_on = ["base"]
depends_on_arg = "BASE"

[tags]
rules = ["type=sha", "type=ref,event=branch"]
flavor = ["latest=auto"]

[envs.staging]
hosts = ["root@127.0.0.1:2222", "deploy@[::1]:22", "web1.example.com"]
remote_path = "/srv/demo"
bundle = ["examples/demo/compose.yml", "examples/demo/deploy.sh"]
command = "./deploy.sh"
images = { APP_IMAGE = "app", BASE_IMAGE = "base" }
ready_url = "http://127.0.0.1:8080/api/ready"
ready_timeout = "90s"
lock_timeout = "1h30m"
keep_releases = 3

[envs.prod]
hosts = ["web1.example.com"]
remote_path = "/srv/demo"
command = "./deploy.sh"
"#;

#[test]
fn a_full_file_loads_as_written_with_defaults_applied() {
    let (dir, config) = load_with_bundle(FULL);
    assert_eq!(config.root, dir.path());
    assert_eq!(config.project.name, "demo");
    assert_eq!(
        config
            .project
            .registry
            .as_ref()
            .map(|r| r.to_string())
            .as_deref(),
        Some("127.0.0.1:5000/demo")
    );
    assert_eq!(config.project.default_branch, "trunk");
    assert_eq!(
        config.project.source.as_deref(),
        Some("https://example.com/acme/demo")
    );
    let pattern = |p: &str, negated| PathPattern {
        pattern: p.to_owned(),
        negated,
    };
    assert_eq!(
        config.rebuild_all.paths,
        [pattern("Cargo.lock", false), pattern("shared/**", false)]
    );

    let base = config.image("base").unwrap();
    assert_eq!(
        (base.context.as_path(), base.dockerfile.as_path()),
        (Path::new("."), Path::new("docker/base.Dockerfile"))
    );
    assert_eq!(base.target.as_deref(), Some("runtime"));
    assert_eq!(base.repository().to_string(), "127.0.0.1:5000/other/base");
    assert_eq!(
        base.build_args,
        BTreeMap::from([("RUST_VERSION".to_owned(), "1.95".to_owned())])
    );
    assert_eq!(
        base.labels,
        BTreeMap::from([("com.example.team".to_owned(), "web".to_owned())])
    );
    let platforms: Vec<Platform> = vec![
        "linux/amd64".parse().unwrap(),
        "linux/arm64/v8".parse().unwrap(),
    ];
    assert_eq!(base.platforms, platforms);
    assert_eq!(
        base.paths,
        [pattern("app/**", false), pattern("app/docs/**", true)]
    );
    assert_eq!(
        base.cache_from,
        ["type=registry,ref=127.0.0.1:5000/demo/cache:app"]
    );
    assert_eq!(base.cache_to, ["type=inline"]);
    assert_eq!(
        base.secrets,
        [
            BuildSecret {
                id: "npm".to_owned(),
                source: SecretSource::Env("NPM_TOKEN".to_owned())
            },
            BuildSecret {
                id: "npmrc".to_owned(),
                source: SecretSource::File(PathBuf::from(".npmrc"))
            },
        ]
    );
    assert_eq!(
        (base.depends_on.len(), base.depends_on_arg.as_str()),
        (0, "BASE_IMAGE")
    );
    assert_eq!((base.at.line, base.at.column), (11, 1));

    let app = config.image("app").unwrap();
    assert_eq!(
        (app.context.as_path(), app.dockerfile.as_path()),
        (Path::new("app"), Path::new("app/Dockerfile"))
    );
    assert_eq!(app.repository().to_string(), "127.0.0.1:5000/demo/app");
    assert_eq!(
        (app.depends_on.as_slice(), app.depends_on_arg.as_str()),
        (["base".to_owned()].as_slice(), "BASE")
    );
    assert!(
        app.target.is_none()
            && app.platforms.is_empty()
            && app.paths.is_empty()
            && app.secrets.is_empty()
    );

    let rules: Vec<&str> = config.tags.rules.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(rules, ["type=sha", "type=ref,event=branch"]);
    assert_eq!(
        (config.tags.rules[1].at.line, config.tags.rules[1].at.column),
        (30, 22)
    );
    assert_eq!(config.tags.flavor[0].value, "latest=auto");

    let staging = config.env("staging").unwrap();
    let hosts: Vec<Host> = ["root@127.0.0.1:2222", "deploy@[::1]:22", "web1.example.com"]
        .iter()
        .map(|h| h.parse().unwrap())
        .collect();
    assert_eq!(staging.hosts, hosts);
    assert_eq!(
        staging.hosts[1],
        Host {
            user: Some("deploy".to_owned()),
            host: "::1".to_owned(),
            port: Some(22)
        }
    );
    assert_eq!(staging.remote_path, "/srv/demo");
    assert_eq!(
        staging.bundle,
        [
            PathBuf::from("examples/demo/compose.yml"),
            PathBuf::from("examples/demo/deploy.sh")
        ]
    );
    assert_eq!(staging.command, "./deploy.sh");
    assert_eq!(
        staging.images,
        BTreeMap::from([
            ("APP_IMAGE".to_owned(), "app".to_owned()),
            ("BASE_IMAGE".to_owned(), "base".to_owned())
        ])
    );
    assert_eq!(
        staging.ready_url.as_deref(),
        Some("http://127.0.0.1:8080/api/ready")
    );
    assert_eq!(
        (
            staging.ready_timeout,
            staging.lock_timeout,
            staging.keep_releases
        ),
        (Duration::from_secs(90), Duration::from_secs(5400), 3)
    );

    let prod = config.env("prod").unwrap();
    assert!(prod.bundle.is_empty() && prod.images.is_empty() && prod.ready_url.is_none());
    assert_eq!(
        (prod.ready_timeout, prod.lock_timeout, prod.keep_releases),
        (Duration::from_secs(60), Duration::from_secs(300), 10)
    );
}

#[test]
fn an_empty_file_is_valid_and_names_the_project_after_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("acme-shop");
    fs_err::create_dir_all(&project).unwrap();
    fs_err::write(project.join("slipway.toml"), "").unwrap();
    let config = Config::load(&project.join("slipway.toml")).unwrap();
    assert_eq!(
        (
            config.project.name.as_str(),
            config.project.default_branch.as_str()
        ),
        ("acme-shop", "main")
    );
    assert!(
        config.images.is_empty() && config.envs.is_empty() && config.project.registry.is_none()
    );
}

/// The fenced blocks of docs/config.md with the given info string.
fn doc_blocks(info: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md");
    let text = fs_err::read_to_string(path).expect("docs/config.md is readable");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.strip_prefix("```")) {
            (None, Some(tag)) if tag.trim() == info => current = Some(String::new()),
            (Some(_), Some("")) => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_toml_block_of_the_docs_loads() {
    let blocks = doc_blocks("toml");
    assert!(
        blocks.len() >= 2,
        "docs/config.md has {} toml blocks",
        blocks.len()
    );
    for block in blocks {
        load_with_bundle(&block);
    }
}

#[test]
fn every_error_shown_in_the_docs_is_a_real_message() {
    let lines: Vec<String> = doc_blocks("text")
        .iter()
        .flat_map(|b| b.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(
        lines.len() >= 10,
        "docs/config.md shows {} error lines",
        lines.len()
    );
    for line in lines {
        assert!(
            MISTAKES.iter().any(|(_, _, message)| *message == line),
            "docs/config.md shows an error no test produces:\n{line}"
        );
    }
}
