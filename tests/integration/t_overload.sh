#!/bin/bash
# Overload never counts toward a lock: a login answered OVERLOAD (no hash permit before
# permit_wait_ms) is settled void. A victim retrying during a flood keeps his access, the
# audit still says auth_failure/overload, and a restart's replay does not count it either.
. "$(dirname "$0")/lib.sh"
sg_setup "[daemon]" "hash_permits = 1" "permit_wait_ms = 100" \
        "[ratelimit]" "user_source_max_failures = 3" "source_max_failures = 3" \
        "user_max_failures = 3" "delay_step_ms = 0"
sg_start_daemon

# Holds the only hash permit: a PRECHECK answered ALLOW whose REPORT never comes, until the
# file $T/release appears (at most 20 s).
hold_permit() {
        $PY - "$T/run/secguardd.sock" "$T/held" "$T/release" <<'PYEOF'
import os, socket, struct, sys, time
def field(tag, v): return bytes([tag]) + struct.pack(">H", len(v)) + v
body = field(1, b"carol") + field(4, b"sshd")
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"SG\x01\x01" + struct.pack(">I", len(body)) + body)
s.settimeout(5); s.recv(100)
open(sys.argv[2], "w").close()
for _ in range(400):
        if os.path.exists(sys.argv[3]): break
        time.sleep(0.05)
s.close()
PYEOF
}
hold_permit &
holder=$!
for i in $(seq 1 100); do [ -e "$T/held" ] && break; sleep 0.05; done
check "the permit is held" grep -q 'hash permits: 1/1' <(sgctl status)

# The victim retries 6 times during the "flood", twice the thresholds.
for i in $(seq 1 6); do
        check "login $i during overload refused" ! sg_auth alice "$SG_PW_ALICE" 192.0.2.50
done
touch "$T/release"
wait "$holder"
over=$(sgctl --json audit --user alice --event auth_failure --limit 1000 | grep -c '"reason":"overload"' || true)
check "each refused login audited as auth_failure/overload ($over)" test "$over" -eq 6
check "no lock from overload" test "$(sgctl --json locks | grep -c . || true)" -eq 0
check "the attempts are stored void" test "$(sg_sql 'SELECT count(*) FROM attempts WHERE state = 3')" -eq 6
check "the victim logs in once the flood is over" sg_auth alice "$SG_PW_ALICE" 192.0.2.50

# The same after a restart: replay skips void attempts.
rm -f "$T/release" "$T/held"
hold_permit &
holder=$!
for i in $(seq 1 100); do [ -e "$T/held" ] && break; sleep 0.05; done
for i in $(seq 1 4); do sg_auth bob "$SG_PW_BOB" 192.0.2.51 || true; done
touch "$T/release"
wait "$holder"
sg_stop_daemon
sg_start_daemon
check "after a restart no lock from overload either" sg_auth bob "$SG_PW_BOB" 192.0.2.51
# Real failures still lock: void is not a loophole.
for i in 1 2 3; do sg_auth bob wrong 192.0.2.52 || true; done
check "wrong passwords still lock" ! sg_auth bob "$SG_PW_BOB" 192.0.2.52
sg_done
