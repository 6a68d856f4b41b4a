#!/bin/sh
# Installs Slipway's release binaries (the six tools and `slipway`) for this
# machine, with the archive's sha256 checked against the release's
# sha256sums.txt before anything is unpacked; used by action.yml and by hand
# (docs/install.md).
#
# Settings (environment):
#   SLIPWAY_VERSION   a release tag (`v0.1.0`) or `latest` (default)
#   SLIPWAY_TOOLS     `all` (default) or the binaries to install, separated
#                     by spaces or commas (`img-tag ready-wait`)
#   SLIPWAY_BASE_URL  where releases are: `<base>/download/<tag>/<file>`,
#                     `<base>/latest` redirecting to `.../tag/<tag>`
#                     (default: the GitHub releases of the action's
#                     repository, `$GITHUB_ACTION_REPOSITORY`)
#   SLIPWAY_INSTALL_DIR  where to install (default: the runner's tool cache,
#                     else ~/.local/share/slipway, then /<version>/<target>)
#   GITHUB_PATH       when set, the install's bin/ is appended to it
#
# Exit status: 0 installed; 1 the download or its checksum failed (nothing
# was installed); 2 a setting is invalid.
set -eu

version=${SLIPWAY_VERSION:-latest}
tools=${SLIPWAY_TOOLS:-all}
base=${SLIPWAY_BASE_URL:-}
# Inside a composite action `github.action_repository` may be empty
# (actions/runner#2525): the action's own checkout path names it,
# `…/_actions/<owner>/<repo>/<ref>`.
if [ -z "${GITHUB_ACTION_REPOSITORY:-}" ]; then
  case "${GITHUB_ACTION_PATH:-}" in
    */_actions/*/*/*)
      rest=${GITHUB_ACTION_PATH##*/_actions/}
      owner=${rest%%/*}
      rest=${rest#*/}
      GITHUB_ACTION_REPOSITORY="$owner/${rest%%/*}"
      ;;
  esac
fi
if [ -z "$base" ] && [ -n "${GITHUB_ACTION_REPOSITORY:-}" ]; then
  base="https://github.com/$GITHUB_ACTION_REPOSITORY/releases"
fi
base=${base%/}
all_binaries="changed-paths img-build img-tag image-stale-check ssh-deploy ready-wait swarm-deploy kube-deploy cmd-deploy slipway"

fail() {
  echo "slipway install: error: $2" >&2
  exit "$1"
}

command -v curl >/dev/null 2>&1 || fail 1 "curl is needed to download the release"
case "$base" in
  https://* | http://127.0.0.1 | http://127.0.0.1[:/]* | http://localhost | http://localhost[:/]*) ;;
  '') fail 2 "SLIPWAY_BASE_URL is not set: the releases' URL, e.g. https://github.com/OWNER/slipway/releases" ;;
  *) fail 2 "invalid SLIPWAY_BASE_URL \`$base\`: an https:// URL (plain http only on loopback)" ;;
esac

case "$(uname -s)" in
  Linux) ;;
  *) fail 2 "no release archive for $(uname -s): archives exist for Linux x86_64 and aarch64" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) target=x86_64-unknown-linux-gnu ;;
  aarch64 | arm64) target=aarch64-unknown-linux-gnu ;;
  *) fail 2 "no release archive for $(uname -m): archives exist for Linux x86_64 and aarch64" ;;
esac

if [ "$version" = latest ]; then
  # GitHub answers <base>/latest with a redirect to <base>/tag/<tag>.
  effective=$(curl --fail --silent --show-error --location --head \
    --output /dev/null --write-out '%{url_effective}' "$base/latest") ||
    fail 1 "cannot find the latest release at \`$base/latest\`"
  case "$effective" in
    */tag/*) version=${effective##*/} ;;
    *) fail 1 "no release found at \`$base/latest\` (it led to \`$effective\`, not to a release tag)" ;;
  esac
fi
case "$version" in
  *[!A-Za-z0-9._+-]*) fail 2 "invalid version: a release tag such as \`v0.1.0\` (letters, digits, \`.\`, \`-\`, \`+\`, \`_\`), or \`latest\`" ;;
  v[0-9]*) ;;
  *) fail 2 "invalid version \`$version\`: a release tag such as \`v0.1.0\`, or \`latest\`" ;;
esac

tools=$(printf '%s' "$tools" | tr ',' ' ')
if [ "$tools" = all ]; then
  tools=$all_binaries
fi
for tool in $tools; do
  case " $all_binaries " in
    *" $tool "*) ;;
    *) fail 2 "unknown tool \`$tool\` in tools: valid are \`all\` or any of $all_binaries" ;;
  esac
done

archive="slipway-${version#v}-$target.tar.gz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "slipway install: downloading $base/download/$version/$archive" >&2
curl --fail --silent --show-error --location --output "$work/$archive" \
  "$base/download/$version/$archive" ||
  fail 1 "cannot download \`$base/download/$version/$archive\`"
curl --fail --silent --show-error --location --output "$work/sha256sums.txt" \
  "$base/download/$version/sha256sums.txt" ||
  fail 1 "cannot download \`$base/download/$version/sha256sums.txt\`"

expected=$(awk -v name="$archive" '$2 == name || $2 == "*" name { print $1 }' "$work/sha256sums.txt")
[ -n "$expected" ] || fail 1 "sha256sums.txt of $version has no line for \`$archive\`"
actual=$(sha256sum "$work/$archive" | awk '{ print $1 }')
if [ "$actual" != "$expected" ]; then
  fail 1 "checksum mismatch for \`$archive\`: sha256sums.txt says $expected, the download is $actual; nothing was installed"
fi

dir=${SLIPWAY_INSTALL_DIR:-${RUNNER_TOOL_CACHE:-${XDG_DATA_HOME:-$HOME/.local/share}}/slipway}/$version/$target
tar --extract --gzip --file "$work/$archive" --directory "$work"
unpacked="$work/slipway-${version#v}-$target"
mkdir -p "$dir/bin"
for tool in $tools; do
  [ -x "$unpacked/bin/$tool" ] || fail 1 "the archive has no \`bin/$tool\`"
  cp "$unpacked/bin/$tool" "$dir/bin/$tool.tmp"
  mv "$dir/bin/$tool.tmp" "$dir/bin/$tool"
done
for extra in completions man; do
  if [ -d "$unpacked/$extra" ]; then
    rm -rf "${dir:?}/$extra"
    cp -R "$unpacked/$extra" "$dir/$extra"
  fi
done

if [ -n "${GITHUB_PATH:-}" ]; then
  echo "$dir/bin" >>"$GITHUB_PATH"
fi
echo "slipway install: installed $tools ($version, sha256 $actual) into $dir/bin" >&2
