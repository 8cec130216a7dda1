#!/usr/bin/env bash
# A private, throwaway PostgreSQL cluster for the tests.
#
#   tools/ci/postgres.sh start    start it (initdb on first use), create database qubes_test,
#                                 print the Npgsql connection string on stdout
#   tools/ci/postgres.sh stop     stop it and delete its data
#   tools/ci/postgres.sh status   say whether it runs; exit 0 when it does
#
# Settings: QUBES_PG_DIR (default /tmp/qubesactors-pg), QUBES_PG_PORT (default 55432).
# It listens on 127.0.0.1 only (no Unix socket), trusts every loopback connection and is
# tuned for tests (fsync off), so it is never a place for data that matters.
# As root, the server runs as the `postgres` OS user, since initdb and pg_ctl refuse root.
# Everything but the connection string goes to stderr.
set -euo pipefail

PG_DIR="$(realpath -m "${QUBES_PG_DIR:-/tmp/qubesactors-pg}")"
PG_PORT="${QUBES_PG_PORT:-55432}"
DATA="$PG_DIR/data"
LOG="$PG_DIR/postgres.log"
DB=qubes_test
CONN="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=$DB"

log() { echo "postgres.sh: $*" >&2; }

# Prefer PostgreSQL 15, else the newest version installed.
BIN=""
for dir in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    if [ -x "$dir/initdb" ]; then BIN="$dir"; break; fi
done
if [ -z "$BIN" ]; then
    log "no PostgreSQL server under /usr/lib/postgresql/*/bin (run tools/ci/install.sh)"
    exit 1
fi

# Runs a command as the server's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

running() { as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

psql_admin() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"; }

init_cluster() {
    rm -rf "$DATA"
    mkdir -p "$PG_DIR"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || { log "no 'postgres' OS user (run tools/ci/install.sh)"; exit 1; }
        chown postgres: "$PG_DIR"
    fi
    chmod 700 "$PG_DIR"
    as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    cat > "$DATA/pg_hba.conf" <<'HBA'
# TYPE  DATABASE  USER  ADDRESS        METHOD
host    all       all   127.0.0.1/32   trust
HBA
    cat >> "$DATA/postgresql.conf" <<'CONF'

# tools/ci/postgres.sh: loopback only, no Unix socket, throwaway durability.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
}

start() {
    if ! running; then
        [ -f "$DATA/PG_VERSION" ] || init_cluster
        log "starting PostgreSQL ($BIN) on 127.0.0.1:$PG_PORT, data in $DATA"
        if ! as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 -o "-p $PG_PORT" >&2; then
            log "server did not start; end of $LOG:"
            tail -n 30 "$LOG" >&2 || true
            exit 1
        fi
    fi
    if [ -z "$(psql_admin -tA -c "select 1 from pg_database where datname = '$DB'")" ]; then
        psql_admin -c "create database $DB"
    fi
    echo "$CONN"
}

stop() {
    if running; then
        as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >&2
    else
        log "not running"
    fi
    # Throwaway: the next start begins with an empty cluster.
    if [ -f "$DATA/PG_VERSION" ]; then rm -rf "$DATA"; fi
    rm -f "$LOG"
}

status() {
    if running; then
        log "running on 127.0.0.1:$PG_PORT, data in $DATA"
        echo "$CONN"
    else
        log "not running"
        return 3
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
