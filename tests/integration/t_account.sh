#!/bin/bash
# The account stack: shadow expiry as pam_unix reads it, and (optionally) the daemon's locks
# for logins that did not go through our password check, such as SSH keys.
. "$(dirname "$0")/lib.sh"
sg_setup "[ratelimit]" "user_source_max_failures = 2" "account_locks = yes"
today=$(( $(date +%s) / 86400 ))
pw=$(grep '^alice:' "$T/shadow" | cut -d: -f2)
{
        echo "expired:$pw:$((today - 10)):0:99999:7::$((today - 1)):"
        echo "mustchange:$pw:0:0:99999:7:::"
        echo "aged:$pw:$((today - 100)):0:30:7:::"
        echo "inactive:$pw:$((today - 100)):0:30:7:10::"
        echo "expirezero:$pw:$((today - 10)):0:99999:7::0:"
        echo "maxzero:$pw:$((today - 1)):0:0:7:::"
        echo "maxzerotoday:$pw:$today:0:0:7:::"
        echo "warned:$pw:$((today - 25)):0:30:7:::"
        echo "noaging:$pw::0:30:7:::"
} >>"$T/shadow"
sg_start_daemon
acct() { sg_pam "$@" acct_mgmt >"$T/pam.out" 2>&1; }

check "a current account passes" acct alice
check "an expired account is refused" ! acct expired
check "expired: says so" grep -qi "expired" "$T/pam.out"
check "last change 0 forces a new password" ! acct mustchange
check "mustchange: says a new token is required" grep -qi "new one required" "$T/pam.out"
check "password past max age forces a change" ! acct aged
check "past max age + inactive: expired" ! acct inactive
check "inactive: says expired" grep -qi "expired" "$T/pam.out"
check "an unknown user is refused" ! acct mallory
# The corners pam_unix reads its own way (empty fields are -1 there, 0 is a value):
check "expire day 0 has passed (as pam_unix)" ! acct expirezero
check "max_days 0: a change is required from the next day (as pam_unix)" ! acct maxzero
check "max_days 0: not on the day of the change" acct maxzerotoday
check "inside the warning period: passes" acct warned
check "... and says when the password expires" grep -q "expire in 5 days" "$T/pam.out"
check "an empty last-change date disables aging (shadow(5))" acct noaging

# Authentication and account in one transaction, as sshd, su and login run them: the account
# phase reuses what the authentication read (the config and the aging fields, never the hash)
# and must decide exactly as when it reads the files itself.
auth_acct() { printf '%s\n' "$SG_PW_ALICE" | sg_pam "$1" authenticate acct_mgmt >"$T/pam.out" 2>&1; }
check "auth + account, one transaction: a current account passes" auth_acct alice
check "auth + account: an expired account is refused" ! auth_acct expired
check "auth + account: expired says so" grep -qi "expired" "$T/pam.out"
check "auth + account: last change 0 forces a new password" ! auth_acct mustchange
check "auth + account: inside the warning period passes" auth_acct warned
check "auth + account: ... and says when the password expires" grep -q "expire in 5 days" "$T/pam.out"

# account_locks: a user locked from a source is refused there even without a password.
for i in 1 2; do sg_auth alice wrong 192.0.2.9 || true; done
check "locked (user, source): account refused from there" ! sg_pam -I rhost=192.0.2.9 alice acct_mgmt
check "locked (user, source): account fine from elsewhere" sg_pam -I rhost=192.0.2.10 alice acct_mgmt
sg_stop_daemon
check "daemon down: remote account refused" ! sg_pam -I rhost=192.0.2.10 alice acct_mgmt
sg_done
