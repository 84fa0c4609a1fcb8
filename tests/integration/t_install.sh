#!/bin/bash
# `cmake --install` produces the layout README.md ("Build and install") documents, and the
# units pass systemd's own checks.
. "$(dirname "$0")/lib.sh"
sg_setup
P="$T/stage"
cmake --install "$SG_BUILD" --prefix "$P" >"$T/install.log" 2>&1 || fail "cmake --install failed"
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$SG_BUILD/CMakeCache.txt")
for f in sbin/secguardd sbin/secguardctl "$libdir/security/pam_secguard.so" \
        lib/systemd/system/secguardd.service lib/systemd/system/secguardd.socket \
        lib/systemd/catalog/secguard.catalog etc/secguard/secguard.conf \
        share/secguard/pam.d/secguard-auth share/secguard/pam.d/sshd.example \
        share/man/man5/secguard.conf.5 share/man/man8/secguardd.8 share/man/man8/secguardctl.8 \
        share/man/man8/pam_secguard.8 \
        sbin/secguard-fleetd lib/systemd/system/secguard-fleetd.service share/man/man8/secguard-fleetd.8 \
        share/doc/secguard/fleet.md share/doc/secguard/roles.sql; do
        check "installed: $f" test -f "$P/$f"
done
# The unit names the daemon under the prefix installed to, whatever the build was configured with.
check "unit runs the installed daemon" grep -qx "ExecStart=$P/sbin/secguardd" "$P/lib/systemd/system/secguardd.service"
check "reload checks the config first" grep -qx "ExecReload=$P/sbin/secguardd --check-config" "$P/lib/systemd/system/secguardd.service"
check "fleet unit runs the installed helper" grep -qx "ExecStart=$P/sbin/secguard-fleetd" "$P/lib/systemd/system/secguard-fleetd.service"
check "fleet unit: no /etc/shadow, password as a credential" sh -c \
        'grep -q "^InaccessiblePaths=.*/etc/shadow" "$1" && grep -q "^LoadCredential=secguard-fleet-password:" "$1"' \
        sh "$P/lib/systemd/system/secguard-fleetd.service"
check "sysusers.d creates the fleet helper's account" grep -q "^u secguard-fleet " "$P/lib/sysusers.d/secguard.conf"

# README's host install: configured with the default prefix, installed with --prefix /usr (into a
# DESTDIR here). Issue 12: the unit named /usr/local/sbin/secguardd and the config went to /usr/etc.
D="$T/destdir"
DESTDIR="$D" cmake --install "$SG_BUILD" --prefix /usr >"$T/install-usr.log" 2>&1 || fail "cmake --install --prefix /usr failed"
check "/usr install: ExecStart=/usr/sbin/secguardd" grep -qx "ExecStart=/usr/sbin/secguardd" "$D/usr/lib/systemd/system/secguardd.service"
check "/usr install: ExecReload checks /usr/sbin/secguardd --check-config" \
        grep -qx "ExecReload=/usr/sbin/secguardd --check-config" "$D/usr/lib/systemd/system/secguardd.service"
check "/usr install: daemon at /usr/sbin" test -x "$D/usr/sbin/secguardd"
check "/usr install: config at /etc/secguard/secguard.conf" test -f "$D/etc/secguard/secguard.conf"
check "/usr install: nothing under /usr/etc" test ! -e "$D/usr/etc"
triplet=$(gcc -print-multiarch 2>/dev/null || true)
if [ -n "$triplet" ]; then
        check "/usr install: module in PAM's directory /usr/lib/$triplet/security" \
                test -f "$D/usr/lib/$triplet/security/pam_secguard.so"
fi
check "/usr install: sysusers.d creates the admin group" grep -qx "g secguard -" "$D/usr/lib/sysusers.d/secguard.conf"
# A second install keeps an edited config and puts the new example next to it.
echo "# edited by the admin" >>"$D/etc/secguard/secguard.conf"
DESTDIR="$D" cmake --install "$SG_BUILD" --prefix /usr >"$T/install-usr2.log" 2>&1 || fail "second install failed"
check "reinstall keeps the admin's config" grep -q "edited by the admin" "$D/etc/secguard/secguard.conf"
check "reinstall puts the example in secguard.conf.dist" cmp -s "$SG_SRC/etc/secguard.conf" "$D/etc/secguard/secguard.conf.dist"

# A missing default config is said plainly (the daemon reads /etc/secguard/secguard.conf unless
# told otherwise; unshare -m hides the host's /etc/secguard if there is one).
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
        mkdir -p "$T/empty"
        out=$(unshare -m sh -c 'mount --bind "$1" /etc && exec "$2" --check-config' sh "$T/empty" "$SECGUARDD" 2>&1) || fail "check-config without a file: $out"
        check "--check-config says there is no config file" \
                grep -q "no config file at /etc/secguard/secguard.conf, using built-in defaults" <<<"$out"
fi
# journald's CODE_FILE comes from __FILE__: no build machine path in it. (Only CODE_FILE is
# looked at: under ASan the sanitizer's own metadata names the source files too.)
check "no source path in the daemon's CODE_FILE strings" \
        ! sh -c 'readelf -p .rodata "$1" | grep -qF "CODE_FILE=$2/"' sh "$SG_BUILD/secguardd" "$SG_SRC"
check "  ... which are there, relative to the tree" \
        sh -c 'readelf -p .rodata "$1" | grep -qF "CODE_FILE=daemon/"' sh "$SG_BUILD/secguardd"
check "module exports only pam_sm_* symbols" \
        test "$(nm -D --defined-only "$P/$libdir/security/pam_secguard.so" | awk '$2 == "T" {print $3}' | grep -vc '^pam_sm_')" -eq 0
check "module exports all six pam_sm_* entry points" \
        test "$(nm -D --defined-only "$P/$libdir/security/pam_secguard.so" | grep -c ' T pam_sm_')" -eq 6
check "installed example config is valid" "$P/sbin/secguardd" --check-config --config "$P/etc/secguard/secguard.conf"
if command -v systemd-analyze >/dev/null; then
        score=$(systemd-analyze security --offline=yes "$P/lib/systemd/system/secguardd.service" 2>&1 | sed -n 's/.*Overall exposure level[^:]*: *\([0-9.]*\).*/\1/p')
        echo "# systemd-analyze security: exposure $score"
        check "unit hardening exposure below 2.0 (got $score)" awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 < 2.0) }'
        # The fleet helper needs the network (PostgreSQL), so it scores higher than secguardd.
        score=$(systemd-analyze security --offline=yes "$P/lib/systemd/system/secguard-fleetd.service" 2>&1 | sed -n 's/.*Overall exposure level[^:]*: *\([0-9.]*\).*/\1/p')
        echo "# systemd-analyze security secguard-fleetd: exposure $score"
        check "fleet unit hardening exposure below 2.0 (got $score)" awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 < 2.0) }'
fi
sg_done
