#!/bin/bash
# Runs a libpamtest program against a private daemon: sets up like every integration test,
# then exports where things are and preloads pam_wrapper.
. "$(dirname "$0")/lib.sh"
sg_setup "[ratelimit]" "user_max_failures = 1000" "user_source_max_failures = 1000" \
        "source_max_failures = 1000" "spray_max_users = 1000" "delay_step_ms = 0"
sg_start_daemon
export SG_T="$T" SG_PW_ALICE
rc=0
ASAN_OPTIONS="${SG_CLIENT_ASAN:-${ASAN_OPTIONS:-}}" LD_PRELOAD="$SG_PRELOAD" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam.d" \
        NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
        timeout 800 "$1" || rc=$?
[ "$rc" -eq 0 ] || fail "$(basename "$1") failed with $rc"
