#!/usr/bin/env bash
# Debian packages some tests drive: Chromium for the console's browser tests (Playwright drives the
# system browser: browser downloads fail here) and promtool (package prometheus) for the alert rules
# in docs/operations.md. Usage: deploy/test-tools.sh install   (prints the browser's path)
set -euo pipefail

log() { echo "test-tools.sh: $*" >&2; }
die() { log "$*"; exit 1; }

cmd_install() {
  local missing=()
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
  command -v promtool >/dev/null || missing+=(prometheus)
  if (( ${#missing[@]} )); then
    [[ "$(id -u)" == 0 ]] || die "missing ${missing[*]}; run as root (apt-get install ${missing[*]})"
    log "installing Debian's ${missing[*]} ..."
    local apt=(apt-get install -y -q --no-install-recommends "${missing[@]}")
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null; } \
      || die "apt-get install ${missing[*]} failed"
  fi
  local browser
  browser=$(command -v chromium || command -v chromium-browser)
  log "installed: $("$browser" --version 2>/dev/null || echo "$browser"); $(promtool --version 2>&1 | head -1)"
  echo "$browser"
}

case "${1:-}" in
  install) cmd_install ;;
  *) die "usage: $0 install" ;;
esac
