#!/bin/sh
# Dogfooding only: points examples/demo/slipway.toml at a real registry and
# real hosts, for the example workflows deploy-staging.yml and
# promote-prod.yml. The committed file names a loopback registry and the
# `demo` env of `cargo xtask demo`; in your own repository slipway.toml names
# your registry and envs itself, and you need no such step.
#
# Reads, from the workflow's environment:
#   DEPLOY_REGISTRY     required; the repository prefix, e.g. ghcr.io/acme/slipway-demo
#   STAGING_HOST        [user@]host[:port]; becomes [envs.staging]'s hosts when set
#   PROD_HOST           [user@]host[:port]; becomes [envs.prod]'s hosts when set
#   PREVIEW_HOST        [user@]host[:port]; becomes [envs.preview]'s hosts when set
#   DEMO_BUSYBOX_IMAGE  the image `base` starts from (default docker.io/library/busybox:1.36)
#
# The file is rewritten in the checkout and marked `skip-worktree`, so the
# tools do not see a dirty tree: img-build would label the images
# `<sha>-dirty`, which the deploy gate refuses. Only slipway.toml changes;
# no file an image is built from does.
set -eu

cd "$(git rev-parse --show-toplevel)"
config=examples/demo/slipway.toml
registry="${DEPLOY_REGISTRY:?set the repository variable DEPLOY_REGISTRY, e.g. ghcr.io/acme/slipway-demo}"
busybox="${DEMO_BUSYBOX_IMAGE:-docker.io/library/busybox:1.36}"
staging="${STAGING_HOST:-}"
prod="${PROD_HOST:-}"
preview="${PREVIEW_HOST:-}"

# Every value lands inside a TOML string: refuse what could break out of it.
for value in "$registry" "$busybox" "$staging" "$prod" "$preview"; do
  case $value in
    *[!A-Za-z0-9@:./_\[\]-]*)
      echo "demo-config.sh: \`$value\` holds a character other than letters, digits and @:./_-[]" >&2
      exit 2
      ;;
  esac
done

# Exact lines of the committed file; each must be found as often as expected,
# so a change to examples/demo/slipway.toml cannot silently skip a rewrite.
awk -v registry="$registry" -v busybox="$busybox" -v staging="$staging" -v prod="$prod" -v preview="$preview" '
  /^\[/ { table = $0 }
  $0 == "registry = \"127.0.0.1:5000/demo\"" {
    print "registry = \"" registry "\""; seen_registry++; next
  }
  $0 == "build_args = { BUSYBOX_IMAGE = \"127.0.0.1:5000/base/busybox:1\" }" {
    print "build_args = { BUSYBOX_IMAGE = \"" busybox "\" }"; seen_busybox++; next
  }
  # The ARG default in the Dockerfile names the loopback registry; when `base`
  # is not rebuilt, app and migrator start from what main published.
  $0 == "depends_on = [\"base\"]" {
    print; print "build_args = { BASE_IMAGE = \"" registry "/base:main\" }"; seen_depends++; next
  }
  # Each env keeps its own remote path, app port and container name, so
  # staging and prod may share a host; only the host changes.
  $0 == "hosts = [\"root@127.0.0.1:2222\"]" && table == "[envs.staging]" {
    if (staging != "") print "hosts = [\"" staging "\"]"; else print; seen_hosts++; next
  }
  $0 == "hosts = [\"root@127.0.0.1:2222\"]" && table == "[envs.prod]" {
    if (prod != "") print "hosts = [\"" prod "\"]"; else print; seen_hosts++; next
  }
  $0 == "hosts = [\"root@127.0.0.1:2222\"]" && table == "[envs.preview]" {
    if (preview != "") print "hosts = [\"" preview "\"]"; else print; seen_hosts++; next
  }
  { print }
  END {
    if (seen_registry != 1 || seen_busybox != 1 || seen_depends != 2 || seen_hosts != 3) {
      printf "demo-config.sh: examples/demo/slipway.toml no longer has the lines this script rewrites (registry %d/1, BUSYBOX_IMAGE %d/1, depends_on %d/2, hosts of staging, prod and preview %d/3)\n", seen_registry, seen_busybox, seen_depends, seen_hosts > "/dev/stderr"
      exit 1
    }
  }
' "$config" >"$config.new"

mv -f -- "$config.new" "$config"
git update-index --skip-worktree -- "$config"
echo "demo-config.sh: $config now uses registry \`$registry\`${staging:+, staging \`$staging\`}${prod:+, prod \`$prod\`}${preview:+, preview \`$preview\`}"
