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
        share/man/man8/pam_secguard.8; do
        check "installed: $f" test -f "$P/$f"
done
# The unit names the daemon under the prefix configured at build time (CMAKE_INSTALL_PREFIX).
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$SG_BUILD/CMakeCache.txt")
check "unit runs the configured daemon path" grep -qx "ExecStart=$prefix/sbin/secguardd" "$P/lib/systemd/system/secguardd.service"
check "module exports only pam_sm_* symbols" \
        test "$(nm -D --defined-only "$P/$libdir/security/pam_secguard.so" | awk '$2 == "T" {print $3}' | grep -vc '^pam_sm_')" -eq 0
check "module exports all six pam_sm_* entry points" \
        test "$(nm -D --defined-only "$P/$libdir/security/pam_secguard.so" | grep -c ' T pam_sm_')" -eq 6
check "installed example config is valid" "$P/sbin/secguardd" --check-config --config "$P/etc/secguard/secguard.conf"
if command -v systemd-analyze >/dev/null; then
        score=$(systemd-analyze security --offline=yes "$P/lib/systemd/system/secguardd.service" 2>&1 | sed -n 's/.*Overall exposure level[^:]*: *\([0-9.]*\).*/\1/p')
        echo "# systemd-analyze security: exposure $score"
        check "unit hardening exposure below 2.0 (got $score)" awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 < 2.0) }'
fi
sg_done
