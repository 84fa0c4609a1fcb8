#!/bin/bash
# Lifted lockouts across the fleet (docs/state.md, "Lifted locks"; docs/fleet.md). Two hosts
# on a real PostgreSQL, as t_fleet sets them up, with source_max_failures = 3: a login in
# flight counts as a failure, so fail, fail, then the right password makes the third attempt's
# reservation lock the source and audit `lockout` at once.
#  1. on A: fail, fail, succeed -> A audits lockout then unlock/lifted; B applies A's lockout
#     and then its lift, and accepts the source again within 2 s of the success (measured);
#     A restarted after the lift: no second row, the source stays unlocked;
#  2. B's own lock on a source (its own failures) survives A's lift of the same source: the
#     lift clears only the fleet lock A's lockout made. PostgreSQL then still holds B's lock
#     decision in force and A's ended;
#  3. a lift from A does not end a fleet_failures lock with origin A (only A's lockouts).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg_lib.sh"
# The fleet-wide sum stays out of the way (100): every lock here is a host's own lockout.
FLEET_SOURCE_MAX=100
. "$(dirname "$0")/fleet_lib.sh"

SRC=198.51.100.20
SRC2=198.51.100.21
RL=("[ratelimit]" "source_max_failures = 3" "user_max_failures = 1000" "user_source_max_failures = 1000"
        "spray_max_users = 1000" "user_pacing = no" "delay_step_ms = 0" "lock_time = 10m")

sg_require_root
pg_require
sg_setup "${RL[@]}"
fleet_pg
fleet_owner_conf
"$FLEETD" --config "$T/owner.conf" --migrate 2>"$T/migrate.log" || fail "migrate: $(cat "$T/migrate.log")"
check "schema migrated to version 3" test "$(pg_psql -qAt -c 'SELECT max(version) FROM secguard.schema_version')" = 3
fleet_roles

sg_write_config "${RL[@]}" "$(fleet_section fleet_a "$T/a.pw" "$HA")"
fleet_host_b

declare -A FPID
start_fleetd() { # a|b
        local conf=$T/secguard.conf
        [ "$1" = b ] && conf=$T/b/secguard.conf
        "${SG_DAEMON_WRAP[@]}" "$FLEETD" --config "$conf" --state-dir "$T/f$1" --debug >>"$T/f$1.log" 2>&1 &
        FPID[$1]=$!
}
stop_fleetd() { # a|b: SIGTERM, status 0
        local rc=0
        kill -TERM "${FPID[$1]}" 2>/dev/null || return 1
        wait "${FPID[$1]}" || rc=$?
        FPID[$1]=
        return "$rc"
}
stop_all() {
        local h
        for h in a b; do
                if [ -n "${FPID[$h]:-}" ]; then kill -TERM "${FPID[$h]}" 2>/dev/null || true; wait "${FPID[$h]}" 2>/dev/null || true; fi
        done
        if [ -n "$B_PID" ]; then kill -TERM "$B_PID" 2>/dev/null || true; wait "$B_PID" 2>/dev/null || true; fi
}
PG_EXIT_HOOKS+=(stop_all)
fail() {
        local h
        printf 'FAIL: %s\n' "$*" >&2
        for h in a b; do
                echo "--- secguard-fleetd $h (last 20 lines) ---" >&2
                tail -n 20 "$T/f$h.log" >&2 2>/dev/null || true
        done
        echo "--- secguardd B (last 15 lines) ---" >&2
        tail -n 15 "$T/b/daemon.log" >&2 2>/dev/null || true
        echo "--- secguardd A (last 15 lines) ---" >&2
        tail -n 15 "$T/daemon.log" >&2 2>/dev/null || true
        exit 1
}

auth() { # HOST USER PASSWORD RHOST: 0 accepted
        local svc=sgtest
        [ "$1" = b ] && svc=sgtestb
        printf '%s\n' "$3" | ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" \
                LD_PRELOAD="${SG_SANITIZE:+$SG_LIBASAN:}libnss_wrapper.so" NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
                timeout 30 "$SG_BUILD/tests/integration/pam_run" "$T/pam.d" "$svc" "$2" authenticate "$4" >/dev/null 2>&1
}
ctl() { # HOST ARGS...
        local conf=$T/secguard.conf
        [ "$1" = b ] && conf=$T/b/secguard.conf
        shift
        "$SECGUARDCTL" --config "$conf" "$@"
}
local_db() { [ "$1" = b ] && echo "$T/b/state/secguard.db" || echo "$T/state/secguard.db"; }
lsql() { sqlite3 -batch "$(local_db "$1")" "$2"; } # HOST SQL
now_ms() { date +%s%3N; }
# locked HOST ADDR: the source has a lock in force there (local or fleet), read without an attempt.
locked() { ctl "$1" locks | grep -Eq "^source( \(fleet\))? +${2//./\\.} "; }
local_locked() { ctl "$1" locks | grep -Eq "^source +${2//./\\.} "; }
wait_for() { # TRIES COMMAND...: polls every 50 ms
        local n=$1 i
        shift
        for i in $(seq 1 "$n"); do
                "$@" && return 0
                sleep 0.05
        done
        return 1
}

sg_start_daemon
start_b
start_fleetd a
start_fleetd b
# Both helpers connected and following decisions (under SG_VALGRIND=1 a start takes seconds):
# the figures below measure a lift, not a start.
following() { grep -q 'decisions in force applied' "$T/f$1.log"; }
check "host A's helper is connected and following decisions" wait_for 600 following a
check "host B's helper is connected and following decisions" wait_for 600 following b

# ---- 1. fail, fail, succeed on A ----
auth a alice "typo 1" "$SRC" && fail "a wrong password got in"
auth a alice "typo 2" "$SRC" && fail "a wrong password got in"
check "the right password at the threshold gets in on A" auth a alice "$SG_PW_ALICE" "$SRC"
t0=$(now_ms)
check "A audits lockout, auth_success, then unlock/lifted for $SRC" test \
        "$(lsql a "SELECT group_concat(event || '/' || coalesce(reason, '-'), ' ') FROM (SELECT event, reason FROM audit WHERE rhost = '$SRC' AND event IN ('lockout', 'unlock', 'auth_success') ORDER BY id);")" = \
        "lockout/source auth_success/- unlock/lifted"
check "... the unlock row names kind and key" test \
        "$(lsql a "SELECT detail FROM audit WHERE event = 'unlock' AND rhost = '$SRC';")" = \
        "source $SRC lock lifted: the attempt that set it succeeded"
check "A holds no lock on $SRC" ! locked a "$SRC"
b_lifted() { [ "$(lsql b "SELECT count(*) FROM audit WHERE event = 'fleet_unlock' AND rhost = '$SRC';")" -ge 1 ]; }
wait_for 200 b_lifted || fail "B never applied A's lift of $SRC"
t1=$(now_ms)
check "B accepts $SRC again (bob's right password)" auth b bob "$SG_PW_BOB" "$SRC"
t2=$(now_ms)
lat=$((t2 - t0))
held=$(lsql b "SELECT max(time_usec) FILTER (WHERE event = 'fleet_unlock') - max(time_usec) FILTER (WHERE event = 'fleet_lock') FROM audit WHERE rhost = '$SRC' AND event IN ('fleet_lock', 'fleet_unlock');")
echo "# lift propagation A -> B: $((t1 - t0)) ms from A's success to B's fleet_unlock, ${lat} ms to B accepting a login from $SRC; B held A's lock for ${held} us"
check "B accepts $SRC again within 2 s of A's success (${lat} ms)" test "$lat" -le 2000
check "B had applied A's lockout (one fleet_lock row), then its lift (one fleet_unlock row)" test \
        "$(lsql b "SELECT group_concat(event, ' ') FROM (SELECT event FROM audit WHERE rhost = '$SRC' AND event LIKE 'fleet_%' ORDER BY id);")" = \
        "fleet_lock fleet_unlock"
check "... the fleet_unlock row says lifted, local locks untouched" test \
        "$(lsql b "SELECT count(*) FROM audit WHERE event = 'fleet_unlock' AND rhost = '$SRC' AND detail LIKE '%lifted on host $HA%local locks untouched';")" = 1
check "PostgreSQL: A's lock decision and its lifted unlock, for source $SRC" test \
        "$(pg_psql -qAt -c "SELECT string_agg(action || '/' || reason, ' ' ORDER BY id) FROM secguard.decisions WHERE key = '$SRC' AND kind = 'source' AND origin_host = '$HA'")" = \
        "lock/lockout unlock/lifted"
check "... no decision from B's fleet_lock/fleet_unlock rows (no echo)" test \
        "$(pg_psql -qAt -c "SELECT count(*) FROM secguard.decisions WHERE key = '$SRC' AND origin_host = '$HB'")" = 0
check "... the fleet-wide failure count of $SRC is not reset by the lift (2 failures)" test \
        "$(pg_psql -qAt -c "SELECT secguard.source_failures('$SRC', 0)")" = 2

# A restarted after the lift: replay writes no second row and keeps the lock lifted.
check "A stops (SIGTERM)" sg_stop_daemon
sg_start_daemon
check "after A's restart: one unlock/lifted row for $SRC, one lockout" test \
        "$(lsql a "SELECT count(*) FILTER (WHERE event = 'unlock') || '/' || count(*) FILTER (WHERE event = 'lockout') FROM audit WHERE rhost = '$SRC';")" = 1/1
check "... A holds no lock on $SRC" ! locked a "$SRC"
check "... B still accepts $SRC" auth b bob "$SG_PW_BOB" "$SRC"

# ---- 2. B's own lock on a source survives A's lift of it ----
# A's helper is stopped while B locks $SRC2, so A does not apply B's decision before its own
# attempts (A would refuse them, as it should); B's lock decision is in PostgreSQL first.
check "A's helper stops (SIGTERM, status 0)" stop_fleetd a
for i in 1 2 3; do auth b carol "wrong $i" "$SRC2" && fail "a wrong password got in on B"; done
check "B locked $SRC2 itself (3 failures)" local_locked b "$SRC2"
b_published() { [ "$(pg_psql -qAt -c "SELECT count(*) FROM secguard.decisions WHERE key = '$SRC2' AND origin_host = '$HB' AND reason = 'lockout'")" -ge 1 ]; }
check "B's lockout of $SRC2 is a decision in PostgreSQL" wait_for 200 b_published
auth a alice "typo 1" "$SRC2" && fail "a wrong password got in"
auth a alice "typo 2" "$SRC2" && fail "a wrong password got in"
check "fail, fail, succeed on A from $SRC2 (A's helper down)" auth a alice "$SG_PW_ALICE" "$SRC2"
check "... A audited lockout then unlock/lifted" test \
        "$(lsql a "SELECT group_concat(event || '/' || coalesce(reason, '-'), ' ') FROM (SELECT event, reason FROM audit WHERE rhost = '$SRC2' AND event IN ('lockout', 'unlock') ORDER BY id);")" = \
        "lockout/source unlock/lifted"
start_fleetd a
b_got_lift() { [ "$(lsql b "SELECT count(*) FROM audit WHERE event = 'fleet_unlock' AND rhost = '$SRC2';")" -ge 1 ]; }
check "B applies A's lockout of $SRC2 and its lift" wait_for 200 b_got_lift
check "... B's own lock on $SRC2 is still in force" local_locked b "$SRC2"
check "... B refuses $SRC2 (bob's right password)" ! auth b bob "$SG_PW_BOB" "$SRC2"
check "... B holds no fleet lock on $SRC2 (A's is gone; B's own lockout is never applied back to B)" \
        test "$(lsql b "SELECT count(*) FROM fleet_locks WHERE key = '$SRC2';")" = 0
a_got_b() { [ "$(lsql a "SELECT count(*) FROM audit WHERE event = 'fleet_lock' AND rhost = '$SRC2';")" -ge 1 ]; }
check "A applied B's lockout of $SRC2 (A's lift does not undo another host's decision)" wait_for 200 a_got_b
check "... A refuses $SRC2 now" ! auth a bob "$SG_PW_BOB" "$SRC2"
# What a host joining now would apply: secguardctl fleet locks runs the query secguard-fleetd
# applies at start (fleet_sql_locks_in_force), one JSON object per line, oldest first.
in_force() {
        "$SECGUARDCTL" --config "$T/owner.conf" fleet locks --json |
                sed -n "s/.*\"key\":\"$SRC2\".*\"origin_host\":\"\([0-9a-f]*\)\".*/\1/p" | paste -sd ' '
}
check "PostgreSQL: B's lock decision on $SRC2 still in force, A's ended by its lift" test "$(in_force)" = "$HB"

# ---- 3. a lift ends only a lockout: not a fleet_failures lock its host's helper summed up ----
# Decisions written straight into PostgreSQL by its owner, as host A's helper would write them.
SRC3=198.51.100.22
pg_psql -qc "INSERT INTO secguard.decisions(action, kind, key, until_usec, origin_host, reason)
        VALUES ('lock', 'source', '$SRC3', (extract(epoch from now()) * 1000000)::bigint + 600000000, '$HA', 'fleet_failures')" \
        >/dev/null || fail "insert a fleet_failures lock"
b_has() { [ "$(lsql b "SELECT count(*) FROM fleet_locks WHERE key = '$1' AND origin_host = '$HA';")" = 1 ]; }
check "B applies host A's fleet_failures lock on $SRC3" wait_for 200 b_has "$SRC3"
lift_id=$(pg_psql -qAt -c "INSERT INTO secguard.decisions(action, kind, key, until_usec, origin_host, reason)
        VALUES ('unlock', 'source', '$SRC3', (extract(epoch from now()) * 1000000)::bigint, '$HA', 'lifted') RETURNING id" |
        head -n 1)
[ -n "$lift_id" ] || fail "insert a lifted unlock"
b_skipped() { grep -q "decision $lift_id skipped: host $HA lifted source $SRC3" "$T/fb.log"; }
check "B's helper skips a lift of it (logged)" wait_for 200 b_skipped
check "... B still holds that fleet lock and refuses $SRC3" bash -c \
        "[ \"\$(sqlite3 -batch '$(local_db b)' \"SELECT count(*) FROM fleet_locks WHERE key = '$SRC3';\")\" = 1 ]"
check "... B refuses bob's right password from $SRC3" ! auth b bob "$SG_PW_BOB" "$SRC3"

check "both helpers exit 0 on SIGTERM, no sanitizer report" bash -c \
        "kill -TERM ${FPID[a]} ${FPID[b]} && ! grep -l 'Sanitizer\|runtime error' '$T'/f[ab].log"
wait "${FPID[a]}" "${FPID[b]}" 2>/dev/null || true
FPID[a]=
FPID[b]=
sg_done
