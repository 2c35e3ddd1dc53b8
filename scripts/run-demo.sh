#!/usr/bin/env bash
# `make run`: the host with its demo page on $LISTEN (default 127.0.0.1:8080). Uses REDIS_URL when
# set; otherwise starts a private redis-server on a free loopback port and stops it afterwards.
# The demo page and POST /publish (unauthenticated) are demo features, off unless switched on here.
set -euo pipefail
prefix=${1:?usage: run-demo.sh INSTALL_PREFIX}
listen=${LISTEN:-127.0.0.1:8080}
if [ -z "${REDIS_URL:-}" ]; then
  exec "$(dirname "$0")/with-redis.sh" "$0" "$prefix"
fi
echo "Redis: $REDIS_URL"
echo "Open http://$listen/ in two browser windows and chat; Ctrl-C stops."
"$prefix/bin/ws4redis-host" --listen "$listen" --redis "$REDIS_URL" --demo-page on --publish-endpoint on
