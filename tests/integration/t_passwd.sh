#!/bin/bash
# Password change through pam_sm_chauthtok: old password checked for non-root callers,
# quality rules, argon2id written atomically, audited; concurrent changes lose nothing.
. "$(dirname "$0")/lib.sh"
sg_setup
sg_start_daemon

# chauthtok as a user would run passwd: real uid 1000, effective uid 0 (setuid passwd).
# ld.so ignores LD_PRELOAD in that secure mode, so pam_run uses pam_start_confdir instead.
user_passwd() { # user old new retype
        printf '%s\n%s\n%s\n' "$2" "$3" "$4" | setpriv --ruid=1000 -- \
                timeout 30 "$SG_BUILD/tests/integration/pam_run" "$T/pam.d" sgtest "$1" chauthtok \
                >"$T/pam.out" 2>&1
}
root_passwd() { # user new retype
        printf '%s\n%s\n' "$2" "$3" | sg_pam "$1" chauthtok >"$T/pam.out" 2>&1
}

cp "$T/shadow" "$T/shadow.before"
check "user: wrong old password refused" ! user_passwd alice "not it" "new alice pw 1" "new alice pw 1"
check "user: shadow unchanged after a refusal" cmp -s "$T/shadow" "$T/shadow.before"
check "user: too short refused" ! user_passwd alice "$SG_PW_ALICE" "short" "short"
check "user: same as old refused" ! user_passwd alice "$SG_PW_ALICE" "$SG_PW_ALICE" "$SG_PW_ALICE"
echo "administrator:$(sg_hash argon2id 'admin old pw'):20000:0:99999:7:::" >>"$T/shadow"
echo "administrator:x:1010:1010::/:/bin/sh" >>"$T/passwd"
cp "$T/shadow" "$T/shadow.before"
check "root: the user name as password refused (any case)" ! root_passwd administrator Administrator Administrator
check "... and told why" grep -q "user name" "$T/pam.out"
check "user: mismatched retype refused" ! user_passwd alice "$SG_PW_ALICE" "new alice pw 1" "new alice pw 2"
check "user: valid change accepted" user_passwd alice "$SG_PW_ALICE" "new alice pw 1" "new alice pw 1"
check "new password works" sg_auth alice "new alice pw 1"
check "old password no longer works" ! sg_auth alice "$SG_PW_ALICE"
check "stored as argon2id" grep -q '^alice:\$argon2id\$' "$T/shadow"
check "last-change day updated" test "$(grep '^alice:' "$T/shadow" | cut -d: -f3)" -eq $(( $(date +%s) / 86400 ))
check "other lines untouched" cmp -s <(grep -v '^alice:' "$T/shadow") <(grep -v '^alice:' "$T/shadow.before")
check "mode kept" test "$(stat -c %a "$T/shadow")" = 600
check "password_changed audited" test "$(sg_audit_count --event password_changed --user alice)" -eq 1
check "root changes a password without the old one" root_passwd bob "bob second pw" "bob second pw"
check "bob's new password works" sg_auth bob "bob second pw"
check "no temp files left beside the shadow file" test -z "$(find "$T" -maxdepth 1 -name '.shadow.*')"

# Two users changing at the same time, repeatedly: neither change is lost.
for i in $(seq 1 8); do
        root_passwd bob "bob pw round $i" "bob pw round $i" &
        p1=$!
        printf '%s\n%s\n' "carol pw round $i" "carol pw round $i" | sg_pam carol chauthtok >/dev/null 2>&1 &
        p2=$!
        wait "$p1" "$p2" || fail "a concurrent change failed in round $i"
done
check "concurrent: bob's last change kept" sg_auth bob "bob pw round 8"
check "concurrent: carol's last change kept" sg_auth carol "carol pw round 8"
check "concurrent: line count unchanged" test "$(wc -l <"$T/shadow")" -eq "$(wc -l <"$T/shadow.before")"

sg_done
