# shellcheck shell=bash
# A private PostgreSQL 15 for a test: initdb + pg_ctl as an unprivileged user in a temp dir,
# listening only on a Unix socket in that dir, stopped and removed on exit. Source it after
# lib.sh (or alone):
#
#   . "$(dirname "$0")/pg_lib.sh"
#   pg_require            # exit 77 with a reason when it cannot run here
#   pg_init               # temp dir, initdb, superuser password; chains the EXIT trap
#   pg_start              # bounded wait until it accepts connections
#   pg_psql -c 'SELECT 1' # as the superuser, over the socket, password from a 0600 passfile
#   pg_stop [fast|immediate]
#
# Variables: PG_DIR (its dir), PG_SOCKDIR (the socket's dir), PG_PORT (names the socket),
# PG_SUPERPW_FILE (a passfile root may read). Nothing here touches the host's clusters,
# /etc/postgresql or /var/lib/postgresql.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_USER=${PG_USER:-nobody}
PG_DIR=
PG_PORT=5432
PG_STARTED=
PG_WAIT_S=${PG_WAIT_S:-30}
# Commands the EXIT trap runs before it stops the server (a test's own helpers, say); they
# cannot change the exit status.
PG_EXIT_HOOKS=()

pg_log() { printf '# pg: %s\n' "$*" >&2; }

# Exits 77 (skip) with the reason when no PostgreSQL can be started here.
pg_require() {
        local b
        for b in initdb pg_ctl postgres psql; do
                if [ ! -x "$PG_BIN/$b" ] && ! { [ "$b" = psql ] && command -v psql >/dev/null; }; then
                        echo "SKIP: $(basename "$0"): $PG_BIN/$b not found (scripts/setup installs postgresql-15)"
                        exit 77
                fi
        done
        if [ "$(id -u)" -eq 0 ]; then
                if ! id -u "$PG_USER" >/dev/null 2>&1; then
                        echo "SKIP: $(basename "$0"): no user $PG_USER to run PostgreSQL as (it refuses root)"
                        exit 77
                fi
                command -v runuser >/dev/null || {
                        echo "SKIP: $(basename "$0"): runuser missing (util-linux)"
                        exit 77
                }
        fi
}

# Runs a command as the PostgreSQL user (as is when we are not root).
pg_as_user() {
        if [ "$(id -u)" -eq 0 ]; then
                runuser -u "$PG_USER" -- "$@"
        else
                "$@"
        fi
}

pg_psql_bin() {
        if [ -x "$PG_BIN/psql" ]; then echo "$PG_BIN/psql"; else command -v psql; fi
}

# pg_init [PARENT_DIR]: makes PG_DIR under PARENT_DIR (default: $T when set, else /tmp),
# runs initdb with scram-sha-256 for every connection and a random superuser password.
pg_init() {
        local parent=${1:-${T:-/tmp}}
        PG_DIR=$(mktemp -d "$parent/pg.XXXXXX")
        chmod 0755 "$PG_DIR"
        PG_SOCKDIR=$PG_DIR/sock
        mkdir -m 0755 "$PG_SOCKDIR"
        mkdir -m 0700 "$PG_DIR/data" "$PG_DIR/log"
        [ "$(id -u)" -ne 0 ] || chown "$PG_USER" "$PG_SOCKDIR" "$PG_DIR/data" "$PG_DIR/log"
        pg_chain_trap
        # The superuser's password: for initdb (a file only the PostgreSQL user reads, removed
        # right after) and for psql (a 0600 passfile of ours).
        local pw
        pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
        PG_SUPERPW_FILE=$PG_DIR/super.pgpass
        (umask 077 && printf '*:*:*:postgres:%s\n' "$pw" >"$PG_SUPERPW_FILE")
        (umask 077 && printf '%s\n' "$pw" >"$PG_DIR/initpw")
        [ "$(id -u)" -ne 0 ] || chown "$PG_USER" "$PG_DIR/initpw"
        if ! LC_ALL=C pg_as_user timeout "$PG_WAIT_S" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres \
                --pwfile="$PG_DIR/initpw" --auth=scram-sha-256 --no-sync -E UTF8 --locale=C \
                >"$PG_DIR/initdb.log" 2>&1; then
                cat "$PG_DIR/initdb.log" >&2
                rm -f "$PG_DIR/initpw"
                pg_fail "initdb failed"
        fi
        rm -f "$PG_DIR/initpw"
        pg_log "initdb done in $PG_DIR as $PG_USER"
}

pg_fail() {
        if declare -F fail >/dev/null; then fail "$@"; fi
        printf 'FAIL: %s\n' "$*" >&2
        exit 1
}

# Stops our server on exit, removes PG_DIR when we made it outside $T, then runs the trap
# that was there before (lib.sh's sg_cleanup keeps the exit status and removes $T).
pg_chain_trap() {
        PG_PREV_TRAP=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
        PG_TRAP_PID=$BASHPID
        trap pg_exit_trap EXIT
}

pg_exit_trap() {
        local rc=$? hook
        # A copy of this shell (a background job signalled before it exec'd its command, seen in
        # bench/fleet) inherits the trap: it must not stop the server or remove anything.
        [ "$BASHPID" = "${PG_TRAP_PID:-$BASHPID}" ] || exit "$rc"
        set +e
        for hook in "${PG_EXIT_HOOKS[@]}"; do
                eval "$hook"
        done
        pg_stop immediate >/dev/null 2>&1
        if [ -n "$PG_DIR" ] && [ -d "$PG_DIR" ]; then
                if [ "$rc" -ne 0 ] && [ -f "$PG_DIR/log/server.log" ]; then
                        echo "--- postgresql log (last 20 lines) ---" >&2
                        tail -n 20 "$PG_DIR/log/server.log" >&2
                fi
                case "$PG_DIR" in
                "${T:-/nonexistent}"/*) ;; # lib.sh removes $T (or keeps it with SG_KEEP_TMP)
                *) rm -rf "$PG_DIR" ;;
                esac
        fi
        # The previous trap (lib.sh's sg_cleanup) reads the status from $?: give it ours.
        if [ -n "$PG_PREV_TRAP" ]; then
                (exit "$rc")
                eval "$PG_PREV_TRAP"
        fi
        exit "$rc"
}

# pg_start [EXTRA -c SETTINGS...]: starts the server on the Unix socket only, waits (bounded).
pg_start() {
        local opts="-c listen_addresses='' -c unix_socket_directories='$PG_SOCKDIR' -p $PG_PORT"
        opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        opts="$opts -c max_connections=40 -c shared_buffers=16MB $*"
        if ! pg_as_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log/server.log" -w \
                -t "$PG_WAIT_S" -o "$opts" start >"$PG_DIR/pg_ctl.log" 2>&1; then
                cat "$PG_DIR/pg_ctl.log" >&2
                tail -n 20 "$PG_DIR/log/server.log" >&2 2>/dev/null || true
                pg_fail "PostgreSQL did not start within $PG_WAIT_S s"
        fi
        PG_STARTED=1
        local i
        for i in $(seq 1 $((PG_WAIT_S * 10))); do
                pg_psql -qAt -c 'SELECT 1' >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        pg_fail "PostgreSQL accepts no connection after $PG_WAIT_S s"
}

# pg_stop [fast|immediate|smart]: bounded; kills the postmaster when pg_ctl gives up.
pg_stop() {
        local mode=${1:-fast} pid
        [ -n "$PG_STARTED" ] || return 0
        if ! pg_as_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m "$mode" -w -t "$PG_WAIT_S" stop \
                >>"$PG_DIR/pg_ctl.log" 2>&1; then
                pid=$(head -n 1 "$PG_DIR/data/postmaster.pid" 2>/dev/null || true)
                if [ -n "$pid" ]; then
                        kill -KILL "$pid" 2>/dev/null || true
                fi
        fi
        PG_STARTED=
}

pg_running() {
        [ -n "$PG_STARTED" ] && pg_as_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1
}

# psql as the superuser over our socket; ON_ERROR_STOP, no ~/.psqlrc.
pg_psql() {
        PGPASSFILE=$PG_SUPERPW_FILE PGHOST=$PG_SOCKDIR PGPORT=$PG_PORT PGUSER=postgres \
                PGDATABASE=${PG_DB:-postgres} PGCONNECT_TIMEOUT=5 \
                timeout "$PG_WAIT_S" "$(pg_psql_bin)" -X -v ON_ERROR_STOP=1 "$@"
}

# pg_conninfo [DB] [USER]: a libpq conninfo (no password) for the socket.
pg_conninfo() {
        printf 'host=%s port=%s dbname=%s user=%s connect_timeout=5\n' "$PG_SOCKDIR" "$PG_PORT" \
                "${1:-postgres}" "${2:-postgres}"
}
