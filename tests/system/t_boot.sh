#!/bin/bash
# The Debian package on a booted Debian 12 (issue 12, item 8, first part): the cached
# debootstrap tree (debian_tree.sh) under a throwaway overlay, the .deb installed, the PAM
# profile enabled, then booted with systemd-nspawn. Checks socket activation, ssh password
# logins through pam_secguard (the host's sshpass against the container's sshd on a private
# port of 127.0.0.1), journald fields and catalog, systemctl reload with a rejected file,
# kill -9 under systemd, and the units' verify/security. About 55 s on 2 cores (half of it building the
# package). Skips, saying why, when nspawn cannot boot systemd here.
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
echo 'alice:right horse battery' | in_root chpasswd || fail "chpasswd"
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
check "unit exposure below 2.0 under a real systemd (got $score)" awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 < 2.0) }'

# ---- ssh password logins through common-auth ----
ssh_as() { timeout 30 sshpass -p "$2" ssh -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o PreferredAuthentications=password -o PubkeyAuthentication=no -o ConnectTimeout=10 "$1@127.0.0.1" true 2>>"$T/ssh.log"; }
for _ in $(seq 40); do C systemctl is-active --quiet ssh.service && break; sleep 0.25; done
check "ssh: right password accepted" ssh_as alice 'right horse battery'
check "ssh: wrong password refused" ! ssh_as alice 'wrong'
check "ssh: unknown user refused" ! ssh_as nobody_here 'wrong'
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

# ---- kill -9 under systemd ----
C kill -9 "$pid_before"
for _ in $(seq 40); do
        sleep 0.25
        now=$(C systemctl show -P MainPID secguardd.service)
        [ -n "$now" ] && [ "$now" != 0 ] && [ "$now" != "$pid_before" ] && break
done
check "systemd restarted the daemon after kill -9" sh -c '[ -n "$1" ] && [ "$1" != 0 ] && [ "$1" != "$2" ]' sh "$now" "$pid_before"
check "secguardctl status after the restart" status
check "ssh: login works after the restart" ssh_as alice 'right horse battery'

# ---- roll back ----
C pam-auth-update --disable secguard || fail "pam-auth-update --disable"
check "disabled: pam_secguard gone from common-auth" ! grep -q pam_secguard "$R/etc/pam.d/common-auth"
stop_container
sg_done
