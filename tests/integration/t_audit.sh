#!/bin/bash
# The audit log from the admin's side: every event kind the system produces today reaches
# the table with its fields; the CLI filters (user, event, rhost, since/until in ISO and
# relative forms, limit) and refuses bad arguments with exit 2 even when the daemon is down;
# `audit verify` catches an UPDATE, a DELETE and an INSERT made behind the daemon's back;
# hostile names print escaped and as valid JSON (C1 controls and bidi overrides included);
# SQL payloads are stored verbatim; an admin-group member reads but cannot unlock; sealed
# usernames (keygen, <sealed>, --reveal, a wrong key); pruning keeps the chain verifiable and
# the prune anchor cannot be forged; rows cut from the end while the daemon is down stay
# reported on every later verify; audit.head is written durably.
. "$(dirname "$0")/lib.sh"
RL=("[ratelimit]" "user_source_max_failures = 3" "source_max_failures = 1000"
    "user_max_failures = 1000" "spray_max_users = 1000" "delay_step_ms = 0")
# The daemon resolves [daemon] admin_group with getgrnam() on the host (it does not run under
# nss_wrapper): use a group the host has, and a peer whose supplementary groups hold it.
ADMIN_GROUP=
for g in adm staff users; do
        if getent group "$g" >/dev/null; then ADMIN_GROUP=$g; break; fi
done
sg_setup "upgrade_hashes = yes" "${RL[@]}" ${ADMIN_GROUP:+"[daemon]" "admin_group = $ADMIN_GROUP"}
echo 'olddes:abJnggxhB/yWI:20000:0:99999:7:::' >>"$T/shadow"
echo 'planted:$argon2id$v=19$m=4194304,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$zVMsI3Ecw6SWfZHL8vhC0yKAN1IkIGcPXj9kcY2RBdw:20000:0:99999:7:::' >>"$T/shadow"
printf 'olddes:x:1006:1006::/:/bin/sh\nplanted:x:1005:1005::/:/bin/sh\n' >>"$T/passwd"

# JSON lines of the whole log, and helpers over them.
all_json() { sgctl --json audit --limit 100000 "$@"; }
ids_of() { $PY -c 'import json,sys; print(" ".join(str(json.loads(l)["id"]) for l in sys.stdin))'; }
# jq-like one-off: py_rows 'python expression over rows (a list of dicts)' [audit filters...]
py_rows() {
        local expr=$1
        shift
        all_json "$@" | $PY -c "import json,os,re,sys; rows=[json.loads(l) for l in sys.stdin]; ok=($expr); print(rows if not ok else '', file=sys.stderr) if not ok else None; sys.exit(0 if ok else 1)"
}
iso_now() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; }
# Commands whose output must not swallow check's own "ok" line.
login_tty() { sg_pam -I rhost=192.0.2.10 -I tty=pts/7 alice authenticate <<<"$SG_PW_ALICE" >"$T/pam.out" 2>&1; }
root_passwd() { printf '%s\n%s\n' "$2" "$2" | sg_pam "$1" chauthtok >"$T/pam.out" 2>&1; }
quiet() { "$@" >/dev/null 2>&1; }

# ---- usage errors: exit 2 before any connection (the daemon is not running yet) ----
usage_rc() { local rc=0; sgctl "$@" >/dev/null 2>"$T/usage.err" || rc=$?; echo "$rc"; }
check "daemon down: unknown --event is a usage error (2)" test "$(usage_rc audit --event no_such_event)" -eq 2
check "the message lists the valid names" grep -q "auth_success" "$T/usage.err"
check "daemon down: invalid date 2026-02-31 is a usage error" test "$(usage_rc audit --since 2026-02-31)" -eq 2
check "daemon down: garbage time is a usage error" test "$(usage_rc audit --until yesterday)" -eq 2
check "daemon down: @EPOCH that overflows is a usage error" test "$(usage_rc audit --since @18446744073710)" -eq 2
check "daemon down: --since after --until is a usage error" test "$(usage_rc audit --since 1h --until 2h)" -eq 2
check "daemon down: --limit 0 is a usage error" test "$(usage_rc audit --limit 0)" -eq 2
check "daemon down: --reveal without --key is a usage error" test "$(usage_rc audit --reveal)" -eq 2
check "daemon down: audit verify with an argument is a usage error" test "$(usage_rc audit verify now)" -eq 2
check "daemon down: unknown option is a usage error" test "$(usage_rc audit --frobnicate)" -eq 2
check "daemon down: unknown command is a usage error" test "$(usage_rc frobnicate)" -eq 2
check "daemon down: a valid query is exit 3 (unreachable)" test "$(usage_rc audit --event auth_success --since 1h)" -eq 3

# Every event name of the common table (printed by the sg_event_table helper, built from the
# same common/event_table.c as the daemon and the CLI) is accepted by the CLI, and no other.
mapfile -t DAEMON_EVENTS < <("$SG_BUILD/tests/integration/sg_event_table" | cut -f1)
check "the event table lists 22 event kinds" test "${#DAEMON_EVENTS[@]}" -eq 22
bad=
for e in "${DAEMON_EVENTS[@]}"; do [ "$(usage_rc audit --event "$e")" -eq 3 ] || bad="$bad $e"; done
check "every daemon event name passes the CLI's check (refused:${bad:- none})" test -z "$bad"

sg_start_daemon

# ---- produce every event kind ----
t_start=$(iso_now)
sleep 0.05
check "auth_success (argon2id) with rhost and tty" login_tty
sleep 0.05
t_after_success=$(iso_now)
check "bad_password" ! sg_auth alice "wrong" 192.0.2.11
check "unknown_user" ! sg_auth mallory "anything" 192.0.2.12
check "locked_hash" ! sg_auth locked "whatever"
check "unsupported_hash" ! sg_auth olddes "anything"
check "password_too_long" ! sg_auth alice "$(head -c 2000 /dev/zero | tr '\0' a)"
check "hash_cost" ! sg_auth planted "anything"
ESC_USER=$'\x1b]0;pwned\x07'
check "invalid_input (a terminal escape as the name)" ! sg_auth "$ESC_USER" "pw" 192.0.2.13
# abandoned: a client reserves an attempt and vanishes before REPORT.
$PY - "$T/run/secguardd.sock" <<'PYEOF' || fail "abandoning client"
import socket, struct, sys
def field(tag, v): return bytes([tag]) + struct.pack(">H", len(v)) + v
body = field(1, b"carol") + field(4, b"sshd") + field(2, b"192.0.2.14")
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"SG\x01\x01" + struct.pack(">I", len(body)) + body)
s.settimeout(3); s.recv(100); s.close()
PYEOF
# lockout + auth_blocked: 3 failures for bob from one source, then the right password.
for i in 1 2 3; do sg_auth bob wrong 192.0.2.20 && fail "wrong password accepted"; done
check "auth_blocked after the lock" ! sg_auth bob "$SG_PW_BOB" 192.0.2.20
check "unlock bob" quiet sgctl unlock bob
# password_changed (root changes bob's password), hash_upgraded (carol's sha512crypt).
check "password_changed (root sets bob's password)" root_passwd bob "bob audit pw 2"
check "hash_upgraded on carol's login" sg_auth carol "$SG_PW_CAROL"
# peer_denied: a non-root peer.
rc=0
sgctl_as_nobody audit >/dev/null 2>&1 || rc=$?
check "non-root audit read refused with exit 4" test "$rc" -eq 4
# protocol_error: a frame with a bad magic.
sg_bad_frame
sleep 0.2
# daemon_stop / a second daemon_start.
check "SIGTERM stops the daemon (exit 0)" sg_stop_daemon
sg_start_daemon
sleep 0.05
t_end=$(iso_now)

# ---- every kind reached the table with its fields ----
for e in auth_success auth_failure auth_blocked lockout unlock password_changed hash_upgraded \
         peer_denied protocol_error daemon_start daemon_stop; do
        check "event $e in the table" test "$(sg_sql "SELECT count(*) FROM audit WHERE event = '$e';")" -ge 1
done
for reason in bad_password unknown_user invalid_input locked_hash unsupported_hash password_too_long \
              hash_cost abandoned; do
        check "auth_failure reason $reason in the table" \
                test "$(sg_sql "SELECT count(*) FROM audit WHERE event = 'auth_failure' AND reason = '$reason';")" -ge 1
done
check "auth_success row: user, service, rhost, tty, pid, uid" py_rows \
        'len(rows) == 1 and rows[0]["user"] == "alice" and rows[0]["service"] == "sgtest" and rows[0]["rhost"] == "192.0.2.10" and rows[0]["tty"] == "pts/7" and rows[0]["pid"] > 1 and rows[0]["uid"] == 0 and "reason" not in rows[0]' \
        --event auth_success --user alice
check "the same fields in the SQL table" test \
        "$(sg_sql "SELECT user, service, rhost, tty, uid, pid > 1 FROM audit WHERE event = 'auth_success' AND user = 'alice';")" \
        = "alice|sgtest|192.0.2.10|pts/7|0|1"
check "human output shows every field" grep -Eq \
        'auth_success +user=alice service=sgtest rhost=192\.0\.2\.10 tty=pts/7 pid=[0-9]+ uid=0$' \
        <(sgctl audit --event auth_success --user alice)
check "bad_password row: user, rhost, reason" py_rows \
        'any(r.get("reason") == "bad_password" and r.get("rhost") == "192.0.2.11" and r.get("service") == "sgtest" for r in rows)' \
        --event auth_failure --user alice
check "lockout row: reason = lock kind, detail names the pair" py_rows \
        'len(rows) == 1 and rows[0]["reason"] == "user_source" and rows[0]["user"] == "bob" and "bob@192.0.2.20" in rows[0]["detail"]' \
        --event lockout
check "auth_blocked row: reason locked, rhost" py_rows \
        'len(rows) == 1 and rows[0]["reason"] == "locked" and rows[0]["user"] == "bob" and rows[0]["rhost"] == "192.0.2.20"' \
        --event auth_blocked
check "unlock row: user bob, uid 0" py_rows 'len(rows) == 1 and rows[0]["user"] == "bob" and rows[0]["uid"] == 0' --event unlock
check "password_changed row: user bob" py_rows 'len(rows) == 1 and rows[0]["user"] == "bob"' --event password_changed
check "hash_upgraded row: user carol" py_rows 'len(rows) == 1 and rows[0]["user"] == "carol"' --event hash_upgraded
check "peer_denied row: uid 65534, refused as it connected (it may ask nothing)" py_rows \
        'len(rows) == 1 and rows[0]["uid"] == 65534 and rows[0]["pid"] > 1 and "no request is open" in rows[0]["detail"]' --event peer_denied
check "protocol_error row: detail says why" py_rows 'len(rows) == 1 and rows[0].get("detail")' --event protocol_error
check "abandoned row: carol from 192.0.2.14, service sshd" py_rows \
        'any(r.get("reason") == "abandoned" and r["user"] == "carol" and r["rhost"] == "192.0.2.14" and r["service"] == "sshd" for r in rows)' \
        --event auth_failure
check "daemon_start twice, daemon_stop once" py_rows 'len(rows) == 2' --event daemon_start
check "daemon_stop once" py_rows 'len(rows) == 1' --event daemon_stop

# ---- filters ----
total=$(sg_sql 'SELECT count(*) FROM audit;')
check "no filter, --limit 100000: every row ($total)" test "$(all_json | grep -c .)" -eq "$total"
check "rows come oldest first" py_rows 'all(a["id"] < b["id"] for a, b in zip(rows, rows[1:]))'
check "--user alice: only alice" py_rows 'len(rows) == 3 and all(r.get("user") == "alice" for r in rows)' --user alice
check "--event auth_failure: only that event" py_rows 'len(rows) >= 8 and all(r["event"] == "auth_failure" for r in rows)' --event auth_failure
check "--rhost 192.0.2.20: bob's 3 failures, lockout, blocked" py_rows \
        'len(rows) == 5 and all(r["rhost"] == "192.0.2.20" for r in rows)' --rhost 192.0.2.20
check "--user and --event combine" py_rows 'len(rows) == 3 and all(r["user"] == "bob" and r.get("reason") == "bad_password" for r in rows)' \
        --user bob --event auth_failure
check "--since/--until ISO: exactly alice's success" py_rows \
        'len(rows) == 1 and rows[0]["event"] == "auth_success"' --since "$t_start" --until "$t_after_success"
check "--since ISO (space form): alice's later failures, not her success" py_rows \
        'not any(r["event"] == "auth_success" and r.get("user") == "alice" for r in rows) and any(r.get("reason") == "bad_password" for r in rows)' \
        --since "${t_after_success/T/ }"
check "--until ISO: the rows up to alice's success" py_rows \
        'rows[-1]["event"] == "auth_success" and rows[0]["event"] == "daemon_start"' --until "$t_after_success"
check "--until ISO before everything: none" test "$(all_json --until 2020-01-01 | grep -c . || true)" -eq 0
check "--since 1h (relative): all rows" test "$(all_json --since 1h | grep -c .)" -eq "$total"
check "--until 1h (relative): none" test "$(all_json --until 1h | grep -c . || true)" -eq 0
check "--since 2d --until now: all rows" test "$(all_json --since 2d --until now | grep -c .)" -eq "$total"
check "--since 900s: all rows (the test is younger)" test "$(all_json --since 900s | grep -c .)" -eq "$total"
check "--since 15m --user bob: bob's rows only" py_rows 'len(rows) >= 6 and all(r["user"] == "bob" for r in rows)' --since 15m --user bob
check "--since @0 (epoch form): all rows" test "$(all_json --since @0 | grep -c .)" -eq "$total"
check "--until @EPOCH before the start: none" test "$(all_json --until "@$(( $(date +%s) - 3600 ))" | grep -c . || true)" -eq 0
check "--since at the end marker: only the daemon restart rows or none" py_rows \
        'all(r["event"] in ("daemon_start",) for r in rows)' --since "$t_end"
newest5=$(all_json | ids_of | tr ' ' '\n' | tail -n 5 | tr '\n' ' ' | sed 's/ $//')
check "--limit 5: the newest five, oldest first ($newest5)" test "$(sgctl --json audit --limit 5 | ids_of)" = "$newest5"
check "--limit 2 with --user alice: alice's newest two" test \
        "$(sgctl --json audit --user alice --limit 2 | ids_of)" = "$(all_json --user alice | ids_of | tr ' ' '\n' | tail -n 2 | tr '\n' ' ' | sed 's/ $//')"
check "default limit is 100 rows" test "$(sgctl --json audit | grep -c .)" -eq "$((total < 100 ? total : 100))"

# ---- hostile names: escaped for terminals, valid JSON ----
sgctl audit --event auth_failure --limit 1000 >"$T/human.out"
check "no raw ESC byte in human output" ! grep -q $'\x1b' "$T/human.out"
check "no raw BEL byte in human output" ! grep -q $'\x07' "$T/human.out"
check "the escape is shown as \\x1b]0;pwned\\x07" grep -qF 'user=\x1b]0;pwned\x07' "$T/human.out"
sgctl --json audit --event auth_failure --limit 1000 >"$T/json.out"
check "no raw ESC byte in JSON output" ! grep -q $'\x1b' "$T/json.out"
check "--json: every line valid JSON, the name round-trips exactly" $PY -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert any(r.get("user") == "\x1b]0;pwned\x07" and r.get("reason") == "invalid_input" for r in rows), rows
' "$T/json.out"
check "the table holds the raw name (audit is the truth)" test \
        "$(sg_sql "SELECT count(*) FROM audit WHERE user = char(27) || ']0;pwned' || char(7);")" -eq 1

# ---- SQL payloads in user, rhost and tty are stored verbatim ----
SQL_USER="x'); DELETE FROM audit;--"
SQL_RHOST="1.2.3.4' OR '1'='1"
SQL_TTY='pts/1"; DROP TABLE locks;--'
sg_pam -I "rhost=$SQL_RHOST" -I "tty=$SQL_TTY" "$SQL_USER" authenticate <<<"pw" >"$T/pam.out" 2>&1 &&
        fail "SQL payload login accepted"
got=$(sg_sql "SELECT hex(user) || '|' || hex(rhost) || '|' || hex(tty) FROM audit ORDER BY id DESC LIMIT 1;")
check "user, rhost, tty stored byte for byte" test "$got" = "$(hex "$SQL_USER")|$(hex "$SQL_RHOST")|$(hex "$SQL_TTY")"
check "tables intact after the payloads" test "$(sg_sql "SELECT count(*) FROM sqlite_master WHERE name IN ('audit','locks');")" -eq 2
export SQL_USER SQL_RHOST SQL_TTY
check "the CLI returns the payload row by --user, fields intact" py_rows \
        'len(rows) == 1 and rows[0]["user"] == os.environ["SQL_USER"] and rows[0]["rhost"] == os.environ["SQL_RHOST"] and rows[0]["tty"] == os.environ["SQL_TTY"] and rows[0]["reason"] == "invalid_input"' \
        --user "$SQL_USER"

# ---- C1 controls and bidi overrides (U+009B CSI, U+202E RLO) in rhost and tty ----
UNI_RHOST=$'10.9.8.7\xc2\x9b31m\xe2\x80\xaeevil'
UNI_TTY=$'pts/\xe2\x80\xae9\xc2\x9b'
sg_pam -I "rhost=$UNI_RHOST" -I "tty=$UNI_TTY" alice authenticate <<<"wrong" >"$T/pam.out" 2>&1 &&
        fail "login with a hostile rhost accepted"
uni_id=$(sg_sql "SELECT max(id) FROM audit WHERE hex(rhost) = '$(hex "$UNI_RHOST")' AND hex(tty) = '$(hex "$UNI_TTY")';")
check "the row holds rhost and tty byte for byte (id ${uni_id:-none})" test -n "$uni_id"
sgctl --json audit --limit 100000 >"$T/uni.json"
sgctl audit --limit 100000 >"$T/uni.human"
raw_bytes() { LC_ALL=C grep -q -e $'\xc2\x9b' -e $'\xe2\x80\xae' "$1"; }
check "--json: no raw U+009B or U+202E bytes" ! raw_bytes "$T/uni.json"
check "--json: written as \\u009b and \\u202e" grep -qF '"rhost":"10.9.8.7\u009b31m\u202eevil","tty":"pts/\u202e9\u009b"' "$T/uni.json"
export UNI_RHOST UNI_TTY
check "--json: the values round-trip exactly" py_rows \
        'any(r.get("rhost") == os.environ["UNI_RHOST"] and r.get("tty") == os.environ["UNI_TTY"] for r in rows)'
check "human output: no raw U+009B or U+202E bytes" ! raw_bytes "$T/uni.human"
check "human output: shown as \\xHH" grep -qF 'rhost=10.9.8.7\xc2\x9b31m\xe2\x80\xaeevil tty=pts/\xe2\x80\xae9\xc2\x9b' "$T/uni.human"

# ---- an admin-group member: read-only views ----
if [ -n "$ADMIN_GROUP" ]; then
        admin_gid=$(getent group "$ADMIN_GROUP" | cut -d: -f3)
        as_admin() {
                [ -x "$T/secguardctl-copy" ] || install -m 0755 "$SECGUARDCTL" "$T/secguardctl-copy"
                setpriv --reuid=nobody --regid=nogroup --groups="$admin_gid" "$T/secguardctl-copy" \
                        --config "$T/secguard.conf" "$@"
        }
        rc=0; as_admin --json audit --limit 5 >"$T/admin.out" 2>"$T/admin.err" || rc=$?
        check "admin group $ADMIN_GROUP (gid $admin_gid) member, uid nobody: audit readable (exit $rc)" \
                test "$rc" -eq 0 -a "$(grep -c . "$T/admin.out")" -eq 5
        rc=0; as_admin audit verify >/dev/null 2>&1 || rc=$?
        check "... audit verify allowed" test "$rc" -eq 0
        rc=0; as_admin unlock bob >/dev/null 2>"$T/admin.err" || rc=$?
        check "... unlock refused with exit 4" test "$rc" -eq 4
        rc=0; as_admin unlock --rhost 192.0.2.20 >/dev/null 2>&1 || rc=$?
        check "... unlock --rhost refused with exit 4" test "$rc" -eq 4
        check "... the refused unlocks are audited as peer_denied (uid 65534)" py_rows \
                'len([r for r in rows if r["uid"] == 65534]) == 3' --event peer_denied
        rc=0; sgctl_as_nobody audit >/dev/null 2>&1 || rc=$?
        check "... and the same uid without the group is refused (exit 4)" test "$rc" -eq 4
else
        echo "# SKIP admin-group checks: the host has none of the groups adm, staff, users for [daemon] admin_group" >&2
fi

# ---- audit verify: intact, then tampering behind the daemon's back ----
check "audit verify passes on the untouched log" quiet sgctl audit verify
out=$(sgctl --json audit verify)
check "audit verify --json says intact with the row count" $PY -c '
import json, sys; d = json.loads(sys.argv[1]); assert d["intact"] is True and d["rows"] == int(sys.argv[2]), d' "$out" "$(sg_sql 'SELECT count(*) FROM audit;')"
sg_stop_daemon
mkdir -m 0700 "$T/pristine"
cp -a "$T/state/." "$T/pristine/"
restore() {
        sg_stop_daemon
        rm -rf "$T/state"
        cp -a "$T/pristine" "$T/state"
        sg_start_daemon
}
# verify_broken ROW [TEXT]: exit 1, row named in human and JSON output, TEXT in the detail.
verify_broken() {
        local row=$1 text=${2:-} rc=0 out
        out=$(sgctl audit verify 2>&1) || rc=$?
        [ "$rc" -eq 1 ] || { echo "verify exit $rc: $out" >&2; return 1; }
        grep -q "BROKEN at row $row:" <<<"$out" || { echo "verify said: $out" >&2; return 1; }
        grep -qF -- "$text" <<<"$out" || { echo "verify said: $out (expected \"$text\")" >&2; return 1; }
        out=$(sgctl --json audit verify) && { echo "verify --json exit 0: $out" >&2; return 1; }
        $PY -c 'import json,sys; d=json.loads(sys.argv[2]); assert d["intact"] is False and d["first_bad_id"] == int(sys.argv[1]), d' "$row" "$out"
}
restore
mid=$(sg_sql "SELECT id FROM audit WHERE event = 'lockout';")
max=$(sg_sql 'SELECT max(id) FROM audit;')
sg_sql "UPDATE audit SET user = 'root' WHERE id = $mid;"
check "UPDATE of row $mid (sqlite3 CLI) caught: exit 1, row $mid named" verify_broken "$mid"
restore
check "restored copy verifies again" quiet sgctl audit verify
sg_sql "DELETE FROM audit WHERE id = $mid;"
check "DELETE of row $mid caught at the row after the gap ($((mid + 1)))" verify_broken "$((mid + 1))"
restore
sg_sql "UPDATE audit SET detail = 'x' WHERE id = 1;"
check "UPDATE of the very first row caught (row 1)" verify_broken 1
restore
forged=$(sg_sql "INSERT INTO audit(time_usec, event, reason, user, service, rhost, pid, uid, mac)
        SELECT time_usec + 1, 'auth_success', NULL, 'mallory', 'sshd', '203.0.113.9', 1, 0, randomblob(32)
        FROM audit ORDER BY id DESC LIMIT 1; SELECT last_insert_rowid();")
check "INSERT of a forged row $forged caught" verify_broken "$forged"
restore
# A middle INSERT: an id slotted between two rows (the real ones were renumbered around it).
sg_sql "DELETE FROM audit WHERE id = $mid; INSERT INTO audit(id, time_usec, event, user, mac)
        VALUES($mid, 1, 'unlock', 'mallory', randomblob(32));"
check "a forged row in place of row $mid caught" verify_broken "$mid"
restore
# The event column from the database is escaped too (the daemon only checks names it writes).
sg_sql "UPDATE audit SET event = char(27) || '[2J' || char(155) || 'x' WHERE id = $mid;"
sgctl audit --limit 100000 >"$T/event.human"
check "an edited event with ESC and U+009B: no raw ESC or CSI in human output" \
        ! LC_ALL=C grep -q -e $'\x1b' -e $'\xc2\x9b' "$T/event.human"
check "... shown escaped in the event column" grep -qF '\x1b[2J\xc2\x9bx' "$T/event.human"
check "... and as \\u001b, \\u009b in JSON" grep -qF '"event":"\u001b[2J\u009bx"' <(sgctl --json audit --limit 100000)
restore
check "restored copy verifies (and the daemon appends after it)" quiet sgctl audit verify

# ---- sealed usernames ----
mkdir -m 0700 "$T/keys"
check "keygen makes a key pair" quiet sgctl keygen --public "$T/keys/seal.pub" --secret "$T/keys/seal.sec"
check "keygen: both files 0600, 32 bytes" test "$(stat -c '%a %s' "$T/keys/seal.pub" "$T/keys/seal.sec" | sort -u)" = "600 32"
check "keygen: the two files differ" ! cmp -s "$T/keys/seal.pub" "$T/keys/seal.sec"
sum_before=$(sha256sum "$T/keys/seal.pub" "$T/keys/seal.sec")
rc=0; sgctl keygen --public "$T/keys/seal.pub" --secret "$T/keys/new.sec" >/dev/null 2>"$T/keygen.err" || rc=$?
check "keygen refuses to overwrite a public key (exit 1)" test "$rc" -eq 1
check "... naming the file" grep -q "seal.pub exists" "$T/keygen.err"
check "... and creates no half of a pair" test ! -e "$T/keys/new.sec"
rc=0; sgctl keygen --public "$T/keys/new.pub" --secret "$T/keys/seal.sec" >/dev/null 2>&1 || rc=$?
check "keygen refuses to overwrite a secret key (exit 1)" test "$rc" -eq 1 -a ! -e "$T/keys/new.pub"
ln -s "$T/keys/nowhere" "$T/keys/dangling"
rc=0; sgctl keygen --public "$T/keys/dangling" --secret "$T/keys/s2" >/dev/null 2>&1 || rc=$?
check "keygen refuses a dangling symlink" test "$rc" -eq 1 -a ! -e "$T/keys/s2" -a ! -e "$T/keys/nowhere"
check "existing keys unchanged" test "$(sha256sum "$T/keys/seal.pub" "$T/keys/seal.sec")" = "$sum_before"
check "keygen without --secret is a usage error" test "$(usage_rc keygen --public "$T/keys/x.pub")" -eq 2
check "keygen with one path for both is a usage error" test "$(usage_rc keygen --public "$T/keys/x" --secret "$T/keys/x")" -eq 2
sgctl keygen --public "$T/keys/other.pub" --secret "$T/keys/other.sec" >/dev/null || fail "second key pair"

sg_stop_daemon
sg_write_config "upgrade_hashes = yes" "${RL[@]}" "[audit]" "seal_public_key = $T/keys/seal.pub"
chmod 0644 "$T/keys/seal.pub"
rc=0; timeout 10 "${SG_DAEMON_WRAP[@]}" "$SECGUARDD" --config "$T/secguard.conf" --log-target stderr >"$T/badkey.log" 2>&1 || rc=$?
check "daemon refuses a group/world-readable seal key" test "$rc" -ne 0 -a "$rc" -ne 124
check "... naming the file and the fix" grep -q "seal.pub.*chmod" "$T/badkey.log"
chmod 0600 "$T/keys/seal.pub"
log_mark=$(wc -l <"$T/daemon.log")
sg_start_daemon
before=$(sg_sql 'SELECT max(id) FROM audit;')
check "unknown user mallory refused" ! sg_auth mallory "Tr0ub4dor&3" 192.0.2.30
check "known user alice's failure is not sealed" ! sg_auth alice "wrong" 192.0.2.31
check "a terminal escape as an unknown name is sealed too" ! sg_auth "$ESC_USER" "pw" 192.0.2.32
for i in 1 2 3; do sg_auth mallory wrong 192.0.2.33 || true; done
row=$(sg_sql "SELECT id FROM audit WHERE id > $before AND rhost = '192.0.2.30';")
check "sealed row: user NULL, user_sealed = 7 + 48 bytes" test \
        "$(sg_sql "SELECT user IS NULL, length(user_sealed) FROM audit WHERE id = $row;")" = "1|55"
check "alice's row keeps the name in clear" test \
        "$(sg_sql "SELECT user, user_sealed IS NULL FROM audit WHERE id > $before AND rhost = '192.0.2.31';")" = "alice|1"
check "no audit column names mallory (lockout detail included)" test \
        "$(sg_sql "SELECT count(*) FROM audit WHERE id > $before AND (user LIKE '%mallory%' OR detail LIKE '%mallory%' OR reason LIKE '%mallory%');")" -eq 0
check "the lockout of the sealed pair names a pseudonym and the source" py_rows \
        'any(r["event"] == "lockout" and r["user"] == "<sealed>" and re.search(r"~[0-9a-f]{24}@192\.0\.2\.33", r["detail"]) for r in rows)' --since "@0" --event lockout
check "no table holds the sealed name in clear" \
        test "$(sg_sql "SELECT (SELECT count(*) FROM attempts WHERE source = '192.0.2.33' AND user LIKE '%mallory%') + (SELECT count(*) FROM locks WHERE key LIKE '%mallory%@192.0.2.33') + (SELECT count(*) FROM audit WHERE id > $before AND (user LIKE '%mallory%' OR detail LIKE '%mallory%'));")" -eq 0
check "secguardctl locks shows the pseudonym, not the name" ! grep -q mallory <(sgctl locks)
tail -n +"$((log_mark + 1))" "$T/daemon.log" >"$T/daemon.sealed.log"
check "the daemon's log (stderr target) does not name mallory" ! grep -q mallory "$T/daemon.sealed.log"
check "the daemon's log shows SECGUARD_USER=<sealed>" grep -q 'SECGUARD_USER=<sealed>' "$T/daemon.sealed.log"
sgctl audit --rhost 192.0.2.30 >"$T/sealed.out"
check "audit shows user=<sealed>" grep -q 'reason=unknown_user user=<sealed> ' "$T/sealed.out"
check "... and not the name" ! grep -q mallory "$T/sealed.out"
check "audit --json: \"user\":\"<sealed>\",\"sealed\":true" py_rows \
        'len(rows) == 1 and rows[0]["user"] == "<sealed>" and rows[0]["sealed"] is True and "revealed" not in rows[0]' --rhost 192.0.2.30
rc=0; sgctl audit --rhost 192.0.2.30 --reveal --key "$T/keys/seal.sec" >"$T/reveal.out" 2>"$T/reveal.err" || rc=$?
check "--reveal with the right key: exit 0" test "$rc" -eq 0
check "--reveal shows user=<sealed:mallory>" grep -q 'user=<sealed:mallory> ' "$T/reveal.out"
check "--reveal --json: \"user\":\"mallory\",\"sealed\":true,\"revealed\":true" py_rows \
        'len(rows) == 1 and rows[0]["user"] == "mallory" and rows[0]["sealed"] is True and rows[0]["revealed"] is True' \
        --rhost 192.0.2.30 --reveal --key "$T/keys/seal.sec"
sgctl audit --rhost 192.0.2.32 --reveal --key "$T/keys/seal.sec" >"$T/reveal2.out"
check "a revealed escape sequence is escaped" grep -qF 'user=<sealed:\x1b]0;pwned\x07>' "$T/reveal2.out"
check "... with no raw ESC/BEL" ! grep -q $'[\x1b\x07]' "$T/reveal2.out"
check "a revealed escape sequence is valid JSON" py_rows 'rows[0]["user"] == "\x1b]0;pwned\x07"' \
        --rhost 192.0.2.32 --reveal --key "$T/keys/seal.sec"
check "--reveal leaves clear names alone" grep -q 'user=alice ' <(sgctl audit --rhost 192.0.2.31 --reveal --key "$T/keys/seal.sec")
rc=0; sgctl audit --rhost 192.0.2.30 --reveal --key "$T/keys/other.sec" >"$T/wrong.out" 2>"$T/wrong.err" || rc=$?
check "--reveal with a wrong key: exit 1" test "$rc" -eq 1
check "... rows still printed as <sealed>" grep -q 'user=<sealed> ' "$T/wrong.out"
check "... with a note naming the count and the key" grep -q "1 sealed user name(s) could not be opened with $T/keys/other.sec" "$T/wrong.err"
sgctl --json audit --rhost 192.0.2.30 --reveal --key "$T/keys/other.sec" >"$T/wrong.json" 2>/dev/null || true
check "--reveal with a wrong key --json: \"user\":\"<sealed>\",\"revealed\":false" $PY -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 1 and rows[0]["user"] == "<sealed>" and rows[0]["sealed"] is True and rows[0]["revealed"] is False, rows
' "$T/wrong.json"
chmod 0644 "$T/keys/seal.sec"
rc=0; sgctl audit --reveal --key "$T/keys/seal.sec" >/dev/null 2>"$T/unsafe.err" || rc=$?
check "--reveal refuses a group/world-readable secret key (exit 1, before any row)" test "$rc" -eq 1
check "... naming the file and the fix" grep -q "seal.sec.*chmod" "$T/unsafe.err"
chmod 0600 "$T/keys/seal.sec"
rc=0; sgctl audit --reveal --key "$T/keys/seal.pub.missing" >/dev/null 2>&1 || rc=$?
check "--reveal with a missing key file: exit 1" test "$rc" -eq 1
head -c 31 /dev/urandom >"$T/keys/short.sec"; chmod 0600 "$T/keys/short.sec"
rc=0; sgctl audit --reveal --key "$T/keys/short.sec" >/dev/null 2>"$T/short.err" || rc=$?
check "--reveal with a 31-byte key: exit 1 with a reason" test "$rc" -eq 1 -a -s "$T/short.err"
check "sealed rows verify" quiet sgctl audit verify

# ---- pruning at start keeps the chain verifiable ----
rows_now=$(sg_sql 'SELECT count(*) FROM audit;')
sg_stop_daemon
sg_write_config "upgrade_hashes = yes" "${RL[@]}" "[audit]" "seal_public_key = $T/keys/seal.pub" "max_rows = 10"
sg_start_daemon
left=$(sg_sql 'SELECT count(*) FROM audit;')
check "max_rows = 10: $rows_now rows pruned to $left (10 + this start's rows at most)" test "$left" -le 12 -a "$left" -ge 10
check "the oldest rows went (min id > 1)" test "$(sg_sql 'SELECT min(id) FROM audit;')" -gt 1
check "the anchor records the last pruned row" test \
        "$(sg_sql 'SELECT last_id FROM audit_anchor;')" -eq $(( $(sg_sql 'SELECT min(id) FROM audit;') - 1 ))
check "audit verify passes after pruning" quiet sgctl audit verify
check "a login after pruning" sg_auth alice "$SG_PW_ALICE"
check "verify still passes" quiet sgctl audit verify
first=$(sg_sql 'SELECT min(id) FROM audit;')
orig_event=$(sg_sql "SELECT event FROM audit WHERE id = $first;")
sg_sql "UPDATE audit SET event = 'unlock' WHERE id = $first;"
check "tampering with the first row after the anchor is caught" verify_broken "$first"

# ---- the prune anchor has its own MAC: moving it over deleted rows is caught ----
sg_sql "UPDATE audit SET event = '$orig_event' WHERE id = $first;" # undo the tampering above
check "verify passes again once the row is restored" quiet sgctl audit verify
check "the anchor carries its own 32-byte MAC" test "$(sg_sql 'SELECT length(mac) FROM audit_anchor;')" -eq 32
sg_stop_daemon
rm -rf "$T/pruned"
cp -a "$T/state" "$T/pruned"
restore_pruned() {
        sg_stop_daemon
        rm -rf "$T/state"
        cp -a "$T/pruned" "$T/state"
}
restore_pruned
sg_start_daemon
n=$(( $(sg_sql 'SELECT min(id) FROM audit;') + 2 ))
sg_sql "UPDATE audit_anchor SET (last_id, last_mac) = (SELECT id, mac FROM audit WHERE id = $n);
        DELETE FROM audit WHERE id <= $n;"
check "rows up to $n deleted and the anchor set to row $n's (id, mac): verify fails naming the anchor" \
        verify_broken "$n" "prune anchor (rows up to $n): MAC mismatch (tampered)"
restore_pruned
n=$(sg_sql 'SELECT max(id) FROM audit;')
sg_sql "UPDATE audit_anchor SET (last_id, last_mac) = (SELECT id, mac FROM audit WHERE id = $n);
        DELETE FROM audit;"
sg_start_daemon
check "every row deleted and the anchor set to the last one (daemon down): verify fails naming the anchor" \
        verify_broken "$n" "prune anchor (rows up to $n): MAC mismatch (tampered)"
restore_pruned
sg_start_daemon
n=$(sg_sql 'SELECT last_id FROM audit_anchor;')
sg_sql "UPDATE audit_anchor SET mac = NULL;"
check "an anchor without a MAC is reported as unauthenticated" verify_broken "$n" "unauthenticated anchor"
restore_pruned
n=$(sg_sql 'SELECT last_id FROM audit_anchor;')
sg_write_config "upgrade_hashes = yes" "${RL[@]}" "[audit]" "seal_public_key = $T/keys/seal.pub" "max_rows = 5"
sg_start_daemon
check "honest pruning again (max_rows = 5): the anchor moved on" \
        test "$(sg_sql 'SELECT last_id FROM audit_anchor;')" -gt "$n"
check "... and verify passes" quiet sgctl audit verify

# ---- the newest rows deleted while the daemon is down (audit.head keeps the tail) ----
sg_stop_daemon
# No retention from here on: the gap must not be pruned away between the restarts below.
sg_write_config "upgrade_hashes = yes" "${RL[@]}" "[audit]" "seal_public_key = $T/keys/seal.pub"
last=$(sg_sql 'SELECT max(id) FROM audit;')
check "audit.head holds the last row id" test "$(cut -d' ' -f1 "$T/state/audit.head")" -eq "$last"
check "audit.head is 0600" test "$(stat -c %a "$T/state/audit.head")" = 600
sg_sql "DELETE FROM audit WHERE id > $((last - 3));"
sg_start_daemon
missing="rows $((last - 2))..$last missing"
check "tail deleted while down: verify fails at the next row, naming rows $((last - 2))..$last" \
        verify_broken "$((last + 1))" "$missing"
check "... the id sequence went on after the missing rows (this start's row is $((last + 1)))" \
        test "$(sg_sql "SELECT min(id) FROM audit WHERE id > $((last - 3));")" -eq "$((last + 1))"
check "... and this start's audit row records the gap" \
        grep -q "audit rows $((last - 2))\.\.$last are missing" <(sgctl audit --event daemon_start --limit 1)
for round in 1 2; do
        sg_stop_daemon
        sg_start_daemon
        check "restart $round: verify still fails naming rows $((last - 2))..$last" \
                verify_broken "$((last + 1))" "$missing"
done
check "a login after the restarts" quiet sg_auth alice "$SG_PW_ALICE"
check "... verify still names the gap" verify_broken "$((last + 1))" "$missing"

# ---- a deleted audit.head is not a first start ----
sg_stop_daemon
rm -f "$T/state/audit.head"
log_mark=$(wc -l <"$T/daemon.log")
sg_start_daemon
check "a missing audit.head is logged as a warning" \
        grep -q "audit.head is missing while the audit log has rows up to" <(tail -n +"$((log_mark + 1))" "$T/daemon.log")
check "... and recorded in this start's daemon_start row" \
        grep -q "audit.head is missing while the audit log has rows" <(sgctl audit --event daemon_start --limit 1)
check "audit.head is written again" test -s "$T/state/audit.head"

# ---- audit.head is durable like the database: with [audit] synchronous = full, its first
# write goes through a temp file fsynced before the rename and the directory fsynced after;
# later ones rewrite it in place and fdatasync it before the commit is answered (normal:
# neither, as the WAL) ----
if [ -n "${SG_VALGRIND:-}" ]; then
        echo "# SKIP fsync order check: the daemon already runs under valgrind" >&2
elif ! strace -f -qq -o /dev/null true 2>/dev/null; then
        echo "# SKIP fsync order check: strace cannot trace here" >&2
else
        sg_stop_daemon
        printf '[audit]\nsynchronous = full\n' >>"$T/secguard.conf"
        SG_DAEMON_WRAP=(strace -f -qq -o "$T/strace.log" -e trace=openat,fsync,fdatasync,rename,renameat,renameat2,pwrite64,close)
        sg_start_daemon
        SG_DAEMON_WRAP=()
        sg_auth alice wrong >/dev/null 2>&1 || true
        # Stop the daemon itself (strace's child), then strace.
        dpid=$(pgrep -P "$SG_DAEMON_PID" | head -n 1)
        kill -TERM "$dpid"
        wait "$SG_DAEMON_PID" || true
        SG_DAEMON_PID=
        check "audit.head: temp file fsynced before the rename, directory after; in-place rewrites fdatasynced" \
                $PY - "$T/strace.log" "$T/state" <<'PYEOF'
import re, sys
log, state = sys.argv[1], sys.argv[2]
renames = inplace = 0
tmp_fd = dir_fd = head_fd = None
pending = False  # an in-place write of audit.head not yet synced
stage = 0  # 0 tmp opened? 1 tmp fsynced? 2 renamed? 3 dir opened? -> 4 dir fsynced
for line in open(log):
    m = re.search(r'openat\((?:AT_FDCWD|\d+), "([^"]*)", ([^)]*)\)\s+=\s+(\d+)', line)
    if m and re.fullmatch(r'(.*/)?\.audit\.head\.[A-Za-z0-9]{6}', m.group(1)):
        tmp_fd, stage = m.group(3), 1
        continue
    if m and stage == 3 and m.group(1) == state and "O_DIRECTORY" in m.group(2):
        dir_fd, stage = m.group(3), 4
        continue
    if m and m.group(1) == state + "/audit.head" and "O_WRONLY" in m.group(2):
        head_fd = m.group(3)
        continue
    m = re.search(r'\bf(?:data)?sync\((\d+)\)\s+=\s+0', line)
    if m and stage == 1 and m.group(1) == tmp_fd:
        stage = 2
    elif m and stage == 4 and m.group(1) == dir_fd:
        renames += 1
        stage = 0
    elif m and pending and m.group(1) == head_fd:
        inplace += 1
        pending = False
    m = re.search(r'pwrite64\((\d+), "\d{20} [0-9a-f]+', line)
    if m and m.group(1) == head_fd:
        if pending:
            print("audit.head rewritten twice without a sync between:", line.strip(), file=sys.stderr)
            sys.exit(1)
        pending = True
    m = re.search(r'close\((\d+)\)', line)
    if m and pending and m.group(1) == head_fd:
        print("audit.head closed with an unsynced rewrite:", line.strip(), file=sys.stderr)
        sys.exit(1)
    m = re.search(r'rename(?:at2?)?\(.*"([^"]*\.audit\.head\.[A-Za-z0-9]{6})".*"([^"]*audit\.head)"', line)
    if m:
        if stage != 2:
            print("rename of audit.head's temp file without an fsync of it before:", line.strip(), file=sys.stderr)
            sys.exit(1)
        stage = 3
print("durable head writes: %d by rename, %d in place" % (renames, inplace), file=sys.stderr)
sys.exit(0 if renames >= 1 and inplace >= 1 and not pending else 1)
PYEOF
fi

sg_done
