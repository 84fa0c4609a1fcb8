# shellcheck shell=bash
# Integration test helpers: a private daemon on temp dirs, the built module driven by
# pamtester through pam_wrapper + nss_wrapper, and teardown on exit. Source it from a test:
#
#   . "$(dirname "$0")/lib.sh"
#   sg_setup            # temp dir, config, passwd/group/shadow, PAM service files
#   sg_start_daemon
#   sg_auth alice 'right password'   # exit status: 0 accepted, else refused
#
# Nothing here touches the host's /etc, journal or PAM stack.

set -euo pipefail

: "${SG_BUILD:?SG_BUILD must point at the build directory}"
SG_SRC=${SG_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SECGUARDD="$SG_BUILD/secguardd"
SECGUARDCTL="$SG_BUILD/secguardctl"
PAM_MODULE="$SG_BUILD/pam_secguard.so"
PY=/usr/bin/python3
SG_DAEMON_PID=
SG_PASSED=0
# PAM clients (pamtester, libpamtest programs) load our module. Under the sanitizers the
# ASan runtime must come first, pam_wrapper must not use RTLD_DEEPBIND, and leaks are
# checked in our own programs (daemon, CLI), not in pamtester's.
SG_PRELOAD="libpam_wrapper.so:libnss_wrapper.so"
if [ -n "${SG_SANITIZE:-}" ]; then
        SG_PRELOAD="$SG_LIBASAN:$SG_PRELOAD"
        export PAM_WRAPPER_DISABLE_DEEPBIND=1
        SG_CLIENT_ASAN="detect_leaks=0:verify_asan_link_order=0:abort_on_error=1"
fi
SG_FAILED=0
# SG_VALGRIND=1 (scripts/valgrind runs the suite so): every daemon a test starts runs under
# memcheck, logs in $T/vg; a memory error or definite leak in any of them fails the test.
SG_DAEMON_WRAP=()
SG_START_TRIES=100 # x 50 ms

sg_log() { printf '# %s\n' "$*" >&2; }

fail() {
        printf 'FAIL: %s\n' "$*" >&2
        if [ -n "${T:-}" ] && [ -f "$T/daemon.log" ]; then
                echo "--- daemon log (last 30 lines) ---" >&2
                tail -n 30 "$T/daemon.log" >&2 || true
        fi
        exit 1
}

# check "description" command...: runs the command, counts it.
# "check what ! command..." expects the command to fail.
check() {
        local what=$1 negate=
        shift
        if [ "$1" = "!" ]; then
                negate=1
                shift
        fi
        local ok=
        if "$@"; then ok=1; fi
        if { [ -n "$ok" ] && [ -z "$negate" ]; } || { [ -z "$ok" ] && [ -n "$negate" ]; }; then
                SG_PASSED=$((SG_PASSED + 1))
                printf 'ok - %s\n' "$what" >&2
        else
                SG_FAILED=$((SG_FAILED + 1))
                fail "$what"
        fi
}

sg_require_root() {
        if [ "$(id -u)" -ne 0 ]; then
                echo "SKIP: $(basename "$0") needs root (the daemon checks peers by uid; CI runs as root)"
                exit 77
        fi
}

sg_cleanup() {
        local rc=$?
        # A copy of this shell (a background job signalled before it exec'd its command)
        # inherits the trap: only the shell that set it stops daemons and removes $T.
        [ "$BASHPID" = "${SG_MAIN_PID:-$BASHPID}" ] || exit "$rc"
        sg_stop_daemon 2>/dev/null || true
        sg_valgrind_verdict || rc=1
        if [ -n "${T:-}" ] && [ -d "$T" ]; then
                if [ "$rc" -ne 0 ] && [ -n "${SG_KEEP_TMP:-}" ]; then
                        echo "# kept $T" >&2
                else
                        rm -rf "$T"
                fi
        fi
        exit "$rc"
}

# Fails when memcheck found an error or a definite leak in any daemon this test ran.
sg_valgrind_verdict() {
        [ -n "${SG_VALGRIND:-}" ] && [ -n "${T:-}" ] && [ -d "$T/vg" ] || return 0
        local log bad=0 n=0
        for log in "$T"/vg/*.log; do
                [ -e "$log" ] || continue
                n=$((n + 1))
                if grep -Eq 'ERROR SUMMARY: [1-9]' "$log"; then
                        bad=$((bad + 1))
                        echo "FAIL: memcheck errors in a daemon of this test ($(basename "$log")):" >&2
                        grep -A 24 -E 'Invalid|uninitialised|definitely lost in|Mismatched|overlap' "$log" |
                                head -n 80 >&2
                        grep 'ERROR SUMMARY' "$log" >&2
                fi
        done
        echo "# valgrind: $n daemon run(s) under memcheck, $bad with errors" >&2
        [ "$bad" -eq 0 ]
}

# Writes $T/secguard.conf: fast hashing and no fail delay for tests, plus "$@" lines
# appended as-is ("[ratelimit]" then "user_max_failures = 3", ...).
sg_write_config() {
        {
                echo "[daemon]"
                echo "socket = $T/run/secguardd.sock"
                echo "state_dir = $T/state"
                echo "timeout_ms = ${SG_TIMEOUT_MS:-3000}"
                echo "[auth]"
                echo "fail_delay_ms = 0"
                echo "argon2_opslimit = 1"
                echo "argon2_memlimit = 8M"
                printf '%s\n' "$@"
        } >"$T/secguard.conf"
        chmod 0644 "$T/secguard.conf"
}

# Prints a hash of password $2 in scheme $1 (password read from stdin, never on argv).
sg_hash() {
        local h
        h=$(printf '%s\n' "$2" | "$SECGUARDCTL" --config "$T/secguard.conf" hash --scheme "$1") ||
                fail "secguardctl hash --scheme $1 failed"
        printf '%s\n' "$h"
}

sg_setup() {
        sg_require_root
        T=$(mktemp -d /tmp/secguard-test.XXXXXX)
        chmod 0755 "$T"
        SG_MAIN_PID=$BASHPID
        trap sg_cleanup EXIT
        if [ -n "${SG_VALGRIND:-}" ]; then
                mkdir -m 0700 "$T/vg"
                SG_DAEMON_WRAP=(valgrind --leak-check=full --errors-for-leak-kinds=definite
                        --show-leak-kinds=definite --error-exitcode=99 --num-callers=30
                        --suppressions="$SG_SRC/tests/valgrind.supp" --log-file="$T/vg/secguardd.%p.log")
                SG_START_TRIES=1200
        fi
        mkdir -m 0755 "$T/run" "$T/pam.d"
        mkdir -m 0700 "$T/state"
        sg_write_config "$@"
        cat >"$T/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001:Bob:/home/bob:/bin/sh
carol:x:1002:1002:Carol:/home/carol:/bin/sh
locked:x:1003:1003:Locked:/home/locked:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
        cat >"$T/group" <<EOF
root:x:0:
alice:x:1000:
bob:x:1001:
carol:x:1002:
locked:x:1003:
nogroup:x:65534:
EOF
        SG_PW_ALICE='correct horse alice'
        SG_PW_BOB='battery staple bob'
        SG_PW_CAROL='carol-sha512-pw'
        SG_PW_ROOT='root console pw'
        {
                echo "root:$(sg_hash argon2id "$SG_PW_ROOT"):20000:0:99999:7:::"
                echo "alice:$(sg_hash argon2id "$SG_PW_ALICE"):20000:0:99999:7:::"
                echo "bob:$(sg_hash yescrypt "$SG_PW_BOB"):20000:0:99999:7:::"
                echo "carol:$(sg_hash sha512crypt "$SG_PW_CAROL"):20000:0:99999:7:::"
                echo "locked:!$(sg_hash argon2id 'whatever'):20000:0:99999:7:::"
        } >"$T/shadow"
        chmod 0600 "$T/shadow"
        grep -q '^alice:\$argon2id\$' "$T/shadow" || fail "could not make the test shadow file"
        sg_write_pam_service sgtest
        printf 'auth required pam_deny.so\naccount required pam_deny.so\npassword required pam_deny.so\nsession required pam_deny.so\n' >"$T/pam.d/other"
}

# A PAM service file using the built module with our config and shadow file.
sg_write_pam_service() {
        local name=$1 args="config=$T/secguard.conf shadow=$T/shadow"
        cat >"$T/pam.d/$name" <<EOF
auth     required $PAM_MODULE $args
account  required $PAM_MODULE $args
password required $PAM_MODULE $args
session  required $PAM_MODULE $args
EOF
}

sg_start_daemon() {
        local i
        "${SG_DAEMON_WRAP[@]}" "$SECGUARDD" --config "$T/secguard.conf" --log-target stderr "$@" >>"$T/daemon.log" 2>&1 &
        SG_DAEMON_PID=$!
        for i in $(seq 1 "$SG_START_TRIES"); do
                [ -S "$T/run/secguardd.sock" ] && "$SECGUARDCTL" --config "$T/secguard.conf" status >/dev/null 2>&1 && return 0
                kill -0 "$SG_DAEMON_PID" 2>/dev/null || fail "secguardd exited during start-up"
                sleep 0.05
        done
        fail "secguardd did not come up within $((SG_START_TRIES / 20)) s"
}

sg_stop_daemon() {
        [ -n "$SG_DAEMON_PID" ] || return 0
        kill -TERM "$SG_DAEMON_PID" 2>/dev/null || true
        local rc=0
        wait "$SG_DAEMON_PID" || rc=$?
        SG_DAEMON_PID=
        return "$rc"
}

sg_kill9_daemon() {
        [ -n "$SG_DAEMON_PID" ] || return 0
        kill -KILL "$SG_DAEMON_PID" 2>/dev/null || true
        wait "$SG_DAEMON_PID" 2>/dev/null || true
        SG_DAEMON_PID=
}

# Runs pamtester with the wrappers: sg_pam [-I item=value]... USER OPERATION... (stdin = answers)
sg_pam() {
        local items=()
        while [ "${1:-}" = "-I" ]; do
                items+=("-I" "$2")
                shift 2
        done
        local user=$1
        shift
        ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" LD_PRELOAD="$SG_PRELOAD" \
                PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
                NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
                timeout 30 pamtester "${items[@]}" sgtest "$user" "$@"
}

# sg_auth USER PASSWORD [RHOST]: 0 when accepted. Output kept in $T/pam.out.
sg_auth() {
        local user=$1 pw=$2 rhost=${3:-}
        local items=()
        [ -n "$rhost" ] && items=(-I "rhost=$rhost")
        printf '%s\n' "$pw" | sg_pam "${items[@]}" "$user" authenticate >"$T/pam.out" 2>&1
}

# sg_auth_direct USER PASSWORD [RHOST]: as sg_auth, through pam_run (pam_start_confdir) instead
# of pamtester + pam_wrapper, for logins run in parallel: pam_wrapper picks its /tmp/pam.X
# directory with a racy lstat-then-mkdir, so parallel pamtesters can trip over each other.
sg_auth_direct() {
        printf '%s\n' "$2" | ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" \
                LD_PRELOAD="${SG_SANITIZE:+$SG_LIBASAN:}libnss_wrapper.so" \
                NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
                timeout 30 "$SG_BUILD/tests/integration/pam_run" "$T/pam.d" sgtest "$1" authenticate ${3:+"$3"} \
                >/dev/null 2>&1
}

# sg_pam_run [--ruid UID] USER OPERATION [RHOST [TTY]]: one PAM operation through pam_run
# (pam_start_confdir, no pam_wrapper), answers on stdin, what the application saw on stdout.
# --ruid runs it as a setuid program run by UID would (real uid UID, effective uid 0). The
# environment passes through (PAM_RUN_SILENT, PAM_RUN_CONV: see pam_run.c).
sg_pam_run() {
        local wrap=()
        if [ "${1:-}" = "--ruid" ]; then
                wrap=(setpriv "--ruid=$2" --)
                shift 2
        fi
        ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" \
                LD_PRELOAD="${SG_SANITIZE:+$SG_LIBASAN:}libnss_wrapper.so" \
                NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
                "${wrap[@]}" timeout 30 "$SG_BUILD/tests/integration/pam_run" "$T/pam.d" sgtest "$@"
}

sgctl() { "$SECGUARDCTL" --config "$T/secguard.conf" "$@"; }

# sgctl_as_nobody ARGS...: secguardctl as uid nobody, no groups (a copy in $T: nobody may not
# reach the build tree). Exit status of secguardctl.
sgctl_as_nobody() {
        [ -x "$T/secguardctl-copy" ] || install -m 0755 "$SECGUARDCTL" "$T/secguardctl-copy"
        setpriv --reuid=nobody --regid=nogroup --clear-groups "$T/secguardctl-copy" --config "$T/secguard.conf" "$@"
}

# sg_bad_frame: sends one frame with a bad magic to the daemon (a protocol_error event).
sg_bad_frame() {
        "$PY" - "$T/run/secguardd.sock" <<'PYEOF' || fail "protocol error client"
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect(sys.argv[1])
s.sendall(b"XX\x01\x04\x00\x00\x00\x00")
try:
    s.recv(100)
except OSError:
    pass
PYEOF
}

# Number of audit rows matching filters (JSON lines).
sg_audit_count() { sgctl --json audit --limit 100000 "$@" | grep -c . || true; }

sg_sql() { sqlite3 -batch "$T/state/secguard.db" "$@"; }

sg_done() {
        echo "$SG_PASSED passed, $SG_FAILED failed"
        [ "$SG_FAILED" -eq 0 ]
}

# Runs the rest of the calling test in a private mount namespace whose /tmp is a fresh
# directory (/tmp/secguard-ns.XXXXXX on the host, removed afterwards). pam_wrapper keeps its
# copies of the service files in /tmp/pam.X (one of ~62 names, chosen with a racy
# lstat-then-mkdir and removed by whichever process finds the owner pid dead), so pamtester
# runs of parallel tests can read each other's service files and talk to each other's
# daemons. Call it right after sourcing this file: sg_private_tmp "$@"
sg_private_tmp() {
        [ -z "${SG_PRIVATE_TMP:-}" ] || return 0
        [ "$(id -u)" -eq 0 ] || return 0 # sg_require_root skips later
        local d rc=0 keep
        d=$(mktemp -d /tmp/secguard-ns.XXXXXX)
        chmod 1777 "$d"
        # Paths under /tmp that the test needs (the tree itself may live there, as a CI clone
        # can) are bound back into the private /tmp from a view of the real one.
        keep=$(realpath -m "$SG_SRC")$'\n'$(realpath -m "$SG_BUILD")
        SG_PRIVATE_TMP=$d SG_KEEP_PATHS=$keep unshare -m --propagation private -- bash -c '
                set -e
                mkdir -p "$SG_PRIVATE_TMP/.host-tmp"
                mount --bind /tmp "$SG_PRIVATE_TMP/.host-tmp"
                mount --rbind "$SG_PRIVATE_TMP" /tmp # --rbind: keep .host-tmp
                while IFS= read -r p; do
                        case "$p" in
                        /tmp/*)
                                rel=${p#/tmp/}
                                mkdir -p "/tmp/$rel"
                                mount --bind "/tmp/.host-tmp/$rel" "/tmp/$rel"
                                ;;
                        esac
                done <<<"$SG_KEEP_PATHS"
                exec bash "$@"' sg-private-tmp "$0" "$@" || rc=$?
        if [ "$rc" -ne 0 ] && [ -n "${SG_KEEP_TMP:-}" ]; then
                echo "# kept $d (the test's private /tmp)" >&2
        else
                # Only empty mount points are left of the binds (they lived in the namespace).
                rm -rf --one-file-system "$d"
        fi
        exit "$rc"
}

# Every test that sources this file runs with a private /tmp (see above), unless it opts out
# with SG_NO_PRIVATE_TMP=1 (the demo, which wants its output in the caller's session).
[ -n "${SG_NO_PRIVATE_TMP:-}" ] || sg_private_tmp "$@"
