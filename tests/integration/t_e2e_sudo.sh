#!/bin/bash
# End to end through the real, setuid /usr/bin/sudo: a private /etc/pam.d/sudo (our module
# for auth and account) and a private /etc/sudoers (the test user may run /bin/true as
# root), bind-mounted in a private mount namespace. The test user runs `sudo -S -k` with its
# password on stdin; each outcome is checked in the audit log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e_lib.sh"
for tool in /usr/bin/sudo setpriv unshare; do
        command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (scripts/setup installs it)"; exit 77; }
done
if [ ! -u /usr/bin/sudo ] || [ "$(stat -c %u /usr/bin/sudo)" -ne 0 ]; then
        echo "SKIP: /usr/bin/sudo is not setuid root here ($(stat -c '%U %A' /usr/bin/sudo))"
        exit 77
fi
sg_setup "[ratelimit]" "user_max_failures = 1000" "source_max_failures = 1000" \
        "user_source_max_failures = 1000" "spray_max_users = 1000" "delay_step_ms = 0"
e2e_make_etc yescrypt
e2e_write_service sudo
cat >"$T/sudoers" <<EOF
Defaults !syslog, logfile=$T/sudo.log, !mail_badpass, !lecture, !use_pty
Defaults passwd_tries=1, timestamp_timeout=0, !requiretty
Defaults env_reset
$E2E_USER ALL=(root) /bin/true, /usr/bin/true
EOF
chmod 0440 "$T/sudoers"
# shellcheck disable=SC2034 # read by e2e_write_ns_script (e2e_lib.sh)
E2E_BINDS=("$T/sudoers:/etc/sudoers")
# Under the sanitizers the ASan runtime must come first in sudo, which is setuid: ld.so ignores
# LD_PRELOAD there but honours /etc/ld.so.preload, so the namespace gets a private one.
SUDO_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin)
if [ -n "${SG_SANITIZE:-}" ]; then
        mkdir -m 0755 "$T/etc-upper"
        { echo "$SG_LIBASAN"; cat /etc/ld.so.preload 2>/dev/null || true; } >"$T/etc-upper/ld.so.preload"
        chmod 0644 "$T/etc-upper/ld.so.preload"
        SUDO_ENV+=(ASAN_OPTIONS="$SG_CLIENT_ASAN")
        # Every program in that namespace then carries the ASan runtime: no leak reports
        # from bash, mount or setpriv.
        export ASAN_OPTIONS="$SG_CLIENT_ASAN"
fi
e2e_write_ns_script
sg_start_daemon

# Does the setuid bit work in this namespace? (nosuid /tmp would not matter: sudo is in /usr.)
check "the private sudoers parses (visudo -c)" e2e_ns visudo -c -f /etc/sudoers

# as_user_sudo PASSWORD [ARGS]: sudo -S -k -u root /bin/true as the test user.
as_user_sudo() {
        printf '%s\n' "$1" | timeout 30 unshare -m -- "$T/ns-enter.sh" \
                setpriv --reuid="$E2E_UID" --regid="$E2E_UID" --init-groups -- \
                "${SUDO_ENV[@]}" HOME="$T/home/$E2E_USER" USER="$E2E_USER" LOGNAME="$E2E_USER" /usr/bin/sudo -S -k -p 'sudo-prompt:' -u root /bin/true >"$T/sudo.out" 2>&1
}

rc=0
as_user_sudo "$E2E_PW" || rc=$?
if [ "$rc" -ne 0 ] && grep -qi 'must be owned by uid 0 and have the setuid bit\|effective uid is not 0\|no new privileges' "$T/sudo.out"; then
        echo "SKIP: setuid does not work here: $(head -n 1 "$T/sudo.out")"
        exit 77
fi
check "right password: sudo exits 0 (rc $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat "$T/sudo.out" >&2
check "auth_success row for service sudo, local (no rhost)" "$PY" -c '
import json, sys
r = [json.loads(l) for l in sys.stdin if l.strip()]
assert len(r) == 1, r
assert r[0]["service"] == "sudo" and not r[0].get("rhost"), r[0]
' < <(sgctl --json audit --event auth_success --user "$E2E_USER")
check "sudo prompted (password read from stdin)" grep -q 'sudo-prompt:' "$T/sudo.out"
check "sudo logged the command, run for $E2E_USER as root" \
        grep -q "$E2E_USER : .*USER=root ; COMMAND=/.*true" <(tr -s ' \n' ' ' <"$T/sudo.log") # sudo wraps long lines

rc=0
as_user_sudo "not the password" || rc=$?
check "wrong password: sudo exits non-zero (rc $rc)" test "$rc" -ne 0
check "wrong password audited as bad_password for service sudo" grep -q '"reason":"bad_password".*"service":"sudo"' \
        < <(sgctl --json audit --event auth_failure --user "$E2E_USER")
check "still one auth_success" test "$(sg_audit_count --event auth_success --user "$E2E_USER")" -eq 1

check "right password again: sudo exits 0" as_user_sudo "$E2E_PW"
check "two auth_success rows" test "$(sg_audit_count --event auth_success --user "$E2E_USER")" -eq 2
# The account stack is ours too: an expired account is refused after a right password.
sed -i "s/^\($E2E_USER:[^:]*:[^:]*:[^:]*:[^:]*:[^:]*:[^:]*:\)[^:]*:/\11:/" "$T/etc/shadow"
check "shadow now says expired" grep -q "^$E2E_USER:.*:1:\$" "$T/etc/shadow"
rc=0
as_user_sudo "$E2E_PW" || rc=$?
sg_log "expired account, sudo said: $(tr "\n" " " <"$T/sudo.out")"
check "expired account: sudo exits non-zero (rc $rc) after a right password" test "$rc" -ne 0
check "sudo names the expiry" grep -qi "account expired" "$T/sudo.out"
check "the password itself was accepted (third auth_success)" test "$(sg_audit_count --event auth_success --user "$E2E_USER")" -eq 3
check "audit verify passes" sgctl audit verify
check "host /etc/pam.d/sudo untouched" ! grep -q pam_secguard /etc/pam.d/sudo
check "host /etc/sudoers untouched" ! grep -q "$E2E_USER" /etc/sudoers
check "host /etc/ld.so.preload not created or changed" ! grep -qs "${SG_LIBASAN:-libasan}" /etc/ld.so.preload

sg_done
