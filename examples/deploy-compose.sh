#!/usr/bin/env bash
# Reference deploy script for `ssh-deploy` (docs/ssh-deploy.md).
#
# ssh-deploy uploads this script, the compose file and `deploy.env` (the image
# references, e.g. APP_IMAGE and MIGRATOR_IMAGE) to the env's remote path and
# runs it there. Long-lived secrets stay in the host's own `.env.production`,
# which ssh-deploy never touches.
#
# Order matters: pull every new image before stopping anything, so a registry
# outage leaves the running release alone; start the database and cache; run
# the migrator; then replace the app; prune last.
set -euo pipefail

cd "$(dirname "$0")"

compose_file="${COMPOSE_FILE:-compose.yml}"
project="${COMPOSE_PROJECT_NAME:-${SLIPWAY_ENV:-app}}"

# Both the compose plugin (`docker compose`) and the standalone v1 binary
# (`docker-compose`) read the same files and flags used here.
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "deploy-compose.sh: neither \`docker compose\` nor \`docker-compose\` is installed" >&2
  exit 1
fi

env_files=(--env-file deploy.env)
if [ -f .env.production ]; then
  # Compose reads one --env-file (v1) or several (v2); export the secrets
  # instead, so both see them and deploy.env's image references win.
  set -a
  # shellcheck disable=SC1091
  . ./.env.production
  set +a
fi

run_compose() {
  "${compose[@]}" --project-name "$project" --file "$compose_file" "${env_files[@]}" "$@"
}

echo "release ${SLIPWAY_RELEASE:-?}: pulling images"
run_compose pull --quiet

echo "release ${SLIPWAY_RELEASE:-?}: starting db and cache"
run_compose up -d --no-recreate db cache

echo "release ${SLIPWAY_RELEASE:-?}: running migrations"
run_compose run --rm --no-deps migrator

echo "release ${SLIPWAY_RELEASE:-?}: starting the app"
run_compose up -d --no-deps --remove-orphans app

echo "release ${SLIPWAY_RELEASE:-?}: pruning unused images"
docker image prune --force --filter "until=168h" >/dev/null

echo "release ${SLIPWAY_RELEASE:-?}: done"
