#!/bin/bash
# End to end through the real OpenSSH server: /usr/sbin/sshd on 127.0.0.1 with UsePAM and a
# private /etc/pam.d/sshd naming the built module, in a private mount namespace (private
# pam.d, passwd, group, shadow; the host's stay untouched). Logins are driven by sshpass +
# ssh, and each outcome is checked in the daemon's audit log: success, wrong password,
# invalid user (sshd's fake password), keyboard-interactive, and the per-(user, source)
# lockout with its timing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/e2e_lib.sh"
for tool in /usr/sbin/sshd ssh sshpass ssh-keygen unshare; do
        command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (scripts/setup installs it)"; exit 77; }
done
MAXF=3
host_had_run_sshd=
[ -e /run/sshd ] && host_had_run_sshd=1
sg_setup "[ratelimit]" "user_max_failures = 1000" "source_max_failures = 1000" \
        "user_source_max_failures = $MAXF" "spray_max_users = 1000" "delay_step_ms = 0" \
        "lock_time = 10m"
e2e_make_etc sha512crypt
e2e_write_service sshd
# shellcheck disable=SC2034 # read by e2e_write_ns_script (e2e_lib.sh)
E2E_BINDS=()
e2e_write_ns_script

mkdir -m 0700 "$T/ssh"
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/host_ed25519" || fail "ssh-keygen failed"
PORT=$(e2e_free_port)
cat >"$T/ssh/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $T/ssh/host_ed25519
PidFile $T/ssh/sshd.pid
UsePAM yes
PasswordAuthentication yes
KbdInteractiveAuthentication yes
PubkeyAuthentication no
PermitRootLogin no
AuthorizedKeysFile none
UseDNS no
PrintMotd no
PrintLastLog no
MaxAuthTries 6
MaxStartups 100
LoginGraceTime 30
LogLevel VERBOSE
EOF
SSHD_PID=
stop_sshd() {
        [ -n "$SSHD_PID" ] || return 0
        kill -TERM "$SSHD_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SSHD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SSHD_PID" 2>/dev/null || true
        wait "$SSHD_PID" 2>/dev/null || true
        SSHD_PID=
}
cleanup_sshd() {
        local rc=$?
        set +e
        stop_sshd
        (exit "$rc") # sg_cleanup reads the test's status from $?
        sg_cleanup
}
trap cleanup_sshd EXIT

timeout 20 unshare -m -- "$T/ns-enter.sh" /usr/sbin/sshd -t -f "$T/ssh/sshd_config" || fail "sshd -t rejects the test config"
sg_start_daemon
# Under the sanitizers the module needs the ASan runtime loaded first in sshd.
SSHD_ENV=()
if [ -n "${SG_SANITIZE:-}" ]; then
        SSHD_ENV=(env LD_PRELOAD="$SG_LIBASAN" ASAN_OPTIONS="$SG_CLIENT_ASAN")
fi
# sshd -D stays in the foreground (its pid is ours to stop); -e logs to stderr, not syslog.
timeout 600 unshare -m -- "$T/ns-enter.sh" "${SSHD_ENV[@]}" /usr/sbin/sshd -D -e -f "$T/ssh/sshd_config" \
        >"$T/sshd.log" 2>&1 &
SSHD_PID=$!
for _ in $(seq 1 100); do
        grep -q "Server listening on 127.0.0.1 port $PORT" "$T/sshd.log" && break
        kill -0 "$SSHD_PID" 2>/dev/null || { cat "$T/sshd.log" >&2; fail "sshd exited at start-up"; }
        sleep 0.1
done
grep -q "Server listening" "$T/sshd.log" || fail "sshd did not listen within 10 s"
sg_log "sshd pid $SSHD_PID on 127.0.0.1:$PORT"

# ssh_login USER PASSWORD [METHODS]: exit status of sshpass+ssh running `true`.
# One password prompt per connection, so one connection is one PAM authentication.
ssh_login() {
        local methods=${3:-password,keyboard-interactive}
        timeout 30 sshpass -p "$2" ssh -F /dev/null -o StrictHostKeyChecking=no \
                -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=no \
                -o PreferredAuthentications="$methods" -o NumberOfPasswordPrompts=1 \
                -o ConnectTimeout=10 -p "$PORT" "$1@127.0.0.1" true >>"$T/ssh.out" 2>&1
}
rows() { sg_audit_count "$@"; }
last_row() { sgctl --json audit --limit 100000 "$@" | tail -n 1; }

check "right password: ssh exits 0" ssh_login "$E2E_USER" "$E2E_PW"
check "auth_success row for service sshd from 127.0.0.1" "$PY" -c '
import json, sys
r = [json.loads(l) for l in sys.stdin if l.strip()]
assert len(r) == 1, r
assert r[0]["service"] == "sshd" and r[0]["rhost"] == "127.0.0.1", r[0]
' < <(sgctl --json audit --event auth_success --user "$E2E_USER")
check "the session ran: sshd logged an accepted password" grep -q "Accepted password for $E2E_USER from 127.0.0.1" "$T/sshd.log"

check "keyboard-interactive with the right password: ssh exits 0" \
        ssh_login "$E2E_USER" "$E2E_PW" keyboard-interactive
check "two auth_success rows now" test "$(rows --event auth_success --user "$E2E_USER")" -eq 2

wrong_ms=()
t0=$(e2e_now_ms)
check "wrong password: refused" ! ssh_login "$E2E_USER" "not the password"
wrong_ms+=($(( $(e2e_now_ms) - t0 )))
bad=$(sgctl --json audit --user "$E2E_USER" --event auth_failure | grep -c '"reason":"bad_password"' || true)
check "wrong password audited as bad_password ($bad row(s) for one connection)" test "$bad" -ge 1
check "the failure row carries service sshd and rhost 127.0.0.1" grep -q '"service":"sshd".*"rhost":"127.0.0.1"\|"rhost":"127.0.0.1".*"service":"sshd"' \
        < <(last_row --event auth_failure --user "$E2E_USER")

# An invalid user: sshd hands PAM its fake password; the truth in the audit log.
check "invalid user: refused" ! ssh_login sgnosuchuser "anything at all"
inv=$(last_row --event auth_failure --user sgnosuchuser)
sg_log "invalid user row: $inv"
check "invalid user audited (unknown_user or bad_password)" grep -Eq '"reason":"(unknown_user|bad_password)"' <<<"$inv"
check "sshd itself logged the invalid user" grep -q "Invalid user sgnosuchuser from 127.0.0.1" "$T/sshd.log"
# What arrives for an invalid user: sgghost has a shadow entry but no passwd entry, so sshd
# calls it invalid and passes its fake password instead of the typed (right) one; the
# module verifies that against the real hash and must refuse it.
echo "sgghost:$(sg_hash sha512crypt "$E2E_PW"):20000:0:99999:7:::" >>"$T/etc/shadow"
check "invalid user with a shadow entry and the right password: refused" ! ssh_login sgghost "$E2E_PW"
ghost=$(last_row --event auth_failure --user sgghost)
sg_log "passwd-less user row: $ghost"
check "what arrived was not the typed password (bad_password)" grep -q '"reason":"bad_password"' <<<"$ghost"
check "no auth_success for the invalid user" test "$(rows --event auth_success --user sgghost)" -eq 0

# Lockout: fail until the user_source threshold, then the right password is refused.
while [ "$(sgctl --json audit --user "$E2E_USER" --event auth_failure | grep -c bad_password || true)" -lt "$MAXF" ]; do
        t0=$(e2e_now_ms)
        ssh_login "$E2E_USER" "wrong again" && fail "a wrong password was accepted"
        wrong_ms+=($(( $(e2e_now_ms) - t0 )))
done
check "after $MAXF failures the lock is listed" grep -q "$E2E_USER@127.0.0.1" <(sgctl locks)
blocked_ms=()
for i in 1 2 3; do
        t0=$(e2e_now_ms)
        check "after $MAXF failures the right password is refused (try $i)" ! ssh_login "$E2E_USER" "$E2E_PW"
        blocked_ms+=($(( $(e2e_now_ms) - t0 )))
done
check "each refusal is audited as auth_blocked" test "$(rows --event auth_blocked --user "$E2E_USER")" -eq 3
check "the auth_blocked rows carry service sshd" grep -q '"service":"sshd"' \
        < <(last_row --event auth_blocked --user "$E2E_USER")
check "no success was recorded while locked" test "$(rows --event auth_success --user "$E2E_USER")" -eq 2
check "no further hash was computed while locked (still $MAXF bad_password)" \
        test "$(sgctl --json audit --user "$E2E_USER" --event auth_failure | grep -c bad_password)" -eq "$MAXF"
echo "# timing through sshd (whole ssh connection, ms): wrong password ${wrong_ms[*]}; blocked ${blocked_ms[*]}"

check "unlock lets the right password in again" sgctl unlock "$E2E_USER"
check "after unlock: ssh exits 0" ssh_login "$E2E_USER" "$E2E_PW"
check "sshd still running" kill -0 "$SSHD_PID"
check "audit verify passes" sgctl audit verify
check "host /etc/pam.d/sshd untouched (no secguard in it)" ! grep -q pam_secguard /etc/pam.d/sshd
check "host /run/sshd not created by the test" test ! -e /run/sshd -o -n "$host_had_run_sshd"

stop_sshd
sg_done
