#!/bin/bash
# scripts/package builds a correct .deb (issue 12, items 6-7): its paths, conffile, control
# fields and maintainer scripts; then it is installed, its PAM profile enabled and disabled,
# and it is purged, with apt-get in a Debian 12 minbase tree (debootstrap, cached in
# $SG_DEBOOTSTRAP_CACHE) under a throwaway overlay, in a private mount namespace. The host's
# /etc is never touched. About 35 s with the cache (most of it building the package); the
# first run adds about 2 min of debootstrap from the Debian mirror apt uses.
. "$(dirname "$0")/lib.sh"
sg_require_root
if [ -z "${SG_PACKAGE_NS:-}" ]; then
        # Everything mounted below dies with this namespace, whatever happens to the test.
        exec unshare -m env SG_PACKAGE_NS=1 bash "$0" "$@"
fi
mount --make-rprivate /
for tool in dpkg-buildpackage dpkg-deb debootstrap; do
        command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup installs it)"
done
sg_setup

# ---- build ----
start=$(date +%s)
deb=$(SG_DIST="$T/dist" timeout 600 "$SG_SRC/scripts/package") || fail "scripts/package failed"
echo "# scripts/package: $(($(date +%s) - start)) s"
version=$(sed -n 's/^project(secguard VERSION \([0-9.]*\).*/\1/p' "$SG_SRC/CMakeLists.txt")
arch=$(dpkg --print-architecture)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
check "package named secguard_<version>_<arch>.deb" test "$deb" = "$T/dist/secguard_${version}_${arch}.deb" -a -f "$deb"
command -v lintian >/dev/null || fail "lintian is missing (scripts/setup installs it)"
# As root lintian only warns that root is not recommended; it reads the .deb and runs nothing.
check "lintian: no error or warning" sh -c 'timeout 300 lintian --no-cfg --fail-on error,warning "$1" >"$2" 2>&1 || { cat "$2" >&2; exit 1; }' \
        sh "$deb" "$T/lintian.log"

# ---- what is in it ----
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$T/contents"
for f in /usr/sbin/secguardd /usr/sbin/secguardctl "/usr/lib/$triplet/security/pam_secguard.so" \
        /lib/systemd/system/secguardd.service /lib/systemd/system/secguardd.socket \
        /usr/lib/systemd/catalog/secguard.catalog /usr/lib/sysusers.d/secguard.conf \
        /etc/secguard/secguard.conf /usr/share/pam-configs/secguard \
        /usr/share/man/man5/secguard.conf.5.gz /usr/share/man/man8/secguardd.8.gz \
        /usr/share/man/man8/secguardctl.8.gz /usr/share/man/man8/pam_secguard.8.gz \
        /usr/sbin/secguard-fleetd /lib/systemd/system/secguard-fleetd.service \
        /usr/share/man/man8/secguard-fleetd.8.gz /usr/share/doc/secguard/fleet.md.gz; do
        check "package ships $f" grep -qx "$f" "$T/contents"
done
check "nothing under /usr/etc or /usr/local" ! grep -Eq '^/usr/(etc|local)/' "$T/contents"
check "control: Package secguard" test "$(dpkg-deb -f "$deb" Package)" = secguard
check "control: Version $version" test "$(dpkg-deb -f "$deb" Version)" = "$version"
check "control: depends on libpam-runtime (pam-auth-update)" sh -c 'dpkg-deb -f "$1" Depends | grep -q libpam-runtime' sh "$deb"
check "control: Built-Using names the inih linked into the module" \
        sh -c 'dpkg-deb -f "$1" Built-Using | grep -Eq "^libinih \(= [0-9]"' sh "$deb"
mkdir "$T/data"
dpkg-deb -x "$deb" "$T/data"
check "the packaged module needs no shared libinih" \
        sh -c '! readelf -dW "$1" | grep -q "NEEDED.*libinih"' sh "$T/data/usr/lib/$triplet/security/pam_secguard.so"
check "... and exports only the PAM entry points" \
        sh -c 'test -z "$(nm -D --defined-only "$1" | awk "{print \$3}" | grep -v "^pam_sm_")"' \
        sh "$T/data/usr/lib/$triplet/security/pam_secguard.so"
mkdir "$T/control"
dpkg-deb -e "$deb" "$T/control"
check "the config is a conffile" grep -qx /etc/secguard/secguard.conf "$T/control/conffiles"
check "postinst creates the admin group" grep -q 'systemd-sysusers secguard.conf' "$T/control/postinst"
check "postinst updates the journal catalog" grep -q 'journalctl --update-catalog' "$T/control/postinst"
check "postinst refreshes, never enables, the PAM profile" grep -q 'pam-auth-update --package$' "$T/control/postinst"
check "no maintainer script enables the PAM profile" ! sh -c 'grep -hv "^[[:space:]]*#" "$@" | grep -q -- --enable' sh "$T/control/postinst" "$T/control/prerm" "$T/control/postrm"
check "prerm takes the profile out on removal" grep -q 'pam-auth-update --package --remove secguard' "$T/control/prerm"
check "postinst enables the socket" grep -q "deb-systemd-helper enable 'secguardd.socket'" "$T/control/postinst"
check "postinst does not start the daemon by itself" ! grep -q "invoke \$_dh_action 'secguardd.service'" "$T/control/postinst"
check "postrm purge removes the state" grep -q 'rm -rf /var/lib/secguard' "$T/control/postrm"
unitdir=$(mktemp -d "$T/unit.XXXXXX")
dpkg-deb -x "$deb" "$unitdir"
check "unit: ExecStart=/usr/sbin/secguardd" grep -qx 'ExecStart=/usr/sbin/secguardd' "$unitdir/lib/systemd/system/secguardd.service"
check "unit: reload checks the config first" grep -qx 'ExecReload=/usr/sbin/secguardd --check-config' "$unitdir/lib/systemd/system/secguardd.service"
check "CODE_FILE paths are relative in the packaged daemon" ! sh -c 'readelf -p .rodata "$1" | grep -q "CODE_FILE=/"' sh "$unitdir/usr/sbin/secguardd"

# ---- a Debian 12 tree to install into (cached) ----
. "$SG_SRC/tests/integration/debian_tree.sh"
base=$(sg_debian_tree) || fail "no Debian tree"

# A throwaway root: the cached tree under an overlay whose upper layer is in $T.
R="$T/root"
mkdir "$T/upper" "$T/work" "$R"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$T/upper,workdir=$T/work" "$R" || fail "overlay mount failed"
# Unmount before sg_cleanup removes $T, and keep the test's exit status for it.
trap 'rc=$?; umount -R "$R" 2>/dev/null || umount -lR "$R"; (exit $rc); sg_cleanup' EXIT
mount -t proc proc "$R/proc"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
cp "$deb" "$R/tmp/"
in_root() { timeout 300 chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
find "$R" -xdev \( -path "$R/proc" -o -path "$R/dev" -o -path "$R/tmp" \) -prune -o -print | sed "s|^$R||" | sort >"$T/before"

start=$(date +%s)
in_root apt-get install -y -q "/tmp/$(basename "$deb")" >"$T/apt-install.log" 2>&1 ||
        { cat "$T/apt-install.log" >&2; fail "apt-get install ./secguard.deb failed"; }
echo "# apt-get install: $(($(date +%s) - start)) s"
check "installed: dpkg knows secguard" in_root dpkg-query -W secguard
check "installed: module in PAM's directory" test -f "$R/usr/lib/$triplet/security/pam_secguard.so"
check "installed: admin group secguard exists" in_root getent group secguard
check "installed: socket enabled" test -L "$R/etc/systemd/system/sockets.target.wants/secguardd.socket"
check "installed: daemon not enabled on its own (socket-activated)" test ! -e "$R/etc/systemd/system/multi-user.target.wants/secguardd.service"
check "installed: catalog compiled into journald's database" grep -aq 'secguard' "$R/var/lib/systemd/catalog/database"
check "installed: config valid" in_root secguardd --check-config
check "installed: PAM stack not switched over" ! grep -q pam_secguard "$R/etc/pam.d/common-auth"
if command -v systemd-analyze >/dev/null; then
        check "installed units pass systemd-analyze verify" \
                systemd-analyze verify --man=no --root="$R" /lib/systemd/system/secguardd.socket /lib/systemd/system/secguardd.service
fi

# ---- pam-auth-update ----
in_root pam-auth-update --enable secguard || fail "pam-auth-update --enable secguard failed"
for s in auth account password session; do
        check "enabled: pam_secguard in common-$s" grep -q 'pam_secguard.so' "$R/etc/pam.d/common-$s"
done
check "enabled: session phase required, interactive only (not for cron)" sh -c \
        'grep -Eq "^session[[:space:]]+required[[:space:]]+pam_secguard.so" "$1/common-session" && ! grep -q pam_secguard "$1/common-session-noninteractive"' \
        sh "$R/etc/pam.d"
# pam_secguard decides: success jumps past pam_unix, anything else ends the stack (default=die);
# pam_unix is never asked to second-guess a refusal (which would bypass the locks).
check "enabled: common-auth runs pam_secguard before pam_unix, success skipping it" \
        awk '/pam_secguard.so/ { s = NR; if ($0 !~ /\[success=[0-9]+ default=die\]/) exit 1 } /pam_unix.so/ { u = NR } END { exit !(s && u && s < u) }' "$R/etc/pam.d/common-auth"
check "enabled: account lets unknown users through to pam_unix, refuses the rest" \
        grep -Eq '\[success=[0-9]+ new_authtok_reqd=done user_unknown=ignore default=die\][[:space:]]+pam_secguard.so' "$R/etc/pam.d/common-account"
in_root pam-auth-update --disable secguard || fail "pam-auth-update --disable secguard failed"
check "disabled: pam_secguard gone from every common-* file" ! grep -q pam_secguard "$R"/etc/pam.d/common-*
check "disabled: pam_unix back in charge" grep -Eq '\[success=1 default=ignore\][[:space:]]+pam_unix.so' "$R/etc/pam.d/common-auth"

# ---- purge, with the profile enabled: the stack must not keep naming a removed module ----
in_root pam-auth-update --enable secguard || fail "pam-auth-update --enable secguard failed"
mkdir -p "$R/var/lib/secguard" && echo state >"$R/var/lib/secguard/secguard.db" # as the daemon would
# --autoremove: the libraries apt pulled in for us (libpq5 for secguard-fleetd and its own
# dependencies) go with the package, as they would on an admin's `apt purge --autoremove`.
in_root apt-get purge -y -q --autoremove secguard >"$T/apt-purge.log" 2>&1 || { cat "$T/apt-purge.log" >&2; fail "apt-get purge secguard failed"; }
check "purged: dpkg forgot secguard" ! sh -c 'chroot "$1" dpkg-query -W secguard >/dev/null 2>&1' sh "$R"
check "purged: PAM stack without pam_secguard" ! grep -q pam_secguard "$R"/etc/pam.d/common-*
find "$R" -xdev \( -path "$R/proc" -o -path "$R/dev" -o -path "$R/tmp" \) -prune -o -print | sed "s|^$R||" | sort >"$T/after"
# What install + purge left behind, beyond apt's and dpkg's own bookkeeping and logs.
comm -13 "$T/before" "$T/after" |
        grep -Ev '^/var/(cache/(apt|debconf|ldconfig)|lib/(apt|dpkg|systemd/catalog|pam)|log)(/|$)|^/etc/(group|gshadow|passwd|shadow|ld.so.cache)-?$' \
                >"$T/leftovers" || true
check "purged: nothing left behind ($(tr '\n' ' ' <"$T/leftovers"))" test ! -s "$T/leftovers"
check "purged: admin group kept (policy: files elsewhere may belong to it)" in_root getent group secguard
check "installed: the fleet helper's account exists (kept after purge, like the group)" in_root getent passwd secguard-fleet
sg_done
