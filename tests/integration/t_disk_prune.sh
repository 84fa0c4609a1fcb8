#!/bin/bash
# A disk running full prunes the oldest audit rows before logins are refused: below 16 MiB free
# on the state directory the audit table stops growing (each commit deletes as many of the
# oldest rows as it added, and their pages take the new ones), so logins stay recorded while
# something else fills the disk. The chain still verifies (the anchor stands for the pruned).
. "$(dirname "$0")/lib.sh"
sg_setup "[ratelimit]" "user_max_failures = 1000" "user_source_max_failures = 1000" \
        "source_max_failures = 1000"
mount -t tmpfs -o size=32m,mode=0700 sgstate "$T/state" || fail "cannot mount a tmpfs on the state dir"
sg_start_daemon

# write_rows N: N audit rows (hash_upgraded events, as the module sends them); prints how many
# the daemon confirmed and how many it refused (ERROR: the store failed).
write_rows() {
        $PY - "$T/run/secguardd.sock" "$1" <<'PYEOF' || fail "could not write the rows"
import socket, struct, sys
def field(tag, v): return bytes([tag]) + struct.pack(">H", len(v)) + v
def recv_exact(s, n):
        b = b""
        while len(b) < n:
                c = s.recv(n - len(b))
                if not c: raise EOFError
                b += c
        return b
s = None
ok = err = 0
for i in range(int(sys.argv[2])):
        if i % 50 == 0: # a fresh connection now and then (idle limits)
                if s: s.close()
                s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
        body = field(12, b"hash_upgraded") + field(1, b"alice") + field(4, b"sshd") + \
               field(11, b"filler row %d with some detail text to take room" % i)
        s.sendall(b"SG\x01\x03" + struct.pack(">I", len(body)) + body)
        hdr = recv_exact(s, 8)
        recv_exact(s, struct.unpack(">I", hdr[4:8])[0])
        if hdr[3] == 0x80: ok += 1
        else:
                err += 1
                s.close(); s = None
                s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
print(ok, err)
PYEOF
}
write_rows 6000 >/dev/null
check "remote login recorded before the disk fills" sg_auth alice "$SG_PW_ALICE" 192.0.2.10
# Something else takes all but 3 MiB (20,000 more rows would need about 4.4).
avail=$(df -k --output=avail "$T/state" | tail -n 1 | tr -d ' ')
dd if=/dev/zero of="$T/state/filler" bs=1k count=$((avail - 3072)) status=none
rows_before=$(sg_sql 'SELECT count(*) FROM audit;')
sg_log "state tmpfs: $(df -k --output=avail "$T/state" | tail -n 1 | tr -d ' ') KiB free after the filler, $rows_before rows"
read -r ok_rows err_rows < <(write_rows 20000)
sg_log "then: $ok_rows rows written, $err_rows refused; $(df -k --output=avail "$T/state" | tail -n 1 | tr -d ' ') KiB free"
check "no row refused for a full disk" test "$err_rows" -eq 0
check "the daemon said the table stops growing" grep -q 'the audit table stays at [0-9]* rows' "$T/daemon.log"
ok=0
for i in $(seq 1 20); do
        sg_auth alice "$SG_PW_ALICE" "192.0.2.$((20 + i))" && ok=$((ok + 1))
done
sg_log "low on space: $ok of 20 remote logins accepted"
check "every remote login still succeeds ($ok of 20)" test "$ok" -eq 20
check "... and are recorded" test "$(sg_sql "SELECT count(*) FROM audit WHERE event = 'auth_success' AND rhost LIKE '192.0.2.%';")" -ge "$ok"
rows_after=$(sg_sql 'SELECT count(*) FROM audit;')
sg_log "audit rows: $rows_before before, $rows_after after"
check "the table did not grow past its size when space ran low (+ a commit's worth)" test "$rows_after" -le $((rows_before + 600))
check "audit verify passes (the anchor stands for the pruned rows)" sgctl audit verify
rm -f "$T/state/filler"
sg_stop_daemon
umount "$T/state"
sg_done
