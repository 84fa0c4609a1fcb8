#!/bin/bash
# One-time login tokens through the real CLI, module and daemon: issue (ttl rules, unknown
# user, the token on the last line), list and revoke, who may do what; a token login forcing
# a new password through the account and password phases; every kind of bad token (expired,
# revoked, reused, another user's, malformed, one symbol changed) failing exactly as a wrong
# password does and counting as one; one token raced by two logins; the token absent from
# the daemon's log, the audit trail and the state directory. Prints the failure timing of a
# refused token next to a wrong password's, measured in the same run.
. "$(dirname "$0")/lib.sh"
ADMIN_GROUP=
for g in adm staff users; do
        if getent group "$g" >/dev/null; then ADMIN_GROUP=$g; break; fi
done
# Limits high enough that the many deliberate failures below lock nobody out: counting is
# checked on the attempts, not through a lock.
CONF=("[ratelimit]" "user_max_failures = 1000" "source_max_failures = 1000"
        "user_source_max_failures = 1000" "delay_step_ms = 0" "user_pacing = no"
        ${ADMIN_GROUP:+"[daemon]" "admin_group = $ADMIN_GROUP"})
sg_setup "${CONF[@]}"
sg_start_daemon
: >"$T/issued"

# secguardctl with the test's user database (token issue checks that the user exists).
sgctl_nss() {
        ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" \
                LD_PRELOAD="${SG_SANITIZE:+$SG_LIBASAN:}libnss_wrapper.so" \
                NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" sgctl "$@"
}
# issue USER [ARGS...]: prints the token (the last line of the output), remembers it.
issue() {
        local out tok
        out=$(sgctl_nss token issue "$@") || fail "token issue $* failed"
        tok=$(tail -n 1 <<<"$out")
        printf '%s\n' "$tok" >>"$T/issued"
        printf '%s\n' "$tok"
}
TOKEN_RE='^([0-9A-HJKMNP-TV-Z]{4}-){14}[0-9A-HJKMNP-TV-Z]{4}$'
state_of() { sgctl --json token list | "$PY" -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    if r["id"] == sys.argv[1]: print(r["state"])' "$1"; }
# login USER ANSWERS...: pam_run's login (auth, account, the change asked for); what the
# application saw goes to $T/login.out; the exit status is the transaction's.
login() {
        local user=$1
        shift
        printf '%s\n' "$@" | sg_pam_run "$user" login >"$T/login.out" 2>&1
}
failures() { sg_sql "SELECT count(*) FROM attempts WHERE user = '$1' AND state = 1"; }

# ---- issue, list, revoke ----
out=$(sgctl_nss token issue alice)
tok=$(tail -n 1 <<<"$out")
echo "$tok" >>"$T/issued"
check "issue prints the token on the last line, 15 groups of Crockford base32" grep -Eq "$TOKEN_RE" <<<"$tok"
id=${tok:0:9}
check "the lines before name the id and the expiry" grep -q "one-time token $id for alice, valid until" <<<"$out"
check "list: active, with id, user, issued, expires, issuer" "$PY" -c '
import json, sys, datetime
rows = [json.loads(l) for l in sys.stdin.read().splitlines()]
r = [r for r in rows if r["id"] == sys.argv[1]]
assert len(r) == 1 and r[0]["user"] == "alice" and r[0]["state"] == "active" and r[0]["issuer_uid"] == 0, rows
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
ttl = (t(r[0]["expires"]) - t(r[0]["issued"])).total_seconds()
assert 3599 <= ttl <= 3601, ttl  # the default: 1 hour
' "$id" <<<"$(sgctl --json token list)"
check "the table lists it" grep -q "^$id alice" <<<"$(sgctl token list)"
check "audit: token_issued names the id, never the token" \
        grep -q "\"event\":\"token_issued\".*\"user\":\"alice\".*token $id, expires" <<<"$(sgctl --json audit --event token_issued)"
json=$(sgctl_nss --json token issue bob --ttl 30d)
check "--json: one object with id, user, expires and the token (--ttl 30d accepted)" "$PY" -c '
import json, re, sys
lines = sys.stdin.read().splitlines()
assert len(lines) == 1, lines
r = json.loads(lines[0])
assert r["user"] == "bob" and re.match(sys.argv[1], r["token"]) and r["token"].startswith(r["id"]), r
' "$TOKEN_RE" <<<"$json"
"$PY" -c 'import json,sys; print(json.loads(sys.stdin.read())["token"])' <<<"$json" >>"$T/issued"
for bad in "--ttl 31d" "--ttl 2592001" "--ttl 0" "--ttl soon" "--ttl -5"; do
        rc=0; sgctl_nss token issue alice $bad >"$T/ctl.out" 2>&1 || rc=$?
        check "issue $bad refused as a usage error (exit $rc)" test "$rc" -eq 2
done
check "... saying why" grep -q "ttl" "$T/ctl.out"
rc=0; sgctl_nss token issue mallory >"$T/ctl.out" 2>&1 || rc=$?
check "issue for an unknown user fails (exit $rc)" test "$rc" -eq 1
check "... saying so" grep -q 'no user "mallory" on this system' "$T/ctl.out"
rc=0; sgctl_nss token issue 'bad name' >"$T/ctl.out" 2>&1 || rc=$?
check "issue for an invalid name is a usage error (exit $rc)" test "$rc" -eq 2
rc=0; sgctl token revoke ZZZZ-ZZZZ >"$T/ctl.out" 2>&1 || rc=$?
check "revoke of an id never issued fails (exit $rc)" test "$rc" -eq 1
rc=0; sgctl token revoke not-an-id >/dev/null 2>&1 || rc=$?
check "revoke of a malformed id is a usage error (exit $rc)" test "$rc" -eq 2

rc=0; sgctl_as_nobody token issue root >/dev/null 2>&1 || rc=$?
check "issue as nobody: permission denied (exit $rc)" test "$rc" -eq 4
rc=0; sgctl_as_nobody token revoke "$id" >/dev/null 2>&1 || rc=$?
check "revoke as nobody: permission denied (exit $rc)" test "$rc" -eq 4
rc=0; sgctl_as_nobody token list >/dev/null 2>&1 || rc=$?
check "list as nobody: permission denied (exit $rc)" test "$rc" -eq 4
if [ -n "$ADMIN_GROUP" ]; then
        admin_gid=$(getent group "$ADMIN_GROUP" | cut -d: -f3)
        as_admin() {
                setpriv --reuid=nobody --regid=nogroup --groups="$admin_gid" "$T/secguardctl-copy" \
                        --config "$T/secguard.conf" "$@"
        }
        rc=0; as_admin --json token list >"$T/admin.out" 2>&1 || rc=$?
        check "admin group member may list tokens (exit $rc)" test "$rc" -eq 0 -a "$(grep -c '"id"' "$T/admin.out")" -eq 2
        rc=0; as_admin token issue root >/dev/null 2>&1 || rc=$?
        check "admin group member may not issue (exit 4, got $rc)" test "$rc" -eq 4
        rc=0; as_admin token revoke "$id" >/dev/null 2>&1 || rc=$?
        check "admin group member may not revoke (exit 4, got $rc)" test "$rc" -eq 4
else
        echo "# SKIP admin-group checks: the host has none of the groups adm, staff, users" >&2
fi
check "the refusals left peer_denied rows" test "$(sg_audit_count --event peer_denied)" -ge 3
check "nothing was revoked by the refused requests" test "$(state_of "$id")" = active

# ---- a wrong password: what every refused token must look like ----
login alice "not the password" && fail "a wrong password was accepted"
cp "$T/login.out" "$T/wrong.out"
check "wrong password: authentication failure" grep -q '^authenticate: Authentication failure$' "$T/wrong.out"

# ---- the happy path: the token logs in once, and a new password is required ----
f0=$(failures alice)
check "token login succeeds through a forced password change" \
        login alice "$tok" "alice after token" "alice after token"
check "authenticate: Success" grep -q '^authenticate: Success$' "$T/login.out"
check "acct_mgmt: PAM_NEW_AUTHTOK_REQD" grep -q '^acct_mgmt: Authentication token is no longer valid; new one required$' "$T/login.out"
check "the user is told to choose a new password" grep -q '^message: You logged in with a one-time token' "$T/login.out"
check "chauthtok: Success (no current password asked)" grep -q '^chauthtok: Success$' "$T/login.out"
check "the token login was no failure" test "$(failures alice)" -eq "$f0"
check "the new password works" sg_auth alice "alice after token"
check "the old password no longer does" ! sg_auth alice "$SG_PW_ALICE"
check "list: used" test "$(state_of "$id")" = used
check "audit: token_used with the id" \
        grep -q "\"event\":\"token_used\".*\"user\":\"alice\".*token $id: used" <<<"$(sgctl --json audit --event token_used)"
check "audit: auth_success names the token's id" \
        grep -q "\"detail\":\"with one-time token $id\"" <<<"$(sgctl --json audit --event auth_success --user alice)"
check "audit: password_changed" test "$(sg_audit_count --event password_changed --user alice)" -eq 1
# A token is no password: the module did not upgrade or store anything from it.
check "the new hash is argon2id" grep -q '^alice:\$argon2id\$' "$T/shadow"

# ---- every kind of bad token fails exactly as a wrong password, and counts ----
SG_PW_ALICE="alice after token"
login alice "not the password" || true
cp "$T/login.out" "$T/wrong.out"
# refused WHAT TOKEN DETAIL: the login fails, the application saw what a wrong password shows,
# one more failure is counted, and the audit says why without the token.
refused() {
        local what=$1 t=$2 detail=$3 user=${4:-alice} before rc=0
        before=$(failures "$user")
        login "$user" "$t" "x" "x" || rc=$?
        check "$what: refused (exit $rc)" test "$rc" -ne 0
        check "$what: the application saw what a wrong password shows" cmp -s "$T/login.out" "$T/wrong.out"
        check "$what: counted as a failure" test "$(failures "$user")" -eq $((before + 1))
        check "$what: audited ($detail)" \
                grep -qF "$detail" <<<"$(sgctl --json audit --event auth_failure --user "$user" --limit 1)"
}
t=$(issue alice --ttl 1s)
sleep 1.2
refused "expired" "$t" "\"reason\":\"bad_token\",\"user\":\"alice\""
check "expired: the detail says so" grep -q "one-time token ${t:0:9}: expired" <<<"$(sgctl --json audit --event auth_failure --limit 1)"
check "expired: listed as expired" test "$(state_of "${t:0:9}")" = expired
t=$(issue alice)
check "revoke: ok" sgctl token revoke "${t:0:9}" >/dev/null
check "revoke: audited token_revoked" grep -q "token ${t:0:9}" <<<"$(sgctl --json audit --event token_revoked)"
refused "revoked" "$t" "${t:0:9}: revoked"
check "revoked: listed as revoked" test "$(state_of "${t:0:9}")" = revoked
rc=0; sgctl token revoke "${t:0:9}" >/dev/null 2>&1 || rc=$?
check "a second revoke fails (exit $rc)" test "$rc" -eq 1
refused "reused" "$tok" "$id: already used"
t=$(issue bob)
refused "another user's" "$t" "${t:0:9}: issued for another user"
check "... and bob's token is still active" test "$(state_of "${t:0:9}")" = active
t=$(issue alice)
# The 30th symbol of the secret, turned into another symbol.
c=${t:40:1}; n=A; [ "$c" = A ] && n=B
refused "one symbol of the secret changed" "${t:0:40}$n${t:41}" "${t:0:9}: wrong secret"
c=${t:2:1}; n=7; [ "$c" = 7 ] && n=8
refused "one symbol of the id changed" "${t:0:2}$n${t:3}" "one-time token refused: no such token"
check "... and the real token is still active" test "$(state_of "${t:0:9}")" = active
refused "malformed: one group short" "${t:0:69}" "\"reason\":\"bad_password\""
refused "malformed: a U in it" "${t:0:20}U${t:21}" "\"reason\":\"bad_password\""
refused "malformed: padding bits set" "${t:0:73}Z" "\"reason\":\"bad_password\""
rc=0; login mallory "$t" || rc=$?
check "a token typed for an unknown user: refused as usual (exit $rc)" test "$rc" -ne 0
check "... not even checked" grep -q "not checked (unknown_user)" <<<"$(sgctl --json audit --event auth_failure --limit 1)"
check "the good token still works after all that" login alice "$t" "alice third pw" "alice third pw"
SG_PW_ALICE="alice third pw"

# An account locked by passwd -l ("!" before its hash) stays locked: a token does not open it.
t=$(issue locked)
refused "an account locked by passwd -l" "$t" "\"reason\":\"locked_hash\"" locked
check "... and the token is still active" test "$(state_of "${t:0:9}")" = active
# A new account without a password ("!" alone) logs in once with a token and sets one.
sed -i 's/^locked:[^:]*:/locked:!:/' "$T/shadow"
check "a new account without a password logs in once with a token" login locked "$t" "locked now set" "locked now set"
check "... and has a password now" sg_auth locked "locked now set"

# ---- one token, two logins at once: exactly one wins ----
for round in 1 2 3 4 5; do
        t=$(issue carol)
        sg_auth_direct carol "$t" &
        p1=$!
        sg_auth_direct carol "$t" &
        p2=$!
        won=0
        wait "$p1" && won=$((won + 1))
        wait "$p2" && won=$((won + 1))
        check "race round $round: exactly one of two logins used the token ($won won)" test "$won" -eq 1
        check "race round $round: the token is used" test "$(state_of "${t:0:9}")" = used
done
check "race: one token_used row per round" test "$(sg_audit_count --event token_used --user carol)" -eq 5

# ---- timing: a refused token against a wrong password, interleaved, same run ----
# As pamtest_auth compares unknown users: first quartiles (other work on the machine only ever
# adds time, so the fast quartile is the cost) and how much the distributions overlap.
tt=$(issue alice)
bad="${tt:0:40}$([ "${tt:40:1}" = A ] && echo B || echo A)${tt:41}"
: >"$T/times"
for i in $(seq 1 30); do
        for kind in pw token; do
                [ "$kind" = pw ] && answer="wrong password $i" || answer=$bad
                s=$(date +%s%N)
                sg_pam_run alice authenticate <<<"$answer" >/dev/null 2>&1 && fail "timing login $kind $i accepted"
                e=$(date +%s%N)
                echo "$kind $(( (e - s) / 1000 ))" >>"$T/times"
        done
done
read -r q1_pw med_pw q1_tok med_tok ratio p_slower < <("$PY" -c '
import sys
t = {"pw": [], "token": []}
for l in open(sys.argv[1]):
    k, v = l.split(); t[k].append(int(v))
pw, tok = sorted(t["pw"]), sorted(t["token"])
n = len(pw)
slower = sum((a > b) + 0.5 * (a == b) for a in tok for b in pw) / (n * n)
print(pw[n // 4], pw[n // 2], tok[n // 4], tok[n // 2], "%.3f" % (tok[n // 4] / pw[n // 4]), "%.2f" % slower)' "$T/times")
sg_log "timing (30 each, us): wrong password Q1 $q1_pw median $med_pw; refused token Q1 $q1_tok median $med_tok;" \
        "Q1 ratio $ratio, P(token slower) $p_slower"
check "a refused token takes as long as a wrong password (Q1 ratio $ratio)" \
        "$PY" -c 'import sys; r = float(sys.argv[1]); sys.exit(0 if 0.8 < r < 1.25 else 1)' "$ratio"

# ---- hostile TOKEN fields straight to the daemon, as root (the module is trusted to be
# root, not to be bug-free): each is a failure like any other, and none reaches the audit ----
before=$(failures alice)
check "hostile TOKEN fields: every one refused, the login a failure" "$PY" - "$T/run/secguardd.sock" <<'PYEOF'
import socket, struct, sys
def field(tag, v): return bytes([tag]) + struct.pack(">H", len(v)) + v
def u64(tag, v): return field(tag, struct.pack(">Q", v))
def recvn(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d: raise EOFError
        b += d
    return b
def call(s, t, payload):
    s.sendall(b"SG\x01" + bytes([t]) + struct.pack(">I", len(payload)) + payload)
    hdr = recvn(s, 8)
    body = recvn(s, struct.unpack(">I", hdr[4:])[0])
    tags, i = {}, 0
    while i < len(body):
        tag, n = body[i], struct.unpack(">H", body[i + 1:i + 3])[0]
        tags[tag] = body[i + 3:i + 3 + n]; i += 3 + n
    return hdr[3], tags
bad = 0
for junk in [b"\x1b[2J" + b"A" * 70, b"A" * 256, b"-" * 200, b"0000-0000-" + b"0000-" * 12 + b"0000",
             "\u00d8".encode() * 60, b"%s%n" * 20]:
    s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
    t, f = call(s, 1, field(1, b"alice") + field(4, b"sgtest") + u64(5, 1))
    if t != 0x80 or struct.unpack(">Q", f[8])[0] != 1:
        print("PRECHECK not allowed", t, f, file=sys.stderr); bad += 1; continue
    t, f = call(s, 2, u64(6, 2) + field(7, b"bad_password") + field(30, junk))
    if t != 0x80 or 6 in f:
        print("REPORT with", junk[:20], "answered", t, f, file=sys.stderr); bad += 1
    s.close()
sys.exit(bad)
PYEOF
check "  ... each counted as a failure" test "$(failures alice)" -eq $((before + 6))
check "  ... audited as refused tokens, without the text" \
        test "$(sgctl --json audit --event auth_failure --user alice --limit 6 | grep -c 'one-time token refused: not a token')" -eq 6
sgctl --json audit --limit 100000 >"$T/audit.json"
check "  ... no hostile bytes in the audit" ! grep -qe '%s%n' -e 'AAAAAAAAAAAAAAAAAAAA' "$T/audit.json"

# ---- the token key: a private file, refused otherwise ----
sg_stop_daemon
chmod 0644 "$T/state/token.key"
rc=0; timeout 10 "$SECGUARDD" --config "$T/secguard.conf" --log-target stderr >"$T/refused.log" 2>&1 || rc=$?
check "a token key readable by others: the daemon refuses to start (exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
check "  ... naming the file and the fix" grep -q "token key: $T/state/token.key has mode 0644.*chmod 0600" "$T/refused.log"
chmod 0600 "$T/state/token.key"

# ---- password_max_len below a token's 74 characters: a token still works, unhashed as a
# password that long would be ----
sg_write_config "password_max_len = 64" "${CONF[@]}"
sg_start_daemon
t=$(issue bob)
login bob "${t:0:40}$([ "${t:40:1}" = A ] && echo B || echo A)${t:41}" "x" "x" && fail "an altered token was accepted"
check "password_max_len 64: an altered token is refused as bad_token" \
        grep -q "\"reason\":\"bad_token\",\"user\":\"bob\"" <<<"$(sgctl --json audit --event auth_failure --limit 1)"
check "password_max_len 64: the token logs in" login bob "$t" "bob after token" "bob after token"
sg_stop_daemon
sg_write_config "${CONF[@]}"

# ---- the secrets are nowhere: daemon log, audit, state directory ----
sg_start_daemon # a restart: the log has the start-up too, and tokens survive it
check "tokens survive a restart" test "$(state_of "${tt:0:9}")" = active
sgctl --json audit --limit 100000 >"$T/audit.json"
n=0
while read -r tk; do
        [ -n "$tk" ] || continue
        n=$((n + 1))
        secret=${tk:10}
        compact=$(tr -d - <<<"$secret")
        for hay in "$T/daemon.log" "$T/audit.json"; do
                grep -qF -e "$secret" -e "$compact" "$hay" && fail "a token's secret is in $hay"
        done
        grep -rqaF -e "$secret" -e "$compact" "$T/state" && fail "a token's secret is in the state directory"
done <"$T/issued"
check "no secret of the $n tokens issued in the log, the audit or the state dir" test "$n" -ge 13
check "the token key is a private 32-byte file" test "$(stat -c '%a %s' "$T/state/token.key")" = "600 32"
check "the audit chain is intact" sgctl audit verify
sg_done
