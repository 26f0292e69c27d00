#!/usr/bin/env bash
# The README's test command: provides what the tests need, then runs them.
#
# The Redis tests start a real redis-server of their own on a free loopback port, and the HUD's
# tests a headless Chromium; both fail (never skip) when these cannot start. Missing ones are
# installed from Debian's packages (as root, or through sudo); on a machine without apt, install
# them yourself first.
# Arguments go to `cargo test` (a filter, `-- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package names of the programs the tests start: redis-server for the Redis tests,
# chromium for the HUD's browser tests.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing ${missing[*]}: installing Debian's packages (the tests start their own)" >&2
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install ${missing[*]} and run this again" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
redis-server --version >&2
chromium --version >&2

exec cargo test --locked "$@"
