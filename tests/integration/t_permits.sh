#!/bin/bash
# Hash permits cap concurrent hashing host-wide; a connection dropped between PRECHECK and
# REPORT counts as an `abandoned` failure; the allowlist reloads on SIGHUP keeping state.
. "$(dirname "$0")/lib.sh"
sg_setup "[daemon]" "hash_permits = 1" "permit_wait_ms = 150" \
        "[ratelimit]" "user_source_max_failures = 1000" "source_max_failures = 1000" \
        "user_max_failures = 1000" "delay_step_ms = 0"
# A slower hash (64 MiB) for one user so logins overlap.
echo "slow:$(printf '%s\n' 'slow user pw' | "$SECGUARDCTL" --config "$T/secguard.conf" hash):20000:0:99999:7:::" >>"$T/shadow"
sed -i 's/^argon2_memlimit = 8M$/argon2_memlimit = 64M/' "$T/secguard.conf"
h=$(printf '%s\n' 'slow user pw' | "$SECGUARDCTL" --config "$T/secguard.conf" hash)
sed -i "s|^slow:[^:]*:|slow:$h:|" "$T/shadow"
sg_start_daemon

pids=()
for i in $(seq 1 8); do sg_auth slow 'slow user pw' & pids+=($!); done
ok=0
for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done
over=$(sgctl --json audit --event auth_failure --limit 1000 | grep -c '"overload"' || true)
check "1 permit, 8 parallel slow logins: $ok accepted, $over failed as overload" test "$ok" -ge 1 -a "$over" -ge 1 -a $((ok + over)) -eq 8
check "permits all returned" grep -q 'hash permits: 0/1' <(sgctl status)

# A client that reserves an attempt and vanishes: counted as a failure (abandoned).
$PY - "$T/run/secguardd.sock" <<'PYEOF'
import socket, struct, sys
def field(tag, v): return bytes([tag]) + struct.pack(">H", len(v)) + v
body = field(1, b"bob") + field(4, b"sshd") + field(2, b"192.0.2.44")
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"SG\x01\x01" + struct.pack(">I", len(body)) + body)
s.settimeout(3); s.recv(100)
s.close()
PYEOF
sleep 0.3
check "dropped connection recorded as abandoned" \
        grep -q '"reason":"abandoned"' <(sgctl --json audit --user bob --event auth_failure)
check "permit released after the drop" grep -q 'hash permits: 0/1' <(sgctl status)

# SIGHUP with a new allowlist keeps locks and counters.
sg_stop_daemon
sg_write_config "[ratelimit]" "user_source_max_failures = 2"
sg_start_daemon
for i in 1 2; do sg_auth carol wrong 192.0.2.60 || true; done
for i in 1; do sg_auth bob wrong 192.0.2.61 || true; done
echo "allowlist = 192.0.2.61" >>"$T/secguard.conf"
kill -HUP "$SG_DAEMON_PID"
sleep 0.3
check "after reload the earlier lock is kept" ! sg_auth carol "$SG_PW_CAROL" 192.0.2.60
check "after reload the allowlist applies" sg_auth bob "$SG_PW_BOB" 192.0.2.61
for i in 1 2 3; do sg_auth bob wrong 192.0.2.61 || true; done
check "allowlisted source not locked after reload" sg_auth bob "$SG_PW_BOB" 192.0.2.61
sg_done
