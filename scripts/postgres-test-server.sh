#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for labelsync's Postgres tests.
#
#   eval "$(bash scripts/postgres-test-server.sh start)"   # start (or reuse) it, export the DSN
#   bash scripts/postgres-test-server.sh env                # print the export line again
#   bash scripts/postgres-test-server.sh stop               # stop it and delete its data
#
# `start` installs PostgreSQL from the Debian packages if no `initdb` is found,
# initialises a data directory under /tmp (never fsynced: it is thrown away),
# starts the server on 127.0.0.1 on a free port (54329 or the next free one),
# creates the test database and prints `export LABELSYNC_POSTGRES_DSN=...` on
# stdout; everything else goes to stderr. It is idempotent: a server it started
# earlier is reused. The server refuses to run as root, so as root it runs as
# the `postgres` system user (created if missing).
#
# Settings (environment): LABELSYNC_PG_DIR (default /tmp/labelsync-postgres),
# LABELSYNC_PG_PORT (first port tried, default 54329).
set -euo pipefail

BASE=${LABELSYNC_PG_DIR:-/tmp/labelsync-postgres}
DATA=$BASE/data
FIRST_PORT=${LABELSYNC_PG_PORT:-54329}
DB_USER=labelsync
DB_NAME=labelsync_test

say() { echo "postgres-test-server: $*" >&2; }

find_bindir() {
    local initdb candidate
    initdb=$(command -v initdb 2>/dev/null || true)
    if [[ -n $initdb ]]; then
        dirname "$(readlink -f "$initdb")"
        return 0
    fi
    # Debian keeps the server binaries off PATH; take the newest major version.
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
        if [[ -x $candidate/initdb ]]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_postgres() {
    say "no initdb found; installing PostgreSQL from the Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    if [[ $(id -u) -ne 0 ]]; then
        say "not root: install PostgreSQL yourself (apt-get install postgresql)"
        exit 1
    fi
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
}

# Run a command as the user that owns the data directory.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

port_in_use() {
    # /dev/tcp succeeds when something listens on the port.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

dsn() {
    echo "postgresql://$DB_USER@127.0.0.1:$(cat "$BASE/port")/$DB_NAME"
}

running() {
    [[ -f $BASE/port && -f $DATA/postmaster.pid ]] || return 1
    local bindir
    bindir=$(cat "$BASE/bindir" 2>/dev/null) || return 1
    as_owner "$bindir/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

start() {
    if running; then
        say "already running on port $(cat "$BASE/port")"
        echo "export LABELSYNC_POSTGRES_DSN=$(dsn)"
        return 0
    fi
    local bindir
    if ! bindir=$(find_bindir); then
        install_postgres
        bindir=$(find_bindir) || { say "PostgreSQL installed but initdb not found"; exit 1; }
    fi
    if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
    fi
    # A leftover directory from a server that is gone (killed, machine reused): start afresh.
    rm -rf "$BASE"
    mkdir -p "$BASE"
    echo "$bindir" >"$BASE/bindir"
    [[ $(id -u) -eq 0 ]] && chown postgres "$BASE"
    as_owner "$bindir/initdb" -D "$DATA" -U "$DB_USER" --auth=trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$BASE/initdb.log" 2>&1 || { cat "$BASE/initdb.log" >&2; exit 1; }

    local port=$FIRST_PORT
    while port_in_use "$port"; do
        port=$((port + 1))
    done
    echo "$port" >"$BASE/port"
    # A test server: durability off (the data is thrown away), enough connections
    # for several worker processes, sockets only in the data directory.
    cat >>"$DATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DATA'
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    as_owner "$bindir/pg_ctl" -D "$DATA" -l "$BASE/server.log" -w -t 60 start >/dev/null \
        || { cat "$BASE/server.log" >&2; exit 1; }
    as_owner "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U "$DB_USER" -d postgres \
        -c "CREATE DATABASE $DB_NAME" >&2
    say "started PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
    echo "export LABELSYNC_POSTGRES_DSN=$(dsn)"
}

stop() {
    if [[ -f $BASE/bindir && -f $DATA/postmaster.pid ]]; then
        as_owner "$(cat "$BASE/bindir")/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$BASE"
    say "stopped"
}

case ${1:-} in
start) start ;;
stop) stop ;;
env)
    if running; then
        echo "export LABELSYNC_POSTGRES_DSN=$(dsn)"
    else
        say "not running; use: $0 start"
        exit 1
    fi
    ;;
*)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
