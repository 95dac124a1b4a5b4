#!/usr/bin/env bash
# Installs the system tools the tests need when they are missing, on Debian/Ubuntu with apt-get:
#   redis-server (redis-server), kubectl (kubernetes-client), promtool (prometheus), /usr/bin/chromium (chromium).
# Called by the vitest global setup (so `npm ci && npm test` works on a fresh machine) and by .ci/run.
# Package services are kept from starting while installing (a temporary /usr/sbin/policy-rc.d answering 101,
# which invoke-rc.d and deb-systemd-invoke honour), so nothing has to be stopped afterwards.
# Prints what it does on stderr; exits non-zero with the reason (and the apt log) when it cannot install.
# SYSTEM_TOOLS_NO_INSTALL=1 only reports what is missing, and fails when something is.
# SYSTEM_TOOLS_CHROMIUM and SYSTEM_TOOLS_POLICY_RC_D move /usr/bin/chromium and /usr/sbin/policy-rc.d (for its test).
set -euo pipefail
CHROMIUM=${SYSTEM_TOOLS_CHROMIUM:-/usr/bin/chromium}
POLICY=${SYSTEM_TOOLS_POLICY_RC_D:-/usr/sbin/policy-rc.d}

missing() {
  local need=()
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  [[ -x $CHROMIUM ]] || need+=(chromium)
  echo "${need[*]:-}"
}

need=$(missing)
[[ -z $need ]] && exit 0

say() { echo "system-tools: $*" >&2; }
if [[ ${SYSTEM_TOOLS_NO_INSTALL:-} == 1 ]]; then
  say "missing: $need (SYSTEM_TOOLS_NO_INSTALL=1, so not installing): apt-get install -y --no-install-recommends $need"
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  say "missing: $need, and there is no apt-get here: install the tools that provide them (redis-server, kubectl, promtool, chromium at $CHROMIUM) and re-run"
  exit 1
fi
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
    say "missing: $need; installing needs root: sudo apt-get install -y --no-install-recommends $need"
    exit 1
  fi
fi

# One installer at a time on this machine (several test runs may start together); re-check inside the lock.
LOCK=${TMPDIR:-/tmp}/tagwarden-system-tools.lock
exec 9>"$LOCK"
flock -w 1800 9 || { say "another install holds $LOCK"; exit 1; }
need=$(missing)
[[ -z $need ]] && exit 0

LOG=$(mktemp "${TMPDIR:-/tmp}/tagwarden-system-tools.XXXXXX.log")
BACKUP=""
restore() {
  if [[ -n $BACKUP ]]; then "${SUDO[@]}" mv -f "$BACKUP" "$POLICY"; else "${SUDO[@]}" rm -f "$POLICY"; fi
}
if [[ -e $POLICY ]]; then
  BACKUP="$POLICY.tagwarden-$$"
  "${SUDO[@]}" cp -p "$POLICY" "$BACKUP"
fi
trap restore EXIT
printf '#!/bin/sh\n# tagwarden tests: keep package services from starting while installing\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
"${SUDO[@]}" chmod 755 "$POLICY"

say "installing $need with apt-get (log: $LOG); services are not started"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # $need is a list of package names
if ! { "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q &&
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $need; } >"$LOG" 2>&1; then
  tail -30 "$LOG" >&2
  say "apt-get failed installing $need (full log: $LOG)"
  exit 1
fi
left=$(missing)
if [[ -n $left ]]; then
  say "installed, but still missing: $left (log: $LOG)"
  exit 1
fi
say "installed $need"
rm -f "$LOG"
