#!/bin/bash
# Availability: no local user can pin the hash permits or the connection slots and so block
# other people's logins. Local logins run through the real module as a setuid su would (real
# uid of the attacker, effective uid 0), and are stopped with SIGSTOP while they hash.
. "$(dirname "$0")/lib.sh"
sg_private_tmp "$@"
sg_setup "[daemon]" "hash_permits = 2" "permit_wait_ms = 300" "permit_lease_ms = 3000" \
        "max_connections = 32" "max_connections_per_uid = 8" "admin_group = adm" \
        "[ratelimit]" "user_max_failures = 1000" "source_max_failures = 1000" \
        "user_source_max_failures = 1000" "delay_step_ms = 0"
# A user whose hash takes seconds (argon2id t=16, 128 MiB, within the default cost caps),
# so a login can be stopped while it holds a permit.
printf '[auth]\nargon2_opslimit = 16\nargon2_memlimit = 128M\n' >"$T/slow.conf"
echo "slow:$(printf '%s\n' 'slow user pw' | "$SECGUARDCTL" --config "$T/slow.conf" hash):20000:0:99999:7:::" >>"$T/shadow"
sg_start_daemon

STOPPED=()
cleanup_stopped() {
        local p
        for p in "${STOPPED[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
        STOPPED=()
}
trap 'cleanup_stopped; sg_cleanup' EXIT

# su_login UID USER PASSWORD TTY: a local login through the module as su run by UID would
# make it (real uid UID, effective uid 0); in the background, pid in $! (setpriv and env
# exec, so it is pam_run's own pid; the EXIT trap kills what is left).
su_login() {
        printf '%s\n' "$3" | setpriv --ruid="$1" env LD_PRELOAD="${SG_SANITIZE:+$SG_LIBASAN:}libnss_wrapper.so" \
                ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" \
                NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
                "$SG_BUILD/tests/integration/pam_run" "$T/pam.d" sgtest "$2" authenticate "" "$4" \
                >/dev/null 2>&1 &
}
permits_in_use() { sgctl --json status | grep -o '"hash_permits_used":[0-9]*' | cut -d: -f2; }
# Waits up to 5 s (60 s under valgrind) for N permits in use.
wait_permits() {
        local i
        for i in $(seq 1 "${SG_VALGRIND:+1200}${SG_VALGRIND:-100}"); do
                [ "$(permits_in_use)" = "$1" ] && return 0
                sleep 0.05
        done
        return 1
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# ---- 1. Two local users each start su to a slow account and stop it while it hashes ----
su_login 1000 slow 'slow user pw' pts/3
p1=$!
STOPPED+=("$p1")
wait_permits 1 || fail "the first su login never got a permit"
kill -STOP "$p1"
su_login 1001 slow 'slow user pw' pts/4
p2=$!
STOPPED+=("$p2")
sleep 0.5
kill -STOP "$p2" 2>/dev/null || true
check "local logins together hold at most half of the permits (1 of 2)" test "$(permits_in_use)" = 1
t0=$(date +%s%N)
check "root at the console logs in while they are stopped" sg_auth_direct root "$SG_PW_ROOT" "" 
ms=$(ms_since "$t0")
check "  ... without waiting for a permit (${ms} ms, permit_wait_ms 300)" test "$ms" -lt "${SG_VALGRIND:+20000}${SG_VALGRIND:-2000}"
check "a remote login works too" sg_auth alice "$SG_PW_ALICE" 192.0.2.5

# The lease: 3 s after its go-ahead the stopped login loses its permit.
for i in $(seq 1 "${SG_VALGRIND:+600}${SG_VALGRIND:-100}"); do
        [ "$(permits_in_use)" = 0 ] && break
        sleep 0.1
done
check "the stopped login's permit is taken back after permit_lease_ms" test "$(permits_in_use)" = 0
check "  ... and recorded as abandoned, with the reason" \
        grep -q 'past permit_lease_ms' <(sgctl --json audit --user slow --event auth_failure)
kill -CONT "$p1" 2>/dev/null || true
check "the stopped login, continued, is refused (its connection was closed)" ! wait "$p1"
kill -CONT "$p2" 2>/dev/null || true
wait "$p2" || true
STOPPED=()

# ---- 2. One user may have at most 2 local logins in progress ----
sg_stop_daemon
sed -i 's/^hash_permits = 2$/hash_permits = 8/' "$T/secguard.conf"
sg_start_daemon
for tty in pts/5 pts/6 pts/7; do
        su_login 1002 slow 'slow user pw' "$tty"
        STOPPED+=("$!")
done
wait_permits 2 || true
sleep 0.3
for p in "${STOPPED[@]}"; do kill -STOP "$p" 2>/dev/null || true; done
check "a third local login of the same user is refused while two are in progress" \
        test "$(permits_in_use)" = 2
check "  ... audited as overload with the reason" \
        grep -q 'local logins in progress already' <(sgctl --json audit --user slow --event auth_failure)
cleanup_stopped

# ---- 3. Connection slots: a quarter stays for root; peers that may ask nothing are closed ----
# Uids 20001-20004 in the admin group (adm) hold 8 connections each: 32 = max_connections.
$PY - "$T/run/secguardd.sock" "$T/crowd.ready" >"$T/crowd.log" 2>&1 <<'PYEOF' &
import os, socket, sys, time
path, ready = sys.argv[1], sys.argv[2]
r, w = os.pipe()
kids = []
for uid in range(20001, 20005):
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setgroups([4]); os.setgid(65534); os.setuid(uid)
        socks, busy = [], 0
        for i in range(8):
            s = socket.socket(socket.AF_UNIX); s.connect(path); socks.append(s)
        time.sleep(0.5)
        for s in socks:
            s.setblocking(False)
            try:
                d = s.recv(100)
                if len(d) >= 8 and d[3] == 0x81:
                    busy += 1
            except BlockingIOError:
                pass
        os.write(w, b"%d %d\n" % (uid, busy))
        time.sleep(20)
        os._exit(0)
    kids.append(pid)
os.close(w)
f = os.fdopen(r)
print("".join(f.readline() for _ in kids), end="", flush=True)  # one "uid refused" line each
open(ready, "w").close()
for pid in kids:
    os.waitpid(pid, 0)
PYEOF
crowd=$!
for i in $(seq 1 200); do [ -e "$T/crowd.ready" ] && [ "$(wc -l <"$T/crowd.log")" -ge 4 ] && break; sleep 0.05; done
t0=$(date +%s%N)
check "root's secguardctl status answers while other users hold every slot they may" sgctl status
check "  ... in $(ms_since "$t0") ms" test "$(ms_since "$t0")" -lt "${SG_VALGRIND:+20000}${SG_VALGRIND:-2000}"
check "a login works too" sg_auth alice "$SG_PW_ALICE" 192.0.2.6
refused=$(awk '{ n += $2 } END { print n + 0 }' "$T/crowd.log")
check "the admin-group crowd got at most 24 of the 32 slots ($refused refused)" test "$refused" -ge 8
check "refused connections are audited" \
        grep -q 'only the slots reserved for root are left' <(sgctl --json audit --event peer_denied --limit 1000)
kill "$crowd" 2>/dev/null || true
pkill -KILL -u 20001,20002,20003,20004 2>/dev/null || true
wait "$crowd" 2>/dev/null || true

# Uids that may make no request at all are answered and closed as they connect: 40 of them
# with 8 connections each hold nothing.
$PY - "$T/run/secguardd.sock" <<'PYEOF' || fail "closing peers that may ask nothing"
import os, socket, struct, sys
path = sys.argv[1]
kids = []
for uid in range(30001, 30041):
    pid = os.fork()
    if pid == 0:
        os.setgroups([]); os.setgid(65534); os.setuid(uid)
        bad = 0
        for i in range(8):
            s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(path)
            d = s.recv(100)
            rest = s.recv(100)  # closed right after the answer
            if not (len(d) >= 8 and d[3] == 0x81 and bytes([10, 0, 8]) + struct.pack(">Q", 2) in d and rest == b""):
                bad += 1
        os._exit(1 if bad else 0)
    kids.append(pid)
sys.exit(sum(1 for pid in kids if os.waitpid(pid, 0)[1] != 0))
PYEOF
check "320 connections from 40 users that may ask nothing: each answered and closed at once" true
check "root's status still answers" sgctl status

# ---- 4. A daemon that answers too late: the module gave up, no password was tried ----
# The daemon is stopped while a login waits for its go-ahead; the module gives up after
# timeout_ms (3 s here). When the daemon goes on, that attempt counts toward no lock.
kill -STOP "$SG_DAEMON_PID"
check "a login waiting on a stopped daemon fails after timeout_ms" ! sg_auth bob wrong 192.0.2.70
kill -CONT "$SG_DAEMON_PID"
for i in $(seq 1 "${SG_VALGRIND:+600}${SG_VALGRIND:-100}"); do
        grep -q 'no password was tried' <(sgctl --json audit --user bob --event auth_failure) && break
        sleep 0.1
done
check "the late attempt is recorded as abandoned, no password tried" \
        grep -q 'no password was tried' <(sgctl --json audit --user bob --event auth_failure)
check "  ... and counts toward no lock (its attempt row is void)" \
        test "$(sg_sql "SELECT state FROM attempts WHERE user = 'bob' ORDER BY id DESC LIMIT 1;")" = 3
sg_done
