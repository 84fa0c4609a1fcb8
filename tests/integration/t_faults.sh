#!/bin/bash
# Fault injection against a real daemon (issue "Robustness", item 3):
#  a. kill -9 of secguardd under a stream of logins: no reported success without its audit
#     row, locks survive, the chain verifies, in-flight attempts are counted;
#  b. a corrupt or too new database: refused with an error naming the file, file untouched;
#  c. the module SIGKILLed during shadow updates (hash upgrades, password changes): the
#     shadow file is never torn;
#  d. disk full on the state directory: [daemon] disk_full = fail_remote, then recovery.
# The whole test runs in a private mount namespace with a private /tmp (for pam_wrapper,
# see sg_private_tmp, and for the small tmpfs of part d).
. "$(dirname "$0")/lib.sh"
sg_private_tmp "$@"
sg_setup
T_BASE_CONF=("[ratelimit]" "window = 15m" "lock_time = 10m" "user_max_failures = 1000"
             "source_max_failures = 1000" "user_source_max_failures = 3" "spray_max_users = 1000"
             "delay_step_ms = 0" "allowlist = 203.0.113.0/24")
cleanup_faults() {
        local rc=$?
        local p
        set +e
        for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null || true; done
        mountpoint -q "$T/state" 2>/dev/null && umount -l "$T/state"
        (exit "$rc") # sg_cleanup reads the test's status from $?
        sg_cleanup
}
trap cleanup_faults EXIT

# Fresh state for a part: stop the daemon, empty the state dir, new config, start.
restart_fresh() {
        sg_stop_daemon || true
        rm -rf "${T:?}/state"/* "$T/daemon.log"
        sg_write_config "$@"
        sg_start_daemon
}

# pam_bg USER SERVICE-ARGS...: pamtester with the wrappers, in the background, with $1 as
# stdin; $! is pamtester itself (no timeout wrapper), so a SIGKILL hits the module.
pam_env() {
        env ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" LD_PRELOAD="$SG_PRELOAD" \
                PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
                NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" "$@"
}

###############################################################################
echo "# a. kill -9 under a stream of logins"
# slowpoke has a costly (but allowed) argon2id hash, so its login is surely between
# PRECHECK and REPORT when the daemon dies.
printf '[auth]\nargon2_memlimit = 256M\nargon2_opslimit = 4\n' >"$T/slow.conf"
SLOW_PW='slowpoke pw'
slow_hash=$(printf '%s\n' "$SLOW_PW" | "$SECGUARDCTL" --config "$T/slow.conf" hash --scheme argon2id) ||
        fail "cannot hash slowpoke's password"
echo "slowpoke:$slow_hash:20000:0:99999:7:::" >>"$T/shadow"
restart_fresh "max_argon2_memlimit = 256M" "${T_BASE_CONF[@]}"

# A lock made before the kill.
for i in 1 2 3; do sg_auth bob wrong 192.0.2.66 && fail "wrong password accepted"; done
check "a: bob@192.0.2.66 locked before the kill" grep -q 'bob@192.0.2.66' <(sgctl locks)
# Counters below the threshold must survive too: two of carol's three failures before the kill.
for i in 1 2; do sg_auth carol wrong 192.0.2.67 && fail "wrong password accepted"; done
check "a: carol@192.0.2.67 not locked yet (2 of 3 failures)" ! grep -q 'carol@192.0.2.67' <(sgctl locks)

WORKERS=4 PER_WORKER=50
REFUSED_PAUSE=0.05
[ -z "${SG_VALGRIND:-}" ] || REFUSED_PAUSE=0.3
stream_worker() { # worker number: logins as alice from an allowlisted address, tty unique
        local w=$1 n rc
        for n in $(seq 1 "$PER_WORKER"); do
                rc=0
                printf '%s\n' "$SG_PW_ALICE" | sg_pam -I "rhost=203.0.113.$w" -I "tty=kill9/w$w/n$n" \
                        alice authenticate >/dev/null 2>&1 || rc=$?
                echo "kill9/w$w/n$n $rc" >>"$T/stream.$w"
                # A refusal while the daemon is down is instant: pace it, or the stream
                # would be spent before the restart (longer under valgrind, which takes
                # seconds to start the daemon).
                [ "$rc" -eq 0 ] || sleep "$REFUSED_PAUSE"
        done
}
done_count() { cat "$T"/stream.* 2>/dev/null | wc -l; }
wpids=()
for w in $(seq 1 "$WORKERS"); do
        stream_worker "$w" &
        wpids+=($!)
done
for _ in $(seq 1 600); do [ "$(done_count)" -ge 60 ] && break; sleep 0.05; done
printf '%s\n' "$SLOW_PW" | sg_pam -I rhost=198.51.100.9 -I tty=slowpoke slowpoke authenticate \
        >"$T/slow.out" 2>&1 &
slow_pid=$!
# Wait until slowpoke's attempt is reserved (the reply to PRECHECK follows the commit).
for _ in $(seq 1 100); do
        [ "$(sg_sql "SELECT count(*) FROM attempts WHERE user = 'slowpoke' AND state = 0;")" -ge 1 ] && break
        sleep 0.05
done
pending=$(sg_sql "SELECT count(*) FROM attempts WHERE state = 0;")
killed_at=$(done_count)
sg_kill9_daemon
sg_start_daemon
for w in $(seq 1 "$WORKERS"); do wc -l <"$T/stream.$w" >"$T/restart.$w"; done
for p in "${wpids[@]}"; do wait "$p"; done
slow_rc=0
wait "$slow_pid" || slow_rc=$?
sg_log "killed after $killed_at logins with $pending attempt(s) pending in the database"

total=$(done_count)
ok=$(cat "$T"/stream.* | awk '$2 == 0' | wc -l)
check "a: all $((WORKERS * PER_WORKER)) logins ran ($ok succeeded, $((total - ok)) refused around the kill)" \
        test "$total" -eq $((WORKERS * PER_WORKER))
check "a: every login pamtester reported as SUCCESS has its auth_success row" "$PY" -c '
import json, sys
ok = {l.split()[0] for f in sys.argv[1:] for l in open(f) if l.split()[1] == "0"}
rows = [json.loads(l) for l in sys.stdin if l.strip()]
have = {r.get("tty") for r in rows}
missing = sorted(ok - have)
assert not missing, "no auth_success row for %d reported successes: %s" % (len(missing), missing[:5])
extra = len([t for t in have if t and t.startswith("kill9/")]) - len(ok)
print("# %d reported successes, all recorded; %d recorded successes the client never learnt of" % (len(ok), extra))
' "$T"/stream.* < <(sgctl --json audit --event auth_success --user alice --limit 100000)
after=0
for w in $(seq 1 "$WORKERS"); do
        after=$((after + $(tail -n +$(( $(cat "$T/restart.$w") + 1 )) "$T/stream.$w" | awk '$2 == 0' | wc -l)))
done
check "a: logins succeed again after the restart ($after successes)" test "$after" -ge 20
check "a: slowpoke (in flight at the kill) was refused despite the right password" test "$slow_rc" -ne 0
check "a: the daemon counted the attempts in flight" grep -q 'were in flight at the last stop' "$T/daemon.log"
grep 'were in flight' "$T/daemon.log" | sed 's/^/# daemon: /'
check "a: slowpoke's attempt is stored as a failure, none pending" \
        test "$(sg_sql "SELECT count(*) FROM attempts WHERE user = 'slowpoke' AND state = 1;")" -eq 1 \
        -a "$(sg_sql "SELECT count(*) FROM attempts WHERE user = 'slowpoke' AND state = 0;")" -eq 0
before=$(sg_audit_count --event auth_blocked --user bob)
check "a: the lock made before the kill is still in force" ! sg_auth bob "$SG_PW_BOB" 192.0.2.66
check "a: ... and audited as auth_blocked" test "$(sg_audit_count --event auth_blocked --user bob)" -eq $((before + 1))
check "a: the lock is still listed" grep -q 'bob@192.0.2.66' <(sgctl locks)
sg_auth carol wrong 192.0.2.67 && fail "wrong password accepted"
check "a: carol's two failures from before the kill still count: the third one locks" \
        grep -q 'carol@192.0.2.67' <(sgctl locks)
check "a: audit verify passes after the restart" sgctl audit verify
rc=0
sg_stop_daemon || rc=$?
check "a: a clean stop after the crash (exit $rc)" test "$rc" -eq 0

###############################################################################
echo "# b. corrupt and too new databases"
# start_expect_refusal NAME DB-FILE: secguardd on a state dir holding DB-FILE must exit non-zero
# within 10 s; its output in $T/refusal.log.
refused() {
        local dir=$1 rc=0
        timeout 10 "${SG_DAEMON_WRAP[@]}" "$SECGUARDD" --config "$T/secguard.conf" --state-dir "$dir" --log-target stderr \
                --socket "$T/run/refusal.sock" >"$T/refusal.log" 2>&1 || rc=$?
        sed 's/^/#   /' "$T/refusal.log" | grep -v 'admin group' >&2
        # 124 = still running after 10 s: not a refusal.
        [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]
}
make_db() { # dir: a real database with some history, daemon stopped
        mkdir -m 0700 "$1"
        cp -p "$T/state/audit.key" "$1/"
        cp -p "$T/state/secguard.db" "$1/"
}
pattern() { # BYTES TEXT: TEXT repeated, cut at BYTES
        "$PY" -c 'import sys; n = int(sys.argv[1]); t = sys.argv[2].encode(); sys.stdout.buffer.write((t * (n // len(t) + 1))[:n])' "$1" "$2"
}
# The database from part a is our template (about 60 KiB).
DBSIZE=$(stat -c %s "$T/state/secguard.db")
PAGES=$((DBSIZE / 4096))
sg_log "template database: $DBSIZE bytes, $PAGES pages"

make_db "$T/b1"
# Every page after the first (the schema page) overwritten with a fixed garbage pattern.
pattern $((DBSIZE - 4096)) 'garbage in the middle of the database' |
        dd of="$T/b1/secguard.db" bs=4096 seek=1 conv=notrunc status=none
sum=$(sha256sum <"$T/b1/secguard.db")
check "b: garbage over pages 2..$PAGES: the daemon refuses to start" refused "$T/b1"
check "b: ... with an error naming the file" grep -q "$T/b1/secguard.db" "$T/refusal.log"
check "b: ... and the file is byte-identical" test "$(sha256sum <"$T/b1/secguard.db")" = "$sum"

mkdir -m 0700 "$T/b2"
cp -p "$T/state/audit.key" "$T/b2/"
pattern 20000 'this is not an SQLite database. ' >"$T/b2/secguard.db"
chmod 0600 "$T/b2/secguard.db"
sum=$(sha256sum <"$T/b2/secguard.db")
check "b: a non-SQLite file: the daemon refuses to start" refused "$T/b2"
check "b: ... with an error naming the file" grep -q "$T/b2/secguard.db" "$T/refusal.log"
check "b: ... and the file is byte-identical (not recreated)" test "$(sha256sum <"$T/b2/secguard.db")" = "$sum"

make_db "$T/b3"
sqlite3 -batch "$T/b3/secguard.db" 'PRAGMA user_version = 99;'
ours=$(sqlite3 -batch "$T/state/secguard.db" 'PRAGMA user_version;')
sum=$(sha256sum <"$T/b3/secguard.db")
check "b: user_version 99: the daemon refuses to start" refused "$T/b3"
check "b: ... naming the file, version 99 and version $ours" \
        grep -q "$T/b3/secguard.db.*99.*$ours" "$T/refusal.log"
check "b: ... and the file is byte-identical" test "$(sha256sum <"$T/b3/secguard.db")" = "$sum"

# One page at a time: whatever page is hit, the daemon never runs on silently with a chain
# that verifies. Either it refuses (file untouched) or `audit verify` reports the damage.
sweep=
for page in $(seq 2 "$PAGES"); do
        d="$T/bp$page"
        make_db "$d"
        head -c 4096 /dev/zero | tr '\0' '\252' |
                dd of="$d/secguard.db" bs=4096 seek=$((page - 1)) conv=notrunc status=none
        sum=$(sha256sum <"$d/secguard.db")
        timeout 20 "${SG_DAEMON_WRAP[@]}" "$SECGUARDD" --config "$T/secguard.conf" --state-dir "$d" --log-target stderr \
                --socket "$T/run/sweep.sock" >"$T/sweep.log" 2>&1 &
        sp=$!
        up=
        for _ in $(seq 1 40); do
                kill -0 "$sp" 2>/dev/null || break
                if "$SECGUARDCTL" --socket "$T/run/sweep.sock" status >/dev/null 2>&1; then up=1; break; fi
                sleep 0.05
        done
        if [ -n "$up" ]; then
                vrc=0
                timeout 20 "$SECGUARDCTL" --socket "$T/run/sweep.sock" audit verify >"$T/verify.out" 2>&1 || vrc=$?
                kill -TERM "$sp" 2>/dev/null || true
                wait "$sp" 2>/dev/null || true
                # verify walks the audit rows by id; a damaged index or free page is not
                # part of the chain. Then the rows themselves must all still be readable.
                rows_ok=no
                sqlite3 -batch "$d/secguard.db" 'SELECT count(*), sum(length(mac)) FROM audit NOT INDEXED;' \
                        >/dev/null 2>&1 && rows_ok=yes
                sweep+=" p$page:ran,verify=$vrc,rows_readable=$rows_ok"
                check "b: page $page damaged, daemon ran: verify fails (exit $vrc) or the audit rows are intact ($rows_ok)" \
                        test "$vrc" -eq 1 -o "$rows_ok" = yes
        else
                wait "$sp" 2>/dev/null || true
                named=no
                grep -q "$d/secguard.db" "$T/sweep.log" && named=yes
                [ "$named" = yes ] || grep -v 'admin group\|started\|final commit' "$T/sweep.log" |
                        head -n 1 >>"$T/unnamed.txt"
                sweep+=" p$page:refused,named=$named"
                check "b: page $page damaged, refused: file untouched" test "$(sha256sum <"$d/secguard.db")" = "$sum"
        fi
done
echo "# b: one damaged page at a time:$sweep"
unnamed=$(tr ' ' '\n' <<<"$sweep" | grep 'refused,named=no' | cut -d: -f1 | tr '\n' ' ' || true)

###############################################################################
echo "# c. module SIGKILLed during shadow updates"
mkdir -m 0700 "$T/kc"
KS="$T/kc/shadow"
UPW='upgrade me please'
h=$(sg_hash sha512crypt "$UPW")
a=$(sg_hash argon2id "change pw A")
{
        for i in $(seq -w 1 20000); do echo "filler$i:*:20000:0:99999:7:::"; done
        for i in $(seq -w 1 200); do echo "up$i:$h:20000:0:99999:7:::"; done
        for i in 1 2 3 4; do echo "ch$i:$a:20000:0:99999:7:::"; done
} >"$KS"
chmod 0600 "$KS"
cp -p "$KS" "$T/kshadow.orig"
cat >"$T/pam.d/sgkill" <<EOF
auth     required $PAM_MODULE config=$T/secguard.conf shadow=$KS
account  required $PAM_MODULE config=$T/secguard.conf shadow=$KS
password required $PAM_MODULE config=$T/secguard.conf shadow=$KS
session  required $PAM_MODULE config=$T/secguard.conf shadow=$KS
EOF
restart_fresh "upgrade_hashes = yes" "[ratelimit]" "user_max_failures = 1000" \
        "source_max_failures = 1000" "user_source_max_failures = 1000" "spray_max_users = 1000" \
        "delay_step_ms = 0"
ROUNDS=${SG_FAULTS_ROUNDS:-150}
run_killer() {
        # LD_PRELOAD only for the pamtester children, not for python itself.
        SG_PAM_PRELOAD="$SG_PRELOAD" ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" \
                PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
                NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
                timeout 300 "$PY" "$SG_SRC/tests/integration/shadow_killer.py" "$KS" "$T/kshadow.orig" \
                sgkill "$ROUNDS" "$UPW" >"$T/killer.out"
}
kpam() { # USER OPERATION ANSWERS
        pam_env timeout 30 pamtester sgkill "$1" "$2" <<<"$3" >"$T/kpam.out" 2>&1
}
check "c: $ROUNDS rounds of SIGKILLed upgrades and password changes: the shadow file is never torn" run_killer
sed 's/^/# c: /' "$T/killer.out"
check "c: the killer reports its figures" grep -q '^rounds=' "$T/killer.out"
check "c: shadow mode kept 0600" test "$(stat -c %a "$KS")" = 600
check "c: leftover temp files (if any) are all 0600, root's: no hash readable by others" \
        test -z "$(find "$T/kc" -maxdepth 1 -name '.shadow.??????' \( ! -perm 0600 -o ! -user root \))"
upgraded=$(grep -c '^up[0-9]*:\$argon2id\$' "$KS" || true)
bad=0
for u in $(grep -o '^up[0-9]*' "$KS"); do
        if ! kpam "$u" authenticate "$UPW"; then
                bad=$((bad + 1))
                sg_log "c: $u refused ($(tr '\n' ' ' <"$T/kpam.out")): $(grep "^$u:" "$KS" | cut -d: -f2 | cut -c1-40)...; audit: $(sgctl --json audit --user "$u" | tail -n 3 | tr '\n' ' ')"
                sg_log "c: pam_wrapper dirs in /tmp: $(find /tmp -maxdepth 1 -name 'pam.?' | wc -l)"
                grep -E 'took [0-9]+ ms' "$T/daemon.log" | tail -n 3 | sed 's/^/# c: daemon: /' >&2 || true
        fi
done
check "c: all 200 up* users still log in with their password ($upgraded upgraded, the rest old)" test "$bad" -eq 0
check "c: after the kills an update still works (no stale lock)" \
        kpam ch1 chauthtok $'final ch1 password\nfinal ch1 password'
check "c: ... and the new password logs in" kpam ch1 authenticate 'final ch1 password'
check "c: the next completed update removed the dead writers' temp files" \
        test -z "$(find "$T/kc" -maxdepth 1 -name '.shadow.??????')"
check "c: ... and an old one does not" ! kpam ch2 authenticate 'final ch1 password'
check "c: audit verify passes" sgctl audit verify

###############################################################################
echo "# d. disk full on the state directory"
sg_stop_daemon
rm -rf "${T:?}/state"/* "$T/daemon.log"
mount -t tmpfs -o size=2m,mode=0700 sgstate "$T/state" || fail "cannot mount a tmpfs on the state dir"
restart_fresh "${T_BASE_CONF[@]}"
check "d: remote login recorded before the disk fills" sg_auth alice "$SG_PW_ALICE" 192.0.2.10
rows_before=$(sg_sql 'SELECT count(*) FROM audit;')
dd if=/dev/zero of="$T/state/filler" bs=64k status=none 2>/dev/null || true
sg_log "state tmpfs: $(df -k --output=avail "$T/state" | tail -n 1 | tr -d ' ') KiB free after the filler"
check "d: disk full: a remote login with the right password fails" ! sg_auth alice "$SG_PW_ALICE" 192.0.2.11
check "d: disk full: a local login with the right password succeeds (disk_full = fail_remote)" \
        sg_auth alice "$SG_PW_ALICE"
check "d: the daemon stays up" kill -0 "$SG_DAEMON_PID"
check "d: the daemon logged the store error" grep -q 'No space left on device' "$T/daemon.log"
check "d: the refused remote login's own event still reached the log (journald, here stderr)" \
        grep -Eq 'SECGUARD_RHOST=192\.0\.2\.11 .*SECGUARD_REASON=daemon_error' "$T/daemon.log"
grep 'SECGUARD_RHOST=192.0.2.11' "$T/daemon.log" | head -n 2 | cut -c1-160 | sed 's/^/# daemon: /'
grep -Ei 'no space|disk|full|store' "$T/daemon.log" | head -n 3 | sed 's/^/# daemon: /'
check "d: status still answers" sgctl status >/dev/null
rm -f "$T/state/filler"
check "d: after freeing space a remote login succeeds" sg_auth alice "$SG_PW_ALICE" 192.0.2.12
check "d: ... and is recorded" test "$(sg_audit_count --event auth_success --rhost 192.0.2.12)" -eq 1
check "d: nothing recorded from the refused remote login's success" \
        test "$(sg_audit_count --event auth_success --rhost 192.0.2.11)" -eq 0
sg_log "audit rows: $rows_before before the filler, $(sg_sql 'SELECT count(*) FROM audit;') now"
check "d: audit verify passes after recovery" sgctl audit verify
rc=0
sg_stop_daemon || rc=$?
check "d: clean stop (exit $rc)" test "$rc" -eq 0
umount "$T/state"

# Last, so that a failure here does not hide parts c and d: when the daemon refuses a
# damaged database, the error must name the file (docs/state.md, "The SQLite
# database"; secguardd(8), FILES).
[ -s "$T/unnamed.txt" ] && sort "$T/unnamed.txt" | uniq -c | sed 's/^/# b: refused without naming the file: /'
check "b: every refusal of a damaged database names the file (not named for: ${unnamed:-none})" \
        test -z "$unnamed"

sg_done
