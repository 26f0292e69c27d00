#!/usr/bin/env bash
# The README's test command: provides what the tests need, then runs them.
#
# The Redis tests start a real redis-server of their own on a free loopback port, and fail (never
# skip) when it cannot start. When `redis-server` is missing it is installed from Debian's
# packages (as root, or through sudo); on a machine without apt, install it yourself first.
# Arguments go to `cargo test` (a filter, `-- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is missing: installing Debian's package (the Redis tests run one of their own)" >&2
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install redis-server (6 or newer) and run this again" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
fi
redis-server --version >&2

exec cargo test --locked "$@"
