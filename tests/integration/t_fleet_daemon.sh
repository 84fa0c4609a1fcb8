#!/bin/bash
# The daemon's side of fleet mode (docs/protocol.md, FLEET_*), against a real daemon with raw
# requests (sg_wire.py): the audit export with MACs, fleet locks refusing logins through the
# real module, hostile decisions refused and audited, the allowlist winning, unlock,
# durability across a restart, expiry, who may ask, and `unlock --fleet`.
. "$(dirname "$0")/lib.sh"
sg_private_tmp "$@"
sg_setup "[ratelimit]" "source_max_failures = 6" "user_source_max_failures = 100" "user_max_failures = 100" \
        "spray_max_users = 100" "delay_step_ms = 0" "allowlist = 203.0.113.0/24" \
        "[fleet]" "user = daemon" "max_lock_time = 1d"
sg_start_daemon
SOCK="$T/run/secguardd.sock"
HOST=0123456789abcdef0123456789abcdef
install -m 0644 "$SG_SRC/tests/integration/sg_wire.py" "$T/sg_wire.py"

W() { "$PY" "$T/sg_wire.py" "$SOCK" "$@"; }
now_us() { "$PY" -c 'import time; print(int(time.time() * 1e6))'; }
# last JSON reply's field: last FIELD < replies
last() { "$PY" -c 'import json, sys; r = [json.loads(l) for l in sys.stdin]; print(r[-1].get(sys.argv[1], ""))' "$1"; }
# decision ADDR: 1 allow, 2 deny (an allowed attempt is reported as a success of nobody's
# password: the connection closes, the attempt is voided or abandoned, on its own source)
decision() { W PRECHECK USER=alice SERVICE=sgtest "RHOST=$1" | last DECISION; }
fleet_lock() { # KIND KEY UNTIL [HOST] [ID]
        W FLEET_LOCK "KIND=$1" "KEY=$2" "UNTIL=$3" "HOST=${4:-$HOST}" "ID=${5:-1}" REASON=fleet_failures
}
rows() { sg_sql "SELECT count(*) FROM audit WHERE $1;"; }

# ---- FLEET_EXPORT ----
sg_auth alice 'wrong one' 192.0.2.50 || true
sg_auth bob "$SG_PW_BOB" 192.0.2.51 || fail "bob's login"
sgctl unlock --rhost 192.0.2.50 >/dev/null
max=$(sg_sql "SELECT max(id) FROM audit;")
check "setup: a few audit rows" test "$max" -ge 4
W FLEET_EXPORT ID=0 LIMIT=1000 >"$T/export.json" || fail "FLEET_EXPORT"
sg_sql -json "SELECT id, time_usec, event, reason, user, rhost, service, uid, detail, lower(hex(mac)) AS mac, epoch FROM audit ORDER BY id" >"$T/audit.json"
check "export from 0: every row in id order with its fields and MAC, then OK (count, highest id)" "$PY" - "$T/export.json" "$T/audit.json" "$max" <<'PYEOF'
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
want = json.load(open(sys.argv[2]))
rows, ok = got[:-1], got[-1]
assert all(r["type"] == "ROW" for r in rows), rows
assert [r["ID"] for r in rows] == [w["id"] for w in want], ([r["ID"] for r in rows], want)
for r, w in zip(rows, want):
    assert r["TIME"] == w["time_usec"] and r["EVENT"] == w["event"], (r, w)
    assert r["MAC"] == w["mac"] and len(r["MAC"]) == 64, (r, w)
    for f, c in (("REASON", "reason"), ("USER", "user"), ("RHOST", "rhost"), ("SERVICE", "service"),
                 ("DETAIL", "detail"), ("EPOCH", "epoch")):
        assert r.get(f) == w[c], (f, r, w)
assert ok["type"] == "OK" and ok["COUNT"] == len(rows) and ok["ID"] == int(sys.argv[3]), ok
PYEOF
W FLEET_EXPORT "ID=$((max - 2))" >"$T/export2.json"
check "export after max-2: exactly the two newest rows" "$PY" -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert [x["ID"] for x in r[:-1]] == [int(sys.argv[2]) - 1, int(sys.argv[2])] and r[-1]["COUNT"] == 2, r' "$T/export2.json" "$max"
check "export with LIMIT=2 from 0: rows 1 and 2, count 2" test "$(W FLEET_EXPORT ID=0 LIMIT=2 | "$PY" -c '
import json, sys; r = [json.loads(l) for l in sys.stdin]; print([x["ID"] for x in r[:-1]], r[-1]["COUNT"])')" = "[1, 2] 2"
check "export after the newest: nothing, OK with the highest id" test "$(W FLEET_EXPORT "ID=$max" | last ID)" = "$max"
check "LIMIT=0 is refused" ! W FLEET_EXPORT ID=0 LIMIT=0 >/dev/null
check "LIMIT=1001 is refused" ! W FLEET_EXPORT ID=0 LIMIT=1001 >/dev/null
check "ID is required" ! W FLEET_EXPORT LIMIT=5 >/dev/null

# ---- FLEET_LOCK refuses logins like a local lock ----
check "before: 192.0.2.7 allowed" test "$(decision 192.0.2.7)" = 1
now=$(now_us)
check "FLEET_LOCK source 192.0.2.7 for 10 min: OK" fleet_lock source 192.0.2.7 $((now + 600000000)) "$HOST" 41
check "PRECHECK from 192.0.2.7 is DENY" test "$(decision 192.0.2.7)" = 2
blocked0=$(rows "event = 'auth_blocked' AND rhost = '192.0.2.7'")
check "alice's right password from 192.0.2.7 fails through the real module" ! sg_auth alice "$SG_PW_ALICE" 192.0.2.7
check "... uniformly (the same message as a wrong password)" grep -q "Authentication failure" "$T/pam.out"
check "... audited auth_blocked, reason locked" test "$(rows "event = 'auth_blocked' AND reason = 'locked' AND rhost = '192.0.2.7'")" -gt "$blocked0"
check "another source still logs in" sg_auth alice "$SG_PW_ALICE" 192.0.2.8
check "fleet_lock row: reason source, rhost the key, decision and host in the detail" test \
        "$(rows "event = 'fleet_lock' AND reason = 'source' AND rhost = '192.0.2.7' AND detail LIKE 'source 192.0.2.7 locked fleet-wide until %(decision 41 from host $HOST, fleet_failures)'")" = 1
check "stored in fleet_locks" test "$(sg_sql "SELECT kind, key, origin_host, decision_id FROM fleet_locks;")" = "source|192.0.2.7|$HOST|41"
check "the same decision again: OK, no second row" fleet_lock source 192.0.2.7 $((now + 600000000)) "$HOST" 41
check "... still one fleet_lock row" test "$(rows "event = 'fleet_lock'")" = 1
check "secguardctl locks marks it a fleet lock" grep -Eq '^source \(fleet\) +192\.0\.2\.7 ' <(sgctl locks)
check "locks --json: origin fleet, host, decision" "$PY" -c '
import json, sys
r = [json.loads(l) for l in sys.stdin]
f = [x for x in r if x["key"] == "192.0.2.7"]
assert len(f) == 1 and f[0]["kind"] == "source" and f[0]["origin"] == "fleet" and f[0]["host"] == sys.argv[1] and f[0]["decision"] == 41, r' "$HOST" < <(sgctl --json locks)
check "an IPv6 address is keyed by its /64" fleet_lock spray 2001:db8:7:7::1 $((now + 600000000))
check "... stored as 2001:db8:7:7::/64" test "$(sg_sql "SELECT key FROM fleet_locks WHERE kind = 'spray';")" = "2001:db8:7:7::/64"
check "... and refuses another address of the /64" test "$(decision 2001:db8:7:7::99)" = 2

# ---- hostile decisions: refused, logged, audited, nothing locked ----
locks_before=$(sg_sql "SELECT count(*) FROM fleet_locks;")
hostile() { # KEYWORD DESCRIPTION FLEET_LOCK-ARGS...
        local kw=$1 what=$2 n0 logs0 out
        shift 2
        n0=$(rows "event = 'fleet_rejected' AND reason = '$kw'")
        logs0=$(grep -c "fleet decision from uid 0 rejected" "$T/daemon.log" || true)
        out=$(W FLEET_LOCK "$@") && fail "$what: accepted"
        check "$what: SG_ERR_INVALID with the reason" "$PY" -c '
import json, sys; r = json.loads(sys.argv[1]); assert r["type"] == "ERROR" and r["ERROR"] == 3 and "rejected" in r["DETAIL"], r' "$out"
        check "$what: fleet_rejected row, reason $kw" test "$(rows "event = 'fleet_rejected' AND reason = '$kw'")" = $((n0 + 1))
        check "$what: a log line" test "$(grep -c "fleet decision from uid 0 rejected" "$T/daemon.log")" -gt "$logs0"
        check "$what: nothing stored" test "$(sg_sql "SELECT count(*) FROM fleet_locks;")" = "$locks_before"
}
now=$(now_us)
hostile bad_key "invalid address" KIND=source KEY=192.0.2.300 UNTIL=$((now + 60000000)) HOST=$HOST ID=2
hostile bad_key "a host name" KIND=source KEY=attacker.example UNTIL=$((now + 60000000)) HOST=$HOST ID=2
hostile bad_key "control characters" KIND=source "KEY=$(printf '192.0.2.1\033[2J')" UNTIL=$((now + 60000000)) HOST=$HOST ID=2
hostile bad_until "until 10 years ahead" KIND=source KEY=192.0.2.60 UNTIL=$((now + 315360000000000)) HOST=$HOST ID=2
hostile bad_until "until in the past" KIND=source KEY=192.0.2.60 UNTIL=$((now - 1000000)) HOST=$HOST ID=2
hostile bad_host "bad host id (too short)" KIND=source KEY=192.0.2.60 UNTIL=$((now + 60000000)) HOST=abc ID=2
hostile bad_host "bad host id (upper case)" KIND=source KEY=192.0.2.60 UNTIL=$((now + 60000000)) HOST=0123456789ABCDEF0123456789ABCDEF ID=2
hostile bad_kind "bad kind (user)" KIND=user KEY=192.0.2.60 UNTIL=$((now + 60000000)) HOST=$HOST ID=2
hostile bad_kind "bad kind (garbage)" "KIND=source;x" KEY=192.0.2.60 UNTIL=$((now + 60000000)) HOST=$HOST ID=2
hostile bad_id "decision id 0" KIND=source KEY=192.0.2.60 UNTIL=$((now + 60000000)) HOST=$HOST ID=0
check "the rejected address is not locked" test "$(decision 192.0.2.60)" = 1
check "the escape sequence reached the log escaped" ! grep -q $'\033' "$T/daemon.log"

# ---- the allowlist wins ----
check "FLEET_LOCK of an allowlisted address: OK, detail allowlisted" test \
        "$(fleet_lock source 203.0.113.5 $((now + 600000000)) | last DETAIL)" = allowlisted
check "... PRECHECK from it still ALLOW" test "$(decision 203.0.113.5)" = 1
check "... and alice logs in from it" sg_auth alice "$SG_PW_ALICE" 203.0.113.5

# ---- FLEET_UNLOCK clears the fleet lock and the local one ----
check "FLEET_UNLOCK source 192.0.2.7: OK" W FLEET_UNLOCK KIND=source KEY=192.0.2.7 HOST=$HOST ID=42
check "... PRECHECK allowed again" test "$(decision 192.0.2.7)" = 1
check "... row gone from fleet_locks" test "$(sg_sql "SELECT count(*) FROM fleet_locks WHERE key = '192.0.2.7';")" = 0
check "... fleet_unlock row" test "$(rows "event = 'fleet_unlock' AND reason = 'source' AND rhost = '192.0.2.7' AND detail LIKE '%decision 42 from host $HOST%'")" = 1
for i in 1 2 3 4 5 6; do sg_auth alice "wrong $i" 192.0.2.9 || true; done
check "setup: a local source lock on 192.0.2.9" test "$(decision 192.0.2.9)" = 2
check "FLEET_UNLOCK of 192.0.2.9 (no fleet lock): OK" W FLEET_UNLOCK KIND=source KEY=192.0.2.9 HOST=$HOST ID=43
check "... the local lock is cleared too" test "$(decision 192.0.2.9)" = 1
check "a hostile FLEET_UNLOCK is refused too" ! W FLEET_UNLOCK KIND=source KEY=192.0.2.9 HOST=nothex ID=44

# ---- lifted lockouts (docs/state.md, "Lifted locks") ----
# The daemon's side: 5 failures, then the right password from the same source; the 6th
# attempt's reservation crosses source_max_failures = 6 in flight and its success lifts it.
for i in 1 2 3 4 5; do sg_auth alice "lift $i" 192.0.2.42 || true; done
check "the right password at the threshold gets in (the in-flight lock is its own)" sg_auth alice "$SG_PW_ALICE" 192.0.2.42
check "... audited: lockout of source 192.0.2.42, then unlock reason lifted" test \
        "$(sg_sql "SELECT group_concat(event || '/' || coalesce(reason, ''), ' ') FROM (SELECT event, reason FROM audit WHERE rhost = '192.0.2.42' AND event IN ('lockout', 'unlock', 'auth_success') ORDER BY id);")" = \
        "lockout/source auth_success/ unlock/lifted"
check "... the unlock row names kind and key" test \
        "$(rows "event = 'unlock' AND reason = 'lifted' AND rhost = '192.0.2.42' AND detail = 'source 192.0.2.42 lock lifted: the attempt that set it succeeded'")" = 1
check "... the lock row written back lifted (until 0)" test "$(sg_sql "SELECT until_usec FROM locks WHERE kind = 'source' AND key = '192.0.2.42';")" = 0
# (Not probed with PRECHECK: an abandoned probe is a 6th failure and would lock it for real.)
check "... 192.0.2.42 not locked" ! grep -q '192\.0\.2\.42' <(sgctl locks)
check "SIGTERM" sg_stop_daemon
sg_start_daemon
check "after a restart: still one unlock/lifted row (replay writes none)" test \
        "$(rows "event = 'unlock' AND reason = 'lifted' AND rhost = '192.0.2.42'")" = 1
check "... and 192.0.2.42 still not locked" ! grep -q '192\.0\.2\.42' <(sgctl locks)
check "... its lock row still lifted" test "$(sg_sql "SELECT until_usec FROM locks WHERE kind = 'source' AND key = '192.0.2.42';")" = 0
# alice's 5 failures still count on the source: bob's login crosses the threshold in flight again.
check "... bob's right password from it gets in" sg_auth bob "$SG_PW_BOB" 192.0.2.42
check "... that in-flight lock is lifted too: lockout and unlock/lifted rows pair up (2 each)" test \
        "$(rows "event = 'lockout' AND rhost = '192.0.2.42'")/$(rows "event = 'unlock' AND reason = 'lifted' AND rhost = '192.0.2.42'")" = 2/2
check "... and 192.0.2.42 is not locked" ! grep -q '192\.0\.2\.42' <(sgctl locks)

# FLEET_UNLOCK STATE=lifted: only the origin host's own fleet lock goes.
OTHER=fedcba9876543210fedcba9876543210
now=$(now_us)
fleet_lock source 192.0.2.43 $((now + 600000000)) "$OTHER" 60 >/dev/null || fail "fleet lock from another host"
check "lifted from a host that is not the lock's origin: OK, nothing cleared" test \
        "$(W FLEET_UNLOCK KIND=source KEY=192.0.2.43 HOST=$HOST ID=61 STATE=lifted | last COUNT)" = 0
check "... 192.0.2.43 still refused" test "$(decision 192.0.2.43)" = 2
check "... still stored" test "$(sg_sql "SELECT origin_host FROM fleet_locks WHERE key = '192.0.2.43';")" = "$OTHER"
check "... no fleet_unlock row" test "$(rows "event = 'fleet_unlock' AND rhost = '192.0.2.43'")" = 0
for i in 1 2 3 4 5 6; do sg_auth alice "local $i" 192.0.2.44 || true; done
check "setup: a local source lock on 192.0.2.44" test "$(decision 192.0.2.44)" = 2
fleet_lock source 192.0.2.44 $((now + 600000000)) "$HOST" 62 >/dev/null || fail "fleet lock on a locally locked source"
check "lifted from the fleet lock's origin: OK, one cleared" test \
        "$(W FLEET_UNLOCK KIND=source KEY=192.0.2.44 HOST=$HOST ID=63 STATE=lifted | last COUNT)" = 1
check "... the fleet lock is gone" test "$(sg_sql "SELECT count(*) FROM fleet_locks WHERE key = '192.0.2.44';")" = 0
check "... this host's own lock stays" test "$(decision 192.0.2.44)" = 2
check "... fleet_unlock row saying so" test \
        "$(rows "event = 'fleet_unlock' AND rhost = '192.0.2.44' AND detail LIKE '%lifted on host $HOST (decision 63)%local locks untouched'")" = 1
n0=$(rows "event = 'fleet_rejected' AND reason = 'bad_state'")
check "another STATE is refused" ! W FLEET_UNLOCK KIND=source KEY=192.0.2.43 HOST=$OTHER ID=64 STATE=revoked
check "... audited fleet_rejected, bad_state" test "$(rows "event = 'fleet_rejected' AND reason = 'bad_state'")" = $((n0 + 1))
check "... 192.0.2.43 still refused" test "$(decision 192.0.2.43)" = 2

# ---- durable across restart and reload; expiry ----
now=$(now_us)
fleet_lock source 192.0.2.20 $((now + 5000000)) >/dev/null || fail "short fleet lock"
fleet_lock source 192.0.2.21 $((now + 600000000)) >/dev/null || fail "long fleet lock"
check "SIGTERM" sg_stop_daemon
sg_start_daemon
check "after a restart 192.0.2.21 is still refused" test "$(decision 192.0.2.21)" = 2
check "... and 192.0.2.20 (not expired yet)" test "$(decision 192.0.2.20)" = 2
check "... both listed as fleet locks" test "$(sgctl --json locks | grep -c '"origin":"fleet"')" -ge 2
kill -HUP "$SG_DAEMON_PID"
sleep 0.3
check "after a reload 192.0.2.21 is still refused" test "$(decision 192.0.2.21)" = 2
while [ "$(now_us)" -le $((now + 5200000)) ]; do sleep 0.2; done
check "192.0.2.20 is allowed once its fleet lock ended" test "$(decision 192.0.2.20)" = 1
check "... and no longer listed" ! grep -q '192\.0\.2\.20' <(sgctl locks)

# ---- who may ask ----
denied0=$(rows "event = 'peer_denied'")
check "a non-root, non-fleet peer is refused FLEET_LOCK" test "$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$PY" "$T/sg_wire.py" "$SOCK" FLEET_LOCK KIND=source KEY=192.0.2.30 UNTIL=$((now + 600000000)) HOST=$HOST ID=5 | last ERROR)" = 2
check "... and FLEET_EXPORT" ! setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$PY" "$T/sg_wire.py" "$SOCK" FLEET_EXPORT ID=0 >/dev/null
check "... audited peer_denied (uid 65534)" test "$(rows "event = 'peer_denied' AND uid = 65534")" -ge 1
check "... nothing locked" test "$(decision 192.0.2.30)" = 1
check "the [fleet] user (daemon) may export" setpriv --reuid=daemon --regid=daemon --clear-groups \
        "$PY" "$T/sg_wire.py" "$SOCK" FLEET_EXPORT ID=0 LIMIT=1
check "... and lock" setpriv --reuid=daemon --regid=daemon --clear-groups \
        "$PY" "$T/sg_wire.py" "$SOCK" FLEET_LOCK KIND=source KEY=192.0.2.31 UNTIL=$((now + 600000000)) HOST=$HOST ID=6
check "... but not unlock locally nor list locks" ! setpriv --reuid=daemon --regid=daemon --clear-groups \
        "$PY" "$T/sg_wire.py" "$SOCK" UNLOCK KIND=source KEY=192.0.2.31
check "... peer_denied for the fleet user too" test "$(rows "event = 'peer_denied' AND uid = 1")" -ge 1
check "... 192.0.2.31 stays locked" test "$(decision 192.0.2.31)" = 2

# ---- secguardctl unlock --fleet ----
check "unlock --rhost 192.0.2.21 --fleet" sgctl unlock --rhost 192.0.2.21 --fleet
check "... clears the fleet lock here" test "$(decision 192.0.2.21)" = 1
check "... audit unlock, reason fleet, rhost the address" test "$(rows "event = 'unlock' AND reason = 'fleet' AND rhost = '192.0.2.21'")" = 1
check "unlock --fleet with nothing locked here still writes the row" sgctl unlock --rhost 192.0.2.99 --fleet
check "... reason fleet" test "$(rows "event = 'unlock' AND reason = 'fleet' AND rhost = '192.0.2.99'")" = 1
check "a plain unlock --rhost clears a fleet lock here too, without reason fleet" sgctl unlock --rhost 192.0.2.31
check "... 192.0.2.31 allowed" test "$(decision 192.0.2.31)" = 1
check "... its unlock row has no reason" test "$(rows "event = 'unlock' AND reason IS NULL AND rhost = '192.0.2.31'")" = 1
check "unlock USER --fleet is a usage error" ! sgctl unlock alice --fleet
check "UNLOCK with FLEET=2 is refused" ! W UNLOCK KIND=source KEY=192.0.2.31 FLEET=2 >/dev/null
check "the audit chain is intact" sgctl audit verify >/dev/null

# ---- a flood of hostile decisions is refused but does not flood the trail ----
rej0=$(rows "event = 'fleet_rejected'")
now=$(now_us)
"$PY" - "$SOCK" "$T/sg_wire.py" $((now - 1000000)) "$HOST" <<'PYEOF' || fail "flood client"
import importlib.util, socket, sys
spec = importlib.util.spec_from_file_location("w", sys.argv[2]); w = importlib.util.module_from_spec(spec); spec.loader.exec_module(w)
for i in range(60):
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
    s.sendall(w.encode(18, [(18, "s", "source"), (19, "s", "192.0.2.%d" % (100 + i)), (14, "u", sys.argv[3]),
                            (40, "s", sys.argv[4]), (26, "u", "9")]))
    hdr = w.recv_exact(s, 8)
    assert hdr and hdr[3] == 0x81, hdr
    s.close()
PYEOF
rej1=$(rows "event = 'fleet_rejected'")
check "60 hostile decisions: at most a burst of rows ($((rej1 - rej0)))" test $((rej1 - rej0)) -le 25
check "... one log line says the rest are counted" grep -q "invalid fleet decisions at once" "$T/daemon.log"
check "SIGTERM" sg_stop_daemon
check "... the rest are summarized in one row at shutdown" test \
        "$(rows "event = 'fleet_rejected' AND detail LIKE '% similar events from uid 0 suppressed'")" = 1

sg_done
