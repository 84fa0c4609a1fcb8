#!/bin/bash
# A non-root local user: cannot read the audit, reset counters, forge events or logins, and
# cannot impersonate the daemon (the module refuses a server that is not root).
. "$(dirname "$0")/lib.sh"
sg_setup "[ratelimit]" "user_source_max_failures = 2"
sg_start_daemon
SOCK="$T/run/secguardd.sock"
for i in 1 2; do sg_auth alice wrong 192.0.2.7 || true; done
check "setup: alice@192.0.2.7 locked" grep -q 'alice@192.0.2.7' <(sgctl locks)
rows_before=$(sg_sql 'SELECT count(*) FROM audit;')

# Every request type from uid 65534 is refused with a permission error. A peer that may make
# no request is answered when it connects and closed at once: its request may find the
# socket closed, the answer is there to read all the same.
$PY - "$SOCK" <<'PYEOF' || fail "non-root requests"
import os, socket, struct, sys
os.setgroups([]); os.setgid(65534); os.setuid(65534)
def field(tag, v): return bytes([tag]) + struct.pack(">H", len(v)) + v
def u64(tag, v): return field(tag, struct.pack(">Q", v))
def frame(t, f=b""): return b"SG" + bytes([1, t]) + struct.pack(">I", len(f)) + f
reqs = {
    "PRECHECK": frame(1, field(1, b"alice") + field(4, b"sshd")),
    "REPORT": frame(2, u64(6, 1)),
    "EVENT": frame(3, field(12, b"password_changed") + field(1, b"alice")),
    "STATUS": frame(4), "LOCKS": frame(5),
    "UNLOCK": frame(6, field(18, b"user") + field(19, b"alice")),
    "AUDIT_QUERY": frame(7), "AUDIT_VERIFY": frame(8),
    "ACCOUNT": frame(9, field(1, b"alice") + field(4, b"sshd")),
}
bad = 0
for name, data in reqs.items():
    s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect(sys.argv[1])
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    out = s.recv(65536)
    # ERROR (0x81) carrying SG_ERR_PERMISSION (2) in field 10.
    if not (len(out) > 8 and out[3] == 0x81 and field(10, struct.pack(">Q", 2)) in out):
        print("not refused:", name, out[:40]); bad += 1
    s.close()
sys.exit(bad)
PYEOF
check "every request from a non-root peer is refused" true
check "the lock is still in force" grep -q 'alice@192.0.2.7' <(sgctl locks)
check "no forged event reached the audit" test "$(sg_audit_count --event password_changed)" -eq 0
check "every refusal was audited as peer_denied" test "$(sg_audit_count --event peer_denied)" -eq 9
check "nothing else was written" test "$(sg_sql 'SELECT count(*) FROM audit;')" -eq $((rows_before + 9))
check "the database is not readable by others" test "$(stat -c %a "$T/state/secguard.db")" = 600
check "the state dir is not readable by others" test "$(( 0$(stat -c %a "$T/state") & 077 ))" -eq 0

# Audit flood: any local user can make refused or garbage connections. Each kind is limited
# per uid (a token bucket: 20 at once, then 1 a second); what is held back is counted and one
# summary row says how many, so the table cannot be filled (or max_rows evidence pushed out).
rows_before=$(sg_sql 'SELECT count(*) FROM audit;')
max_before=$(sg_sql 'SELECT max(id) FROM audit;')
secs=$($PY - "$SOCK" <<'PYEOF'
import os, socket, sys, time
os.setgroups([]); os.setgid(65534); os.setuid(65534)
t0 = time.monotonic()
for i in range(500):
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
    try:
        s.sendall(b"XXXXXXXXXXXXXXXX")
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()
print(int(time.monotonic() - t0) + 1)
PYEOF
)
added=$(($(sg_sql 'SELECT count(*) FROM audit;') - rows_before))
check "500 garbage frames from nobody in < ${secs} s wrote $added audit rows (<= 20 + $secs)" \
        test "$added" -ge 1 -a "$added" -le $((20 + secs))
# When nobody may write again (after a second), the next event is preceded by the summary.
sleep 1.2
$PY - "$SOCK" <<'PYEOF'
import os, socket, sys
os.setgroups([]); os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
try:
    s.sendall(b"XXXXXXXXXXXXXXXX")
    while s.recv(4096):
        pass
except OSError:
    pass
PYEOF
# nobody may make no request: each connection is refused when it opens (peer_denied), before
# its garbage is read.
sg_sql "SELECT uid, detail FROM audit WHERE id > $max_before AND event = 'peer_denied';" >"$T/flood.rows"
check "a summary row states how many were held back, and nothing is lost (501 in all)" \
        $PY -c '
import re, sys
written = suppressed = summaries = 0
for line in open(sys.argv[1]):
    uid, detail = line.rstrip("\n").split("|", 1)
    assert uid == "65534", line
    m = re.fullmatch(r"(\d+) similar events from uid 65534 suppressed", detail)
    if m:
        suppressed += int(m.group(1)); summaries += 1
    else:
        written += 1
print("# written", written, "suppressed", suppressed, "summaries", summaries, file=sys.stderr)
assert summaries >= 1 and written + suppressed == 501, (written, suppressed)
' "$T/flood.rows"
check "a root login is still audited" sg_auth alice "$SG_PW_ALICE"
check "its auth_success row is there" test "$(sg_sql "SELECT count(*) FROM audit WHERE id > $max_before AND event = 'auth_success';")" -eq 1
$PY - "$SOCK" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); s.sendall(b"XXXXXXXXXXXXXXXX")
try:
    while s.recv(4096):
        pass
except OSError:
    pass
PYEOF
check "root has its own bucket: its protocol error is written" \
        test "$(sg_sql "SELECT count(*) FROM audit WHERE id > $max_before AND event = 'protocol_error' AND uid = 0;")" -eq 1
check "the audit chain still verifies" sgctl audit verify

# A fake daemon run by nobody: the module must not talk to it (and so fails closed).
mkdir -m 0777 "$T/evil"
$PY - "$T/evil/sock" >"$T/evil.log" 2>&1 <<'PYEOF' &
import os, socket, sys
os.setgroups([]); os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8); s.settimeout(8)
try:
    c, _ = s.accept(); c.settimeout(2)
    data = c.recv(65536)
    print("RECEIVED", len(data))
    # Pretend to allow everything.
    c.sendall(b"SG\x01\x80\x00\x00\x00\x0b\x08\x00\x08\x00\x00\x00\x00\x00\x00\x00\x01")
except socket.timeout:
    print("nothing")
PYEOF
evil=$!
for _ in $(seq 1 50); do [ -S "$T/evil/sock" ] && break; sleep 0.05; done
sed -i "s|^socket = .*|socket = $T/evil/sock|" "$T/secguard.conf"
check "module refuses a non-root server" ! sg_auth alice "$SG_PW_ALICE" 192.0.2.1
wait "$evil" || true
check "the fake server received no request bytes" grep -qE '^(RECEIVED 0|nothing)$' "$T/evil.log"
sed -i "s|^socket = .*|socket = $SOCK|" "$T/secguard.conf"
sg_done
