#!/bin/sh
# The demo's deploy script, run by ssh-deploy on the host in the env's
# remote path with APP_IMAGE and MIGRATOR_IMAGE set (also in deploy.env).
# The env's `command` sets DOCKER_HOST (the host's engine), APP_PORT and,
# optionally, APP_CONTAINER (the app container's name, default demo-app).
#
# Order: pull both images first (a registry outage leaves the running
# release alone), run the migrator to completion, then replace the app.
set -eu
cd "$(dirname "$0")"
docker="${DOCKER:-/usr/bin/docker}"
data="$PWD/data"
container="${APP_CONTAINER:-demo-app}"
mkdir -p "$data"

echo "release ${SLIPWAY_RELEASE:-?}: pulling images"
"$docker" pull --quiet "$MIGRATOR_IMAGE"
"$docker" pull --quiet "$APP_IMAGE"

echo "release ${SLIPWAY_RELEASE:-?}: running the migrator"
rm -f "$data/migrated"
"$docker" run --rm --network host --volume "$data:/data" "$MIGRATOR_IMAGE"

echo "release ${SLIPWAY_RELEASE:-?}: replacing the app"
"$docker" rm --force "$container" >/dev/null 2>&1 || true
"$docker" run --detach --name "$container" --network host \
  --env "APP_PORT=${APP_PORT:?APP_PORT is not set}" --volume "$data:/data" "$APP_IMAGE" >/dev/null

echo "release ${SLIPWAY_RELEASE:-?}: done"
