#!/bin/bash
# Forward-secure audit keys (issue 15, docs/threat-model.md), against an attacker with root:
# the static-key rows written before set-up stay verifiable and are sealed at the switch;
# `audit setup-keys` prints the seed once (last line) and refuses a second time; the key in
# audit.fss moves on every epoch and at start; without the seed, verify checks structure and
# the current epoch and says what it could not check; with it (--seed, --seed -, --seed-file,
# --db on a copy, no daemon) every epoch is checked. Caught and named with the seed: a past
# row edited with every later MAC redone under the key found on disk (sg_audit_forge), an
# epoch's tail deleted, a whole epoch deleted, rows moved between epochs, a wrong seed, a
# typo. An older key file put back is named at start. kill -9 across epoch changes loses no
# acknowledged row and leaves a chain that verifies. Retention keeps it verifiable. The seed
# is nowhere on the host afterwards: logs, stderr, database, state directory.
. "$(dirname "$0")/lib.sh"
# Epochs of one second; no rate limiting in the way of the events this test makes.
CONF=("[audit]" "seal_interval = 1" "[ratelimit]" "user_pacing = no" "user_max_failures = 1000"
      "source_max_failures = 1000" "user_source_max_failures = 1000" "spray_max_users = 1000"
      "delay_step_ms = 0")
sg_setup "${CONF[@]}"
DB="$T/state/secguard.db"
FORGE="$SG_BUILD/tests/integration/sg_audit_forge"

# sql DB STATEMENT: runs it, prints the rows ("|"-separated), commits.
sql() {
        $PY -c 'import sqlite3, sys
d = sqlite3.connect(sys.argv[1]); c = d.execute(sys.argv[2]); rows = c.fetchall(); d.commit()
for r in rows: print("|".join("" if v is None else str(v) for v in r))' "$1" "$2"
}
# The epoch recorded in an audit.fss file (bytes 8..15, big-endian).
fss_epoch() { $PY -c 'import sys; print(int.from_bytes(open(sys.argv[1], "rb").read()[8:16], "big"))' "$1"; }
quiet() { "$@" >/dev/null 2>&1; }
# verify_rc ARGS...: exit status of `audit verify ARGS`, output in $T/verify.out.
verify_rc() { local rc=0; sgctl audit verify "$@" >"$T/verify.out" 2>&1 || rc=$?; echo "$rc"; }
fails() { ! sg_auth alice "wrong $1" "192.0.2.$1"; }

# ---- before set-up: the static key, and a notice saying how to set up ----
sg_start_daemon
for i in 1 2 3; do fails "$i"; done
check "static-key log verifies" test "$(verify_rc)" -eq 0
check "the daemon says forward-secure keys are not set up, and how" \
        grep -q 'forward-secure audit keys are not set up.*setup-keys' "$T/daemon.log"
sg_stop_daemon
legacy_rows=$(sql "$DB" "SELECT count(*) FROM audit")

# ---- setup-keys: the seed once, on the last line; never twice ----
check "setup-keys succeeds" quiet sh -c "'$SECGUARDCTL' --config '$T/secguard.conf' audit setup-keys >'$T/setup.out' 2>'$T/setup.err'"
SEED=$(tail -n 1 "$T/setup.out")
check "the last line is the seed (8 groups of 4)" \
        grep -Eqx '[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){7}' <<<"$SEED"
check "the seed is on no other line" test "$(grep -c -- "$SEED" "$T/setup.out")" -eq 1
check "audit.fss is 0600, epoch 0" test "$(stat -c %a "$T/state/audit.fss")" = 600 -a "$(fss_epoch "$T/state/audit.fss")" -eq 0
check "a second setup-keys is refused" ! quiet sgctl audit setup-keys
check "the refusal says why" sh -c "'$SECGUARDCTL' --config '$T/secguard.conf' audit setup-keys 2>&1 | grep -q 'set up already'"
cp "$T/state/audit.fss" "$T/fss.epoch0"

# ---- epochs: start seals the static-key rows, the key moves on ----
sg_start_daemon
check "the static-key rows are sealed once, under the static key (epoch -1)" \
        test "$(sql "$DB" "SELECT last_id FROM audit_seal WHERE epoch = -1")" -eq "$legacy_rows"
check "epoch 0 is sealed at the start; rows begin in epoch 1" \
        test "$(sql "$DB" "SELECT min(epoch) FROM audit WHERE epoch IS NOT NULL")" -eq 1
for i in 10 11 12 13 14 15; do
        fails "$i"
        fails "$((i + 10))"
        sleep 1.1
        # A copy from the middle, to be put back later (root saving a key it will want).
        [ "$i" -ne 12 ] || cp "$T/state/audit.fss" "$T/fss.old"
done
e_now=$(fss_epoch "$T/state/audit.fss")
check "audit.fss moved on with the epochs (now $e_now)" test "$e_now" -ge 5
check "its key is not key(0) any more" ! cmp -s <(tail -c 32 "$T/state/audit.fss") <(tail -c 32 "$T/fss.epoch0")
check "each finished epoch has a seal" test \
        "$(sql "$DB" "SELECT count(*) FROM audit_seal WHERE epoch >= 0")" -ge "$((e_now))"
check "daemon verify without the seed: intact" test "$(verify_rc)" -eq 0
check "... and it says plainly what it could not check" grep -q 'not checked: .*--seed' "$T/verify.out"
check "verify --seed: intact" test "$(verify_rc --seed "$SEED")" -eq 0
check "... every row MAC-checked (no 'not checked')" ! grep -q 'not checked' "$T/verify.out"
check "verify --seed - reads it from stdin" sh -c "echo '$SEED' | '$SECGUARDCTL' --config '$T/secguard.conf' audit verify --seed - >/dev/null"
echo "$SEED" >"$T/seed.txt"
chmod 0600 "$T/seed.txt"
check "verify --seed-file" test "$(verify_rc --seed-file "$T/seed.txt")" -eq 0
chmod 0644 "$T/seed.txt"
check "a seed file others can read is refused" test "$(verify_rc --seed-file "$T/seed.txt")" -eq 2
rm -f "$T/seed.txt"
typo=$(sed 's/^./z/' <<<"$SEED"); [ "$typo" != "$SEED" ] || typo=$(sed 's/^./y/' <<<"$SEED")
check "a typo in the seed is a usage error that says so" test "$(verify_rc --seed "$typo")" -eq 2
check "... 'typo'" grep -q typo "$T/verify.out"
other_seed=$(tail -n 1 < <(d=$(mktemp -d "$T/o.XXXXXX"); chmod 700 "$d"; sgctl audit setup-keys --state-dir "$d"))
check "another seed does not verify this log" test "$(verify_rc --seed "$other_seed")" -eq 1
check "... MAC mismatch named" grep -q 'MAC mismatch' "$T/verify.out"
sg_stop_daemon

# ---- offline, on copies (the daemon stopped, as after taking the disk away) ----
fresh() { rm -rf "$T/c"; cp -a "$T/state" "$T/c"; }
fresh
check "verify --seed --db COPY (no daemon): intact" test "$(verify_rc --seed "$SEED" --db "$T/c/secguard.db")" -eq 0
check "verify --db COPY without the seed: structure only, said so" \
        test "$(verify_rc --db "$T/c/secguard.db")" -eq 0 -a -n "$(grep 'not checked' "$T/verify.out")"
check "--db opens read-only: the copy is unchanged" cmp -s "$T/state/secguard.db" "$T/c/secguard.db"

# Root edits a past row and redoes every later MAC with the keys on disk, seals pointed at
# the new MACs, audit.head updated: verify without the seed cannot tell; with it, it can.
e_mid=$(sql "$DB" "SELECT min(epoch) FROM audit WHERE epoch >= 2")
victim=$(sql "$DB" "SELECT min(id) FROM audit WHERE epoch = $e_mid")
fresh
check "sg_audit_forge rewrites from row $victim (epoch $e_mid) on" quiet "$FORGE" "$T/c" "$victim" "nothing happened"
check "forged: structure-only verify does not notice (the threat)" test "$(verify_rc --db "$T/c/secguard.db")" -eq 0
check "forged: verify --seed catches it" test "$(verify_rc --seed "$SEED" --db "$T/c/secguard.db")" -eq 1
check "... naming row $victim" grep -q "BROKEN at row $victim: row $victim: MAC mismatch" "$T/verify.out"

# An epoch's tail deleted (the last row of epoch e_mid).
fresh
last=$(sql "$T/c/secguard.db" "SELECT max(id) FROM audit WHERE epoch = $e_mid")
sql "$T/c/secguard.db" "DELETE FROM audit WHERE id = $last" >/dev/null
check "tail of epoch $e_mid deleted: caught" test "$(verify_rc --seed "$SEED" --db "$T/c/secguard.db")" -eq 1
check "... named: epoch $e_mid, row $last missing at its end" grep -q "epoch $e_mid: rows $last..$last missing at its end" "$T/verify.out"

# A whole epoch deleted, its seal too.
fresh
sql "$T/c/secguard.db" "DELETE FROM audit WHERE epoch = $e_mid" >/dev/null
sql "$T/c/secguard.db" "DELETE FROM audit_seal WHERE epoch = $e_mid" >/dev/null
check "epoch $e_mid deleted whole: caught" test "$(verify_rc --seed "$SEED" --db "$T/c/secguard.db")" -eq 1
check "... named: epoch $e_mid has no seal" grep -q "epoch $e_mid: no seal" "$T/verify.out"
check "... also without the seed (structure)" test "$(verify_rc --db "$T/c/secguard.db")" -eq 1

# Rows moved: the first row of the next epoch and the last of this one swap places.
fresh
a=$(sql "$T/c/secguard.db" "SELECT max(id) FROM audit WHERE epoch = $e_mid")
b=$(sql "$T/c/secguard.db" "SELECT min(id) FROM audit WHERE epoch > $e_mid")
sql "$T/c/secguard.db" "UPDATE audit SET id = -1 WHERE id = $a" >/dev/null
sql "$T/c/secguard.db" "UPDATE audit SET id = $a WHERE id = $b" >/dev/null
sql "$T/c/secguard.db" "UPDATE audit SET id = $b WHERE id = -1" >/dev/null
check "rows $a and $b swapped across epochs: caught" test "$(verify_rc --seed "$SEED" --db "$T/c/secguard.db")" -eq 1
sg_log "$(cat "$T/verify.out")"
check "... named (row $a)" grep -q "BROKEN at row $a" "$T/verify.out"
check "... the epoch order is named" grep -q "after epoch .*moved" "$T/verify.out"

# ---- an older key file put back while the daemon is down ----
cp "$T/fss.old" "$T/state/audit.fss"
sg_start_daemon
check "replayed key file (epoch $(fss_epoch "$T/fss.old")): the daemon names it at start" \
        grep -q 'an older key file was put back' "$T/daemon.log"
check "... and records it in the daemon_start row" \
        sh -c "'$SECGUARDCTL' --config '$T/secguard.conf' audit --event daemon_start | grep -q 'older key file was put back'"
check "... the log stays verifiable (daemon)" test "$(verify_rc)" -eq 0
check "... and with the seed" test "$(verify_rc --seed "$SEED")" -eq 0
sg_stop_daemon

# ---- the crash window of an epoch change, made exactly: seal committed, key file not yet
# replaced (the file of the epoch just sealed is put back after a kill -9 right after the
# change; the daemon is idle, so the new epoch has no rows) ----
sg_start_daemon
e0=$(fss_epoch "$T/state/audit.fss")
cp "$T/state/audit.fss" "$T/fss.before"
for i in $(seq 1 60); do [ "$(fss_epoch "$T/state/audit.fss")" -eq "$e0" ] || break; sleep 0.05; done
sg_kill9_daemon
check "epoch $e0 was sealed before the kill" test -n "$(sql "$DB" "SELECT 1 FROM audit_seal WHERE epoch = $e0")"
cp "$T/fss.before" "$T/state/audit.fss"
lines_before=$(wc -l <"$T/daemon.log")
sg_start_daemon
check "restart from the crash window: no 'older key file' alarm" \
        ! sh -c "tail -n +$((lines_before + 1)) '$T/daemon.log' | grep -q 'older key file'"
check "... epoch $e0 keeps its one seal, and the log verifies (daemon)" test "$(verify_rc)" -eq 0
sg_stop_daemon
check "... and with the seed" test "$(verify_rc --seed "$SEED")" -eq 0

# ---- kill -9 while epochs change: nothing acknowledged is lost, the chain verifies ----
# An unlock's reply waits for the commit of its row: exit 0 means acknowledged.
: >"$T/acked"
for round in 1 2 3 4 5 6; do
        sg_start_daemon
        end=$((SECONDS + 3))
        while [ "$SECONDS" -lt "$end" ]; do
                fails 99 || true
                if sgctl unlock alice >/dev/null 2>&1; then echo >>"$T/acked"; fi
        done &
        sleep "1.$((RANDOM % 9))"
        sg_kill9_daemon
        wait
done
acked=$(wc -l <"$T/acked")
sg_start_daemon
check "kill -9 x6 across epoch changes: the daemon verifies the chain" test "$(verify_rc)" -eq 0
sg_stop_daemon
stored=$(sql "$DB" "SELECT count(*) FROM audit WHERE event = 'unlock'")
check "every acknowledged unlock is stored ($acked acknowledged, $stored stored)" test "$acked" -ge 1 -a "$stored" -ge "$acked"
check "kill -9 x6: verify --seed intact" test "$(verify_rc --seed "$SEED")" -eq 0

# ---- retention: pruned rows leave an anchor under the current epoch's key ----
sg_write_config "${CONF[@]}" "[audit]" "max_rows = 5"
sg_start_daemon
sleep 1.2
check "pruned to about 5 rows" test "$(sql "$DB" "SELECT count(*) FROM audit")" -le 8
check "the anchor carries its epoch" test -n "$(sql "$DB" "SELECT epoch FROM audit_anchor")"
check "after pruning: daemon verify intact" test "$(verify_rc)" -eq 0
check "after pruning: verify --seed intact" test "$(verify_rc --seed "$SEED")" -eq 0
check "seals of pruned epochs went with their rows" test \
        "$(sql "$DB" "SELECT count(*) FROM audit_seal WHERE last_id < (SELECT last_id FROM audit_anchor)")" -eq 0
sg_stop_daemon

# ---- setup-keys again after audit.fss was removed: refused, the log has epochs ----
mv "$T/state/audit.fss" "$T/fss.saved"
check "setup-keys on a log with epochs (audit.fss gone) is refused" ! quiet sgctl audit setup-keys
check "... saying why" sh -c "'$SECGUARDCTL' --config '$T/secguard.conf' audit setup-keys 2>&1 | grep -q 'already has forward-secure rows'"
check "... and writes no key file" test ! -e "$T/state/audit.fss"
mv "$T/fss.saved" "$T/state/audit.fss"

# ---- the seed is nowhere on the host ----
nodash=$(tr -d - <<<"$SEED")
seedhex=$($PY - "$SEED" <<'PY'
import sys
a = "0123456789abcdefghjkmnpqrstvwxyz"
bits = "".join(format(a.index(ch), "05b") for ch in sys.argv[1].replace("-", ""))
print(int(bits[:128], 2).to_bytes(16, "big").hex())
PY
)
leak=
for f in "$T/daemon.log" "$T"/state/* "$T"/state/.[!.]*; do
        [ -f "$f" ] || continue
        if grep -aqiF -e "$SEED" -e "$nodash" "$f" || [ -n "$(od -An -tx1 -v "$f" | tr -d ' \n' | grep -F "$seedhex")" ]; then
                leak="$leak $f"
        fi
done
check "the seed (text or bytes) is in no log, state file or database (found in:${leak:- none})" test -z "$leak"
check "the daemon's stderr never had it" ! grep -qiF "$SEED" "$T/daemon.log"

echo "ok: $SG_PASSED checks"
