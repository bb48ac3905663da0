#!/usr/bin/env bash
# Debian's Chromium for the console's browser tests (Playwright drives the system browser: browser
# downloads fail here). Usage: deploy/chromium.sh install   (prints the browser's path)
set -euo pipefail

log() { echo "chromium.sh: $*" >&2; }
die() { log "$*"; exit 1; }

cmd_install() {
  local found
  found=$(command -v chromium || command -v chromium-browser || true)
  if [[ -z "$found" ]]; then
    [[ "$(id -u)" == 0 ]] || die "Chromium is not installed; run as root (apt-get install chromium)"
    log "installing Debian's chromium ..."
    local apt=(apt-get install -y -q --no-install-recommends chromium)
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null; } \
      || die "apt-get install chromium failed"
    found=$(command -v chromium)
  fi
  log "installed: $("$found" --version 2>/dev/null || echo "$found")"
  echo "$found"
}

case "${1:-}" in
  install) cmd_install ;;
  *) die "usage: $0 install" ;;
esac
