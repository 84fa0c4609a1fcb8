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

# Every request type from uid 65534 is refused with a permission error.
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
    s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect(sys.argv[1]); s.sendall(data)
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
