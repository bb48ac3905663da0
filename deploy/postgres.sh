#!/usr/bin/env bash
# Local throwaway PostgreSQL cluster (Debian's packages) for development and CI.
# Usage: deploy/postgres.sh install|start|stop|status
# Env: PG_PORT (5432), PG_DATA (/tmp/omnintake-pg).
# Creates role "intake" (password "intake", CREATEDB) owning database "intake";
# TCP on 127.0.0.1 only, scram-sha-256 there; trust on the unix socket in $PG_DATA.
set -euo pipefail

PORT="${PG_PORT:-5432}"
DATA="${PG_DATA:-/tmp/omnintake-pg}"
URL="postgresql+psycopg://intake:intake@127.0.0.1:$PORT/intake"

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

pg_bindir() {
  local d
  d="$(find /usr/lib/postgresql -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$d" ]] && dirname "$d"
}

cmd_install() {
  local bin
  if bin="$(pg_bindir)"; then
    log "installed: $bin"
    return 0
  fi
  [[ "$(id -u)" == 0 ]] || die "PostgreSQL is not installed; run as root (apt-get install postgresql)"
  log "installing Debian's postgresql ..."
  local apt=(apt-get install -y -q --no-install-recommends postgresql)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null; } \
    || die "apt-get install postgresql failed"
  # The package may create and start its own "main" cluster on 5432; we use our own.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h | while read -r ver name _; do pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done
  fi
  log "installed: $(pg_bindir)"
}

# Runs a command as the cluster owner (postgres refuses to run as root).
as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

BIN=""
pgctl() { as_owner "$BIN/pg_ctl" -D "$DATA" "$@"; }
is_running() { [[ -n "$BIN" && -f "$DATA/PG_VERSION" ]] && pgctl status >/dev/null 2>&1; }
psql_admin() { as_owner "$BIN/psql" -X -q -h "$DATA" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 "$@"; }

cmd_start() {
  cmd_install
  BIN="$(pg_bindir)"
  cd /  # the owner may not be able to read the caller's working directory
  if is_running; then
    log "already running (data $DATA)"
  else
    if "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
      die "another server already answers on 127.0.0.1:$PORT (a Debian cluster? see pg_lsclusters)"
    fi
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
      log "initdb $DATA"
      mkdir -p "$DATA"
      if [[ "$(id -u)" == 0 ]]; then chown postgres:postgres "$DATA"; fi
      chmod 700 "$DATA"
      local out
      out="$(as_owner "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 2>&1)" || { echo "$out" >&2; die "initdb failed"; }
    fi
    # Port, address and socket dir are given at start, so PG_PORT may change between runs.
    # fsync stays on (the default): durability cost is part of what the project measures.
    # shared_buffers: the default 128 MB holds no more than a slice of a million tickets' table and
    # search index; PG_SHARED_BUFFERS sizes it for the machine (a quarter of RAM is the usual rule).
    pgctl start -w -t 60 -l "$DATA/postgres.log" \
      -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DATA -c shared_buffers=${PG_SHARED_BUFFERS:-1GB} \
          -c effective_cache_size=${PG_EFFECTIVE_CACHE_SIZE:-4GB}" >/dev/null \
      || { tail -n 30 "$DATA/postgres.log" >&2; die "postgres failed to start"; }
  fi
  local deadline=$((SECONDS + 60))
  until "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; do
    ((SECONDS < deadline)) || { tail -n 30 "$DATA/postgres.log" >&2; die "pg_isready timed out"; }
    sleep 0.2
  done
  psql_admin -d postgres <<'SQL'
SELECT 'CREATE ROLE intake LOGIN CREATEDB'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'intake') \gexec
ALTER ROLE intake WITH LOGIN CREATEDB PASSWORD 'intake';
SELECT 'CREATE DATABASE intake OWNER intake'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'intake') \gexec
SQL
  log "ready on 127.0.0.1:$PORT (data $DATA, log $DATA/postgres.log)"
  echo "$URL"
}

cmd_stop() {
  BIN="$(pg_bindir)" || { log "not running"; return 0; }
  cd /
  if is_running; then
    pgctl stop -m fast -w -t 60 >/dev/null
    log "stopped"
  else
    log "not running"
  fi
}

cmd_status() {
  BIN="$(pg_bindir)" || true
  cd /
  if is_running; then
    echo "postgres running on 127.0.0.1:$PORT (data $DATA): $URL"
  else
    echo "postgres not running"
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
