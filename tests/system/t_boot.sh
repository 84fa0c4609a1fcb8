#!/bin/bash
# The Debian package on a booted Debian 12 (issue 12, item 8): the cached debootstrap tree
# (debian_tree.sh) under a throwaway overlay, the .deb installed, the PAM profile enabled,
# then booted with systemd-nspawn. Checks, through real clients and the common-* files:
# socket activation; ssh, sudo, su and login success and failure, each client answering a
# refusal identically whatever its cause (wrong password, unknown user, lockout); a one-time
# token letting a new account in once through su, with the password set there; journald
# fields and catalog; systemctl reload with a rejected file; a lockout surviving kill -9
# under systemd and lifted by `secguardctl unlock`; sessions registered from common-session,
# listed with their logind id, killed by id, and ended at max_lifetime through logind's
# TerminateSession under the shipped unit's hardening; the units' verify/security
# (exposure <= 1.0); pam-auth-update --disable. About 4 minutes on 2 cores (the package
# build, fixed waits for terminal prompts, a 20 s session lifetime). Skips, saying why, when
# nspawn cannot boot systemd here.
. "$(dirname "$0")/../integration/lib.sh"
sg_require_root
if [ -z "${SG_BOOT_NS:-}" ]; then
        exec unshare -m env SG_BOOT_NS=1 bash "$0" "$@"
fi
mount --make-rprivate /
for tool in systemd-nspawn nsenter sshpass dpkg-buildpackage; do
        command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup installs it)"
done
sg_setup
. "$SG_SRC/tests/integration/debian_tree.sh"
base=$(sg_debian_tree) || fail "no Debian tree"

deb=$(SG_DIST="$T/dist" timeout 600 "$SG_SRC/scripts/package") || fail "scripts/package failed"
R="$T/root"
mkdir "$T/upper" "$T/work" "$R"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$T/upper,workdir=$T/work" "$R" || fail "overlay mount failed"
NSPAWN=
stop_container() {
        [ -n "$NSPAWN" ] || return 0
        kill -TERM "$NSPAWN" 2>/dev/null || true # nspawn powers the container off
        for _ in $(seq 50); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$NSPAWN" 2>/dev/null || true
        wait "$NSPAWN" 2>/dev/null || true
        NSPAWN=
}
trap 'rc=$?; stop_container; umount -R "$R" 2>/dev/null || umount -lR "$R"; (exit $rc); sg_cleanup' EXIT

# ---- before boot: install, a user, the profile, sshd on a private port ----
in_root() { timeout 300 chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
mount -t proc proc "$R/proc"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
cp "$deb" "$R/tmp/"
in_root apt-get install -y -q "/tmp/$(basename "$deb")" >"$T/apt.log" 2>&1 || { cat "$T/apt.log" >&2; fail "apt-get install failed"; }
in_root useradd -m -s /bin/sh alice || fail "useradd"
in_root useradd -m -s /bin/sh bob || fail "useradd"
in_root useradd -m -s /bin/sh dave || fail "useradd" # a new account: no password yet ("!")
printf 'alice:right horse battery\nbob:bob horse battery\n' | in_root chpasswd || fail "chpasswd"
# alice may use sudo (one try per run, so a refusal ends it); bob is the invoker for su.
printf 'Defaults passwd_tries=1, !lecture\nalice ALL=(ALL) ALL\n' >"$R/etc/sudoers.d/secguard-test"
chmod 0440 "$R/etc/sudoers.d/secguard-test"
# Small limits so a lockout takes three failures; sessions live at most 20 s (the lifetime
# check below); the packaged file's sections are reopened at its end.
printf '\n[ratelimit]\nuser_max_failures = 3\nuser_hard_lock = yes\ndelay_step_ms = 0\n[session]\nmax_lifetime = 20s\nkill_grace = 3s\n' \
        >>"$R/etc/secguard/secguard.conf"
in_root pam-auth-update --enable secguard || fail "pam-auth-update --enable secguard"
port=$((20000 + $$ % 10000))
printf 'Port %s\nListenAddress 127.0.0.1\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n' "$port" \
        >"$R/etc/ssh/sshd_config.d/secguard-test.conf"
echo sgtest >"$R/etc/hostname"
umount "$R/dev/pts" "$R/proc"

# ---- boot ----
timeout 600 systemd-nspawn --register=no --keep-unit --quiet -D "$R" --boot >"$T/console.log" 2>&1 &
NSPAWN=$!
L= state=
for _ in $(seq 120); do
        sleep 0.5
        kill -0 "$NSPAWN" 2>/dev/null || break
        kids=$(pgrep -d, -P "$NSPAWN" || true)
        L=$(pgrep -x systemd -P "$NSPAWN${kids:+,$kids}" | head -n 1 || true)
        [ -n "$L" ] || continue
        state=$(nsenter -t "$L" -a systemctl is-system-running 2>/dev/null || true)
        case $state in running | degraded) break ;; esac
done
case $state in
running | degraded) ;;
*)
        echo "SKIP: systemd-nspawn could not boot systemd here (state '${state:-none}'); console:"
        tail -n 15 "$T/console.log"
        exit 77
        ;;
esac
C() { timeout 60 nsenter -t "$L" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
status() { C secguardctl status >>"$T/status.log"; }
echo "# booted: $state"
[ "$state" = running ] || C systemctl --failed --no-legend >&2

# ---- socket activation ----
check "socket active after boot" C systemctl is-active --quiet secguardd.socket
check "daemon not started before the first request" ! C systemctl is-active --quiet secguardd.service
check "secguardctl status activates the daemon" status
check "daemon active" C systemctl is-active --quiet secguardd.service
check "systemd-analyze verify: units clean" C systemd-analyze verify --man=no secguardd.socket secguardd.service
score=$(C systemd-analyze security secguardd.service 2>&1 | sed -n 's/.*Overall exposure level[^:]*: *\([0-9.]*\).*/\1/p')
echo "# systemd-analyze security (booted): $score"
check "unit exposure at most 1.0 under a real systemd (got $score)" awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 1.0) }'

# ---- password logins through the common-* files: ssh, sudo, su, login ----
# Each client's answer (exit code and everything it printed) is kept in $T/out.<name>: a
# refusal must look the same whatever its cause (wrong password, unknown user, lockout).
AL='right horse battery'
ssh_cmd() { timeout 60 sshpass -p "$2" ssh -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o PreferredAuthentications=password -o PubkeyAuthentication=no -o ConnectTimeout=10 \
        "$1@127.0.0.1" "${3:-true}"; }
ssh_as() { ssh_cmd "$1" "$2" >>"$T/ssh.log" 2>&1; }
# run NAME CMD...: runs CMD, keeps "rc=N" and its output in $T/out.NAME; fails unless rc is 0.
run() {
        local name=$1 rc=0
        shift
        "$@" >"$T/out.$name" 2>&1 || rc=$?
        echo "rc=$rc" >>"$T/out.$name"
        return "$rc"
}
# same A B: two recorded answers are identical.
same() {
        cmp -s "$T/out.$1" "$T/out.$2" && return 0
        echo "# $1 and $2 differ:" >&2
        diff "$T/out.$1" "$T/out.$2" | sed 's/^/#   /' >&2
        return 1
}
as_user() { local u=$1; shift; C setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"; }
# The password goes in after the prompt is up: su and login read it from their terminal.
typed() { { sleep 1.5; printf '%s\n' "$1"; sleep 2; }; }
sudo_as_alice() { typed "$1" | as_user alice sudo -S -k -p 'Password: ' true; }
# A terminal's output with its carriage returns and blank lines dropped; the exit code is the
# client's.
on_tty() {
        local rc=0
        typed "$1" | "${@:2}" >"$T/tty.raw" 2>&1 || rc=$?
        tr -d '\r' <"$T/tty.raw" | grep -v '^[[:space:]]*$' | head -n 4
        return "$rc"
}
su_by_bob() { on_tty "$1" as_user bob script -qec 'su -c true alice' /dev/null; }
login_alice() { on_tty "$1" C script -qec 'login alice' /dev/null; }
unlock_alice() { C secguardctl unlock alice >/dev/null 2>&1 || true; }
for _ in $(seq 40); do C systemctl is-active --quiet ssh.service && break; sleep 0.25; done
check "ssh: right password accepted" ssh_as alice "$AL"
check "ssh: wrong password refused" ! run ssh.wrong ssh_cmd alice 'wrong'
check "ssh: unknown user refused" ! run ssh.unknown ssh_cmd nobody_here 'wrong'
check "ssh: the same answer for an unknown user as for a wrong password" same ssh.wrong ssh.unknown
unlock_alice
check "sudo: right password accepted" run sudo.right sudo_as_alice "$AL"
check "sudo: wrong password refused" ! run sudo.wrong sudo_as_alice 'wrong'
check "su: right password accepted" run su.right su_by_bob "$AL"
check "su: wrong password refused" ! run su.wrong su_by_bob 'wrong'
check "su: says so" grep -q 'Authentication failure' "$T/out.su.wrong"
run login.right login_alice "$AL" || true
check "login: right password accepted (no 'Login incorrect')" ! grep -q 'Login incorrect' "$T/out.login.right"
run login.wrong login_alice 'wrong' || true
check "login: wrong password refused (Login incorrect)" grep -q 'Login incorrect' "$T/out.login.wrong"
unlock_alice
check "journal: auth_success for alice" sh -c 'nsenter -t "$1" -a journalctl -q SECGUARD_EVENT=auth_success SECGUARD_USER=alice | grep -q .' sh "$L"
check "journal: auth_failure for alice" sh -c 'nsenter -t "$1" -a journalctl -q SECGUARD_EVENT=auth_failure SECGUARD_USER=alice | grep -q .' sh "$L"
check "journalctl -x explains secguard's events (catalog)" sh -c 'nsenter -t "$1" -a journalctl -x -q SYSLOG_IDENTIFIER=secguardd | grep -q "Defined-By: secguard"' sh "$L"

# ---- reload ----
cp "$R/etc/secguard/secguard.conf" "$T/good.conf"
printf '\n[daemon]\nno_such_key = 1\n' >>"$R/etc/secguard/secguard.conf"
pid_before=$(C systemctl show -P MainPID secguardd.service)
check "systemctl reload fails on a rejected config" ! C systemctl reload secguardd.service
check "the daemon runs on after the failed reload" C systemctl is-active --quiet secguardd.service
check "same daemon process" test "$(C systemctl show -P MainPID secguardd.service)" = "$pid_before"
cp "$T/good.conf" "$R/etc/secguard/secguard.conf"
check "systemctl reload succeeds on a good config" C systemctl reload secguardd.service

# ---- a one-time token: dave (a new account, no password yet) is let in once by su and sets
# his password in the same transaction ----
token=$(C secguardctl token issue dave | tail -n 1)
check "token issue prints a token" grep -Eq '^[0-9A-Z]{4}(-[0-9A-Z]{4}){14}$' <<<"$token"
su_to_dave() { # su_to_dave LINE...: bob runs su -c true dave, typing each line in turn
        { for line in "$@"; do sleep 1.5; printf '%s\n' "$line"; done; sleep 2; } |
                as_user bob script -qec 'su -c true dave' /dev/null >"$T/su.dave" 2>&1
}
check "su with the token, then a new password twice: succeeds" su_to_dave "$token" 'dave horse battery' 'dave horse battery'
check "... dave has a password hash now" grep -q '^dave:\$' "$R/etc/shadow"
check "... and the token is spent" ! su_to_dave "$token"
check "... the new password works" su_to_dave 'dave horse battery'
check "journal: token_used for dave" sh -c 'nsenter -t "$1" -a journalctl -q SECGUARD_EVENT=token_used SECGUARD_USER=dave | grep -q .' sh "$L"
check "the token is in no journal entry" sh -c '! nsenter -t "$1" -a journalctl -q -o verbose | grep -qF "$2"' sh "$L" "$token"

# ---- lockout: three failures lock alice everywhere; each client then answers as for a wrong
# password; the lock survives kill -9; unlock lets her in ----
unlock_alice
for i in 1 2 3; do ssh_as alice "wrong $i" || true; done
check "locks: alice is locked" sh -c 'nsenter -t "$1" -a secguardctl locks | grep -q alice' sh "$L"
check "locked: ssh with the right password refused" ! run ssh.locked ssh_cmd alice "$AL"
check "locked: ssh answers as for a wrong password" same ssh.wrong ssh.locked
check "locked: sudo refused" ! run sudo.locked sudo_as_alice "$AL"
check "locked: sudo answers as for a wrong password" same sudo.wrong sudo.locked
check "locked: su refused" ! run su.locked su_by_bob "$AL"
check "locked: su answers as for a wrong password" same su.wrong su.locked
run login.locked login_alice "$AL" || true
check "locked: login answers as for a wrong password" same login.wrong login.locked
check "journal: lockout for alice" sh -c 'nsenter -t "$1" -a journalctl -q SECGUARD_EVENT=lockout SECGUARD_USER=alice | grep -q .' sh "$L"

# ---- kill -9 under systemd ----
pid_before=$(C systemctl show -P MainPID secguardd.service)
C kill -9 "$pid_before"
for _ in $(seq 40); do
        sleep 0.25
        now=$(C systemctl show -P MainPID secguardd.service)
        [ -n "$now" ] && [ "$now" != 0 ] && [ "$now" != "$pid_before" ] && break
done
check "systemd restarted the daemon after kill -9" sh -c '[ -n "$1" ] && [ "$1" != 0 ] && [ "$1" != "$2" ]' sh "$now" "$pid_before"
check "secguardctl status after the restart" status
check "the lock survived kill -9" sh -c 'nsenter -t "$1" -a secguardctl locks | grep -q alice' sh "$L"
check "... ssh with the right password still refused" ! ssh_as alice "$AL"
check "secguardctl unlock alice" C secguardctl unlock alice
check "ssh: login works after the unlock" ssh_as alice "$AL"

# ---- sessions: registered from common-session, listed, killed by id, ended at max_lifetime ----
# session_of_alice: the id of alice's sshd session, once the daemon lists it.
session_of_alice() {
        local id
        for _ in $(seq 40); do
                id=$(C secguardctl --json sessions | sed -n 's/.*"id":"\([^"]*\)".*"user":"alice".*"service":"sshd".*/\1/p' | head -n 1)
                [ -n "$id" ] && { echo "$id"; return 0; }
                sleep 0.25
        done
        return 1
}
# gone PID SECONDS: the process ended within SECONDS.
gone() { for _ in $(seq $(($2 * 4))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.25; done; return 1; }
ssh_cmd alice "$AL" 'sleep 300' >/dev/null 2>&1 &
SSH1=$!
sid=$(session_of_alice) || sid=
check "sessions: alice's ssh session is listed" test -n "$sid"
C secguardctl --json sessions >"$T/sessions.json"
check "... with its logind session known (pam_systemd ran)" grep -q '"logind_id":"[^"]' "$T/sessions.json"
check "session kill ID" C secguardctl session kill "$sid"
check "... ends the ssh connection" gone "$SSH1" 15
check "journal: session_killed" sh -c 'nsenter -t "$1" -a journalctl -q SECGUARD_EVENT=session_killed SECGUARD_USER=alice | grep -q .' sh "$L"
ssh_cmd alice "$AL" 'sleep 300' >/dev/null 2>&1 &
SSH2=$!
sid=$(session_of_alice) || sid=
check "a second session is listed" test -n "$sid"
check "... and ended at max_lifetime (20 s)" gone "$SSH2" 40
check "journal: session_expired" sh -c 'nsenter -t "$1" -a journalctl -q SECGUARD_EVENT=session_expired SECGUARD_USER=alice | grep -q .' sh "$L"
C journalctl -q -o cat SYSLOG_IDENTIFIER=secguardd >"$T/daemon.journal"
check "... through logind's TerminateSession" grep -q "logind is ending session $sid" "$T/daemon.journal"

# ---- roll back ----
C pam-auth-update --disable secguard || fail "pam-auth-update --disable"
check "disabled: pam_secguard gone from common-auth" ! grep -q pam_secguard "$R/etc/pam.d/common-auth"
stop_container
sg_done
