#!/bin/sh
# The demo app: waits until the migration ran, then serves /www with
# busybox httpd on 127.0.0.1:$APP_PORT, /api/ready included.
set -eu
port="${APP_PORT:?APP_PORT is not set}"
while [ ! -f /data/migrated ]; do
  echo "app: waiting for the migration"
  sleep 1
done
busybox mkdir -p /tmp/www/api
busybox cp -r /www/. /tmp/www/
cat /data/migrated > /tmp/www/api/ready
echo "app: serving on 127.0.0.1:$port"
exec httpd -f -p "127.0.0.1:$port" -h /tmp/www
