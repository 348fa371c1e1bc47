# Sourced by scripts/test and scripts/bench: start_postgres DIR starts a throwaway PostgreSQL
# cluster in DIR (installing the server package if it is missing), stops it on exit, and sets
# WRIT_POSTGRES_URL and PG_BIN. Needs step() and die() from the caller.

start_postgres() {
    PG_DIR=$1
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
        step "installing the PostgreSQL server"
        [ "$(id -u)" = 0 ] || die "PostgreSQL server binaries missing and not root: apt-get install postgresql"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
            || die "apt-get install postgresql failed"
        PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    fi
    PG_PORT=${WRIT_TEST_PG_PORT:-$((20000 + RANDOM % 20000))}
    stop_postgres; rm -rf "$PG_DIR"; mkdir -p "$PG_DIR/socket"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres || die "cannot create the postgres user"
        chown -R postgres "$PG_DIR"
    fi
    step "starting PostgreSQL ($("$PG_BIN/postgres" --version)) on 127.0.0.1:$PG_PORT"
    as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w \
        -o "-p $PG_PORT -k $PG_DIR/socket -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=300" start >/dev/null \
        || { cat "$PG_DIR/postgres.log" >&2; die "PostgreSQL did not start"; }
    trap stop_postgres EXIT
    WRIT_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable"
}

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_postgres() {
    if [ -n "${PG_DIR:-}" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    fi
}
