#!/bin/bash
# Password authentication through the real module and daemon: every scheme, every failure
# kind (with one identical outcome), sshd's fake password, cost caps, hash upgrade.
. "$(dirname "$0")/lib.sh"
sg_setup "[ratelimit]" "user_max_failures = 1000" "source_max_failures = 1000" \
        "user_source_max_failures = 1000" "spray_max_users = 1000" "delay_step_ms = 0"
SG_PW_DAVE='dave bcrypt pw'
echo "dave:$(sg_hash bcrypt "$SG_PW_DAVE"):20000:0:99999:7:::" >>"$T/shadow"
# A planted hash asking for 4 GiB of memory: must fail fast without allocating it.
echo 'planted:$argon2id$v=19$m=4194304,t=3,p=1$c29tZXNhbHRzb21lc2FsdA$zVMsI3Ecw6SWfZHL8vhC0yKAN1IkIGcPXj9kcY2RBdw:20000:0:99999:7:::' >>"$T/shadow"
echo 'olddes:abJnggxhB/yWI:20000:0:99999:7:::' >>"$T/shadow"
printf 'dave:x:1004:1004::/:/bin/sh\nplanted:x:1005:1005::/:/bin/sh\nolddes:x:1006:1006::/:/bin/sh\n' >>"$T/passwd"
# Schemes secguard verifies but never writes, made by other tools: argon2i (libsodium through
# ctypes), sha256crypt (libcrypt through python), and $2y$ / $2a$ (same computation as $2b$ for
# such a password: dave's hash under the other prefixes).
SG_PW_OTHER='other schemes pw'
a2i=$("$PY" -c '
import ctypes, sys
so = ctypes.CDLL("libsodium.so.23")
assert so.sodium_init() >= 0
out = ctypes.create_string_buffer(128)
pw = sys.argv[1].encode()
so.crypto_pwhash_str_alg.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong,
                                     ctypes.c_ulonglong, ctypes.c_size_t, ctypes.c_int]
assert so.crypto_pwhash_str_alg(out, pw, len(pw), 3, 8 << 20, 1) == 0  # 1 = ARGON2I13
print(out.value.decode())' "$SG_PW_OTHER") || fail "cannot make an argon2i hash"
s256=$("$PY" -W ignore -c '
import crypt, sys
print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_SHA256)))' "$SG_PW_OTHER") ||
        fail "cannot make a sha256crypt hash"
b2b=$(sg_hash bcrypt "$SG_PW_OTHER")
{
        echo "frank:$a2i:20000:0:99999:7:::"
        echo "gina:$s256:20000:0:99999:7:::"
        echo "hank:\$2y\$${b2b#\$2b\$}:20000:0:99999:7:::"
        echo "ivan:\$2a\$${b2b#\$2b\$}:20000:0:99999:7:::"
} >>"$T/shadow"
grep -q '^frank:\$argon2i\$' "$T/shadow" && grep -q '^gina:\$5\$' "$T/shadow" &&
        grep -q '^hank:\$2y\$' "$T/shadow" && grep -q '^ivan:\$2a\$' "$T/shadow" ||
        fail "the other schemes' hashes are not what they should be"
for u in frank gina hank ivan; do echo "$u:x:1100:1100::/:/bin/sh" >>"$T/passwd"; done
sg_start_daemon

check "argon2id: right password accepted" sg_auth alice "$SG_PW_ALICE"
check "argon2id: wrong password refused" ! sg_auth alice "wrong"
check "yescrypt: right password accepted" sg_auth bob "$SG_PW_BOB"
check "yescrypt: wrong password refused" ! sg_auth bob "wrong"
check "sha512crypt: right password accepted" sg_auth carol "$SG_PW_CAROL"
check "sha512crypt: wrong password refused" ! sg_auth carol "wrong"
check "bcrypt: right password accepted" sg_auth dave "$SG_PW_DAVE"
check "bcrypt: wrong password refused" ! sg_auth dave "wrong"
for pair in frank:argon2i gina:sha256crypt 'hank:bcrypt $2y$' 'ivan:bcrypt $2a$'; do
        check "${pair#*:}: right password accepted" sg_auth "${pair%%:*}" "$SG_PW_OTHER"
        check "${pair#*:}: wrong password refused" ! sg_auth "${pair%%:*}" "wrong"
done

# Every failure kind: refused, and the application sees the same thing each time.
declare -A outputs
expect_fail() { # name user password [rhost]
        local name=$1
        shift
        if sg_auth "$@"; then fail "$name was accepted"; fi
        # What the application printed (pamtester does not name the user).
        outputs[$name]=$(grep -v "^PWRAP_" "$T/pam.out" || true) # pam_wrapper's own diagnostics aside
        SG_PASSED=$((SG_PASSED + 1))
        echo "ok - $name refused"
}
expect_fail wrong_password alice "not the password"
expect_fail unknown_user mallory "anything"
expect_fail locked_hash locked "whatever"
# An account without a password yet ("!" alone, as useradd leaves it): reason no_password.
cp -p "$T/shadow" "$T/shadow.keep"
sed -i 's/^locked:[^:]*:/locked:!:/' "$T/shadow"
expect_fail no_password locked "whatever"
cp -p "$T/shadow.keep" "$T/shadow"
expect_fail unsupported_hash olddes "anything"
expect_fail too_long alice "$(head -c 2000 /dev/zero | tr '\0' a)"
# pamtester reads one line, so only "\b" arrives here: this checks the outcome of an odd
# password; pamtest_auth.c sends sshd's whole fake password to entries hashed from it.
expect_fail sshd_fake alice $'\b\n\r\177INCORRECT\b\n\r\177INCORRECT'
expect_fail planted_hash planted "anything"
ref=${outputs[wrong_password]}
for k in "${!outputs[@]}"; do
        [ "${outputs[$k]}" = "$ref" ] || printf '# %s printed:\n%s\n# a wrong password printed:\n%s\n' "$k" "${outputs[$k]}" "$ref" >&2
        check "outcome of $k identical to a wrong password" test "${outputs[$k]}" = "$ref"
done

# Invalid input: control bytes, SQL, overlong names. Refused, never crash the daemon.
for u in $'ali\x1bce' "x'; DROP TABLE audit;--" "$(head -c 300 /dev/zero | tr '\0' u)" 'a%n%n%s' '-rf'; do
        if sg_auth "$u" "pw"; then fail "invalid user accepted"; fi
done
check "invalid input audited as invalid_input" test "$(sgctl --json audit --limit 1000 | grep -c '"reason":"invalid_input"')" -ge 4
check "SQL payload stored verbatim" test "$(sg_sql "SELECT count(*) FROM audit WHERE user = 'x''; DROP TABLE audit;--';")" -eq 1
check "daemon still answers after hostile input" sgctl status >/dev/null

# The audit log holds the truth the user never sees.
for reason in bad_password unknown_user locked_hash no_password unsupported_hash password_too_long hash_cost; do
        check "audit has reason $reason" grep -q "\"reason\":\"$reason\"" <(sgctl --json audit --event auth_failure --limit 1000)
done
check "sshd fake password counted as bad_password" test "$(sgctl --json audit --user alice --event auth_failure --limit 1000 | grep -c bad_password)" -ge 3

# Planted hash: refused before hashing (well under the time a 4 GiB argon2 would take).
start=$(date +%s%N)
sg_auth planted "anything" || true
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "planted m=4194304 hash fails fast (${elapsed_ms} ms)" test "$elapsed_ms" -lt 1500

# Upgrade on login: carol's sha512crypt becomes argon2id; no other line changes.
sg_stop_daemon
sg_write_config "upgrade_hashes = yes" "[ratelimit]" "user_max_failures = 1000"
sg_start_daemon
grep -v '^carol:' "$T/shadow" >"$T/others.before"
check "upgrade: login accepted" sg_auth carol "$SG_PW_CAROL"
check "upgrade: carol now has argon2id" grep -q '^carol:\$argon2id\$' "$T/shadow"
grep -v '^carol:' "$T/shadow" >"$T/others.after"
check "upgrade: every other line byte for byte" cmp -s "$T/others.before" "$T/others.after"
check "upgrade: shadow mode kept" test "$(stat -c %a "$T/shadow")" = 600
check "upgrade: hash_upgraded audited" test "$(sg_audit_count --event hash_upgraded --user carol)" -eq 1
check "upgrade: new hash verifies" sg_auth carol "$SG_PW_CAROL"
check "upgrade: no second upgrade" test "$(sg_audit_count --event hash_upgraded --user carol)" -eq 1
check "bcrypt upgraded too" sg_auth dave "$SG_PW_DAVE"
check "bcrypt now argon2id" grep -q '^dave:\$argon2id\$' "$T/shadow"

# bcrypt reads 72 bytes: a longer typed password verifies by its prefix. Upgrading then would
# store a hash of the whole typed string, and the user's real password would stop working.
pw72=$(printf 'erin-bcrypt-%060d' 7)
[ ${#pw72} -eq 72 ] || fail "test password is not 72 bytes"
echo "erin:$(sg_hash bcrypt "$pw72"):20000:0:99999:7:::" >>"$T/shadow"
check "bcrypt, 81 bytes typed: accepted by the 72-byte prefix" sg_auth erin "${pw72}-and-more"
check "bcrypt, 81 bytes typed: not upgraded" grep -q '^erin:\$2b\$' "$T/shadow"
check "bcrypt, the real 72-byte password still works" sg_auth erin "$pw72"
check "bcrypt, upgraded when the typed password fits" grep -q '^erin:\$argon2id\$' "$T/shadow"
check "bcrypt, upgraded hash takes the real password" sg_auth erin "$pw72"
check "bcrypt, upgraded hash refuses the longer string" ! sg_auth erin "${pw72}-and-more"

# A stored argon2id stronger than the preferred cost (t=1, 8 MiB here) is never rehashed down.
SG_PW_STRONG='strong argon2 pw'
printf '[auth]\nargon2_opslimit = 2\nargon2_memlimit = 16M\n' >"$T/strong.conf"
strong=$(printf '%s\n' "$SG_PW_STRONG" | "$SECGUARDCTL" --config "$T/strong.conf" hash)
case "$strong" in '$argon2id$v=19$m=16384,t=2,p=1$'*) ;; *) fail "could not make a t=2 argon2id hash" ;; esac
echo "strong:$strong:20000:0:99999:7:::" >>"$T/shadow"
check "stronger argon2id: login accepted" sg_auth strong "$SG_PW_STRONG"
check "stronger argon2id: hash kept" grep -qF "strong:$strong:" "$T/shadow"
check "stronger argon2id: no hash_upgraded event" test "$(sg_audit_count --event hash_upgraded --user strong)" -eq 0

# pam_fail_delay on every failure (fail_delay_ms; no growing delay from the daemon here).
sg_stop_daemon
sg_write_config "[ratelimit]" "user_max_failures = 1000" "source_max_failures = 1000" \
        "user_source_max_failures = 1000" "spray_max_users = 1000" "delay_step_ms = 0"
sed -i 's/^fail_delay_ms = 0$/fail_delay_ms = 600/' "$T/secguard.conf"
sg_start_daemon
timed_ms() { local t0; t0=$(date +%s%N); "$@" || true; echo $((($(date +%s%N) - t0) / 1000000)); }
wrong_ms=$(timed_ms sg_auth alice "wrong once more")
unknown_ms=$(timed_ms sg_auth mallory "anything")
right_ms=$(timed_ms sg_auth alice "$SG_PW_ALICE")
sg_log "fail_delay_ms = 600: wrong password $wrong_ms ms, unknown user $unknown_ms ms, success $right_ms ms"
# libpam randomises the delay (down to half of it); a success is not delayed.
check "fail delay: a wrong password waits (>= 300 ms: $wrong_ms)" test "$wrong_ms" -ge 300
check "fail delay: an unknown user waits too (>= 300 ms: $unknown_ms)" test "$unknown_ms" -ge 300
check "fail delay: a success does not wait (< 300 ms: $right_ms)" test "$right_ms" -lt 300
sed -i 's/^fail_delay_ms = 600$/fail_delay_ms = 0/' "$T/secguard.conf"
sg_done
