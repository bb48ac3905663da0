#!/usr/bin/env bash
# Dovecot (Debian's packages) for the IMAP tests and for trying the IMAP connector by hand.
# Usage: deploy/dovecot.sh install|start|stop|status
#   install  apt-get install dovecot-imapd if `dovecot` is missing; the package's own system
#            service is stopped and disabled (nothing left on 143/993). The tests start their own
#            throwaway servers (tests/integration/dovecot.py): install is all CI needs.
#   start    a throwaway server in $DOVECOT_DIR: user "intake", password "intake", maildir there,
#            plain IMAP on 127.0.0.1:$IMAP_PORT and IMAPS (self-signed, CA at $DOVECOT_DIR/cert.pem)
#            on 127.0.0.1:$IMAPS_PORT.
# Env: DOVECOT_DIR (/tmp/omnintake-dovecot), IMAP_PORT (1143), IMAPS_PORT (1993).
set -euo pipefail

DIR="${DOVECOT_DIR:-/tmp/omnintake-dovecot}"
PORT="${IMAP_PORT:-1143}"
SSL_PORT="${IMAPS_PORT:-1993}"
CONF="$DIR/dovecot.conf"

log() { echo "dovecot.sh: $*" >&2; }
die() { log "$*"; exit 1; }

stop_system_service() {
  # Debian starts the packaged service on install; the tests need neither it nor 143/993 taken.
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl disable --now dovecot >/dev/null 2>&1 || true
  else
    service dovecot stop >/dev/null 2>&1 || true
    if command -v update-rc.d >/dev/null; then update-rc.d dovecot disable >/dev/null 2>&1 || true; fi
  fi
  if [[ -f /etc/dovecot/dovecot.conf ]] && dovecot -c /etc/dovecot/dovecot.conf stop >/dev/null 2>&1; then
    log "stopped the system dovecot"
  fi
}

cmd_install() {
  if command -v dovecot >/dev/null; then
    log "installed: $(dovecot --version)"
    stop_system_service
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "Dovecot is not installed; run as root (apt-get install dovecot-imapd)"
  log "installing Debian's dovecot-imapd ..."
  # Keep the package from starting its service at all (policy-rc.d 101 = "action forbidden").
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  local apt=(apt-get install -y -q --no-install-recommends dovecot-imapd)
  local ok=1
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null; } \
    || ok=""
  [[ -n "$made_policy" ]] && rm -f "$policy"
  [[ -n "$ok" ]] || die "apt-get install dovecot-imapd failed"
  stop_system_service
  log "installed: $(dovecot --version)"
}

is_running() { [[ -f "$DIR/run/master.pid" ]] && kill -0 "$(cat "$DIR/run/master.pid")" 2>/dev/null; }

cmd_start() {
  cmd_install
  if is_running; then
    log "already running ($DIR)"
    return 0
  fi
  mkdir -p "$DIR/run" "$DIR/state" "$DIR/mail"
  chmod 755 "$DIR"  # the login and auth processes run unprivileged and must reach run/ and users
  local internal login mail_user
  if [[ "$(id -u)" == 0 ]]; then
    # Dovecot refuses root for its login, internal and mail processes.
    internal=dovecot; login=dovenull; mail_user=nobody
    id dovecot >/dev/null 2>&1 || internal=nobody
    id dovenull >/dev/null 2>&1 || login=nobody
  else
    internal="$(id -un)"; login="$internal"; mail_user="$internal"
  fi
  chown "$mail_user" "$DIR/mail"
  if [[ ! -f "$DIR/cert.pem" ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=localhost \
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -keyout "$DIR/key.pem" -out "$DIR/cert.pem" >/dev/null 2>&1 || die "openssl failed"
  fi
  echo "intake:{PLAIN}intake:::::" >"$DIR/users"
  cat >"$CONF" <<EOF
protocols = imap
listen = 127.0.0.1
base_dir = $DIR/run
state_dir = $DIR/state
instance_name = omnintake-$PORT
log_path = $DIR/dovecot.log
default_internal_user = $internal
default_internal_group = $(id -gn "$internal")
default_login_user = $login
first_valid_uid = $(id -u "$mail_user")
mail_uid = $(id -u "$mail_user")
mail_gid = $(id -g "$mail_user")
mail_home = $DIR/mail/%n
mail_location = maildir:~/Maildir
ssl = yes
ssl_cert = <$DIR/cert.pem
ssl_key = <$DIR/key.pem
disable_plaintext_auth = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DIR/users
}
userdb {
  driver = passwd-file
  args = username_format=%u $DIR/users
}
service imap-login {
  chroot =
  inet_listener imap {
    port = $PORT
  }
  inet_listener imaps {
    port = $SSL_PORT
    ssl = yes
  }
}
service anvil {
  chroot =
}
EOF
  dovecot -c "$CONF" || { tail -n 30 "$DIR/dovecot.log" >&2 2>/dev/null; die "dovecot failed to start"; }
  local deadline=$((SECONDS + 20))
  until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
    ((SECONDS < deadline)) || { tail -n 30 "$DIR/dovecot.log" >&2; die "dovecot did not listen on $PORT"; }
    sleep 0.2
  done
  log "ready: imap://intake:intake@127.0.0.1:$PORT, imaps on $SSL_PORT (CA $DIR/cert.pem), log $DIR/dovecot.log"
}

cmd_stop() {
  if is_running; then
    dovecot -c "$CONF" stop
    log "stopped"
  else
    log "not running"
  fi
}

cmd_status() {
  if is_running; then
    echo "dovecot running on 127.0.0.1:$PORT (imaps $SSL_PORT), dir $DIR"
  else
    echo "dovecot not running"
    return 3
  fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
