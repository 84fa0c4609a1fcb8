#!/bin/bash
# Abuse and denial of service through the module (issue 10, items 6 and 8), against a real
# daemon:
#  6. a password change by a non-root caller honours shadow min_days (no A->B->A cycling),
#     root is exempt; PAM_SILENT silences the module's messages;
#  8a. a failed conversation is PAM_CONV_ERR / PAM_INCOMPLETE, never a verified, counted
#      empty password;
#  8b. serial consoles (ttyAMA0, ttyUSB0, ttymxc0, ...) are local consoles for allow_local;
#  8c. a broken config file: the module falls back to the daemon-unreachable policy (root at
#      a console with the right password only) and says so naming FILE:LINE; secguardctl
#      status and unlock still work, with a warning.
. "$(dirname "$0")/lib.sh"
sg_setup
sg_start_daemon

TODAY=$(($(date +%s) / 86400))

# set_aging USER LASTCHG MIN [MAX WARN]: rewrites fields 3-6 of USER's shadow line.
set_aging() {
        local user=$1 last=$2 min=$3 max=${4:-99999} warn=${5:-7}
        awk -F: -v OFS=: -v u="$user" -v l="$last" -v mi="$min" -v ma="$max" -v w="$warn" \
                '$1 == u { $3 = l; $4 = mi; $5 = ma; $6 = w } { print }' "$T/shadow" >"$T/shadow.new"
        cat "$T/shadow.new" >"$T/shadow" # keep the file (mode, owner)
        rm -f "$T/shadow.new"
}
# user_passwd USER OLD NEW: passwd run by uid 1000 (setuid: effective uid 0).
user_passwd() {
        printf '%s\n%s\n%s\n' "$2" "$3" "$3" | sg_pam_run --ruid 1000 "$1" chauthtok >"$T/pam.out" 2>&1
}
root_passwd() { # USER NEW: passwd run by root, no old password asked
        printf '%s\n%s\n' "$2" "$2" | sg_pam_run "$1" chauthtok >"$T/pam.out" 2>&1
}
silent() { PAM_RUN_SILENT=1 "$@"; } # silent FUNCTION ARGS...: with PAM_SILENT
no_messages() { ! grep -q '^message:' "$T/pam.out"; }

###############################################################################
echo "# 6. min_days for non-root password changes; PAM_SILENT"
set_aging alice "$TODAY" 7
cp "$T/shadow" "$T/shadow.before"
check "6: user change within min_days refused" ! user_passwd alice "$SG_PW_ALICE" "alice second pw"
check "6: ... told to wait, as pam_unix does" grep -q "You must wait longer to change your password" "$T/pam.out"
check "6: ... shadow unchanged" cmp -s "$T/shadow" "$T/shadow.before"
check "6: ... and the old password still works" sg_auth alice "$SG_PW_ALICE"
check "6: root (real uid 0) is exempt" root_passwd alice "alice root-set pw"
check "6: root's change took effect" sg_auth alice "alice root-set pw"

set_aging alice $((TODAY - 8)) 7
check "6: user change after min_days accepted" user_passwd alice "alice root-set pw" "alice cycle B"
check "6: A->B->A: changing straight back is refused" ! user_passwd alice "alice cycle B" "alice root-set pw"
check "6: ... B is still the password" sg_auth alice "alice cycle B"
set_aging alice $((TODAY - 1)) 0
check "6: min_days 0 puts no limit" user_passwd alice "alice cycle B" "alice cycle C"
set_aging alice "" 7 # no last change date: no aging (shadow(5)), as pam_unix
check "6: an empty last-change field puts no limit" user_passwd alice "alice cycle C" "alice cycle D"

set_aging alice "$TODAY" 7
check "6: PAM_SILENT: still refused within min_days" ! silent user_passwd alice "alice cycle D" "alice cycle E"
check "6: PAM_SILENT: ... without a message" no_messages
set_aging alice $((TODAY - 8)) 7
check "6: PAM_SILENT: a too short password refused" ! silent user_passwd alice "alice cycle D" "short"
check "6: PAM_SILENT: ... without a message" no_messages
check "6: without PAM_SILENT the reason is shown" ! user_passwd alice "alice cycle D" "short"
check "6: ... (BAD PASSWORD)" grep -q "BAD PASSWORD" "$T/pam.out"
set_aging alice $((TODAY - 95)) 0 99 7 # expires in 4 days, inside the 7-day warning
acct() { sg_pam_run alice acct_mgmt >"$T/pam.out" 2>&1 </dev/null; }
check "6: account phase warns of the expiry" acct
check "6: ... with a message" grep -q "will expire in 4 days" "$T/pam.out"
check "6: PAM_SILENT: account phase still succeeds" silent acct
check "6: PAM_SILENT: ... without the warning" no_messages
set_aging alice "$TODAY" 0
ALICE_PW="alice cycle D" # where part 6 left it

###############################################################################
echo "# 8a. a failed conversation"
rows() { sg_audit_count --user alice; }
before=$(rows)
conv_auth() { # MODE: authenticate alice with a conversation that fails that way
        PAM_RUN_CONV=$1 sg_pam_run alice authenticate 192.0.2.80 >"$T/pam.out" 2>&1 </dev/null
}
check "8a: conversation error: refused" ! conv_auth fail
check "8a: ... as PAM_CONV_ERR" grep -q "authenticate: Conversation error" "$T/pam.out"
check "8a: conversation to be resumed: refused" ! conv_auth again
check "8a: ... as PAM_INCOMPLETE" grep -q "authenticate: Application needs to call libpam again" "$T/pam.out"
check "8a: nothing reached the daemon (no audit row, nothing counted)" test "$(rows)" -eq "$before"
check "8a: an empty password typed is still an ordinary failure" ! sg_auth alice ""
check "8a: ... and counted" test "$(rows)" -eq $((before + 1))
conv_passwd() { PAM_RUN_CONV=fail sg_pam_run --ruid 1000 alice chauthtok >"$T/pam.out" 2>&1 </dev/null; }
check "8a: chauthtok: a failed conversation for the old password is refused" ! conv_passwd
check "8a: ... as PAM_CONV_ERR" grep -q "chauthtok: Conversation error" "$T/pam.out"
check "8a: ... not counted either" test "$(rows)" -eq $((before + 1))

###############################################################################
echo "# 8b. serial consoles with the daemon down (unreachable = allow_local)"
sg_stop_daemon
console_root() { printf '%s\n' "$2" | sg_pam -I "tty=$1" root authenticate >"$T/pam.out" 2>&1; }
for tty in ttyAMA0 /dev/ttyUSB0 ttymxc0 ttyACM0 ttyO2 ttySAC1 ttyPS0 hvsi0 ttyS0 tty1 hvc0; do
        check "8b: root at $tty allowed" console_root "$tty" "$SG_PW_ROOT"
done
check "8b: root at ttyAMA0 with a wrong password refused" ! console_root ttyAMA0 wrong
for tty in /dev/pts/3 ttyUSB ttyAMA0x pts/0 ttyp0; do
        check "8b: root at $tty (not a console) refused" ! console_root "$tty" "$SG_PW_ROOT"
done
sg_start_daemon

###############################################################################
echo "# 8c. a broken config file"
cp "$T/secguard.conf" "$T/good.conf"
{ cat "$T/good.conf"; echo "[ratelimit]"; echo "this line is not ini"; } >"$T/secguard.conf"
bad_line=$(grep -n 'this line is not ini' "$T/secguard.conf" | cut -d: -f1)
console_user() { printf '%s\n' "$2" | sg_pam -I "tty=$1" alice authenticate >"$T/pam.out" 2>&1; }
console_root_log() { # TTY PASSWORD: as console_root, with the module's syslog on stderr
        printf '%s\n' "$2" | PAM_WRAPPER_DEBUGLEVEL=1 sg_pam -I "tty=$1" root authenticate >"$T/pam.out" 2>&1
}
check "8c: root at the console with the right password allowed" console_root_log tty1 "$SG_PW_ROOT"
check "8c: ... the module logged the bad file and line" grep -q "$T/secguard.conf:$bad_line:" "$T/pam.out"
check "8c: ... and that it fell back to the unreachable policy" grep -q "built-in defaults" "$T/pam.out"
check "8c: root at the console with a wrong password refused" ! console_root tty1 wrong
check "8c: root on a pseudo-terminal refused" ! console_root /dev/pts/0 "$SG_PW_ROOT"
check "8c: a user at the console refused" ! console_user tty1 "$ALICE_PW"
check "8c: a remote login refused" ! sg_auth alice "$ALICE_PW" 192.0.2.81
check "8c: account phase: root at the console passes" sg_pam -I tty=tty1 root acct_mgmt
check "8c: account phase: a remote user refused" ! sg_pam -I rhost=192.0.2.81 alice acct_mgmt

ctl_bad() { "$SECGUARDCTL" --config "$T/secguard.conf" --socket "$T/run/secguardd.sock" "$@" 2>"$T/ctl.err"; }
check "8c: secguardctl status works with --socket" ctl_bad status
check "8c: ... warning on stderr naming the bad line" grep -q "$T/secguard.conf:$bad_line:" "$T/ctl.err"
check "8c: secguardctl unlock works" ctl_bad unlock alice
check "8c: secguardctl unlock as nobody: still its own exit status (4)" \
        test "$(sgctl_as_nobody --socket "$T/run/secguardd.sock" unlock alice >/dev/null 2>&1; echo $?)" -eq 4
check "8c: secguardctl audit (the daemon's view only) works too" ctl_bad audit --limit 1
check "8c: secguardctl hash, which needs the config's hash settings, refuses it" \
        ! ctl_bad hash </dev/null
cp "$T/good.conf" "$T/secguard.conf"
check "8c: config fixed: a remote login works again" sg_auth alice "$ALICE_PW" 192.0.2.81

sg_done
