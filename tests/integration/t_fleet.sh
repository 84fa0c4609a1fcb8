#!/bin/bash
# Fleet on PostgreSQL (issue 14, docs/fleet.md): a real PostgreSQL 15 run by this test as
# nobody, two hosts (two secguardd + two secguard-fleetd with different host ids, state dirs
# and sockets) logging in as least-privilege roles under row-level security.
#  1. rows of both hosts arrive: counts and contiguous id ranges equal to each local audit;
#  2. failures on A lock the source on A (5, the local threshold); B refuses it within 2 s (measured, printed);
#  3. `unlock --rhost ADDR --fleet` on A clears both;
#  4. failures spread over A and B reach the fleet-wide threshold: both refuse the source,
#     one fleet_failures decision;
#  5. PostgreSQL stopped: logins on A unaffected; rows made meanwhile shipped after it is back,
#     no loss, no duplicate;
#  6. secguard-fleetd kill -9 in the middle of a batch transaction: the same;
#  7. hostile decisions inserted directly in PostgreSQL (invalid address, absurd until) are
#     refused with a clear log line and lock nothing; the daemon refuses them too when sent
#     straight to its socket;
#  8. row-level security: host A's role cannot write host B's rows or delete audit rows;
#  9. a bulk backlog (host C, 20000 rows made with sg_audit_fill) is shipped: rows/s printed.
# Host B's helper runs as nobody (B's [fleet] user), A's as root.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg_lib.sh"
. "$(dirname "$0")/fleet_lib.sh"

ATTACKER=198.51.100.7
SPREAD=198.51.100.9
HOSTILE=198.51.100.66
CLEAN=192.0.2.50
RL=("[ratelimit]" "source_max_failures = 5" "user_max_failures = 1000" "user_source_max_failures = 1000"
        "spray_max_users = 1000" "user_pacing = no" "delay_step_ms = 0" "lock_time = 10m")

sg_require_root
pg_require
sg_setup "${RL[@]}"
fleet_pg
# The schema, by its owner, twice at once (the advisory lock makes one of them do the work).
fleet_owner_conf
"$FLEETD" --config "$T/owner.conf" --migrate 2>"$T/migrate1.log" &
mpid=$!
"$FLEETD" --config "$T/owner.conf" --migrate 2>"$T/migrate2.log" || fail "migrate: $(cat "$T/migrate2.log")"
wait "$mpid" || fail "migrate (concurrent): $(cat "$T/migrate1.log")"
check "two concurrent migrations: schema version 3, each version recorded once" \
        test "$(pg_psql -qAt -c 'SELECT count(*), count(DISTINCT version), max(version) FROM secguard.schema_version')" = "3|3|3"
check "exactly one of them migrated, each version once" \
        test "$(cat "$T"/migrate[12].log | grep -c 'migrated to version [123]$')" -eq 3

# Configuration errors: exit 78 (the unit does not restart on it), a message with the fix.
cfg_rc() { local rc=0; "$FLEETD" --config "$1" --state-dir "$T" >"$T/cfg.log" 2>&1 || rc=$?; echo "$rc"; }
sed 's/^enabled = yes/enabled = no/' "$T/owner.conf" >"$T/off.conf"
check "[fleet] enabled = no: exit 78" test "$(cfg_rc "$T/off.conf")" -eq 78
cp "$T/owner.pw" "$T/loose.pw"
chmod 0644 "$T/loose.pw"
sed "s|$T/owner.pw|$T/loose.pw|" "$T/owner.conf" >"$T/loose.conf"
check "a password file readable by others: exit 78" test "$(cfg_rc "$T/loose.conf")" -eq 78
check "... saying how to fix it, without the password" bash -c \
        "grep -q 'chmod 0600' '$T/cfg.log' && ! grep -qF \"\$(cat '$T/loose.pw')\" '$T/cfg.log'"
rm -f "$T/loose.pw"

# Roles from fleet/roles.sql (the documented grants), one login role per host, hosts registered.
fleet_roles

# Host A uses lib.sh's layout ($T/secguard.conf, $T/state, service sgtest); host B its own.
sg_write_config "${RL[@]}" "$(fleet_section fleet_a "$T/a.pw" "$HA")"
fleet_host_b
# Host B's helper runs as nobody, its [fleet] user (secguardd grants that uid the FLEET_*
# requests); it owns its password file and state dir and runs a copy of the binary (nobody
# may not reach the build tree).
echo "user = nobody" >>"$T/b/secguard.conf"
chown nobody "$T/b.pw" "$T/fb"
install -m 0755 "$FLEETD" "$T/secguard-fleetd"
chmod 0644 "$T/b/secguard.conf"

declare -A FPID
start_fleetd() { # a|b
        if [ "$1" = b ]; then
                setpriv --reuid=nobody --regid=nogroup --clear-groups \
                        "$T/secguard-fleetd" --config "$T/b/secguard.conf" --state-dir "$T/fb" --debug >>"$T/fb.log" 2>&1 &
        else
                # Under scripts/valgrind (SG_VALGRIND=1) A's helper runs under memcheck too; lib.sh
                # fails the test on any error or definite leak in $T/vg.
                "${SG_DAEMON_WRAP[@]}" "$FLEETD" --config "$T/secguard.conf" --state-dir "$T/fa" --debug >>"$T/fa.log" 2>&1 &
        fi
        FPID[$1]=$!
}
kill9_fleetd() {
        kill -KILL "${FPID[$1]}" 2>/dev/null || true
        wait "${FPID[$1]}" 2>/dev/null || true
        FPID[$1]=
}
stop_all() {
        local h
        for h in a b c; do
                if [ -n "${FPID[$h]:-}" ]; then kill -TERM "${FPID[$h]}" 2>/dev/null || true; fi
        done
        for h in a b c; do
                if [ -n "${FPID[$h]:-}" ]; then wait "${FPID[$h]}" 2>/dev/null || true; fi
        done
        if [ -n "$B_PID" ]; then kill -TERM "$B_PID" 2>/dev/null || true; wait "$B_PID" 2>/dev/null || true; fi
}
# Stop the helpers and daemon B before lib.sh's and pg_lib's cleanup (that runs from the EXIT trap).
PG_EXIT_HOOKS+=(stop_all)
on_fail_logs() {
        local h
        for h in a b; do
                echo "--- secguard-fleetd $h (last 25 lines) ---" >&2
                tail -n 25 "$T/f$h.log" >&2 2>/dev/null || true
        done
        if [ -s "$T/fx.log" ]; then
                echo "--- the refused helper ---" >&2
                tail -n 5 "$T/fx.log" >&2
        fi
        echo "--- secguardd B (last 15 lines) ---" >&2
        tail -n 15 "$T/b/daemon.log" >&2 2>/dev/null || true
}
fail() {
        printf 'FAIL: %s\n' "$*" >&2
        on_fail_logs
        echo "--- secguardd A (last 15 lines) ---" >&2
        tail -n 15 "$T/daemon.log" >&2 2>/dev/null || true
        exit 1
}

# auth HOST USER PASSWORD RHOST: 0 accepted.
auth() {
        local svc=sgtest
        [ "$1" = b ] && svc=sgtestb
        printf '%s\n' "$3" | ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" \
                LD_PRELOAD="${SG_SANITIZE:+$SG_LIBASAN:}libnss_wrapper.so" NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
                timeout 30 "$SG_BUILD/tests/integration/pam_run" "$T/pam.d" "$svc" "$2" authenticate "$4" >/dev/null 2>&1
}
# session HOST USER: opens and at once closes a PAM session (pam_run's "session" mode).
session() {
        local svc=sgtest
        [ "$1" = b ] && svc=sgtestb
        ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" \
                LD_PRELOAD="${SG_SANITIZE:+$SG_LIBASAN:}libnss_wrapper.so" NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
                timeout 30 "$SG_BUILD/tests/integration/pam_run" "$T/pam.d" "$svc" "$2" session "$CLEAN" </dev/null 2>&1 |
                grep -q '^close_session: Success$'
}
ctl() { # HOST ARGS...
        local conf=$T/secguard.conf
        [ "$1" = b ] && conf=$T/b/secguard.conf
        shift
        "$SECGUARDCTL" --config "$conf" "$@"
}
local_db() { [ "$1" = b ] && echo "$T/b/state/secguard.db" || echo "$T/state/secguard.db"; }
host_id() { [ "$1" = b ] && echo "$HB" || echo "$HA"; }
# "count|min|max" of a host's audit rows, locally and in PostgreSQL.
local_range() { sqlite3 -batch "$(local_db "$1")" 'SELECT count(*), coalesce(min(id),0), coalesce(max(id),0) FROM audit' | tr -d ' '; }
pg_range() { pg_psql -qAt -c "SELECT count(*), coalesce(min(id),0), coalesce(max(id),0) FROM secguard.audit WHERE host_id = '$(host_id "$1")'"; }
# Waits (bounded) until PostgreSQL holds exactly the local audit of host $1.
wait_shipped() {
        local i l p
        for i in $(seq 1 "${2:-150}"); do
                l=$(local_range "$1")
                p=$(pg_range "$1")
                [ "$l" = "$p" ] && return 0
                sleep 0.1
        done
        echo "# host $1: local $l, PostgreSQL $p" >&2
        return 1
}
# count = max - min + 1 and min = 1: no gap, no duplicate (the primary key forbids those anyway).
contiguous() {
        local c lo hi
        IFS='|' read -r c lo hi <<<"$(pg_range "$1")"
        [ "$c" -gt 0 ] && [ "$lo" -eq 1 ] && [ $((hi - lo + 1)) -eq "$c" ]
}
pg_dups() { pg_psql -qAt -c "SELECT count(*) FROM (SELECT host_id, id FROM secguard.audit GROUP BY 1, 2 HAVING count(*) > 1) d"; }
now_ms() { date +%s%3N; }

sg_start_daemon
start_b
# A helper running as an account that is not A's [fleet] user is refused by the daemon.
# (Its config is A's without the password: it asks the daemon first, whatever PostgreSQL says.)
mkdir -m 0700 "$T/fx" && chown nobody "$T/fx"
grep -v '^password_file' "$T/secguard.conf" >"$T/fx.conf"
chmod 0644 "$T/fx.conf"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/secguard-fleetd" --config "$T/fx.conf" \
        --state-dir "$T/fx" >"$T/fx.log" 2>&1 &
xpid=$!
for i in $(seq 1 100); do grep -q 'refused FLEET_EXPORT' "$T/fx.log" && break; sleep 0.05; done
kill -TERM "$xpid" 2>/dev/null || true
wait "$xpid" 2>/dev/null || true
check "secguardd refuses FLEET_EXPORT to a uid that is not its [fleet] user (logged by the helper)" \
        grep -q 'secguardd refused FLEET_EXPORT: permission' "$T/fx.log"
start_fleetd a
start_fleetd b

# ---- 1. shipping ----
for i in 1 2 3; do
        auth a alice "$SG_PW_ALICE" "$CLEAN" || fail "login on A"
        auth b bob "$SG_PW_BOB" "$CLEAN" || fail "login on B"
        auth a carol "wrong $i" "192.0.2.$((60 + i))" && fail "a wrong password got in on A"
        auth b carol "wrong $i" "192.0.2.$((70 + i))" && fail "a wrong password got in on B"
done
session a alice || fail "a session on A"
session b bob || fail "a session on B"
check "host A's rows all in PostgreSQL (same count and id range as its local audit)" wait_shipped a
check "host B's rows all in PostgreSQL" wait_shipped b
check "host A's ids contiguous from 1" contiguous a
check "host B's ids contiguous from 1" contiguous b
check "rows keep their content (A's auth_success of alice from $CLEAN)" test \
        "$(pg_psql -qAt -c "SELECT count(*) FROM secguard.audit WHERE host_id = '$HA' AND event = 'auth_success' AND username = 'alice' AND rhost = '$CLEAN' AND length(mac) > 0")" -eq 3
check "fleet status on A: connected, no lag" bash -c \
        "'$SECGUARDCTL' fleet status --state-dir '$T/fa' | grep -q '^state: *connected' &&
         '$SECGUARDCTL' --json fleet status --state-dir '$T/fa' | grep -q '\"host_id\":\"$HA\"'"
echo "# shipped: A $(pg_range a), B $(pg_range b) (count|min id|max id)"

# ---- 1b. secguardctl fleet verify / fleet audit on the central copy (as the schema owner,
# who reads every host's rows; a host role sees only its own) ----
octl() { "$SECGUARDCTL" --config "$T/owner.conf" "$@"; }
# verify_out ARGS...: runs fleet verify, output in $T/verify.out, prints the exit status.
verify_rc() { local rc=0; octl fleet verify "$@" >"$T/verify.out" 2>&1 || rc=$?; echo "$rc"; }
check "fleet verify: exit 0 after normal shipping" test "$(verify_rc)" -eq 0
check "fleet verify: both hosts listed, no gap" bash -c "grep -q '^host $HA' '$T/verify.out' &&
        grep -q '^host $HB' '$T/verify.out' && ! grep -q GAP '$T/verify.out' && [ \$(grep -c '^  ok$' '$T/verify.out') -eq 2 ]"
check "fleet verify as host A's role: A is ok, B's unseen rows are missing (fails closed, exit 1)" bash -c "
        [ \$('$SECGUARDCTL' --config '$T/secguard.conf' fleet verify >'$T/verify.out' 2>&1; echo \$?) -eq 1 ] &&
        grep -q '^  GAP     ids 1\.\.$(pg_psql -qAt -c "SELECT max(id) FROM secguard.audit WHERE host_id = '$HB'") ' '$T/verify.out' &&
        [ \$(grep -c '^  ok$' '$T/verify.out') -eq 1 ] && [ \$(grep -c '^  BROKEN$' '$T/verify.out') -eq 1 ]"
check "fleet verify --key-file: A's chain checks, every row, exit 0" test "$(verify_rc --host "$HA" --key-file "$T/state/audit.key")" -eq 0
check "fleet verify --key-file: as many rows MAC-checked as A shipped, none bad" \
        grep -q "^  MACs: $(pg_psql -qAt -c "SELECT count(*) FROM secguard.audit WHERE host_id = '$HA'") rows checked with the key, 0 bad$" "$T/verify.out"
check "fleet verify --key-file with B's key on A: bad MACs, exit 1" test "$(verify_rc --host "$HA" --key-file "$T/b/state/audit.key")" -eq 1
check "fleet verify --key-file needs --host (usage, exit 2)" test "$(verify_rc --key-file "$T/state/audit.key")" -eq 2
chmod 0644 "$T/state/audit.key"
check "fleet verify --key-file refuses a key file others may read (exit 4)" test "$(verify_rc --host "$HA" --key-file "$T/state/audit.key")" -eq 4
chmod 0600 "$T/state/audit.key"
na=$(pg_psql -qAt -c "SELECT count(*) FROM secguard.audit WHERE host_id = '$HA'")
check "fleet audit --host A: A's $na rows and only those, with the host column" bash -c "
        out=\$('$SECGUARDCTL' --config '$T/owner.conf' fleet audit --host $HA --limit 1000) &&
        ! grep -qv ' $HA ' <<<\"\$out\" && [ \$(grep -c ' $HA ' <<<\"\$out\") -eq $na ]"
check "fleet audit: both hosts' rows, newest first" bash -c "
        out=\$('$SECGUARDCTL' --config '$T/owner.conf' fleet audit --limit 1000) &&
        grep -q ' $HA ' <<<\"\$out\" && grep -q ' $HB ' <<<\"\$out\" &&
        cut -d' ' -f1 <<<\"\$out\" | sort -rc"
check "fleet audit --json --host B --user bob --event auth_success: B's 3 logins of bob" test \
        "$(octl fleet audit --json --host "$HB" --user bob --event auth_success | grep -c "^{\"host\":\"$HB\",\"id\":[0-9]*,.*\"event\":\"auth_success\".*\"user\":\"bob\"")" -eq 3
if [ -n "${SG_VALGRIND:-}" ]; then
        # As in t_sessions: valgrind 3.19 (Debian 12) cannot run pidfd_open, so a daemon under
        # memcheck registers no session and audits none.
        echo "# skipped under memcheck: sessions per host (valgrind cannot run pidfd_open)"
else
        check "fleet audit --event session_open: one session per host, each with its own user" test \
                "$(octl fleet audit --json --event session_open | sed -E 's/^\{"host":"([0-9a-f]+)".*"user":"([a-z]+)".*/\1 \2/' | sort | tr '\n' ' ')" = "$HA alice $HB bob "
        check "fleet audit --host B --event session_close: B's session closed there" test \
                "$(octl fleet audit --host "$HB" --event session_close | grep -c " $HB .*session_close .*user=bob")" -eq 1
fi
check "fleet audit --rhost: the filter reaches PostgreSQL" test \
        "$(octl fleet audit --json --rhost 192.0.2.61 | grep -c '"host":"'"$HA"'"')" -eq 1
check "fleet audit: a bad --host is a usage error" test "$(octl fleet audit --host 'x;DROP' >/dev/null 2>&1; echo $?)" -eq 2

# ---- 2. a lockout on A reaches B ----
check "B lets $ATTACKER in before" auth b bob "$SG_PW_BOB" "$ATTACKER"
for i in 1 2 3 4 5; do
        auth a alice "bad guess $i" "$ATTACKER" && fail "a wrong password got in"
done
t0=$(now_ms)
check "A refuses $ATTACKER's right password (local lockout)" ! auth a alice "$SG_PW_ALICE" "$ATTACKER"
t1=
for i in $(seq 1 60); do
        if ! auth b bob "$SG_PW_BOB" "$ATTACKER"; then
                t1=$(now_ms)
                break
        fi
        sleep 0.05
done
[ -n "$t1" ] || fail "B never refused $ATTACKER"
lat=$((t1 - t0))
echo "# propagation A -> B: ${lat} ms (lockout on A to the first refusal on B)"
check "B refuses $ATTACKER within 2 s of A's lockout (${lat} ms)" test "$lat" -le 2000
check "B still refuses $ATTACKER's right password" ! auth b alice "$SG_PW_ALICE" "$ATTACKER"
check "B lets a clean source in" auth b alice "$SG_PW_ALICE" "$CLEAN"
check "fleet locks: $ATTACKER's lock from A is listed" bash -c \
        "'$SECGUARDCTL' --config '$T/owner.conf' fleet locks | grep -E '^[0-9]+ +source +$ATTACKER .* $HA +lockout'"
check "fleet locks --json: the same, with its origin host" bash -c \
        "'$SECGUARDCTL' --config '$T/owner.conf' fleet locks --json | grep -q '\"key\":\"$ATTACKER\".*\"origin_host\":\"$HA\"'"
# A's 5 failures also cross the fleet-wide threshold (4): when they ship in two batches, the
# count publishes a fleet_failures lock before the lockout row arrives. Either way: one
# lockout decision, at most one fleet_failures, all from A.
check "one lockout decision for $ATTACKER from A (and at most one fleet_failures)" test \
        "$(pg_psql -qAt -c "SELECT count(*) FILTER (WHERE reason = 'lockout') || '|' || (count(*) FILTER (WHERE reason = 'fleet_failures') <= 1) || '|' || min(origin_host) || '|' || max(origin_host) FROM secguard.decisions WHERE action = 'lock' AND key = '$ATTACKER'")" = "1|true|$HA|$HA"
check "B audited one fleet_lock per lock decision for $ATTACKER" test \
        "$(sqlite3 -batch "$(local_db b)" "SELECT count(*) FROM audit WHERE event = 'fleet_lock' AND rhost = '$ATTACKER'")" -eq \
        "$(pg_psql -qAt -c "SELECT count(*) FROM secguard.decisions WHERE action = 'lock' AND key = '$ATTACKER'")"

# ---- 3. unlock --fleet on A clears both ----
ctl a unlock --rhost "$ATTACKER" --fleet >/dev/null || fail "unlock --fleet"
check "A lets $ATTACKER in right after unlock --fleet" auth a alice "$SG_PW_ALICE" "$ATTACKER"
ok=
t0=$(now_ms)
for i in $(seq 1 60); do
        if auth b bob "$SG_PW_BOB" "$ATTACKER"; then ok=1; break; fi
        sleep 0.05
done
echo "# unlock propagation A -> B: $(( $(now_ms) - t0 )) ms"
check "B lets $ATTACKER in again within 3 s" test -n "$ok"
check "fleet locks: $ATTACKER no longer listed after unlock --fleet" bash -c \
        "out=\$('$SECGUARDCTL' --config '$T/owner.conf' fleet locks) && ! grep -q ' $ATTACKER ' <<<\"\$out\""
check "the unlock is a decision in PostgreSQL (source and spray)" test \
        "$(pg_psql -qAt -c "SELECT count(*) FROM secguard.decisions WHERE action = 'unlock' AND key = '$ATTACKER' AND reason = 'fleet'")" -eq 2
check "no fleet_lock/fleet_unlock row was published again (no echo)" test \
        "$(pg_psql -qAt -c "SELECT count(*) FROM secguard.decisions d JOIN secguard.audit a ON a.host_id = d.origin_host AND a.id = d.audit_id WHERE a.event LIKE 'fleet%'")" -eq 0

# ---- 4. fleet-wide sum: 2 failures on A + 2 on B = 4 (each host alone stays under its 5) ----
auth a alice "spread 1" "$SPREAD" || true
auth a alice "spread 2" "$SPREAD" || true
auth b alice "spread 3" "$SPREAD" || true
auth b alice "spread 4" "$SPREAD" || true
ok=
for i in $(seq 1 60); do
        if ! auth a carol "$SG_PW_CAROL" "$SPREAD" && ! auth b carol "$SG_PW_CAROL" "$SPREAD"; then ok=1; break; fi
        sleep 0.05
done
check "failures spread over both hosts lock $SPREAD on both" test -n "$ok"
check "exactly one fleet_failures decision for $SPREAD" test \
        "$(pg_psql -qAt -c "SELECT count(*) FROM secguard.decisions WHERE key = '$SPREAD' AND reason = 'fleet_failures'")" -eq 1

# ---- 5. PostgreSQL stopped ----
wait_shipped a || fail "A not caught up before the outage"
before=$(pg_range a)
pg_stop fast
slow=0
for i in $(seq 1 8); do
        s=$(now_ms)
        auth a alice "$SG_PW_ALICE" "$CLEAN" || fail "login on A refused while PostgreSQL is down"
        d=$(( $(now_ms) - s ))
        [ "$d" -le 1000 ] || slow=$((slow + 1))
        auth a bob "wrong while down $i" "192.0.2.$((100 + i))" && fail "a wrong password got in"
done
check "logins on A unaffected while PostgreSQL is down (none over 1 s)" test "$slow" -eq 0
sleep 0.5
check "fleet status says disconnected (exit 1)" ! bash -c "'$SECGUARDCTL' fleet status --state-dir '$T/fa' >'$T/st.out'"
check "... with a lag in rows" bash -c "grep -q '^state: *disconnected' '$T/st.out' && ! grep -q '^lag_rows *0$' '$T/st.out'"
grep -E '^(state|lag_rows|lag_seconds|last_shipped_id)' "$T/st.out" | sed 's/^/# during the outage: /'
pg_start
check "rows made during the outage shipped after it (count and range equal the local audit)" wait_shipped a 300
check "A's ids still contiguous" contiguous a
check "no duplicate (host_id, id) anywhere" test "$(pg_dups)" -eq 0
echo "# before the outage: $before; after: $(pg_range a)"

# ---- 5b. PostgreSQL hangs: the server process serving A's helper is stopped (SIGSTOP) ----
hung=$(pg_psql -qAt -c "SELECT pid FROM pg_stat_activity WHERE usename = 'fleet_a' AND application_name = 'secguard-fleetd'")
[ -n "$hung" ] || fail "no PostgreSQL backend for A's helper"
kill -STOP "$hung"
PG_EXIT_HOOKS+=("kill -CONT $hung 2>/dev/null")
s0=$(now_ms)
slow=0
for i in $(seq 1 6); do
        s=$(now_ms)
        auth a alice "$SG_PW_ALICE" "$CLEAN" || fail "login on A refused while PostgreSQL hangs"
        [ $(( $(now_ms) - s )) -le 1000 ] || slow=$((slow + 1))
done
check "logins on A unaffected while PostgreSQL hangs (none over 1 s)" test "$slow" -eq 0
ok=
for i in $(seq 1 300); do grep -q 'query timed out' "$T/fa.log" && { ok=1; break; }; sleep 0.1; done
echo "# the helper gave up on the hung server after $(( $(now_ms) - s0 )) ms (bound: 15 s per statement)"
check "the helper's wait on a hung PostgreSQL is bounded: it drops the connection" test -n "$ok"
kill -CONT "$hung"
check "... reconnects, and A's rows are all shipped" wait_shipped a 300
check "... contiguous, no duplicate" test "$(pg_dups)" -eq 0 -a "$(contiguous a && echo y)" = y

# ---- 6. kill -9 in the middle of a batch transaction ----
# An owner session holds an EXCLUSIVE lock on secguard.hosts: A's next batch (BEGIN, row
# inserts, whose foreign key needs a share lock on hosts) blocks inside its transaction.
wait_shipped a || fail "A not caught up before the kill"
(pg_psql -q -c "BEGIN; LOCK TABLE secguard.hosts IN EXCLUSIVE MODE; SELECT pg_sleep(20); COMMIT;" >/dev/null 2>&1) &
locker=$!
sleep 0.3
for i in $(seq 1 12); do auth a alice "$SG_PW_ALICE" "$CLEAN" || fail "login on A"; done
blocked=
for i in $(seq 1 100); do
        if [ "$(pg_psql -qAt -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'secguard-fleetd' AND usename = 'fleet_a' AND state = 'active' AND wait_event_type = 'Lock'")" -ge 1 ]; then
                blocked=1
                break
        fi
        sleep 0.05
done
check "A's helper is inside a batch transaction, waiting" test -n "$blocked"
kill9_fleetd a
pg_psql -qAt -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(20)%' AND pid <> pg_backend_pid()" >/dev/null
wait "$locker" 2>/dev/null || true
for i in $(seq 1 5); do auth a bob "wrong after kill $i" "192.0.2.$((120 + i))" && fail "wrong password got in"; done
start_fleetd a
check "after kill -9 and restart, A's rows all shipped" wait_shipped a 300
check "A's ids contiguous after kill -9" contiguous a
check "no duplicate (host_id, id) after kill -9" test "$(pg_dups)" -eq 0
check "the restarted helper resumed from PostgreSQL's max(id)" grep -q 'shipping resumes after audit id' "$T/fa.log"

# ---- 7. hostile decisions straight into PostgreSQL ----
before_locks=$(sqlite3 -batch "$(local_db b)" "SELECT count(*) FROM audit WHERE event = 'fleet_lock'")
until_ok=$(( ($(date +%s) + 600) * 1000000 ))
until_absurd=$(( ($(date +%s) + 100 * 365 * 86400) * 1000000 ))
pg_psql -q -c "INSERT INTO secguard.decisions(action, kind, key, until_usec, origin_host, reason) VALUES
        ('lock', 'source', '$HOSTILE; rm -rf /', $until_ok, '$HA', 'lockout'),
        ('lock', 'source', 'not-an-address', $until_ok, '$HA', 'lockout'),
        ('lock', 'source', '$HOSTILE', $until_absurd, '$HA', 'lockout'),
        ('lock', 'user', 'root', $until_ok, '$HA', 'lockout'),
        ('lock', 'source', '$HOSTILE', $(( ($(date +%s) - 60) * 1000000 )), '$HA', 'lockout')" >/dev/null ||
        fail "hostile insert"
ok=
for i in $(seq 1 60); do
        [ "$(grep -c 'rejected (bad_' "$T/fb.log")" -ge 4 ] && { ok=1; break; }
        sleep 0.05
done
check "B's helper rejects the 4 hostile decisions with a clear log line each" test -n "$ok"
grep 'rejected (bad_' "$T/fb.log" | tail -n 4 | sed 's/^/# /'
check "the log names the absurd until and max_lock_time" grep -q 'bad_until.*more than max_lock_time' "$T/fb.log"
check "a lock that has already ended is skipped, not called hostile" grep -q 'skipped: the lock ended before it could be applied' "$T/fb.log"
check "nothing locked on B: $HOSTILE gets in" auth b alice "$SG_PW_ALICE" "$HOSTILE"
check "no fleet_lock row written on B" test \
        "$(sqlite3 -batch "$(local_db b)" "SELECT count(*) FROM audit WHERE event = 'fleet_lock'")" -eq "$before_locks"
# The daemon checks again: the same decisions sent straight to B's socket are refused.
daemon_says() { # KIND KEY UNTIL -> prints the reply type and detail
        "$PY" - "$T/b/run/secguardd.sock" "$1" "$2" "$3" "$HA" <<'PYEOF'
import socket, struct, sys
sock, kind, key, until, host = sys.argv[1:6]
def f(tag, v):
    if isinstance(v, int): v = struct.pack(">Q", v)
    elif isinstance(v, str): v = v.encode()
    return struct.pack(">BH", tag, len(v)) + v
p = f(18, kind) + f(19, key) + f(14, int(until)) + f(40, host) + f(26, 999999) + f(7, "lockout")
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sock)
s.sendall(b"SG\x01" + bytes([18]) + struct.pack(">I", len(p)) + p)
h = b""
while len(h) < 8: h += s.recv(8 - len(h))
n = struct.unpack(">I", h[4:8])[0]; b = b""
while len(b) < n: b += s.recv(n - len(b))
out, i = {}, 0
while i < len(b):
    t, l = struct.unpack(">BH", b[i:i+3]); out[t] = b[i+3:i+3+l]; i += 3 + l
print(hex(h[3]), out.get(11, b"").decode(errors="replace"))
PYEOF
}
r1=$(daemon_says source not-an-address "$until_ok")
r2=$(daemon_says source "$HOSTILE" "$until_absurd")
echo "# secguardd B to an invalid address: $r1"
echo "# secguardd B to an absurd until: $r2"
check "secguardd refuses an invalid address (ERROR)" test "${r1%% *}" = 0x81
check "secguardd refuses an absurd until (ERROR)" test "${r2%% *}" = 0x81
check "still nothing locked on B" auth b alice "$SG_PW_ALICE" "$HOSTILE"

# ---- 8. row-level security and grants ----
as_a() { PGPASSFILE= PGPASSWORD=$(cat "$T/a.pw") PGHOST=$PG_SOCKDIR PGPORT=$PG_PORT PGUSER=fleet_a PGDATABASE=fleet \
                timeout 10 "$(pg_psql_bin)" -X -qAt -v ON_ERROR_STOP=1 "$@" >/dev/null 2>&1; }
check "host A's role cannot insert a row as host B" ! as_a -c \
        "INSERT INTO secguard.audit(host_id, id, time_usec, event, mac) VALUES ('$HB', 999999, 1, 'x', '\\x00')"
check "host A's role cannot publish a decision as host B" ! as_a -c \
        "INSERT INTO secguard.decisions(action, kind, key, until_usec, origin_host, reason) VALUES ('lock', 'source', '192.0.2.1', 1, '$HB', 'lockout')"
check "host A's role cannot delete audit rows" ! as_a -c "DELETE FROM secguard.audit WHERE host_id = '$HA'"
check "host A's role cannot update audit rows" ! as_a -c "UPDATE secguard.audit SET detail = 'x' WHERE host_id = '$HA'"
check "host A's role cannot read host B's rows" test "$(PGPASSWORD=$(cat "$T/a.pw") PGHOST=$PG_SOCKDIR PGPORT=$PG_PORT PGUSER=fleet_a PGDATABASE=fleet \
        timeout 10 "$(pg_psql_bin)" -X -qAt -c "SELECT count(*) FROM secguard.audit WHERE host_id = '$HB'")" -eq 0
check "... but may count failures fleet-wide" as_a -c "SELECT secguard.source_failures('$SPREAD', 0)"

# ---- 9. a backlog: host C starts with SG_FLEET_BULK_ROWS rows already in its audit ----
HC=ccccccccccccccccccccccccccccccc3
ROWS=${SG_FLEET_BULK_ROWS:-20000}
fleet_newpw "$T/c.pw"
{ printf '\\set pw `cat %s`\n' "$T/c.pw"; echo "CREATE ROLE fleet_c LOGIN PASSWORD :'pw' IN ROLE secguard_host;"
  echo "INSERT INTO secguard.hosts(host_id, role) VALUES ('$HC', 'fleet_c');"; } | pg_psql -q >/dev/null || fail "role fleet_c"
mkdir -m 0755 "$T/c" "$T/c/run"
mkdir -m 0700 "$T/c/state" "$T/fc"
sed -e "s|$T/run/|$T/c/run/|" -e "s|state_dir = $T/state|state_dir = $T/c/state|" -e "s|user=fleet_a|user=fleet_c|" \
        -e "s|$T/a.pw|$T/c.pw|" -e "s|$HA|$HC|" -e "s|^batch = .*|batch = 500|" "$T/secguard.conf" >"$T/c/secguard.conf"
"$SG_BUILD/tests/integration/sg_audit_fill" "$T/c/state" "$ROWS" >/dev/null || fail "sg_audit_fill"
# C's later rows are MACed under forward-secure epochs (fleet verify --seed-file checks them).
"$SECGUARDCTL" --config "$T/c/secguard.conf" audit setup-keys >"$T/c/setup.out" 2>&1 || fail "setup-keys on C"
(umask 077 && tail -n 1 "$T/c/setup.out" >"$T/c/seed")
"$SECGUARDD" --config "$T/c/secguard.conf" --log-target stderr >>"$T/c/daemon.log" 2>&1 &
C_PID=$!
PG_EXIT_HOOKS+=("kill -TERM $C_PID 2>/dev/null; wait $C_PID 2>/dev/null")
for i in $(seq 1 200); do "$SECGUARDCTL" --config "$T/c/secguard.conf" status >/dev/null 2>&1 && break; sleep 0.05; done
c_local() { sqlite3 -batch "$T/c/state/secguard.db" 'SELECT count(*), min(id), max(id) FROM audit' | tr -d ' '; }
c_pg() { pg_psql -qAt -c "SELECT count(*), coalesce(min(id),0), coalesce(max(id),0) FROM secguard.audit WHERE host_id = '$HC'"; }
s0=$(now_ms)
"$FLEETD" --config "$T/c/secguard.conf" --state-dir "$T/fc" --debug >>"$T/fc.log" 2>&1 &
FPID[c]=$!
shipped=
for i in $(seq 1 1200); do
        if [ "$(c_pg)" = "$(c_local)" ]; then shipped=1; break; fi
        sleep 0.1
done
el=$(( $(now_ms) - s0 ))
n=$(c_pg | cut -d'|' -f1)
echo "# bulk: $n rows of host C shipped in $el ms ($(( n * 1000 / (el > 0 ? el : 1) )) rows/s, batch 500, helper start included)"
grep 'shipped audit ids' "$T/fc.log" | sed -n '2p;$p' | sed 's/^/# host C, a batch: /'
check "a backlog of $ROWS rows is shipped completely (count and range equal the local audit)" test -n "$shipped"
check "... contiguous, no duplicate" test "$(c_pg)" = "$(c_local)" -a "$(pg_dups)" -eq 0
# A host that joins late applies the locks still in force, and only those.
c_locks() { sqlite3 -batch "$T/c/state/secguard.db" "SELECT count(*) FROM audit WHERE event = 'fleet_lock' AND rhost = '$1'"; }
check "host C, joining late, applied the lock still in force ($SPREAD)" test "$(c_locks "$SPREAD")" -ge 1
check "... but not the lifted one ($ATTACKER) nor the hostile ones ($HOSTILE)" test "$(c_locks "$ATTACKER")$(c_locks "$HOSTILE")" = 00
check "still no decision published from a fleet_lock/fleet_unlock row (no echo), over all hosts" test \
        "$(pg_psql -qAt -c "SELECT count(*) FROM secguard.decisions d JOIN secguard.audit a ON a.host_id = d.origin_host AND a.id = d.audit_id WHERE a.event LIKE 'fleet%'")" -eq 0
check "fleet status on C: connected, 0 rows behind" bash -c "'$SECGUARDCTL' fleet status --state-dir '$T/fc' | grep -q '^lag_rows *0$'"

# Nothing secret in the logs, the status files or the daemons' state.
no_password_anywhere() {
        local f pw
        for pw in "$T/a.pw" "$T/b.pw" "$T/owner.pw"; do
                [ -s "$pw" ] || return 1
                for f in "$T/fa.log" "$T/fb.log" "$T/daemon.log" "$T/b/daemon.log" "$T"/migrate*.log \
                        "$T/fa/status" "$T/fb/status" "$(local_db a)" "$(local_db b)"; do
                        if grep -qaF "$(cat "$pw")" "$f"; then
                                echo "# a PostgreSQL password is in $f" >&2
                                return 1
                        fi
                done
        done
}
check "no PostgreSQL password in any log, status file or local database" no_password_anywhere

# The helpers stop on SIGTERM with status 0 (under the sanitizers: no leak, no error report).
stop_helpers() {
        local h rc=0
        for h in a b c; do
                kill -TERM "${FPID[$h]}" 2>/dev/null || return 1
        done
        for h in a b c; do
                wait "${FPID[$h]}" || rc=1
                FPID[$h]=
        done
        [ "$rc" -eq 0 ] && ! grep -l 'Sanitizer\|runtime error' "$T"/f[abc].log
}
check "the three helpers exit 0 on SIGTERM, no sanitizer report" stop_helpers

# ---- 10. ids pruned on B before they could be shipped ----
# B's helper is stopped; three logins on B; then the rows between the first and the last of
# them are deleted from B's local audit, as retention would. The restarted helper ships what is
# left and records the hole in secguard.pruned; fleet verify lists it as pruned, not as a gap.
b_max() { sqlite3 -batch "$(local_db b)" 'SELECT max(id) FROM audit'; }
p0=$(b_max)
for i in 1 2 3; do auth b bob "$SG_PW_BOB" "$CLEAN" || fail "login on B"; done
p1=$(b_max)
[ "$p1" -ge $((p0 + 3)) ] || fail "B wrote no rows"
sqlite3 -batch "$(local_db b)" ".timeout 5000" "DELETE FROM audit WHERE id > $p0 AND id < $p1" || fail "local prune on B"
start_fleetd b
check "B's helper ships what is left after the local prune" wait_shipped b
kill -TERM "${FPID[b]}" && wait "${FPID[b]}" || fail "B's helper did not stop cleanly"
FPID[b]=
check "B's helper logged the pruned ids $((p0 + 1))-$((p1 - 1))" grep -q "audit ids $((p0 + 1))-$((p1 - 1)) are gone from the local audit" "$T/fb.log"
check "... and recorded them in secguard.pruned" test \
        "$(pg_psql -qAt -c "SELECT first_id || '..' || last_id FROM secguard.pruned WHERE host_id = '$HB'")" = "$((p0 + 1))..$((p1 - 1))"
check "fleet verify: B's pruned ids are not a gap (exit 0)" test "$(verify_rc --host "$HB")" -eq 0
check "fleet verify lists them as pruned before shipping" \
        grep -q "^  pruned  ids $((p0 + 1))..$((p1 - 1)) ($((p1 - p0 - 1))): pruned locally before shipping" "$T/verify.out"

# ---- 10. tampering with the central copy, as the database owner ----
# A row of B deleted: a gap with its exact range, exit 1. Two more deleted that B had reported
# as pruned (an owner's insert, standing in for a report like the one above): listed apart,
# not a gap.
mid=$(pg_psql -qAt -c "SELECT (min(id) + max(id)) / 2 FROM secguard.audit WHERE host_id = '$HB'")
pg_psql -qc "DELETE FROM secguard.audit WHERE host_id = '$HB' AND id = $mid" >/dev/null || fail "delete"
check "fleet verify: a row deleted centrally is a gap, exit 1" test "$(verify_rc)" -eq 1
check "fleet verify names B's gap exactly ($mid..$mid), no other host broken" bash -c "
        grep -q '^  GAP     ids $mid..$mid (1): missing' '$T/verify.out' && [ \$(grep -c GAP '$T/verify.out') -eq 1 ] &&
        [ \$(grep -c '^  BROKEN$' '$T/verify.out') -eq 1 ]"
check "fleet verify --json: the gap as data" bash -c \
        "'$SECGUARDCTL' --config '$T/owner.conf' fleet verify --json --host $HB | grep -q '{\"kind\":\"gap\",\"first\":$mid,\"last\":$mid}'"
pg_psql -qc "DELETE FROM secguard.audit WHERE host_id = '$HB' AND id IN (2, 3);
        INSERT INTO secguard.pruned(host_id, first_id, last_id) VALUES ('$HB', 2, 3)" >/dev/null || fail "prune"
verify_rc --host "$HB" >/dev/null
check "fleet verify: ids B reported pruned are listed as pruned, not as a gap" bash -c "
        grep -q '^  pruned  ids 2..3 (2): pruned locally' '$T/verify.out' && [ \$(grep -c GAP '$T/verify.out') -eq 1 ]"
pg_psql -qc "DELETE FROM secguard.audit WHERE host_id = '$HB' AND id = $mid + 1" >/dev/null || fail "delete"
verify_rc --host "$HB" >/dev/null
check "fleet verify: adjacent deletions read as one range" grep -q "^  GAP     ids $mid..$((mid + 1)) (2)" "$T/verify.out"
# A row of A edited: --key-file names it; the structure alone still looks whole.
edit=$(pg_psql -qAt -c "SELECT min(id) FROM secguard.audit WHERE host_id = '$HA' AND event = 'auth_success' AND id > 3")
pg_psql -qc "UPDATE secguard.audit SET detail = 'nothing to see' WHERE host_id = '$HA' AND id = $edit" >/dev/null || fail "edit"
check "fleet verify without the key: A has no gap (exit 0 for A)" test "$(verify_rc --host "$HA")" -eq 0
check "fleet verify --key-file: the edited row is caught, exit 1" test "$(verify_rc --host "$HA" --key-file "$T/state/audit.key")" -eq 1
check "fleet verify --key-file names row $edit, and only it" bash -c "
        grep -q '^  BAD MAC: row $edit is not the row the host wrote (first of 1)$' '$T/verify.out'"
# Control characters from PostgreSQL never reach the terminal raw (the helpers are stopped: no
# host applies this decision).
pg_psql -qc "INSERT INTO secguard.decisions(action, kind, key, until_usec, origin_host, reason)
        VALUES ('lock', 'source', E'198.51.100.1\\x1b[31m', (extract(epoch from now()) * 1000000)::bigint + 600000000,
        '$HA', E'lock\\x07out')" >/dev/null || fail "insert a decision with control characters"
check "fleet locks escapes control characters read from PostgreSQL" bash -c "
        out=\$('$SECGUARDCTL' --config '$T/owner.conf' fleet locks) && ! grep -q \$'[\\x1b\\x07]' <<<\"\$out\" &&
        grep -qF '198.51.100.1\\x1b[31m' <<<\"\$out\" && grep -qF 'lock\\x07out' <<<\"\$out\""
check "fleet locks --json escapes them as \\u001b" bash -c "
        out=\$('$SECGUARDCTL' --config '$T/owner.conf' fleet locks --json) && ! grep -q \$'[\\x1b\\x07]' <<<\"\$out\" &&
        grep -qF '\"key\":\"198.51.100.1\\u001b[31m\"' <<<\"\$out\""
# Host C: 20000 static-key rows, then rows of forward-secure epoch 0 (setup-keys before start).
nc=$(pg_psql -qAt -c "SELECT count(*) FROM secguard.audit WHERE host_id = '$HC'")
ne=$(pg_psql -qAt -c "SELECT count(*) FROM secguard.audit WHERE host_id = '$HC' AND epoch IS NOT NULL")
[ "$ne" -ge 1 ] || fail "no forward-secure row on C"
check "fleet verify --key-file on C: the $ne forward-secure rows are 'not checked', never passed" bash -c "
        [ \$('$SECGUARDCTL' --config '$T/owner.conf' fleet verify --host $HC --key-file '$T/c/state/audit.key' >'$T/verify.out' 2>&1; echo \$?) -eq 0 ] &&
        grep -q '^  MACs: $((nc - ne)) rows checked with the key, 0 bad$' '$T/verify.out' &&
        grep -q '^  not checked: $ne rows (ids .*) MACed under forward-secure epochs' '$T/verify.out'"
check "fleet verify --key-file --seed-file on C: all $nc rows checked, 0 bad, nothing left unchecked" bash -c "
        [ \$('$SECGUARDCTL' --config '$T/owner.conf' fleet verify --host $HC --key-file '$T/c/state/audit.key' --seed-file '$T/c/seed' >'$T/verify.out' 2>&1; echo \$?) -eq 0 ] &&
        grep -q '^  MACs: $nc rows checked with the key, 0 bad$' '$T/verify.out' && ! grep -q 'not checked' '$T/verify.out'"
fse=$(pg_psql -qAt -c "SELECT max(id) FROM secguard.audit WHERE host_id = '$HC' AND epoch IS NOT NULL")
pg_psql -qc "UPDATE secguard.audit SET rhost = '192.0.2.99' WHERE host_id = '$HC' AND id = $fse" >/dev/null || fail "edit C"
check "fleet verify --seed-file names the edited forward-secure row $fse, exit 1" bash -c "
        [ \$('$SECGUARDCTL' --config '$T/owner.conf' fleet verify --host $HC --seed-file '$T/c/seed' >'$T/verify.out' 2>&1; echo \$?) -eq 1 ] &&
        grep -q '^  BAD MAC: row $fse is not the row the host wrote (first of 1)$' '$T/verify.out' &&
        grep -q '^  not checked: $((nc - ne)) rows MACed with the static audit.key (--key-file)$' '$T/verify.out'"
sg_done
