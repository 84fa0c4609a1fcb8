#!/bin/bash
# Brute-force protection through the real module and daemon: exact thresholds, parallel
# guesses, persistence across kill -9, backoff, allowlist, spraying, IPv6 grouping, unlock,
# and the policy when the daemon is down.
. "$(dirname "$0")/lib.sh"
RL=("[ratelimit]" "window = 15m" "lock_time = 60s" "lock_max = 1h" "history = 1d"
    "user_max_failures = 1000" "user_source_max_failures = 3" "source_max_failures = 8"
    "spray_max_users = 4" "delay_step_ms = 0" "allowlist = 203.0.113.0/24, 2001:db8:ffff::/48")
sg_setup "${RL[@]}"
sg_start_daemon
SOCK="$T/run/secguardd.sock"

# Raw protocol client, as root (the module's role), for what pamtester cannot show: the exact
# decision and delay of a reply, and many attempts quickly.
#   fail USER RHOST N           N attempts reported as wrong passwords
#   precheck USER RHOST         prints "decision delay_ms" (an ALLOW is reported as a failure)
#   overload HUSER HRHOST USER RHOST
#                               holds the only permit with the first attempt, prints the
#                               "decision delay_ms" of the second (which waits it out)
cat >"$T/sgraw.py" <<'PYEOF'
import socket, struct, sys
def field(tag, v): return bytes([tag]) + struct.pack(">H", len(v)) + v
def u64(tag, v): return field(tag, struct.pack(">Q", v))
def frame(t, f=b""): return b"SG" + bytes([1, t]) + struct.pack(">I", len(f)) + f
def conn():
    s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1]); return s
def recv_frame(s):
    buf = b""
    while len(buf) < 8 or len(buf) < 8 + struct.unpack(">I", buf[4:8])[0]:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("connection closed")
        buf += chunk
    typ, n = buf[3], struct.unpack(">I", buf[4:8])[0]
    fields, i = {}, 8
    while i < 8 + n:
        tag, ln = buf[i], struct.unpack(">H", buf[i + 1:i + 3])[0]
        fields[tag] = buf[i + 3:i + 3 + ln]; i += 3 + ln
    return typ, fields
def val(f, tag): return struct.unpack(">Q", f[tag])[0] if tag in f else 0
def precheck(s, user, rhost):
    s.sendall(frame(1, field(1, user.encode()) + field(4, b"sshd") + field(2, rhost.encode())))
    typ, f = recv_frame(s)
    assert typ == 0x80, (typ, f)
    return val(f, 8), val(f, 9)
def report_failure(s, reason=b"bad_password"):
    s.sendall(frame(2, u64(6, 2) + field(7, reason)))
    typ, f = recv_frame(s)
    assert typ == 0x80, (typ, f)
cmd = sys.argv[2]
if cmd == "fail":
    for _ in range(int(sys.argv[5])):
        s = conn(); d, _ = precheck(s, sys.argv[3], sys.argv[4])
        if d == 1:
            report_failure(s)
        s.close()
elif cmd == "precheck":
    s = conn(); d, delay = precheck(s, sys.argv[3], sys.argv[4])
    if d == 1:
        report_failure(s)
    print(d, delay)
elif cmd == "overload":
    hold = conn(); d, _ = precheck(hold, sys.argv[3], sys.argv[4])
    assert d == 1, d
    s = conn(); d, delay = precheck(s, sys.argv[5], sys.argv[6])
    if d == 3:
        report_failure(s, b"overload")
    report_failure(hold)
    print(d, delay)
PYEOF
sgraw() { $PY "$T/sgraw.py" "$SOCK" "$@"; }

# Threshold reached exactly: 3 failures hashed, then locked even with the right password.
for i in 1 2 3; do sg_auth alice wrong 192.0.2.1 && fail "wrong password accepted"; done
wrong_out=$(grep -v '^PWRAP_' "$T/pam.out" || true) # what the application saw (pam_wrapper's own lines aside)
check "3 failures: 3 hashed (bad_password)" test "$(sgctl --json audit --user alice --event auth_failure | grep -c bad_password)" -eq 3
check "after the threshold the right password is refused" ! sg_auth alice "$SG_PW_ALICE" 192.0.2.1
check "the locked attempt shows the application exactly what a wrong password shows" \
        test -n "$wrong_out" -a "$(grep -v '^PWRAP_' "$T/pam.out" || true)" = "$wrong_out"
check "the refusal is audited as auth_blocked" test "$(sg_audit_count --event auth_blocked --user alice)" -eq 1
check "lockout audited" test "$(sg_audit_count --event lockout)" -eq 1
check "same user from another source still gets in" sg_auth alice "$SG_PW_ALICE" 192.0.2.2
check "locks lists alice@192.0.2.1" grep -q 'alice@192.0.2.1' <(sgctl locks)
check "locks --json" $PY -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]; assert r[0]["kind"]=="user_source" and r[0]["key"]=="alice@192.0.2.1", r' < <(sgctl --json locks)

# The lock survives kill -9 and restart.
sg_kill9_daemon
sg_start_daemon
check "lock survives kill -9" ! sg_auth alice "$SG_PW_ALICE" 192.0.2.1
check "locks still listed after restart" grep -q 'alice@192.0.2.1' <(sgctl locks)

# Unlock (root, audited) lets alice back in from that source.
check "unlock alice" sgctl unlock alice
check "unlock audited" test "$(sg_audit_count --event unlock)" -ge 1
check "after unlock the right password works" sg_auth alice "$SG_PW_ALICE" 192.0.2.1
rc=0; sgctl unlock bob >/dev/null 2>&1 || rc=$?
check "unlocking a user with nothing recorded fails (exit 1)" test "$rc" -eq 1

# 50 parallel wrong guesses: at most the threshold are hashed.
before=$(sgctl --json audit --user bob --event auth_failure --limit 100000 | grep -c bad_password || true)
pids=()
for i in $(seq 1 50); do
        sg_auth bob wrong 198.51.100.7 &
        pids+=($!)
done
accepted=0
for p in "${pids[@]}"; do wait "$p" && accepted=$((accepted + 1)); done
hashed=$(( $(sgctl --json audit --user bob --event auth_failure --limit 100000 | grep -c bad_password || true) - before ))
blocked=$(sg_audit_count --event auth_blocked --user bob)
overload=$(sgctl --json audit --user bob --event auth_failure --limit 100000 | grep -c '"overload"' || true)
# Under a slow (sanitizer) build some attempts wait past permit_wait_ms: they fail as
# "overload", also without a hash. None may succeed and at most 3 may be hashed.
check "50 parallel guesses: none accepted, $hashed hashed (<= 3), $blocked blocked, $overload overload" \
        test "$accepted" -eq 0 -a "$hashed" -le 3 -a "$hashed" -ge 1

# Allowlisted sources are never locked.
for i in $(seq 1 12); do sg_auth carol wrong 203.0.113.5 || true; done
check "allowlisted IPv4 never locked" sg_auth carol "$SG_PW_CAROL" 203.0.113.5
for i in $(seq 1 12); do sg_auth carol wrong 2001:db8:ffff:1::5 || true; done
check "allowlisted IPv6 CIDR never locked" sg_auth carol "$SG_PW_CAROL" 2001:db8:ffff:1::5

# Spraying: one source, many users.
for u in u1 u2 u3 u4; do sg_auth "$u" guess 192.0.2.99 || true; done
check "spraying source locked for everyone" ! sg_auth carol "$SG_PW_CAROL" 192.0.2.99
check "spray lock listed" grep -q '^spray' <(sgctl locks)
check "unlock --rhost clears it" sgctl unlock --rhost 192.0.2.99
check "after unlock --rhost the source may log in" sg_auth carol "$SG_PW_CAROL" 192.0.2.99

# IPv6: a /64 counts as one source.
users=(alice bob carol root alice bob carol root)
for i in $(seq 0 7); do sg_auth "${users[$i]}" wrong "2001:db8:1:2::$((i + 1))" || true; done
check "another address in the same /64 is locked" ! sg_auth bob "$SG_PW_BOB" 2001:db8:1:2::abcd
check "a different /64 is not" sg_auth bob "$SG_PW_BOB" 2001:db8:1:3::1
check "the /64 is listed as the key" grep -q '2001:db8:1:2::/64' <(sgctl locks)

# unlock --rhost clears the (user, source) locks of that source too, not only the source's own
# locks, and says how many it cleared; other sources' pairs stay locked.
for u in carol dave; do for i in 1 2 3; do sg_auth "$u" wrong 192.0.2.33 || true; done; done
for i in 1 2 3; do sg_auth carol wrong 192.0.2.34 || true; done
check "setup: carol@ and dave@192.0.2.33 locked" test "$(sgctl locks | grep -c '@192\.0\.2\.33')" -eq 2
check "unlock --rhost 192.0.2.33" sgctl unlock --rhost 192.0.2.33 >"$T/unlock.out"
sg_log "secguardctl: $(cat "$T/unlock.out")"
check "secguardctl says how many locks it cleared" grep -Eq '^unlocked 192\.0\.2\.33: [0-9]+ locks? cleared' "$T/unlock.out"
check "no lock of 192.0.2.33 is left" ! grep -q '192\.0\.2\.33' <(sgctl locks)
check "carol@192.0.2.34 is still locked" grep -q 'carol@192\.0\.2\.34' <(sgctl locks)
check "the unlock audit row counts the locks cleared (2)" grep -q '"detail":"2 locks cleared' \
        <(sgctl --json audit --event unlock --rhost 192.0.2.33)
sg_kill9_daemon
sg_start_daemon
check "the pair unlock is durable (kill -9)" ! grep -q '192\.0\.2\.33' <(sgctl locks)
check "carol logs in from 192.0.2.33 after unlock --rhost" sg_auth carol "$SG_PW_CAROL" 192.0.2.33
check "carol@192.0.2.34 still refused" ! sg_auth carol "$SG_PW_CAROL" 192.0.2.34

# Host names (sshd with UseDNS yes) are one source however spelt, and unlock --rhost takes them.
sg_auth carol wrong Attacker.Example || true
sg_auth carol wrong attacker.example. || true
sg_auth carol wrong ATTACKER.EXAMPLE || true
check "a host name's failures count together across case and a trailing dot" \
        grep -q 'carol@attacker\.example' <(sgctl locks)
check "... and lock every spelling" ! sg_auth carol "$SG_PW_CAROL" attacker.Example
check "unlock --rhost takes a host name" sgctl unlock --rhost Attacker.Example
check "carol logs in from that host after the unlock" sg_auth carol "$SG_PW_CAROL" attacker.example

# unlock USER clears every pair lock of the user, however many (there was a cap of 64).
for i in $(seq 1 70); do sgraw fail mallory "198.18.0.$i" 3; done
check "setup: 70 pair locks of mallory" test "$(sgctl locks | grep -c 'mallory@')" -eq 70
check "unlock mallory" sgctl unlock mallory
check "unlock mallory left no pair lock" test "$(sgctl locks | grep -c 'mallory@' || true)" -eq 0
check "the unlock audit row counts the locks cleared (70)" grep -q '"detail":"70 locks cleared' \
        <(sgctl --json audit --event unlock --user mallory)

# A locked attempt waits as long as a wrong password at that point would (so the lock cannot
# be seen by timing); so does one that fails as overload. fail_delay_ms is 0 here, so the
# growing delay (delay_step_ms per failure of the user or the pair) is all of it. PAM varies
# a requested delay by up to +-50%, hence the lower bounds at half the nominal delay.
sg_stop_daemon
sg_write_config "${RL[@]/delay_step_ms = 0/delay_step_ms = 300}" "delay_max_ms = 5000" \
        "[daemon]" "hash_permits = 1" "permit_wait_ms = 200"
sg_start_daemon
timed_auth() {
        local t0
        t0=$(date +%s%N)
        sg_auth "$@" || true
        echo $((($(date +%s%N) - t0) / 1000000))
}
for i in 1 2; do sg_auth gina wrong 192.0.2.77 || true; done
wrong_ms=$(timed_auth gina wrong 192.0.2.77) # 3rd failure: 2 x 300 ms; it creates the lock
locked_ms=$(timed_auth gina wrong 192.0.2.77) # locked: as a 4th failure, 3 x 300 ms
check "the last wrong password before the lock waited (${wrong_ms} ms, nominal 600)" \
        test "$wrong_ms" -ge 300 -a "$wrong_ms" -lt 5000
check "the locked attempt waited like a 4th failure (${locked_ms} ms, nominal 900, >= 450)" \
        test "$locked_ms" -ge 450 -a "$locked_ms" -lt 5000
check "and it was refused as locked" test "$(sg_audit_count --event auth_blocked --user gina)" -eq 1
check "DENY carries the delay a 4th failure would get (900 ms)" test "$(sgraw precheck gina 192.0.2.77)" = "2 900"
sgraw fail erin 192.0.2.78 2
check "OVERLOAD carries the attempt's delay (2 failures: 600 ms)" \
        test "$(sgraw overload frank 192.0.2.79 erin 192.0.2.78)" = "3 600"
# Backoff: a repeat offender's second lock is longer.
sg_stop_daemon
SG_TIMEOUT_MS=1500 sg_write_config "${RL[@]/lock_time = 60s/lock_time = 1s}"
sg_start_daemon
for i in 1 2 3; do sg_auth carol wrong 192.0.2.50 || true; done
first=$(sg_sql "SELECT until_usec - last_lock_usec FROM locks WHERE key = 'carol@192.0.2.50';")
sleep 1.3
for i in 1 2 3; do sg_auth carol wrong 192.0.2.50 || true; done
second=$(sg_sql "SELECT until_usec - last_lock_usec FROM locks WHERE key = 'carol@192.0.2.50';")
level=$(sg_sql "SELECT level FROM locks WHERE key = 'carol@192.0.2.50';")
check "backoff: second lock ($second us) = 2 x first ($first us), level $level" test "$second" -eq $((first * 2)) -a "$level" -eq 2

# A daemon that stalls (SIGSTOP) cannot hang a login past timeout_ms (1500 ms here).
kill -STOP "$SG_DAEMON_PID"
start=$(date +%s%N)
check "stalled daemon: remote login refused" ! sg_auth alice "$SG_PW_ALICE" 192.0.2.1
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
kill -CONT "$SG_DAEMON_PID"
check "stalled daemon: gave up within the timeout (${elapsed} ms, limit 1500 + process start)" test "$elapsed" -lt 2500
check "stalled daemon: answers again after SIGCONT" sgctl status >/dev/null

# Daemon down: deny remote within the timeout; allow_local lets root in at a console only.
sg_stop_daemon
SG_TIMEOUT_MS=1500 sg_write_config "[daemon]" "unreachable = allow_local"
start=$(date +%s%N)
check "daemon down: remote login refused" ! sg_auth alice "$SG_PW_ALICE" 192.0.2.1
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
check "daemon down: answer within the timeout (${elapsed} ms)" test "$elapsed" -lt 2000
check "daemon down: local non-root refused" ! sg_auth alice "$SG_PW_ALICE"
console_root() { printf '%s\n' "$2" | sg_pam -I "tty=$1" root authenticate >"$T/pam.out" 2>&1; }
check "daemon down: root at the console allowed (allow_local, tty1)" console_root tty1 "$SG_PW_ROOT"
check "daemon down: root at a serial console allowed (/dev/ttyS0)" console_root /dev/ttyS0 "$SG_PW_ROOT"
check "daemon down: root at the console with a wrong password refused" ! console_root tty1 wrong
check "daemon down: root on a pseudo-terminal (su inside ssh) refused" ! console_root /dev/pts/0 "$SG_PW_ROOT"
check "daemon down: root without a tty refused" ! sg_auth root "$SG_PW_ROOT"
check "daemon down: remote root refused" ! sg_auth root "$SG_PW_ROOT" 192.0.2.1

sg_done
