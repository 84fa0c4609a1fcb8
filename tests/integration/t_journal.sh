#!/bin/bash
# journald: secguardd --log-target journal, against a private systemd-journald started in a
# mount + PID namespace (tmpfs over /run and /var/log/journal, so the host's journal is never
# written; the PID namespace also takes journald down with the test). Each event carries
# SYSLOG_IDENTIFIER=secguardd, the MESSAGE_ID of its event (common/event_table.c), its priority and the
# SECGUARD_* fields (auth events, lockout, unlock, password_changed, hash_upgraded,
# peer_denied, protocol_error, daemon start/stop; SECGUARD_TTY when the login has a tty);
# sealed users show as <sealed>; a hostile name arrives escaped; every
# audit row has its journal entry. The catalog has an entry for every MESSAGE_ID and
# journalctl accepts it (checked in a private --root).
. "$(dirname "$0")/lib.sh"
sg_require_root
JOURNALD=/lib/systemd/systemd-journald

# ---- outside: preflight, then run this script again inside the namespaces ----
if [ -z "${SG_JOURNAL_INNER:-}" ]; then
        for tool in "$JOURNALD" "$(command -v journalctl || true)" "$(command -v unshare || true)"; do
                if [ -z "$tool" ] || [ ! -x "$tool" ]; then
                        echo "SKIP: $(basename "$0"): needs systemd-journald, journalctl and unshare (missing: ${tool:-a tool})"
                        exit 77
                fi
        done
        if ! probe=$(unshare --mount --pid --fork --mount-proc --propagation private \
                        sh -c 'mount -t tmpfs sgprobe /run && echo ok' 2>&1) || [ "$probe" != ok ]; then
                echo "SKIP: $(basename "$0"): cannot make a private mount+PID namespace with a tmpfs /run here: $probe"
                exit 77
        fi
        # What the host has, to prove afterwards that nothing changed.
        host_state() {
                for d in /run/systemd/journal /run/log/journal /var/log/journal; do
                        if [ -e "$d" ]; then
                                find "$d" -printf '%p %y %s %T@\n' 2>/dev/null | sort
                        else
                                echo "$d absent"
                        fi
                done
                ls -d /run/systemd/journal.* /var/log/journal/*.* 2>/dev/null || true
                stat -c '%n %s %Y' /var/lib/systemd/catalog/database 2>/dev/null || true
                echo "journald processes: $(ps -eo comm= | grep -c '^systemd-journal' || true)"
        }
        before=$(host_state)
        rc=0
        SG_JOURNAL_INNER=1 SG_OUTER_MNTNS=$(readlink /proc/self/ns/mnt) \
                unshare --mount --pid --fork --mount-proc --propagation private bash "$0" || rc=$?
        after=$(host_state)
        if [ "$before" != "$after" ]; then
                echo "FAIL: the host's journal directories changed:" >&2
                diff <(echo "$before") <(echo "$after") >&2 || true
                exit 1
        fi
        echo "ok - host untouched: journal directories, catalog database, no journald left running"
        exit "$rc"
fi

# ---- inside the namespaces ----
[ "$(readlink /proc/self/ns/mnt)" != "${SG_OUTER_MNTNS:-}" ] || fail "not in a private mount namespace"
JOURNALD_PID=
stop_journald() {
        [ -n "$JOURNALD_PID" ] || return 0
        kill -TERM "$JOURNALD_PID" 2>/dev/null || true
        wait "$JOURNALD_PID" 2>/dev/null || true
        JOURNALD_PID=
}
on_exit() {
        local rc=$?
        sg_stop_daemon 2>/dev/null || true
        stop_journald
        (exit "$rc")
        sg_cleanup
}

RL=("[ratelimit]" "user_source_max_failures = 3" "source_max_failures = 1000"
    "user_max_failures = 1000" "spray_max_users = 1000" "delay_step_ms = 0")
sg_setup "upgrade_hashes = yes" "${RL[@]}"
trap on_exit EXIT

# /run is a fresh tmpfs here (so /run/systemd/journal and /run/log/journal exist only in this
# namespace); /var/log/journal gets its own.
# private_dir PATH NAME: an empty tmpfs at PATH in this namespace. When PATH is missing, the
# tmpfs goes on its nearest existing parent and PATH is made inside it, never on the host.
private_dir() {
        local path=$1 top=$1
        while [ ! -d "$top" ]; do top=$(dirname "$top"); done
        mount -t tmpfs -o mode=0755 "$2" "$top"
        mkdir -p "$path"
}
private_dir /run sg-run
mkdir -p /run/systemd/journal /run/log/journal /run/systemd/journald.conf.d
private_dir /var/log/journal sg-journal
check "/run is a private tmpfs" test "$(findmnt -n -o FSTYPE /run)/$(findmnt -n -o SOURCE /run)" = "tmpfs/sg-run"
check "/var/log/journal is on a private tmpfs" \
        grep -q '^tmpfs/sg-journal$' <<<"$(findmnt -n -o FSTYPE -T /var/log/journal)/$(findmnt -n -o SOURCE -T /var/log/journal)"
# Volatile storage in the tmpfs; leave the kernel audit setting alone (Audit= unset), do not
# read kmsg, forward nowhere, no rate limit that could drop test entries.
cat >/run/systemd/journald.conf.d/zz-secguard-test.conf <<'EOF'
[Journal]
Storage=volatile
Audit=
ReadKMsg=no
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
RateLimitBurst=0
EOF
"$JOURNALD" >"$T/journald.log" 2>&1 &
JOURNALD_PID=$!
for _ in $(seq 1 100); do
        [ -S /run/systemd/journal/socket ] && break
        kill -0 "$JOURNALD_PID" 2>/dev/null || break
        sleep 0.05
done
if [ ! -S /run/systemd/journal/socket ]; then
        echo "SKIP: $(basename "$0"): systemd-journald did not start: $(tail -n 3 "$T/journald.log" | tr '\n' ' ')"
        exit 77
fi
check "private journald is listening" test -S /run/systemd/journal/socket

jsync() { journalctl --sync >/dev/null 2>&1 || sleep 0.5; }
# Our entries, one JSON object per line.
jdump() { jsync; journalctl --no-pager -o json SYSLOG_IDENTIFIER=secguardd; }
# jcheck 'python expression over entries (list of dicts)': exit 0 when true.
jcheck() {
        jdump >"$T/journal.json"
        $PY - "$1" "$T/journal.json" "$T/event_table.tsv" <<'PYEOF'
import json, sys
expr, path, table = sys.argv[1], sys.argv[2], sys.argv[3]
entries = [json.loads(l) for l in open(path) if l.strip()]
ev = [e for e in entries if "SECGUARD_EVENT" in e]
# name -> (MESSAGE_ID, PRIORITY as journald shows it), from the common event table.
kinds = {name: (mid, prio) for name, mid, prio in (l.rstrip("\n").split("\t") for l in open(table))}
def one(event, **f):
    """The single entry of this event whose SECGUARD_<KEY> fields equal f."""
    m = [e for e in ev if e["SECGUARD_EVENT"] == event and
         all(e.get("SECGUARD_" + k.upper()) == v for k, v in f.items())]
    return m[0] if len(m) == 1 else None
ok = eval("(" + expr + "\n)")
if not ok:
    print("journal entries:", json.dumps(ev, indent=1)[:4000], file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF
}

# The table the daemon was built from: name, MESSAGE_ID, priority (tab-separated).
"$SG_BUILD/tests/integration/sg_event_table" >"$T/event_table.tsv" || fail "sg_event_table"
check "the event table has 22 kinds" test "$(wc -l <"$T/event_table.tsv")" -eq 22
sg_start_daemon --log-target journal
check "journal target: nothing on stderr but start-up notes" ! grep -q "SECGUARD_EVENT" "$T/daemon.log"
check "login accepted" sg_auth alice "$SG_PW_ALICE" 192.0.2.10
check "wrong password refused" ! sg_auth alice "wrong" 192.0.2.11
for i in 1 2 3; do sg_auth bob wrong 192.0.2.20 && fail "wrong password accepted"; done
check "blocked after the lock" ! sg_auth bob "$SG_PW_BOB" 192.0.2.20
check "terminal escape as a name refused" ! sg_auth $'\x1b]0;pwned\x07' pw 192.0.2.21

check "daemon_start reached journald" jcheck 'one("daemon_start") is not None'
check "auth_success: SYSLOG_IDENTIFIER, MESSAGE_ID, user, rhost, service" jcheck '
(e := one("auth_success", user="alice")) is not None and e["SYSLOG_IDENTIFIER"] == "secguardd"
and e["MESSAGE_ID"] == kinds["auth_success"][0] and e["SECGUARD_RHOST"] == "192.0.2.10"
and e["SECGUARD_SERVICE"] == "sgtest" and "user=alice" in e["MESSAGE"] and e["PRIORITY"] == kinds["auth_success"][1]'
check "auth_failure: MESSAGE_ID and SECGUARD_REASON=bad_password" jcheck '
(e := one("auth_failure", user="alice", rhost="192.0.2.11")) is not None
and e["MESSAGE_ID"] == kinds["auth_failure"][0] and e["SECGUARD_REASON"] == "bad_password"
and e["SECGUARD_SERVICE"] == "sgtest" and "reason=bad_password" in e["MESSAGE"]'
check "lockout: MESSAGE_ID, reason user_source, user, rhost, detail" jcheck '
(e := one("lockout", user="bob")) is not None and e["MESSAGE_ID"] == kinds["lockout"][0]
and e["SECGUARD_REASON"] == "user_source" and e["SECGUARD_RHOST"] == "192.0.2.20"
and "bob@192.0.2.20" in e["SECGUARD_DETAIL"] and e["PRIORITY"] == "4"'
check "auth_blocked: MESSAGE_ID, reason locked" jcheck '
(e := one("auth_blocked", user="bob")) is not None and e["MESSAGE_ID"] == kinds["auth_blocked"][0]
and e["SECGUARD_REASON"] == "locked"'
check "three bad_password entries for bob" jcheck \
        'len([e for e in ev if e.get("SECGUARD_USER") == "bob" and e.get("SECGUARD_REASON") == "bad_password"]) == 3'
check "hostile name arrives escaped (no raw ESC/BEL in any field)" jcheck '
(e := one("auth_failure", rhost="192.0.2.21")) is not None and e["SECGUARD_USER"] == "\\x1b]0;pwned\\x07"
and e["SECGUARD_REASON"] == "invalid_input"
and not any(isinstance(v, str) and ("\x1b" in v or "\x07" in v) for x in ev for v in x.values())'
check "every entry: MESSAGE_ID and PRIORITY of its event in the event table" jcheck '
len(ev) >= 8 and all(e["MESSAGE_ID"] == kinds[e["SECGUARD_EVENT"]][0] and e["PRIORITY"] == kinds[e["SECGUARD_EVENT"]][1] for e in ev)'

# The admin, password and peer events, and a login with a tty.
login_tty() { sg_pam -I rhost=192.0.2.40 -I tty=pts/9 alice authenticate <<<"$SG_PW_ALICE" >"$T/pam.out" 2>&1; }
check "login with tty pts/9 accepted" login_tty
check "unlock bob" sgctl unlock bob
root_passwd() { printf '%s\n%s\n' "$2" "$2" | sg_pam "$1" chauthtok >"$T/pam.out" 2>&1; }
check "root sets bob's password" root_passwd bob "bob journal pw 2"
check "carol's sha512crypt login upgrades her hash" sg_auth carol "$SG_PW_CAROL" 192.0.2.41
rc=0
sgctl_as_nobody audit >/dev/null 2>&1 || rc=$?
check "a non-root audit read is refused (exit 4)" test "$rc" -eq 4
sg_bad_frame
sleep 0.2
check "SECGUARD_TTY carries the tty of the login" jcheck '
(e := one("auth_success", tty="pts/9")) is not None and e["SECGUARD_USER"] == "alice"
and e["SECGUARD_RHOST"] == "192.0.2.40" and e["MESSAGE_ID"] == kinds["auth_success"][0]'
check "... and is absent when the login had none" jcheck '
(e := one("auth_success", rhost="192.0.2.10")) is not None and "SECGUARD_TTY" not in e'
check "unlock: MESSAGE_ID, user bob, the admin's uid and pid" jcheck '
(e := one("unlock", user="bob")) is not None and e["MESSAGE_ID"] == kinds["unlock"][0]
and e["PRIORITY"] == kinds["unlock"][1] and e["SECGUARD_PEER_UID"] == "0" and int(e["SECGUARD_PEER_PID"]) > 1'
check "password_changed: MESSAGE_ID, user bob, service" jcheck '
(e := one("password_changed", user="bob")) is not None and e["MESSAGE_ID"] == kinds["password_changed"][0]
and e["PRIORITY"] == kinds["password_changed"][1] and e["SECGUARD_SERVICE"] == "sgtest"'
check "hash_upgraded: MESSAGE_ID, user carol, service, rhost" jcheck '
(e := one("hash_upgraded", user="carol")) is not None and e["MESSAGE_ID"] == kinds["hash_upgraded"][0]
and e["PRIORITY"] == kinds["hash_upgraded"][1] and e["SECGUARD_SERVICE"] == "sgtest"
and e["SECGUARD_RHOST"] == "192.0.2.41"'
check "peer_denied: MESSAGE_ID, the peer's uid 65534, why it was refused" jcheck '
(e := one("peer_denied")) is not None and e["MESSAGE_ID"] == kinds["peer_denied"][0]
and e["PRIORITY"] == kinds["peer_denied"][1] and e["SECGUARD_PEER_UID"] == "65534"
and "no request is open" in e["SECGUARD_DETAIL"]'
check "protocol_error: MESSAGE_ID and a detail saying why" jcheck '
(e := one("protocol_error")) is not None and e["MESSAGE_ID"] == kinds["protocol_error"][0]
and e["PRIORITY"] == kinds["protocol_error"][1] and e.get("SECGUARD_DETAIL")'
check "the same events are in the audit table" test \
        "$(sg_sql "SELECT count(DISTINCT event) FROM audit WHERE event IN ('unlock','password_changed','hash_upgraded','peer_denied','protocol_error');")" -eq 5
check "every entry still has its event's MESSAGE_ID and PRIORITY" jcheck '
all(e["MESSAGE_ID"] == kinds[e["SECGUARD_EVENT"]][0] and e["PRIORITY"] == kinds[e["SECGUARD_EVENT"]][1] for e in ev)'
rows=$(sg_sql 'SELECT count(*) FROM audit;')
check "every audit row ($rows) has its journal entry" jcheck "len(ev) == $rows"

# Sealed usernames: journald shows <sealed>, never the name.
mkdir -m 0700 "$T/keys"
sgctl keygen --public "$T/keys/seal.pub" --secret "$T/keys/seal.sec" >/dev/null || fail "keygen"
sg_stop_daemon
sg_write_config "${RL[@]}" "[audit]" "seal_public_key = $T/keys/seal.pub"
sg_start_daemon --log-target journal
check "unknown user refused" ! sg_auth mallory "hunter2" 192.0.2.30
for i in 1 2 3; do sg_auth mallory wrong 192.0.2.31 || true; done
check "sealed user: SECGUARD_USER=<sealed>, reason unknown_user" jcheck '
(e := one("auth_failure", rhost="192.0.2.30")) is not None and e["SECGUARD_USER"] == "<sealed>"
and e["SECGUARD_REASON"] == "unknown_user" and "user=<sealed>" in e["MESSAGE"]'
check "sealed lockout: <sealed> user, detail names a pseudonym" jcheck '
(e := one("lockout", rhost="192.0.2.31")) is not None and e["SECGUARD_USER"] == "<sealed>"
and "~" in e["SECGUARD_DETAIL"] and "@192.0.2.31" in e["SECGUARD_DETAIL"]'
jsync
check "no secguardd journal entry contains the sealed name" \
        test "$(journalctl --no-pager -o export SYSLOG_IDENTIFIER=secguardd | grep -ac mallory || true)" -eq 0
check "the audit row can still be revealed by the admin" \
        grep -q 'user=<sealed:mallory>' <(sgctl audit --rhost 192.0.2.30 --reveal --key "$T/keys/seal.sec")
check "SIGTERM: daemon_stop reaches journald" sg_stop_daemon
check "two daemon_stop entries (one per SIGTERM) with their MESSAGE_ID" jcheck '
len(s := [e for e in ev if e["SECGUARD_EVENT"] == "daemon_stop"]) == 2
and all(e["MESSAGE_ID"] == kinds["daemon_stop"][0] for e in s)'
check "two daemon_start entries" jcheck 'len([e for e in ev if e["SECGUARD_EVENT"] == "daemon_start"]) == 2'
rows=$(sg_sql 'SELECT count(*) FROM audit;')
check "still every audit row ($rows) in the journal" jcheck "len(ev) == $rows"

# The catalog: unit.test_event_table checks it against the event table (one entry per
# MESSAGE_ID, Subject = summary). Here: journalctl accepts the file and lists every entry
# (database built in a private --root, never the host's).
mkdir -p "$T/catroot/usr/lib/systemd/catalog"
cp "$SG_SRC/etc/secguard.catalog" "$T/catroot/usr/lib/systemd/catalog/"
check "journalctl --update-catalog accepts the file" journalctl --root "$T/catroot" --update-catalog
listed=$(journalctl --root "$T/catroot" --list-catalog | grep -c ' secguard: ' || true)
check "journalctl lists all 22 entries ($listed)" test "$listed" -eq 22
# journalctl -x explains our entries with that catalog. -x reads the catalog database from
# its fixed path, whatever --root says: put ours there, in this namespace only.
private_dir /var/lib/systemd/catalog sg-catalog
cp "$T/catroot/var/lib/systemd/catalog/database" /var/lib/systemd/catalog/
journalctl --no-pager -x SYSLOG_IDENTIFIER=secguardd SECGUARD_EVENT=lockout >"$T/x.out" 2>&1 || true
check "journalctl -x shows the lockout's catalog text" grep -q 'Subject: secguard: Lock imposed' "$T/x.out"

pid=$JOURNALD_PID
stop_journald
gone() { ! kill -0 "$1" 2>/dev/null; }
check "private journald stopped" gone "$pid"
sg_done
