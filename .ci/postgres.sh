# shellcheck shell=bash
# Throw-away PostgreSQL server for the warehouse tests. Meant to be *sourced*, not executed:
#
#   source .ci/postgres.sh
#   pg_start                      # exports FEEDBACK_TEST_PG_URL (unless it is already set)
#   .venv/bin/pytest -q tests/test_warehouse.py
#   pg_stop                       # stops exactly the server pg_start started, removes its files
#
# pg_start finds the server binaries (pg_ctl on PATH, else /usr/lib/postgresql/*/bin; as root with
# apt-get and nothing found, it installs the `postgresql` package), runs initdb into a fresh temporary
# directory, and starts a server that listens on 127.0.0.1 only, on a free port, with its unix socket
# inside that directory. PostgreSQL refuses to run as root, so as root the server runs as the
# `postgres` system user (created when missing).
#
# When PostgreSQL cannot be started, pg_start prints a warning and leaves FEEDBACK_TEST_PG_URL unset
# (the tests then skip); it returns non-zero only when FEEDBACK_REQUIRE_PG=1.
#
# Knobs: FEEDBACK_PG_USER (OS user that runs the server as root; default postgres),
# FEEDBACK_PG_DB (database name; default feedback_test), FEEDBACK_PG_WAIT (seconds; default 30).
# No `set -e` / `exit` here: this file runs inside the caller's shell.

_pg_log() {
    echo "[postgres.sh] $*" >&2
}

# Print the directory holding pg_ctl, initdb and postgres; return 1 when there is none.
_pg_find_bindir() {
    local cand dir
    if cand="$(command -v pg_ctl 2>/dev/null)" && [ -n "$cand" ]; then
        # Debian puts symlinks (or pg_wrapper) on PATH; the real binaries sit together elsewhere.
        dir="$(dirname "$(readlink -f "$cand")")"
        if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
            echo "$dir"
            return 0
        fi
    fi
    # Newest version first.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
        if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# Run a command as the server's OS user (root cannot run postgres), or directly when not root.
_pg_as_owner() {
    if [ "$(id -u)" -ne 0 ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$_FEEDBACK_PG_OWNER" -- "$@"
    else
        # su runs through a shell: quote every argument.
        local quoted
        quoted="$(printf '%q ' "$@")"
        su -s /bin/sh "$_FEEDBACK_PG_OWNER" -c "$quoted"
    fi
}

# Return 0 when nothing accepts TCP connections on 127.0.0.1:$1.
_pg_port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_pg_pick_port() {
    local i port
    for i in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if _pg_port_free "$port"; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# Return 0 when process $1 exists and is not a zombie (a stopped postmaster can linger as a zombie
# until its new parent reaps it).
_pg_alive() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
    local state
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)"
    [ "$state" != "Z" ]
}

# Stop the server (if running) and remove the temporary directory. Safe to call twice.
_pg_cleanup() {
    local dir="${_FEEDBACK_PG_DIR:-}" pid="${_FEEDBACK_PG_PID:-}" bindir="${_FEEDBACK_PG_BINDIR:-}"
    if [ -n "$dir" ] && [ -f "$dir/data/postmaster.pid" ] && [ -n "$bindir" ]; then
        _pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
    # pg_ctl could not stop it: kill exactly the postmaster we started (checked by its data dir).
    if _pg_alive "$pid" &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/data"; then
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            _pg_alive "$pid" || break
            sleep 0.2
        done
        _pg_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
    if [ -n "$dir" ] && [ -d "$dir" ]; then
        rm -rf -- "$dir"
    fi
    unset _FEEDBACK_PG_DIR _FEEDBACK_PG_PID _FEEDBACK_PG_BINDIR _FEEDBACK_PG_OWNER
}

# Report a failure: warning, cleanup, and status 1 only when FEEDBACK_REQUIRE_PG=1.
_pg_fail() {
    _pg_log "WARNING: $* -- PostgreSQL tests will be skipped."
    if [ -n "${_FEEDBACK_PG_DIR:-}" ] && [ -f "$_FEEDBACK_PG_DIR/server.log" ]; then
        _pg_log "last lines of the server log:"
        tail -n 20 "$_FEEDBACK_PG_DIR/server.log" >&2
    fi
    _pg_cleanup
    if [ "${FEEDBACK_REQUIRE_PG:-0}" = "1" ]; then
        _pg_log "FEEDBACK_REQUIRE_PG=1: failing."
        return 1
    fi
    return 0
}

pg_start() {
    if [ -n "${FEEDBACK_TEST_PG_URL:-}" ]; then
        _pg_log "FEEDBACK_TEST_PG_URL is already set; not starting a server."
        return 0
    fi
    if [ -n "${_FEEDBACK_PG_PID:-}" ]; then
        _pg_log "a server started by this shell is still registered; run pg_stop first."
        return 1
    fi

    local bindir
    if ! bindir="$(_pg_find_bindir)"; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            _pg_log "no PostgreSQL server binaries found; installing the postgresql package"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 ||
                { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 &&
                    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
            bindir="$(_pg_find_bindir)" || { _pg_fail "apt-get install postgresql gave no server binaries"; return; }
        else
            _pg_fail "no PostgreSQL server binaries (pg_ctl, initdb, postgres) found"
            return
        fi
    fi
    _FEEDBACK_PG_BINDIR="$bindir"

    # The OS user that owns and runs the server.
    if [ "$(id -u)" -eq 0 ]; then
        _FEEDBACK_PG_OWNER="${FEEDBACK_PG_USER:-postgres}"
        if ! id -u "$_FEEDBACK_PG_OWNER" >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /bin/sh "$_FEEDBACK_PG_OWNER" ||
                { _pg_fail "could not create the system user $_FEEDBACK_PG_OWNER"; return; }
        fi
    else
        _FEEDBACK_PG_OWNER="$(id -un)"
    fi

    _FEEDBACK_PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/feedback-pg.XXXXXX")" ||
        { _pg_fail "mktemp failed"; return; }
    if [ "$(id -u)" -eq 0 ]; then
        chown "$_FEEDBACK_PG_OWNER" "$_FEEDBACK_PG_DIR" || { _pg_fail "chown of $_FEEDBACK_PG_DIR failed"; return; }
    fi

    # The database superuser is named after the OS user (trust auth: no password anywhere).
    local dbuser="$_FEEDBACK_PG_OWNER" db="${FEEDBACK_PG_DB:-feedback_test}" wait_s="${FEEDBACK_PG_WAIT:-30}"
    if ! _pg_as_owner "$bindir/initdb" -D "$_FEEDBACK_PG_DIR/data" -U "$dbuser" --auth=trust \
        --encoding=UTF8 --no-locale --no-sync >"$_FEEDBACK_PG_DIR/initdb.log" 2>&1; then
        tail -n 20 "$_FEEDBACK_PG_DIR/initdb.log" >&2
        _pg_fail "initdb failed"
        return
    fi

    # A port can be taken between the check and the bind: try a few.
    local port="" attempt started=0
    for attempt in 1 2 3 4 5; do
        port="$(_pg_pick_port)" || { _pg_fail "no free port found"; return; }
        if _pg_as_owner "$bindir/pg_ctl" -D "$_FEEDBACK_PG_DIR/data" -l "$_FEEDBACK_PG_DIR/server.log" \
            -w -t "$wait_s" \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$_FEEDBACK_PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null 2>&1; then
            started=1
            break
        fi
        _pg_log "start on port $port failed (attempt $attempt)"
        _pg_as_owner "$bindir/pg_ctl" -D "$_FEEDBACK_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    done
    [ "$started" = 1 ] || { _pg_fail "the server did not start"; return; }
    _FEEDBACK_PG_PID="$(head -n 1 "$_FEEDBACK_PG_DIR/data/postmaster.pid" 2>/dev/null)"

    # Bounded wait until it accepts TCP connections (pg_ctl -w already waited; this double-checks TCP).
    local deadline=$((SECONDS + wait_s))
    until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$dbuser" -d postgres; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            _pg_fail "the server did not accept connections within ${wait_s}s"
            return
        fi
        sleep 0.2
    done

    if ! "$bindir/createdb" -h 127.0.0.1 -p "$port" -U "$dbuser" "$db" >&2; then
        _pg_fail "createdb $db failed"
        return
    fi

    export FEEDBACK_TEST_PG_URL="postgresql+psycopg://$dbuser@127.0.0.1:$port/$db"
    _FEEDBACK_PG_EXPORTED=1
    _pg_log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') running (pid $_FEEDBACK_PG_PID," \
        "data $_FEEDBACK_PG_DIR/data); FEEDBACK_TEST_PG_URL=$FEEDBACK_TEST_PG_URL"
    return 0
}

pg_stop() {
    if [ -z "${_FEEDBACK_PG_DIR:-}" ]; then
        _pg_log "no server started by pg_start in this shell; nothing to stop."
        return 0
    fi
    local pid="${_FEEDBACK_PG_PID:-}"
    _pg_cleanup
    if [ "${_FEEDBACK_PG_EXPORTED:-0}" = 1 ]; then
        unset FEEDBACK_TEST_PG_URL _FEEDBACK_PG_EXPORTED
    fi
    if _pg_alive "$pid"; then
        _pg_log "WARNING: postmaster $pid is still running"
        return 1
    fi
    _pg_log "stopped PostgreSQL (pid $pid) and removed its files"
    return 0
}
