#!/bin/bash
# Foundation: the daemon starts, answers status, refuses non-root peers, keeps its database
# across restarts, reloads on SIGHUP, stops cleanly on SIGTERM, and validates its config.
. "$(dirname "$0")/lib.sh"
sg_setup

# --check-config: valid, unknown key, bad value (file:line in the message).
check "--check-config accepts the test config" "$SECGUARDD" --check-config --config "$T/secguard.conf"
printf '[daemon]\nsocket = /run/x.sock\n[auth]\nno_such_key = 1\n' >"$T/bad.conf"
out=$("$SECGUARDD" --check-config --config "$T/bad.conf" 2>&1) && fail "unknown key accepted"
check "unknown key named with file:line" grep -q "bad.conf:4" <<<"$out"
printf '[ratelimit]\nwindow = 15 fortnights\n' >"$T/bad2.conf"
out=$("$SECGUARDD" --check-config --config "$T/bad2.conf" 2>&1) && fail "bad duration accepted"
check "bad value named with file:line" grep -q "bad2.conf:2" <<<"$out"
out=$("$SECGUARDD" --check-config --config "$T/missing.conf" 2>&1) && fail "missing explicit config accepted"
check "missing explicit config refused" grep -q "missing.conf" <<<"$out"

sg_start_daemon
check "socket is 0666 (gated by peer checks)" test "$(stat -c %a "$T/run/secguardd.sock")" = 666
check "database is 0600" test "$(stat -c %a "$T/state/secguard.db")" = 600
check "audit key is 0600" test "$(stat -c %a "$T/state/audit.key")" = 600
check "WAL mode" test "$(sg_sql 'PRAGMA journal_mode;')" = wal
check "schema version set" test "$(sg_sql 'PRAGMA user_version;')" -ge 1

out=$(sgctl status)
check "status names the version" grep -q "^secguardd 0\." <<<"$out"
check "status shows the config in force" grep -q "ratelimit.window=" <<<"$out"
json=$(sgctl --json status)
check "status --json is one valid JSON object" $PY -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["hash_permits"]>=1 and "uptime_sec" in d' <<<"$json"

# A non-root client is refused (and audited) for root-only requests and read-only views.
rc=0
sgctl_as_nobody status >/dev/null 2>"$T/err" || rc=$?
check "non-root status refused with exit 4" test "$rc" -eq 4
rc=0
sgctl_as_nobody unlock alice >/dev/null 2>&1 || rc=$?
check "non-root unlock refused with exit 4" test "$rc" -eq 4
check "peer_denied audited with the peer uid" \
        $PY -c 'import json,sys; rows=[json.loads(l) for l in sys.stdin]; assert any(r.get("uid")==65534 for r in rows), rows' \
        < <(sgctl --json audit --event peer_denied)

# A login, then restart: the database and its rows survive.
check "login succeeds" sg_auth alice "$SG_PW_ALICE"
rows_before=$(sg_sql 'SELECT count(*) FROM audit;')
check "SIGTERM exits 0" sg_stop_daemon
sg_start_daemon
rows_after=$(sg_sql 'SELECT count(*) FROM audit;')
check "restart keeps the audit rows (before $rows_before, after $rows_after)" test "$rows_after" -gt "$rows_before"
check "auth_success survived the restart" test "$(sg_audit_count --event auth_success --user alice)" -eq 1
check "daemon_stop and daemon_start recorded" test "$(sg_audit_count --event daemon_start)" -eq 2
check "audit chain intact after restart" sgctl audit verify

# SIGHUP reloads (a bad file keeps the old config, the daemon stays up).
sed -i 's/^timeout_ms = .*/timeout_ms = 2500/' "$T/secguard.conf"
kill -HUP "$SG_DAEMON_PID"
sleep 0.3
check "SIGHUP applied the new config" grep -q "daemon.timeout_ms=2500" <(sgctl status)
cp "$T/secguard.conf" "$T/good.conf"
echo "bogus line without equals" >>"$T/secguard.conf"
kill -HUP "$SG_DAEMON_PID"
sleep 0.3
check "bad config on SIGHUP: daemon still answers" "$SECGUARDCTL" --config "$T/good.conf" status >/dev/null
check "bad config on SIGHUP: logged" grep -q "keeping the config in force" "$T/daemon.log"
sed -i '$d' "$T/secguard.conf"

# A second daemon on the same socket refuses to start.
rc=0
timeout 5 "${SG_DAEMON_WRAP[@]}" "$SECGUARDD" --config "$T/secguard.conf" --log-target stderr 2>"$T/second.log" || rc=$?
check "second daemon refuses the busy socket" test "$rc" -ne 0
check "second daemon says why" grep -q "already listening" "$T/second.log"
sg_stop_daemon

# Socket activation: systemd passes the listening socket.
rm -f "$T/run/secguardd.sock"
systemd-socket-activate -l "$T/run/secguardd.sock" "${SG_DAEMON_WRAP[@]}" "$SECGUARDD" --config "$T/secguard.conf" --log-target stderr >>"$T/daemon.log" 2>&1 &
SG_DAEMON_PID=$!
# The socket file appears at bind(), a moment before systemd-socket-activate listens: until
# then a connect is refused, so retry (each try is bounded by secguardctl's own timeout).
answers() {
        local i
        for i in $(seq 1 "$SG_START_TRIES"); do
                sgctl status >/dev/null 2>&1 && return 0
                sleep 0.05
        done
        sgctl status >/dev/null
}
check "socket-activated daemon answers" answers
check "socket-activated start logged" grep -q "listening on the socket from systemd" "$T/daemon.log"
sg_stop_daemon || true

# sd_notify: READY=1 once serving, STOPPING=1 on SIGTERM.
rm -f "$T/run/secguardd.sock"
$PY - "$T/notify.sock" >"$T/notify.log" <<'PYEOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(10)
got = []
try:
    while "STOPPING=1" not in got:
        got += s.recv(4096).decode().split("\n")
except socket.timeout:
    pass
print(" ".join(got))
PYEOF
listener=$!
for _ in $(seq 1 50); do [ -S "$T/notify.sock" ] && break; sleep 0.05; done
NOTIFY_SOCKET="$T/notify.sock" "${SG_DAEMON_WRAP[@]}" "$SECGUARDD" --config "$T/secguard.conf" --log-target stderr >>"$T/daemon.log" 2>&1 &
SG_DAEMON_PID=$!
for _ in $(seq 1 100); do sgctl status >/dev/null 2>&1 && break; sleep 0.05; done
sg_stop_daemon
wait "$listener" || true
check "sd_notify READY=1 sent" grep -q "READY=1" "$T/notify.log"
check "sd_notify STOPPING=1 sent on SIGTERM" grep -q "STOPPING=1" "$T/notify.log"

# Unsafe state directory: refused with the path and the fix.
chmod 0777 "$T/state"
rc=0
timeout 5 "${SG_DAEMON_WRAP[@]}" "$SECGUARDD" --config "$T/secguard.conf" --log-target stderr 2>"$T/unsafe.log" || rc=$?
check "world-writable state dir refused" test "$rc" -ne 0
check "refusal names the path and chmod" grep -q "$T/state.*chmod" "$T/unsafe.log"
chmod 0700 "$T/state"

sg_done
