#!/bin/sh
# The demo's "migration": writes the marker the app waits for into /data,
# a host directory shared with the app's container.
set -eu
echo "migrated by $(cat /etc/demo-release)" > /data/migrated
echo "migrator: wrote /data/migrated"
