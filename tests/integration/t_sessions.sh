#!/bin/bash
# Sessions through the real module and daemon: open/list/close (SECGUARD_SESSION in the PAM
# environment), an idempotent close, the max_sessions refusal and its message, a dead leader
# reaped, kill by id, sessions kept across a restart (and a leader that died meanwhile reaped),
# an expired session's real leader ended by SIGHUP and, when it ignores SIGHUP, by SIGKILL
# (no logind here), idle_timeout measured on real terminals, and who may list or kill. Every step checks its audit row.
. "$(dirname "$0")/lib.sh"
if [ -n "${SG_VALGRIND:-}" ]; then
        # valgrind 3.19 (Debian 12) does not know pidfd_open (syscall 434), which registering a
        # session needs: the plain and ASan runs cover sessions.
        echo "SKIP: sessions under memcheck: valgrind cannot run pidfd_open" >&2
        exit 77
fi
ADMIN_GROUP=
for g in adm staff users; do
        if getent group "$g" >/dev/null; then ADMIN_GROUP=$g; break; fi
done
SESSION_CONF=("[session]" "max_sessions = 2")
sg_setup "${SESSION_CONF[@]}" ${ADMIN_GROUP:+"[daemon]" "admin_group = $ADMIN_GROUP"}
sg_start_daemon

PAM_RUN="$SG_BUILD/tests/integration/pam_run"
# leader NAME USER [TTY] [sh-prefix]: pam_run holds a session open until a line arrives on
# its fifo (fd kept in FD_NAME); this process is the session's leader. Sets PID_NAME, SID_NAME.
leader() {
        local name=$1 user=$2 tty=${3:-} prefix=${4:-} fd pid i
        mkfifo "$T/$name.in"
        ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" \
                LD_PRELOAD="${SG_SANITIZE:+$SG_LIBASAN:}libnss_wrapper.so" \
                NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
                sh -c "$prefix exec \"\$0\" \"\$@\"" "$PAM_RUN" "$T/pam.d" sgtest "$user" session "" "$tty" \
                <"$T/$name.in" >"$T/$name.out" 2>&1 &
        pid=$!
        exec {fd}>"$T/$name.in"
        for i in $(seq 1 100); do
                grep -q '^SECGUARD_SESSION=' "$T/$name.out" 2>/dev/null && break
                sleep 0.05
        done
        printf -v "FD_$name" '%s' "$fd"
        printf -v "PID_$name" '%s' "$pid"
        printf -v "SID_$name" '%s' "$(sed -n 's/^SECGUARD_SESSION=//p' "$T/$name.out")"
}
# end_leader NAME: sends the line (pam_close_session) and waits for pam_run.
end_leader() {
        local fdv=FD_$1 pidv=PID_$1 fd
        fd=${!fdv}
        echo >&"$fd" 2>/dev/null || true
        exec {fd}>&- || true
        wait "${!pidv}" 2>/dev/null || true
}
# close_fd NAME: lets go of the fifo (a leader that was killed reads nothing more).
close_fd() {
        local fdv=FD_$1 fd
        fd=${!fdv}
        exec {fd}>&- || true
}
listed() { sgctl --json sessions | grep -c "\"id\":\"$1\"" || true; }
# wait_for SECONDS CMD...: polls until CMD succeeds.
wait_for() {
        local n=$(( $1 * 20 )); shift
        for _ in $(seq 1 "$n"); do "$@" && return 0; sleep 0.05; done
        return 1
}
not_listed() { [ "$(listed "$1")" -eq 0 ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
no_sessions() { [ "$(sgctl --json sessions | grep -c .)" -eq 0 ]; }

# ---- open, list, close ----
leader a alice pts/7
check "open_session succeeds" grep -q '^open_session: Success' "$T/a.out"
check "SECGUARD_SESSION is 32 hex digits" grep -Eq '^SECGUARD_SESSION=[0-9a-f]{32}$' "$T/a.out"
json=$(sgctl --json sessions)
check "sessions --json lists it with user, service, tty, leader pid" $PY -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin.read().splitlines()]
r = [r for r in rows if r["id"] == sys.argv[1]]
assert len(r) == 1, rows
r = r[0]
assert r["user"] == "alice" and r["service"] == "sgtest" and r["tty"] == "pts/7", r
assert r["pid"] == int(sys.argv[2]), (r, sys.argv[2])
assert r["started"] and "logind_id" in r and "rhost" in r
' "$SID_a" "$PID_a" <<<"$json"
check "status counts 1 session" grep -q 'sessions: 1 ' <<<"$(sgctl status)"
check "status --json counts 1 session" $PY -c 'import json,sys; assert json.load(sys.stdin)["sessions"] == 1' \
        <<<"$(sgctl --json status)"
check "the table lists it" grep -q "$SID_a" <<<"$(sgctl sessions)"
check "audit: session_open with the id" test "$(sgctl --json audit --event session_open | grep -c "$SID_a")" -eq 1
end_leader a
check "close_session succeeds" grep -q '^close_session: Success' "$T/a.out"
check "closed: no longer listed" not_listed "$SID_a"
check "audit: session_close with its duration" \
        grep -q "\"session\":\"$SID_a\".*after [0-9]* s" <<<"$(sgctl --json audit --event session_close)"

# A close for an id the daemon does not know (a second close) answers OK.
close_unknown() {
        "$PY" - "$T/run/secguardd.sock" "$1" <<'PYEOF'
import socket, struct, sys
sid = sys.argv[2].encode()
payload = bytes([34]) + struct.pack(">H", len(sid)) + sid
s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect(sys.argv[1])
s.sendall(b"SG\x01\x0b" + struct.pack(">I", len(payload)) + payload)
hdr = s.recv(8)
sys.exit(0 if hdr[3] == 0x80 else 1)
PYEOF
}
check "a second close of the same id is OK" close_unknown "$SID_a"
check "a close of an id never issued is OK" close_unknown 0123456789abcdef0123456789abcdef

# ---- max_sessions = 2 ----
leader b1 alice
leader b2 alice
out=$(sg_pam_run alice open_session 2>&1) && fail "a third session for alice was allowed"
check "third session refused with PAM_PERM_DENIED" grep -q '^open_session: Permission denied' <<<"$out"
check "the user is told: too many sessions" grep -q '^message: too many sessions' <<<"$out"
check "audit: the refusal (reason too_many_sessions)" \
        test "$(sg_audit_count --event session_open | tail -1)" -ge 3
check "the refusal row names the reason" grep -q '"reason":"too_many_sessions"' <<<"$(sgctl --json audit --event session_open)"

leader r root
check "root is exempt from max_sessions by default" grep -q '^open_session: Success' "$T/r.out"
leader r2 root
check "root's second session opens too" grep -q '^open_session: Success' "$T/r2.out"

# ---- who may list and kill ----
rc=0; sgctl_as_nobody sessions >/dev/null 2>&1 || rc=$?
check "sessions as nobody: permission denied (exit 4, got $rc)" test "$rc" -eq 4
rc=0; sgctl_as_nobody session kill "$SID_b1" >/dev/null 2>&1 || rc=$?
check "session kill as nobody: permission denied (exit 4, got $rc)" test "$rc" -eq 4
if [ -n "$ADMIN_GROUP" ]; then
        admin_gid=$(getent group "$ADMIN_GROUP" | cut -d: -f3)
        as_admin() {
                setpriv --reuid=nobody --regid=nogroup --groups="$admin_gid" "$T/secguardctl-copy" \
                        --config "$T/secguard.conf" "$@"
        }
        rc=0; as_admin --json sessions >"$T/admin.out" 2>&1 || rc=$?
        check "admin group member may list sessions (exit $rc, $(grep -c . "$T/admin.out") rows)" test "$rc" -eq 0 -a "$(grep -c . "$T/admin.out")" -eq 4
        rc=0; as_admin session kill "$SID_b1" >/dev/null 2>&1 || rc=$?
        check "admin group member may not kill (exit 4, got $rc)" test "$rc" -eq 4
else
        echo "# SKIP admin-group checks: the host has none of the groups adm, staff, users" >&2
fi
check "peer_denied rows for the refusals" test "$(sg_audit_count --event peer_denied)" -ge 2

# ---- kill by id: the leader gets SIGHUP ----
rc=0; sgctl session kill "$SID_b1" >/dev/null || rc=$?
check "session kill ID succeeds" test "$rc" -eq 0
check "the killed session's leader is gone" wait_for 5 gone "$PID_b1"
check "the killed session is no longer listed" wait_for 5 not_listed "$SID_b1"
check "audit: session_killed by root" \
        grep -q "\"session\":\"$SID_b1\"" <<<"$(sgctl --json audit --event session_killed)"
rc=0; sgctl session kill "$SID_b1" >/dev/null 2>&1 || rc=$?
check "killing it again: not found (exit 1)" test "$rc" -eq 1
rc=0; sgctl session kill nothex >/dev/null 2>&1 || rc=$?
check "a malformed id is a usage error (exit 2)" test "$rc" -eq 2
close_fd b1

# ---- a leader that dies without closing is reaped ----
out=$(sg_pam_run bob open_session 2>&1)
sid=$(sed -n 's/^SECGUARD_SESSION=//p' <<<"$out")
check "open_session without close (pam_run exits)" test -n "$sid"
check "the dead leader's session is reaped" wait_for 5 not_listed "$sid"
check "audit: session_reaped" wait_for 3 grep -q "\"session\":\"$sid\"" \
        <(sgctl --json audit --event session_reaped)

# ---- restart keeps sessions; a leader that died meanwhile is reaped at start ----
leader c carol
sg_stop_daemon
kill "$PID_r2"; wait "$PID_r2" 2>/dev/null || true
sg_start_daemon
check "after a restart the session is still listed" test "$(listed "$SID_c")" -eq 1
check "and alice's live session too" test "$(listed "$SID_b2")" -eq 1
check "a leader that died while the daemon was down is reaped" wait_for 5 not_listed "$SID_r2"
check "audit: session_reaped for it" wait_for 3 grep -q "\"session\":\"$SID_r2\"" \
        <(sgctl --json audit --event session_reaped)
end_leader c
check "close after the restart succeeds" grep -q '^close_session: Success' "$T/c.out"
check "closed after the restart: not listed" not_listed "$SID_c"
end_leader b2
end_leader r
check "every session closed" no_sessions

# ---- expiry (max_lifetime), no logind: SIGHUP, then SIGKILL after kill_grace ----
sg_stop_daemon
sg_write_config "[session]" "max_lifetime = 2s" "kill_grace = 1s"
sg_start_daemon
leader e alice pts/8
leader k bob "" 'trap "" HUP;'
check "both sessions open" test -n "$SID_e" -a -n "$SID_k"
check "the expired session's leader is ended by SIGHUP" wait_for 8 gone "$PID_e"
rc_e=0; wait "$PID_e" || rc_e=$?
check "... by SIGHUP (exit status $rc_e)" test "$rc_e" -eq $((128 + 1))
check "the leader that ignores SIGHUP is SIGKILLed after the grace" wait_for 8 gone "$PID_k"
rc_k=0; wait "$PID_k" || rc_k=$?
check "... by SIGKILL (exit status $rc_k)" test "$rc_k" -eq $((128 + 9))
check "audit: session_expired, reason max_lifetime, for both" \
        test "$(sgctl --json audit --event session_expired | grep -c '"reason":"max_lifetime"')" -eq 2
check "expired sessions leave the table" wait_for 5 no_sessions
check "an ended session is not reported as reaped too" \
        test "$(sgctl --json audit --event session_reaped | grep -c "$SID_e")" -eq 0
# ---- idle_timeout: idle is the time since the session's terminal was last used (its atime) ----
sg_stop_daemon
sg_write_config "[session]" "idle_timeout = 3s" "kill_grace = 1s"
sg_start_daemon
# Two real terminals (pseudo-terminals held open by a helper), named as PAM_TTY "pts/N".
$PY -c '
import os, sys, time
a = os.openpty(); b = os.openpty()
print(os.ttyname(a[1])[5:], os.ttyname(b[1])[5:], flush=True)
time.sleep(30)
' >"$T/ptys" &
PTYS=$!
wait_for 5 test -s "$T/ptys"
read -r tty_idle tty_busy <"$T/ptys"
touch -a -d "@$(($(date +%s) - 3600))" "/dev/$tty_idle" # last used before the session began
touch -a "/dev/$tty_busy"
leader i alice "$tty_idle"
leader u bob "$tty_busy"
leader n carol # no terminal: never idle
check "the three sessions open" test -n "$SID_i" -a -n "$SID_u" -a -n "$SID_n"
sgctl --json sessions >"$T/idle.json"
check "sessions --json gives idle seconds for terminal sessions (from their start at most)" \
        grep -Eq "\"id\":\"$SID_i\".*\"idle_sec\":[0-9]" "$T/idle.json"
check "... and none for the session without a terminal" ! grep -Eq "\"id\":\"$SID_n\".*\"idle_sec\"" "$T/idle.json"
# The busy terminal is used every half second for 6 s (twice idle_timeout).
for _ in $(seq 12); do touch -a "/dev/$tty_busy"; sleep 0.5; done
check "the session on the idle terminal is ended" wait_for 5 gone "$PID_i"
check "... and leaves the table" wait_for 5 not_listed "$SID_i"
check "the session on the busy terminal stays" test "$(listed "$SID_u")" -eq 1
check "the session without a terminal stays" test "$(listed "$SID_n")" -eq 1
check "audit: session_expired, reason idle_timeout, for the idle one only" \
        test "$(sgctl --json audit --event session_expired | grep '"reason":"idle_timeout"' | grep -c "$SID_i")" -eq 1 -a \
        "$(sgctl --json audit --event session_expired | grep -c '"reason":"idle_timeout"')" -eq 1
end_leader u
end_leader n
close_fd i
kill "$PTYS" 2>/dev/null || true
wait "$PTYS" 2>/dev/null || true
check "every session closed" wait_for 5 no_sessions

check "the audit chain is intact" sgctl audit verify
close_fd e
close_fd k
# Hostile fields in session requests, straight to the daemon as root (the module is trusted
# to be root, not to be bug-free): each is refused as INVALID and nothing is registered.
before=$(sgctl --json sessions | grep -c . || true)
check "hostile SESSION_OPEN/CLOSE fields are refused as invalid" "$PY" - "$T/run/secguardd.sock" <<'PYEOF'
import os, socket, struct, sys
def field(tag, v): return bytes([tag]) + struct.pack(">H", len(v)) + v
def u64(tag, v): return field(tag, struct.pack(">Q", v))
def ask(t, payload):
    s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect(sys.argv[1])
    s.sendall(b"SG\x01" + bytes([t]) + struct.pack(">I", len(payload)) + payload)
    d = s.recv(4096); s.close()
    return d
bad = 0
invalid = struct.pack(">Q", 3)
def refused(d):
    return len(d) >= 8 and d[3] == 0x81 and bytes([10, 0, 8]) + invalid in d
# A living leader (this process) in every check that is not about the pid, so that each one
# is refused for the field it tests and not because no process 4242 exists.
me = os.getpid()
checks = {
    "user with ESC": ask(10, field(1, b"al\x1bice") + field(4, b"sshd") + u64(28, 1000) + u64(27, me)),
    "tty with ..": ask(10, field(1, b"alice") + field(4, b"sshd") + field(3, b"../../etc") + u64(28, 1000) + u64(27, me)),
    "pid 1": ask(10, field(1, b"alice") + field(4, b"sshd") + u64(28, 1000) + u64(27, 1)),
    "pid 0": ask(10, field(1, b"alice") + field(4, b"sshd") + u64(28, 1000) + u64(27, 0)),
    "huge pid": ask(10, field(1, b"alice") + field(4, b"sshd") + u64(28, 1000) + u64(27, 1 << 40)),
    "logind id with a newline": ask(10, field(1, b"alice") + field(4, b"sshd") + u64(28, 1000) + u64(27, me) + field(35, b"c1\nX")),
    "close: id not hex": ask(11, field(34, b"zz" * 16)),
    "close: id too short": ask(11, field(34, b"0123")),
    "kill: id with a quote": ask(13, field(34, b"'" + b"0" * 31)),
}
for name, d in checks.items():
    if not refused(d):
        print("not refused as invalid:", name, d[:40], file=sys.stderr); bad += 1
# The control: the same fields, well formed, with this process as leader, open a session (so
# the checks above were refused for their field), which is then closed again.
d = ask(10, field(1, b"alice") + field(4, b"sshd") + field(3, b"pts/9") + u64(28, 1000) + u64(27, me))
sid, p = None, 8
while len(d) >= 8 and d[3] == 0x80 and p + 3 <= len(d):
    tag, n = d[p], struct.unpack(">H", d[p + 1:p + 3])[0]
    if tag == 34:
        sid = d[p + 3:p + 3 + n]
    p += 3 + n
if sid is None:
    print("control: a well-formed SESSION_OPEN was not accepted:", d[:40], file=sys.stderr); bad += 1
elif ask(11, field(34, sid))[3:4] != b"\x80":
    print("control: its SESSION_CLOSE failed", file=sys.stderr); bad += 1
sys.exit(bad)
PYEOF
check "  ... and none was registered" test "$(sgctl --json sessions | grep -c . || true)" -eq "$before"
sg_done
